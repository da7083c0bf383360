"""`gemo-clap cross-validate`: train and test every fold (IEMOCAP: leave-one-session-out), optionally for several
variants on the same folds, and write `results.json`, `results.md` and confusion-matrix PNGs."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .cli_train import config_from_args
from .config import TrainingConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML/JSON config file, or the name of a shipped config")
    parser.add_argument("--dataset", help="dataset folder written by `gemo-clap build-dataset`")
    parser.add_argument("--output-dir", help="results folder (one sub-folder per variant and fold)")
    parser.add_argument("--variants", help="comma-separated variants to compare on the same folds, e.g. emo,sl,ml")
    parser.add_argument("--folds", help="comma-separated test folds (default: every fold of the dataset)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")


def cross_validate(config: TrainingConfig, variants: list[str], folds: list[int] | None = None) -> dict[str, Path]:
    """Train/test each (variant, fold); returns the written report files."""
    from ..modeling import VARIANTS
    from .data import load_built_dataset
    from .evaluation.report import write_report
    from .loop import train

    needs_gender = any(VARIANTS[variant].needs_gender_labels for variant in variants)
    dataset = load_built_dataset(config.dataset, needs_gender=needs_gender)
    folds = folds or sorted(set(dataset["fold"]))
    root = Path(config.output_dir)
    results: dict[str, list[dict]] = {}
    for variant in variants:
        for fold in folds:
            run = dataclasses.replace(
                config.with_model(variant=variant),
                test_fold=fold,
                output_dir=str(root / variant / f"fold_{fold}"),
                audio_cache_dir=config.audio_cache_dir or str(root / "audio_cache"),
            )
            print(f"== {variant} / test fold {fold} ==", flush=True)
            results.setdefault(variant, []).append(train(run).test_metrics)
    return write_report(root, results, dataset.features["emotion"].names)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    variants = args.variants.split(",") if args.variants else [config.variant]
    for variant in variants:
        config.with_model(variant=variant)  # validates each variant name
    folds = [int(fold) for fold in args.folds.split(",")] if args.folds else None
    paths = cross_validate(config, variants, folds)
    print(Path(paths["results_md"]).read_text())
    print(f"results written to {Path(paths['results_json']).parent}")
    return 0
