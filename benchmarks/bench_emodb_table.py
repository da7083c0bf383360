"""EmoDB table: Emo / SL / ML x {whisper-tiny.en, whisper-base} x {the previous round's CPU configs, the shipped
ones} + both linear probes of each frozen tower (all layers, last layer), same folds, same run, 3 seeds, with
per-gender WAR/UAR, the gender gap and wall times.

Real EmoDB from ../shared (4 classes, 339 utterances, 5 speaker-independent folds), the shipped
`cpu-whisper-{tiny,base}-{emo,sl,ml}` configs (settings selected by benchmarks/select_cpu_configs.py on validation
splits only), run with seeds 1, 2 and 3 (the selection used 42 and 43). "previous" runs the same configs with the
previous round's settings (`PREVIOUS_ROUND`). The probes are `cross-validate --probe`'s. Every frozen tower runs
once: its statistics are cached and shared by every fold, variant, seed and the probes.

Run alone, from the repository root: `python benchmarks/bench_emodb_table.py [--towers tiny,base] [--seeds 1,2,3]
[--rows previous,shipped] [--label-map 4class|7class]`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from bench_emodb_variants import cpu_config, emodb_workspace
from gemo_clap.processing.atomic import remove
from gemo_clap.train.cli_cross_validate import cross_validate
from gemo_clap.train.evaluation.probe import PROBE_LAYERS

# the previous round's cpu-whisper-* settings (selected on EmoDB 4-class alone): mean over a learnt weighted layer
# sum, raw statistics, a 2-layer projection, the text tower trained, best epoch on 10% of the training folds
PREVIOUS_ROUND = [
    "model.audio_pooling=mean",
    "model.audio_layer_pooling=weighted_sum",
    "model.audio_standardisation=false",
    "model.projection_layers=2",
    "model.projection_dropout=0",
    "model.target_normalisation=softmax",
    "model.sl_alpha=0.8",
    "model.ml_alpha=0.9",
    "freeze_text=false",
    "learning_rate=1e-4",
    "layer_weights_learning_rate=1e-2",
    "num_epochs=50",
    "validation_fraction=0.1",
]


def percent(results: list[dict], key: str) -> str:
    values = 100 * np.array([result[key] for result in results])
    return f"{values.mean():.1f} +/- {values.std():.1f}"


def gender_cells(results: list[dict], genders: list[str]) -> list[str]:
    """Per gender WAR / UAR (mean over runs), and the gender gap WAR / UAR (mean of the per-run gaps), in %."""
    cells = []
    for gender in genders:
        per_run = [result["per_gender"][gender] for result in results if gender in result.get("per_gender", {})]
        cells.append(
            f"{100 * np.mean([r['war'] for r in per_run]):.1f} / {100 * np.mean([r['uar'] for r in per_run]):.1f}"
        )
    gaps = [result["gender_gap"] for result in results if "gender_gap" in result]
    cells.append(f"{100 * np.mean([g['war'] for g in gaps]):.1f} / {100 * np.mean([g['uar'] for g in gaps]):.1f}")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--towers", default="tiny,base")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--rows", default="previous,shipped")
    parser.add_argument("--label-map", default="4class", choices=["4class", "7class"])
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args()
    towers, seeds = args.towers.split(","), [int(seed) for seed in args.seeds.split(",")]
    label_map = None if args.label_map == "7class" else args.label_map
    started = time.monotonic()
    with emodb_workspace(args.output_dir, label_map) as (root, dataset, dataset_dir):
        genders = dataset.features["gender"].names
        rows = []
        for tower in towers:
            probes_done = False
            for row in args.rows.split(","):
                for variant in ("emo", "sl", "ml"):
                    extra = PREVIOUS_ROUND if row == "previous" else []
                    config = cpu_config(tower, variant, dataset_dir, root, root / tower / row / variant, extra)
                    run_started = time.monotonic()
                    probes = () if probes_done else PROBE_LAYERS
                    paths = cross_validate(config, [variant], seeds=seeds, overwrite=True, probes=probes)
                    probes_done = True
                    report = json.loads(Path(paths["results_json"]).read_text())["variants"]
                    seconds = time.monotonic() - run_started
                    for model_dir in Path(config.output_dir).glob("**/model"):  # 90 runs a row: keep their results
                        remove(model_dir)
                    for name, entry in report.items():
                        label = f"{row}, seeds {seeds}" if name == variant else name
                        rows.append((tower, label, variant if name == variant else "-", entry["folds"], seconds))
                        print(
                            f"[{time.monotonic() - started:6.0f}s] {tower} {label} {variant}: WAR "
                            f"{percent(entry['folds'], 'war')} UAR {percent(entry['folds'], 'uar')} ({seconds:.0f} s)",
                            flush=True,
                        )

        titles = [f"{gender} WAR / UAR" for gender in genders] + ["gender gap WAR / UAR (pts)"]
        print(f"\n| tower | row | variant | WAR (%) | UAR (%) | {' | '.join(titles)} | time (s) |")
        print("| --- " * (6 + len(titles)) + "|")
        summary = []
        for tower, label, variant, results, seconds in rows:
            cells = [tower, label, variant, percent(results, "war"), percent(results, "uar")]
            print("| " + " | ".join([*cells, *gender_cells(results, genders), f"{seconds:.0f}"]) + " |")
            war, uar = (float(np.mean([result[key] for result in results])) for key in ("war", "uar"))
            summary.append({"tower": tower, "row": label, "variant": variant, "war": war, "uar": uar})
        print(f"\ntotal wall time {time.monotonic() - started:.0f} s")
        for tower in towers:
            probe = next(e for e in summary if e["tower"] == tower and e["row"] == "probe (all layers)")
            last = next(e for e in summary if e["tower"] == tower and e["row"] == "probe (last layer)")
            for row in args.rows.split(","):
                entries = [e for e in summary if e["tower"] == tower and e["row"].startswith(row)]
                best = max(entries, key=lambda e: e["war"] + e["uar"])
                print(
                    f"{tower} {row}: best ({best['variant']}) - all-layers probe = WAR "
                    f"{100 * (best['war'] - probe['war']):+.1f} / UAR {100 * (best['uar'] - probe['uar']):+.1f}; "
                    f"lowest - last-layer probe = WAR {100 * min(e['war'] - last['war'] for e in entries):+.1f}"
                )
        (root / "table.json").write_text(json.dumps({"rows": summary, "seconds": time.monotonic() - started}, indent=2))


if __name__ == "__main__":
    main()
