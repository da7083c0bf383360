"""The linear probe every GEmo-CLAP result is compared with: the frozen audio tower's per-layer statistics (mean and
standard deviation over the real frames of each hidden state: the last one, or all of them concatenated),
standardised, into a logistic regression whose inverse regularisation `C` is chosen by leave-one-fold-out
cross-validation on the training folds alone (folds hold disjoint speakers, so each inner split scores speakers
the probe never fitted). The features come from the frozen-tower cache the training runs share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROBE_LAYERS = ("all", "last")  # which hidden states' statistics the probe sees
PROBE_CS = (0.01, 0.03, 0.1, 0.3, 1.0)  # candidates for logistic regression's C


def probe_name(layers: str) -> str:
    """The probe's row name in reports."""
    return f"probe ({layers} layers)" if layers == "all" else "probe (last layer)"


def probe_features(statistics: np.ndarray, layers: str) -> np.ndarray:
    """`[utterances, features]` from per-layer statistics `[utterances, states, 2, hidden]`: the last state's mean
    and std, or every state's, concatenated."""
    if layers not in PROBE_LAYERS:
        raise ValueError(f"probe layers must be one of {PROBE_LAYERS}, got {layers!r}")
    statistics = np.asarray(statistics, dtype=np.float64)
    if layers == "last":
        statistics = statistics[:, -1:]
    return statistics.reshape(len(statistics), -1)


def _classifier(c: float):
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as error:
        raise ImportError("the probe needs scikit-learn: pip install scikit-learn") from error
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def choose_c(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, cs: Sequence[float] = PROBE_CS) -> float:
    """The `C` of the best mean UAR over leave-one-group-out splits of the training data (the first of equals);
    scikit-learn's default 1.0 when the training data hold a single group (nothing to validate on)."""
    from .metrics.ser_metrics import unweighted_average_recall

    if len(np.unique(groups)) < 2:
        return 1.0
    scores = []
    for c in cs:
        uars = []
        for group in np.unique(groups):
            held_out = groups == group
            fitted = _classifier(c).fit(features[~held_out], labels[~held_out])
            uars.append(unweighted_average_recall(fitted.predict(features[held_out]), labels[held_out]))
        scores.append(np.mean(uars))
    return float(cs[int(np.argmax(scores))])


def probe_predictions(
    features: np.ndarray, labels: np.ndarray, folds: np.ndarray, test_fold: int
) -> tuple[np.ndarray, float]:
    """(predictions on `test_fold`, the chosen C): C chosen on the other folds alone, the probe fitted on all of them."""
    train = folds != test_fold
    c = choose_c(features[train], labels[train], folds[train])
    fitted = _classifier(c).fit(features[train], labels[train])
    return fitted.predict(features[~train]), c


def probe_fold_results(
    dataset, statistics: np.ndarray, folds: Sequence[int], layers: str, label_names: Sequence[str]
) -> list[dict]:
    """Per test fold of `dataset` (a built dataset with `emotion`, `fold` and optionally `gender`), the probe's
    scores as `score` reports them (WAR, UAR, per gender, gender gap, ...) plus the fold and the chosen C."""
    from .zero_shot import score

    features = probe_features(statistics, layers)
    labels, fold_column = np.asarray(dataset["emotion"]), np.asarray(dataset["fold"])
    genders = np.asarray(dataset["gender"]) if "gender" in dataset.column_names else None
    gender_names = dataset.features["gender"].names if genders is not None else []
    results = []
    for fold in folds:
        predictions, c = probe_predictions(features, labels, fold_column, fold)
        test = fold_column == fold
        outputs = {"predictions": predictions.tolist(), "references": labels[test].tolist()}
        if genders is not None:
            outputs["genders"] = genders[test].tolist()
        results.append({"fold": fold, **score(outputs, label_names, gender_names), "probe_c": c})
    return results


def frozen_tower_statistics(config, dataset, cache_dir) -> np.ndarray:
    """Per-layer statistics `[utterances, states, 2, hidden]` of the config's pretrained audio tower (frozen) for
    every utterance of `dataset`, from the frozen-tower cache the training runs share (filled where missing)."""
    from accelerate import Accelerator

    from ..audio_cache import AudioFeatureCache
    from ..towers import build_model_and_processor

    model, processor = build_model_and_processor(
        config.audio_encoder, config.text_encoder, max_audio_seconds=config.max_audio_seconds
    )
    cache = AudioFeatureCache(model.audio_model, cache_dir, layers="all", speech_only=config.speech_trim)
    cache.fill(model, processor, [dataset], Accelerator(), config.eval_batch_size)
    return cache.cached_split(dataset).statistics.numpy()


def probe_transfer_results(
    dataset, statistics: np.ndarray, test_rows: Sequence[bool], layers: str, label_names: Sequence[str]
) -> dict:
    """The probe fitted on every row but `test_rows` (C chosen by leave-one-fold-out over the training rows'
    corpus and fold) and scored on `test_rows`: a corpus it never fitted (cross-corpus), as `score` reports it."""
    from .zero_shot import score

    features = probe_features(statistics, layers)
    labels, test = np.asarray(dataset["emotion"]), np.asarray(test_rows, dtype=bool)
    corpora = dataset["corpus"] if "corpus" in dataset.column_names else [""] * len(dataset)
    groups = np.asarray([f"{corpus}/{fold}" for corpus, fold in zip(corpora, dataset["fold"])])
    c = choose_c(features[~test], labels[~test], groups[~test])
    predictions = _classifier(c).fit(features[~test], labels[~test]).predict(features[test])
    outputs = {"predictions": predictions.tolist(), "references": labels[test].tolist()}
    gender_names = []
    if "gender" in dataset.column_names:
        outputs["genders"] = np.asarray(dataset["gender"])[test].tolist()
        gender_names = dataset.features["gender"].names
    return {**score(outputs, label_names, gender_names), "probe_c": c}
