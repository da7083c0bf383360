"""Padding with length-grouped batches (`group_by_length=true`, used when the audio tower runs) vs random batches:
the fraction of a padded epoch that is padding, on EmoDB 4-class (../shared), training folds of fold 1. A
deterministic figure (the samplers are seeded): `python benchmarks/bench_padding.py`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from gemo_clap.processing.builder import build_corpus
from gemo_clap.train.data import LengthGroupedSampler, fold_splits, padding_fraction
from torch.utils.data import RandomSampler

EMODB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emodb"


def main() -> None:
    if not EMODB.is_dir():
        raise SystemExit(f"needs {EMODB}")
    with tempfile.TemporaryDirectory() as tmp:
        dataset, _ = build_corpus("emodb", EMODB, label_map="4class", cache_dir=Path(tmp) / "cache")
    lengths = list(fold_splits(dataset, 1, 0.1, 42).train["duration"])
    print(f"EmoDB 4-class, training split of fold 1: {len(lengths)} clips of {min(lengths):.1f}-{max(lengths):.1f} s")
    print("| batch size | random | length-grouped | grouped / random |\n| --- | --- | --- | --- |")
    for batch_size in (8, 16):
        random, grouped = [], []
        for epoch in range(5):
            order = RandomSampler(range(len(lengths)), generator=torch.Generator().manual_seed(42 + epoch))
            random.append(padding_fraction(lengths, list(order), batch_size))
            sampler = LengthGroupedSampler(lengths, batch_size, seed=42)
            sampler.set_epoch(epoch)
            grouped.append(padding_fraction(lengths, list(sampler), batch_size))
        r, g = sum(random) / len(random), sum(grouped) / len(grouped)
        print(f"| {batch_size} | {100 * r:.1f}% | {100 * g:.1f}% | {g / r:.2f} |")
    print("(mean over epochs 0-4 of the fraction of padded audio samples per epoch)")


if __name__ == "__main__":
    main()
