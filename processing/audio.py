"""Audio decoding and encoding with soundfile + librosa (``datasets.Audio`` decoding needs torchcodec)."""

from __future__ import annotations

import io
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

SAMPLING_RATE = 16000


class AudioDecodeError(ValueError):
    """An audio file or buffer is missing, unreadable or empty; ``reason`` is that category."""

    def __init__(self, reason: str, source: str, detail: str = ""):
        super().__init__(f"{reason}: {source}" + (f" ({detail})" if detail else ""))
        self.reason, self.source, self.detail = reason, source, detail

    def __reduce__(self):
        return type(self), (self.reason, self.source, self.detail)


def load_audio(
    source: str | Path | bytes, sampling_rate: int = SAMPLING_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Decode ``source`` (a file path or encoded bytes) to float32 mono at ``sampling_rate``.

    Channels are averaged, the signal is resampled with librosa and, when ``max_seconds`` is given, only its first
    ``max_seconds`` are read. Raises [`AudioDecodeError`] naming the file when it is missing, unreadable or empty.
    """
    name = "<audio bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)) and not Path(source).is_file():
        raise AudioDecodeError("missing audio file", name)
    try:
        with sf.SoundFile(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as handle:
            original_rate = handle.samplerate
            frames = -1 if max_seconds is None else int(round(max_seconds * original_rate))
            array = handle.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioDecodeError("unreadable audio file", name, getattr(error, "error_string", str(error))) from error
    if array.size == 0:
        raise AudioDecodeError("empty audio file", name)
    array = array.mean(axis=1)
    if original_rate != sampling_rate:
        array = librosa.resample(array, orig_sr=original_rate, target_sr=sampling_rate)
        if max_seconds is not None:
            array = array[: int(round(max_seconds * sampling_rate))]
    return np.ascontiguousarray(array, dtype=np.float32)


def encode_wav(array: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> bytes:
    """16-bit PCM WAV bytes of a mono float signal in [-1, 1] (values outside are clipped)."""
    buffer = io.BytesIO()
    signal = np.clip(np.asarray(array, dtype=np.float32), -1.0, 1.0)
    sf.write(buffer, signal, sampling_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def decode_example_audio(value: dict, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Float32 mono signal of an ``audio`` column value ``{"bytes": ..., "path": ...}`` (bytes win over path)."""
    if value.get("bytes") is not None:
        return load_audio(value["bytes"], sampling_rate)
    if value.get("path") is not None:
        return load_audio(value["path"], sampling_rate)
    raise AudioDecodeError("audio value without 'bytes' or 'path'", repr(sorted(value)))
