"""The standardisation of the pooled audio statistics (`audio_standardisation`), measured on the training split: the
per-element mean and standard deviation of `get_audio_layer_statistics` over its utterances, set on the model
before the first step (so they are saved with every checkpoint and travel with the model)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.utils.data import DataLoader

from ..modeling import GEmoClapModel
from .data import inputs_of


class RunningMoments:
    """Mean and (population) standard deviation over the first dimension of batches of tensors, in float64."""

    def __init__(self) -> None:
        self.count, self.total, self.squares = 0, None, None

    def update(self, batch: torch.Tensor) -> None:
        batch = batch.detach().to(torch.float64)
        total, squares = batch.sum(dim=0), (batch**2).sum(dim=0)
        self.total = total if self.total is None else self.total + total
        self.squares = squares if self.squares is None else self.squares + squares
        self.count += batch.shape[0]

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.count:
            raise ValueError("no utterances to measure the audio standardisation on")
        mean = self.total / self.count
        variance = (self.squares / self.count - mean**2).clamp_min(0.0)
        return mean.float(), variance.sqrt().float()


def statistics_moments(batches: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) over utterances of batches of per-layer statistics `[batch, states, 2, hidden]`."""
    moments = RunningMoments()
    for batch in batches:
        moments.update(batch)
    return moments.mean_std()


@torch.no_grad()
def fit_audio_standardisation(model: GEmoClapModel, loader: DataLoader) -> None:
    """Measure the standardisation on the training split and set it on `model`: from cached statistics when the
    loader serves them, else one pass of the audio tower (in eval mode, as the loop runs a frozen tower)."""
    was_training = model.training
    model.eval()

    def statistics() -> Iterable[torch.Tensor]:
        for batch in loader:
            if "audio_layer_statistics" in batch:
                yield batch["audio_layer_statistics"]
            else:
                inputs = inputs_of(model.get_audio_layer_statistics, batch)
                yield model.get_audio_layer_statistics(
                    **{name: value.to(model.device) for name, value in inputs.items()}
                )

    model.set_audio_standardisation(*(moment.to(model.device) for moment in statistics_moments(statistics())))
    model.train(was_training)
