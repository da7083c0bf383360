"""GEmo-CLAP model: audio tower + text tower + projections, trained with the Emo / SL / ML objectives."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from inspect import signature
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from .audio_tower_gemo_clap import AudioTower, audio_tower
from .configuration_gemo_clap import GEmoClapConfig
from .loss_gemo_clap import GEmoClapLoss, scaled_logits

# The pipeline is imported so that `save_pretrained` ships its file with the checkpoint's remote code.
from .pipeline_gemo_clap import PIPELINE_TASK, GEmoClapZeroShotAudioClassificationPipeline

STD_FLOOR = 1e-10  # variance floor under the square root of statistics pooling (finite gradients on silence)


@dataclass
class GEmoClapOutput(ModelOutput):
    """
    Outputs of [`GEmoClapModel`].

    Args:
        loss: the variant's training loss (when labels are given and `return_loss` is not False).
        logits_per_audio: `[audio_batch, text_batch]` scaled cosine similarities, audio to text.
        logits_per_text: `[text_batch, audio_batch]` scaled cosine similarities, text to audio.
        audio_embeds / text_embeds: L2-normalised projected embeddings (text: one per prompt, or one per audio
            when `prompt_index` is given).
        logits_per_audio_gender / logits_per_text_gender: the same against the gender prompts ("ml").
        gender_text_embeds: L2-normalised embeddings of the gender prompts ("ml").
        logit_scale_audio / logit_scale_text: the two inverse temperatures (returned, as open_clip does, so a loss
            computed outside `forward`, e.g. over the global batch, keeps them in the graph DDP sees).
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


class GEmoClapProjection(nn.Module):
    """MLP from a tower's hidden size into the shared space: `projection_layers` linear layers with activations between."""

    def __init__(self, input_dim: int, config: GEmoClapConfig):
        super().__init__()
        dims = [input_dim] + [config.projection_dim] * config.projection_layers
        self.layers = nn.ModuleList(nn.Linear(d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:]))
        self.activation = ACT2FN[config.projection_hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            if index:
                hidden_states = self.activation(hidden_states)
            hidden_states = layer(hidden_states)
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
        pooled_size = config.audio_config.hidden_size * (2 if config.audio_pooling == "statistics" else 1)
        self.audio_projection = GEmoClapProjection(pooled_size, config)
        self.text_projection = GEmoClapProjection(config.text_config.hidden_size, config)
        self.audio_layer_weights = (
            nn.Parameter(torch.zeros(tower.num_hidden_states(config.audio_config)))
            if config.use_weighted_layer_sum
            else None
        )
        self.logit_scale_a = nn.Parameter(torch.tensor(math.log(config.logit_scale_init)))
        self.logit_scale_t = nn.Parameter(torch.tensor(math.log(config.logit_scale_init)))
        config.custom_pipelines = {
            PIPELINE_TASK: {
                "impl": f"pipeline_gemo_clap.{GEmoClapZeroShotAudioClassificationPipeline.__name__}",
                "pt": ["AutoModel"],
                "tf": [],
                "type": "multimodal",
            }
        }
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
        text_model = AutoModel.from_pretrained(text_encoder)
        attention = {
            "audio_config": audio_model.config._attn_implementation,
            "text_config": text_model.config._attn_implementation,
        }
        config = GEmoClapConfig(audio_config=audio_model.config, text_config=text_model.config, **config_kwargs)
        config._attn_implementation = attention  # building the composite config reset the towers' choice to None
        return cls(config, audio_model=audio_model, text_model=text_model)

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
    ) -> torch.Tensor:
        """Mean and standard deviation over the real frames of the hidden states the pooling uses (every layer
        with `use_weighted_layer_sum`, else the last): `[batch, states, 2, hidden]`. A frozen tower's cache holds
        these, so every pooling option trains from it."""
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
            all_layers=self.config.use_weighted_layer_sum,
        )
        hidden = torch.stack(states, dim=1)  # [batch, states, frames, hidden]
        weights = frame_mask.to(hidden.dtype)[:, None, :, None]
        count = weights.sum(dim=2).clamp_min(1.0)
        mean = (hidden * weights).sum(dim=2) / count
        variance = (((hidden - mean.unsqueeze(2)) ** 2) * weights).sum(dim=2) / count
        return torch.stack([mean, variance.clamp_min(STD_FLOOR).sqrt()], dim=2)

    def pool_audio_statistics(self, statistics: torch.Tensor) -> torch.Tensor:
        """The pooled audio vector from per-layer statistics `[batch, states, 2, hidden]`: the softmax-weighted sum
        over layers (or the last layer), then the mean (`audio_pooling="mean"`) or mean and std concatenated."""
        if self.audio_layer_weights is not None:
            if statistics.shape[1] != self.audio_layer_weights.shape[0]:
                raise ValueError(
                    f"audio statistics hold {statistics.shape[1]} layers; the weighted layer sum needs "
                    f"{self.audio_layer_weights.shape[0]}"
                )
            weights = self.audio_layer_weights.softmax(dim=0).to(statistics.dtype)
            pooled = (statistics * weights[None, :, None, None]).sum(dim=1)
        else:
            pooled = statistics[:, -1]
        return pooled[:, 0] if self.config.audio_pooling == "mean" else pooled.flatten(1)

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
        audio_layer_statistics: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L2-normalised projected audio embeddings `[batch, projection_dim]`, from the audio inputs or from
        precomputed `audio_layer_statistics` (a frozen tower's cache)."""
        if audio_layer_statistics is None:
            audio_layer_statistics = self.get_audio_layer_statistics(input_values, input_features, audio_attention_mask)
        pooled = self.pool_audio_statistics(audio_layer_statistics)
        return nn.functional.normalize(self.audio_projection(pooled), dim=-1)

    # ------------------------------------------------------------------------------------------------- text
    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised projected embeddings of the texts' first token: `[batch, projection_dim]`."""
        hidden = self.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return nn.functional.normalize(self.text_projection(hidden[:, 0]), dim=-1)

    def _prompt_features(self, prompts: list[tuple[torch.Tensor, torch.Tensor | None]]) -> tuple[torch.Tensor, ...]:
        """`get_text_features` of several prompt batches in one text-tower pass (right-padded to one width)."""
        if len(prompts) == 1:
            return (self.get_text_features(*prompts[0]),)
        width = max(ids.shape[1] for ids, _ in prompts)
        masks = [torch.ones_like(ids) if mask is None else mask for ids, mask in prompts]
        features = self.get_text_features(
            torch.cat([nn.functional.pad(ids, (0, width - ids.shape[1])) for ids, _ in prompts]),
            torch.cat([nn.functional.pad(mask, (0, width - mask.shape[1])) for mask in masks]),
        )
        return features.split([ids.shape[0] for ids, _ in prompts])

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
        audio_pooled_output: torch.Tensor | None = None,
        audio_layer_statistics: torch.Tensor | None = None,
        return_loss: bool | None = None,
        return_dict: bool | None = None,
        **unknown,
    ) -> GEmoClapOutput:
        r"""
        audio_attention_mask: 1 for real samples (or mel frames), 0 for padding; named apart from the text mask.
        input_ids / attention_mask: the tokenised prompts: one per candidate label at inference; in training one
            per audio ("The emotion is {label}."), or each distinct prompt once with `prompt_index` (`[batch]`, the
            row of each audio's prompt), which gives the same outputs with one text-tower pass per distinct prompt.
        gender_input_ids / gender_attention_mask / gender_prompt_index: the same for the gender prompts ("ml").
        emotion_labels / gender_labels: class indices per audio; build the ground-truth matrices of the loss.
        audio_pooled_output: precomputed pooled audio vectors, used instead of the tower and the pooling.
        audio_layer_statistics: precomputed `get_audio_layer_statistics` (a frozen tower's cache), used instead of
            the tower.
        return_loss: compute the loss (default: whenever `emotion_labels` is given).
        """
        if unknown:
            names = list(signature(self.forward).parameters)
            hints = [
                f"{name!r}"
                + "".join(
                    f" (did you mean {' or '.join(map(repr, m))}?)" for m in [get_close_matches(name, names, 2)] if m
                )
                for name in unknown
            ]
            raise TypeError(f"GEmoClapModel.forward got unexpected input(s): {', '.join(hints)}")
        if input_ids is None:
            raise ValueError("input_ids (the tokenised prompts) are required")
        if audio_pooled_output is None:
            if audio_layer_statistics is None:
                audio_layer_statistics = self.get_audio_layer_statistics(
                    input_values, input_features, audio_attention_mask
                )
            audio_pooled_output = self.pool_audio_statistics(audio_layer_statistics)
        audio_embeds = nn.functional.normalize(self.audio_projection(audio_pooled_output), dim=-1)
        prompts = [(input_ids, attention_mask)]
        if gender_input_ids is not None:
            prompts.append((gender_input_ids, gender_attention_mask))
        text_embeds, gender_text_embeds = (*self._prompt_features(prompts), None)[:2]  # one text-tower pass
        if prompt_index is not None:
            text_embeds = text_embeds[prompt_index]
        logits_per_audio, logits_per_text = self.similarity_logits(audio_embeds, text_embeds)

        logits_per_audio_gender = logits_per_text_gender = None
        if gender_text_embeds is not None:
            if gender_prompt_index is not None:
                gender_text_embeds = gender_text_embeds[gender_prompt_index]
            logits_per_audio_gender, logits_per_text_gender = self.similarity_logits(audio_embeds, gender_text_embeds)

        scale_audio, scale_text = self.logit_scales()
        loss = None
        if return_loss is None:
            return_loss = emotion_labels is not None
        if return_loss:
            loss = GEmoClapLoss.from_config(self.config)(
                audio_embeds, text_embeds, (scale_audio, scale_text), emotion_labels, gender_labels, gender_text_embeds
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
            logit_scale_audio=scale_audio,
            logit_scale_text=scale_text,
        )


__all__ = ["GEmoClapModel", "GEmoClapOutput", "GEmoClapPreTrainedModel"]
