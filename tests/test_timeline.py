"""The emotion timeline's torch-free core (speech regions, windows, overlap averaging, smoothing, merging), its
options, its scores (EDER as SpeechBrain's ZED recipe computes it, boundary F1) and its export formats, against
hand-computed cases; streaming (any block sizes) gives what one pass over the whole signal gives."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from gemo_clap.modeling.driver_gemo_clap import Chunk
from gemo_clap.modeling.timeline_gemo_clap import (
    ClipScores,
    SpeechDetector,
    TimelineAccumulator,
    TimelineSettings,
    TimelineStream,
    WindowPlanner,
    timeline_settings,
    utterance_spans,
)
from gemo_clap.train.evaluation.timeline_metrics import boundary_f1, emotion_diarization_error, frame_segments, prepare
from timeline_helpers import FRAME, RATE, EnergyVad, scored_result, silence, tone

from gemo_clap.timeline.exports import render, rttm_id, summary_csv, summary_row, to_csv


# ------------------------------------------------------------------------------------------ speech regions
def run_detector(probabilities, total, **kwargs):
    detector = SpeechDetector(**kwargs)
    events = detector.push(probabilities[:-1])
    detector.limit = total
    events += detector.push(probabilities[-1:]) + detector.finish(total)
    return events


def test_speech_regions_hand_computed():
    probabilities = [0, 0, 0.9, 0.9, 0.9, 0, 0, 0, 0.9, 0.9, 0, 0, 0, 0]  # frames of 100 samples
    common = {"threshold": 0.5, "min_speech": 150, "min_silence": 200, "frame": 100}
    events = run_detector(probabilities, 1400, pad=50, **common)
    # speech 200-500 and 800-1000 (silence ends a region after 200 samples below 0.35), padded by 50 each side
    assert [(e.kind, e.start, e.end) for e in events] == [
        ("open", 150, None),
        ("close", 150, 550),
        ("open", 750, None),
        ("close", 750, 1050),
    ]
    # padding of 200: the 300-sample gap is shorter than two paddings, so the regions meet in its middle
    events = run_detector(probabilities, 1400, pad=200, **common)
    assert [(e.start, e.end) for e in events if e.kind == "close"] == [(0, 650), (650, 1200)]
    # a region not longer than min_speech is dropped: the second one lasts 200 samples
    events = run_detector(probabilities, 1400, pad=50, **{**common, "min_speech": 200})
    assert [(e.start, e.end) for e in events if e.kind == "close"] == [(150, 550)]
    # speech still going at the end of the signal ends there (padding never goes past it)
    events = run_detector([0, 0.9, 0.9, 0.9], 350, pad=50, **common)
    assert [(e.start, e.end) for e in events if e.kind == "close"] == [(50, 350)]


def test_speech_regions_equal_silero_get_speech_timestamps_from_probs():
    utils = pytest.importorskip(
        "silero_vad.utils_vad", reason="silero-vad not installed (pip install 'gemo-clap[timeline]')"
    )
    rng = np.random.default_rng(0)
    for trial in range(400):
        count = int(rng.integers(2, 150))
        probabilities = rng.random(count) if trial % 2 else np.clip(np.cumsum(rng.normal(0, 0.3, count)) % 1.3, 0, 1)
        total = count * FRAME - int(rng.integers(0, FRAME))
        threshold, min_speech_ms, min_silence_ms, pad_ms = (
            float(rng.choice([0.3, 0.5, 0.7])),
            int(rng.choice([0, 100, 250])),
            int(rng.choice([0, 100, 300])),
            int(rng.choice([0, 30, 200])),
        )
        expected = utils.get_speech_timestamps_from_probs(
            list(probabilities),
            threshold=threshold,
            min_speech_duration_ms=min_speech_ms,
            min_silence_duration_ms=min_silence_ms,
            speech_pad_ms=pad_ms,
            audio_length_samples=total,
        )
        events = run_detector(
            probabilities,
            total,
            threshold=threshold,
            min_speech=min_speech_ms * 16,
            min_silence=min_silence_ms * 16,
            pad=pad_ms * 16,
        )
        assert [(e.start, e.end) for e in events if e.kind == "close"] == [(s["start"], s["end"]) for s in expected]


def test_windows_of_a_region():
    planner = WindowPlanner(window=200, hop=50, shortest=10)
    planner.open(1000)
    assert planner.advance(1260) == [(1000, 1200), (1050, 1250)]
    assert planner.release(1260) == 1060  # the next window starts at 1100; the last can start at 1260 - 200
    assert planner.close(1320) == [(1100, 1300), (1120, 1320)]  # the last window ends at the region's end
    planner.open(0)
    assert planner.close(120) == [(0, 120)]  # shorter than a window: one window of what there is
    planner.open(0)
    assert planner.close(5) == []  # shorter than the shortest clip the model scores
    planner.open(0)  # a region ending where a window ends: that window is its last, from close
    assert planner.advance(400) == [(0, 200), (50, 250), (100, 300), (150, 350)]
    assert planner.close(400) == [(200, 400)]


def test_every_region_ends_with_a_window_when_windows_meet_frames():
    """Padding 0 and windows of whole frames: the first region is 128 frames (7680-73216 samples), so a window ends
    where it ends; fed frame by frame, that window is due before the region is known to end. Each region still
    closes with a window."""
    signal = np.concatenate([silence(0.5), tone(4.05), silence(1.0), tone(2.0, 330), silence(0.7)])
    settings = TimelineSettings(window_s=1.024, hop_s=0.512, speech_pad_s=0.0, smoothing_s=0.0)
    for blocks in ([signal.size], [FRAME] * (signal.size // FRAME + 1)):
        windows, _ = stream_windows(signal, blocks, settings)
        regions = [(w.region_start, w.region_end) for w in windows if w.region_end is not None]
        assert len(regions) == 2 and regions[0] == (7680, 73216)
        assert (regions[0][1] - regions[0][0]) % round(settings.hop_s * RATE) == 0
        assert all(
            w.region_start == regions[0][0] for w in windows[: [w.region_end for w in windows].index(regions[0][1]) + 1]
        )


def span_output(start: float, end: float, scores: list[float], kind: str = "span", gender=None) -> tuple:
    """A scored speech span (or whole-input chunk; times in seconds) as the driver's result takes it."""
    chunk = Chunk(kind, round(start * RATE), round(end * RATE), RATE)
    return chunk, ClipScores(np.array(scores), None if gender is None else np.array(gender))


def window_output(window, scores) -> tuple:
    """A scored timeline window as the driver's result takes it."""
    region = (window.region_start, window.release, window.region_end)
    return Chunk("window", window.start, window.end, RATE, *region), ClipScores(np.asarray(scores))


def stream_windows(signal: np.ndarray, blocks: list[int], settings: TimelineSettings):
    stream, windows, position, largest = TimelineStream(settings, RATE, EnergyVad().stream()), [], 0, 0
    for size in blocks:
        windows += stream.push(signal[position : position + size])
        position += size
        largest = max(largest, stream.buffer.size)
    return windows + stream.finish(), largest


def test_streaming_in_any_blocks_gives_the_offline_windows_and_segments():
    signal = np.concatenate([silence(0.7), tone(3.3), silence(0.25), tone(0.6, 330), silence(1.1), tone(7.0, 440)])
    settings = TimelineSettings(window_s=2.0, hop_s=0.5, smoothing_s=0.4, min_silence_s=0.2)
    offline, _ = stream_windows(signal, [signal.size], settings)
    # speech starts in frame 21 (10752 samples, 0.672 s), padded by 0.03 s; windows of 2 s every 0.5 s
    assert [(w.start / RATE, w.end / RATE) for w in offline][:3] == [(0.642, 2.642), (1.142, 3.142), (1.642, 3.642)]
    # the 0.25 s pause holds 6 silent frames before speech returns (0.192 s < min_silence_s): one region; the
    # 1.1 s pause ends it at 4.864 s (first silent frame) + 0.03 s; the last region runs to the end of the signal
    regions = [(w.region_start / RATE, w.region_end / RATE) for w in offline if w.region_end is not None]
    assert regions == [(0.642, 4.894), (5.89, signal.size / RATE)]
    rng = np.random.default_rng(1)
    scores = {}  # a score per window span, whoever asks
    for blocks in ([4000] * (signal.size // 4000 + 1), list(rng.integers(1, 9000, 400)), [511, 513] * 210):
        windows, _ = stream_windows(signal, blocks, settings)
        assert [(w.start, w.end, w.region_start, w.region_end) for w in windows] == [
            (w.start, w.end, w.region_start, w.region_end) for w in offline
        ]
        for ours, theirs in zip(windows, offline):
            np.testing.assert_array_equal(ours.audio, theirs.audio)
            assert ours.release <= ours.end
        outputs = []
        for window in windows:
            scores.setdefault((window.start, window.end), rng.dirichlet([1, 1, 1]))
            outputs.append(window_output(window, scores[(window.start, window.end)]))
        outputs.append(span_output(0.642, 4.894, [0.2, 0.3, 0.5]))
        result = scored_result(outputs, ["a", "b", "c"], None, settings, return_segments=True)
        if blocks[0] == 4000:
            reference = result
        assert [(s["start"], s["end"], s["label"]) for s in result["segments"]] == [
            (s["start"], s["end"], s["label"]) for s in reference["segments"]
        ]
        assert [s["score"] for s in result["segments"]] == pytest.approx([s["score"] for s in reference["segments"]])


def test_the_stream_keeps_a_bounded_amount_of_audio():
    """Ten minutes with a two-minute monologue, fed one second at a time: the buffer stays a few windows long."""
    pieces = [silence(1.0), tone(120.0)] + [piece for _ in range(80) for piece in (silence(1.5), tone(4.5))]
    signal = np.concatenate(pieces)
    settings = TimelineSettings(window_s=2.0, hop_s=0.5)
    windows, largest = stream_windows(signal, [RATE] * (signal.size // RATE + 1), settings)
    assert signal.size > 590 * RATE and len([w for w in windows if w.region_end is not None]) == 81
    assert largest <= 4.5 * RATE  # a 1 s block + the window (2 s) + hop, padding and a frame


# ------------------------------------------------------------------------------------------ scores to segments
WINDOWS = [  # (start, end) in samples, 2 labels; the region is 0-100, steps of 10 samples
    ((0, 40), (1.0, 0.0)),
    ((20, 60), (1.0, 0.0)),
    ((40, 80), (0.3, 0.7)),
    ((60, 100), (0.0, 1.0)),
]


def accumulate(half: int, release: bool) -> TimelineAccumulator:
    accumulator = TimelineAccumulator(num_labels=2, num_genders=0, embedding_dim=0, step=10, half=half)
    for index, ((start, end), values) in enumerate(WINDOWS):
        last = index == len(WINDOWS) - 1
        next_start = WINDOWS[index + 1][0][0] if not last else 100
        accumulator.add(
            start, end, 0, next_start if release else 0, 100 if last else None, ClipScores(np.array(values))
        )
    return accumulator


@pytest.mark.parametrize("release", [True, False])
def test_overlap_average_and_merge_hand_computed(release):
    # steps 0-9 (10 samples each): windows covering them: 1, 1, 1+2, 1+2, 2+3, 2+3, 3+4, 3+4, 4, 4
    # label 0's mean: 1, 1, 1, 1, 0.65, 0.65, 0.15, 0.15, 0, 0 -> label 0 for steps 0-5, label 1 for 6-9
    merger = accumulate(half=0, release=release).merger
    assert [(s.start, s.end, s.label) for s in merger.finished] == [(0, 60, 0), (60, 100, 1)]
    first, second = merger.finished
    assert first.smoothed[0] / first.duration == pytest.approx((4 + 2 * 0.65) / 6)
    assert second.smoothed[1] / second.duration == pytest.approx((2 * 0.85 + 2) / 4)


def test_smoothing_moves_a_boundary_hand_computed():
    # centred mean over 3 steps (cut at the region's edges) of label 0: 1, 1, 1, .883, .767, .483, .3167, .1, .05, 0
    # -> label 0 for steps 0-4, label 1 for 5-9 (raw: 0-5 and 6-9)
    merger = accumulate(half=1, release=True).merger
    assert [(s.start, s.end, s.label) for s in merger.finished] == [(0, 50, 0), (50, 100, 1)]
    smoothed0 = [1, 1, 1, (1 + 1 + 0.65) / 3, (1 + 0.65 + 0.65) / 3]
    assert merger.finished[0].smoothed[0] / 50 == pytest.approx(np.mean(smoothed0))


def test_result_in_seconds_and_no_speech():
    outputs = [(Chunk("window", s, e, RATE, 0, 0, None), ClipScores(np.array(v))) for (s, e), v in WINDOWS]
    outputs[-1] = (Chunk("window", *WINDOWS[-1][0], RATE, 0, 0, 100), outputs[-1][1])
    settings = TimelineSettings(smoothing_s=0.0)
    # the overall scores: the spans' duration-weighted mean (2 s and 1 s), not the windows'
    spans = [span_output(0.0, 2.0, [0.9, 0.1]), span_output(3.0, 4.0, [0.0, 1.0])]
    # steps of 20 ms: the four windows of 40 samples all fall in the first step of the region
    result = scored_result(outputs + spans, ["calm", "angry"], None, settings, return_segments=True)
    assert set(result) == {"scores", "segments", "speech"} and result["speech"] is True
    assert [(s["start"], s["end"], s["label"]) for s in result["segments"]] == [(0.0, 100 / RATE, "calm")]
    assert [(entry["label"], entry["score"]) for entry in result["scores"]] == [
        ("calm", pytest.approx(0.6)),
        ("angry", pytest.approx(0.4)),
    ]
    # no speech: the whole input scored, no segments
    whole = [span_output(0.0, 5.0, [0.3, 0.7], kind="whole", gender=[0.8, 0.2])]
    empty = scored_result(whole, ["calm", "angry"], ["f", "m"], settings, return_segments=True)
    assert empty["segments"] == [] and empty["speech"] is False
    assert [entry["label"] for entry in empty["scores"]] == ["angry", "calm"] and empty["gender"][0]["label"] == "f"
    assert [entry["label"] for entry in scored_result(whole, ["calm", "angry"], None, settings)] == [
        "angry",
        "calm",
    ]


def test_utterance_spans_join_close_regions_up_to_the_maximum():
    # gaps of 5 and 30 samples; at most 10 samples apart joined, up to 100 samples per span
    assert utterance_spans([(0, 40), (45, 60), (90, 120)], 100, 10) == [(0, 60), (90, 120)]
    assert utterance_spans([(0, 40), (45, 60), (65, 130)], 100, 10) == [(0, 60), (65, 130)]  # 130 > 100: not joined
    # a region longer than the maximum: chunk_bounds' rule (the 30-sample tail joins, 130 > 100: two halves)
    assert utterance_spans([(10, 240)], 100, 10) == [(10, 110), (110, 175), (175, 240)]
    assert utterance_spans([], 100, 10) == []


# ------------------------------------------------------------------------------------------ options
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"window_s": 2.0, "hop_s": 3.0}, r"hop_s \(3\) must not exceed window_s \(2\)"),
        ({"window_s": 0.0}, r"window_s must be in \[0.1, 14\] s for this model, got 0"),
        ({"window_s": 20.0}, r"window_s must be in \[0.1, 14\] s for this model, got 20"),
        ({"hop_s": -0.5}, "hop_s must be positive, got -0.5"),
        ({"smoothing_s": -1.0}, "smoothing_s must be >= 0"),
        ({"speech_pad_s": -0.1}, "speech_pad_s must be >= 0"),
        ({"vad_threshold": 1.5}, r"vad_threshold must be in \(0, 1\)"),
        ({"window_s": "2"}, "window_s must be a number"),
        ({"window_s": float("nan")}, "window_s must be a number"),
        ({"segmentation": "chunks"}, r"segmentation must be one of \('vad', 'fixed'\)"),
        ({"segmentation": "vad", "chunk_length_s": 5.0}, "chunk_length_s applies to segmentation='fixed'"),
        ({"segmentation": "fixed", "window_s": 2.0}, "window_s applies to segmentation='vad'"),
    ],
)
def test_bad_options_name_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        timeline_settings(14.0, RATE, **kwargs)


def test_default_segmentation_and_window():
    settings = timeline_settings(14.0, RATE)  # every entry point's protocol: speech found by the VAD
    assert settings.segmentation == "vad" and settings == TimelineSettings()
    assert timeline_settings(14.0, RATE, chunk_length_s=5.0).segmentation == "fixed"  # chunks asked for
    assert timeline_settings(14.0, RATE, vad_available=False).segmentation == "fixed"  # no silero-vad installed
    assert timeline_settings(14.0, 8000).segmentation == "fixed"  # Silero takes 16 kHz
    assert timeline_settings(1.0, RATE).window_s == 1.0  # a model taking 1 s at most
    with pytest.raises(ValueError, match="needs a model at 16000 Hz"):
        timeline_settings(14.0, 8000, segmentation="vad")


# ------------------------------------------------------------------------------------------ EDER and boundary F1
def test_eder_equals_speechbrain_recipe_examples():
    # speechbrain.utils.EDER's doctest: frame predictions n n n a a a (0.2 s frames), angry 0.39-1.10 of 1.22 s
    reference = [(0.0, 0.39, "n"), (0.39, 1.10, "a"), (1.10, 1.22, "n")]
    result = emotion_diarization_error(reference, frame_segments(list("nnnaaa"), 0.2, 0.2))
    assert result["eder"] == pytest.approx(0.2704918032786885)
    # distribute_overlap's doctest: overlaps between emotions split in the middle
    assert prepare([(5.5, 9.0, "s1"), (8.0, 11.0, "s2"), (11.5, 13.0, "s2"), (12.0, 15.0, "s1")]) == [
        (5.5, 8.5, "s1"),
        (8.5, 11.0, "s2"),
        (11.5, 12.5, "s2"),
        (12.5, 15.0, "s1"),
    ]
    # overlapping frames of one emotion are joined: windows of 0.4 s every 0.2 s
    assert prepare(frame_segments(list("aab"), 0.4, 0.2)) == [
        (0.0, pytest.approx(0.5), "a"),
        (pytest.approx(0.5), 0.8, "b"),
    ]


def test_eder_counts_missed_false_alarm_and_confusion():
    reference = [(1.0, 3.0, "angry"), (4.0, 6.0, "sad")]
    hypothesis = [(0.5, 3.5, "angry"), (4.0, 5.0, "angry")]
    result = emotion_diarization_error(reference, hypothesis)
    # missed 5-6, false alarm 0.5-1 and 3-3.5, confusion 4-5: 3 s over 4 s of speech
    assert (result["missed"], result["false_alarm"], result["confusion"], result["speech"]) == (1.0, 1.0, 1.0, 4.0)
    assert result["eder"] == 0.75
    assert emotion_diarization_error(reference, [])["eder"] == 1.0
    assert emotion_diarization_error(reference, reference)["eder"] == 0.0


def test_boundary_f1_at_half_a_second():
    reference = [(1.0, 3.0, "angry"), (4.0, 6.0, "sad")]  # boundaries 1, 3, 4, 6
    hypothesis = [(0.5, 3.5, "angry"), (4.0, 5.0, "angry")]  # 0.5, 3.5, 4, 5: 6 has none within 0.5 s
    assert boundary_f1(reference, hypothesis) == {"precision": 0.75, "recall": 0.75, "f1": 0.75, "hits": 3}
    # segments that meet share a boundary; a prediction matches one reference boundary at most
    touching = [(0.9, 2.0, "a"), (2.0, 3.1, "b"), (3.9, 6.0, "sad")]  # 0.9, 2, 3.1, 3.9, 6
    assert boundary_f1(reference, touching) == {"precision": 0.8, "recall": 1.0, "f1": pytest.approx(8 / 9), "hits": 4}
    assert boundary_f1(reference, [(1.0, 1.2, "a")])["hits"] == 1  # 1.0 and 1.2 both near 1: one hit


# ------------------------------------------------------------------------------------------ export formats
RESULT = {
    "file": "calls/monday call.wav",
    "duration": 3725.5,
    "speech": True,
    "speech_seconds": 4.25,
    "scores": [{"label": "angry", "score": 0.7}, {"label": "sad", "score": 0.3}],
    "segments": [
        {"start": 0.5, "end": 2.25, "label": "angry", "score": 0.81, "gender": "female"},
        {"start": 3661.001, "end": 3663.5, "label": "sad", "score": 0.625, "gender": "male"},
    ],
    "gender": "female",
}
CLOCK = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def seconds(match: re.Match, offset: int) -> float:
    hours, minutes, secs, millis = (int(match.group(offset + i)) for i in range(4))
    return hours * 3600 + minutes * 60 + secs + millis / 1000


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_parse(fmt):
    text = render(RESULT, fmt)
    if fmt == "vtt":
        assert text.startswith("WEBVTT\n\n")
        text = text[len("WEBVTT\n\n") :]
    cues = [block.splitlines() for block in text.strip().split("\n\n")]
    assert len(cues) == 2
    for number, (cue, segment) in enumerate(zip(cues, RESULT["segments"]), start=1):
        if fmt == "srt":
            assert cue[0] == str(number)
            cue = cue[1:]
        match = re.fullmatch(CLOCK + " --> " + CLOCK, cue[0])
        assert match and ("," in cue[0]) == (fmt == "srt")
        assert (seconds(match, 1), seconds(match, 5)) == (segment["start"], segment["end"])
        assert cue[1] == f"{segment['label']} {segment['score']:.2f}, {segment['gender']}"
    assert "01:01:01,001 --> 01:01:03,500" in render(RESULT, "srt")


def test_rttm_csv_and_json_parse():
    lines = render(RESULT, "rttm").splitlines()
    fields = [line.split() for line in lines]
    assert [len(f) for f in fields] == [10, 10] and {f[0] for f in fields} == {"SPEAKER"}
    assert [(f[1], float(f[3]), float(f[4]), f[7]) for f in fields] == [
        ("monday_call", 0.5, 1.75, "angry"),
        ("monday_call", 3661.001, 2.499, "sad"),
    ]
    assert rttm_id("C:\\calls\\a b.flac") == "a_b"
    rows = list(csv.DictReader(io.StringIO(to_csv([RESULT, {**RESULT, "file": "b.wav", "segments": []}]))))
    assert [(r["file"], float(r["start"]), r["label"], r["gender"]) for r in rows] == [
        ("calls/monday call.wav", 0.5, "angry", "female"),
        ("calls/monday call.wav", 3661.001, "sad", "male"),
    ]
    assert json.loads(render(RESULT, "json")) == RESULT
    summary = list(
        csv.DictReader(
            io.StringIO(summary_csv([summary_row(RESULT, "a.wav", "done"), summary_row(None, "b.wav", "error", "x")]))
        )
    )
    assert summary[0]["label"] == "angry" and summary[0]["segments"] == "2" and summary[1]["error"] == "x"
