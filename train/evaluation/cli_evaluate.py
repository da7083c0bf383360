"""`gemo-clap evaluate`: zero-shot evaluation of a saved model on a built dataset (any corpus: cross-corpus too)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...modeling.timeline_gemo_clap import SEGMENTATIONS, TimelineSettings

    parser.add_argument("--model", required=True, help="saved model folder or hub id")
    parser.add_argument("--dataset", required=True, help="dataset folder written by `gemo-clap build-dataset`")
    parser.add_argument("--fold", type=int, help="evaluate only this fold (default: the whole dataset)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--template", help="prompt template with one {} (default: the model's)")
    parser.add_argument(
        "--segmentation",
        choices=SEGMENTATIONS,
        default=TimelineSettings.segmentation,
        help="how each clip is scored, as `gemo-clap predict` scores a file and training scores its test fold: vad "
        "(its speech spans scored whole, the default) or fixed (chunks of the model's maximum over the whole clip)",
    )
    parser.add_argument("--output", help="write the metrics as JSON here")


def evaluate_model(
    model_path: str,
    dataset_path: str,
    fold: int | None = None,
    batch_size: int = 16,
    template: str | None = None,
    segmentation: str = "vad",
) -> dict:
    """WAR/UAR/... of a saved model on a dataset's utterances (one fold or all), labels = the dataset's emotions.
    Each clip is scored the way `gemo-clap predict` scores a file and training scores its test fold
    (`pipeline_predictions` with `segmentation`: a long clip is never cut to its first seconds; a clip in which the
    VAD finds no speech is scored whole and counted in the protocol's `no_speech_clips`)."""
    from ...loading import load_classifier
    from ..data import gender_names, load_built_dataset
    from .zero_shot import pipeline_predictions, score

    dataset = load_built_dataset(dataset_path)
    folds = sorted(set(dataset["fold"]))
    if fold is not None:
        if fold not in folds:
            raise ValueError(f"fold {fold} is not one of the dataset's folds {folds}")
        dataset = dataset.filter(lambda value: value == fold, input_columns="fold", keep_in_memory=True)
        folds = [fold]
    classifier = load_classifier(model_path, trust_remote_code=False)
    emotions, template, _ = classifier.resolve_prompts(dataset.features["emotion"].names, template, what="emotions")
    genders = gender_names(dataset)
    print(
        f"scoring {len(dataset)} utterances of fold(s) {folds}"
        + ("" if fold is not None else ": the whole dataset, including any folds the model was trained on"),
        file=sys.stderr,
    )
    print(f"each clip scored as `gemo-clap predict` scores a file: segmentation={segmentation}", file=sys.stderr)
    outputs, protocol = pipeline_predictions(classifier, dataset, emotions, template, genders, segmentation, batch_size)
    return {"folds": folds, "scoring_protocol": protocol, **score(outputs, emotions, genders)}


def run(args: argparse.Namespace) -> int:
    from ...processing.atomic import atomic_path, check_folder_path
    from .metrics.ser_metrics import GENDER_SCORES, SCORE_TITLES, SCORES
    from .report import percent

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.output:
        check_folder_path(Path(args.output).parent, "--output's folder")
    metrics = evaluate_model(args.model, args.dataset, args.fold, args.batch_size, args.template, args.segmentation)
    protocol = metrics["scoring_protocol"]
    print(
        f"segmentation {protocol['segmentation']} (as predict); "
        f"clips without detected speech (scored whole): {protocol['no_speech_clips']}"
    )
    print("  ".join(f"{SCORE_TITLES[key]} {percent(metrics[key], 1)}" for key in SCORES))
    for gender, values in metrics.get("per_gender", {}).items():
        print(f"  {gender}: " + "  ".join(f"{SCORE_TITLES[key]} {percent(values[key], 1)}" for key in GENDER_SCORES))
    if "gender_gap" in metrics:
        gap = metrics["gender_gap"]
        print(
            "  gender gap: " + ", ".join(f"{SCORE_TITLES[key]} {percent(gap[key], 1)} points" for key in GENDER_SCORES)
        )
    if "gender_accuracy" in metrics:
        print(f"  gender accuracy of the gender prompts: {percent(metrics['gender_accuracy'], 1)}")
    if args.output:
        with atomic_path(args.output, unique=True) as partial:
            partial.write_text(json.dumps(metrics, indent=2) + "\n")
    return 0
