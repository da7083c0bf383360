"""Live emotion timelines (`EmotionStream`): fed a signal's frames of any size, its final segments are the offline
timeline's; its events come in order, at every hop, within a bounded delay of the audio; closing flushes the open
segment; its state stays bounded over a long stream; bad frames are clear errors; and the torch pipeline's and the
ONNX runner's streams give the offline segments on real speech."""

from __future__ import annotations

import importlib.util
from itertools import pairwise

import numpy as np
import pytest
import soundfile as sf
from gemo_clap.modeling.driver_gemo_clap import ZeroShotDriver
from gemo_clap.modeling.streaming_gemo_clap import EmotionStream, WindowScorer
from gemo_clap.modeling.timeline_gemo_clap import ClipScores, TimelineSettings
from helpers import EMODB_WAV as EMODB
from timeline_helpers import FRAME, RATE, EnergyVad, scored_result, silence, tone

FREQUENCIES = np.array([200.0, 330.0, 440.0])  # the tone scorer's "emotions"
LABELS, GENDERS = ["low", "mid", "high"], ["female", "male"]
SETTINGS = TimelineSettings(window_s=2.0, hop_s=0.5, smoothing_s=1.0, min_silence_s=0.2)
needs_emodb = pytest.mark.skipif(not EMODB.is_dir(), reason=f"needs real speech: {EMODB} is absent")
needs_silero = pytest.mark.skipif(
    importlib.util.find_spec("silero_vad") is None,
    reason="silero-vad is not installed (pip install 'gemo-clap[timeline]')",
)


def tone_scores(clips: list[np.ndarray]) -> ClipScores:
    """Probabilities peaked at the tone frequency nearest a clip's frequency; "gender" from its loudness."""
    rows, genders = [], []
    for clip in clips:
        peak = np.count_nonzero(np.diff(np.signbit(clip))) * RATE / (2 * clip.size)  # zero crossings
        logits = -(((peak - FREQUENCIES) / 80.0) ** 2) + 0.01 * np.arange(3)
        rows.append(np.exp(logits) / np.exp(logits).sum())
        loud = float(np.sqrt(np.mean(clip**2)) > 0.15)
        genders.append([0.3 + 0.4 * loud, 0.7 - 0.4 * loud])
    return ClipScores(np.asarray(rows, dtype=np.float32), np.asarray(genders, dtype=np.float32))


SCORER = WindowScorer(tone_scores, LABELS, GENDERS, RATE)


def conversation() -> np.ndarray:
    """Tones (speech, for `EnergyVad`): 0.6 s silence, 3 s at 200 Hz then 4 s at 440 Hz (one region, two
    emotions), 1 s silence, 0.4 s (shorter than a window), 1.2 s silence, 5 s at 330 Hz, 0.8 s silence."""
    return np.concatenate(
        [
            silence(0.6),
            tone(3.0, 200),
            tone(4.0, 440),
            silence(1.0),
            tone(0.4, 330),
            silence(1.2),
            tone(5.0, 330) * 0.4,
            silence(0.8),
        ]
    )


def offline(audio, settings: TimelineSettings = SETTINGS) -> list[dict]:
    """The offline timeline's segments of `audio` under the tone scorer (the pipeline's and the runner's path)."""
    driver = ZeroShotDriver(RATE, 14.0, resolve_prompts=None)
    driver.vad = EnergyVad()
    scored = [(chunk, tone_scores([clip]).rows()[0]) for chunk, clip in driver.chunks(audio, settings)]
    return scored_result(scored, LABELS, GENDERS, settings, return_segments=True)["segments"]


def fed(stream: EmotionStream, signal: np.ndarray, sizes) -> list[tuple[float, list[dict]]]:
    """(seconds pushed so far, the events returned) of each push of `signal` in frames of `sizes` (cycled), then
    of `close()`."""
    log, position, sizes = [], 0, list(sizes)
    rate = stream.sampling_rate
    while position < signal.size:
        size = int(sizes[len(log) % len(sizes)])
        log.append(((position + size) / rate, stream.push(signal[position : position + size])))
        position += size
    return [*log, (signal.size / rate, stream.close())]


def finals(log) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "event"} for _, events in log for e in events if e["event"] == "final"]


def assert_same_segments(ours: list[dict], theirs: list[dict], tolerance: float = 1e-12) -> None:
    """Bounds, labels and genders equal; scores within `tolerance`. Each time step's scores are the same numbers
    whatever the frames, but a segment's score sums its steps in the groups they were released in (which follow
    the frames): 1e-12 covers that rounding; models that batch windows differently need 1e-5."""
    assert [(s["start"], s["end"], s["label"], s.get("gender")) for s in ours] == [
        (s["start"], s["end"], s["label"], s.get("gender")) for s in theirs
    ]
    assert [s["score"] for s in ours] == pytest.approx([s["score"] for s in theirs], abs=tolerance)


@pytest.mark.parametrize("sizes", [[160], [RATE * 30], "random"], ids=["10ms", "whole", "random"])
def test_final_segments_equal_the_offline_timeline(sizes):
    signal = conversation()
    if sizes == "random":
        sizes = np.random.default_rng(0).integers(1, 3 * RATE, 200)
    expected = offline(signal)
    # the first region changes emotion twice (the windows straddling 200 and 440 Hz read as 330 Hz); the 0.4 s
    # tone is one window (its silent edges lower its frequency)
    assert [s["label"] for s in expected] == ["low", "mid", "high", "low", "mid"]
    assert expected[0]["end"] == expected[1]["start"] and expected[1]["end"] == expected[2]["start"]
    assert expected[2]["end"] < expected[3]["start"]
    stream = EmotionStream(SCORER, EnergyVad(), SETTINGS, RATE)
    assert_same_segments(finals(fed(stream, signal, sizes)), expected)


def test_events_come_in_order_at_every_hop_and_soon_after_the_speech():
    signal, hop = conversation(), SETTINGS.hop_s
    log = fed(EmotionStream(SCORER, EnergyVad(), SETTINGS, RATE), signal, [160])
    regions = []  # the speech regions: runs of offline segments that meet
    for segment in offline(signal):
        if regions and regions[-1][1] == segment["start"]:
            regions[-1][1] = segment["end"]
        else:
            regions.append([segment["start"], segment["end"]])
    assert len(regions) == 3
    events = [(pushed, event) for pushed, batch in log for event in batch]
    assert all(set(e) == {"event", "start", "end", "label", "score", "gender"} for _, e in events)
    for region_start, region_end in regions:
        inside = [(p, e) for p, e in events if region_start - 0.05 <= e["start"] and e["end"] <= region_end + 0.05]
        partials = [(p, e) for p, e in inside if e["event"] == "partial"]
        last_final = max(p for p, e in inside if e["event"] == "final")
        # a provisional label every hop (the first one hop after the region opens), never ahead of the audio
        assert all(e["end"] <= p + 1e-9 and e["start"] < e["end"] for p, e in partials)
        assert all(p < last_final for p, _ in partials)
        ends = [e["end"] for _, e in partials]
        if region_end - region_start > 1.0:
            assert ends[0] - region_start <= hop + FRAME / RATE + 1e-9
            assert all(0 < b - a <= hop + FRAME / RATE + 1e-9 for a, b in pairwise(ends))
        # the region's last final comes once min_silence_s of silence (and a frame) has been heard after it
        assert last_final - region_end <= SETTINGS.min_silence_s + 2 * FRAME / RATE + 0.011
    # finals are time-ordered and never overlap
    final_spans = [(e["start"], e["end"]) for _, e in events if e["event"] == "final"]
    assert final_spans == sorted(final_spans) and all(a[1] <= b[0] for a, b in pairwise(final_spans))


def test_close_flushes_the_open_segment_and_ends_the_stream():
    signal = np.concatenate([silence(0.5), tone(4.0, 440)])  # speech until the very end
    stream = EmotionStream(SCORER, EnergyVad(), SETTINGS, RATE)
    before = [e for start in range(0, signal.size, 800) for e in stream.push(signal[start : start + 800])]
    assert {e["event"] for e in before} == {"partial"}  # nothing final while the speech goes on
    flushed = stream.close()
    assert [e["event"] for e in flushed] == ["final"] and flushed[0]["end"] == signal.size / RATE
    assert_same_segments([{k: v for k, v in e.items() if k != "event"} for e in flushed], offline(signal))
    with pytest.raises(ValueError, match=r"push\(\) on a closed stream"):
        stream.push(tone(0.5))
    assert stream.close() == []
    quiet = EmotionStream(SCORER, EnergyVad(), SETTINGS, RATE)  # no speech at all: no events
    assert quiet.push(silence(3.0)) == [] and quiet.close() == []


def test_state_stays_bounded_over_a_long_stream():
    """20 minutes (a 2-minute monologue early, then turns of 1-6 s between pauses) in 0.25 s frames: the audio
    and scores held stay within a few windows, the same late in the stream as in its first minutes."""
    rng = np.random.default_rng(3)
    pieces = [silence(1.0), tone(120.0, 200)]
    while sum(p.size for p in pieces) < 20 * 60 * RATE:
        pieces += [silence(rng.uniform(0.3, 2.0)), tone(rng.uniform(1.0, 6.0), rng.choice(FREQUENCIES))]
    signal = np.concatenate(pieces)
    stream = EmotionStream(SCORER, EnergyVad(), SETTINGS, RATE)
    early, late, finished = {}, {}, 0
    frame = RATE // 4
    for start in range(0, signal.size, frame):
        finished += sum(e["event"] == "final" for e in stream.push(signal[start : start + frame]))
        held = stream.buffered()
        assert held["segments"] == 0  # every segment decided was returned
        target = early if start < 5 * 60 * RATE else late
        for key, value in held.items():
            target[key] = max(target.get(key, 0), value)
    finished += len(stream.close())
    assert finished > 200
    # audio: a frame + a window + a hop + padding and a VAD frame; scores: a window and a hop of 20 ms steps, plus
    # the smoothing's context
    assert early["audio_samples"] <= frame + (SETTINGS.window_s + SETTINGS.hop_s + 0.1) * RATE
    assert early["score_steps"] <= (SETTINGS.window_s + SETTINGS.hop_s + SETTINGS.smoothing_s) / 0.02 + 2
    assert late["audio_samples"] <= early["audio_samples"] and late["score_steps"] <= early["score_steps"]


def test_another_sampling_rate_is_resampled_as_offline():
    """Frames at 44.1 kHz: the segments of the signal resampled whole (librosa, soxr_hq), to the sample."""
    import librosa

    signal = librosa.resample(conversation(), orig_sr=RATE, target_sr=44100)
    expected = offline({"array": signal, "sampling_rate": 44100})
    stream = EmotionStream(SCORER, EnergyVad(), SETTINGS, 44100)
    sizes = np.random.default_rng(1).integers(1, 20000, 100)
    assert_same_segments(finals(fed(stream, signal, sizes)), expected)


def test_ffmpeg_microphone_live_items():
    """Items as transformers' `ffmpeg_microphone_live` makes them (partial items growing to a chunk, chunks
    overlapping by their strides): the samples of the signal once each, so the plain signal's segments."""
    from transformers.pipelines.audio_utils import chunk_bytes_iter

    signal = conversation()
    size = 4  # float32
    reads = (signal[start : start + 800].tobytes() for start in range(0, signal.size, 800))  # ffmpeg's reads
    stream = EmotionStream(SCORER, EnergyVad(), SETTINGS, RATE)
    events = []
    for item in chunk_bytes_iter(reads, 8000 * size, stride=(1000 * size, 500 * size), stream=True):
        item["raw"] = np.frombuffer(item["raw"], dtype=np.float32)
        item["stride"] = (item["stride"][0] // size, item["stride"][1] // size)
        item["sampling_rate"] = RATE
        events += stream.push(item)
    assert_same_segments(finals([(0, events + stream.close())]), offline(signal))


@pytest.mark.parametrize(
    "frames, message",
    [
        (np.zeros((2, 3, 160), np.float32), "frames has 3 dimensions"),
        (np.array([0.1, np.nan] * 80, np.float32), "frames contains NaN or infinite samples"),
        (np.full(160, np.inf, np.float32), "frames contains NaN or infinite samples"),
        (np.zeros(160, np.complex64), "frames has dtype complex64"),
        (np.array(["a"] * 160), "frames has dtype <U1"),
        (b"\x00\x01" * 160, "frames must be a numpy array, torch tensor or list of samples, got bytes"),
        ({"raw": np.zeros(160, np.float32), "sampling_rate": 8000}, "frames at 8000 Hz pushed into a stream at"),
        ({"raw": np.zeros(160, np.float32)}, "a frames dict needs a 'sampling_rate' key"),
    ],
)
def test_bad_frames_are_clear_errors_and_change_nothing(frames, message):
    signal = conversation()
    stream = EmotionStream(SCORER, EnergyVad(), SETTINGS, RATE)
    half = signal.size // 2
    events = stream.push(signal[:half])
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        stream.push(frames)
    events += stream.push(np.zeros(0, np.float32)) + stream.push(signal[half:]) + stream.close()
    assert_same_segments(finals([(0, events)]), offline(signal))


def test_bad_stream_settings():
    with pytest.raises(ValueError, match="sampling_rate must be a positive integer, got 0"):
        EmotionStream(SCORER, EnergyVad(), SETTINGS, 0)
    with pytest.raises(ValueError, match="sampling_rate must be a positive integer, got 16000.0"):
        EmotionStream(SCORER, EnergyVad(), SETTINGS, 16000.0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        EmotionStream(SCORER, EnergyVad(), SETTINGS, RATE, batch_size=0)
    with pytest.raises(ValueError, match="a stream needs segmentation='vad'"):
        EmotionStream(SCORER, EnergyVad(), TimelineSettings("fixed", chunk_length_s=5.0), RATE)


# ------------------------------------------------------------------------------------------ torch and ONNX
@pytest.fixture(scope="module")
def ml_checkpoint(tiny_checkpoint):
    return tiny_checkpoint("wavlm", variant="ml", logit_scale_init=100.0, max_audio_seconds=6.0)


@pytest.mark.usefixtures("one_torch_thread")
def test_pipeline_stream_gives_the_pipelines_segments(ml_checkpoint):
    import torch

    from gemo_clap.loading import load_classifier

    pipe = load_classifier(str(ml_checkpoint), False)
    pipe.driver.vad = EnergyVad()
    options = {"window_s": 2.0, "hop_s": 0.5, "smoothing_s": 1.0}
    signal = conversation()
    with torch.no_grad():
        expected = pipe(signal, return_segments=True, return_gender=True, batch_size=4, **options)["segments"]
    stream = pipe.stream(sampling_rate=RATE, return_gender=True, **options)
    log = fed(stream, signal, [1600])
    assert_same_segments(finals(log), expected, 1e-5)
    assert {e["event"] for _, events in log for e in events} == {"partial", "final"}
    with pytest.raises(ValueError, match=r"hop_s \(3\) must not exceed window_s \(2\)"):
        pipe.stream(window_s=2.0, hop_s=3.0)
    with pytest.raises(TypeError, match=r"unexpected stream option\(s\) \['window'\]"):
        pipe.stream(window=2.0)
    with pytest.raises(ValueError, match="sampling_rate must be a positive integer"):
        pipe.stream(sampling_rate=-1)


CLIPS = ["03a01Fa.wav", "03a01Nc.wav", "03a02Wc.wav", "08a01Lc.wav", "03a04Lc.wav", "09b02Tb.wav"]


@needs_emodb
@needs_silero
@pytest.mark.usefixtures("one_torch_thread")
def test_streams_give_the_offline_segments_on_real_speech(tiny_checkpoint, tmp_path):
    """EmoDB utterances between silences (a file): the torch pipeline's stream fed 20 ms frames, and frames of
    random sizes, gives the segments the pipeline gives the file, with the real Silero VAD; so does the ONNX
    runner's stream against the runner."""
    import torch

    from gemo_clap.loading import load_classifier

    checkpoint = tiny_checkpoint("whisper", variant="ml", logit_scale_init=100.0)
    gaps = [0.8, 0.5, 1.5, 0.3, 1.0, 0.7, 0.6]
    parts = [silence(gaps[0])]
    for name, gap in zip(CLIPS, gaps[1:]):
        parts += [sf.read(EMODB / name, dtype="float32")[0], silence(gap)]
    signal = np.concatenate(parts)
    wav = tmp_path / "conversation.wav"
    sf.write(wav, signal, RATE, subtype="PCM_16")
    pcm = sf.read(wav, dtype="int16")[0]  # what a live source would send
    options = {"return_gender": True, "window_s": 1.5, "hop_s": 0.5}
    pipe = load_classifier(str(checkpoint), False)
    with torch.no_grad():
        expected = pipe(str(wav), return_segments=True, batch_size=4, **options)["segments"]
    assert len(expected) >= len(CLIPS)
    for sizes in ([320], np.random.default_rng(2).integers(160, 2 * RATE, 100)):
        assert_same_segments(finals(fed(pipe.stream(**options), pcm, sizes)), expected, 1e-5)

    pytest.importorskip("onnx", reason="export-onnx needs onnx (pip install 'gemo-clap[onnx]')")
    from gemo_clap.onnx.export import export_onnx
    from gemo_clap.onnx.runtime import GEmoClapOnnxRunner

    export_onnx(checkpoint, tmp_path / "export")
    runner = GEmoClapOnnxRunner(tmp_path / "export", num_threads=1)
    assert_same_segments(runner(str(wav), return_segments=True, **options)["segments"], expected, 1e-4)
    ours = finals(fed(runner.stream(**options), pcm, [320]))
    assert_same_segments(ours, runner(str(wav), return_segments=True, batch_size=4, **options)["segments"], 1e-5)
