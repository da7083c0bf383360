"""Settings chosen on inner folds of the training folds (`select: auto`, train/selection.py), a final model on every
utterance (`--test-fold none`, `cross-validate --final`) and their bad input."""

from __future__ import annotations

import json

import pytest
from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.processing.synthetic import generate_corpus
from gemo_clap.train import selection
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.data import load_built_dataset
from gemo_clap.train.hub.model_card import render_model_card
from helpers import tiny_overrides

from gemo_clap.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SPACE = "select_space={num_epochs: [1, 2], model.sl_alpha: [0.5, 0.6]}"


@pytest.fixture(scope="module")
def three_folds(tmp_path_factory):
    """6 speakers (3 per gender) x 4 emotions x 1 clip of 0.5 s, in 3 speaker folds of 8 clips."""
    root = tmp_path_factory.mktemp("three-folds")
    manifest = generate_corpus(root / "corpus", speakers_per_gender=3, clips_per_emotion=1)
    dataset, _ = build_corpus("manifest", manifest, num_folds=3, max_seconds=0.5)
    return save_dataset(dataset, root / "dataset")


def selection_config(encoders, dataset, output_dir, *extra: str) -> TrainingConfig:
    overrides = tiny_overrides(
        encoders, dataset, output_dir, freeze="audio", freeze_text="true", validation_fraction=0, num_epochs=1
    )
    return TrainingConfig.load(None, [*overrides, "select=auto", SPACE, "select_folds=0", *extra])


def test_inner_folds_never_hold_a_test_fold_speaker(three_folds):
    dataset = load_built_dataset(three_folds)
    # a speaker of test fold 1 also recorded one clip filed under fold 2: the selection must not see it either
    speaker = dataset.filter(lambda row: row["fold"] == 1)["speaker"][0]
    leaked = next(index for index, fold in enumerate(dataset["fold"]) if fold == 2)
    dataset = dataset.map(
        lambda row, index: {"speaker": speaker if index == leaked else row["speaker"]}, with_indices=True
    )
    config = TrainingConfig(dataset=str(three_folds), test_fold=1, select="auto", select_folds=0)
    pool = selection.inner_pool(dataset, config)
    assert speaker not in set(pool["speaker"]) and 1 not in set(pool["fold"])
    assert len(pool) == len(dataset) - 8 - 1
    assert selection.inner_folds(pool, config) == [2, 3]


def test_selection_trains_and_scores_inner_folds_only(tiny_encoders, three_folds, tmp_path, monkeypatch):
    seen = []
    fold_splits = selection.fold_splits

    def recording(pool, fold, *args):
        splits = fold_splits(pool, fold, *args)
        seen.append((fold, set(splits.train["speaker"]), set(splits.test["speaker"])))
        return splits

    monkeypatch.setattr(selection, "fold_splits", recording)
    config = selection_config(tiny_encoders("whisper"), three_folds, tmp_path / "run", "test_fold=2")
    chosen, record = selection.choose_settings(config)
    dataset = load_built_dataset(three_folds)
    test_speakers = {s for s, fold in zip(dataset["speaker"], dataset["fold"]) if fold == 2}
    assert record["inner_folds"] == [1, 3] and {fold for fold, _, _ in seen} == {1, 3}
    for fold, trained, scored in seen:
        assert not (trained | scored) & test_speakers and not trained & scored
    # the staged search: the start, one other num_epochs, two other alphas; every candidate on both inner folds
    assert len(record["candidates"]) == 4
    assert all(len(candidate["folds"]) == 2 for candidate in record["candidates"])
    assert set(record["chosen"]) == {"num_epochs", "model.sl_alpha"}
    assert chosen.num_epochs == record["chosen"]["num_epochs"]
    assert chosen.sl_alpha == record["chosen"]["model.sl_alpha"]
    best = max(record["candidates"], key=lambda candidate: candidate["uar"])
    assert record["inner_uar"] >= best["uar"] - selection.IMPROVEMENT
    # the search writes nothing but the frozen-tower cache the run would share (`<output_dir>/audio_cache`)
    assert [path.name for path in (tmp_path / "run").iterdir()] == ["audio_cache"]


def test_the_choice_is_reproducible_with_a_seed(tiny_encoders, three_folds, tmp_path):
    config = selection_config(tiny_encoders("whisper"), three_folds, tmp_path / "run", "select_folds=1")
    records = [selection.choose_settings(config)[1] for _ in range(2)]
    for record in records:
        record.pop("seconds")
    assert records[0] == records[1]
    assert len(records[0]["inner_folds"]) == 1


def test_test_fold_none_trains_on_every_utterance_and_writes_no_test_score(
    tiny_encoders, dataset_dir, tmp_path, monkeypatch, capsys
):
    from gemo_clap.train import multi_corpus

    trained = []
    fold_splits = multi_corpus.fold_splits

    def recording(*args):
        splits = fold_splits(*args)
        trained.append(len(splits.train))
        return splits

    monkeypatch.setattr(multi_corpus, "fold_splits", recording)  # what the run's splits come from
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "final", freeze="audio", num_epochs=1)
    overrides = [override for override in overrides if not override.startswith("test_fold=")]
    code = main(["train", "--test-fold", "none", *overrides, "validation_fraction=0"])
    assert code == 0
    assert trained == [len(load_built_dataset(dataset_dir))] == [32]
    assert not (tmp_path / "final" / "test_results.json").exists()
    assert (tmp_path / "final" / "model" / "model.safetensors").is_file()
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "test_war" not in summary
    saved = json.loads((tmp_path / "final" / "model" / "training_config.json").read_text())
    assert saved["test_fold"] is None


def test_cross_validate_select_final(tiny_encoders, three_folds, tmp_path):
    overrides = tiny_overrides(
        tiny_encoders("whisper"), three_folds, tmp_path / "cv", freeze="audio", validation_fraction=0, num_epochs=1
    )
    code = main(["cross-validate", "--folds", "1", "--select", "--final", *overrides, "freeze_text=true", SPACE])
    assert code == 0
    report = json.loads((tmp_path / "cv" / "results.json").read_text())
    (fold,) = report["variants"]["sl"]["folds"]
    # one inner fold per candidate by default, drawn with the seed from the training folds
    assert fold["selection"]["inner_folds"] in ([2], [3]) and fold["selection"]["test_fold"] == 1
    assert any(line.startswith("selection, sl / test fold 1:") for line in report["protocol"])
    assert "selection, sl / test fold 1:" in (tmp_path / "cv" / "results.md").read_text()
    final = tmp_path / "cv" / "sl" / "final"
    assert not (final / "test_results.json").exists()
    figure = json.loads((final / "model" / "cross_validation.json").read_text())
    assert figure["war"]["mean"] == pytest.approx(fold["war"])
    record = json.loads((final / "model" / "selection.json").read_text())
    assert record["test_fold"] is None and len(record["inner_folds"]) == 1
    card = str(
        render_model_card(
            repo_id="org/final",
            variant="sl",
            audio_encoder="a",
            text_encoder="t",
            dataset_name="custom",
            protocol="p",
            label_names=["angry", "happy", "sad", "neutral"],
            results=None,
            training_args=json.loads((final / "model" / "training_config.json").read_text()),
            selection=record,
            cross_validation=figure,
        )
    )
    assert "it has no held-out score" in card
    assert f"WAR {100 * fold['war']:.2f} ± 0.00 %" in card
    assert "Settings chosen on speaker-held-out inner folds" in card


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["select_space={lerning_rate: [0.1]}"], "select_space: unknown key 'lerning_rate' (did you mean"),
        (["select_space={num_epochs: []}"], "select_space: 'num_epochs' needs a non-empty list"),
        (["select_space={seed: [1, 2]}"], "select_space: 'seed' cannot be searched"),
        (["select_space={num_epochs: [0]}"], "num_epochs must be >= 1"),
        (["freeze=none"], "it needs freeze=audio"),
    ],
)
def test_bad_search_spaces(tiny_encoders, dataset_dir, tmp_path, extra, message, capsys):
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "out", freeze="audio")
    assert main(["train", "--select", *overrides, *extra]) != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_too_few_folds_for_inner_folds(tiny_encoders, dataset_dir, tmp_path, capsys):
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "out", freeze="audio")
    assert main(["train", "--select", *overrides]) != 0
    err = capsys.readouterr().err
    assert "needs 2 or more speaker-held-out folds" in err and "test fold 1" in err
    assert not (tmp_path / "out").exists()


def test_test_fold_none_on_one_speaker(tiny_encoders, tmp_path, capsys):
    manifest = generate_corpus(tmp_path / "corpus", speakers_per_gender=1, clips_per_emotion=1)
    dataset, _ = build_corpus("manifest", manifest, num_folds=2, max_seconds=0.5)
    dataset = dataset.filter(lambda row: row["speaker"] == dataset["speaker"][0])
    folder = save_dataset(dataset, tmp_path / "dataset")
    overrides = tiny_overrides(tiny_encoders("wavlm"), folder, tmp_path / "out", freeze="audio", test_fold="none")
    assert main(["train", *overrides, "validation_fraction=0"]) != 0
    assert "test_fold=none on a corpus of one speaker" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_test_fold_none_keeps_no_validation_split(tiny_encoders, dataset_dir, tmp_path, capsys):
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "out", test_fold="none")
    assert main(["train", *overrides]) != 0
    assert "it needs validation_fraction=0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
