"""How a model transfers between corpora: `gemo-clap cross-corpus` in both directions between real EmoDB 4-class
(339 utterances, German, acted, studio) and the generated corpus of `processing/synthetic.py` (8 speakers x 4
emotions x 6 clips: synthetic speech-like signals, NOT speech), each trained on every utterance of one corpus and
scored on all of the other through the default path, with the probes of the frozen tower fitted on the same
training corpus beside it; and the generated corpus's own 4-fold cross-validation for reference (EmoDB's: the
conditions table's clean rows).

The shipped `cpu-whisper-<tower>-sl` config, seeds 1, 2, 3 (mean +/- std over seeds; the probes are deterministic).
Prints a markdown table of WAR / UAR %.

Run alone, from the repository root: `python benchmarks/bench_cross_corpus.py [--tower tiny] [--seeds 1,2,3]
[--output-dir DIR]`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from bench_emodb_variants import TOWERS, cpu_config, emodb_workspace
from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.processing.synthetic import generate_corpus
from gemo_clap.train.cli_cross_corpus import cross_corpus
from gemo_clap.train.cli_cross_validate import cross_validate
from gemo_clap.train.evaluation.probe import PROBE_LAYERS


def cell(folds: list[dict], key: str) -> str:
    values = 100 * np.array([fold[key] for fold in folds])
    return f"{values.mean():.1f} +/- {values.std():.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tower", choices=list(TOWERS), default="tiny")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--output-dir", default=None, help="keep the datasets, runs and reports here")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    started = time.monotonic()
    with emodb_workspace(args.output_dir) as (root, _, emodb):
        manifest = generate_corpus(root / "generated-corpus", speakers_per_gender=4, clips_per_emotion=6, seed=0)
        generated, _ = build_corpus("manifest", manifest, num_folds=4)
        generated = save_dataset(generated, root / "generated", overwrite=True)
        rows = []
        for train, test, name in ((emodb, generated, "EmoDB -> generated"), (generated, emodb, "generated -> EmoDB")):
            folder = root / args.tower / name.replace(" -> ", "-to-")
            config = cpu_config(args.tower, "sl", train, root, folder, [f"test_dataset={test}"])
            paths = cross_corpus(config, ["sl"], seeds, overwrite=True, probes=list(PROBE_LAYERS))
            rows.append((name, json.loads(Path(paths["results_json"]).read_text())["variants"]))
        config = cpu_config(args.tower, "sl", generated, root, root / args.tower / "generated-cv")
        paths = cross_validate(config, ["sl"], seeds=seeds, overwrite=True, probes=list(PROBE_LAYERS))
        rows.append(("generated 4-fold", json.loads(Path(paths["results_json"]).read_text())["variants"]))
    print(f"\n{args.tower}, seeds {seeds}, {time.monotonic() - started:.0f} s\n")
    print("| train -> test | sl WAR | sl UAR | probe (all layers) WAR / UAR | probe (last layer) WAR / UAR |")
    print("| --- | --- | --- | --- | --- |")
    for name, variants in rows:
        probes = [variants[key]["folds"] for key in ("probe (all layers)", "probe (last layer)")]
        sl = variants["sl"]["folds"]
        print(
            f"| {name} | {cell(sl, 'war')} | {cell(sl, 'uar')} | "
            + " | ".join(f"{cell(folds, 'war')} / {cell(folds, 'uar')}" for folds in probes)
            + " |"
        )


if __name__ == "__main__":
    main()
