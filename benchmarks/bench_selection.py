"""Settings chosen on the training folds (`cross-validate --select`) vs the fixed shipped config vs the all-layers
probe of the same run, on EmoDB 4-class and 7-class, whisper-tiny.en and whisper-base, with per-gender WAR and the
time of `--select` against the fixed config.

Real EmoDB from ../shared (the product's 5 speaker-independent folds), the shipped `cpu-whisper-<tower>-sl` config.
Rows: the config as shipped; the same with `select: auto` (per test fold, the default search space scored on
speaker-held-out inner folds of its training folds); the all-layers probe (`cross-validate --probe`'s: logistic
regression on the standardised mean+std of every hidden state, C chosen on the training folds). The frozen-tower
cache is filled first (by the probe), so both timed cross-validations start from a warm cache.

`--gender`: instead, whether the SL alpha narrows the per-gender gap on validation without costing accuracy: for
each outer test fold t (never scored), every alpha of `GENDER_ALPHAS` scored by the product's selection
(`choose_settings`, a one-key space) on every inner fold of the other folds; mean inner UAR and gender gap (WAR
points, |female - male|) over the 5 outer folds.

Run alone, from the repository root: `python benchmarks/bench_selection.py [--towers tiny,base]
[--label-sets 4class,7class] [--seeds 1,2,3] [--output-dir DIR] [--gender]`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from bench_emodb_variants import cpu_config, emodb_workspace
from gemo_clap.train.cli_cross_validate import cross_validate
from gemo_clap.train.evaluation.probe import frozen_tower_statistics, probe_fold_results
from gemo_clap.train.evaluation.report import percent
from gemo_clap.train.selection import choose_settings

GENDERS = ("female", "male")
GENDER_ALPHAS = [0.5, 0.7, 0.8, 0.9, 1.0]  # 1.0: the emotion matrix alone (Emo-CLAP's target)


def row_cells(folds: list[dict]) -> list[str]:
    """WAR, UAR (mean +/- std over folds and seeds), per-gender WAR and the gender gap (WAR points)."""
    cells = [percent([fold[key] for fold in folds], 1) for key in ("war", "uar")]
    for gender in GENDERS:
        cells.append(percent([fold["per_gender"][gender]["war"] for fold in folds if gender in fold["per_gender"]], 1))
    cells.append(percent([fold["gender_gap"]["war"] for fold in folds if "war" in fold.get("gender_gap", {})], 1))
    return cells


def chosen_counts(folds: list[dict]) -> str:
    """How often each setting was chosen, e.g. `learning_rate=0.0003 x12, 0.001 x3`."""
    counts: dict[str, dict] = {}
    for fold in folds:
        for key, value in fold["selection"]["chosen"].items():
            counts.setdefault(key, {}).setdefault(value, 0)
            counts[key][value] += 1
    return "; ".join(
        f"{key} " + ", ".join(f"{value:g} x{count}" for value, count in sorted(values.items()))
        for key, values in counts.items()
    )


def gender_table(tower: str, label_set: str, root: Path, folder: Path) -> list[str]:
    """Rows `| tower | labels | alpha | inner UAR | inner WAR | gender gap WAR |` over the 5 outer folds."""
    space = f"select_space={{model.sl_alpha: {GENDER_ALPHAS}}}"
    by_alpha: dict[float, list[dict]] = {}
    for outer in range(1, 6):
        extra = [f"test_fold={outer}", "select=auto", "select_folds=0", space]
        config = cpu_config(tower, "sl", folder, root, root / "gender", extra)
        _, record = choose_settings(config)
        for candidate in record["candidates"]:
            alpha = candidate["settings"].get("model.sl_alpha", config.sl_alpha)
            by_alpha.setdefault(alpha, []).append(candidate)
        print(f"outer fold {outer}: {record['seconds']:.0f} s", flush=True)
    rows = []
    for alpha, entries in sorted(by_alpha.items()):
        cells = [percent([entry[key] for entry in entries], 1) for key in ("uar", "war", "gender_gap_war")]
        rows.append(f"| {tower} | {label_set} | {alpha:g} | {' | '.join(cells)} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--towers", default="tiny,base")
    parser.add_argument("--label-sets", default="4class,7class")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--gender", action="store_true", help="the gender-gap sweep of the SL alpha (see above)")
    args = parser.parse_args()
    if args.gender:
        rows = ["| tower | labels | sl_alpha | inner UAR (%) | inner WAR (%) | gender gap WAR (pts) |"]
        rows.append("| --- | --- | --- | --- | --- | --- |")
        for tower in args.towers.split(","):
            for label_set in args.label_sets.split(","):
                output = Path(args.output_dir) / tower if args.output_dir else None
                label_map = None if label_set == "7class" else label_set
                with emodb_workspace(str(output) if output else None, label_map=label_map) as (root, _, folder):
                    rows += gender_table(tower, label_set, root, folder)
                    print("\n".join(rows), flush=True)
        return
    seeds = [int(seed) for seed in args.seeds.split(",")]
    lines = [
        "| tower | labels | row | WAR (%) | UAR (%) | WAR female | WAR male | gender gap WAR | time (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    for tower in args.towers.split(","):
        for label_set in args.label_sets.split(","):
            label_map = None if label_set == "7class" else label_set
            output = Path(args.output_dir) / tower if args.output_dir else None
            with emodb_workspace(str(output) if output else None, label_map=label_map) as (root, dataset, folder):
                runs = root / f"cv-{label_set}"
                fixed = cpu_config(tower, "sl", folder, root, runs / "fixed", ["cache_audio_features=true"])
                statistics = frozen_tower_statistics(fixed, dataset, root / "audio_cache")  # fills the cache
                label_names = dataset.features["emotion"].names
                probe = probe_fold_results(dataset, statistics, [1, 2, 3, 4, 5], "all", label_names)
                rows, seconds = {}, {}
                for name, extra in (("fixed (shipped config)", []), ("select: auto", ["select=auto"])):
                    config = cpu_config(tower, "sl", folder, root, runs / name.split()[0].strip(":"), extra)
                    started = time.monotonic()
                    paths = cross_validate(config, ["sl"], seeds=seeds, overwrite=True, discard_models=True)
                    seconds[name] = time.monotonic() - started
                    rows[name] = json.loads(Path(paths["results_json"]).read_text())["variants"]["sl"]["folds"]
                rows["probe (all layers), same folds"] = probe
                for name, folds in rows.items():
                    time_cell = f"{seconds[name]:.0f}" if name in seconds else "-"
                    cells = " | ".join(row_cells(folds))
                    lines.append(f"| {tower} | {label_set} | {name} | {cells} | {time_cell} |")
                select, shipped = rows["select: auto"], rows["fixed (shipped config)"]
                gains = {
                    key: [
                        100 * (np.mean([f[key] for f in select]) - np.mean([f[key] for f in reference]))
                        for reference in (probe, shipped)
                    ]
                    for key in ("war", "uar")
                }
                notes.append(
                    f"- {tower} {label_set}: select - probe {gains['war'][0]:+.1f} / {gains['uar'][0]:+.1f}, "
                    f"select - fixed {gains['war'][1]:+.1f} / {gains['uar'][1]:+.1f} (WAR / UAR); --select took "
                    f"{seconds['select: auto'] / seconds['fixed (shipped config)']:.2f}x the fixed run; chosen: "
                    f"{chosen_counts(select)}"
                )
                print("\n".join(lines + notes), flush=True)
    print("\n".join(lines + [""] + notes))


if __name__ == "__main__":
    main()
