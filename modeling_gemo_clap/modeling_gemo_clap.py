"""GEmo-CLAP model: audio tower + text tower + projections, trained with the Emo / SL / ML objectives."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.dynamic_module_utils import custom_object_save
from transformers.utils import ModelOutput

from .audio_tower_gemo_clap import AudioTower, audio_tower
from .configuration_gemo_clap import GEmoClapConfig
from .loss_gemo_clap import GEmoClapLoss, scaled_logits

STD_FLOOR = 1e-10  # variance floor under the square root of statistics pooling (finite gradients on silence)
STANDARDISATION_FLOOR = 1e-4  # smallest standard deviation `audio_standardisation` divides by (constant features)


@dataclass
class GEmoClapOutput(ModelOutput):
    """
    Outputs of [`GEmoClapModel`].

    Args:
        loss: the variant's training loss of the batch (when labels are given and `return_loss` is not False).
        logits_per_audio: `[audio_batch, text_batch]` scaled cosine similarities, audio to text.
        logits_per_text: `[text_batch, audio_batch]` scaled cosine similarities, text to audio.
        audio_embeds / text_embeds: L2-normalised projected embeddings (text: one per prompt, or one per audio
            when `prompt_index` is given).
        logits_per_audio_gender / logits_per_text_gender: the same against the gender prompts ("ml").
        gender_text_embeds: L2-normalised embeddings of the gender prompts ("ml").
        logit_scale_audio / logit_scale_text: the two inverse temperatures.
    """

    loss: torch.FloatTensor | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    logits_per_audio_gender: torch.FloatTensor | None = None
    logits_per_text_gender: torch.FloatTensor | None = None
    gender_text_embeds: torch.FloatTensor | None = None
    logit_scale_audio: torch.FloatTensor | None = None
    logit_scale_text: torch.FloatTensor | None = None


def frame_statistics(hidden: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Mean and standard deviation over the real frames (`frame_mask` `[batch, frames]`) of hidden states
    `[batch, states, frames, hidden]`: `[batch, states, 2, hidden]`."""
    weights = frame_mask.to(hidden.dtype)[:, None, :, None]
    count = weights.sum(dim=2).clamp_min(1.0)
    mean = (hidden * weights).sum(dim=2) / count
    variance = (((hidden - mean.unsqueeze(2)) ** 2) * weights).sum(dim=2) / count
    return torch.stack([mean, variance.clamp_min(STD_FLOOR).sqrt()], dim=2)


class GEmoClapProjection(nn.Module):
    """MLP from a tower's hidden size into the shared space: `projection_layers` linear layers with activations between,
    and `dropout` on the input of each."""

    def __init__(self, input_dim: int, config: GEmoClapConfig, dropout: float = 0.0):
        super().__init__()
        dims = [input_dim] + [config.projection_dim] * config.projection_layers
        self.layers = nn.ModuleList(nn.Linear(d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:]))
        self.activation = ACT2FN[config.projection_hidden_act]
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            if index:
                hidden_states = self.activation(hidden_states)
            hidden_states = layer(self.dropout(hidden_states))
        return hidden_states


class GEmoClapPreTrainedModel(PreTrainedModel):
    config: GEmoClapConfig
    config_class = GEmoClapConfig
    base_model_prefix = "gemo_clap"
    main_input_name = "input_values"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Initialise what GEmo-CLAP owns; the towers initialise themselves (transformers dispatches per sub-model)."""
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, GEmoClapModel):
            init.constant_(module.logit_scale_a, math.log(self.config.logit_scale_init))
            init.constant_(module.logit_scale_t, math.log(self.config.logit_scale_init))
            if module.audio_layer_weights is not None:
                init.zeros_(module.audio_layer_weights)
            if module.audio_statistics_mean is not None:  # identity until measured on a training split
                init.zeros_(module.audio_statistics_mean)
                init.ones_(module.audio_statistics_std)


class GEmoClapModel(GEmoClapPreTrainedModel):
    """GEmo-CLAP: pooled audio tower and first-token text tower projected into one space, compared by scaled cosine."""

    def __init__(
        self,
        config: GEmoClapConfig,
        audio_model: PreTrainedModel | None = None,
        text_model: PreTrainedModel | None = None,
    ):
        super().__init__(config)
        tower = audio_tower(config.audio_config.model_type)
        self.audio_model = audio_model if audio_model is not None else tower.from_config(config.audio_config)
        self.text_model = text_model if text_model is not None else AutoModel.from_config(config.text_config)
        states = tower.num_hidden_states(config.audio_config) if config.pools_all_layers else 1
        statistics = 2 if config.audio_pooling == "statistics" else 1
        pooled_size = config.audio_config.hidden_size * statistics
        if config.audio_layer_pooling == "concatenate":
            pooled_size *= states
        self.audio_projection = GEmoClapProjection(pooled_size, config, config.projection_dropout)
        self.text_projection = GEmoClapProjection(config.text_config.hidden_size, config)
        self.audio_layer_weights = (
            nn.Parameter(torch.zeros(states)) if config.audio_layer_pooling == "weighted_sum" else None
        )
        # [states, (mean, std), hidden], set by `set_audio_standardisation` (None: no standardisation)
        shape = (states, 2, config.audio_config.hidden_size)
        standardised = config.audio_standardisation
        self.register_buffer("audio_statistics_mean", torch.zeros(shape) if standardised else None)
        self.register_buffer("audio_statistics_std", torch.ones(shape) if standardised else None)
        self.logit_scale_a = nn.Parameter(torch.tensor(math.log(config.logit_scale_init)))
        self.logit_scale_t = nn.Parameter(torch.tensor(math.log(config.logit_scale_init)))
        self.post_init()

    @property
    def audio_tower(self) -> AudioTower:
        """The adapter that drives this model's kind of audio tower."""
        return audio_tower(self.config.audio_config.model_type)

    # ----------------------------------------------------------------------------------------------- building
    @classmethod
    def from_encoders(cls, audio_encoder: str | Path, text_encoder: str | Path, **config_kwargs) -> GEmoClapModel:
        """Build from pretrained towers (hub ids or local folders), e.g.
        `GEmoClapModel.from_encoders("microsoft/wavlm-large", "roberta-base", variant="sl")`.
        Only the encoder of a Whisper checkpoint is kept."""
        audio_type = AutoConfig.from_pretrained(audio_encoder).model_type
        audio_model = audio_tower(audio_type).from_pretrained(audio_encoder)
        return cls.from_towers(audio_model, AutoModel.from_pretrained(text_encoder), **config_kwargs)

    @classmethod
    def from_towers(cls, audio_model: PreTrainedModel, text_model: PreTrainedModel, **config_kwargs) -> GEmoClapModel:
        """Build around towers already loaded (shared, not copied), with fresh projections and temperatures."""
        attention = {
            "audio_config": audio_model.config._attn_implementation,
            "text_config": text_model.config._attn_implementation,
        }
        config = GEmoClapConfig(audio_config=audio_model.config, text_config=text_model.config, **config_kwargs)
        config._attn_implementation = attention  # building the composite config reset the towers' choice to None
        return cls(config, audio_model=audio_model, text_model=text_model)

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`, with the zero-shot pipeline registered in the folder as transformers'
        `Pipeline.save_pretrained` registers a custom pipeline: its code beside the model's and its entry in
        config.json's `custom_pipelines`, so `pipeline(task, model=folder, trust_remote_code=True)` builds it."""
        # imported here, at save time: loading or running a model never imports the pipeline (nor its VAD)
        from .pipeline_gemo_clap import PIPELINE_TASK, GEmoClapZeroShotAudioClassificationPipeline

        pipeline_class = GEmoClapZeroShotAudioClassificationPipeline
        self.config.custom_pipelines = {
            PIPELINE_TASK: {
                "impl": f"{pipeline_class.__module__.rsplit('.', 1)[-1]}.{pipeline_class.__name__}",
                "pt": ["AutoModel"],
                "tf": [],
                "type": "multimodal",
            }
        }
        if kwargs.get("is_main_process", True):
            os.makedirs(save_directory, exist_ok=True)
            custom_object_save(pipeline_class, save_directory)
        super().save_pretrained(save_directory, *args, **kwargs)

    # --------------------------------------------------------------------------------------------- freezing
    def freeze_audio_encoder(self) -> None:
        """Freeze the whole audio tower (its pooled statistics can then be cached)."""
        self.audio_model.requires_grad_(False)

    def freeze_feature_encoder(self) -> None:
        """Freeze the audio tower's front end: the CNN feature encoder (wav2vec2 family) or the convolutions and
        positions (Whisper)."""
        self.audio_tower.freeze_front_end(self.audio_model)

    def freeze_audio_layers(self, num_layers: int) -> None:
        """Freeze the front end and the bottom `num_layers` transformer layers of the audio tower."""
        layers = self.audio_tower.layers(self.audio_model)
        if not 0 <= num_layers <= len(layers):
            raise ValueError(f"num_layers must be in [0, {len(layers)}] for this audio tower, got {num_layers}")
        self.freeze_feature_encoder()
        for layer in layers[:num_layers]:
            layer.requires_grad_(False)

    # ------------------------------------------------------------------------------------------------ audio
    def _check_audio_inputs(
        self, input_values: torch.Tensor | None, input_features: torch.Tensor | None
    ) -> torch.Tensor:
        tower = self.audio_tower
        tensor = input_features if tower.input_name == "input_features" else input_values
        if tensor is None:
            raise ValueError(
                f"This model's {self.config.audio_config.model_type} audio tower needs `{tower.input_name}`"
            )
        if tensor.ndim != tower.input_ndim:
            raise ValueError(
                f"`{tower.input_name}` must have {tower.input_ndim} dimensions, got shape {tuple(tensor.shape)}"
            )
        return tensor

    def get_audio_layer_statistics(
        self,
        input_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        all_layers: bool | None = None,
    ) -> torch.Tensor:
        """Mean and standard deviation over the real frames of the hidden states the pooling uses (every one when
        `config.pools_all_layers`, else the last; `all_layers` overrides): `[batch, states, 2, hidden]`. A frozen
        tower's cache holds these, so every pooling option trains from it."""
        audio = self._check_audio_inputs(input_values, input_features)
        if audio_attention_mask is None:
            audio_attention_mask = torch.ones(audio.shape[0], audio.shape[-1], dtype=torch.long, device=audio.device)
        if audio_attention_mask.shape != (audio.shape[0], audio.shape[-1]):
            raise ValueError(
                f"audio_attention_mask has shape {tuple(audio_attention_mask.shape)}, expected "
                f"{(audio.shape[0], audio.shape[-1])} to match the audio inputs"
            )
        states, frame_mask = self.audio_tower.hidden_states(
            self.audio_model,
            audio,
            audio_attention_mask,
            self.config.max_audio_seconds,
            all_layers=self.config.pools_all_layers if all_layers is None else all_layers,
        )
        return frame_statistics(torch.stack(states, dim=1), frame_mask)

    def pool_audio_statistics(self, statistics: torch.Tensor) -> torch.Tensor:
        """The pooled audio vector from per-layer statistics `[batch, states, 2, hidden]`: the states the layer
        pooling reads (standardised when `audio_standardisation`), their means (`audio_pooling="mean"`) or means and
        stds, then the last state's, the softmax-weighted sum over states or all of them concatenated, flattened."""
        if not self.config.pools_all_layers:
            statistics = statistics[:, -1:]
        else:
            expected = self.audio_tower.num_hidden_states(self.config.audio_config)
            if statistics.shape[1] != expected:
                raise ValueError(
                    f"audio statistics hold {statistics.shape[1]} hidden states; audio_layer_pooling="
                    f"{self.config.audio_layer_pooling!r} needs all {expected}"
                )
        if self.audio_statistics_mean is not None:
            statistics = (statistics - self.audio_statistics_mean) / self.audio_statistics_std
        if self.config.audio_pooling == "mean":
            statistics = statistics[:, :, :1]
        if self.audio_layer_weights is not None:
            weights = self.audio_layer_weights.softmax(dim=0).to(statistics.dtype)
            statistics = (statistics * weights[None, :, None, None]).sum(dim=1)
        return statistics.flatten(1)

    @torch.no_grad()
    def set_audio_standardisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the standardisation of the pooled statistics (`audio_standardisation`): the per-element mean and
        standard deviation `[states, 2, hidden]` of `get_audio_layer_statistics` over a training split
        (`statistics_moments`). Standard deviations are floored at `STANDARDISATION_FLOOR`."""
        if self.audio_statistics_mean is None:
            raise ValueError("this model was configured without audio_standardisation")
        if mean.shape != self.audio_statistics_mean.shape or std.shape != mean.shape:
            raise ValueError(
                f"standardisation statistics must have shape {tuple(self.audio_statistics_mean.shape)}, got "
                f"{tuple(mean.shape)} and {tuple(std.shape)}"
            )
        self.audio_statistics_mean.copy_(mean)
        self.audio_statistics_std.copy_(std.clamp_min(STANDARDISATION_FLOOR))

    def get_audio_pooled_output(
        self,
        input_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The audio tower pooled over the frames that hold real audio: `[batch, hidden]` (x2 for statistics)."""
        return self.pool_audio_statistics(
            self.get_audio_layer_statistics(input_values, input_features, audio_attention_mask)
        )

    def get_audio_features(
        self,
        input_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L2-normalised projected audio embeddings `[batch, projection_dim]`."""
        return self.project_audio(self.get_audio_pooled_output(input_values, input_features, audio_attention_mask))

    def project_audio(self, audio_pooled_output: torch.Tensor) -> torch.Tensor:
        """L2-normalised projections of pooled audio vectors: `[batch, projection_dim]`."""
        return nn.functional.normalize(self.audio_projection(audio_pooled_output), dim=-1)

    # ------------------------------------------------------------------------------------------------- text
    def get_text_pooled_output(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The text tower's last hidden state at the first token: `[batch, hidden]` (what the projection takes)."""
        return self.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]

    def project_text(self, text_pooled_output: torch.Tensor) -> torch.Tensor:
        """L2-normalised projections of first-token text states: `[batch, projection_dim]`."""
        return nn.functional.normalize(self.text_projection(text_pooled_output), dim=-1)

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised projected embeddings of the texts' first token: `[batch, projection_dim]`."""
        return self.project_text(self.get_text_pooled_output(input_ids, attention_mask))

    def get_prompt_pooled_outputs(
        self, prompts: list[tuple[torch.Tensor, torch.Tensor | None]]
    ) -> tuple[torch.Tensor, ...]:
        """`get_text_pooled_output` of several prompt batches in one text-tower pass (right-padded to one width)."""
        if len(prompts) == 1:
            return (self.get_text_pooled_output(*prompts[0]),)
        width = max(ids.shape[1] for ids, _ in prompts)
        masks = [torch.ones_like(ids) if mask is None else mask for ids, mask in prompts]
        pooled = self.get_text_pooled_output(
            torch.cat([nn.functional.pad(ids, (0, width - ids.shape[1])) for ids, _ in prompts]),
            torch.cat([nn.functional.pad(mask, (0, width - mask.shape[1])) for mask in masks]),
        )
        return pooled.split([ids.shape[0] for ids, _ in prompts])

    def get_prompt_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        prompt_index: torch.Tensor | None = None,
        gender_input_ids: torch.Tensor | None = None,
        gender_attention_mask: torch.Tensor | None = None,
        gender_prompt_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalised embeddings of the emotion prompts and of the gender prompts (None without them), from one
        text-tower pass; with `prompt_index` / `gender_prompt_index`, one row per audio (`embeddings[index]`)."""
        prompts = [(input_ids, attention_mask)]
        if gender_input_ids is not None:
            prompts.append((gender_input_ids, gender_attention_mask))
        pooled = self.get_prompt_pooled_outputs(prompts)
        text_embeds = self.project_prompts(pooled[0], prompt_index)
        if gender_input_ids is None:
            return text_embeds, None
        return text_embeds, self.project_prompts(pooled[1], gender_prompt_index)

    def project_prompts(self, text_pooled_output: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """`project_text` of prompt states, then the rows `index` (one per audio; all of them when None)."""
        embeddings = self.project_text(text_pooled_output)
        return embeddings if index is None else embeddings[index]

    def get_label_embeddings(self, processor, labels: Sequence[str], template: str) -> torch.Tensor:
        """Normalised embeddings of one prompt per label (`template.format(label)`, e.g. "The emotion is sad."),
        tokenised with `processor` (this model's `GEmoClapProcessor` or tokenizer): `[len(labels), projection_dim]`."""
        tokens = processor(text=[template.format(label) for label in labels], return_tensors="pt")
        return self.get_text_features(tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device))

    # ---------------------------------------------------------------------------------------------- scoring
    def logit_scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The audio and text inverse temperatures, exponentiated and clamped to `logit_scale_max`."""
        ceiling = math.log(self.config.logit_scale_max)
        return self.logit_scale_a.clamp(max=ceiling).exp(), self.logit_scale_t.clamp(max=ceiling).exp()

    def similarity_logits(
        self, audio_embeds: torch.Tensor, text_embeds: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio->text, text->audio) logits of normalised embeddings, each scaled by its own temperature. Zero-shot
        classification takes the softmax of the first against one embedding per label (`get_label_embeddings`)."""
        return scaled_logits(audio_embeds, text_embeds, *self.logit_scales())

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        prompt_index: torch.Tensor | None = None,
        gender_input_ids: torch.Tensor | None = None,
        gender_attention_mask: torch.Tensor | None = None,
        gender_prompt_index: torch.Tensor | None = None,
        emotion_labels: torch.Tensor | None = None,
        gender_labels: torch.Tensor | None = None,
        return_loss: bool | None = None,
    ) -> GEmoClapOutput:
        r"""
        input_values / input_features: the processor's audio inputs (raw waveforms, or Whisper's log-mel frames).
        audio_attention_mask: 1 for real samples (or mel frames), 0 for padding; named apart from the text mask.
        input_ids / attention_mask: the tokenised prompts: one per candidate label at inference; in training one
            per audio ("The emotion is {label}."), or each distinct prompt once with `prompt_index` (`[batch]`, the
            row of each audio's prompt), which gives the same outputs with one text-tower pass per distinct prompt.
        gender_input_ids / gender_attention_mask / gender_prompt_index: the same for the gender prompts ("ml").
        emotion_labels / gender_labels: class indices per audio; build the ground-truth matrices of the loss.
        return_loss: compute the loss of the batch (default: whenever `emotion_labels` is given).
        """
        if input_ids is None:
            raise ValueError("input_ids (the tokenised prompts) are required")
        audio_embeds = self.get_audio_features(input_values, input_features, audio_attention_mask)
        text_embeds, gender_text_embeds = self.get_prompt_features(
            input_ids, attention_mask, prompt_index, gender_input_ids, gender_attention_mask, gender_prompt_index
        )
        scales = self.logit_scales()
        loss = None
        if return_loss is None:
            return_loss = emotion_labels is not None
        if return_loss:  # the loss and the logits it compares, computed once
            criterion = GEmoClapLoss.from_config(self.config)
            inputs = criterion.loss_inputs(
                audio_embeds, text_embeds, scales, emotion_labels, gender_labels, gender_text_embeds
            )
            loss = criterion.loss(inputs)
            logits_per_audio, logits_per_text = inputs.logits_per_audio, inputs.logits_per_text
            logits_per_audio_gender, logits_per_text_gender = (
                inputs.gender_logits_per_audio,
                inputs.gender_logits_per_text,
            )
        else:
            logits_per_audio, logits_per_text = scaled_logits(audio_embeds, text_embeds, *scales)
            logits_per_audio_gender = logits_per_text_gender = None
            if gender_text_embeds is not None:
                logits_per_audio_gender, logits_per_text_gender = scaled_logits(
                    audio_embeds, gender_text_embeds, *scales
                )
        return GEmoClapOutput(
            loss=loss,
            logits_per_audio=logits_per_audio,
            logits_per_text=logits_per_text,
            audio_embeds=audio_embeds,
            text_embeds=text_embeds,
            logits_per_audio_gender=logits_per_audio_gender,
            logits_per_text_gender=logits_per_text_gender,
            gender_text_embeds=gender_text_embeds,
            logit_scale_audio=scales[0],
            logit_scale_text=scales[1],
        )


__all__ = ["GEmoClapModel", "GEmoClapOutput", "GEmoClapPreTrainedModel"]
