"""Settings chosen on the training folds (`cross-validate --select`) vs the fixed shipped config vs the all-layers
probe of the same run, on EmoDB 4-class and 7-class, whisper-tiny.en and whisper-base, with per-gender WAR and the
time of `--select` against the fixed config.

Real EmoDB from ../shared (the product's 5 speaker-independent folds), the shipped `cpu-whisper-<tower>-sl` config.
Rows: the config as shipped; the same with `select: auto` (per test fold, the default search space scored on
speaker-held-out inner folds of its training folds); the all-layers probe (`cross-validate --probe`'s: logistic
regression on the standardised mean+std of every hidden state, C chosen on the training folds). The frozen-tower
cache is filled first (by the probe), so both timed cross-validations start from a warm cache.

Run alone, from the repository root: `python benchmarks/bench_selection.py [--towers tiny,base]
[--label-sets 4class,7class] [--seeds 1,2,3] [--output-dir DIR]`.
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

GENDERS = ("female", "male")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--towers", default="tiny,base")
    parser.add_argument("--label-sets", default="4class,7class")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args()
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
