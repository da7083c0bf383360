"""The shipped SER metric (train/metrics/ser_metrics.py), cross-checked against scikit-learn."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from gemo_clap.train.evaluation.metric_loading import SER_METRIC_PATH, load_ser_metric
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, recall_score

EMOTIONS = ["anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"]


@pytest.fixture(scope="module")
def ser_metric():
    return load_ser_metric()


def sklearn_scores(references, predictions, num_labels):
    """The metric's numbers computed by scikit-learn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about classes absent from y_true / y_pred
        present = np.unique(references)
        return {
            "war": accuracy_score(references, predictions),
            "uar": balanced_accuracy_score(references, predictions),
            "uar_via_recall": recall_score(references, predictions, labels=present, average="macro"),
            "macro_f1": f1_score(references, predictions, average="macro"),
            "per_class_recall": recall_score(references, predictions, labels=present, average=None),
            "confusion_matrix": confusion_matrix(references, predictions, labels=list(range(num_labels))).tolist(),
        }


def assert_matches_sklearn(result, references, predictions, num_labels, label_names=None):
    expected = sklearn_scores(references, predictions, num_labels)
    assert result["war"] == pytest.approx(expected["war"], abs=1e-12)
    assert result["uar"] == pytest.approx(expected["uar"], abs=1e-12)
    assert result["uar"] == pytest.approx(expected["uar_via_recall"], abs=1e-12)
    assert result["macro_f1"] == pytest.approx(expected["macro_f1"], abs=1e-12)
    assert result["confusion_matrix"] == expected["confusion_matrix"]
    names = label_names or [str(c) for c in range(num_labels)]
    present = np.unique(references)
    assert list(result["per_class_recall"]) == [names[c] for c in present]
    assert list(result["per_class_recall"].values()) == pytest.approx(expected["per_class_recall"].tolist(), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_inputs_match_sklearn(ser_metric, seed):
    rng = np.random.default_rng(seed)
    references = rng.integers(0, 7, size=200)
    predictions = np.where(rng.random(200) < 0.6, references, rng.integers(0, 7, size=200))
    genders = rng.integers(0, 2, size=200)
    result = ser_metric.compute(
        predictions=predictions.tolist(),
        references=references.tolist(),
        genders=genders.tolist(),
        label_names=EMOTIONS,
        gender_names=["male", "female"],
    )
    assert set(result) == {"war", "uar", "macro_f1", "per_class_recall", "confusion_matrix", "per_gender", "gender_gap"}
    assert_matches_sklearn(result, references, predictions, 7, EMOTIONS)
    assert list(result["per_gender"]) == ["male", "female"]
    per_gender = []
    for gender_id, name in enumerate(["male", "female"]):
        mask = genders == gender_id
        expected = sklearn_scores(references[mask], predictions[mask], 7)
        per_gender.append(expected)
        assert result["per_gender"][name] == pytest.approx({"war": expected["war"], "uar": expected["uar"]}, abs=1e-12)
    gap = {key: abs(per_gender[0][key] - per_gender[1][key]) for key in ("war", "uar")}
    assert result["gender_gap"] == pytest.approx(gap, abs=1e-12)


def test_gender_accuracy_of_gender_predictions(ser_metric):
    result = ser_metric.compute(
        predictions=[0, 1, 1, 0], references=[0, 1, 0, 0], genders=[0, 0, 1, 1], gender_predictions=[0, 1, 1, 1]
    )
    assert result["gender_accuracy"] == 0.75
    assert result["gender_gap"] == pytest.approx({"war": 0.5, "uar": 0.5})  # gender 0 all right; gender 1 half
    with pytest.raises(ValueError, match="gender_predictions need one reference gender each"):
        ser_metric.compute(predictions=[0, 1], references=[0, 1], gender_predictions=[0, 1])
    one_gender = ser_metric.compute(predictions=[0, 1], references=[0, 1], genders=[1, 1])
    assert "gender_gap" not in one_gender and "gender_accuracy" not in one_gender


def test_hand_computed_example(ser_metric):
    # references: three "a", one "b"; predictions get one "a" and the "b" right.
    result = ser_metric.compute(predictions=[0, 1, 2, 1], references=[0, 0, 0, 1], label_names=["a", "b", "c"])
    assert result["war"] == 0.5
    assert result["uar"] == pytest.approx((1 / 3 + 1) / 2)
    assert result["per_class_recall"] == pytest.approx({"a": 1 / 3, "b": 1.0})
    assert result["confusion_matrix"] == [[1, 1, 1], [0, 1, 0], [0, 0, 0]]
    # F1: a = 2*1/(3+1), b = 2*1/(1+2), c = 0 (predicted, never true)
    assert result["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert "per_gender" not in result


def test_class_absent_from_predictions(ser_metric):
    references = [0, 0, 1, 1, 2, 2]
    predictions = [0, 0, 0, 1, 0, 1]  # class 2 never predicted
    result = ser_metric.compute(predictions=predictions, references=references, num_labels=4)
    assert_matches_sklearn(result, np.array(references), np.array(predictions), 4)
    assert result["per_class_recall"]["2"] == 0.0
    assert len(result["confusion_matrix"]) == 4 and all(len(row) == 4 for row in result["confusion_matrix"])


def test_class_predicted_but_absent_from_references(ser_metric):
    references = [0, 0, 1, 1]
    predictions = [0, 2, 1, 1]
    result = ser_metric.compute(predictions=predictions, references=references)
    assert_matches_sklearn(result, np.array(references), np.array(predictions), 3)
    assert set(result["per_class_recall"]) == {"0", "1"}  # UAR only over classes present in references
    assert result["uar"] == pytest.approx(0.75)


def test_single_class(ser_metric):
    result = ser_metric.compute(predictions=[3, 3, 3], references=[3, 3, 3], label_names=EMOTIONS)
    assert_matches_sklearn(result, np.array([3, 3, 3]), np.array([3, 3, 3]), 7, EMOTIONS)
    assert (result["war"], result["uar"], result["macro_f1"]) == (1.0, 1.0, 1.0)
    assert result["per_class_recall"] == {"fear": 1.0}

    wrong = ser_metric.compute(predictions=[1, 1], references=[0, 0])
    assert_matches_sklearn(wrong, np.array([0, 0]), np.array([1, 1]), 2)
    assert (wrong["war"], wrong["uar"], wrong["macro_f1"]) == (0.0, 0.0, 0.0)


def test_string_genders_without_names(ser_metric):
    result = ser_metric.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0], genders=["m", "f", "m", "f"])
    assert result["per_gender"] == {"f": {"war": 1.0, "uar": 1.0}, "m": {"war": 0.5, "uar": 0.5}}


def test_add_batch_accumulates(ser_metric):
    rng = np.random.default_rng(3)
    references, predictions = rng.integers(0, 4, size=50), rng.integers(0, 4, size=50)
    for start in range(0, 50, 16):
        ser_metric.add_batch(predictions=predictions[start : start + 16], references=references[start : start + 16])
    assert_matches_sklearn(ser_metric.compute(num_labels=4), references, predictions, 4)


@pytest.mark.parametrize(
    ("predictions", "references", "kwargs", "message"),
    [
        ([0, 1, 1], [0, 1], {}, r"Mismatch in the number of predictions \(3\) and references \(2\)"),
        ([0, 1], [0, 1], {"genders": [0]}, "genders has 1 entries but predictions/references have 2"),
        ([0, 5], [0, 1], {"num_labels": 3}, r"predictions holds class id 5, outside \[0, 3\)"),
        ([0, 1], [0, -1], {}, r"references holds class id -1, outside \[0, 2\)"),
        ([0, 1], [0, 1], {"label_names": ["a", "b"], "num_labels": 3}, "num_labels=3 but 2 label_names given"),
        ([0, 1], [0, 1], {"genders": [0, 2], "gender_names": ["m", "f"]}, "gender id 2 has no entry in gender_names"),
        ([], [], {}, "no predictions/references to score"),
    ],
)
def test_bad_input_errors(ser_metric, predictions, references, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ser_metric.compute(predictions=predictions, references=references, **kwargs)


OFFLINE_SCRIPT = """
import json, socket, sys

def refuse(*args, **kwargs):
    raise OSError(f"network access attempted: {args}")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
import evaluate

metric = evaluate.load(sys.argv[1], keep_in_memory=True)
print(json.dumps(metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])))
"""


def test_loads_by_path_offline_with_network_blocked(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, str(SER_METRIC_PATH)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["war"] == pytest.approx(2 / 3) and result["uar"] == pytest.approx(0.75)
    # evaluate copies the script into HF_MODULES_CACHE/evaluate_modules/metrics/ser_metrics/<hash>/
    copies = list(Path(tmp_path, "evaluate_modules", "metrics", "ser_metrics").glob("*/ser_metrics.py"))
    assert [copy.read_text() for copy in copies] == [SER_METRIC_PATH.read_text()]


def test_unweighted_average_recall_is_the_metrics_uar(ser_metric):
    """The probe's model selection scores UAR with the metric's own function: the mean recall of the classes present
    in the references (a class only predicted does not count)."""
    from gemo_clap.train.evaluation.metrics.ser_metrics import unweighted_average_recall

    assert unweighted_average_recall(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1])) == pytest.approx((1 + 1 / 3) / 2)
    rng = np.random.default_rng(0)
    references, predictions = rng.integers(0, 5, 200), rng.integers(0, 6, 200)
    uar = ser_metric.compute(predictions=predictions, references=references, label_names=list("abcdef"))["uar"]
    assert unweighted_average_recall(predictions, references) == pytest.approx(uar, abs=1e-12)
    assert uar == pytest.approx(sklearn_scores(references, predictions, 6)["uar"], abs=1e-12)
