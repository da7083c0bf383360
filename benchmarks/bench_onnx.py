"""The ONNX runner (onnxruntime, numpy features, no torch), float and int8 (`export-onnx --quantize int8`), vs the
torch zero-shot pipeline, on real EmoDB clips from ../shared, for the towers of the given shipped configs
(default whisper-tiny.en and whisper-base with all-MiniLM-L6-v2).

Timing (the default; run it alone: a second process on 2 cores slows both), per config, printed as one table:
1. throughput in seconds of audio per wall second of the torch pipeline, the float runner and the int8 runner,
   batched (8 chunks per call) and one clip at a time, all with `--threads` threads; int8 / float;
2. file size: the checkpoint's model.safetensors (text tower included), the float and the int8 model.onnx;
3. peak RSS of a fresh process classifying the clips: the pipeline, and each runner with torch blocked;
4. the largest probability difference and the top-label agreement of int8 vs float on those clips.
The model is the config's fold-1 model from an `--accuracy` run in `--output-dir` when there is one (else the
config's towers with untrained heads: the same speed, but the int8 gate may refuse near-uniform outputs).

Accuracy (`--accuracy`; does not depend on timing): per config, a model trained on each of the 5 EmoDB 4-class
speaker-independent folds (`cross-validate`, resumed from `--output-dir`), exported float and int8 and scored on its
test fold with the runners: WAR/UAR per fold and mean +/- std, int8 - float, the int8 gate's measurements.

Run from the repository root:
  python benchmarks/bench_onnx.py --accuracy --output-dir runs/bench-onnx [--configs A,B] [--threads 1]
  python benchmarks/bench_onnx.py --output-dir runs/bench-onnx [--configs A,B] [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from bench_emodb_variants import EMODB, emodb_workspace
from bench_inference import best_of, peak_rss
from gemo_clap.train.cli_cross_validate import cross_validate
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.evaluation.zero_shot import score
from gemo_clap.train.towers import build_model_and_processor

from gemo_clap.loading import load_classifier
from gemo_clap.onnx.export import export_onnx
from gemo_clap.onnx.quantize import INT8
from gemo_clap.onnx.runtime import CONFIG_FILE, ONNX_FILE, GEmoClapOnnxRunner

CONFIGS = "cpu-whisper-tiny-ml,cpu-whisper-base-ml"
KINDS = {"float": None, INT8: INT8}  # export kind -> export_onnx(quantize=...)
PEAK_RSS = {
    "runner": (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['transformers'] = None\n"
        "from gemo_clap.onnx.runtime import GEmoClapOnnxRunner\n"
        "GEmoClapOnnxRunner(sys.argv[1], num_threads=int(sys.argv[2]))(sys.argv[3:], batch_size=8)\n"
    ),
    "pipeline": (
        "import sys, torch\n"
        "from gemo_clap.loading import load_classifier\n"
        "torch.set_num_threads(int(sys.argv[2]))\n"
        "with torch.no_grad():\n"
        "    load_classifier(sys.argv[1], False)(sys.argv[3:], batch_size=8)\n"
    ),
}


def fold_run(output_dir: Path, config: TrainingConfig, fold: int) -> Path:
    """Where `cross_validate` puts a config's run of test fold `fold` under `output_dir` (one seed)."""
    return output_dir / config.model["variant"] / f"fold_{fold}"


def exports(model_dir: Path, folder: Path) -> dict[str, dict | str]:
    """Export `model_dir` float and int8 into `folder/<kind>`: per kind the export's summary, or the gate's refusal."""
    results: dict[str, dict | str] = {}
    for kind, quantize in KINDS.items():
        try:
            results[kind] = export_onnx(model_dir, folder / kind, quantize=quantize)
        except ValueError as refusal:
            results[kind] = str(refusal)
    return results


def compare(ours: list[list[dict]], theirs: list[list[dict]]) -> tuple[float, float]:
    """(largest probability difference, top-label agreement) of two runs' results on the same clips."""
    difference = max(
        abs(entry["score"] - {e["label"]: e["score"] for e in other}[entry["label"]])
        for result, other in zip(ours, theirs)
        for entry in result
    )
    agreement = float(np.mean([result[0]["label"] == other[0]["label"] for result, other in zip(ours, theirs)]))
    return difference, agreement


def mebibytes(path: Path) -> float:
    return path.stat().st_size / 2**20


# ------------------------------------------------------------------------------ accuracy
def accuracy(configs: list[str], output_dir: str | None, threads: int) -> None:
    with emodb_workspace(output_dir) as (root, dataset, dataset_dir):
        names = dataset.features["emotion"].names
        report = {}
        for name in configs:
            overrides = [
                f"dataset={dataset_dir}",
                f"output_dir={root / name}",
                f"audio_cache_dir={root / 'audio_cache'}",
                "report_to=none",
            ]
            config = TrainingConfig.load(name, overrides)
            cross_validate(config, [config.model["variant"]], resume=True)
            rows = []
            for fold in sorted(set(dataset["fold"])):
                run = fold_run(root / name, config, fold)
                test = dataset.filter(lambda value, fold=fold: value == fold, input_columns="fold")
                audio = [item["bytes"] for item in test["audio"]]
                row = {"fold": fold, "torch": json.loads((run / "test_results.json").read_text())}
                results = {}
                for kind, summary in exports(run / "model", run / "onnx").items():
                    if isinstance(summary, str):
                        row[kind] = summary
                        continue
                    results[kind] = GEmoClapOnnxRunner(run / "onnx" / kind, num_threads=threads)(audio, batch_size=8)
                    predictions = [names.index(result[0]["label"]) for result in results[kind]]
                    outputs = {"predictions": predictions, "references": test["emotion"], "genders": test["gender"]}
                    row[kind] = {
                        **score(outputs, names, dataset.features["gender"].names),
                        "size_mib": mebibytes(run / "onnx" / kind / ONNX_FILE),
                    }
                    if kind == INT8:
                        row["gate"] = summary["quantization"]["check"]
                if len(results) == 2:
                    row["test_difference"], row["test_agreement"] = compare(results[INT8], results["float"])
                rows.append(row)
                print(f"{name} fold {fold}: {fold_line(row)}", flush=True)
            report[name] = rows
            print_accuracy(name, rows)
        (root / "bench_onnx_accuracy.json").write_text(json.dumps(report, indent=2, default=str))


def fold_line(row: dict) -> str:
    cells = [f"torch WAR {100 * row['torch']['war']:.1f}"]
    for kind in KINDS:
        metrics = row[kind]
        cells.append(
            f"{kind} WAR {100 * metrics['war']:.1f} UAR {100 * metrics['uar']:.1f}"
            if isinstance(metrics, dict)
            else f"{kind} refused: {metrics}"
        )
    if "test_agreement" in row:
        cells.append(f"int8 vs float on the test clips: agreement {row['test_agreement']:.3f}, ")
        cells[-1] += f"largest probability difference {row['test_difference']:.3f}"
    return "; ".join(cells)


WORST = {"min_embedding_cosine": min, "max_probability_difference": max, "top_label_agreement": min}


def gate_cell(check: dict) -> str:
    return " / ".join(f"{check[key]:.{4 if 'cosine' in key else 3}f}" for key in WORST)


def print_accuracy(name: str, rows: list[dict]) -> None:
    """Markdown table: per fold and mean +/- std, float and int8 WAR/UAR, int8 - float, agreement, the gate."""
    print(f"\n{name}: test-fold WAR / UAR (%) of the float and int8 exports (ONNX runner)\n")
    print(
        "| fold | float WAR / UAR | int8 WAR / UAR | int8 - float (pts) | agreement on the test clips | "
        "largest prob. diff (test clips) | gate (check clips): embedding cosine / prob. diff / agreement |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    scored = [row for row in rows if all(isinstance(row[kind], dict) for kind in KINDS)]
    for row in rows:
        if row not in scored:
            print(f"| {row['fold']} | {fold_line(row)} | | | | | |")
            continue
        float_, int8 = row["float"], row[INT8]
        print(
            f"| {row['fold']} | {100 * float_['war']:.1f} / {100 * float_['uar']:.1f} | {100 * int8['war']:.1f} / "
            f"{100 * int8['uar']:.1f} | {100 * (int8['war'] - float_['war']):+.1f} / "
            f"{100 * (int8['uar'] - float_['uar']):+.1f} | {row['test_agreement']:.3f} | {row['test_difference']:.3f} "
            f"| {gate_cell(row['gate'])} |"
        )
    if scored:
        values = {
            (kind, key): 100 * np.array([row[kind][key] for row in scored]) for kind in KINDS for key in ("war", "uar")
        }
        delta = {key: values[(INT8, key)] - values[("float", key)] for key in ("war", "uar")}
        print(
            f"| mean +/- std ({len(scored)} folds) | {values[('float', 'war')].mean():.1f} +/- "
            f"{values[('float', 'war')].std():.1f} / {values[('float', 'uar')].mean():.1f} +/- "
            f"{values[('float', 'uar')].std():.1f} | {values[(INT8, 'war')].mean():.1f} +/- "
            f"{values[(INT8, 'war')].std():.1f} / {values[(INT8, 'uar')].mean():.1f} +/- "
            f"{values[(INT8, 'uar')].std():.1f} | {delta['war'].mean():+.2f} +/- {delta['war'].std():.2f} / "
            f"{delta['uar'].mean():+.2f} +/- {delta['uar'].std():.2f} | "
            f"{np.mean([row['test_agreement'] for row in scored]):.3f} | "
            f"{max(row['test_difference'] for row in scored):.3f} | "
            f"{gate_cell({key: worst(row['gate'][key] for row in scored) for key, worst in WORST.items()})} |"
        )
        torch_war = 100 * np.array([row["torch"]["war"] for row in scored])
        print(
            f"\nfloat runner vs the torch test metrics: WAR {values[('float', 'war')].mean():.1f} vs "
            f"{torch_war.mean():.1f}; model.onnx float {scored[0]['float']['size_mib']:.1f} MiB, int8 "
            f"{scored[0][INT8]['size_mib']:.1f} MiB; target: int8 loses <= 0.5 WAR points"
        )


# ------------------------------------------------------------------------------ timing
def emodb_files(count: int) -> list[str]:
    """Every k-th EmoDB file, `count` of them."""
    paths = sorted((EMODB / "wav").glob("*.wav"))
    return [str(path) for path in paths[:: max(1, len(paths) // count)][:count]]


def timing_model(name: str, output_dir: str | None, workdir: Path) -> tuple[Path, str]:
    """(model folder, what it is): the config's fold-1 model of an `--accuracy` run, else untrained heads."""
    config = TrainingConfig.load(name)
    if output_dir is not None:
        trained = fold_run(Path(output_dir) / name, config, 1) / "model"
        if trained.is_dir():
            return trained, f"{name}, trained on EmoDB (test fold 1)"
    model, processor = build_model_and_processor(config.audio_encoder, config.text_encoder, **config.model)
    folder = workdir / name / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder, f"{name}'s towers, untrained heads (no --accuracy run in --output-dir)"


def timing(configs: list[str], output_dir: str | None, threads: int, quick: bool) -> None:
    files = emodb_files(8 if quick else 48)
    seconds = sum(sf.info(path).duration for path in files)
    repeats = 1 if quick else 3
    print(f"{len(files)} EmoDB clips ({seconds:.1f} s of audio), {threads} thread(s), best of {repeats}")
    rows: list[tuple[str, str, dict[str, str]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in configs:
            model_dir, description = timing_model(name, output_dir, Path(tmp))
            print(f"\n{name}: {description}", flush=True)
            exported = exports(model_dir, Path(tmp) / name / "onnx")
            for kind, summary in exported.items():
                if isinstance(summary, str):
                    print(f"  {kind} export refused: {summary}")
            runners = {"torch pipeline": load_classifier(str(model_dir), False)}
            folders = {f"ONNX {kind}": Path(tmp) / name / "onnx" / kind for kind in KINDS}
            for label, folder in folders.items():
                if (folder / CONFIG_FILE).is_file():
                    runners[label] = GEmoClapOnnxRunner(folder, num_threads=threads)
            with torch.no_grad():
                results = {label: runner(files, batch_size=8) for label, runner in runners.items()}
                for batch_size in (8, 1):
                    cells = {
                        label: seconds
                        / best_of(lambda runner=runner, size=batch_size: runner(files, batch_size=size), repeats)
                        for label, runner in runners.items()
                    }
                    rows.append((name, f"audio s / s, batch {batch_size}", {k: f"{v:.0f}" for k, v in cells.items()}))
                    print(f"  {rows[-1][1]}: " + ", ".join(f"{k} {v:.1f}" for k, v in cells.items()), flush=True)
                    if {"ONNX float", f"ONNX {INT8}"} <= set(cells):
                        rows[-1][2]["int8 / float"] = f"{cells[f'ONNX {INT8}'] / cells['ONNX float']:.2f}x"
            sizes = {"torch pipeline": mebibytes(model_dir / "model.safetensors")}
            sizes.update({label: mebibytes(folders[label] / ONNX_FILE) for label in runners if label in folders})
            rows.append((name, "file size (MiB)", {k: f"{v:.1f}" for k, v in sizes.items()}))
            peaks = {"torch pipeline": peak_rss(PEAK_RSS["pipeline"], str(model_dir), str(threads), *files)}
            for label in runners.keys() & folders.keys():
                peaks[label] = peak_rss(PEAK_RSS["runner"], str(folders[label]), str(threads), *files)
            rows.append((name, "peak RSS (MiB)", {k: f"{v:.0f}" for k, v in peaks.items()}))
            if f"ONNX {INT8}" in results:
                difference, agreement = compare(results[f"ONNX {INT8}"], results["ONNX float"])
                rows.append(
                    (name, "int8 vs float on these clips", {"int8 / float": f"{difference:.3f} / {agreement:.3f}"})
                )
    columns = ["torch pipeline", "ONNX float", f"ONNX {INT8}", "int8 / float"]
    print("\n| config | measure | " + " | ".join(columns) + " |\n|" + " --- |" * (len(columns) + 2))
    for name, measure, cells in rows:
        print(f"| {name} | {measure} | " + " | ".join(cells.get(column, "") for column in columns) + " |")
    print("(int8 vs float row: largest probability difference / top-label agreement; target: int8 >= 1.5x float)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=CONFIGS, help=f"comma-separated shipped configs (default {CONFIGS})")
    parser.add_argument("--output-dir", default=None, help="keeps the --accuracy runs; timing uses their fold-1 models")
    parser.add_argument("--accuracy", action="store_true", help="test-fold WAR/UAR of int8 vs float (no timing)")
    parser.add_argument("--quick", action="store_true", help="timing: 8 clips, one repeat (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads")
    args = parser.parse_args()
    configs = args.configs.split(",")
    missing = [EMODB] + [Path(TrainingConfig.load(name).audio_encoder) for name in configs]
    missing = [str(path) for path in missing if not path.is_dir()]
    if missing:
        raise SystemExit(f"skipped: needs {' and '.join(missing)} (../shared beside the repository)")
    torch.set_num_threads(args.threads)
    if args.accuracy:
        accuracy(configs, args.output_dir, args.threads)
    else:
        timing(configs, args.output_dir, args.threads, args.quick)


if __name__ == "__main__":
    main()
