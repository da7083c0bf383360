"""Frozen audio tower: training epochs served from the cache vs epochs that run the tower (same run otherwise),
and how many sequences the text tower encodes per step.

EmoDB 4-class (../shared) with the shipped CPU SL config (frozen whisper-tiny.en encoder + all-MiniLM-L6-v2) when
present, else the synthetic corpus with small random towers. Prints the training time of each epoch, the ratio of
the median uncached epoch to the median cached one, the one-off cache fill, and text-tower sequences per training
step against the distinct prompts per batch. Run alone (no other torch process): `python
benchmarks/bench_audio_cache.py [--epochs 4]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.processing.synthetic import generate_corpus
from gemo_clap.train import loop
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.tiny_towers import save_tiny_encoders

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EMODB, WHISPER = SHARED / "data" / "emodb", SHARED / "models" / "whisper-tiny.en-encoder"


class TextTowerCounter:
    """Counts the sequences the text tower encodes in training steps, and the distinct prompts of those batches
    (the distinct values of `prompt_index`, each utterance's prompt)."""

    def __init__(self) -> None:
        self.sequences = self.steps = self.distinct = 0

    def build(self, original):
        def build_and_hook(*args, **kwargs):
            model, processor = original(*args, **kwargs)

            def count_sequences(module, args, kwargs):
                if module.training:
                    self.sequences += kwargs["input_ids"].shape[0]

            def count_prompts(module, args, kwargs):
                if module.training:  # a training step: each utterance's prompt is one of the batch's labels
                    self.steps += 1
                    self.distinct += len(set(kwargs["prompt_index"].tolist()))

            model.text_model.register_forward_pre_hook(count_sequences, with_kwargs=True)
            model.register_forward_pre_hook(count_prompts, with_kwargs=True)
            return model, processor

        return build_and_hook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if EMODB.is_dir() and WHISPER.is_dir():
            dataset, _ = build_corpus("emodb", EMODB, label_map="4class", cache_dir=tmp / "cache")
            base = TrainingConfig.load("cpu-whisper-tiny-sl", [f"audio_encoder={WHISPER}"])
            what = "EmoDB 4-class, cpu-whisper-tiny-sl (whisper-tiny.en frozen + MiniLM)"
        else:
            dataset, _ = build_corpus("manifest", generate_corpus(tmp / "corpus"), num_folds=4, cache_dir=tmp / "cache")
            audio, text = save_tiny_encoders(tmp / "towers", "whisper")
            base = TrainingConfig(audio_encoder=str(audio), text_encoder=str(text), model={"variant": "sl"})
            what = "synthetic corpus, small random towers"
        dataset_dir = save_dataset(dataset, tmp / "data")
        times, fills, counters = {}, {}, {}
        for cached in (False, True):
            config = TrainingConfig.from_dict(
                {
                    **base.to_dict(),
                    "dataset": str(dataset_dir),
                    "freeze": "audio",
                    "cache_audio_features": cached,
                    "num_epochs": args.epochs,
                    "output_dir": str(tmp / f"run-{cached}"),
                    "audio_cache_dir": str(tmp / f"cache-{cached}"),
                    "report_to": [],
                }
            )
            counter = counters[cached] = TextTowerCounter()
            build = loop.build_model_and_processor
            loop.build_model_and_processor = counter.build(build)
            started = time.monotonic()
            try:
                history = loop.train(config).history
            finally:
                loop.build_model_and_processor = build
            times[cached] = [record["train_seconds"] for record in history]
            fills[cached] = time.monotonic() - started - sum(times[cached])
        print(f"{what}: {len(dataset)} utterances, {args.epochs} epochs, training time per epoch (s)")
        print("  tower runs every batch: " + ", ".join(f"{t:.2f}" for t in times[False]))
        print("  served from the cache:  " + ", ".join(f"{t:.2f}" for t in times[True]))
        ratio = statistics.median(times[False]) / statistics.median(times[True])
        print(f"median uncached epoch / median cached epoch: {ratio:.1f}x")
        print(f"rest of each run (load, cache fill, evaluation, saving): {fills[False]:.1f} s vs {fills[True]:.1f} s")
        for cached, counter in counters.items():
            name = "cached" if cached else "uncached"
            print(
                f"{name}: text-tower sequences per training step {counter.sequences / counter.steps:.2f}, "
                f"distinct prompts per batch {counter.distinct / counter.steps:.2f} ({counter.steps} batches)"
            )


if __name__ == "__main__":
    main()
