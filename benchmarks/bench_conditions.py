"""Accuracy under recording conditions: every fold model of a cross-validation scored on its own test fold with the
clips clean, through a telephone line (300-3400 Hz, 8 kHz round trip), with white noise at 10 and 0 dB SNR,
reverberated (synthetic room, RT60 0.6 s) and padded with 0.5-1.5 s of faint noise before and after
(`gemo_clap.processing.conditions`), through the product's default scoring protocol (`pipeline_predictions` with
`segmentation=vad`: what `predict`, `evaluate` and training's test fold use).

Each clip `i` of the dataset (its index in the saved dataset, whatever folds are scored) goes through
`apply_condition(name, clip, seed=i)` and is re-encoded as 16-bit WAV, so every model and every run sees the same
degraded clips; "clean" is the dataset as saved, and its scores are checked against each fold's
`test_results.json` (a mismatch is reported, e.g. for a model scored under an older protocol). The table gives,
per group of runs (the variant folder of `cross-validate`'s `<variant>/[seed_<s>/]fold_<k>/model` layout) and
condition, WAR and UAR mean +/- std over the fold models and the drop from clean in points (the mean of each
model's own clean-minus-condition difference), plus the clips in which the VAD found no speech (scored whole).

With `--baseline GROUP` (e.g. the un-augmented runs `plain/sl` beside the augmented `augmented/sl` under one
`--runs` folder, trained on the same folds and seeds) it also prints, for every other group, the augmentation
targets: the points lost on telephone, 10 dB noise and reverberation as a fraction of the baseline's loss (target:
at most 0.5) and the change of clean accuracy (target: at least -0.5 points). `--baseline-json FILE` takes the
baseline group from an earlier run of this script (its `conditions.json`, e.g. the same un-augmented fold models
scored before) instead of scoring it again. `--only PATTERN` scores the fold models whose path under `--runs`
matches the glob (e.g. `*seed_1*`: a reduced run), the earlier baseline restricted to the same pattern.

Run alone (it loads each fold model and scores its fold once per condition), from the repository root:

    python benchmarks/bench_conditions.py --runs runs/cv --dataset data/emodb \\
        [--conditions clean,telephone,noise_10db,noise_0db,reverb_0.6s,padded] [--segmentation vad] \\
        [--batch-size 8] [--output runs/cv/conditions.json] [--baseline plain/sl [--baseline-json FILE]] [--only '*seed_1*']

Other conditions of `CONDITIONS` (e.g. `codec_mp3`, `codec_gsm610`, `telephone_mulaw`) can be listed too.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
from gemo_clap.processing.audio import decode_example_audio, encode_wav
from gemo_clap.processing.conditions import BENCHMARK_CONDITIONS, CONDITIONS, apply_condition

RUN_FOLDER = re.compile(r"(seed|fold)_\d+")
TARGET_CONDITIONS = ("telephone", "noise_10db", "reverb_0.6s")  # the loss augmentation has to halve
MAX_LOSS_RATIO, MAX_CLEAN_DROP = 0.5, 0.5


def fold_models(runs: Path) -> list[tuple[Path, dict]]:
    """(model folder, its test_results.json) of every fold model under `runs`, in path order."""
    found = []
    for model_dir in sorted(runs.glob("**/model")):
        results = model_dir.parent / "test_results.json"
        if model_dir.is_dir() and results.is_file():
            found.append((model_dir, json.loads(results.read_text())))
    return found


def group_of(model_dir: Path, runs: Path) -> str:
    """The runs' group of a fold model: its path under `runs` without the `seed_<s>`/`fold_<k>` folders ("." when
    `runs` is a variant's own folder)."""
    parts = list(model_dir.parent.relative_to(runs).parts)
    while parts and RUN_FOLDER.fullmatch(parts[-1]):
        parts.pop()
    return "/".join(parts) or "."


def condition_dataset(dataset, clips: dict[int, np.ndarray], name: str):
    """`dataset` (the rows whose original index is a key of `clips`) with each clip `i` replaced by
    `apply_condition(name, clips[i], seed=i)` as 16-bit WAV bytes; "clean": `dataset` as saved."""
    if name == "clean":
        return dataset
    audio = [
        {"bytes": encode_wav(apply_condition(name, clips[index], seed=index)), "path": None}
        for index in dataset["source_index"]
    ]
    return dataset.remove_columns("audio").add_column("audio", audio, feature=dataset.features["audio"])


def mean_std(values: list[float]) -> str:
    values = 100 * np.asarray(values, dtype=np.float64)
    return f"{values.mean():.1f} +/- {values.std():.1f}"


def summarise(rows: list[dict], conditions: list[str]) -> dict:
    """Per group and condition: WAR/UAR mean and std over the fold models, the mean paired drop from clean (points)
    and the no-speech clips, in %."""
    summary: dict[str, dict] = {}
    for group in dict.fromkeys(row["group"] for row in rows):
        members = [row for row in rows if row["group"] == group]
        summary[group] = {}
        for name in conditions:
            entry = {"models": len(members)}
            for key in ("war", "uar"):
                values = np.array([row["conditions"][name][key] for row in members])
                entry[f"{key}_mean"], entry[f"{key}_std"] = 100 * float(values.mean()), 100 * float(values.std())
                if "clean" in conditions:
                    clean = np.array([row["conditions"]["clean"][key] for row in members])
                    entry[f"{key}_drop"] = 100 * float((clean - values).mean())
            entry["no_speech_clips"] = sum(row["conditions"][name]["no_speech_clips"] for row in members)
            entry["clips_scored"] = sum(row["conditions"][name]["clips"] for row in members)
            summary[group][name] = entry
    return summary


def print_table(summary: dict, conditions: list[str]) -> None:
    has_clean = "clean" in conditions
    print("\n| runs | condition | WAR (%) | UAR (%) | drop vs clean WAR / UAR (pts) | no-speech clips |")
    print("| --- | --- | --- | --- | --- | --- |")
    for group, entries in summary.items():
        for name in conditions:
            entry = entries[name]
            war = f"{entry['war_mean']:.1f} +/- {entry['war_std']:.1f}"
            uar = f"{entry['uar_mean']:.1f} +/- {entry['uar_std']:.1f}"
            drop = f"{entry['war_drop']:.1f} / {entry['uar_drop']:.1f}" if has_clean and name != "clean" else "-"
            print(
                f"| {group} ({entry['models']} models) | {name} | {war} | {uar} | {drop} | "
                f"{entry['no_speech_clips']} of {entry['clips_scored']} |"
            )


def compare(summary: dict, baseline: str, base: dict | None = None) -> list[dict]:
    """Per group other than `baseline` and target condition: the points lost (drop from clean, WAR and UAR) as a
    fraction of the baseline's (`base`, default `summary[baseline]`), and the clean accuracy's change in points,
    each against its target."""
    rows = []
    base = summary[baseline] if base is None else base
    for group, entries in summary.items():
        if group == baseline:
            continue
        for key in ("war", "uar"):
            change = entries["clean"][f"{key}_mean"] - base["clean"][f"{key}_mean"]
            rows.append(
                {"group": group, "metric": key, "condition": "clean", "value": change, "met": change >= -MAX_CLEAN_DROP}
            )
            for name in TARGET_CONDITIONS:
                if name in entries:
                    ratio = entries[name][f"{key}_drop"] / base[name][f"{key}_drop"]
                    rows.append(
                        {
                            "group": group,
                            "metric": key,
                            "condition": name,
                            "value": ratio,
                            "met": ratio <= MAX_LOSS_RATIO,
                        }
                    )
    return rows


def print_comparison(rows: list[dict], baseline: str) -> None:
    print(
        f"\n| runs vs {baseline} | metric | clean change (pts, >= -{MAX_CLEAN_DROP}) | "
        + " | ".join(f"{name} loss ratio (<= {MAX_LOSS_RATIO})" for name in TARGET_CONDITIONS)
        + " |"
    )
    print("| --- | --- | --- |" + " --- |" * len(TARGET_CONDITIONS))
    for group in dict.fromkeys(row["group"] for row in rows):
        for key in ("war", "uar"):
            cells = {row["condition"]: row for row in rows if row["group"] == group and row["metric"] == key}
            shown = [
                f"{cells[name]['value']:+.1f}" if name == "clean" else f"{cells[name]['value']:.2f}"
                for name in ("clean", *TARGET_CONDITIONS)
                if name in cells
            ]
            marks = [
                " (met)" if cells[name]["met"] else " (missed)"
                for name in ("clean", *TARGET_CONDITIONS)
                if name in cells
            ]
            print(f"| {group} | {key.upper()} | " + " | ".join(a + b for a, b in zip(shown, marks)) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="a cross-validate output folder (fold folders with model/)")
    parser.add_argument("--dataset", required=True, help="the built dataset the runs were trained on")
    parser.add_argument("--conditions", default=",".join(BENCHMARK_CONDITIONS))
    parser.add_argument("--segmentation", default="vad", choices=("vad", "fixed"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--output", default=None, help="the JSON to write (default <runs>/conditions.json)")
    parser.add_argument("--baseline", default=None, help="the group the others are compared with, e.g. plain/sl")
    parser.add_argument("--baseline-json", default=None, help="an earlier conditions.json holding --baseline")
    parser.add_argument("--only", default="*", help="score only the fold models whose path matches this glob")
    args = parser.parse_args(argv)

    conditions = [name.strip() for name in args.conditions.split(",") if name.strip()]
    unknown = [name for name in conditions if name not in CONDITIONS]
    if unknown or not conditions:
        parser.error(
            f"unknown condition(s) {unknown or args.conditions!r}: known conditions are {', '.join(CONDITIONS)}"
        )
    runs = Path(args.runs)
    models = fold_models(runs) if runs.is_dir() else []
    models = [(path, results) for path, results in models if fnmatch(str(path.relative_to(runs)), args.only)]
    if not models:
        parser.error(f"--runs {runs}: no fold folder holding model/ and test_results.json under it")
    output = Path(args.output) if args.output else runs / "conditions.json"
    groups = {group_of(model_dir, runs) for model_dir, _ in models}
    earlier = None
    if args.baseline_json is not None:
        earlier_rows = json.loads(Path(args.baseline_json).read_text())["models"]
        earlier_rows = [
            row for row in earlier_rows if row["group"] == args.baseline and fnmatch(row["model"], args.only)
        ]
        earlier = summarise(earlier_rows, conditions).get(args.baseline) if earlier_rows else None
        if args.baseline is None or earlier is None or not set(conditions) <= set(earlier):
            parser.error(f"--baseline-json {args.baseline_json}: no group {args.baseline!r} scored in {conditions}")
        groups |= {args.baseline, "(earlier)"}
    if args.baseline is not None and (args.baseline not in groups or len(groups) < 2 or "clean" not in conditions):
        parser.error(
            f"--baseline {args.baseline!r} must be one of the runs' groups {sorted(groups)}, with another "
            "group beside it and the clean condition scored"
        )

    import datasets
    from gemo_clap.train.data import gender_names, load_built_dataset
    from gemo_clap.train.evaluation.zero_shot import pipeline_predictions, score

    from gemo_clap.loading import load_classifier

    datasets.disable_progress_bars()
    try:
        dataset = load_built_dataset(args.dataset)
    except (FileNotFoundError, ValueError) as error:
        parser.error(f"--dataset: {error}")
    label_names, genders = dataset.features["emotion"].names, gender_names(dataset)
    folds = sorted({int(results["fold"]) for _, results in models})
    missing = [fold for fold in folds if fold not in set(dataset["fold"])]
    if missing:
        parser.error(f"--dataset {args.dataset} has no fold {missing} (the runs' test folds are {folds})")

    started = time.monotonic()
    dataset = dataset.add_column("source_index", list(range(len(dataset))))
    dataset = dataset.filter(lambda value: value in folds, input_columns="fold", keep_in_memory=True)
    clips = {index: decode_example_audio(audio) for index, audio in zip(dataset["source_index"], dataset["audio"])}
    by_condition = {name: condition_dataset(dataset, clips, name) for name in conditions}
    fold_sets = {
        (name, fold): by_condition[name].filter(
            lambda value, fold=fold: value == fold, input_columns="fold", keep_in_memory=True
        )
        for name in conditions
        for fold in folds
    }
    print(
        f"{len(models)} fold models, folds {folds}, {len(dataset)} clips x {len(conditions)} conditions "
        f"prepared in {time.monotonic() - started:.0f} s",
        flush=True,
    )

    rows, mismatches = [], []
    for model_dir, expected in models:
        classifier = load_classifier(str(model_dir))
        template = classifier.model.config.prompt_template
        fold = int(expected["fold"])
        row = {"model": str(model_dir.relative_to(runs)), "group": group_of(model_dir, runs), "fold": fold}
        row["conditions"] = {}
        for name in conditions:
            fold_dataset = fold_sets[name, fold]
            outputs, protocol = pipeline_predictions(
                classifier,
                fold_dataset,
                label_names,
                template,
                genders,
                args.segmentation,
                batch_size=args.batch_size,
                progress=False,
            )
            metrics = score(outputs, label_names, genders)
            row["conditions"][name] = {
                "war": metrics["war"],
                "uar": metrics["uar"],
                "macro_f1": metrics.get("macro_f1"),
                "confusion_matrix": metrics["confusion_matrix"],
                "no_speech_clips": protocol["no_speech_clips"],
                "clips": len(fold_dataset),
            }
            if name == "clean" and metrics["confusion_matrix"] != expected.get("confusion_matrix"):
                mismatches.append(row["model"])
        rows.append(row)
        print(
            f"[{time.monotonic() - started:6.0f}s] {row['model']} (fold {fold}): "
            + "  ".join(
                f"{name} {100 * row['conditions'][name]['war']:.1f}/{100 * row['conditions'][name]['uar']:.1f}"
                for name in conditions
            ),
            flush=True,
        )

    summary = summarise(rows, conditions)
    print_table(summary, conditions)
    comparison = compare(summary, args.baseline, earlier) if args.baseline else []
    if comparison:
        print_comparison(comparison, args.baseline)
    if mismatches:
        print(
            f"\nnote: clean scores differ from test_results.json for {len(mismatches)} model(s), e.g. {mismatches[0]} "
            "(scored under another protocol or code version)"
        )
    report = {
        "runs": str(runs),
        "dataset": str(args.dataset),
        "segmentation": args.segmentation,
        "conditions": conditions,
        "folds": folds,
        "clean_matches_test_results": not mismatches if "clean" in conditions else None,
        "summary": summary,
        **({"baseline": args.baseline, "comparison": comparison} if comparison else {}),
        **({"baseline_json": args.baseline_json, "baseline_summary": earlier} if earlier else {}),
        "only": args.only,
        "models": rows,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten {output} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
