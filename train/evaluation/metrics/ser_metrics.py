"""Speech emotion recognition metrics: WAR, UAR, macro-F1, per-class recall, confusion matrix, per-gender scores.

An ``evaluate`` metric script: load it by path, ``evaluate.load("/path/to/ser_metrics.py")`` (no Hub access needed).
"""

from collections.abc import Sequence

import datasets
import evaluate
import numpy as np

_CITATION = """\
@article{pan2023gemoclap,
  title={GEmo-CLAP: Gender-Attribute-Enhanced Contrastive Language-Audio Pretraining for Accurate Speech Emotion Recognition},
  author={Pan, Yu and Hu, Yanni and Yang, Yuguang and Fei, Wen and Yao, Jixun and Lu, Heng and Ma, Lei and Zhao, Jianjun},
  journal={arXiv preprint arXiv:2306.07848},
  year={2023}
}
"""

_DESCRIPTION = """\
Standard speech emotion recognition scores. WAR (weighted average recall) is the accuracy; UAR (unweighted average
recall) is the mean recall over the classes present in the references; macro-F1 averages the per-class F1 over the
classes present in the references or the predictions (as scikit-learn's `f1_score(average="macro")`). With
`genders`, WAR and UAR are also reported for each gender separately, with the gap between two genders; with
`gender_predictions`, the accuracy of those.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted class ids.
    references (`list[int]`): reference class ids.
    genders (`list[int]` or `list[str]`, *optional*): one gender per example; enables `per_gender`.
    gender_predictions (`list[int]`, *optional*): predicted gender ids (with integer `genders`); enables
        `gender_accuracy`.
    label_names (`list[str]`, *optional*): name of each class id, used as keys of `per_class_recall`.
    gender_names (`list[str]`, *optional*): name of each integer gender id, used as keys of `per_gender`.
    num_labels (`int`, *optional*): number of classes (size of the confusion matrix); defaults to
        `len(label_names)`, else to the largest class id seen plus one.
Returns:
    war (`float`): accuracy.
    uar (`float`): mean recall over the classes present in `references`.
    macro_f1 (`float`): macro-averaged F1.
    per_class_recall (`dict[str, float]`): recall of each class present in `references`, keyed by label name
        (or by the class id as a string).
    confusion_matrix (`list[list[int]]`): `num_labels x num_labels` counts, rows = reference, columns = prediction.
    per_gender (`dict[str, dict[str, float]]`, only with `genders`): `{gender: {"war": ..., "uar": ...}}`.
    gender_gap (`dict[str, float]`, only with exactly two genders): the absolute WAR and UAR difference between them.
    gender_accuracy (`float`, only with `gender_predictions`): the fraction of genders predicted right.
Examples:
    >>> ser = evaluate.load("train/metrics/ser_metrics.py")
    >>> ser.compute(predictions=[0, 1, 1], references=[0, 1, 0], label_names=["anger", "sadness"])["uar"]
    0.75
"""


SCORES = ("war", "uar", "macro_f1")  # the scores of every result, in report order
GENDER_SCORES = ("war", "uar")  # the scores reported per gender, and as the gap between two genders
SCORE_TITLES = {"war": "WAR", "uar": "UAR", "macro_f1": "Macro-F1"}


def _confusion_matrix(references: np.ndarray, predictions: np.ndarray, num_labels: int) -> np.ndarray:
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (references, predictions), 1)
    return matrix


def _recalls(matrix: np.ndarray) -> dict[int, float]:
    """Recall of every class with at least one reference example."""
    support = matrix.sum(axis=1)
    return {int(c): float(matrix[c, c] / support[c]) for c in np.flatnonzero(support)}


def unweighted_average_recall(predictions: np.ndarray, references: np.ndarray) -> float:
    """UAR: the mean recall over the classes present in `references` (integer class ids)."""
    num_labels = int(max(np.max(predictions), np.max(references))) + 1
    return _war_uar(_confusion_matrix(np.asarray(references), np.asarray(predictions), num_labels))["uar"]


def _war_uar(matrix: np.ndarray) -> dict[str, float]:
    return {"war": float(np.trace(matrix) / matrix.sum()), "uar": float(np.mean(list(_recalls(matrix).values())))}


def _macro_f1(matrix: np.ndarray) -> float:
    true_positives = np.diag(matrix)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    seen = (support + predicted) > 0
    return float(np.mean(2 * true_positives[seen] / (support[seen] + predicted[seen])))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SerMetrics(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(
        self,
        predictions: Sequence[int],
        references: Sequence[int],
        genders: Sequence[int | str] | None = None,
        label_names: Sequence[str] | None = None,
        gender_names: Sequence[str] | None = None,
        num_labels: int | None = None,
        gender_predictions: Sequence[int] | None = None,
    ) -> dict:
        predictions, references = np.asarray(predictions, dtype=np.int64), np.asarray(references, dtype=np.int64)
        if len(references) == 0:
            raise ValueError("ser_metrics: no predictions/references to score")
        if label_names is not None:
            if num_labels is not None and num_labels != len(label_names):
                raise ValueError(f"ser_metrics: num_labels={num_labels} but {len(label_names)} label_names given")
            num_labels = len(label_names)
        if num_labels is None:
            num_labels = int(max(predictions.max(), references.max())) + 1
        for name, values in (("predictions", predictions), ("references", references)):
            bad = values[(values < 0) | (values >= num_labels)]
            if len(bad):
                raise ValueError(f"ser_metrics: {name} holds class id {int(bad[0])}, outside [0, {num_labels})")

        matrix = _confusion_matrix(references, predictions, num_labels)
        names = list(label_names) if label_names is not None else [str(c) for c in range(num_labels)]
        result = {
            **_war_uar(matrix),
            "macro_f1": _macro_f1(matrix),
            "per_class_recall": {names[c]: recall for c, recall in _recalls(matrix).items()},
            "confusion_matrix": matrix.tolist(),
        }
        if genders is not None:
            result["per_gender"] = self._per_gender(genders, gender_names, references, predictions, num_labels)
            scores = list(result["per_gender"].values())
            if len(scores) == 2:
                result["gender_gap"] = {key: abs(scores[0][key] - scores[1][key]) for key in GENDER_SCORES}
        if gender_predictions is not None and len(gender_predictions):
            if genders is None or len(gender_predictions) != len(genders):
                raise ValueError("ser_metrics: gender_predictions need one reference gender each (genders)")
            result["gender_accuracy"] = float(np.mean(np.asarray(gender_predictions) == np.asarray(genders)))
        return result

    @staticmethod
    def _per_gender(
        genders: Sequence[int | str],
        gender_names: Sequence[str] | None,
        references: np.ndarray,
        predictions: np.ndarray,
        num_labels: int,
    ) -> dict[str, dict[str, float]]:
        genders = np.asarray(genders)
        if len(genders) != len(references):
            raise ValueError(
                f"ser_metrics: genders has {len(genders)} entries but predictions/references have {len(references)}"
            )
        per_gender = {}
        for gender in np.unique(genders):
            if gender_names is not None:
                if not 0 <= int(gender) < len(gender_names):
                    raise ValueError(f"ser_metrics: gender id {gender} has no entry in gender_names={gender_names}")
                name = gender_names[int(gender)]
            else:
                name = str(gender)
            mask = genders == gender
            per_gender[name] = _war_uar(_confusion_matrix(references[mask], predictions[mask], num_labels))
        return per_gender
