"""`gemo-clap evaluate`: zero-shot evaluation of a saved model on a built dataset (any corpus: cross-corpus too)."""

from __future__ import annotations

import argparse
import json
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
    from .zero_shot import score, zero_shot_predictions

    dataset = load_built_dataset(dataset_path)
    if fold is not None:
        if fold not in set(dataset["fold"]):
            raise ValueError(f"fold {fold} is not one of the dataset's folds {sorted(set(dataset['fold']))}")
        dataset = dataset.filter(lambda value: value == fold, input_columns="fold", keep_in_memory=True)
    model = GEmoClapModel.from_pretrained(model_path)
    processor = GEmoClapProcessor.from_pretrained(model_path)
    emotions = dataset.features["emotion"].names
    genders = gender_names(dataset)
    template = template or model.config.prompt_template
    collator = GEmoClapCollator(processor, emotions, genders, template)
    accelerator = Accelerator()
    model, loader = accelerator.prepare(model, DataLoader(dataset, batch_size=batch_size, collate_fn=collator))
    outputs = zero_shot_predictions(model, processor, loader, accelerator, emotions, template, genders)
    return score(outputs, emotions, genders)


def run(args: argparse.Namespace) -> int:
    metrics = evaluate_model(args.model, args.dataset, args.fold, args.batch_size, args.template)
    print(f"WAR {100 * metrics['war']:.1f}  UAR {100 * metrics['uar']:.1f}  macro-F1 {100 * metrics['macro_f1']:.1f}")
    for gender, values in metrics.get("per_gender", {}).items():
        print(f"  {gender}: WAR {100 * values['war']:.1f}  UAR {100 * values['uar']:.1f}")
    if args.output:
        Path(args.output).write_text(json.dumps(metrics, indent=2))
    return 0
