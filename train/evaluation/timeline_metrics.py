"""Scores of an emotion timeline against reference segments: the emotion diarization error rate (EDER) of
SpeechBrain's ZED recipe (Wang et al., "Speech Emotion Diarization", 2023) and segment-boundary F1.

EDER = (missed speech + false alarm + emotion confusion) / reference speech time, measured on time: reference speech
without a predicted emotion is missed, a predicted emotion where the reference has no speech a false alarm, speech
with another emotion than the reference's a confusion. Predictions are prepared as the recipe does: neighbouring
segments with one emotion are joined and where two segments with different emotions overlap the overlap is split
between them in the middle. With a reference that covers the whole utterance (ZED) this equals the recipe's
`1 - correctly labelled time / duration`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import pairwise

Span = tuple[float, float, str]  # (start_s, end_s, label)


def frame_segments(labels: Sequence[str], window: float, stride: float) -> list[Span]:
    """Frame-wise predictions (one label per `window` seconds every `stride`) as segments, the recipe's input."""
    return [(stride * index, stride * index + window, label) for index, label in enumerate(labels)]


def prepare(segments: Sequence[Span]) -> list[Span]:
    """Sorted segments with neighbours of one emotion joined (when they touch or overlap) and overlaps between
    different emotions split in the middle, as SpeechBrain's `merge_ssegs_same_emotion_adjacent` and
    `distribute_overlap` do."""
    merged: list[list] = []
    for start, end, label in sorted(segments, key=lambda s: (s[0], s[1])):
        if merged and merged[-1][2] == label and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, label])
    for previous, following in pairwise(merged):
        if following[0] < previous[1]:
            middle = (following[0] + previous[1]) / 2
            previous[1], following[0] = middle, middle
    return [(start, end, label) for start, end, label in merged if end > start]


def _label_at(segments: Sequence[Span], starts: Sequence[float], time: float) -> str | None:
    """The label of the (sorted, non-overlapping) segment holding `time`, if any."""
    index = bisect_right(starts, time) - 1
    return segments[index][2] if index >= 0 and time < segments[index][1] else None


def emotion_diarization_error(reference: Sequence[Span], hypothesis: Sequence[Span]) -> dict[str, float]:
    """`missed`, `false_alarm`, `confusion` (seconds), `speech` (reference speech, s) and `eder` (their sum over
    `speech`). `reference`: non-overlapping `(start, end, label)`; `hypothesis`: predicted segments (prepared with
    `prepare`)."""
    reference = sorted(reference)
    hypothesis = prepare(hypothesis)
    points = sorted({t for start, end, _ in (*reference, *hypothesis) for t in (start, end)})
    reference_starts, hypothesis_starts = [s[0] for s in reference], [s[0] for s in hypothesis]
    missed = false_alarm = confusion = 0.0
    for left, right in pairwise(points):
        middle = (left + right) / 2
        truth = _label_at(reference, reference_starts, middle)
        guess = _label_at(hypothesis, hypothesis_starts, middle)
        if truth is not None and guess is None:
            missed += right - left
        elif truth is None and guess is not None:
            false_alarm += right - left
        elif truth is not None and truth != guess:
            confusion += right - left
    speech = sum(end - start for start, end, _ in reference)
    errors = missed + false_alarm + confusion
    return {
        "missed": missed,
        "false_alarm": false_alarm,
        "confusion": confusion,
        "speech": speech,
        "eder": errors / speech if speech > 0 else float(errors > 0),
    }


def boundaries(segments: Sequence[Span], merge_within: float = 1e-6) -> list[float]:
    """The distinct start and end times of `segments` (two segments that meet make one boundary)."""
    points: list[float] = []
    for time in sorted(t for start, end, _ in segments for t in (start, end)):
        if not points or time - points[-1] > merge_within:
            points.append(time)
    return points


def boundary_f1(reference: Sequence[Span], hypothesis: Sequence[Span], tolerance: float = 0.5) -> dict[str, float]:
    """Precision, recall and F1 of the predicted segment boundaries against the reference's: a boundary is found
    when a predicted one lies within `tolerance` seconds, each matched at most once (a maximum matching: on a line,
    matching every reference boundary in time order to the earliest free prediction in reach is optimal)."""
    truth, guesses = boundaries(reference), boundaries(hypothesis)
    hits, next_guess = 0, 0
    for time in truth:
        while next_guess < len(guesses) and guesses[next_guess] < time - tolerance:
            next_guess += 1
        if next_guess < len(guesses) and guesses[next_guess] <= time + tolerance:
            hits += 1
            next_guess += 1
    precision = hits / len(guesses) if guesses else float(not truth)
    recall = hits / len(truth) if truth else float(not guesses)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "hits": hits}
