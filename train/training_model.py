"""What the Accelerate loop prepares (and DDP wraps): `GEmoClapModel` run on a collated training batch, from the
audio or from a frozen tower's cache (its pooled statistics, or a hidden state and the statistics below it), and
from the prompts' tokens or from a frozen text tower's prompt states. It returns the features the loss compares;
the loss is applied outside it, over the global batch (`global_loss.contrastive_loss`), as open_clip applies
`ClipLoss`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from ..modeling import GEmoClapModel
from ..modeling.modeling_gemo_clap import frame_statistics
from .collator import GEmoClapCollator


def layer_input_statistics(
    model: GEmoClapModel,
    audio_layer_input: torch.Tensor,
    audio_frame_mask: torch.Tensor,
    audio_lower_statistics: torch.Tensor,
) -> torch.Tensor:
    """`model.get_audio_layer_statistics` from a cached hidden state: `audio_layer_input` `[batch, frames, hidden]`
    is hidden state k (the input of layer k, 0-based; `audio_frame_mask` its real frames) and
    `audio_lower_statistics` `[batch, k, 2, hidden]` the statistics of the states below it, so only layers k..
    run (the top of a tower whose bottom k layers are frozen and cached)."""
    start = audio_lower_statistics.shape[1]
    upper = model.audio_tower.layer_states(model.audio_model, audio_layer_input, audio_frame_mask, start)
    statistics = frame_statistics(torch.stack([audio_layer_input, *upper], dim=1), audio_frame_mask)
    statistics = torch.cat([audio_lower_statistics.to(statistics.dtype), statistics], dim=1)
    return statistics if model.config.pools_all_layers else statistics[:, -1:]


def audio_layer_statistics(model: GEmoClapModel, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The per-layer statistics `[batch, states, 2, hidden]` of a batch: cached (`audio_layer_statistics`), from a
    cached hidden state (`layer_input_statistics`) or from the audio inputs through the tower."""
    if "audio_layer_statistics" in batch:
        return batch["audio_layer_statistics"]
    if "audio_layer_input" in batch:
        return layer_input_statistics(
            model, batch["audio_layer_input"], batch["audio_frame_mask"], batch["audio_lower_statistics"]
        )
    return model.get_audio_layer_statistics(
        **{name: batch[name] for name in (model.audio_tower.input_name, "audio_attention_mask") if name in batch}
    )


def audio_features(model: GEmoClapModel, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """`model.get_audio_features` of a training batch, whichever of the audio or a cache it holds."""
    return model.project_audio(model.pool_audio_statistics(audio_layer_statistics(model, batch)))


class FrozenPrompts:
    """With `freeze_text`, the first-token text states of every emotion (and gender) prompt, computed once: each
    batch's prompts are rows of these, so no step runs the text tower."""

    def __init__(self, model: GEmoClapModel, collator: GEmoClapCollator):
        was_training = model.training
        model.eval()
        with torch.no_grad():
            self.emotion, self.gender = (
                model.get_text_pooled_output(
                    prompts.input_ids.to(model.device), prompts.attention_mask.to(model.device)
                )
                for prompts in (collator.emotion_prompts, collator.gender_prompts)
            )
        model.train(was_training)

    def features(
        self, model: GEmoClapModel, batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batch's prompt embeddings, one per audio (`model.get_prompt_features` without the text tower): the
        projected states of its labels' prompts; gender ones when the batch has gender prompts."""
        text_embeds = model.project_prompts(self.emotion, batch["emotion_labels"])
        if "gender_input_ids" not in batch:
            return text_embeds, None
        return text_embeds, model.project_prompts(self.gender, batch["gender_labels"])


@dataclass
class ContrastiveFeatures(ModelOutput):
    """What `GEmoClapTrainingModel` returns for a batch: the normalised audio embeddings, one prompt embedding per
    audio (emotion, and gender for the variants that train gender prompts) and the two inverse temperatures (in
    the graph DDP sees, so a loss computed outside the forward trains them)."""

    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    gender_text_embeds: torch.FloatTensor | None = None
    logit_scale_audio: torch.FloatTensor | None = None
    logit_scale_text: torch.FloatTensor | None = None


class GEmoClapTrainingModel(nn.Module):
    """`GEmoClapModel` as training runs it: `forward(batch)` takes a `GEmoClapCollator` batch (audio or cache rows,
    the prompts' tokens) and returns its `ContrastiveFeatures`; with `frozen_prompts` the text tower never runs."""

    def __init__(self, model: GEmoClapModel, frozen_prompts: FrozenPrompts | None = None):
        super().__init__()
        self.model, self.frozen_prompts = model, frozen_prompts

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ContrastiveFeatures:
        model = self.model
        audio_embeds = audio_features(model, batch)
        if self.frozen_prompts is not None:
            text_embeds, gender_text_embeds = self.frozen_prompts.features(model, batch)
        else:
            text_embeds, gender_text_embeds = model.get_prompt_features(
                batch["input_ids"],
                batch["attention_mask"],
                batch.get("prompt_index"),
                batch.get("gender_input_ids"),
                batch.get("gender_attention_mask"),
                batch.get("gender_prompt_index"),
            )
        scale_audio, scale_text = model.logit_scales()
        return ContrastiveFeatures(
            audio_embeds=audio_embeds,
            text_embeds=text_embeds,
            gender_text_embeds=gender_text_embeds,
            logit_scale_audio=scale_audio,
            logit_scale_text=scale_text,
        )
