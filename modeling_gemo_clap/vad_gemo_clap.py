"""Speech detection for the emotion timeline: Silero VAD (MIT, https://github.com/snakers4/silero-vad) run with
onnxruntime, without torch. `SileroVad(...).stream()` turns 16 kHz audio pushed in blocks of any size into one
speech probability per 32 ms frame, carrying the model's state between blocks: a file fed block by block, or live
audio, gives the probabilities of the whole signal at once.

The model is the sequence export of the `silero-vad` wheel (many frames per onnxruntime call, the same numbers as
the frame-by-frame model); it is found inside the installed wheel without importing the `silero_vad` package (whose
initialisation imports torch), or in a folder written by `gemo-clap export-onnx`, which copies it with its licence.
Imports numpy and the standard library; onnxruntime is imported when a model is loaded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from pathlib import Path

import numpy as np

VAD_SAMPLING_RATE = 16000
FRAME_SAMPLES = 512  # one speech probability per 32 ms frame
CONTEXT_SAMPLES = 64  # each frame is preceded by the previous frame's last 64 samples
MAX_FRAMES_PER_CALL = 512  # about 16 s of audio per onnxruntime call
VAD_MODEL_FILE = "silero_vad_16k_sequence.onnx"
VAD_LICENSE_FILE = "SILERO_VAD_LICENSE"
VAD_PACKAGE, VAD_DISTRIBUTION = "silero_vad", "silero-vad"
INSTALL_HINT = "pip install 'gemo-clap[timeline]'"


def installed_vad_files() -> tuple[Path, Path | None]:
    """(model file, licence file or None) of the installed `silero-vad` wheel; `ImportError` naming the extra to
    install when it is absent or too old to ship the sequence model."""
    spec = importlib.util.find_spec(VAD_PACKAGE)  # locates the package without running its __init__ (torch)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"speech detection (segmentation='vad') needs silero-vad and onnxruntime: {INSTALL_HINT}")
    model = Path(next(iter(spec.submodule_search_locations))) / "data" / VAD_MODEL_FILE
    if not model.is_file():
        raise ImportError(f"the installed silero-vad lacks {VAD_MODEL_FILE} (6.2.3 or newer has it): {INSTALL_HINT}")
    licence = None
    try:
        files = importlib.metadata.distribution(VAD_DISTRIBUTION).files or []
        licence = next((Path(str(f.locate())) for f in files if Path(str(f)).name.startswith("LICENSE")), None)
    except importlib.metadata.PackageNotFoundError:
        pass
    return model, licence


def vad_installed() -> bool:
    """Whether the installed `silero-vad` wheel ships the speech detector (without importing it)."""
    try:
        installed_vad_files()
    except ImportError:
        return False
    return importlib.util.find_spec("onnxruntime") is not None


def copy_vad_files(folder: str | Path) -> str | None:
    """Copy the installed Silero VAD model and its MIT licence into `folder` (an ONNX export, so its runner needs
    neither torch nor silero-vad); the model's file name, or None when silero-vad is not installed."""
    try:
        model, licence = installed_vad_files()
    except ImportError:
        return None
    shutil.copyfile(model, Path(folder) / VAD_MODEL_FILE)
    if licence is not None:
        shutil.copyfile(licence, Path(folder) / VAD_LICENSE_FILE)
    return VAD_MODEL_FILE


class SileroVad:
    """The Silero VAD model in an onnxruntime session (one thread: the frames run in order).

    Args:
        path: the model file (`VAD_MODEL_FILE`); None: the one in the installed `silero-vad` wheel.
    """

    def __init__(self, path: str | Path | None = None):
        path = installed_vad_files()[0] if path is None else Path(path)
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError(f"speech detection (segmentation='vad') needs onnxruntime: {INSTALL_HINT}") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def stream(self) -> VadStream:
        """A new stream (its own model state) for one signal."""
        return VadStream(self.session)


class VadStream:
    """Speech probabilities of one 16 kHz signal pushed in blocks: `push` returns those of the complete frames so
    far, `finish` that of the last partial frame (zero-padded, as Silero does). State: the recurrent state, the
    previous frame's context and fewer than one frame of samples."""

    def __init__(self, session):
        self.session = session
        self.hidden = np.zeros((1, 1, 128), dtype=np.float32)
        self.cell = np.zeros((1, 1, 128), dtype=np.float32)
        self.context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self.pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """The speech probability (float32) of each frame completed by `samples`."""
        signal = np.concatenate([self.pending, np.asarray(samples, dtype=np.float32)])
        complete = signal.size // FRAME_SAMPLES * FRAME_SAMPLES
        self.pending = signal[complete:].copy()
        return self._frames(signal[:complete].reshape(-1, FRAME_SAMPLES))

    def finish(self) -> np.ndarray:
        """The probability of the last partial frame (none when the signal ended on a frame boundary)."""
        if self.pending.size == 0:
            return np.zeros(0, dtype=np.float32)
        frame = np.zeros((1, FRAME_SAMPLES), dtype=np.float32)
        frame[0, : self.pending.size] = self.pending
        self.pending = np.zeros(0, dtype=np.float32)
        return self._frames(frame)

    def _frames(self, frames: np.ndarray) -> np.ndarray:
        probabilities = []
        for first in range(0, len(frames), MAX_FRAMES_PER_CALL):
            block = frames[first : first + MAX_FRAMES_PER_CALL]
            contexts = np.empty((len(block), CONTEXT_SAMPLES), dtype=np.float32)
            contexts[0] = self.context
            contexts[1:] = block[:-1, -CONTEXT_SAMPLES:]
            self.context = block[-1, -CONTEXT_SAMPLES:].copy()
            values, self.hidden, self.cell = self.session.run(
                ["speech_probs", "hn", "cn"],
                {"input": np.concatenate([contexts, block], axis=1), "h": self.hidden, "c": self.cell},
            )
            probabilities.append(np.asarray(values, dtype=np.float32).reshape(-1))
        return np.concatenate(probabilities) if probabilities else np.zeros(0, dtype=np.float32)


__all__ = [
    "FRAME_SAMPLES",
    "VAD_LICENSE_FILE",
    "VAD_MODEL_FILE",
    "VAD_SAMPLING_RATE",
    "SileroVad",
    "VadStream",
    "copy_vad_files",
    "installed_vad_files",
    "vad_installed",
]
