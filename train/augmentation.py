"""Per-epoch augmentation that keeps training cache-served: no audio is decoded and no frozen layer runs again.

- `mixup_alpha` (frozen tower, cached statistics): each utterance's per-layer statistics are mixed with those of
  another utterance of the batch with the same labels (emotion, and gender for the variants that use it), with a
  weight drawn from Beta(alpha, alpha); the labels stay true, so every loss applies unchanged.
- `time_mask_fraction` (top layers over a cached hidden state): spans of about a tenth of `time_mask_fraction` of
  each utterance's real frames are dropped from its frame mask, `time_mask_fraction` of them in all (SpecAugment's
  time masking, on the cached state), at least one frame kept.
"""

from __future__ import annotations

import numpy as np
import torch

MASK_SPANS = 10  # time masking drops its share of frames in about this many spans


def same_label_partners(keys: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each item, the index of a random item of the batch with the same key (itself when it has no other)."""
    partners = torch.arange(len(keys))
    for key in keys.unique():
        members = torch.nonzero(keys == key).flatten()
        if len(members) > 1:
            partners[members] = members[torch.randint(len(members), (len(members),), generator=generator)]
    return partners


def mix_statistics(batch: dict, alpha: float, generator: torch.Generator, with_gender: bool) -> dict:
    """The batch with its `audio_layer_statistics` mixed within labels (see the module docstring)."""
    keys = batch["emotion_labels"].clone()
    if with_gender and "gender_labels" in batch:
        keys = keys * (int(batch["gender_labels"].max()) + 1) + batch["gender_labels"]
    partners = same_label_partners(keys, generator)
    statistics = batch["audio_layer_statistics"]
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
    weights = torch.from_numpy(rng.beta(alpha, alpha, size=len(keys))).to(statistics.dtype)
    weights = weights.view(-1, *([1] * (statistics.ndim - 1)))
    return {**batch, "audio_layer_statistics": weights * statistics + (1 - weights) * statistics[partners]}


def mask_frames(batch: dict, fraction: float, generator: torch.Generator) -> dict:
    """The batch with about `fraction` of each utterance's real frames (a prefix of its row) dropped from
    `audio_frame_mask`, in spans; at least one frame is kept."""
    mask = batch["audio_frame_mask"].clone()
    for row, frames in enumerate(mask.sum(dim=1).tolist()):
        target = min(round(frames * fraction), frames - 1)
        span = max(1, round(target / MASK_SPANS))
        while target > 0 and int(mask[row].sum()) > frames - target:
            start = int(torch.randint(frames - span + 1, (1,), generator=generator))
            mask[row, start : start + span] = 0
        if not mask[row].any():
            mask[row, 0] = 1
    return {**batch, "audio_frame_mask": mask}
