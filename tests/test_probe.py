"""The linear probe every result is compared with: features (last or all hidden states), C chosen on the training
folds alone by leave-one-fold-out UAR, and `cross-validate --probe` reporting it beside the variants."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gemo_clap.train.evaluation.metrics.ser_metrics import unweighted_average_recall
from gemo_clap.train.evaluation.probe import PROBE_CS, choose_c, probe_features, probe_predictions
from helpers import build_tiny_dataset, tiny_overrides
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from gemo_clap.cli import main


def toy_corpus(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """120 utterances, 3 classes, 4 folds; 2 informative features of very different scales among 30 noisy ones."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(3), 40)
    folds = np.repeat(np.arange(1, 5), 30)
    features = rng.normal(size=(120, 30))
    features[:, 0] += 2.0 * labels
    features[:, 1] = 1000 * (features[:, 1] + 2.0 * (labels == 2))
    return features, labels, folds


def test_features_are_the_last_or_every_states_mean_and_std():
    statistics = np.arange(5 * 3 * 2 * 4, dtype=float).reshape(5, 3, 2, 4)
    assert probe_features(statistics, "last").tolist() == statistics[:, 2].reshape(5, 8).tolist()
    assert probe_features(statistics, "all").tolist() == statistics.reshape(5, 24).tolist()
    with pytest.raises(ValueError, match="probe layers must be one of"):
        probe_features(statistics, "first")


def test_c_is_chosen_by_leave_one_fold_out_uar_on_the_training_folds_alone():
    features, labels, folds = toy_corpus()
    train = folds != 4
    expected = []
    for c in PROBE_CS:  # the same search written out with scikit-learn, fold by fold
        uars = []
        for held_out in (1, 2, 3):
            fit = (folds != held_out) & train
            scaler = StandardScaler().fit(features[fit])
            classifier = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(features[fit]), labels[fit])
            test = folds == held_out
            uars.append(unweighted_average_recall(classifier.predict(scaler.transform(features[test])), labels[test]))
        expected.append(np.mean(uars))
    assert choose_c(features[train], labels[train], folds[train]) == PROBE_CS[int(np.argmax(expected))]

    predictions, c = probe_predictions(features, labels, folds, test_fold=4)
    assert c == PROBE_CS[int(np.argmax(expected))] and predictions.shape == (30,)
    # the test fold's labels play no part: shuffling them changes neither C nor the predictions
    shuffled = labels.copy()
    shuffled[folds == 4] = np.random.default_rng(1).permutation(shuffled[folds == 4])
    again, c_again = probe_predictions(features, shuffled, folds, test_fold=4)
    assert c_again == c and np.array_equal(again, predictions)
    # it learnt the informative features (chance: 1/3)
    assert unweighted_average_recall(predictions, labels[folds == 4]) >= 0.65


@pytest.mark.usefixtures("one_torch_thread")
def test_cross_validate_reports_both_probes_beside_the_variant(tiny_encoders, tmp_path):
    dataset = build_tiny_dataset(tmp_path / "data")
    output = tmp_path / "cv"
    overrides = tiny_overrides(tiny_encoders("whisper"), dataset, output, freeze="audio", num_epochs=1)
    overrides = [item for item in overrides if not item.startswith(("test_fold=", "output_dir="))]
    code = main(["cross-validate", "--output-dir", str(output), "--probe", *overrides])
    assert code == 0
    report = json.loads((output / "results.json").read_text())
    assert list(report["variants"]) == ["probe (all layers)", "probe (last layer)", "sl"]
    for name in ("probe (all layers)", "probe (last layer)"):
        folds = report["variants"][name]["folds"]
        assert [fold["fold"] for fold in folds] == [1, 2]
        assert all(fold["probe_c"] == 1.0 and "gender_gap" in fold for fold in folds)  # one training fold: default C
        assert sum(map(sum, report["variants"][name]["summary"]["confusion_matrix"])) == 32
    assert any("probes:" in line for line in report["protocol"])
    assert "probe (all layers)" in (output / "results.md").read_text()
