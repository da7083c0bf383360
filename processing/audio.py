"""Audio decoding and encoding with soundfile + librosa (``datasets.Audio`` decoding needs torchcodec)."""

from __future__ import annotations

import functools
import io

import numpy as np
import soundfile as sf

from ..modeling.audio_gemo_clap import AudioDecodeError, read_audio
from ..modeling.timeline_gemo_clap import trim_to_speech
from ..modeling.vad_gemo_clap import VAD_SAMPLING_RATE, SileroVad

SAMPLING_RATE = VAD_SAMPLING_RATE  # every built dataset's rate: the speech detector's, and the towers' (Whisper, WavLM)
__all__ = ["SAMPLING_RATE", "AudioDecodeError", "decode_example_audio", "encode_wav"]


def encode_wav(array: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> bytes:
    """16-bit PCM WAV bytes of a mono float signal in [-1, 1] (values outside are clipped)."""
    buffer = io.BytesIO()
    signal = np.clip(np.asarray(array, dtype=np.float32), -1.0, 1.0)
    sf.write(buffer, signal, sampling_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@functools.cache
def speech_detector() -> SileroVad:
    """The Silero VAD session that trims training clips (one per process)."""
    return SileroVad()


def decode_example_audio(value: dict, sampling_rate: int = SAMPLING_RATE, speech_only: bool = False) -> np.ndarray:
    """Float32 mono signal of an ``audio`` column value ``{"bytes": ..., "path": ...}`` (bytes win over path); with
    ``speech_only``, from its first speech to its last (`trim_to_speech`, as the pipeline's speech spans)."""
    if value.get("bytes") is not None:
        array = read_audio(value["bytes"], sampling_rate)
    elif value.get("path") is not None:
        array = read_audio(value["path"], sampling_rate)
    else:
        raise AudioDecodeError("audio value without 'bytes' or 'path'", repr(sorted(value)))
    return trim_to_speech(array, sampling_rate, speech_detector()) if speech_only else array


def out_of_range(array: np.ndarray) -> int:
    """How many samples of a float signal lie beyond [-1, 1]."""
    return int(np.count_nonzero(np.abs(array) > 1.0))


def peak_normalise(array: np.ndarray) -> np.ndarray:
    """The signal divided by its peak when the peak exceeds 1 (a float file clipped nowhere), else unchanged."""
    peak = float(np.abs(array).max()) if array.size else 0.0
    return (array / peak).astype(np.float32) if peak > 1.0 else array
