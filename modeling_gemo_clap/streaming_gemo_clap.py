"""Live emotion timelines: an `EmotionStream` is fed successive audio frames of any size and returns the timeline's
events as soon as they are decided: a provisional label for the speech segment in progress at every hop
(`"partial"`) and each segment once it is final (`"final"`), times in seconds from the start of the stream.

It runs the stages of the offline timeline (`timeline_gemo_clap`) on the frames as they come, so the final segments of
a stream fed a file's frames are the segments the pipeline returns for that file (`return_segments=True`), and its
state is a few windows of audio and of scores whatever the stream's length. Windows are scored through a
`WindowScorer` (clips in, `ClipScores` out), so one stream serves the torch pipeline (`pipeline.stream()`) and the
ONNX runner (`runner.stream()`), both built by `driver_gemo_clap.ZeroShotDriver.stream`. Imports numpy and the standard library (and the timeline, VAD and audio modules);
soxr, which librosa installs, only to resample a stream at another sampling rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .audio_gemo_clap import to_mono_float
from .timeline_gemo_clap import (
    ClipScores,
    Segment,
    TimelineAccumulator,
    TimelineSettings,
    TimelineStream,
    Window,
    segment_entry,
)


@dataclass(frozen=True)
class WindowScorer:
    """How a stream scores its windows: `score(clips)` takes mono float32 clips at `sampling_rate` and returns their
    `ClipScores`: emotion probabilities over `labels` (`[clips, labels]`) and, when `gender_labels` is not None,
    gender probabilities."""

    score: Callable[[list[np.ndarray]], ClipScores]
    labels: Sequence[str]
    gender_labels: Sequence[str] | None
    sampling_rate: int


class StreamResampler:
    """A stream's samples at another rate, block by block: soxr's streaming resampler at librosa's default quality
    ("soxr_hq"), which gives the samples `librosa.resample` gives for the whole signal."""

    def __init__(self, orig_sr: int, target_sr: int):
        try:
            import soxr
        except ImportError as error:
            raise ImportError(
                f"a stream at {orig_sr} Hz is resampled to {target_sr} Hz with soxr (pip install librosa, which "
                f"installs it); or push audio at {target_sr} Hz"
            ) from error
        self.resampler = soxr.ResampleStream(orig_sr, target_sr, 1, dtype="float32", quality="HQ")

    def push(self, samples: np.ndarray) -> np.ndarray:
        return self.resampler.resample_chunk(samples, last=False)

    def finish(self) -> np.ndarray:
        return self.resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class EmotionStream:
    """
    The emotion timeline of live audio. Build it with `pipeline.stream(sampling_rate=16000, **options)` (the torch
    pipeline) or `runner.stream(...)` (the ONNX runner); the options are the timeline's (`window_s`, `hop_s`,
    `smoothing_s`, `vad_threshold`, `min_speech_s`, `min_silence_s`, `speech_pad_s`), `return_gender=True` for
    checkpoints trained with gender prompts.

    `push(frames)` takes the next frames (any number of samples; 1-D float or integer samples, multi-channel
    `[channels, samples]` / `[samples, channels]`, tensors, or an item of transformers' `ffmpeg_microphone_live`)
    at `sampling_rate` and returns the events they decide, in order: `{"event": "partial", "start", "end",
    "label", "score"}` at every hop for the segment in progress (as it would end if the speech ended there), and
    `{"event": "final", ...}` for each segment once it can no longer change (a change of emotion, or the end of a
    speech region); `"gender"` too with `return_gender`. `close()` returns the final events of the end of the
    stream; a push after it is an error. A bad frame (wrong type or shape, NaN, another sampling rate) raises a
    `ValueError` naming the problem and changes nothing.

    Fed a signal's frames, the final segments are those of the offline timeline of that signal. Memory and time
    per frame do not grow with the stream (`buffered()` counts what it holds), except while the speech detector's
    probability hovers between its two thresholds, when Silero's rule keeps a region's end open.

    Args:
        scorer: how windows are scored (`WindowScorer`).
        vad: the speech detector (`SileroVad`): `vad.stream()` gives a new detector state.
        settings: the timeline's validated settings (segmentation "vad").
        sampling_rate: the rate of the frames pushed (resampled to the scorer's when different).
        batch_size: windows per scorer call.
    """

    def __init__(
        self,
        scorer: WindowScorer,
        vad: Any,
        settings: TimelineSettings,
        sampling_rate: int | None = None,
        batch_size: int = 8,
    ):
        if settings.segmentation != "vad":
            raise ValueError("a stream needs segmentation='vad': it follows speech as it comes")
        rate = scorer.sampling_rate
        self.sampling_rate = _positive_int("sampling_rate", rate if sampling_rate is None else sampling_rate)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.scorer, self.settings = scorer, settings
        self.resampler = StreamResampler(self.sampling_rate, rate) if self.sampling_rate != rate else None
        self.timeline = TimelineStream(settings, rate, vad.stream())
        genders = len(scorer.gender_labels or ())
        self.accumulator = TimelineAccumulator.for_settings(settings, rate, len(scorer.labels), genders)
        self.head_region, self.head_due = None, 0  # the next provisional label of a region without windows is due
        self.closed = False

    def push(self, frames: Any) -> list[dict]:
        """The events decided by `frames` (see the class), in order."""
        if self.closed:
            raise ValueError("push() on a closed stream: close() ended it; start a new one with .stream()")
        samples = self._samples(frames)
        if self.resampler is not None:
            samples = self.resampler.push(samples)
        if samples.size == 0:
            return []
        events = self._events(self.timeline.push(samples))
        return events + self._head()

    def close(self) -> list[dict]:
        """The final events of the end of the stream (the open segment ends where the audio ends); later pushes are
        errors, later closes return nothing."""
        if self.closed:
            return []
        self.closed = True
        windows = self.timeline.push(self.resampler.finish()) if self.resampler is not None else []
        return self._events(windows + self.timeline.finish())

    def buffered(self) -> dict[str, int]:
        """What the stream holds: samples of audio (at the model's rate), time steps of scores awaiting more
        windows or smoothing, and segments not yet returned; all bounded by the settings, not the stream's length."""
        smoothing = self.accumulator.smoother.buffer
        return {
            "audio_samples": int(self.timeline.buffer.size),
            "score_steps": int(self.accumulator.averager.counts.size)
            + (0 if smoothing is None else int(smoothing.starts.size)),
            "segments": len(self.accumulator.merger.finished),
        }

    def _samples(self, frames: Any) -> np.ndarray:
        """`frames` as mono float32 samples, checked; an `ffmpeg_microphone_live` item's new samples (none for a
        partial item, whose samples come again in the next whole one; its strides' overlap cut, as the ASR
        pipeline does)."""
        stride = (0, 0)
        if isinstance(frames, dict):
            rate = frames.get("sampling_rate")
            if rate != self.sampling_rate:
                raise ValueError(
                    f"frames at {rate} Hz pushed into a stream at {self.sampling_rate} Hz: start the stream with "
                    f"sampling_rate={rate}" + ("" if rate else " (a frames dict needs a 'sampling_rate' key)")
                )
            if frames.get("partial"):
                return np.zeros(0, dtype=np.float32)
            stride = frames.get("stride", (0, 0))
            frames = frames.get("raw", frames.get("array"))
        if isinstance(frames, (np.ndarray, list, tuple)) and np.size(frames) == 0:
            return np.zeros(0, dtype=np.float32)
        samples = to_mono_float(frames, "frames")
        return samples[stride[0] : samples.size - stride[1]]

    def _scores(self, clips: list[np.ndarray]) -> list[ClipScores]:
        """Each clip's scores, `batch_size` clips per scorer call."""
        rows: list[ClipScores] = []
        for first in range(0, len(clips), self.batch_size):
            rows.extend(self.scorer.score(clips[first : first + self.batch_size]).rows())
        return rows

    def _events(self, windows: list[Window]) -> list[dict]:
        events = []
        merger = self.accumulator.merger
        for window, scores in zip(windows, self._scores([window.audio for window in windows])):
            self.accumulator.add(
                window.start, window.end, window.region_start, window.release, window.region_end, scores
            )
            events += [self._event("final", segment) for segment in merger.finished]
            merger.finished.clear()
            if window.region_end is None:
                events += self._event_list("partial", self.accumulator.provisional(window.end))
        return events

    def _head(self) -> list[dict]:
        """A provisional label, every hop, for a region in progress that has no window yet: from its speech so far."""
        head = self.timeline.head()
        if head is None:
            return []
        hop = self.timeline.planner.hop
        if head.region_start != self.head_region:
            self.head_region, self.head_due = head.region_start, head.region_start + hop
        if head.end < self.head_due:
            return []
        self.head_due = head.region_start + hop * ((head.end - head.region_start) // hop + 1)
        window = (head.start, head.end, head.region_start, self._scores([head.audio])[0])
        return self._event_list("partial", self.accumulator.provisional(head.end, window))

    def _event(self, kind: str, segment: Segment) -> dict:
        means = self.accumulator.means(segment)
        entry = segment_entry(segment, means, self.scorer.labels, self.scorer.gender_labels, self.scorer.sampling_rate)
        return {"event": kind, **entry}

    def _event_list(self, kind: str, segment: Segment | None) -> list[dict]:
        return [] if segment is None else [self._event(kind, segment)]


__all__ = ["EmotionStream", "StreamResampler", "WindowScorer"]
