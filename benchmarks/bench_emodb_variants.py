"""EmoDB: Emo-CLAP vs SL- vs ML-GEmo-CLAP vs a logistic-regression probe, same folds, one run, with wall times.

Real EmoDB from ../shared (4 classes: anger, happiness, sadness, neutral -> 339 utterances; 5 speaker-independent
folds, one female and one male speaker per fold), a frozen Whisper encoder (its statistics cached once and shared
by every fold, variant and the probe) + all-MiniLM-L6-v2, the shipped `cpu-whisper-<tower>-*` configs. The probes
are `cross-validate --probe`'s: mean+std over the real frames of every hidden state of the encoder (and of the
last one) -> standardised logistic regression with C chosen on the training folds alone, same folds, same run.
Prints WAR/UAR mean +/- std per method and the wall times.

Run alone, from the repository root: `python benchmarks/bench_emodb_variants.py [--tower tiny] [--first-round]
[KEY=VALUE ...]` (overrides apply to every variant's config, e.g. `num_epochs=5`; `--first-round` runs the settings
the first round's CPU configs had, for a like-for-like comparison with its table).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from datasets import Dataset
from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.train.cli_cross_validate import cross_validate
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.evaluation.probe import PROBE_LAYERS

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EMODB = SHARED / "data" / "emodb"
# the first round's cpu-whisper-tiny-* settings (lr 1e-4 x 30 epochs, batch 16, mean pooling of the last layer into
# a 2-layer projection, the text tower trained, best epoch on 10%)
FIRST_ROUND = [
    "freeze_text=false",
    "checkpoint_every_epochs=10",
    "text_attn_implementation=eager",
    "model.audio_standardisation=false",
    "model.projection_layers=2",
    "model.projection_dropout=0",
    "learning_rate=1e-4",
    "num_epochs=30",
    "batch_size=16",
    "warmup_epochs=2",
    "validation_split=utterances",
    "validation_fraction=0.1",
    "freeze_text_embeddings=false",
    "layer_weights_learning_rate=0",
    "model.audio_pooling=mean",
    "model.audio_layer_pooling=last",
    "model.sl_alpha=0.8",
    "model.ml_alpha=0.8",
]
TOWERS = {"tiny": SHARED / "models" / "whisper-tiny.en-encoder", "base": SHARED / "models" / "whisper-base-encoder"}


def emodb_parser(description: str) -> argparse.ArgumentParser:
    """The options of the EmoDB benchmarks: `--tower` and `--output-dir`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tower", choices=list(TOWERS), default="tiny")
    parser.add_argument("--output-dir", default=None, help="keep runs and reports here (default: a temp folder)")
    return parser


def shared_encoder(tower: str) -> Path:
    """The shared Whisper encoder `tower` names; exits saying what is missing when it or EmoDB is absent."""
    encoder = TOWERS[tower]
    if not (EMODB.is_dir() and encoder.is_dir()):
        raise SystemExit(f"needs {EMODB} and {encoder}")
    return encoder


@contextlib.contextmanager
def emodb_workspace(output_dir: str | None, label_map: str | None = "4class") -> Iterator[tuple[Path, Dataset, Path]]:
    """(root, dataset, its folder): the EmoDB 4-class dataset (`label_map=None`: all 7 emotions, 535 utterances;
    5 speaker-independent folds, the same for both) built and saved under `output_dir` (runs and reports are kept
    there), or under a temporary folder removed on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(output_dir or tmp)
        dataset, _ = build_corpus("emodb", EMODB, label_map=label_map, num_folds=5, cache_dir=Path(tmp) / "cache")
        name = f"emodb-{label_map or '7class'}"
        yield root, dataset, save_dataset(dataset, root / name, overwrite=True)


def cpu_config(
    tower: str, variant: str, dataset_dir: Path, root: Path, output_dir: Path, extra: Iterable[str] = ()
) -> TrainingConfig:
    """The shipped `cpu-whisper-<tower>-<variant>` config on the EmoDB dataset saved in `dataset_dir`, writing its
    runs to `output_dir`, the frozen-tower cache shared under `root`, with the `extra` overrides."""
    overrides = [
        f"audio_encoder={TOWERS[tower]}",
        f"dataset={dataset_dir}",
        f"output_dir={output_dir}",
        f"audio_cache_dir={root / 'audio_cache'}",
        "report_to=none",
        *extra,
    ]
    return TrainingConfig.load(f"cpu-whisper-{tower}-{variant}", overrides)


def summary(results: list[dict]) -> str:
    war, uar = (100 * np.array([r[key] for r in results]) for key in ("war", "uar"))
    return f"{war.mean():5.1f} +/- {war.std():4.1f} | {uar.mean():5.1f} +/- {uar.std():4.1f}"


def main() -> None:
    parser = emodb_parser(__doc__)
    parser.add_argument("--first-round", action="store_true", help="the first round's CPU config settings")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args()
    shared_encoder(args.tower)  # exits saying what is missing
    started = time.monotonic()
    with emodb_workspace(args.output_dir) as (root, dataset, dataset_dir):
        print(f"EmoDB 4-class: {len(dataset)} utterances, folds {sorted(set(dataset['fold']))}")

        rows = {}
        for variant in ("emo", "sl", "ml"):
            extra = [*(FIRST_ROUND if args.first_round else []), *args.overrides]
            config = cpu_config(args.tower, variant, dataset_dir, root, root / "cv" / variant, extra)
            variant_started = time.monotonic()
            probes = PROBE_LAYERS if variant == "emo" else ()  # the probes once, on the same folds
            paths = cross_validate(config, [variant], overwrite=True, probes=probes)
            report = json.loads(Path(paths["results_json"]).read_text())["variants"]
            rows.update({name: (entry["folds"], time.monotonic() - variant_started) for name, entry in report.items()})
        print("\n| method | WAR (%) | UAR (%) | time (s) |\n| --- | --- | --- | --- |")
        for name, (results, seconds) in rows.items():
            print(f"| {name} | {summary(results)} | {seconds:.0f} |")
        print(
            f"\ntotal run time {time.monotonic() - started:.0f} s (Emo-CLAP, the first, also fills the frozen-tower "
            f"cache and runs the probes: {rows['emo'][1]:.0f} s vs {rows['sl'][1]:.0f} s for SL)"
        )


if __name__ == "__main__":
    main()
