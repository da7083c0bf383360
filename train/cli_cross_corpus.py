"""`gemo-clap cross-corpus`: train on every utterance of one or more corpora and score a corpus the model never saw
through the default scoring protocol, for each variant and seed, with the linear probes of the frozen tower fitted
on the same training corpora beside it; writes `results.json`, `results.md` and confusion-matrix PNGs.

Runs go to `<output-dir>/<variant>/seed_<s>`, sharing one frozen-tower cache. The labels are those every corpus
has (or `label_map=...`); see `train/multi_corpus.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .cli_cross_validate import whole_numbers
from .config import TrainingConfig
from .evaluation.probe import PROBE_LAYERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML/JSON config file, or the name of a shipped config")
    parser.add_argument("--train", required=True, help="the training corpora: built dataset folders, comma-separated")
    parser.add_argument("--test", required=True, help="the corpus to score: a built dataset folder never trained on")
    parser.add_argument("--output-dir", required=True, help="results folder (one sub-folder per variant and seed)")
    parser.add_argument("--variants", help="comma-separated variants, e.g. emo,sl (default: the config's)")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the config's)")
    parser.add_argument("--overwrite", action="store_true", help="replace the runs of an earlier cross-corpus run")
    parser.add_argument("--probe", action="store_true", help="also the linear probes fitted on the training corpora")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")


def protocol_lines(config: TrainingConfig, dataset, train_rows: int, test_name: str, seeds: list[int]) -> list[str]:
    from .evaluation.zero_shot import scoring_sentence

    names = dataset.features["emotion"].names
    return [
        f"cross-corpus: trained on every utterance of {dataset.info.dataset_name} ({train_rows} utterances), tested on "
        f"all of {test_name} ({len(dataset) - train_rows} utterances, never trained on), labels {names}",
        f"validation: {100 * config.validation_fraction:g}% of the training utterances picks the best epoch"
        if config.validation_fraction
        else "validation: none (the last epoch is scored)",
        f"seeds: {seeds}",
        f"scoring: {scoring_sentence()}",
        f"settings: the config's (audio encoder {config.audio_encoder}, model settings {config.model})",
    ]


def cross_corpus(
    config: TrainingConfig,
    variants: list[str],
    seeds: list[int],
    overwrite: bool = False,
    probes: list[str] | None = None,
) -> dict[str, Path]:
    """Train each (variant, seed) on `config.dataset` and score `config.test_dataset`; returns the report files."""
    from ..modeling import VARIANTS
    from ..processing.atomic import check_folder_path, discard, remove
    from .evaluation.probe import frozen_tower_statistics, probe_name, probe_transfer_results
    from .evaluation.report import write_report
    from .loop import train
    from .multi_corpus import run_splits

    root = Path(config.output_dir)
    owned = [
        path for path in [root / "results.json", root / "results.md", *(root / v for v in variants)] if path.exists()
    ]
    check_folder_path(root, "output folder")
    if owned and not overwrite:
        names = ", ".join(path.name for path in owned)
        raise FileExistsError(f"{root} already holds a cross-corpus run ({names}): pass --overwrite to replace it")
    needs_gender = any(VARIANTS[variant].needs_gender_labels for variant in variants)
    dataset, splits = run_splits(config, needs_gender)  # checks the corpora and labels before any work
    if overwrite:
        discard(owned, root)
    test_name = splits.test["corpus"][0]
    label_names = dataset.features["emotion"].names
    cache_dir = config.audio_cache_dir or str(root / "audio_cache")
    results: dict[str, list[dict]] = {}
    if probes:
        statistics = frozen_tower_statistics(config, dataset, cache_dir)
        test_rows = [corpus == test_name for corpus in dataset["corpus"]]
        for layers in probes:
            probe = probe_transfer_results(dataset, statistics, test_rows, layers, label_names)
            results[probe_name(layers)] = [{"fold": test_name, **probe}]
    for variant in variants:
        for seed in seeds:
            folder = root / variant / f"seed_{seed}"
            run = dataclasses.replace(
                config.with_model(variant=variant), seed=seed, output_dir=str(folder), audio_cache_dir=cache_dir
            )
            print(f"== {variant} / seed {seed}: {dataset.info.dataset_name} -> {test_name} ==", flush=True)
            metrics = train(run).test_metrics
            remove(folder / "checkpoints")
            results.setdefault(variant, []).append({"seed": seed, **metrics, "fold": test_name})
    train_rows = len(dataset) - len(splits.test)
    return write_report(root, results, label_names, protocol_lines(config, dataset, train_rows, test_name, seeds))


def run(args: argparse.Namespace) -> int:
    overrides = [*args.overrides, f"dataset={args.train}", f"test_dataset={args.test}", f"output_dir={args.output_dir}"]
    config = TrainingConfig.load(args.config, overrides)
    variants = args.variants.split(",") if args.variants else [config.variant]
    for variant in variants:
        config.with_model(variant=variant)
    seeds = whole_numbers(args.seeds, "--seeds") if args.seeds else [config.seed]
    paths = cross_corpus(config, variants, seeds, args.overwrite, list(PROBE_LAYERS) if args.probe else None)
    print(Path(paths["results_md"]).read_text())
    print(f"results written to {Path(paths['results_json']).parent}")
    return 0
