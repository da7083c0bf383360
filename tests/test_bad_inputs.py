"""Bad input at every public entry point (processor, pipeline, predict, build-dataset, train config): each case
gets a correct result or a clear error naming the problem, never an internal traceback or partial output files."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from gemo_clap.modeling import GEmoClapConfig
from gemo_clap.processing.atomic import leftovers
from gemo_clap.train.config import TrainingConfig
from helpers import tiny_overrides, write_manifest
from iemocap_tree import tone
from transformers import pipeline

from gemo_clap.cli import main

RATE = 16000


@pytest.fixture(scope="module")
def classifier(tiny_checkpoint):
    return pipeline("zero-shot-audio-classification", model=str(tiny_checkpoint("wavlm")), trust_remote_code=True)


def scores(result: list[dict]) -> dict[str, float]:
    assert abs(sum(entry["score"] for entry in result) - 1) < 1e-5
    return {entry["label"]: entry["score"] for entry in result}


# ------------------------------------------------------------------------------ arrays: clear errors
@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(0, dtype=np.float32), "audio item 0 is empty"),
        (np.full(RATE, np.nan, dtype=np.float32), "NaN or infinite"),
        (np.full(RATE, np.inf, dtype=np.float32), "NaN or infinite"),
        (np.zeros((2, 3, RATE), dtype=np.float32), "3 dimensions"),
        (np.zeros((16, RATE), dtype=np.float32), "at most 8 channels"),
        (np.array(["a", "b"]), "dtype"),
    ],
    ids=["empty", "nan", "inf", "3-d", "16-channels", "strings"],
)
def test_processor_and_pipeline_reject_bad_arrays(classifier, audio, message):
    with pytest.raises(ValueError, match=message):
        classifier.processor(audio=audio, sampling_rate=RATE)
    with pytest.raises(ValueError, match=message):
        classifier(audio)


# ------------------------------------------------------------------------------ arrays: correct results
def direct_scores(classifier, clip: np.ndarray) -> dict[str, float]:
    """The label probabilities computed straight from the model: its audio embedding against each label prompt."""
    model, labels = classifier.model, list(classifier.model.config.emotion_labels)
    with torch.no_grad():
        audio = model.get_audio_features(**classifier.processor(audio=clip, sampling_rate=RATE))
        prompts = model.get_label_embeddings(classifier.processor, labels, model.config.prompt_template)
        probabilities = model.similarity_logits(audio, prompts)[0].softmax(dim=-1)[0]
    return dict(zip(labels, probabilities.tolist()))


def test_all_zeros_gives_the_models_finite_distribution(classifier):
    silence = np.zeros(RATE, dtype=np.float32)
    result = scores(classifier(silence))
    assert all(np.isfinite(value) and 0 <= value <= 1 for value in result.values())
    expected = direct_scores(classifier, silence)
    assert result.keys() == expected.keys() and max(abs(result[k] - expected[k]) for k in result) < 1e-6


def test_integer_arrays_equal_their_float_version(classifier, make_clip):
    clip = make_clip(1.5)
    as_int16 = np.round(clip * 2**15).astype(np.int16)
    as_int32 = as_int16.astype(np.int32) * 2**16
    reference = scores(classifier(as_int16.astype(np.float32) / 2**15))
    for integer in (as_int16, as_int32):
        result = scores(classifier(integer))
        assert max(abs(result[k] - reference[k]) for k in reference) < 1e-5


def test_stereo_equals_its_mono_mix(classifier, make_clip):
    left, right = make_clip(1.5, 1), make_clip(1.5, 2)
    mono = scores(classifier((left + right) / 2))
    for stereo in (np.stack([left, right]), np.stack([left, right], axis=1), torch.from_numpy(np.stack([left, right]))):
        result = scores(classifier(stereo))
        assert max(abs(result[k] - mono[k]) for k in mono) < 1e-5


@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_sampling_rates_are_resampled(classifier, make_clip, rate):
    import librosa

    clip = make_clip(2.0, 3, sampling_rate=rate)
    at_16k = classifier.processor.prepare_audio(clip, rate)
    assert abs(at_16k.size - 2 * RATE) <= 1
    result = scores(classifier({"array": clip, "sampling_rate": rate}))
    expected = scores(classifier(librosa.resample(clip, orig_sr=rate, target_sr=RATE)))
    assert max(abs(result[k] - expected[k]) for k in result) < 1e-5
    as_if_16k = scores(classifier(clip))  # the same samples read at the wrong rate: another clip, other scores
    assert max(abs(result[k] - as_if_16k[k]) for k in result) > 1e-4


def test_missing_sampling_rate_warns(classifier, make_clip):
    with pytest.warns(UserWarning, match="no sampling_rate given"):
        classifier.processor(audio=make_clip(1.0))


def test_one_hour_array_is_cut_to_the_model_maximum_with_a_warning(classifier):
    hour = np.zeros(3600 * RATE, dtype=np.float32)
    hour[: 10 * RATE] = 0.1
    with pytest.warns(UserWarning, match="cut to the model's max_audio_seconds=14"):
        inputs = classifier.processor(audio=hour, sampling_rate=RATE)
    assert inputs["input_values"].shape == (1, 14 * RATE)
    # the pipeline is not cut: its fixed chunks cover the whole signal (a minute here, for speed; test_long_audio.py
    # has the rest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = classifier(hour[: 60 * RATE], return_timestamps=True, segmentation="fixed")
    assert len(scores(result["scores"])) == 4
    assert result["chunks"][0]["timestamp"][0] == 0.0 and result["chunks"][-1]["timestamp"][1] == 60.0


# ------------------------------------------------------------------------------ files
def test_bad_files_in_the_pipeline(classifier, make_clip, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    with pytest.raises(ValueError, match="cannot decode .*notes.wav"):
        classifier(str(text))
    with pytest.raises(ValueError, match="audio file not found"):
        classifier(str(tmp_path / "missing.wav"))
    with pytest.raises(ValueError, match="is a directory"):
        classifier(str(tmp_path))


def test_truncated_wav_gives_the_result_of_the_audio_it_holds(classifier, make_clip, tmp_path):
    whole = tmp_path / "whole.wav"
    sf.write(whole, make_clip(2.0), RATE, subtype="PCM_16")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(whole.read_bytes()[: 44 + RATE])  # header says 2 s, half a second of data is left
    held = sf.read(whole, dtype="float32")[0][: RATE // 2]  # what the file still holds: its first 0.5 s
    result, expected = scores(classifier(str(truncated))), scores(classifier(held))
    assert max(abs(result[k] - expected[k]) for k in result) < 1e-6


# ------------------------------------------------------------------------------ labels and templates
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"candidate_labels": []}, "candidate_labels must hold at least two labels"),
        ({"candidate_labels": ["sad", "happy", "sad"]}, r"duplicates: \['sad'\]"),
        ({"candidate_labels": ["sad", ""]}, "non-empty names"),
        ({"hypothesis_template": "The emotion is"}, "placeholder"),
    ],
    ids=["empty-labels", "duplicate-labels", "blank-label", "template-without-braces"],
)
def test_bad_labels_and_templates(classifier, make_clip, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classifier(make_clip(1.0), **kwargs)


# ------------------------------------------------------------------------------ configs
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"variant": "gemo"}, "variant"), ({"sl_alpha": 1.5}, "sl_alpha"), ({"ml_alpha": -0.1}, "ml_alpha")],
)
def test_model_and_training_configs_name_the_bad_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        GEmoClapConfig(**kwargs)
    with pytest.raises(ValueError, match=field):
        TrainingConfig(model=kwargs)


def test_typo_in_a_config_file_is_named_with_a_suggestion(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("variant: sl\nlearnig_rate: 1.0e-4\n")
    output = tmp_path / "out"
    assert main(["train", "--config", str(config), "--dataset", str(tmp_path), "--output-dir", str(output)]) == 2
    assert "unknown key 'learnig_rate' (did you mean 'learning_rate'?)" in capsys.readouterr().err
    assert not output.exists()


def test_sl_training_on_a_dataset_without_gender_is_refused_without_output(tiny_encoders, tmp_path, capsys):
    import datasets
    from gemo_clap.processing.builder import dataset_features

    features = dataset_features(["angry", "sad"])
    audio_feature, features["audio"] = (
        features["audio"],
        {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
    )
    rows = {
        "id": ["a", "b"],
        "audio": [{"bytes": b"", "path": None}] * 2,
        "emotion": [0, 1],
        "gender": [0, 1],
        "speaker": ["s1", "s2"],
        "fold": [1, 2],
        "duration": [1.0, 1.0],
    }
    no_gender = datasets.Dataset.from_dict(rows, features=features).cast_column("audio", audio_feature)
    no_gender = no_gender.remove_columns("gender")
    no_gender.save_to_disk(str(tmp_path / "data"))
    audio, text = tiny_encoders("wavlm")
    output = tmp_path / "run"
    code = main(
        [
            "train",
            "--dataset",
            str(tmp_path / "data"),
            "--output-dir",
            str(output),
            f"audio_encoder={audio}",
            f"text_encoder={text}",
            "variant=sl",
        ]
    )
    assert code == 2
    assert "lacks column(s) ['gender']" in capsys.readouterr().err
    assert not output.exists()


# ------------------------------------------------------------------------------ build-dataset and predict
def test_build_dataset_with_a_bad_manifest_leaves_no_output(tmp_path, capsys):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,emotion,speaker\na.wav,angry,s1\n")  # no gender column
    output = tmp_path / "built"
    assert main(["build-dataset", "manifest", str(manifest), "--output", str(output)]) == 2
    assert "gender" in capsys.readouterr().err
    assert not output.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]


def test_predict_reports_each_bad_file_and_still_scores_good_ones(tiny_checkpoint, make_clip, tmp_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(good, make_clip(2.0), RATE)
    text = tmp_path / "text.wav"
    text.write_text("hello")
    code = main(["predict", "--model", str(tiny_checkpoint("wavlm")), str(text), str(good), str(tmp_path / "x.flac")])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.startswith(f"{good}: ")
    assert f"{text}: error: not a readable audio file" in captured.err
    assert "x.flac: error: file not found" in captured.err


@pytest.mark.usefixtures("one_torch_thread")
def test_training_refuses_a_folder_holding_a_run_unless_resumed_or_overwritten(
    tiny_encoders, dataset_dir, tmp_path, capsys
):
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "run", freeze="audio", num_epochs=1)
    assert main(["train", *overrides]) == 0
    first = sorted(path.name for path in (tmp_path / "run" / "checkpoints").iterdir())
    capsys.readouterr()
    assert main(["train", *overrides]) == 2
    assert (
        "already holds a training run (checkpoints, model, training_config.json, test_results.json, history.jsonl)"
        in (capsys.readouterr().err)
    )
    assert main(["train", "--resume", *overrides]) == 0  # a finished run resumes to its end
    assert main(["train", "--overwrite", *overrides[:-1], "num_epochs=2"]) == 0
    checkpoints = sorted(path.name for path in (tmp_path / "run" / "checkpoints").iterdir())
    assert first == ["step_00000003"] and checkpoints == ["step_00000003", "step_00000006"]
    assert json.loads((tmp_path / "run" / "training_config.json").read_text())["num_epochs"] == 2
    assert (tmp_path / "run" / "audio_cache").is_dir()  # the cache of the tower is kept
    assert leftovers(tmp_path / "run") == []
    assert main(["train", "--overwrite", "--resume", *overrides]) == 2
    assert "pick one" in capsys.readouterr().err


def test_an_output_path_that_is_a_file_is_a_clear_error(tiny_encoders, dataset_dir, tmp_path, capsys):
    afile = tmp_path / "f"
    afile.write_text("keep me")
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, afile, num_epochs=1)
    assert main(["train", *overrides]) == 2
    assert f"output folder {afile} is a file" in capsys.readouterr().err
    manifest = write_manifest(tmp_path / "corpus", {})
    assert main(["build-dataset", "manifest", str(manifest), "--output", str(afile / "sub"), "--folds", "2"]) == 2
    assert f"--output {afile / 'sub'} would be created inside the file {afile}" in capsys.readouterr().err
    assert afile.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "f"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("warmup_epochs=-1", "warmup_epochs must be >= 0, got -1.0"),
        ("weight_decay=-0.1", "weight_decay must be >= 0"),
        ("max_grad_norm=-1", "max_grad_norm must be >= 0"),
        ("eval_batch_size=0", "eval_batch_size must be >= 1"),
        ("checkpoint_every_epochs=0", "checkpoint_every_epochs must be >= 1"),
        ("test_fold=0", "test_fold must be >= 1"),
        ("freeze_layers=-2", "freeze_layers must be >= 0"),
        ("model.projection_dim=0", "projection_dim must be an integer >= 1"),
        ("model.logit_scale_max=0", "logit_scale_max must be > 0"),
    ],
)
def test_every_numeric_field_is_range_checked(override, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        TrainingConfig.load(None, [override])


def test_a_bad_override_is_named_not_the_config_file(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 1.0e-4\n")
    with pytest.raises(ValueError, match=r"^override 'batch_size=big': batch_size must be int, got 'big'$"):
        TrainingConfig.load(config, ["batch_size=big"])
    with pytest.raises(ValueError, match=r"^override 'model\.varient=sl': model: unknown key 'varient'"):
        TrainingConfig.load(config, ["model.varient=sl"])


def test_a_mistyped_local_model_path_says_the_folder_does_not_exist(tiny_checkpoint, dataset_dir, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    typo = str(tiny_checkpoint("wavlm")) + "x"
    for command in (
        ["predict", "--model", typo, str(wav)],
        ["evaluate", "--model", typo, "--dataset", str(dataset_dir)],
    ):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert f"model folder {typo} does not exist" in err and "Hub" in err and "Traceback" not in err
    assert main(["train", "--dataset", str(dataset_dir), "audio_encoder=./no/such/tower"]) == 2
    assert "model folder ./no/such/tower does not exist" in capsys.readouterr().err


def test_empty_labels_are_rejected(tiny_checkpoint, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    assert main(["predict", "--model", str(tiny_checkpoint("wavlm")), "--labels", "", str(wav)]) == 2
    assert "--labels must be non-empty names" in capsys.readouterr().err


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"gemo-clap {command}: ") and err.count("\n") == 1, err
    return err


def test_a_hub_id_without_a_network_is_one_quick_line(tmp_path, capsys, monkeypatch):
    """One request for the repo's config.json, no retries; offline, the local cache is asked instead."""
    import httpx2
    import huggingface_hub
    from huggingface_hub import constants

    requests = []

    def unreachable(url, timeout):
        requests.append((url, timeout))
        raise httpx2.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", unreachable)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    assert main(["predict", "--model", "no-org/no-model-here", str(wav)]) == 2
    err = one_line_error(capsys, "predict")
    assert "cannot reach the Hugging Face Hub" in err and "pass a local folder or set HF_HUB_OFFLINE=1" in err
    assert len(requests) == 1 and requests[0][0].endswith("no-org/no-model-here/resolve/main/config.json")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["export-onnx", "--model", "no-org/no-model-here", "--output", str(tmp_path / "out")]) == 2
    assert "not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in one_line_error(capsys, "export-onnx")
    assert len(requests) == 1


def test_a_folder_that_is_not_a_model_is_named_so(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    for command, args in (("predict", [str(wav)]), ("export-onnx", ["--output", str(tmp_path / "out")])):
        assert main([command, "--model", str(tmp_path), *args]) == 2
        err = one_line_error(capsys, command)
        assert f"{tmp_path} is not a gemo-clap model folder: no config.json with model_type gemo_clap" in err


def test_bad_export_options_are_one_line_naming_the_option(tiny_checkpoint, tmp_path, capsys):
    pytest.importorskip("onnx", reason="export-onnx needs onnx (pip install 'gemo-clap[onnx]')")
    args = ["export-onnx", "--model", str(tiny_checkpoint("wavlm")), "--output", str(tmp_path / "out")]
    for opset in ("5", "99"):
        assert main([*args, "--opset", opset]) == 2
        assert "--opset must be from 14 to " in one_line_error(capsys, "export-onnx")
    assert not (tmp_path / "out").exists()
