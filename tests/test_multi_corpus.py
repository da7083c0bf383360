"""Several corpora at once: two generated corpora joined on their shared labels train together and report per-corpus
scores, sampling draws each corpus equally often, `cross-corpus` scores a corpus the model never saw (the probe
beside it), and label sets that cannot be joined are refused in one line before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.processing.synthetic import generate_corpus
from gemo_clap.train.multi_corpus import CorpusBalancedSampler, load_corpora
from helpers import tiny_overrides

from gemo_clap.cli import main


def build(root: Path, emotions=("angry", "happy", "sad", "neutral"), seed: int = 0, label_map=None) -> Path:
    """A tiny generated corpus: 2 speakers per gender x `emotions` x 2 clips of 0.5 s, in 2 speaker folds."""
    manifest = generate_corpus(
        root / "corpus", speakers_per_gender=2, clips_per_emotion=2, emotions=emotions, seed=seed
    )
    dataset, _ = build_corpus("manifest", manifest, num_folds=2, max_seconds=0.5, label_map=label_map)
    return save_dataset(dataset, root / "dataset")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpora")
    return {
        "a": build(root / "a"),
        "b": build(root / "b", ("angry", "sad", "neutral"), seed=1),
        "c": build(root / "c", ("happy", "sad"), seed=2),
        "d": build(root / "d", ("angry", "neutral"), seed=3),
    }


def test_two_corpora_join_on_the_labels_both_have_keeping_their_folds(corpora):
    joined = load_corpora([corpora["a"], corpora["b"]])
    assert joined.features["emotion"].names == ["angry", "sad", "neutral"]
    assert set(joined["corpus"]) == {"manifest-1", "manifest-2"}
    assert len(joined) == 2 * 24  # happy dropped from a: 24 clips each
    assert sorted(set(joined["fold"])) == [1, 2]
    assert all(speaker.startswith(corpus + "/") for speaker, corpus in zip(joined["speaker"], joined["corpus"]))
    names = joined.features["emotion"].names
    a = load_corpora([corpora["a"]])
    a_names = a.features["emotion"].names
    expected = [a_names[e] for e in a["emotion"] if a_names[e] != "happy"]
    assert [names[e] for e, c in zip(joined["emotion"], joined["corpus"]) if c == "manifest-1"] == expected


def test_label_sets_that_cannot_be_joined_are_refused(corpora):
    with pytest.raises(ValueError, match="the datasets have disjoint label sets .*pass label_map"):
        load_corpora([corpora["c"], corpora["d"]])
    with pytest.raises(ValueError, match="share a single emotion \\('sad'\\)"):
        load_corpora([corpora["b"], corpora["c"]])
    with pytest.raises(ValueError, match="drop every utterance of corpus 'manifest-2'"):
        load_corpora([corpora["a"], corpora["c"]], label_map="angry:negative,neutral:calm")
    with pytest.raises(ValueError, match="a dataset is given twice"):
        load_corpora([corpora["a"], corpora["a"]])


def test_corpus_balanced_sampling_draws_each_corpus_equally_often():
    sampler = CorpusBalancedSampler(["big"] * 300 + ["small"] * 100, seed=0)
    order = list(sampler)
    assert len(order) == 400 and 160 <= sum(index >= 300 for index in order) <= 240
    sampler.set_epoch(1)
    assert list(sampler) != order and sampler.__len__() == 400


@pytest.mark.usefixtures("one_torch_thread")
def test_two_datasets_train_together_and_report_per_corpus_metrics(tiny_encoders, corpora, tmp_path):
    dataset = f"{corpora['a']},{corpora['b']}"
    overrides = tiny_overrides(tiny_encoders("whisper"), dataset, tmp_path / "cv", freeze="audio", speech_trim=False)
    overrides = [item for item in overrides if not item.startswith("test_fold=")]
    assert main(["cross-validate", "--folds", "1", *overrides]) == 0
    fold = json.loads((tmp_path / "cv" / "sl" / "fold_1" / "test_results.json").read_text())
    per_corpus = fold["per_corpus"]
    assert set(per_corpus) == {"manifest-1", "manifest-2"}
    assert sum(entry["utterances"] for entry in per_corpus.values()) == sum(map(sum, fold["confusion_matrix"]))
    assert {entry["utterances"] for entry in per_corpus.values()} == {12}  # fold 1 of each corpus, happy dropped
    report = json.loads((tmp_path / "cv" / "results.json").read_text())
    assert {"sl", "sl on manifest-1", "sl on manifest-2"} <= set(report["variants"])
    assert report["variants"]["sl on manifest-1"]["folds"][0]["war"] == per_corpus["manifest-1"]["war"]


@pytest.mark.usefixtures("one_torch_thread")
def test_cross_corpus_scores_a_corpus_the_model_never_saw_with_the_probe_beside(
    tiny_encoders, corpora, tmp_path, capsys
):
    towers = tiny_encoders("whisper")
    overrides = tiny_overrides(towers, corpora["a"], tmp_path / "unused", freeze="audio", speech_trim=False)
    overrides = [item for item in overrides if not item.startswith(("dataset=", "output_dir=", "test_fold="))]
    output = tmp_path / "xc"
    command = ["cross-corpus", "--train", str(corpora["a"]), "--test", str(corpora["b"]), "--output-dir", str(output)]
    assert main([*command, "--probe", "--seeds", "0,1", *overrides]) == 0
    report = json.loads((output / "results.json").read_text())
    assert {"sl", "probe (all layers)", "probe (last layer)"} <= set(report["variants"])
    runs = report["variants"]["sl"]["folds"]
    assert [run["seed"] for run in runs] == [0, 1]
    assert all(sum(map(sum, run["confusion_matrix"])) == 24 for run in runs)  # all of b (happy dropped from a)
    probe = report["variants"]["probe (all layers)"]["folds"][0]
    assert sum(map(sum, probe["confusion_matrix"])) == 24
    provenance = json.loads((output / "sl" / "seed_0" / "model" / "training_config.json").read_text())
    assert provenance["corpus"] == "manifest-1" and "test_dataset" not in provenance
    assert "tested on all of manifest-2" in report["protocol"][0]
    assert main([*command, *overrides]) == 2  # a second run into the same folder
    assert (
        "already holds a cross-corpus run (results.json, results.md, sl): pass --overwrite" in capsys.readouterr().err
    )


def test_cross_corpus_refuses_a_test_corpus_it_trains_on(corpora, tmp_path, capsys):
    command = ["cross-corpus", "--train", str(corpora["a"]), "--test", str(corpora["a"])]
    assert main([*command, "--output-dir", str(tmp_path / "xc"), "freeze=audio"]) == 2
    assert "is also a training dataset" in capsys.readouterr().err
    assert not (tmp_path / "xc").exists()
