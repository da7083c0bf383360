"""Audio handling shared by the processor, the pipeline, dataset building and the ONNX runner, without torch:
validating a clip, reading a file chunk by chunk, the chunk boundaries of long inputs and padding a batch of
features. Bounds are sample indices, with the rate they count at (a file's own rate, until it is read).

Only numpy and the standard library are imported at module level; soundfile (reading files) and librosa
(resampling) are imported when first needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

MAX_CHANNELS = 8
MIN_SECONDS = 0.1  # shorter clips hold no frame of speech: an error, not a confident label
BLOCK_SECONDS = 30.0  # how much of a file is read at a time when it is not read chunk by chunk
INTEGER_SCALES = {np.dtype(np.int16): 2**15, np.dtype(np.int32): 2**31, np.dtype(np.int8): 2**7}


class InvalidAudio(ValueError):
    """A signal that cannot be used (not an array, bad shape or dtype, empty, NaN or infinite samples, too short);
    ``reason`` names the category."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):
        return type(self), (str(self), self.reason)


def validate_audio(audio: Any, sampling_rate: int, where: str, min_seconds: float = MIN_SECONDS) -> np.ndarray:
    """The one check of a clip, for the processor, the pipeline, dataset building and the ONNX runner: mono float32
    (`to_mono_float`) and at least `min_seconds` long (`check_duration`)."""
    array = to_mono_float(audio, where)
    check_duration(array.size, sampling_rate, where, min_seconds)
    return array


def to_mono_float(audio: Any, where: str = "audio item 0") -> np.ndarray:
    """One clip as a 1-D float32 array: accepts float or integer numpy arrays, torch tensors and lists of numbers,
    mono or multi-channel (`[channels, samples]` or `[samples, channels]`, averaged). Raises `ValueError` saying
    which item (`where`) is wrong and why: empty, NaN or infinite samples, wrong shape or dtype."""
    if hasattr(audio, "detach") and hasattr(audio, "numpy"):  # a torch tensor (torch is not imported here)
        audio = audio.detach().cpu().numpy()
    elif isinstance(audio, (list, tuple)):
        audio = np.asarray(audio)
    if not isinstance(audio, np.ndarray):
        raise InvalidAudio(
            f"{where} must be a numpy array, torch tensor or list of samples, got {type(audio).__name__}", "not audio"
        )
    if audio.dtype in INTEGER_SCALES:
        audio = audio.astype(np.float32) / INTEGER_SCALES[audio.dtype]
    elif audio.dtype == np.uint8:
        audio = (audio.astype(np.float32) - 128) / 128
    elif not np.issubdtype(audio.dtype, np.floating):
        raise InvalidAudio(
            f"{where} has dtype {audio.dtype}; expected float, int8, int16, int32 or uint8 samples", "sample type"
        )
    if audio.ndim == 2:
        channel_axis = int(np.argmin(audio.shape))
        if audio.shape[channel_axis] > MAX_CHANNELS:
            raise InvalidAudio(
                f"{where} has shape {audio.shape}: a 2-D array is read as one multi-channel clip "
                f"(at most {MAX_CHANNELS} channels); pass a batch as a list of 1-D arrays",
                "too many channels",
            )
        audio = audio.mean(axis=channel_axis)
    elif audio.ndim != 1:
        raise InvalidAudio(
            f"{where} has {audio.ndim} dimensions (shape {audio.shape}); expected 1-D mono or 2-D multi-channel",
            "shape",
        )
    if audio.size == 0:
        raise InvalidAudio(f"{where} is empty (0 samples)", "empty audio")
    if not np.isfinite(audio).all():
        raise InvalidAudio(f"{where} contains NaN or infinite samples", "NaN or infinite samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def check_duration(num_samples: int, sampling_rate: int, where: str, min_seconds: float = MIN_SECONDS) -> None:
    """Raise `ValueError` when a clip is shorter than `min_seconds` (too short to hold a frame of speech)."""
    if num_samples < math.ceil(min_seconds * sampling_rate):
        raise InvalidAudio(
            f"{where} lasts {num_samples / sampling_rate:.3f} s, shorter than {min_seconds:g} s: too short to hold "
            "a frame of speech",
            f"shorter than {min_seconds:g} s",
        )


def resample(array: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """`array` resampled with librosa (imported here: only other rates need it)."""
    if orig_sr == target_sr:
        return array
    try:
        import librosa
    except ImportError as error:
        raise ImportError(
            f"resampling from {orig_sr} Hz needs librosa (pip install librosa), or pass audio at {target_sr} Hz"
        ) from error
    return librosa.resample(array, orig_sr=orig_sr, target_sr=target_sr).astype(np.float32)


def chunk_bounds(num_samples: int, chunk: int, longest: int) -> list[tuple[int, int]]:
    """`(start, end)` sample bounds splitting `num_samples` into chunks of `chunk` samples. A tail shorter than half a
    chunk joins the previous chunk; where the joined chunk would exceed `longest` (what the model takes), the two
    are split into equal halves instead, so every chunk but a lone short input lasts from half a chunk to `longest`."""
    if chunk <= 0 or longest < chunk:
        raise ValueError(f"chunk length must be in (0, {longest}] samples, got {chunk}")
    bounds = [(start, min(start + chunk, num_samples)) for start in range(0, num_samples, chunk)] or [(0, 0)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < chunk / 2:
        start = bounds[-2][0]
        bounds = bounds[:-2]
        if num_samples - start <= longest:
            bounds.append((start, num_samples))
        else:
            middle = start + (num_samples - start) // 2
            bounds += [(start, middle), (middle, num_samples)]
    return bounds


def check_chunk_length(chunk_length_s: float | None, max_seconds: float) -> float:
    """The chunk length of long inputs: `chunk_length_s`, or `max_seconds` (what the model takes) when None."""
    chunk = max_seconds if chunk_length_s is None else chunk_length_s
    if not 0 < chunk <= max_seconds:
        raise ValueError(f"chunk_length_s must be in (0, {max_seconds:g}] for this model, got {chunk}")
    return chunk


# per reason a file cannot be used: (the sentence the pipeline raises, the phrase `gemo-clap predict` prints)
FILE_PROBLEMS = {
    "missing audio file": ("audio file not found: {source}", "file not found"),
    "folder, not an audio file": (
        "audio path is a directory, not a file: {source}",
        "is a directory, not an audio file",
    ),
    "unreadable audio file": ("cannot decode {source} as audio ({detail})", "not a readable audio file"),
    "empty audio file": ("{source} holds no audio", "the file holds no audio"),
}


class AudioDecodeError(ValueError):
    """An audio file or buffer is missing, a folder, unreadable or empty; ``reason`` is that category (the
    dataset builder counts files by it) and `sentence` / `phrase` say it to a user."""

    def __init__(self, reason: str, source: str, detail: str = ""):
        super().__init__(f"{reason}: {source}" + (f" ({detail})" if detail else ""))
        self.reason, self.source, self.detail = reason, source, detail

    def __reduce__(self):
        return type(self), (self.reason, self.source, self.detail)

    @property
    def sentence(self) -> str:
        return FILE_PROBLEMS[self.reason][0].format(source=self.source, detail=self.detail)

    @property
    def phrase(self) -> str:
        return FILE_PROBLEMS[self.reason][1]


def _open(source: str | os.PathLike | bytes):
    """(soundfile handle, name) of a path or encoded bytes; `AudioDecodeError` for missing, folder or bad input."""
    import io

    import soundfile as sf

    name = "<audio bytes>" if isinstance(source, (bytes, bytearray)) else os.fspath(source)
    if not isinstance(source, (bytes, bytearray)):
        if os.path.isdir(name):
            raise AudioDecodeError("folder, not an audio file", name)
        if not os.path.isfile(name):
            raise AudioDecodeError("missing audio file", name)
    try:
        return sf.SoundFile(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else name), name
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioDecodeError("unreadable audio file", name, getattr(error, "error_string", str(error))) from error


def read_audio(source: str | os.PathLike | bytes, sampling_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Decode a file path or encoded bytes to float32 mono at `sampling_rate` (channels averaged; only the first
    `max_seconds` when given). Raises [`AudioDecodeError`] naming the file when it is missing, a folder, unreadable
    or empty."""
    handle, name = _open(source)
    with handle:
        rate = handle.samplerate
        array = handle.read(
            frames=-1 if max_seconds is None else round(max_seconds * rate), dtype="float32", always_2d=True
        )
    if array.size == 0:
        raise AudioDecodeError("empty audio file", name)
    array = resample(np.ascontiguousarray(array.mean(axis=1), dtype=np.float32), rate, sampling_rate)
    return array[: round(max_seconds * sampling_rate)] if max_seconds is not None else array


def file_duration(source: str | os.PathLike) -> tuple[int, int]:
    """(frames, sampling rate) of an audio file, without decoding it."""
    handle, _ = _open(source)
    with handle:
        return handle.frames, handle.samplerate


def read_chunks(
    path: str | os.PathLike, sampling_rate: int, bounds: Sequence[tuple[int, int]], bounds_rate: int
) -> Iterator[np.ndarray]:
    """The mono float32 signal of each `(start, end)` span of a file (samples at `bounds_rate`), at
    `sampling_rate`, read one span at a time (memory bounded by a span, not the file)."""
    handle, _ = _open(path)
    with handle:
        for start, end in bounds:
            first = round(start / bounds_rate * handle.samplerate)
            last = round(end / bounds_rate * handle.samplerate)
            handle.seek(first)
            frames = handle.read(frames=last - first, dtype="float32", always_2d=True)
            yield resample(frames.mean(axis=1).astype(np.float32), handle.samplerate, sampling_rate)


Span = tuple[int, int, int]  # (start, end, rate): sample bounds and the rate they count at


def audio_chunks(
    audio: Any, sampling_rate: int, chunk_length_s: float, max_seconds: float
) -> Iterator[tuple[Span, np.ndarray]]:
    """`((start, end, rate), clip)` of each chunk of one input of the zero-shot pipeline (or the ONNX runner), split
    by `chunk_bounds`: a file path (read one chunk at a time; bounds in the file's samples), encoded bytes, a clip at
    `sampling_rate` or an `{"array"|"raw", "sampling_rate"}` dict (resampled). A file that cannot be used raises
    `ValueError` with the `AudioDecodeError`'s sentence, the error its cause."""
    try:
        yield from _audio_chunks(audio, sampling_rate, chunk_length_s, max_seconds)
    except AudioDecodeError as error:
        raise ValueError(error.sentence) from error


def _audio_chunks(audio: Any, rate: int, chunk_length_s: float, longest: float) -> Iterator[tuple[Span, np.ndarray]]:
    if isinstance(audio, (str, os.PathLike)):
        yield from _file_spans(
            os.fspath(audio),
            rate,
            lambda frames, file_rate: chunk_bounds(frames, round(chunk_length_s * file_rate), int(longest * file_rate)),
        )
        return
    array = _in_memory(audio, rate)
    for start, end in chunk_bounds(array.size, round(chunk_length_s * rate), int(longest * rate)):
        yield (start, end, rate), array[start:end]


def audio_spans(audio: Any, sampling_rate: int, spans: Sequence[tuple[int, int]]) -> Iterator[np.ndarray]:
    """The signal of each `(start, end)` span (samples at `sampling_rate`) of one input: a file read a span at a
    time, any other input decoded once. Errors as `audio_chunks`."""
    try:
        if isinstance(audio, (str, os.PathLike)):
            yield from read_chunks(os.fspath(audio), sampling_rate, spans, sampling_rate)
            return
        array = _in_memory(audio, sampling_rate)
        for start, end in spans:
            yield array[start:end]
    except AudioDecodeError as error:
        raise ValueError(error.sentence) from error


def _file_spans(
    name: str, rate: int, bounds: Callable[[int, int], list[tuple[int, int]]]
) -> Iterator[tuple[Span, np.ndarray]]:
    """`((start, end, file rate), clip)` of each span `bounds(frames, file_rate)` gives in file samples, read one at
    a time and checked (a file shorter than `MIN_SECONDS` is an error)."""
    frames, file_rate = file_duration(name)
    check_duration(frames, file_rate, name)
    spans = bounds(frames, file_rate)
    for (start, end), chunk in zip(spans, read_chunks(name, rate, spans, file_rate)):
        where = f"{name} at {start / file_rate:.2f}-{end / file_rate:.2f} s"
        yield (start, end, file_rate), validate_audio(chunk, rate, where, min_seconds=0)


def _in_memory(audio: Any, rate: int) -> np.ndarray:
    """A non-file input (encoded bytes, a clip at `rate`, an audio dict) as a validated mono float32 clip at `rate`."""
    if isinstance(audio, bytes):
        array = read_audio(audio, rate)
    elif isinstance(audio, dict):
        raw = audio.get("array", audio.get("raw"))
        if raw is None or "sampling_rate" not in audio:
            raise ValueError("an audio dict needs 'array' (or 'raw') and 'sampling_rate' keys")
        array = resample(to_mono_float(raw), audio["sampling_rate"], rate)
    else:
        array = audio
    return validate_audio(array, rate, "audio item 0")


def audio_blocks(audio: Any, sampling_rate: int, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """One input of the pipeline (or the ONNX runner) as consecutive mono float32 blocks at `sampling_rate`: a file
    read `block_seconds` at a time (memory bounded by a block, not the file), any other input (bytes, a clip, an
    audio dict) in one block. Errors as `audio_chunks`."""
    try:
        if not isinstance(audio, (str, os.PathLike)):
            yield _in_memory(audio, sampling_rate)
            return

        def blocks(frames: int, file_rate: int) -> list[tuple[int, int]]:
            step = round(block_seconds * file_rate)
            return [(start, min(start + step, frames)) for start in range(0, frames, step)]

        for _, block in _file_spans(os.fspath(audio), sampling_rate, blocks):
            yield block
    except AudioDecodeError as error:
        raise ValueError(error.sentence) from error


def pad_to_longest(arrays: Sequence[np.ndarray], padding_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(float32 batch of `arrays` padded along their last axis to the longest, int64 mask of the real steps)."""
    longest = max(array.shape[-1] for array in arrays)
    batch = np.full((len(arrays), *arrays[0].shape[:-1], longest), padding_value, dtype=np.float32)
    mask = np.zeros((len(arrays), longest), dtype=np.int64)
    for row, array in enumerate(arrays):
        batch[row, ..., : array.shape[-1]] = array
        mask[row, : array.shape[-1]] = 1
    return batch, mask
