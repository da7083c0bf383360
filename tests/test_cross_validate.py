"""`gemo-clap cross-validate` (every fold, several variants on the same folds) and `gemo-clap evaluate`."""

from __future__ import annotations

import json

import datasets
import matplotlib.image
import pytest
from helpers import build_tiny_dataset, tiny_overrides

from gemo_clap.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cross_validation(tiny_encoders, dataset_dir, tmp_path_factory):
    root, dataset = tmp_path_factory.mktemp("cv"), dataset_dir
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset, root / "out", freeze="audio", num_epochs=1)
    code = main(["cross-validate", "--variants", "emo,sl", *overrides])
    return code, root / "out", dataset


def test_every_fold_of_every_variant_is_trained_and_reported(cross_validation):
    code, out, dataset = cross_validation
    assert code == 0
    report = json.loads((out / "results.json").read_text())
    assert report["label_names"] == ["angry", "happy", "sad", "neutral"]
    for variant in ("emo", "sl"):
        folds = report["variants"][variant]["folds"]
        assert [fold["fold"] for fold in folds] == [1, 2]
        for fold in folds:
            # each test fold holds 16 clips of the 2 speakers it leaves out, and both genders are scored
            assert sum(map(sum, fold["confusion_matrix"])) == 16
            assert set(fold["per_gender"]) == {"female", "male"}
            saved = json.loads((out / variant / f"fold_{fold['fold']}" / "test_results.json").read_text())
            assert saved == fold
        summary = report["variants"][variant]["summary"]
        wars = [fold["war"] for fold in folds]
        assert summary["war"]["mean"] == pytest.approx(sum(wars) / 2)
        image = matplotlib.image.imread(out / f"confusion_matrix_{variant}.png")
        assert image.ndim == 3 and image.shape[0] > 100
    table = (out / "results.md").read_text()
    assert "| emo (2 folds) |" in table and "| sl (2 folds) |" in table
    # the frozen tower's cache is shared by every fold and variant: one file for the one tower
    assert len(list((out / "audio_cache").glob("audio-*.safetensors"))) == 1


def test_evaluate_reproduces_a_folds_test_results(cross_validation, tmp_path, capsys):
    _, out, dataset = cross_validation
    metrics_file = tmp_path / "metrics.json"
    code = main(
        [
            "evaluate",
            "--model",
            str(out / "sl" / "fold_2" / "model"),
            "--dataset",
            str(dataset),
            "--fold",
            "2",
            "--output",
            str(metrics_file),
        ]
    )
    assert code == 0
    evaluated = json.loads(metrics_file.read_text())
    expected = json.loads((out / "sl" / "fold_2" / "test_results.json").read_text())
    # evaluate's default path is the training loop's test scoring: one protocol, one number
    assert evaluated["confusion_matrix"] == expected["confusion_matrix"]
    assert evaluated["war"] == expected["war"] and evaluated["uar"] == expected["uar"]
    assert evaluated["scoring_protocol"] == expected["scoring_protocol"]
    assert expected["scoring_protocol"]["segmentation"] == "vad"
    assert f"WAR {100 * expected['war']:.1f}" in capsys.readouterr().out


def test_evaluate_scores_a_long_clip_as_predict_does(cross_validation, tmp_path, make_clip):
    """A clip longer than the model's maximum (14 s) is scored over all of it, as `predict` scores the file, not cut
    to its first 14 s; the report says which policy it used."""
    import soundfile as sf
    from gemo_clap.processing.builder import build_corpus, save_dataset
    from gemo_clap.train.evaluation.cli_evaluate import evaluate_model

    from gemo_clap.loading import load_classifier
    from gemo_clap.timeline.result import predict_file

    _, out, _ = cross_validation
    model = out / "sl" / "fold_2" / "model"
    long_clip = make_clip(30.0, seed=5)
    long_clip[: 16000 * 14] *= 0.01  # the first 14 s nearly silent: only the rest decides
    path = tmp_path / "long.wav"
    sf.write(path, long_clip, 16000, subtype="FLOAT")
    (tmp_path / "manifest.csv").write_text(f"path,emotion,gender,speaker,fold\n{path},angry,female,s1,1\n")
    dataset, _ = build_corpus("manifest", tmp_path / "manifest.csv", label_map="4class", max_seconds=None)  # 30 s kept
    save_dataset(dataset, tmp_path / "dataset")
    classifier = load_classifier(str(model), False)
    fixed, _ = predict_file(classifier, str(path), 8, segmentation="fixed")
    for segmentation in ("fixed", "vad"):
        metrics = evaluate_model(str(model), str(tmp_path / "dataset"), segmentation=segmentation)
        predicted = ["angry", "happy", "sad", "neutral"][metrics["confusion_matrix"][0].index(1)]
        assert predicted == fixed["scores"][0]["label"]
        assert metrics["scoring_protocol"]["segmentation"] == segmentation
    # the generated clip is not speech to the VAD: predict says so, evaluate scores it whole and counts it
    assert not predict_file(classifier, str(path), 8, segmentation="vad")[0]["speech"]
    assert metrics["scoring_protocol"]["no_speech_clips"] == 1


def test_evaluate_and_cross_validate_name_bad_input(cross_validation, tmp_path, capsys):
    _, out, dataset = cross_validation
    assert (
        main(["evaluate", "--model", str(out / "sl" / "fold_2" / "model"), "--dataset", str(dataset), "--fold", "7"])
        == 2
    )
    assert "fold 7 is not one of the dataset's folds [1, 2]" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(out / "sl" / "fold_2" / "model"), "--dataset", str(tmp_path)]) == 2
    assert "not a dataset saved by `gemo-clap build-dataset`" in capsys.readouterr().err
    assert main(["cross-validate", "--variants", "emo,gemo", f"dataset={dataset}"]) == 2
    assert "variant must be one of" in capsys.readouterr().err


def test_finished_folds_keep_their_model_and_results_not_their_checkpoints(cross_validation):
    _, out, _ = cross_validation
    for variant in ("emo", "sl"):
        for fold in (1, 2):
            folder = out / variant / f"fold_{fold}"
            assert (folder / "model" / "model.safetensors").is_file() and (folder / "test_results.json").is_file()
            assert not (folder / "checkpoints").exists()


def test_discard_models_keeps_only_the_results(tiny_encoders, tmp_path):
    dataset = build_tiny_dataset(tmp_path)
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset, tmp_path / "out", freeze="audio", num_epochs=1)
    assert main(["cross-validate", "--discard-models", *overrides]) == 0
    for fold in (1, 2):
        folder = tmp_path / "out" / "sl" / f"fold_{fold}"
        assert (folder / "test_results.json").is_file() and (folder / "history.jsonl").is_file()
        assert not (folder / "model").exists() and not (folder / "checkpoints").exists()
    assert json.loads((tmp_path / "out" / "results.json").read_text())["variants"]["sl"]["folds"]


@pytest.mark.parametrize(
    "command, message",
    [
        (["cross-validate", "--seeds", "a"], "--seeds takes comma-separated whole numbers, e.g. 1,2,3; got 'a'"),
        (["cross-validate", "--folds", "1,x"], "--folds takes comma-separated whole numbers, e.g. 1,2,3; got '1,x'"),
        (["evaluate", "--model", "m", "--dataset", "d", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ],
)
def test_bad_option_values_name_the_option(command, message, tiny_encoders, tmp_path, capsys):
    dataset = build_tiny_dataset(tmp_path) if command[0] == "cross-validate" else None
    extra = tiny_overrides(tiny_encoders("wavlm"), dataset, tmp_path / "out") if dataset else []
    assert main([*command, *extra]) == 2
    error = capsys.readouterr().err
    assert error.strip().splitlines()[-1] == f"gemo-clap {command[0]}: {message}" and "Traceback" not in error


def test_cross_validate_refuses_a_folder_holding_one_unless_resumed_or_overwritten(
    tiny_encoders, dataset_dir, tmp_path, capsys
):
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "cv", freeze="audio", num_epochs=1)
    assert main(["cross-validate", "--folds", "1", *overrides]) == 0
    capsys.readouterr()
    assert main(["cross-validate", "--folds", "1", *overrides]) == 2
    assert "already holds a cross-validation (results.json, results.md" in capsys.readouterr().err
    started = (tmp_path / "cv" / "sl" / "fold_1" / "test_results.json").stat().st_mtime_ns
    assert main(["cross-validate", "--resume", "--folds", "1,2", *overrides]) == 0  # fold 1 kept, fold 2 trained
    assert (tmp_path / "cv" / "sl" / "fold_1" / "test_results.json").stat().st_mtime_ns == started
    assert len(json.loads((tmp_path / "cv" / "results.json").read_text())["variants"]["sl"]["folds"]) == 2
    assert main(["cross-validate", "--overwrite", "--folds", "2", *overrides]) == 0
    assert not (tmp_path / "cv" / "sl" / "fold_1").exists() and (tmp_path / "cv" / "sl" / "fold_2").is_dir()


def test_cross_validate_gives_the_clean_errors_train_gives(tiny_encoders, dataset_dir, tmp_path, capsys):
    no_gender = tmp_path / "no-gender"
    datasets.load_from_disk(str(dataset_dir)).remove_columns("gender").save_to_disk(str(no_gender))
    towers = tiny_encoders("wavlm")
    cases = [
        (["--dataset", str(tmp_path / "nowhere")], "not a dataset saved by `gemo-clap build-dataset`"),
        (["--dataset", str(no_gender), "--variants", "sl"], "lacks column(s) ['gender']"),
        (["--dataset", str(dataset_dir), "--folds", "9"], "test fold(s) [9] are not among the dataset's folds [1, 2]"),
    ]
    for arguments, message in cases:
        code = main(["cross-validate", *arguments, "--output-dir", str(tmp_path / "out"),
                     f"audio_encoder={towers[0]}", f"text_encoder={towers[1]}"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err
        assert err.splitlines()[-1].startswith("gemo-clap cross-validate: ")
    assert not (tmp_path / "out").exists()


def test_evaluate_says_which_folds_it_scored_with_a_progress_bar(cross_validation, capsys):
    _, out, dataset = cross_validation
    model = str(out / "sl" / "fold_2" / "model")
    assert main(["evaluate", "--model", model, "--dataset", str(dataset)]) == 0
    err = capsys.readouterr().err
    assert (
        "scoring 32 utterances of fold(s) [1, 2]: the whole dataset, including any folds the model was trained on"
        in err
    )
    assert "scoring: 100%" in err
    assert main(["evaluate", "--model", model, "--dataset", str(dataset), "--fold", "1"]) == 0
    err = capsys.readouterr().err
    assert "scoring 16 utterances of fold(s) [1]\n" in err and "including" not in err
