"""`gemo-clap evaluate`: zero-shot evaluation of a saved model on a built dataset (any corpus: cross-corpus too)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="saved model folder or hub id")
    parser.add_argument("--dataset", required=True, help="dataset folder written by `gemo-clap build-dataset`")
    parser.add_argument("--fold", type=int, help="evaluate only this fold (default: the whole dataset)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--template", help="prompt template (default: the model's)")
    parser.add_argument("--output", help="write the metrics as JSON here")


def evaluate_model(
    model_path: str, dataset_path: str, fold: int | None = None, batch_size: int = 16, template: str | None = None
) -> dict:
    """WAR/UAR/... of a saved model on a dataset's utterances (one fold or all), labels = the dataset's emotions."""
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from ...modeling import GEmoClapModel, GEmoClapProcessor
    from ...processing.collator import GEmoClapCollator
    from ..data import gender_names, load_built_dataset
    from ..towers import local_folder_or_repo_id
    from .zero_shot import score, zero_shot_predictions

    model_path = local_folder_or_repo_id(model_path)
    dataset = load_built_dataset(dataset_path)
    folds = sorted(set(dataset["fold"]))
    if fold is not None:
        if fold not in folds:
            raise ValueError(f"fold {fold} is not one of the dataset's folds {folds}")
        dataset = dataset.filter(lambda value: value == fold, input_columns="fold", keep_in_memory=True)
        folds = [fold]
    print(
        f"scoring {len(dataset)} utterances of fold(s) {folds}"
        + ("" if fold is not None else ": the whole dataset, including any folds the model was trained on"),
        file=sys.stderr,
    )
    model = GEmoClapModel.from_pretrained(model_path)
    processor = GEmoClapProcessor.from_pretrained(model_path)
    emotions = dataset.features["emotion"].names
    genders = gender_names(dataset)
    template = template or model.config.prompt_template
    collator = GEmoClapCollator(processor, emotions, genders, template)
    accelerator = Accelerator()
    model, loader = accelerator.prepare(model, DataLoader(dataset, batch_size=batch_size, collate_fn=collator))
    outputs = zero_shot_predictions(model, processor, loader, accelerator, emotions, template, genders, progress=True)
    return {"folds": folds, **score(outputs, emotions, genders)}


def run(args: argparse.Namespace) -> int:
    from ...atomic import atomic_path, check_folder_path
    from .metrics.ser_metrics import GENDER_SCORES, SCORE_TITLES, SCORES
    from .report import percent

    if args.output:
        check_folder_path(Path(args.output).parent, "--output's folder")
    metrics = evaluate_model(args.model, args.dataset, args.fold, args.batch_size, args.template)
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
            partial.write_text(json.dumps(metrics, indent=2))
    return 0
