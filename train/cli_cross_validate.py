"""`gemo-clap cross-validate`: train and test every fold (IEMOCAP: leave-one-session-out), optionally for several
variants and seeds on the same folds, and write `results.json`, `results.md` and confusion-matrix PNGs.

Runs go to `<output-dir>/<variant>/fold_<k>` (with several seeds `<output-dir>/<variant>/seed_<s>/fold_<k>`), all
sharing one frozen-tower cache; a finished fold keeps its model folder and results, not its checkpoints (unless
`--keep-checkpoints`). An output folder that already holds a cross-validation is refused unless `--resume`
(finished folds are kept, unfinished ones resumed) or `--overwrite` (the old runs are removed) is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from .cli_train import add_select_argument, config_from_args
from .config import CROSS_VALIDATION_FILE, TrainingConfig
from .evaluation.probe import PROBE_CS, PROBE_LAYERS

REPORT_FILES = ("results.json", "results.md")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML/JSON config file, or the name of a shipped config")
    parser.add_argument("--dataset", help="dataset folder written by `gemo-clap build-dataset`")
    parser.add_argument("--output-dir", help="results folder (one sub-folder per variant and fold)")
    parser.add_argument("--variants", help="comma-separated variants to compare on the same folds, e.g. emo,sl,ml")
    parser.add_argument("--folds", help="comma-separated test folds (default: every fold of the dataset)")
    parser.add_argument(
        "--seeds", help="comma-separated seeds: mean +/- std over seeds and folds (default: the config's)"
    )
    parser.add_argument("--resume", action="store_true", help="keep finished folds, resume the others")
    parser.add_argument("--overwrite", action="store_true", help="remove the runs of an earlier cross-validation")
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep a finished fold's checkpoints (by default removed: its model folder and results stay)",
    )
    parser.add_argument(
        "--discard-models",
        action="store_true",
        help="remove a finished fold's model folder too (each holds both towers: 120-175 MB for the CPU configs); its "
        "results, history and config stay",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="also report the linear probes of the frozen pretrained audio tower on the same folds: logistic "
        "regression on the standardised mean+std of every hidden state, and of the last one",
    )
    add_select_argument(parser)
    parser.add_argument(
        "--final",
        action="store_true",
        help="after the folds, train each variant on every utterance (<output-dir>/<variant>/final, settings "
        "selected on inner folds of all the data with --select); its card quotes the cross-validation figure",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")


def _owned(root: Path) -> list[Path]:
    """What a cross-validation wrote in `root`: its reports and its variants' run folders (not the shared cache)."""
    from ..modeling import VARIANTS

    reports = [root / name for name in REPORT_FILES] + sorted(root.glob("confusion_matrix_*.png"))
    return [path for path in reports + [root / name for name in VARIANTS] if path.exists()]


def protocol_lines(config: TrainingConfig, dataset, folds: list[int], seeds: list[int]) -> list[str]:
    """How the numbers were obtained: corpus and folds, validation, seeds, and where the settings came from."""
    from ..processing.corpora import corpus_spec
    from .evaluation.zero_shot import scoring_sentence
    from .selection import search_space

    spec = corpus_spec(dataset.info.dataset_name) or corpus_spec("manifest")
    if config.validation_split == "speakers":
        validation = "the fold after the test fold (speakers never trained on) picks the best epoch by UAR"
    elif config.validation_fraction:
        validation = (
            f"a stratified {100 * config.validation_fraction:g}% of the training folds' utterances, drawn with each "
            "run's seed, picks the best epoch by UAR"
        )
    else:
        validation = "no validation split: the last epoch is scored"
    validation += "; the test fold is used only to score that epoch"
    trained_on = "each clip from its first speech to its last (speech_trim)" if config.speech_trim else "whole clips"
    settings = (
        "fixed by the config before any test fold was scored"
        if config.select == "off"
        else "chosen for each test fold on speaker-held-out inner folds of its training folds (select: auto, "
        f"{config.select_folds or 'every'} inner fold(s) per candidate, a staged search over {search_space(config)}; "
        "the test fold's utterances and speakers never seen; candidates scored from the frozen-tower cache of the "
        "speech-trimmed clips, what the default path scores on clean clips), starting from the config"
    )
    return [
        f"corpus: {spec.title if spec.name != 'manifest' else dataset.info.dataset_name or 'custom'}, "
        f"{len(dataset)} utterances; {spec.protocol_text(len(folds), len(dataset.features['emotion'].names))}, "
        f"test folds {folds}",
        f"validation: {validation}",
        f"seeds: {seeds}",
        f"scoring: {scoring_sentence()}; trained on {trained_on}",
        f"settings: {settings} (audio encoder "
        f"{config.audio_encoder}, text encoder {config.text_encoder}, learning rate {config.learning_rate:g}, "
        f"{config.num_epochs} epochs, batch {config.batch_size}, model settings {config.model})",
    ]


def cross_validate(
    config: TrainingConfig,
    variants: list[str],
    folds: list[int] | None = None,
    seeds: list[int] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    keep_checkpoints: bool = False,
    probes: Sequence[str] = (),
    discard_models: bool = False,
    final: bool = False,
) -> dict[str, Path]:
    """Train/test each (variant, seed, fold); returns the written report files. A finished fold's checkpoints are
    removed unless `keep_checkpoints` (a 5-fold x 3-variant run would keep gigabytes of optimiser states), and its
    model folder with `discard_models`. `probes`
    ("all", "last") adds the linear probes of the frozen pretrained audio tower on the same folds. `final` then
    trains each variant on every utterance (`<variant>/final`, the first seed), its model folder holding the
    cross-validation figure (`cross_validation.json`)."""
    from ..modeling import VARIANTS
    from ..processing.atomic import discard, remove
    from .data import fold_splits
    from .evaluation.probe import frozen_tower_statistics, probe_fold_results, probe_name
    from .evaluation.report import write_report
    from .loop import claim_output_dir, train
    from .multi_corpus import dataset_paths, load_corpora, per_corpus_rows
    from .selection import checked_space, selection_line

    root = Path(config.output_dir)
    owned = _owned(root)
    claim_output_dir(
        root, [path.name for path in owned], resume, overwrite, "a cross-validation", "keep its finished folds"
    )
    needs_gender = any(VARIANTS[variant].needs_gender_labels for variant in variants)
    dataset = load_corpora(dataset_paths(config.dataset), needs_gender, config.label_map)
    folds = folds or sorted(set(dataset["fold"]))
    missing = sorted(set(folds) - set(dataset["fold"]))
    if missing:
        raise ValueError(f"test fold(s) {missing} are not among the dataset's folds {sorted(set(dataset['fold']))}")
    seeds = seeds or [config.seed]
    for variant in variants:  # bad settings fail here, before anything is written
        if config.select == "auto":
            checked_space(config.with_model(variant=variant))
        if final:
            fold_splits(dataset, None, config.validation_fraction, config.seed, config.validation_split)
    if overwrite:
        discard(owned, root)
    cache_dir = config.audio_cache_dir or str(root / "audio_cache")
    label_names = dataset.features["emotion"].names
    results: dict[str, list[dict]] = {}
    selections: list[str] = []
    if probes:  # before training: the frozen tower runs once, sharing the runs' cache
        statistics = frozen_tower_statistics(config, dataset, cache_dir)
        for layers in probes:
            results[probe_name(layers)] = probe_fold_results(dataset, statistics, folds, layers, label_names)
    for variant in variants:
        for seed in seeds:
            for fold in folds:
                folder = root / variant / (f"seed_{seed}" if len(seeds) > 1 else "") / f"fold_{fold}"
                run = dataclasses.replace(
                    config.with_model(variant=variant),
                    seed=seed,
                    test_fold=fold,
                    output_dir=str(folder),
                    audio_cache_dir=cache_dir,
                )
                finished = folder / "test_results.json"
                if resume and finished.is_file():
                    metrics = json.loads(finished.read_text())
                else:
                    print(f"== {label_of(variant, seed, fold, seeds)} ==", flush=True)
                    metrics = train(run, resume=resume).test_metrics
                    if not keep_checkpoints:
                        remove(folder / "checkpoints")
                    if discard_models:
                        remove(folder / "model")
                results.setdefault(variant, []).append({"seed": seed, **metrics} if len(seeds) > 1 else metrics)
                if "selection" in metrics:
                    selections.append(
                        f"selection, {label_of(variant, seed, fold, seeds)}: {selection_line(metrics['selection'])}"
                    )
    results.update(per_corpus_rows(results))  # with several corpora: each corpus's scores
    protocol = protocol_lines(config, dataset, folds, seeds) + selections
    if probes:
        protocol.append(
            "probes: the frozen pretrained audio tower's mean and std over real frames (of every hidden state, or "
            "the last), standardised, into logistic regression with C in "
            f"{list(PROBE_CS)} chosen by leave-one-fold-out UAR on the training folds"
        )
    paths = write_report(root, results, label_names, protocol)
    if final:
        for variant in variants:
            paths[f"final_{variant}"] = final_model(config.with_model(variant=variant), root, seeds[0], paths)
    return paths


def label_of(variant: str, seed: int, fold: int, seeds: list[int]) -> str:
    """A run's name in the console and the reports, e.g. `sl / seed 2 / test fold 3`."""
    return f"{variant} / seed {seed} / test fold {fold}" if len(seeds) > 1 else f"{variant} / test fold {fold}"


def final_model(config: TrainingConfig, root: Path, seed: int, paths: dict[str, Path]) -> Path:
    """Train `config`'s variant on every utterance in `<root>/<variant>/final`; its model folder gets the
    cross-validation figure of the same settings (`cross_validation.json`). Returns the model folder."""
    from .loop import train

    print(f"== {config.variant} / final model on every utterance ==", flush=True)
    run = dataclasses.replace(
        config,
        seed=seed,
        test_fold=None,
        output_dir=str(root / config.variant / "final"),
        audio_cache_dir=config.audio_cache_dir or str(root / "audio_cache"),
    )
    result = train(run, overwrite=True)
    report = json.loads(Path(paths["results_json"]).read_text())
    summary = report["variants"][config.variant]["summary"]
    figure = {
        "war": summary["war"],
        "uar": summary["uar"],
        "num_folds": summary["num_folds"],
        "protocol": report.get("protocol", []),
        "results": str(paths["results_json"]),
    }
    (result.model_dir / CROSS_VALIDATION_FILE).write_text(json.dumps(figure, indent=2) + "\n")
    return result.model_dir


def whole_numbers(text: str, option: str) -> list[int]:
    """`"1,2,3"` as `[1, 2, 3]`; `ValueError` naming `option` for anything else."""
    try:
        return [int(value) for value in text.split(",")]
    except ValueError:
        raise ValueError(f"{option} takes comma-separated whole numbers, e.g. 1,2,3; got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    variants = args.variants.split(",") if args.variants else [config.variant]
    for variant in variants:
        config.with_model(variant=variant)  # validates each variant name
    folds = whole_numbers(args.folds, "--folds") if args.folds else None
    seeds = whole_numbers(args.seeds, "--seeds") if args.seeds else None
    probes = list(PROBE_LAYERS) if args.probe else []
    paths = cross_validate(
        config,
        variants,
        folds,
        seeds,
        resume=args.resume,
        overwrite=args.overwrite,
        keep_checkpoints=args.keep_checkpoints,
        probes=probes,
        discard_models=args.discard_models,
        final=args.final,
    )
    print(Path(paths["results_md"]).read_text())
    print(f"results written to {Path(paths['results_json']).parent}")
    return 0
