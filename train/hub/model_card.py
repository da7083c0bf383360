"""Hub model cards for GEmo-CLAP checkpoints, with ``model-index`` evaluation metadata."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from ...modeling import VARIANTS
from ...processing.corpora import corpus_spec
from ..evaluation.metrics.ser_metrics import GENDER_SCORES, SCORE_TITLES
from ..evaluation.report import percent

TEMPLATE_NAME = "gemo_clap_model_card.md"
TASK_TYPE = "zero-shot-audio-classification"
# (results key, metric type, metric name, metric config); values are fractions, as returned by the SER metric.
MODEL_INDEX_METRICS = (
    ("war", "accuracy", "WAR (weighted average recall)", None),
    ("uar", "recall", "UAR (unweighted average recall)", "macro"),
    ("macro_f1", "f1", "Macro-F1", "macro"),
)


def _mean(value: float | dict) -> float:
    """A score from a metric output (float) or from ``summarize_folds`` (``{"mean": ..., "std": ...}``)."""
    return value["mean"] if isinstance(value, dict) else value


def _result_rows(results: dict) -> list[tuple[str, str]]:
    rows = [(name, percent(results[key])) for key, _, name, _ in MODEL_INDEX_METRICS if key in results]
    for gender, scores in results.get("per_gender", {}).items():
        rows += [(f"{SCORE_TITLES[key]} ({gender})", percent(scores[key])) for key in GENDER_SCORES if key in scores]
    gap = results.get("gender_gap", {})
    rows += [(f"Gender gap, {SCORE_TITLES[key]} (points)", percent(gap[key])) for key in GENDER_SCORES if key in gap]
    if "gender_accuracy" in results:
        rows.append(("Gender accuracy of the gender prompts", percent(results["gender_accuracy"])))
    return rows


def evaluation_notes(
    dataset_name: str, training_args: dict | None, selection: dict | None, cross_validation: dict | None
) -> list[str]:
    """The card's sentences on what was held out and how the settings were chosen."""
    from ..selection import selection_line

    notes = []
    if training_args and "test_fold" in training_args and training_args["test_fold"] is None:
        notes.append(f"This model was trained on every utterance of {dataset_name}: it has no held-out score.")
        if cross_validation:
            notes.append(
                f"Cross-validation of the same config on the same corpus ({cross_validation['num_folds']} folds): "
                f"WAR {percent(cross_validation['war'])} %, UAR {percent(cross_validation['uar'])} %."
            )
    if selection:
        notes.append(
            "Settings chosen on speaker-held-out inner folds of the training data (`select: auto`), no test "
            f"utterance seen: {selection_line(selection)}."
        )
    return notes


def _hub_model_ids(*names: str) -> list[str]:
    """The names that look like Hub model ids (not local paths), for the ``base_model`` field."""
    model_ids = []
    for name in names:
        try:
            validate_repo_id(name)
        except HFValidationError:
            continue
        if "/" in name and not Path(name).exists():
            model_ids.append(name)
    return model_ids


def render_model_card(
    *,
    repo_id: str,
    variant: str,
    audio_encoder: str,
    text_encoder: str,
    dataset_name: str,
    protocol: str,
    label_names: list[str],
    results: dict | None,
    training_args: dict | None,
    license: str = "apache-2.0",
    selection: dict | None = None,
    cross_validation: dict | None = None,
) -> ModelCard:
    """Model card of a GEmo-CLAP checkpoint from ``model_cards/gemo_clap_model_card.md``.

    ``variant`` is ``"emo"``, ``"sl"`` or ``"ml"``. ``results`` is either one SER metric output (``{"war": 0.8, ...}``)
    or a ``summarize_folds`` summary (``{"war": {"mean": 0.8, "std": 0.02}, ...}``); its WAR, UAR and macro-F1 go to
    the card's ``model-index`` (metric types ``accuracy``, ``recall``/macro, ``f1``/macro) as fractions.
    ``selection`` (training's ``selection.json``) says how the settings were chosen; a model trained on every
    utterance (``test_fold`` None) says it has no held-out score and quotes ``cross_validation`` (a final model's
    ``cross_validation.json``) when given.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown GEmo-CLAP variant {variant!r}; expected one of {sorted(VARIANTS)}")
    variant_title, variant_description = VARIANTS[variant].title, VARIANTS[variant].description
    corpus = corpus_spec(dataset_name)
    eval_results = [
        EvalResult(
            task_type=TASK_TYPE,
            task_name="Speech Emotion Recognition",
            dataset_type=dataset_name,
            dataset_name=dataset_name,
            dataset_args={"protocol": protocol},
            metric_type=metric_type,
            metric_name=metric_name,
            metric_config=metric_config,
            metric_value=round(_mean(results[key]), 4),
        )
        for key, metric_type, metric_name, metric_config in MODEL_INDEX_METRICS
        if results and key in results
    ]
    card_data = ModelCardData(
        license=license,
        library_name="transformers",
        pipeline_tag=TASK_TYPE,
        tags=["gemo-clap", variant_title.lower(), "speech-emotion-recognition", "clap", "audio"],
        base_model=_hub_model_ids(audio_encoder, text_encoder) or None,
        metrics=[metric_type for _, metric_type, _, _ in MODEL_INDEX_METRICS],
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results or None,
    )
    template = files("gemo_clap.model_cards").joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")
    return ModelCard.from_template(
        card_data,
        template_str=template,
        repo_id=repo_id,
        variant_title=variant_title,
        variant_description=variant_description,
        audio_encoder=audio_encoder,
        text_encoder=text_encoder,
        dataset_name=dataset_name,
        protocol=protocol,
        label_names=list(label_names),
        result_rows=_result_rows(results) if results else [],
        evaluation_notes=evaluation_notes(dataset_name, training_args, selection, cross_validation),
        training_args=training_args,
        corpus_title=corpus.title if corpus else dataset_name,
        corpus_licence=corpus.licence if corpus else "",
        corpus_redistributable=corpus.redistributable if corpus else True,
    )
