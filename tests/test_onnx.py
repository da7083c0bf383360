"""ONNX deployment: `gemo-clap export-onnx` writes one graph (label prompts embedded as constants) and the runner
scores with onnxruntime and numpy features, without torch, as the torch pipeline does: same numbers (within 1e-4),
same chunks, same output format, same errors; `gemo-clap predict --onnx` prints what `predict --model` prints."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from gemo_clap.modeling.audio_tower_gemo_clap import WaveformTower, WhisperTower
from gemo_clap.modeling.driver_gemo_clap import CALL_OPTIONS, OUTPUT_OPTIONS
from gemo_clap.modeling.vad_gemo_clap import VAD_LICENSE_FILE, VAD_MODEL_FILE
from gemo_clap.train.towers import build_model_and_processor
from helpers import EMODB_WAV as EMODB
from helpers import WHISPER_TINY

from gemo_clap.cli import main
from gemo_clap.loading import load_classifier
from gemo_clap.onnx.export import export_onnx
from gemo_clap.onnx.features import batch_features, feature_settings
from gemo_clap.onnx.runtime import CONFIG_FILE, ONNX_FILE, README_FILE, GEmoClapOnnxRunner

pytest.importorskip("onnx", reason="export-onnx needs onnx (pip install 'gemo-clap[onnx]')")
pytest.importorskip("onnxruntime", reason="the ONNX runner needs onnxruntime (pip install 'gemo-clap[onnx]')")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

RATE = 16000
TOLERANCE = 1e-4
LENGTHS = (0.4, 2.7, 1.3, 5.0)  # seconds: one at a time, and batched with padding
# export-onnx copies Silero VAD (the timeline's speech detector) and its licence when silero-vad is installed
VAD_FILES = {VAD_MODEL_FILE, VAD_LICENSE_FILE} if importlib.util.find_spec("silero_vad") else set()


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    """`exported(kind, **config_kwargs)` -> (checkpoint folder, export folder), each built once."""
    built: dict[tuple, tuple[Path, Path]] = {}

    def get(kind: str = "wavlm", **config_kwargs) -> tuple[Path, Path]:
        key = (kind, tuple(sorted(config_kwargs.items())))
        if key not in built:
            checkpoint = tiny_checkpoint(kind, **config_kwargs)
            folder = tmp_path_factory.mktemp(f"onnx-{kind}") / "export"
            export_onnx(checkpoint, folder)
            built[key] = checkpoint, folder
        return built[key]

    return get


def by_label(scores: list[dict]) -> dict[str, float]:
    return {entry["label"]: entry["score"] for entry in scores}


def difference(ours, theirs) -> float:
    """Largest score difference between two results of the same inputs, after checking they have one structure
    (keys, labels, chunk timestamps)."""
    if isinstance(ours, list) and ours and isinstance(ours[0], dict) and "label" in ours[0]:
        assert [e["label"] for e in sorted(ours, key=lambda e: e["label"])] == sorted(e["label"] for e in theirs)
        assert abs(sum(by_label(ours).values()) - 1) < 1e-5
        return max(abs(score - by_label(theirs)[label]) for label, score in by_label(ours).items())
    if isinstance(ours, list):
        assert len(ours) == len(theirs)
        return max(difference(a, b) for a, b in zip(ours, theirs))
    assert set(ours) == set(theirs)
    if "timestamp" in ours:
        assert ours["timestamp"] == theirs["timestamp"]
    return max(difference(ours[key], theirs[key]) for key in ours if key != "timestamp")


def clips(lengths=LENGTHS, rate: int = RATE) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        (0.3 * np.sin(np.linspace(0, 300 * (i + 1), int(s * rate))) + 0.05 * rng.standard_normal(int(s * rate))).astype(
            np.float32
        )
        for i, s in enumerate(lengths)
    ]


def assert_parity(checkpoint: Path, folder: Path, inputs: list, **kwargs) -> float:
    """The runner's results equal the pipeline's, one input at a time and batched; returns the largest difference."""
    runner, pipe = GEmoClapOnnxRunner(folder, num_threads=1), load_classifier(str(checkpoint), False)
    with torch.no_grad():
        worst = max(difference(runner(item, **kwargs), pipe(item, **kwargs)) for item in inputs)
        worst = max(worst, difference(runner(inputs, batch_size=4, **kwargs), pipe(inputs, batch_size=4, **kwargs)))
    assert worst < TOLERANCE
    return worst


# ------------------------------------------------------------------------------ features
def test_numpy_features_equal_transformers(tiny_encoders):
    from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor

    audio = [np.zeros(RATE, dtype=np.float32), *clips((0.1, 1.37, 3.0, 14.0))]
    if EMODB.is_dir():
        audio += [sf.read(path, dtype="float32")[0] for path in sorted(EMODB.glob("*.wav"))[:3]]
    whisper = AutoFeatureExtractor.from_pretrained(
        WHISPER_TINY if WHISPER_TINY.is_dir() else tiny_encoders("whisper")[0]
    )
    settings, mel_filters = feature_settings(whisper, "input_features")
    features, mask = batch_features(audio, settings, mel_filters)
    expected = WhisperTower.features(whisper, audio)
    assert features.shape == expected["input_features"].shape == (len(audio), 80, 1400)
    assert np.abs(features - expected["input_features"]).max() < 1e-4
    np.testing.assert_array_equal(mask, expected["audio_attention_mask"])
    assert mask.sum(axis=1).tolist() == [clip.size // 160 for clip in audio]
    for do_normalize in (True, False):
        waveform = Wav2Vec2FeatureExtractor(do_normalize=do_normalize, padding_value=0.0)
        settings, _ = feature_settings(waveform, "input_values")
        features, mask = batch_features(audio, settings)
        expected = WaveformTower.features(waveform, audio)
        assert features.shape == expected["input_values"].shape == (len(audio), 14 * RATE)
        assert np.abs(features - expected["input_values"]).max() < 1e-6
        np.testing.assert_array_equal(mask, expected["audio_attention_mask"])


# ------------------------------------------------------------------------------ parity with the torch pipeline
def test_tiny_wavlm_parity(exported):
    checkpoint, folder = exported("wavlm")
    assert_parity(checkpoint, folder, clips())


def test_statistics_pooling_with_weighted_layer_sum_parity(tiny_encoders, tmp_path):
    model, processor = build_model_and_processor(
        *tiny_encoders("wavlm"), audio_pooling="statistics", audio_layer_pooling="weighted_sum"
    )
    with torch.no_grad():
        model.audio_layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0]))  # learnt, not uniform
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    export_onnx(tmp_path / "model", tmp_path / "export")
    assert_parity(tmp_path / "model", tmp_path / "export", clips())


def test_ml_gender_parity_per_chunk(exported):
    checkpoint, folder = exported("wavlm", variant="ml")
    assert json.loads((folder / CONFIG_FILE).read_text())["gender_labels"] == ["female", "male"]
    long_clips = clips((7.5, 3.0))
    assert_parity(checkpoint, folder, long_clips, return_gender=True, return_timestamps=True, chunk_length_s=2.0)
    result = GEmoClapOnnxRunner(folder)(long_clips[0], return_gender=True)
    assert set(result) == {"scores", "gender"} and set(by_label(result["gender"])) == {"female", "male"}


@pytest.mark.skipif(not (WHISPER_TINY.is_dir() and EMODB.is_dir()), reason=f"needs {WHISPER_TINY} and {EMODB}")
def test_whisper_tiny_en_parity_on_emodb(tiny_encoders, tmp_path):
    model, processor = build_model_and_processor(WHISPER_TINY, tiny_encoders("wavlm")[1], logit_scale_init=50.0)
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    summary = export_onnx(tmp_path / "model", tmp_path / "export")
    assert summary["max_abs_difference"] < TOLERANCE
    paths = sorted(EMODB.glob("*.wav"), key=lambda path: sf.info(path).frames)
    chosen = [paths[0], paths[len(paths) // 3], paths[2 * len(paths) // 3], paths[-1]]  # shortest to longest
    assert sf.info(chosen[-1]).duration - sf.info(chosen[0]).duration > 2.0
    assert_parity(tmp_path / "model", tmp_path / "export", [str(path) for path in chosen])


# ------------------------------------------------------------------------------ the exported folder
def test_exported_folder_and_label_override(exported, tmp_path, capsys):
    import onnx

    _, folder = exported("whisper")
    files = {path.name for path in folder.iterdir()}
    assert files == {ONNX_FILE, CONFIG_FILE, README_FILE, "mel_filters.npy", *VAD_FILES}
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["labels"] == ["angry", "happy", "sad", "neutral"] and config["template"] == "The emotion is {}."
    assert config["sampling_rate"] == RATE and config["max_audio_seconds"] == 14.0 and config["gender_labels"] is None
    assert config["features"]["kind"] == "log-mel" and config["features"]["hop_length"] == 160
    graph = onnx.load(str(folder / ONNX_FILE)).graph
    inputs = {
        value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim] for value in graph.input
    }
    assert inputs == {"input_features": ["batch", 80, "length"], "audio_attention_mask": ["batch", "length"]}
    assert [value.name for value in graph.output] == ["probabilities", "audio_embeds"]
    readme = (folder / README_FILE).read_text()
    assert "gemo-clap predict --onnx" in readme and "GEmoClapOnnxRunner" in readme and "'neutral'" in readme

    wavlm, _ = exported("wavlm")
    override = tmp_path / "override"
    template = "The speaker sounds {}."
    args = ["export-onnx", "--model", str(wavlm), "--output", str(override), "--labels", "calm, angry"]
    assert main([*args, "--template", template, "--opset", "18"]) == 0
    assert "labels ['calm', 'angry']" in capsys.readouterr().out
    config = json.loads((override / CONFIG_FILE).read_text())
    assert (config["labels"], config["template"], config["opset"]) == (["calm", "angry"], template, 18)
    assert {path.name for path in override.iterdir()} == {ONNX_FILE, CONFIG_FILE, README_FILE, *VAD_FILES}
    kwargs = {"candidate_labels": ["calm", "angry"], "hypothesis_template": template}
    assert_parity(wavlm, override, clips(), **kwargs)
    with pytest.raises(ValueError, match=r"differ from the ones fixed at export \['calm', 'angry'\]"):
        GEmoClapOnnxRunner(override)(clips()[0], candidate_labels=["angry", "happy", "sad", "neutral"])
    assert main([*args, "--opset", "18"]) == 0  # an earlier export is replaced
    assert json.loads((override / CONFIG_FILE).read_text())["template"] == "The emotion is {}."
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    assert main(["export-onnx", "--model", str(wavlm), "--output", str(tmp_path / "other")]) == 2
    assert "holds no ONNX export" in capsys.readouterr().err and (tmp_path / "other" / "notes.txt").exists()
    assert main([*args[:4], str(tmp_path / "dup"), "--labels", "calm,calm"]) == 2
    assert "labels contains duplicates: ['calm']" in capsys.readouterr().err and not (tmp_path / "dup").exists()


# ------------------------------------------------------------------------------ without torch
TORCH_FREE = """
import json, sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
import numpy as np, soundfile as sf
from gemo_clap.cli import main
from gemo_clap.onnx.runtime import GEmoClapOnnxRunner

folder, wav, speech = sys.argv[1], sys.argv[2], sys.argv[3]
runner = GEmoClapOnnxRunner(folder, num_threads=1)
array = sf.read(wav, dtype="float32")[0]
results = [
    runner(wav),
    runner([array, array[:8000]], batch_size=2),
    runner(array, return_timestamps=True, chunk_length_s=1.0),
]
print(json.dumps(results))
print(json.dumps(runner(speech, return_segments=True, window_s=1.0, hop_s=0.5)))  # the export's own Silero VAD
main(["predict", "--onnx", folder, "--json", wav])
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "transformers") and sys.modules[name])
print(json.dumps(loaded))
"""


def test_runner_and_predict_without_torch(exported, tmp_path, capsys):
    checkpoint, folder = exported("whisper")
    wav, speech = tmp_path / "speech.wav", tmp_path / "conversation.wav"
    sf.write(wav, clips((2.5,))[0], RATE)
    utterances = [sf.read(path, dtype="float32")[0] for path in sorted(EMODB.glob("*.wav"))[:2]] or clips((2.0,))
    silence = np.zeros(RATE // 2, dtype=np.float32)
    sf.write(speech, np.concatenate([silence, utterances[0], silence, utterances[-1], silence]), RATE)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, str(folder), str(wav), str(speech)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results, timeline, predicted, loaded = [json.loads(line) for line in completed.stdout.splitlines()]
    assert loaded == []
    pipe = load_classifier(str(checkpoint), False)
    array = sf.read(wav, dtype="float32")[0]
    with torch.no_grad():
        expected = [
            pipe(str(wav)),
            pipe([array, array[:8000]], batch_size=2),
            pipe(array, return_timestamps=True, chunk_length_s=1.0),
        ]
        expected_timeline = pipe(str(speech), return_segments=True, window_s=1.0, hop_s=0.5)
    expected[2]["chunks"] = [{**chunk, "timestamp": list(chunk["timestamp"])} for chunk in expected[2]["chunks"]]
    assert difference(results, expected) < TOLERANCE
    assert [chunk["timestamp"] for chunk in results[2]["chunks"]] == [[0.0, 1.0], [1.0, 2.0], [2.0, 2.5]]
    assert timeline["speech"] == expected_timeline["speech"] == EMODB.is_dir()
    assert_same_segments(timeline["segments"], expected_timeline["segments"])
    assert main(["predict", "--model", str(checkpoint), "--json", str(wav)]) == 0
    assert_same_predictions(predicted, json.loads(capsys.readouterr().out))


# ------------------------------------------------------------------------------ predict --onnx
def assert_same_segments(ours: list[dict], theirs: list[dict]) -> None:
    assert [(s["start"], s["end"], s["label"], s.get("gender")) for s in ours] == [
        (s["start"], s["end"], s["label"], s.get("gender")) for s in theirs
    ]
    assert all(abs(a["score"] - b["score"]) < TOLERANCE for a, b in zip(ours, theirs))


def assert_same_predictions(ours: dict, theirs: dict) -> None:
    """Two `predict --json` objects: same keys, durations, speech and segments (spans, labels, gender), scores
    within 1e-4."""
    assert set(ours) == set(theirs) and ours["file"] == theirs["file"]
    for key in ("duration", "speech", "speech_seconds"):
        assert ours[key] == theirs[key], key
    if theirs["scores"]:
        assert difference(ours["scores"], theirs["scores"]) < TOLERANCE
    assert_same_segments(ours["segments"], theirs["segments"])
    if "gender" in theirs:
        assert ours["gender"] == theirs["gender"]
        assert difference(ours["gender_scores"], theirs["gender_scores"]) < TOLERANCE


def test_predict_onnx_prints_what_predict_model_prints(exported, tmp_path, capsys):
    checkpoint, folder = exported("whisper", variant="ml")
    long_wav = tmp_path / "long.wav"
    sf.write(long_wav, np.concatenate(clips((6.0, 8.0, 9.0, 5.0))), RATE)  # 28 s: chunks of 10 s and the tail
    outputs = []
    for source in (["--model", str(checkpoint)], ["--onnx", str(folder)]):
        assert main(["predict", *source, "--json", "--segment-seconds", "10", "--batch-size", "2", str(long_wav)]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    theirs, ours = outputs
    segments = ours["segments"]  # the chunks 0-10-20-28 s, neighbours with one emotion joined
    assert segments[0]["start"] == 0 and segments[-1]["end"] == 28 and {s["start"] for s in segments} <= {0, 10, 20}
    assert ours["duration"] == 28.0 and "gender" in ours
    assert_same_predictions(ours, theirs)

    assert main(["predict", "--onnx", str(folder), "--labels", "calm", str(long_wav)]) == 2
    assert "fixed at export" in capsys.readouterr().err
    assert main(["predict", "--onnx", str(folder), "--trust-remote-code", str(long_wav)]) == 2
    assert "applies to --model only" in capsys.readouterr().err
    assert main(["predict", "--onnx", str(tmp_path), str(long_wav)]) == 2
    assert f"{tmp_path} holds no {CONFIG_FILE}" in capsys.readouterr().err
    for both_or_neither in (["--model", str(checkpoint), "--onnx", str(folder)], []):
        with pytest.raises(SystemExit) as exit_info:
            main(["predict", *both_or_neither, str(long_wav)])
        assert exit_info.value.code == 2
    assert "one of the arguments --model --onnx is required" in capsys.readouterr().err


# ------------------------------------------------------------------------------ one option table
def test_one_option_table_serves_both_backends(exported, make_clip):
    """The pipeline and the runner check a call's options with one driver (`CALL_OPTIONS`): they accept the same
    names and resolve them alike, reject an unknown name or a bad value with the same error before any audio is
    read, and each output option adds the same keys to both results."""
    checkpoint, folder = exported("wavlm")
    runner, pipe = GEmoClapOnnxRunner(folder, num_threads=1), load_classifier(str(checkpoint), False)
    every_option = dict.fromkeys(CALL_OPTIONS)  # None: each option's default
    assert runner.check_options(**every_option) == pipe.check_options(**every_option)
    given = {"segmentation": "vad", "window_s": 2.0, "hop_s": 0.25, "span_gap_s": 0.5, "return_segments": True}
    checked = runner.check_options(**given)
    assert checked == pipe.check_options(**given) and checked.settings.hop_s == 0.25 and checked.return_segments
    clip = make_clip(1.0)
    for options, error, message in [
        ({"window": 2.0}, TypeError, r"^unexpected option\(s\) \['window'\]; known: \['candidate_labels', "),
        ({"hop_s": 0.0}, ValueError, "^hop_s must be positive"),
        ({"segmentation": "words"}, ValueError, "^segmentation must be one of"),
        ({"segmentation": "fixed", "window_s": 2.0}, ValueError, "^window_s applies to segmentation='vad'"),
        ({"return_gender": True}, ValueError, "^return_gender needs a checkpoint trained with gender prompts"),
    ]:
        with pytest.raises(error, match=message) as expected:
            pipe(clip, **options)
        with pytest.raises(error) as actual:
            runner(clip, **options)
        assert str(actual.value) == str(expected.value)
        with pytest.raises(error) as checked_early:
            runner.check_options(**options)
        assert str(checked_early.value) == str(expected.value)
    with torch.no_grad():
        assert isinstance(runner(clip), list) and isinstance(pipe(clip), list)
        for name in OUTPUT_OPTIONS:
            ours, theirs = runner(clip, **{name: True}), pipe(clip, **{name: True})
            assert set(ours) == set(theirs) and len(set(ours)) > 1, name


# ------------------------------------------------------------------------------ bad input
def test_bad_input_gets_the_pipelines_errors(exported, tmp_path, make_clip):
    checkpoint, folder = exported("wavlm")
    runner, pipe = GEmoClapOnnxRunner(folder, num_threads=1), load_classifier(str(checkpoint), False)
    unreadable, short = tmp_path / "notes.wav", tmp_path / "short.wav"
    unreadable.write_text("not audio")
    sf.write(short, make_clip(0.05), RATE)
    bad_inputs = {
        "empty": np.zeros(0, dtype=np.float32),
        "nan": np.full(RATE, np.nan, dtype=np.float32),
        "too short": make_clip(0.05),
        "3-d": np.zeros((2, 3, RATE), dtype=np.float32),
        "dict without rate": {"array": make_clip(1.0)},
        "unreadable file": str(unreadable),
        "missing file": str(tmp_path / "missing.wav"),
        "folder": str(tmp_path),
        "too short file": str(short),
    }
    messages = {}
    for name, audio in bad_inputs.items():
        with pytest.raises(ValueError) as expected:
            pipe(audio)
        with pytest.raises(ValueError) as actual:
            runner(audio)
        assert str(actual.value) == str(expected.value), name
        assert type(actual.value.__cause__) is type(expected.value.__cause__), name
        messages[name] = str(actual.value)
    assert "audio item 0 is empty" in messages["empty"] and "NaN or infinite" in messages["nan"]
    assert "shorter than 0.1 s" in messages["too short"] and "shorter than 0.1 s" in messages["too short file"]
    assert messages["unreadable file"].startswith(f"cannot decode {unreadable}")
    for options, message in [
        ({"chunk_length_s": 0}, r"chunk_length_s must be in \(0, 14\]"),
        ({"return_gender": True}, "return_gender needs a checkpoint trained with gender prompts"),
    ]:
        with pytest.raises(ValueError, match=message):
            pipe(make_clip(1.0), **options)
        with pytest.raises(ValueError, match=message):
            runner(make_clip(1.0), **options)
    with pytest.raises(ValueError, match="hypothesis_template .* differs from the one fixed at export"):
        runner(make_clip(1.0), hypothesis_template="The speaker sounds {}.")
    reordered = runner(make_clip(1.0), candidate_labels="neutral,sad,happy,angry")  # the same labels: allowed
    assert reordered == runner(make_clip(1.0))
    # another sampling rate in a dict is resampled, as the pipeline does
    at_48k = {"array": make_clip(2.0, 3, sampling_rate=48000), "sampling_rate": 48000}
    with torch.no_grad():
        assert difference(runner(at_48k), pipe(at_48k)) < TOLERANCE
    with pytest.raises(FileNotFoundError, match="not a folder written by gemo-clap export-onnx"):
        GEmoClapOnnxRunner(tmp_path)
