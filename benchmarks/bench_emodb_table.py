"""EmoDB table: Emo / SL / ML x {whisper-tiny.en, whisper-base} x {paper pooling, the shipped pooling} + the
logistic-regression probe of each frozen tower, same folds, same run, 3 seeds, with wall times.

Real EmoDB from ../shared (4 classes, 339 utterances, 5 speaker-independent folds), the shipped
`cpu-whisper-{tiny,base}-{emo,sl,ml}` configs (settings selected by benchmarks/select_cpu_configs.py on validation
splits only), run with seeds 1, 2 and 3 (the selection used the configs' seed 42). "paper pooling" is the same
config with the paper's pooling (mean over the last layer). The probe: mean+std over the real frames of the same
frozen tower's last layer -> standardised logistic regression on the training folds. Every frozen tower runs once:
its statistics are cached and shared by every fold, variant, seed and the probe.

Run alone, from the repository root: `python benchmarks/bench_emodb_table.py [--towers tiny,base] [--seeds 1,2,3]
[--paper-seeds 1]` (`--paper-seeds`: fewer seeds for the paper-pooling rows, which the targets do not rank; default
the same seeds).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from bench_emodb_variants import TOWERS, emodb_workspace, probe_features, probe_scores
from gemo_clap.train.cli_cross_validate import cross_validate
from gemo_clap.train.config import TrainingConfig

from gemo_clap.atomic import remove

PAPER_POOLING = {"audio_pooling": "mean", "use_weighted_layer_sum": False}


def mean_std(results: list[dict], key: str) -> tuple[float, float]:
    values = 100 * np.array([result[key] for result in results])
    return float(values.mean()), float(values.std())


def cell(results: list[dict], key: str) -> str:
    mean, std = mean_std(results, key)
    return f"{mean:.1f} +/- {std:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--towers", default="tiny,base")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--paper-seeds", default=None)
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args()
    towers, seeds = args.towers.split(","), [int(seed) for seed in args.seeds.split(",")]
    paper_seeds = [int(seed) for seed in args.paper_seeds.split(",")] if args.paper_seeds else seeds
    started = time.monotonic()
    with emodb_workspace(args.output_dir) as (root, dataset, dataset_dir):
        rows, report = [], {}
        for tower in towers:
            encoder = TOWERS[tower]
            for pooling in ("paper", "shipped"):
                for variant in ("emo", "sl", "ml"):
                    name = f"cpu-whisper-{tower}-{variant}"
                    overrides = [
                        f"audio_encoder={encoder}",
                        f"dataset={dataset_dir}",
                        f"output_dir={root / tower / pooling / variant}",
                        f"audio_cache_dir={root / 'audio_cache'}",
                        "report_to=none",
                    ]
                    config = TrainingConfig.load(name, overrides)
                    if pooling == "paper":
                        config = config.with_model(**PAPER_POOLING)
                    run_started = time.monotonic()
                    row_seeds = paper_seeds if pooling == "paper" else seeds
                    paths = cross_validate(config, [variant], seeds=row_seeds, overwrite=True)
                    results = json.loads(Path(paths["results_json"]).read_text())["variants"][variant]["folds"]
                    seconds = time.monotonic() - run_started
                    for model_dir in Path(config.output_dir).glob("**/model"):  # 180 runs: keep their results only
                        remove(model_dir)
                    model = {key: config.model.get(key) for key in ("audio_pooling", "use_weighted_layer_sum")}
                    rows.append((tower, f"{pooling} {model}, seeds {row_seeds}", variant, results, seconds))
                    print(
                        f"[{time.monotonic() - started:6.0f}s] {tower} {pooling} {variant}: WAR {cell(results, 'war')}"
                        f" UAR {cell(results, 'uar')} ({seconds:.0f} s)",
                        flush=True,
                    )
            probe_started = time.monotonic()
            probe = probe_scores(dataset, probe_features(dataset, str(encoder), root / "audio_cache"))
            rows.append(
                (
                    tower,
                    "probe (last layer mean+std, logistic regression)",
                    "-",
                    probe,
                    time.monotonic() - probe_started,
                )
            )

        print("\n| tower | pooling | variant | WAR (%) | UAR (%) | gender gap WAR / UAR (pts) | time (s) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for tower, pooling, variant, results, seconds in rows:
            gaps = [r["gender_gap"] for r in results if "gender_gap" in r]
            gap = (
                f"{100 * np.mean([g['war'] for g in gaps]):.1f} / {100 * np.mean([g['uar'] for g in gaps]):.1f}"
                if gaps
                else "-"
            )
            print(
                f"| {tower} | {pooling} | {variant} | {cell(results, 'war')} | {cell(results, 'uar')} | {gap} | {seconds:.0f} |"
            )
            report.setdefault(tower, []).append(
                {
                    "pooling": pooling,
                    "variant": variant,
                    "war": mean_std(results, "war"),
                    "uar": mean_std(results, "uar"),
                    "seconds": seconds,
                }
            )
        total = time.monotonic() - started
        print(f"\ntotal wall time {total:.0f} s (5 folds x the row's seeds)")
        for tower in towers:
            shipped = [entry for entry in report[tower] if entry["pooling"].startswith("shipped")]
            probe = next(entry for entry in report[tower] if entry["variant"] == "-")
            best = max(shipped, key=lambda entry: entry["uar"][0] + entry["war"][0])
            emo = next(entry for entry in shipped if entry["variant"] == "emo")
            print(
                f"{tower}: best shipped ({best['variant']}) - probe = WAR {best['war'][0] - probe['war'][0]:+.1f}, "
                f"UAR {best['uar'][0] - probe['uar'][0]:+.1f}; "
                + ", ".join(
                    f"{entry['variant']} - emo = WAR {entry['war'][0] - emo['war'][0]:+.1f} / UAR {entry['uar'][0] - emo['uar'][0]:+.1f}"
                    for entry in shipped
                    if entry["variant"] != "emo"
                )
            )
        (root / "table.json").write_text(json.dumps({"report": report, "total_seconds": total}, indent=2))


if __name__ == "__main__":
    main()
