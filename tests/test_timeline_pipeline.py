"""The emotion timeline through the standard pipeline, the ONNX runner and `gemo-clap predict`: Silero VAD's
boundaries on real EmoDB speech, one output schema, the same segments from torch and onnxruntime, bad input, and
`predict` on folders (output files, formats, embeddings, plots, resuming, unreadable files)."""

from __future__ import annotations

import csv
import importlib.util
import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from gemo_clap.modeling import driver_gemo_clap, vad_gemo_clap
from helpers import EMODB_WAV as EMODB
from timeline_helpers import EnergyVad, silence, tone

from gemo_clap.cli import main
from gemo_clap.loading import load_classifier
from gemo_clap.timeline.result import NO_SPEECH_NOTE

RATE = 16000
needs_emodb = pytest.mark.skipif(not EMODB.is_dir(), reason=f"needs real speech: {EMODB} is absent")
needs_silero = pytest.mark.skipif(
    importlib.util.find_spec("silero_vad") is None,
    reason="silero-vad is not installed (pip install 'gemo-clap[timeline]')",
)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ml_checkpoint(tiny_checkpoint):
    return tiny_checkpoint("wavlm", variant="ml", logit_scale_init=100.0, max_audio_seconds=6.0)


@pytest.fixture(scope="module")
def pipe(ml_checkpoint):
    """The pipeline of a tiny ML checkpoint with an energy-based speech detector (tones count as speech)."""
    classifier = load_classifier(str(ml_checkpoint), False)
    classifier.driver.vad = EnergyVad()
    return classifier


def conversation() -> np.ndarray:
    """Tones (speech, for `EnergyVad`) of 2.5, 0.5 and 7 s between silences: 0.4 + 2.5 + 1 + 0.5 + 1.2 + 7 + 0.6 s."""
    parts = [silence(0.4), tone(2.5, 180), silence(1.0), tone(0.5, 300), silence(1.2), tone(7.0, 420), silence(0.6)]
    return np.concatenate(parts)


def check_timeline(result: dict, labels: list[str], duration: float) -> None:
    """The output schema: ranked scores summing to 1 and time-ordered, non-overlapping segments with a label among
    `labels`, a score in (0, 1] and (ML) a gender."""
    assert set(result) >= {"scores", "segments", "speech"} and result["speech"] is True
    assert sorted(e["label"] for e in result["scores"]) == sorted(labels)
    assert sum(e["score"] for e in result["scores"]) == pytest.approx(1.0, abs=1e-6)
    segments = result["segments"]
    assert segments and all(set(s) == {"start", "end", "label", "score", "gender"} for s in segments)
    assert all(0 <= s["start"] < s["end"] <= duration for s in segments)
    assert all(a["end"] <= b["start"] for a, b in pairwise(segments))
    assert all(s["label"] in labels and 0 < s["score"] <= 1 and s["gender"] in ("female", "male") for s in segments)


# ------------------------------------------------------------------------------------------ real speech
@needs_emodb
@needs_silero
def test_vad_boundaries_on_real_speech_within_a_tenth_of_a_second(ml_checkpoint):
    """Four EmoDB utterances (trimmed to their speech) between known silences: one segment each, edges within 0.1 s."""
    clips = [speech_only(sf.read(EMODB / name, dtype="float32")[0]) for name in CLIPS]
    gaps = [0.8, 1.2, 0.6, 1.5, 0.9]
    parts, truth, position = [], [], 0.0
    for gap, clip in zip(gaps, clips):
        parts += [silence(gap), clip]
        truth.append((position + gap, position + gap + clip.size / RATE))
        position += gap + clip.size / RATE
    signal = np.concatenate([*parts, silence(gaps[-1])])
    classifier = load_classifier(str(ml_checkpoint), False)  # the real Silero VAD
    result = classifier(signal, return_segments=True, window_s=6.0, min_silence_s=0.3, speech_pad_s=0.03)
    regions = [(s["start"], s["end"]) for s in result["segments"]]
    assert len(regions) == len(truth)
    errors = [abs(a - b) for region, expected in zip(regions, truth) for a, b in zip(region, expected)]
    print(f"VAD boundary errors (s): {np.round(errors, 3).tolist()}")
    assert max(errors) <= 0.1
    speech = sum(end - start for start, end in truth)
    assert sum(end - start for start, end in regions) == pytest.approx(speech, abs=0.4)


CLIPS = ["03a01Fa.wav", "03a01Nc.wav", "03a02Wc.wav", "03a04Lc.wav"]


def speech_only(clip: np.ndarray, top_db: float = 30.0, frame: int = 2048, hop: int = 512) -> np.ndarray:
    """The clip from its first to its last frame within `top_db` of its loudest (librosa.effects.trim's rule)."""
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(clip, frame // 2), frame)[::hop]
    loud = np.flatnonzero(
        20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-10)
        > -top_db + 20 * np.log10(np.sqrt((frames**2).mean(axis=1)).max())
    )
    return clip[loud[0] * hop : min(clip.size, (loud[-1] + 1) * hop)]


@needs_silero
def test_silence_and_noise_are_no_speech(ml_checkpoint):
    classifier = load_classifier(str(ml_checkpoint), False)
    noise = (0.05 * np.random.default_rng(0).standard_normal(5 * RATE)).astype(np.float32)
    for signal in (silence(4.0), noise):
        result = classifier(signal, return_segments=True, return_gender=True, return_timestamps=True)
        assert (result["segments"], result["chunks"], result["speech"]) == ([], [], False)
        whole = classifier(signal, segmentation="fixed", return_gender=True)  # no speech: the input scored whole
        assert (result["scores"], result["gender"]) == (whole["scores"], whole["gender"])
        assert [span["timestamp"] for span in result["spans"]] == [(0.0, signal.size / RATE)]


@needs_emodb
@needs_silero
def test_pipeline_and_onnx_runner_give_the_same_segments_on_real_speech(tiny_checkpoint, tmp_path):
    pytest.importorskip("onnx", reason="export-onnx needs onnx (pip install 'gemo-clap[onnx]')")
    from gemo_clap.onnx.export import export_onnx
    from gemo_clap.onnx.runtime import GEmoClapOnnxRunner

    checkpoint = tiny_checkpoint("whisper", variant="ml", logit_scale_init=100.0)
    export_onnx(checkpoint, tmp_path / "export")
    assert (tmp_path / "export" / vad_gemo_clap.VAD_MODEL_FILE).is_file()
    assert "MIT License" in (tmp_path / "export" / vad_gemo_clap.VAD_LICENSE_FILE).read_text()
    signal = np.concatenate(
        [silence(0.5), *(part for name in CLIPS for part in (sf.read(EMODB / name)[0], silence(0.7)))]
    )
    wav = tmp_path / "conversation.wav"
    sf.write(wav, signal.astype(np.float32), RATE)
    options = {"return_segments": True, "return_gender": True, "window_s": 1.0, "hop_s": 0.25, "batch_size": 4}
    with torch.no_grad():
        theirs = load_classifier(str(checkpoint), False)(str(wav), **options)
    ours = GEmoClapOnnxRunner(tmp_path / "export", num_threads=1)(str(wav), **options)
    assert len(theirs["segments"]) >= len(CLIPS)
    assert_same_segments(ours, theirs)


def assert_same_segments(ours: dict, theirs: dict) -> None:
    assert [(s["start"], s["end"], s["label"], s["gender"]) for s in ours["segments"]] == [
        (s["start"], s["end"], s["label"], s["gender"]) for s in theirs["segments"]
    ]
    assert [s["score"] for s in ours["segments"]] == pytest.approx([s["score"] for s in theirs["segments"]], abs=1e-4)
    assert {e["label"]: e["score"] for e in ours["scores"]} == pytest.approx(
        {e["label"]: e["score"] for e in theirs["scores"]}, abs=1e-4
    )


# ------------------------------------------------------------------------------------------ pipeline
def test_timeline_schema_speech_only_and_short_speech(pipe):
    signal = conversation()  # tones at 0.4-2.9, 3.9-4.4 and 5.6-12.6 s
    options = {"return_segments": True, "return_gender": True, "window_s": 2.0, "hop_s": 0.5}
    result = pipe(signal, return_timestamps=True, **options)
    check_timeline(result, pipe.model.config.emotion_labels, signal.size / RATE)
    segments, chunks = result["segments"], result["chunks"]
    # speech only (a frame of 32 ms and the 0.03 s padding from the tones' edges): no segment in the silences
    for start, end in [(0.0, 0.33), (2.97, 3.83), (4.47, 5.53), (12.67, 13.2)]:
        assert all(s["end"] <= start or s["start"] >= end for s in segments), (start, end)
    # the 0.5 s tone is shorter than a window: one window (and one segment) of what there is
    short = [c["timestamp"] for c in chunks if 3.8 < c["timestamp"][0] < 4.0]
    assert len(short) == 1 and 0.5 < short[0][1] - short[0][0] < 0.65
    assert sum(s["start"] < 4.5 and s["end"] > 3.8 for s in segments) == 1
    # inside the 7 s tone: windows of 2 s every 0.5 s from the region's start, the last one ending with it
    long = [c["timestamp"] for c in chunks if c["timestamp"][0] > 5.0]
    region_end = max(s["end"] for s in segments)
    assert all(round(b - a, 6) == 2.0 for a, b in long) and long[-1][1] == region_end
    assert [round(b[0] - a[0], 6) for a, b in pairwise(long[:-1])] == [0.5] * (len(long) - 2)
    # more silence changes nothing: non-speech counts nowhere
    padded = pipe(np.concatenate([signal, silence(5.0)]), **options)
    assert padded["segments"] == result["segments"] and padded["scores"] == result["scores"]


def test_overall_scores_are_the_speech_spans_scored_whole(pipe):
    """The overall scores: each speech span scored whole (regions joined across pauses up to `span_gap_s`), their
    duration-weighted mean; the windows only give the timeline."""
    signal = np.concatenate([silence(0.5), tone(2.5, 200), silence(1.0), tone(0.6, 300), silence(1.0), tone(4.0, 500)])
    for gap in (0.0, 2.0):  # three spans, or the first two regions joined (the third would exceed the 6 s maximum)
        result = pipe(signal, return_segments=True, return_timestamps=True, window_s=6.0, span_gap_s=gap)
        spans = result["spans"]
        regions = [(c["timestamp"][0], c["timestamp"][1]) for c in result["chunks"]]  # a window per region
        assert len(regions) == 3
        joined = regions if gap == 0 else [(regions[0][0], regions[1][1]), regions[2]]
        assert [s["timestamp"] for s in spans] == joined
        labels = [e["label"] for e in result["scores"]]
        per_span = np.array([[{e["label"]: e["score"] for e in s["scores"]}[label] for label in labels] for s in spans])
        durations = [s["timestamp"][1] - s["timestamp"][0] for s in spans]
        expected = np.average(per_span, axis=0, weights=durations)
        assert [e["score"] for e in result["scores"]] == pytest.approx(expected.tolist(), abs=1e-6)
        start, end = spans[0]["timestamp"]
        alone = pipe(signal[round(start * RATE) : round(end * RATE)], segmentation="fixed")
        assert {e["label"]: e["score"] for e in alone} == pytest.approx(
            {e["label"]: e["score"] for e in spans[0]["scores"]}, abs=1e-5
        )


def test_segments_equal_the_windows_scores_smoothed_and_merged(pipe):
    """With one window per region and no smoothing, each region is one segment carrying its window's scores."""
    signal = conversation()
    result = pipe(signal, return_segments=True, return_timestamps=True, window_s=6.0, hop_s=6.0, smoothing_s=0.0)
    assert len(result["chunks"]) == 4  # the 7 s tone: two windows of 6 s, the second ending with it
    first = result["chunks"][0]
    assert result["segments"][0]["start"] == first["timestamp"][0]
    assert result["segments"][0]["label"] == first["scores"][0]["label"]
    assert result["segments"][0]["score"] == pytest.approx(first["scores"][0]["score"], abs=1e-6)
    alone = pipe(
        signal[round(first["timestamp"][0] * RATE) : round(first["timestamp"][1] * RATE)], segmentation="fixed"
    )
    assert {e["label"]: e["score"] for e in alone} == pytest.approx(
        {e["label"]: e["score"] for e in first["scores"]}, abs=1e-5
    )


def test_file_array_and_batch_sizes_give_the_same_timeline(pipe, tmp_path):
    signal = conversation()
    wav = tmp_path / "conversation.wav"
    sf.write(wav, signal, RATE, subtype="FLOAT")
    options = {"return_segments": True, "return_gender": True, "window_s": 1.5, "hop_s": 0.5}
    from_array = pipe(signal, batch_size=1, **options)
    for other in (
        pipe(str(wav), batch_size=5, **options),
        pipe([signal, signal[: 3 * RATE]], batch_size=3, **options)[0],
    ):
        assert [(s["start"], s["end"], s["label"]) for s in other["segments"]] == [
            (s["start"], s["end"], s["label"]) for s in from_array["segments"]
        ]
        assert [s["score"] for s in other["segments"]] == pytest.approx(
            [s["score"] for s in from_array["segments"]], abs=1e-5
        )


def test_fixed_segmentation_keeps_todays_chunks_as_segments(pipe):
    signal = conversation()
    result = pipe(signal, return_segments=True, segmentation="fixed", chunk_length_s=4.0, return_timestamps=True)
    spans = [c["timestamp"] for c in result["chunks"]]
    assert spans == [(0.0, 4.0), (4.0, 8.0), (8.0, 13.2)]  # the 1.2 s tail joins the last chunk
    assert result["speech"] is True and result["segments"][0]["start"] == 0.0 and result["segments"][-1]["end"] == 13.2
    assert all(a["end"] == b["start"] and a["label"] != b["label"] for a, b in pairwise(result["segments"]))
    assert result["scores"] == pipe(signal, chunk_length_s=4.0)  # the plain call is unchanged


def test_embeddings_per_window_segment_and_file(pipe):
    result = pipe(conversation(), return_segments=True, return_embeddings=True, window_s=2.0)
    embeddings = result["embeddings"]
    dimension = pipe.model.config.projection_dim
    assert embeddings["file"].shape == (dimension,)
    assert embeddings["segments"].shape == (len(result["segments"]), dimension)
    assert embeddings["windows"].shape[1] == dimension and len(embeddings["window_spans"]) == len(embeddings["windows"])
    norms = np.linalg.norm(np.vstack([embeddings["file"], embeddings["segments"], embeddings["windows"]]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    first = embeddings["window_spans"][0]
    alone = pipe.model.get_audio_features(
        **pipe.processor(audio=conversation()[round(first[0] * RATE) : round(first[1] * RATE)], sampling_rate=RATE)
    )
    np.testing.assert_allclose(embeddings["windows"][0], alone[0].detach().numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"window_s": 2.0, "hop_s": 2.5}, r"hop_s \(2.5\) must not exceed window_s \(2\)"),
        ({"window_s": 7.0}, r"window_s must be in \[0.1, 6\] s for this model"),
        ({"window_s": -1.0}, "window_s must be in"),
        ({"hop_s": 0.0}, "hop_s must be positive"),
        ({"min_silence_s": -0.1}, "min_silence_s must be >= 0"),
        ({"segmentation": "vad", "chunk_length_s": 3.0}, "chunk_length_s applies to segmentation='fixed'"),
    ],
)
def test_bad_timeline_options_are_clear_errors(pipe, options, message):
    with pytest.raises(ValueError, match=message):
        pipe(conversation(), return_segments=True, **options)


def test_a_missing_speech_detector_names_the_extra(ml_checkpoint, monkeypatch, tmp_path, capsys):
    find_spec = importlib.util.find_spec  # silero-vad not installed
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "silero_vad" else find_spec(name, *a)
    )
    classifier = load_classifier(str(ml_checkpoint), False)
    with pytest.raises(ImportError, match=r"pip install 'gemo-clap\[timeline\]'"):
        classifier(conversation(), segmentation="vad")
    assert len(classifier(conversation())) == 4  # by default the whole input is scored, with a warning
    wav = tmp_path / "a.wav"
    sf.write(wav, conversation(), RATE)
    assert main(["predict", "--model", str(ml_checkpoint), str(wav)]) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert error.strip().splitlines()[-1] == (
        "gemo-clap predict: speech detection (segmentation='vad') needs silero-vad and onnxruntime: "
        "pip install 'gemo-clap[timeline]'"
    )


# ------------------------------------------------------------------------------------------ predict
@pytest.fixture
def energy_vad(monkeypatch):
    """`gemo-clap predict` with the energy-based detector (tones count as speech)."""
    monkeypatch.setattr(driver_gemo_clap, "SileroVad", EnergyVad)


def make_folder(root: Path) -> Path:
    folder = root / "calls"
    (folder / "monday").mkdir(parents=True)
    sf.write(folder / "monday" / "a.wav", conversation(), RATE)
    sf.write(folder / "b.flac", conversation()[: 6 * RATE], RATE)
    sf.write(folder / "silent.wav", silence(2.0), RATE)
    sf.write(folder / "short.wav", tone(0.05), RATE)
    (folder / "broken.wav").write_text("not audio")
    (folder / "notes.txt").write_text("not an audio file: not looked at")
    return folder


def test_predict_folder_output_dir_resume_and_unreadable_files(ml_checkpoint, energy_vad, tmp_path, capsys):
    folder, out = make_folder(tmp_path), tmp_path / "out"
    command = ["predict", "--model", str(ml_checkpoint), str(folder), "--output-dir", str(out), "--window-seconds", "2"]
    assert main([*command, "--format", "srt", "--embeddings", "--plot"]) == 0
    err = capsys.readouterr().err
    assert "predict: 5 file(s): 3 done, 0 already finished, 2 could not be used" in err
    assert f"{folder / 'broken.wav'}: not a readable audio file" in err and "short.wav: " in err
    names = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    per_file = [
        f"{n}.{ext}"
        for n in ("b.flac", "monday/a.wav", "silent.wav")
        for ext in ("embeddings.npz", "json", "png", "srt")
    ]
    assert names == sorted([*per_file, "summary.csv"])
    result = json.loads((out / "monday" / "a.wav.json").read_text())
    assert set(result) == {
        "file",
        "duration",
        "speech",
        "speech_seconds",
        "scores",
        "segments",
        "gender",
        "gender_scores",
    }
    check_timeline(result, ["angry", "happy", "sad", "neutral"], result["duration"])
    assert result["speech_seconds"] == pytest.approx(sum(s["end"] - s["start"] for s in result["segments"]), abs=1e-3)
    silent = json.loads((out / "silent.wav.json").read_text())
    assert (silent["speech"], silent["segments"], silent["note"]) == (False, [], NO_SPEECH_NOTE)
    assert len(silent["scores"]) == 4  # the whole file scored, as evaluate scores a clip without speech
    with np.load(out / "monday" / "a.wav.embeddings.npz") as arrays:
        assert arrays["segment_embeddings"].shape[0] == len(result["segments"]) == arrays["segment_spans"].shape[0]
        assert arrays["file_embedding"].shape == (arrays["segment_embeddings"].shape[1],)
    assert (out / "monday" / "a.wav.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "monday" / "a.wav.srt").read_text().startswith("1\n00:00:00,")
    rows = {row["file"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert (
        rows[str(folder / "monday" / "a.wav")]["status"] == "done"
        and rows[str(folder / "broken.wav")]["status"] == "error"
    )
    assert rows[str(folder / "silent.wav")]["label"] == "no speech"

    # a rerun skips finished files; a file whose outputs are incomplete is done again
    stamps = {path: path.stat().st_mtime_ns for path in out.rglob("*.json")}
    (out / "b.flac.srt").unlink()
    assert main([*command, "--format", "srt", "--embeddings", "--plot"]) == 0
    assert "predict: 5 file(s): 1 done, 2 already finished, 2 could not be used" in capsys.readouterr().err
    assert (out / "monday" / "a.wav.json").stat().st_mtime_ns == stamps[out / "monday" / "a.wav.json"]
    assert (out / "b.flac.json").stat().st_mtime_ns != stamps[out / "b.flac.json"] and (out / "b.flac.srt").is_file()
    rows = {row["file"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert rows[str(folder / "monday" / "a.wav")]["status"] == "skipped: already finished"


def test_predict_crash_leaves_no_half_written_file(ml_checkpoint, energy_vad, tmp_path, monkeypatch, capsys):
    from gemo_clap.timeline import plot as timeline_plot

    folder, out = make_folder(tmp_path), tmp_path / "out"
    command = ["predict", "--model", str(ml_checkpoint), str(folder / "monday"), "--output-dir", str(out), "--plot"]

    def crash(result, audio_path, destination, sampling_rate=16000):
        destination.write(b"\x89PNG half a picture")
        raise KeyboardInterrupt

    monkeypatch.setattr(timeline_plot, "plot_timeline", crash)
    with pytest.raises(KeyboardInterrupt):
        main(command)
    assert [path.name for path in out.rglob("*") if path.is_file()] == []  # nothing half-written, nothing staged
    monkeypatch.undo()
    monkeypatch.setattr(driver_gemo_clap, "SileroVad", EnergyVad)
    assert main(command) == 0
    assert sorted(path.name for path in out.rglob("*") if path.is_file()) == ["a.wav.json", "a.wav.png", "summary.csv"]


def test_predict_prints_each_format(ml_checkpoint, energy_vad, tmp_path, capsys):
    wav, other = tmp_path / "a b.wav", tmp_path / "c.wav"
    sf.write(wav, conversation(), RATE)
    sf.write(other, conversation()[: 5 * RATE], RATE)
    base = ["predict", "--model", str(ml_checkpoint)]
    assert main([*base, "--format", "json", str(wav), str(other)]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in results] == [str(wav), str(other)]
    assert main([*base, "--format", "csv", str(wav), str(other)]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(rows) == sum(len(r["segments"]) for r in results) and set(rows[0]) == {
        "file",
        "start",
        "end",
        "label",
        "score",
        "gender",
    }
    assert main([*base, "--format", "rttm", str(wav), str(other)]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert {fields[1] for fields in lines} == {"a_b", "c"} and all(len(fields) == 10 for fields in lines)
    assert main([*base, "--format", "vtt", str(wav)]) == 0
    assert capsys.readouterr().out.startswith("WEBVTT\n\n00:00:00.")
    assert main([*base, str(wav)]) == 0
    assert "segment(s)]" in capsys.readouterr().out
    for bad, message in [
        (["--format", "srt", str(wav), str(other)], "--format srt prints the subtitles of one file"),
        (["--plot", str(wav)], "--embeddings and --plot write files: give --output-dir"),
        (
            ["--window-seconds", "2", "--hop-seconds", "3", str(wav)],
            "--hop-seconds (3) must not exceed --window-seconds (2)",
        ),
        (
            ["--segmentation", "vad", "--segment-seconds", "5", str(wav)],
            "--segment-seconds applies to --segmentation 'fixed'",
        ),
    ]:
        assert main([*base, *bad]) == 2
        assert message in capsys.readouterr().err
