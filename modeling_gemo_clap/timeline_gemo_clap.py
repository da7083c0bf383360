"""The emotion timeline of a recording, without torch: speech regions from the VAD's frame probabilities, sliding
windows inside speech, the windows' scores averaged where they overlap, smoothed and merged into segments. The
zero-shot pipeline and the ONNX runner both use it, so they give the same segments.

Every stage runs incrementally with bounded state, and the offline result is the stages fed the whole input:

    audio blocks -> `VadStream` (vad_gemo_clap) -> `SpeechDetector` -> `WindowPlanner` -> windows to score
    window scores -> `OverlapAverager` -> `Smoother` -> `SegmentMerger` -> segments

`TimelineStream` runs the first line (it keeps only the audio that a window may still need) and
`TimelineAccumulator` the second; `streaming_gemo_clap.EmotionStream` runs both on live audio, and
`driver_gemo_clap` on an input. Times are integer sample indices (exact, whatever the block sizes) and a region
still in progress has no end (None); only reported segments are in seconds. Window scores come in as `ClipScores`
(named arrays: emotion, gender, embedding). Imports numpy and the standard library (and the VAD module, which loads
onnxruntime when used).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .audio_gemo_clap import MIN_SECONDS, audio_blocks, check_chunk_length, chunk_bounds
from .vad_gemo_clap import FRAME_SAMPLES, VAD_SAMPLING_RATE

SEGMENTATIONS = ("vad", "fixed")
STEP_SECONDS = 0.02  # time resolution of the score curves and of the segment boundaries inside speech
NEGATIVE_THRESHOLD_GAP = 0.15  # Silero's hysteresis: inside speech, silence starts below threshold - 0.15
# a quiet input in which the VAD finds no speech is searched again, louder: its peak raised to QUIET_PEAK by at most
# MAX_VAD_GAIN (+40 dB), for the VAD only (the model scores the audio as it is); EmoDB scaled to -40 dBFS peaks:
# 14 of 339 clips without speech at the plain level, none with the second search (benchmarks/README.md)
QUIET_PEAK, MAX_VAD_GAIN = 0.25, 100.0


@dataclass(frozen=True)
class TimelineSettings:
    """How an input is cut and scored: `segmentation="fixed"` (chunks of `chunk_length_s`, the whole signal) or
    `"vad"` (windows of `window_s` every `hop_s` inside detected speech, scores smoothed over `smoothing_s`)."""

    segmentation: str = "vad"
    chunk_length_s: float | None = None
    # the defaults of segmentation="vad": the best validation scores averaged over the 5 EmoDB folds'
    # conversations (benchmarks/bench_timeline.py, 2026-12-05, cpu-whisper-tiny-sl; min_speech_s is Silero's)
    window_s: float = 2.0
    hop_s: float = 0.5
    smoothing_s: float = 2.0
    vad_threshold: float = 0.6
    min_speech_s: float = 0.25
    min_silence_s: float = 0.25
    speech_pad_s: float = 0.03
    # the overall scores: speech regions at most `span_gap_s` apart are joined into one span (up to the model's
    # maximum) and each span is scored whole, as training saw its utterances (trimmed to their speech)
    span_gap_s: float = 1.0


VAD_OPTIONS = tuple(f.name for f in fields(TimelineSettings) if f.name not in ("segmentation", "chunk_length_s"))


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def timeline_settings(
    max_seconds: float,
    sampling_rate: int,
    segmentation: str | None = None,
    vad_available: bool = True,
    chunk_length_s: float | None = None,
    **options: float | None,
) -> TimelineSettings:
    """The validated settings of one call. `segmentation` defaults to "vad" (the scoring protocol of every entry
    point: speech spans scored whole, windows for the timeline), or to "fixed" when `chunk_length_s` is given, or
    when no speech detector is available (`vad_available`) or the model does not take 16 kHz audio; options left
    None take their defaults (`window_s`: the default or the model's maximum, whichever is shorter). Raises
    `ValueError` naming the option that is wrong."""
    unknown = sorted(set(options) - set(VAD_OPTIONS))
    if unknown:
        raise TypeError(f"unexpected timeline option(s) {unknown}; known: {list(VAD_OPTIONS)}")
    mode = segmentation
    if mode is None:
        fixed = chunk_length_s is not None or not vad_available or sampling_rate != VAD_SAMPLING_RATE
        mode = "fixed" if fixed else "vad"
    if mode not in SEGMENTATIONS:
        raise ValueError(f"segmentation must be one of {SEGMENTATIONS}, got {segmentation!r}")
    given = [name for name, value in options.items() if value is not None]
    if mode == "fixed":
        if given:
            raise ValueError(
                f"{given[0]} applies to segmentation='vad'; segmentation='fixed' cuts chunks of chunk_length_s"
            )
        return TimelineSettings("fixed", chunk_length_s=check_chunk_length(chunk_length_s, max_seconds))
    if chunk_length_s is not None:
        raise ValueError("chunk_length_s applies to segmentation='fixed'; segmentation='vad' takes window_s and hop_s")
    if sampling_rate != VAD_SAMPLING_RATE:
        raise ValueError(
            f"segmentation='vad' needs a model at {VAD_SAMPLING_RATE} Hz (Silero VAD); this one takes "
            f"{sampling_rate} Hz: use segmentation='fixed'"
        )
    defaults = TimelineSettings()
    values = {name: _number(name, value) for name, value in options.items() if value is not None}
    window = values.setdefault("window_s", min(defaults.window_s, max_seconds))
    if not MIN_SECONDS <= window <= max_seconds:
        raise ValueError(f"window_s must be in [{MIN_SECONDS:g}, {max_seconds:g}] s for this model, got {window:g}")
    hop = values.setdefault("hop_s", min(defaults.hop_s, window))
    if hop <= 0:
        raise ValueError(f"hop_s must be positive, got {hop:g}")
    if hop > window:
        raise ValueError(f"hop_s ({hop:g}) must not exceed window_s ({window:g}): the windows would leave gaps")
    if not 0 < values.get("vad_threshold", defaults.vad_threshold) < 1:
        raise ValueError(f"vad_threshold must be in (0, 1), got {values['vad_threshold']:g}")
    for name in ("smoothing_s", "min_speech_s", "min_silence_s", "speech_pad_s", "span_gap_s"):
        if values.get(name, 0.0) < 0:
            raise ValueError(f"{name} must be >= 0, got {values[name]:g}")
    return replace(defaults, **values)


# ------------------------------------------------------------------------------------------ speech regions


class RegionEvent(NamedTuple):
    """A speech region became certain (`"open"`: its padded start is final) or ended (`"close"`: start and end)."""

    kind: str
    start: int
    end: int | None = None


class SpeechDetector:
    """Silero's `get_speech_timestamps_from_probs` (without `max_speech_duration_s`), frame by frame: a region
    starts at a frame whose probability reaches `threshold` and ends where the probability stayed below `threshold -
    0.15` for `min_silence` samples; regions not longer than `min_speech` are dropped; each kept region is padded by
    `pad` samples on both sides, or, where two padded regions would overlap, they meet in the middle of the gap.

    `push` returns the events its frames make certain, in time order: a region "opens" once it is known to be kept
    (its padded start final) and "closes" once the next kept region or a long enough gap fixes its padded end.
    State: a handful of integers (one region and its predecessor)."""

    def __init__(self, threshold: float, min_speech: int, min_silence: int, pad: int, frame: int = FRAME_SAMPLES):
        self.threshold, self.negative = threshold, max(threshold - NEGATIVE_THRESHOLD_GAP, 0.01)
        self.min_speech, self.min_silence, self.pad, self.frame = min_speech, min_silence, pad, frame
        self.frames = 0  # frames seen
        self.triggered, self.start, self.temp_end = False, 0, 0
        self.opened = False  # the triggered region is known to be kept (its "open" event was sent)
        self.open_start = 0  # its padded start
        self.pending: tuple[int, int] | None = None  # (padded start, end) of a kept region whose padded end waits
        self.limit: int | None = None  # the signal's length, once its last (partial) frame comes

    @classmethod
    def for_settings(cls, settings: TimelineSettings, sampling_rate: int) -> SpeechDetector:
        """The detector of `settings` (`vad_threshold`, `min_speech_s`, `min_silence_s`, `speech_pad_s`)."""
        seconds = lambda value: round(value * sampling_rate)
        return cls(
            settings.vad_threshold,
            seconds(settings.min_speech_s),
            seconds(settings.min_silence_s),
            seconds(settings.speech_pad_s),
        )

    def push(self, probabilities: Iterable[float]) -> list[RegionEvent]:
        events: list[RegionEvent] = []
        for probability in probabilities:
            here = self.frames * self.frame
            self.frames += 1
            if probability >= self.threshold and self.temp_end:
                self.temp_end = 0
            if probability >= self.threshold and not self.triggered:
                self.triggered, self.start, self.opened = True, here, False
            elif probability < self.negative and self.triggered:
                if not self.temp_end:
                    self.temp_end = here
                if here - self.temp_end >= self.min_silence:
                    if self.temp_end - self.start > self.min_speech:
                        self._keep(self.temp_end, events)
                    self.triggered, self.temp_end = False, 0
            if (
                self.triggered
                and not self.opened
                and (self.temp_end or self._position()) - self.start > self.min_speech
            ):
                self._open(events)
            self._settle(events)
        return events

    def finish(self, total: int) -> list[RegionEvent]:
        """The events of the end of the signal (`total` samples long, its last frame already pushed): a region
        still in progress ends there."""
        events: list[RegionEvent] = []
        if self.triggered and total - self.start > self.min_speech:
            self._keep(total, events)
        self.triggered = False
        if self.pending is not None:
            events.append(RegionEvent("close", self.pending[0], min(total, self.pending[1] + self.pad)))
            self.pending = None
        return events

    def _position(self) -> int:
        """The end of the frames seen (never past `limit`, the signal's length once it is known)."""
        position = self.frames * self.frame
        return position if self.limit is None else min(position, self.limit)

    def speech_bound(self) -> int | None:
        """Where the speech of the region that opened last reaches at least (its final unpadded end is not
        earlier); None when there is none in progress."""
        if self.triggered and self.opened:
            return self.temp_end or self._position()
        return self.pending[1] if self.pending is not None else None

    def earliest_start(self) -> int:
        """No region that has not opened yet can start (padded) before this sample."""
        start = self.start if self.triggered and not self.opened else self._position()
        return max(0, start - self.pad)

    def _open(self, events: list[RegionEvent]) -> None:
        reach = self.pad
        if self.pending is not None:
            gap = self.start - self.pending[1]
            reach = gap // 2 if gap < 2 * self.pad else self.pad
            events.append(RegionEvent("close", self.pending[0], self.pending[1] + reach))
            self.pending = None
        self.opened, self.open_start = True, max(0, self.start - reach)
        events.append(RegionEvent("open", self.open_start))

    def _keep(self, end: int, events: list[RegionEvent]) -> None:
        if not self.opened:
            self._open(events)
        self.pending, self.opened = (self.open_start, end), False

    def _settle(self, events: list[RegionEvent]) -> None:
        """Close the waiting region once no later region can come within two paddings of it."""
        if self.pending is None:
            return
        next_start = self.start if self.triggered else self._position()
        if next_start - self.pending[1] >= 2 * self.pad:
            events.append(RegionEvent("close", self.pending[0], self.pending[1] + self.pad))
            self.pending = None


class WindowPlanner:
    """The windows of one speech region: `window` samples every `hop` from its start while they fit, then one more
    ending at the region's end (the whole region when it is shorter than a window). `advance` gives the windows the
    speech so far certainly holds; `close` the rest. Regions shorter than `shortest` get none."""

    def __init__(self, window: int, hop: int, shortest: int):
        self.window, self.hop, self.shortest = window, hop, shortest
        self.start = self.next = 0
        self.last_end: int | None = None  # the end of the region's last window so far (None: none yet)

    def open(self, start: int) -> None:
        self.start = self.next = start
        self.last_end = None

    def advance(self, bound: int) -> list[tuple[int, int]]:
        """The windows ending before `bound` (one ending at the region's end is left to `close`, which always gives
        the region's last window)."""
        spans = []
        while self.next + self.window < bound:
            spans.append((self.next, self.next + self.window))
            self.last_end = self.next + self.window
            self.next += self.hop
        return spans

    def release(self, bound: int) -> int:
        """No later window of the region (its speech reaching at least `bound`) starts before this sample."""
        return min(self.next, max(self.start, bound - self.window))

    def close(self, end: int) -> list[tuple[int, int]]:
        if end - self.start < self.shortest:
            return []
        spans = self.advance(end)
        if self.last_end is None or self.last_end < end:
            spans.append((max(self.start, end - self.window), end))
        return spans


@dataclass
class Window:
    """One window to score: sample bounds, its region's start, where the region's scores are final before
    (`release`), the region's end when this is its last window (else None: the region goes on), and the audio."""

    start: int
    end: int
    region_start: int
    release: int
    region_end: int | None
    audio: np.ndarray


class TimelineStream:
    """Audio in, windows to score out: `push(block)` returns the windows the audio so far makes certain, `finish()`
    the rest. It keeps only the audio a window may still need (a few windows' worth, whatever the input's length,
    except while the VAD's probability hovers between its two thresholds, when a region's end stays open)."""

    def __init__(self, settings: TimelineSettings, sampling_rate: int, vad_stream, vad_gain: float = 1.0):
        seconds = lambda value: round(value * sampling_rate)
        self.vad, self.vad_gain = vad_stream, vad_gain
        self.detector = SpeechDetector.for_settings(settings, sampling_rate)
        self.planner = WindowPlanner(
            seconds(settings.window_s), seconds(settings.hop_s), math.ceil(MIN_SECONDS * sampling_rate)
        )
        self.region_open = False
        self.buffer = np.zeros(0, dtype=np.float32)
        self.buffer_start = 0  # sample index of buffer[0]
        self.total = 0

    def push(self, samples: np.ndarray) -> list[Window]:
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, dtype=np.float32)])
        self.total += len(samples)
        windows = self._windows(self.detector.push(self.vad.push(np.asarray(samples) * self.vad_gain)))
        self._trim()
        return windows

    def finish(self) -> list[Window]:
        self.detector.limit = self.total
        events = self.detector.push(self.vad.finish()) + self.detector.finish(self.total)
        windows = self._windows(events)
        self.buffer, self.buffer_start = np.zeros(0, dtype=np.float32), self.total
        return windows

    def _windows(self, events: list[RegionEvent]) -> list[Window]:
        windows = []
        for event in events:
            if event.kind == "open":
                self.planner.open(event.start)
                self.region_open = True
            else:
                windows += self._planned(self.planner.close(event.end), event.end, event.end)
                self.region_open = False
        bound = self.detector.speech_bound()
        if self.region_open and bound is not None:
            spans = self.planner.advance(bound)
            windows += self._planned(spans, self.planner.release(bound), None)
        return windows

    def head(self) -> Window | None:
        """The speech so far of the region in progress while none of its windows is due yet (a live stream labels
        it provisionally with it; it is not one of the region's windows; its audio is a view, valid until the next
        push), or None."""
        bound = self.detector.speech_bound()
        if not self.region_open or bound is None or self.planner.last_end is not None:
            return None
        start = self.planner.start
        if bound - start < self.planner.shortest:
            return None
        return Window(
            start, bound, start, start, None, self.buffer[start - self.buffer_start : bound - self.buffer_start]
        )

    def _planned(self, spans: list[tuple[int, int]], last_release: int, region_end: int | None) -> list[Window]:
        """Windows of `spans` (in order): each releases the steps before the next one's start; the last releases
        `last_release` and carries `region_end` (None: the region goes on)."""
        releases = [span[0] for span in spans[1:]] + [last_release]
        return [
            Window(
                start,
                end,
                self.planner.start,
                release,
                region_end if index == len(spans) - 1 else None,
                self.buffer[start - self.buffer_start : end - self.buffer_start].copy(),
            )
            for index, ((start, end), release) in enumerate(zip(spans, releases))
        ]

    def _trim(self) -> None:
        keep = self.detector.earliest_start()
        bound = self.detector.speech_bound()
        if self.region_open and bound is not None:
            keep = min(keep, self.planner.release(bound))
        drop = max(0, min(keep, self.total) - self.buffer_start)
        if drop:
            self.buffer, self.buffer_start = self.buffer[drop:].copy(), self.buffer_start + drop


def speech_windows(
    audio: Any, sampling_rate: int, settings: TimelineSettings, vad, vad_gain: float = 1.0
) -> Iterator[Window]:
    """The windows of one input (a file path, read block by block; bytes; an array; an audio dict) under
    `segmentation="vad"`, `vad` a `SileroVad` hearing the input `vad_gain` times louder: what `TimelineStream` gives
    when fed the whole input."""
    stream = TimelineStream(settings, sampling_rate, vad.stream(), vad_gain)
    for block in audio_blocks(audio, sampling_rate):
        yield from stream.push(block)
    yield from stream.finish()


def quiet_gain(peak: float) -> float:
    """The VAD's gain for the second search of an input without detected speech whose peak is `peak`: up to
    `QUIET_PEAK`, at most `MAX_VAD_GAIN`; 1 (no second search) for a loud enough or digitally silent input."""
    return min(QUIET_PEAK / peak, MAX_VAD_GAIN) if 0 < peak < QUIET_PEAK else 1.0


def found_speech_windows(audio: Any, sampling_rate: int, settings: TimelineSettings, vad) -> Iterator[Window]:
    """`speech_windows` of one input; when they find no speech in a quiet input, those of a second search in which
    the VAD hears it louder (`quiet_gain`; the windows' audio is the input's own)."""
    found = False
    for window in speech_windows(audio, sampling_rate, settings, vad):
        found = True
        yield window
    if not found:
        gain = quiet_gain(max(float(np.abs(block).max()) for block in audio_blocks(audio, sampling_rate)))
        if gain > 1:
            yield from speech_windows(audio, sampling_rate, settings, vad, gain)


def speech_regions(array: np.ndarray, sampling_rate: int, vad, settings: TimelineSettings) -> list[tuple[int, int]]:
    """The padded speech regions `(start, end)` (samples) of one clip: those the timeline's windows cover."""
    windows = found_speech_windows(array, sampling_rate, settings, vad)
    return [(window.region_start, window.region_end) for window in windows if window.region_end is not None]


def trim_to_speech(array: np.ndarray, sampling_rate: int, vad, settings: TimelineSettings | None = None) -> np.ndarray:
    """The clip from the start of its first speech region to the end of its last (the whole clip when the VAD finds
    none): what training pools, and what the overall scores of a one-utterance input score (`utterance_spans`)."""
    regions = speech_regions(array, sampling_rate, vad, settings or TimelineSettings())
    return array[regions[0][0] : regions[-1][1]] if regions else array


def utterance_spans(regions: Sequence[tuple[int, int]], max_samples: int, gap: int) -> list[tuple[int, int]]:
    """The spans scored whole for the overall scores: consecutive speech regions joined while the silence between
    them lasts at most `gap` samples and the joined span at most `max_samples`; a longer region is cut by
    `chunk_bounds` (the pipeline's long-input rule)."""
    joined: list[tuple[int, int]] = []
    for start, end in regions:
        if joined and start - joined[-1][1] <= gap and end - joined[-1][0] <= max_samples:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return [
        (start + first, start + last)
        for start, end in joined
        for first, last in chunk_bounds(end - start, max_samples, max_samples)
    ]


# ------------------------------------------------------------------------------------------ scores to segments


@dataclass(frozen=True)
class ClipScores:
    """What a scorer gives for clips, as named arrays (`[clips, ...]`, or 1-D for one clip): the emotion
    probabilities over the labels, the gender probabilities (None: not scored) and the L2-normalised audio
    embeddings (None: not kept)."""

    emotion: np.ndarray
    gender: np.ndarray | None = None
    embedding: np.ndarray | None = None

    def rows(self) -> list[ClipScores]:
        """One `ClipScores` per clip."""
        row = lambda values, index: None if values is None else values[index]
        return [
            ClipScores(self.emotion[index], row(self.gender, index), row(self.embedding, index))
            for index in range(len(self.emotion))
        ]


class Steps(NamedTuple):
    """Consecutive time steps of one region: sample bounds and one row of values each."""

    starts: np.ndarray
    ends: np.ndarray
    values: np.ndarray


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


class OverlapAverager:
    """Per region, steps of `step` samples from its start; a step's values are the mean of the windows covering
    the step's start. Steps are handed on once no later window can cover them (`release`, `close`)."""

    def __init__(self, step: int, channels: int):
        self.step, self.channels = step, channels
        self.region_start: int | None = None  # the region in progress (None: none)
        self.first = 0  # index of sums[0] among the region's steps
        self.sums = np.zeros((0, channels))
        self.counts = np.zeros(0)

    def add(self, start: int, end: int, region_start: int, values: np.ndarray) -> None:
        if region_start != self.region_start:
            self.region_start, self.first = region_start, 0
            self.sums, self.counts = np.zeros((0, self.channels)), np.zeros(0)
        low = _ceil_div(start - region_start, self.step) - self.first
        high = _ceil_div(end - region_start, self.step) - self.first
        if high > len(self.counts):
            self.sums = np.concatenate([self.sums, np.zeros((high - len(self.counts), self.channels))])
            self.counts = np.concatenate([self.counts, np.zeros(high - len(self.counts))])
        self.sums[max(low, 0) : high] += values
        self.counts[max(low, 0) : high] += 1

    def release(self, before: int) -> Steps:
        count = min(_ceil_div(before - self.region_start, self.step) - self.first, len(self.counts))
        return self._take(max(count, 0), None)

    def close(self, end: int) -> Steps:
        count = min(_ceil_div(end - self.region_start, self.step) - self.first, len(self.counts))
        steps = self._take(count, end)
        self.region_start = None
        return steps

    def _take(self, count: int, end: int | None) -> Steps:
        index = self.first + np.arange(count)
        starts = self.region_start + index * self.step
        ends = starts + self.step if end is None else np.minimum(starts + self.step, end)
        values = self.sums[:count] / np.maximum(self.counts[:count], 1)[:, None]
        self.sums, self.counts, self.first = self.sums[count:], self.counts[count:], self.first + count
        return Steps(starts, ends, values)


class Smoother:
    """Per region, the centred moving average of the first `channels` values over `half` steps on each side (cut at
    the region's edges); steps leave once their right-hand context has arrived. Keeps at most `2 * half` steps."""

    BLOCK = 512  # steps averaged per numpy call

    def __init__(self, half: int, channels: int):
        self.half, self.channels = half, channels
        self.buffer: Steps | None = None
        self.left = 0  # steps at the head of the buffer already handed on (context only)

    def push(self, steps: Steps) -> tuple[Steps, np.ndarray]:
        self.buffer = (
            steps if self.buffer is None else Steps(*(np.concatenate(pair) for pair in zip(self.buffer, steps)))
        )
        ready = len(self.buffer.starts) - self.left - self.half
        return self._emit(max(ready, 0), closing=False)

    def close(self) -> tuple[Steps, np.ndarray]:
        if self.buffer is None:
            return Steps(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 0))), np.zeros((0, self.channels))
        result = self._emit(len(self.buffer.starts) - self.left, closing=True)
        self.buffer, self.left = None, 0
        return result

    def _emit(self, count: int, closing: bool) -> tuple[Steps, np.ndarray]:
        buffer, left, half = self.buffer, self.left, self.half
        values = buffer.values[:, : self.channels]
        padded = np.concatenate(
            [np.full((half, self.channels), np.nan), values, np.full((half, self.channels), np.nan)]
        )
        smoothed = np.empty((count, self.channels))
        for first in range(0, count, self.BLOCK):
            rows = slice(left + first, left + min(count, first + self.BLOCK))
            windows = sliding_window_view(padded[rows.start : rows.stop + 2 * half], 2 * half + 1, axis=0)
            smoothed[first : first + rows.stop - rows.start] = np.nanmean(windows, axis=-1)
        emitted = Steps(*(array[left : left + count] for array in buffer))
        if not closing:
            keep = max(left + count - half, 0)
            self.buffer = Steps(*(array[keep:] for array in buffer))
            self.left = left + count - keep
        return emitted, smoothed


@dataclass
class Segment:
    """A run of steps with one emotion: sample bounds and the duration-weighted sums of its steps' values."""

    start: int
    end: int
    label: int
    duration: int = 0
    smoothed: np.ndarray | None = None  # sum of smoothed emotion (and gender) probabilities x step duration
    raw: np.ndarray | None = None  # sum of the raw values (probabilities and embeddings) x step duration


class SegmentMerger:
    """Consecutive steps with the same most likely emotion (after smoothing) become one segment; a segment never
    spans two regions."""

    def __init__(self, num_labels: int):
        self.num_labels = num_labels
        self.current: Segment | None = None
        self.finished: list[Segment] = []

    def push(self, steps: Steps, smoothed: np.ndarray) -> None:
        if len(steps.starts) == 0:
            return
        durations = (steps.ends - steps.starts).astype(np.float64)
        weighted_raw, weighted_smoothed = steps.values * durations[:, None], smoothed * durations[:, None]
        labels = np.argmax(smoothed[:, : self.num_labels], axis=1)
        cuts = [0, *(np.flatnonzero(labels[1:] != labels[:-1]) + 1).tolist(), len(labels)]
        for first, last in pairwise(cuts):
            label = int(labels[first])
            if self.current is None or self.current.label != label:
                self._finish()
                self.current = Segment(int(steps.starts[first]), int(steps.ends[last - 1]), label)
                self.current.smoothed, self.current.raw = 0.0, 0.0
            self.current.end = int(steps.ends[last - 1])
            self.current.duration += int(durations[first:last].sum())
            self.current.smoothed = self.current.smoothed + weighted_smoothed[first:last].sum(axis=0)
            self.current.raw = self.current.raw + weighted_raw[first:last].sum(axis=0)

    def close_region(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if self.current is not None:
            self.finished.append(self.current)
            self.current = None


class TimelineAccumulator:
    """Window scores in (one window's `ClipScores`, in the order the windows came), segments out: the emotion and
    gender probabilities averaged where windows overlap and smoothed, the embedding (`embedding_dim` > 0) only
    averaged. `step` and `half` in steps: `STEP_SECONDS` and half of `smoothing_s`."""

    def __init__(self, num_labels: int, num_genders: int, embedding_dim: int, step: int, half: int):
        self.sizes = (num_labels, num_genders, embedding_dim)
        self.averager = OverlapAverager(step, sum(self.sizes))
        self.smoother = Smoother(half, num_labels + num_genders)
        self.merger = SegmentMerger(num_labels)

    @classmethod
    def for_settings(
        cls,
        settings: TimelineSettings,
        sampling_rate: int,
        num_labels: int,
        num_genders: int = 0,
        embedding_dim: int = 0,
    ) -> TimelineAccumulator:
        """The accumulator of `settings` (steps of `STEP_SECONDS`, smoothing over `smoothing_s`) at `sampling_rate`."""
        step, half = round(STEP_SECONDS * sampling_rate), round(settings.smoothing_s / 2 / STEP_SECONDS)
        return cls(num_labels, num_genders, embedding_dim, step, half)

    def values(self, scores: ClipScores) -> np.ndarray:
        """The row the averager and smoother carry for one window: emotion, gender and embedding (those counted by
        `sizes`) side by side, float64; `means` names them again."""
        parts = (scores.emotion, scores.gender, scores.embedding)
        return np.concatenate(
            [np.asarray(part, dtype=np.float64).reshape(-1) for part, size in zip(parts, self.sizes) if size]
        )

    def means(self, segment: Segment) -> ClipScores:
        """A segment's duration-weighted mean scores: emotion and gender smoothed, the embedding averaged."""
        labels, genders, dimension = self.sizes
        smoothed, raw = segment.smoothed / segment.duration, segment.raw / segment.duration
        return ClipScores(
            smoothed[:labels],
            smoothed[labels:] if genders else None,
            raw[labels + genders :] if dimension else None,
        )

    def add(self, start: int, end: int, region_start: int, release: int, region_end: int | None, scores: ClipScores):
        """One window's scores: sample bounds, its region's start, where the region's scores are final before, and
        the region's end when this is its last window (None: the region goes on)."""
        self.averager.add(start, end, region_start, self.values(scores))
        if region_end is not None:
            self.merger.push(*self.smoother.push(self.averager.close(region_end)))
            self.merger.push(*self.smoother.close())
            self.merger.close_region()
        else:
            self.merger.push(*self.smoother.push(self.averager.release(release)))

    def provisional(self, end: int, window: tuple[int, int, int, ClipScores] | None = None) -> Segment | None:
        """The last segment the region in progress would have if it ended at `end`, from the windows added so far
        and `window` (`(start, end, region_start, scores)` of one more, scored only for this); this accumulator is
        unchanged (its stages are copied: a live stream's, which hold a few windows' steps)."""
        preview = copy.deepcopy(self)
        preview.merger.finished = []
        if window is not None:
            preview.averager.add(*window[:3], self.values(window[3]))
        preview.merger.push(*preview.smoother.push(preview.averager.close(end)))
        preview.merger.push(*preview.smoother.close())
        preview.merger.close_region()
        return preview.merger.finished[-1] if preview.merger.finished else None


def segment_entry(
    segment: Segment, means: ClipScores, labels: Sequence[str], gender_labels: Sequence[str] | None, sampling_rate: int
) -> dict:
    """A segment as the timeline reports it: `start`, `end` (s), `label`, `score` (its mean smoothed probability,
    `means` from `TimelineAccumulator.means`) and, with `gender_labels`, `gender`."""
    entry = {
        "start": segment.start / sampling_rate,
        "end": segment.end / sampling_rate,
        "label": labels[segment.label],
        "score": float(means.emotion[segment.label]),
    }
    if gender_labels is not None:
        entry["gender"] = gender_labels[int(np.argmax(means.gender))]
    return entry


__all__ = [
    "SEGMENTATIONS",
    "STEP_SECONDS",
    "VAD_OPTIONS",
    "ClipScores",
    "OverlapAverager",
    "RegionEvent",
    "SegmentMerger",
    "Smoother",
    "SpeechDetector",
    "TimelineAccumulator",
    "TimelineSettings",
    "TimelineStream",
    "Window",
    "WindowPlanner",
    "found_speech_windows",
    "segment_entry",
    "speech_regions",
    "speech_windows",
    "timeline_settings",
    "trim_to_speech",
    "utterance_spans",
]
