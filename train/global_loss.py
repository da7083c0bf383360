"""The contrastive loss training applies to `GEmoClapTrainingModel`'s features, outside the model (as open_clip
applies `ClipLoss`): under several processes, embeddings and labels are first gathered from every process, so the
contrastive matrix spans the global batch (`gather_global_batch`), not each process's slice."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import distributed as dist
from torch.nn import functional as F

from ..modeling import GEmoClapLoss
from .training_model import ContrastiveFeatures


class _GatherWithGradient(torch.autograd.Function):
    """`all_gather` whose backward hands each process the summed gradient of its own slice."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, tensor.contiguous())
        return tuple(gathered)

    @staticmethod
    def backward(ctx, *gradients: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack(gradients).contiguous()
        dist.all_reduce(stacked)
        return stacked[dist.get_rank()]


def gather_batch(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` (first dimension: this process's batch) concatenated over processes in rank order (as open_clip's
    `gather_features`).

    Gradients flow back to the local slice. Every process computes the same global loss, so the all-reduced
    gradient of a slice is `world_size` times the single-process one, and the `1/world_size` of DDP's gradient
    averaging makes the update exactly that of one process on the global batch. Batches may differ in size."""
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    sizes = [int(size) for size in sizes]
    padded = F.pad(tensor, [0, 0] * (tensor.ndim - 1) + [0, max(sizes) - tensor.shape[0]])
    if tensor.requires_grad:
        pieces = _GatherWithGradient.apply(padded)
    else:
        pieces = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(pieces, padded.contiguous())
    return torch.cat([piece[:size] for piece, size in zip(pieces, sizes)])


def several_processes() -> bool:
    """Whether this process is one of several in a process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def contrastive_loss(
    criterion: GEmoClapLoss,
    features: ContrastiveFeatures,
    batch: Mapping[str, torch.Tensor],
    gather: bool = False,
) -> torch.Tensor:
    """The variant's loss of a batch's features and labels; with `gather` under several processes, of the global
    batch's (`gather_batch`: gradients flow back to this process's slice)."""
    tensors = [
        features.audio_embeds,
        features.text_embeds,
        batch["emotion_labels"].reshape(-1),
        batch.get("gender_labels"),
        features.gender_text_embeds,
    ]
    if gather and several_processes():
        tensors = [None if tensor is None else gather_batch(tensor) for tensor in tensors]
    audio_embeds, text_embeds, emotion_labels, gender_labels, gender_text_embeds = tensors
    scales = (features.logit_scale_audio, features.logit_scale_text)
    inputs = criterion.loss_inputs(audio_embeds, text_embeds, scales, emotion_labels, gender_labels, gender_text_embeds)
    return criterion.loss(inputs)
