"""GEmo-CLAP model: audio tower + text tower + projections, trained with the Emo / SL / ML objectives."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.models.whisper.modeling_whisper import WhisperEncoder, WhisperModel
from transformers.utils import ModelOutput

from .configuration_gemo_clap import GEmoClapConfig
from .loss_gemo_clap import emo_clap_loss, ml_gemo_clap_loss, sl_gemo_clap_loss

# The pipeline is imported so that `save_pretrained` ships its file with the checkpoint's remote code.
from .pipeline_gemo_clap import PIPELINE_TASK, GEmoClapZeroShotAudioClassificationPipeline

MEL_FRAMES_PER_SECOND = 100  # Whisper: hop of 160 samples at 16 kHz


@dataclass
class GEmoClapOutput(ModelOutput):
    """
    Outputs of [`GEmoClapModel`].

    Args:
        loss: the variant's training loss (when labels are given and `return_loss` is not False).
        logits_per_audio: `[audio_batch, text_batch]` scaled cosine similarities, audio to text.
        logits_per_text: `[text_batch, audio_batch]` scaled cosine similarities, text to audio.
        audio_embeds / text_embeds: L2-normalised projected embeddings.
        logits_per_audio_gender / logits_per_text_gender: the same against the gender prompts ("ml").
        gender_text_embeds: L2-normalised embeddings of the gender prompts ("ml").
    """

    loss: torch.FloatTensor | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    logits_per_audio_gender: torch.FloatTensor | None = None
    logits_per_text_gender: torch.FloatTensor | None = None
    gender_text_embeds: torch.FloatTensor | None = None


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


class GEmoClapModel(GEmoClapPreTrainedModel):
    """GEmo-CLAP: masked-mean-pooled audio tower and first-token text tower projected into one space."""

    def __init__(
        self,
        config: GEmoClapConfig,
        audio_model: PreTrainedModel | None = None,
        text_model: PreTrainedModel | None = None,
    ):
        super().__init__(config)
        if audio_model is None:
            audio_model = (
                WhisperEncoder(config.audio_config)
                if config.uses_spectrogram
                else AutoModel.from_config(config.audio_config)
            )
        if text_model is None:
            text_model = AutoModel.from_config(config.text_config)
        self.audio_model = audio_model
        self.text_model = text_model
        self.audio_projection = GEmoClapProjection(config.audio_config.hidden_size, config)
        self.text_projection = GEmoClapProjection(config.text_config.hidden_size, config)
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

    # ----------------------------------------------------------------------------------------------- building
    @classmethod
    def from_encoders(cls, audio_encoder: str | Path, text_encoder: str | Path, **config_kwargs) -> GEmoClapModel:
        """Build from pretrained towers (hub ids or local folders), e.g.
        `GEmoClapModel.from_encoders("microsoft/wavlm-large", "roberta-base", variant="sl")`.
        Only the encoder of a Whisper checkpoint is kept."""
        audio_config = AutoConfig.from_pretrained(audio_encoder)
        if audio_config.model_type == "whisper":
            audio_model = WhisperModel.from_pretrained(audio_encoder).get_encoder()
        else:
            audio_model = AutoModel.from_pretrained(audio_encoder)
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
        """Freeze the whole audio tower (its pooled outputs can then be cached)."""
        self.audio_model.requires_grad_(False)

    def freeze_feature_encoder(self) -> None:
        """Freeze the audio tower's front end: the CNN feature encoder (wav2vec2 family) or the convolutions and
        positions (Whisper)."""
        if self.config.uses_spectrogram:
            for module in (self.audio_model.conv1, self.audio_model.conv2, self.audio_model.embed_positions):
                module.requires_grad_(False)
        else:
            self.audio_model.freeze_feature_encoder()

    def freeze_audio_layers(self, num_layers: int) -> None:
        """Freeze the front end and the bottom `num_layers` transformer layers of the audio tower."""
        layers = self.audio_model.layers if self.config.uses_spectrogram else self.audio_model.encoder.layers
        if not 0 <= num_layers <= len(layers):
            raise ValueError(f"num_layers must be in [0, {len(layers)}] for this audio tower, got {num_layers}")
        self.freeze_feature_encoder()
        for layer in layers[:num_layers]:
            layer.requires_grad_(False)

    # ------------------------------------------------------------------------------------------------ audio
    def _check_audio_inputs(
        self, input_values: torch.Tensor | None, input_features: torch.Tensor | None
    ) -> torch.Tensor:
        name, expected_ndim = ("input_features", 3) if self.config.uses_spectrogram else ("input_values", 2)
        tensor = input_features if self.config.uses_spectrogram else input_values
        if tensor is None:
            raise ValueError(f"This model's {self.config.audio_config.model_type} audio tower needs `{name}`")
        if tensor.ndim != expected_ndim:
            raise ValueError(f"`{name}` must have {expected_ndim} dimensions, got shape {tuple(tensor.shape)}")
        return tensor

    def _whisper_hidden_states(
        self, input_features: torch.Tensor, mel_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whisper encoder on inputs up to `max_audio_seconds`: the positional table is sliced to the input length
        and padded frames are masked out of attention, so a short clip is neither padded to 30 s nor changed by
        the padding of a batch."""
        encoder = self.audio_model
        longest = int(self.config.max_audio_seconds * MEL_FRAMES_PER_SECOND)
        if input_features.shape[-1] > longest:
            raise ValueError(
                f"input_features hold {input_features.shape[-1]} mel frames, more than max_audio_seconds="
                f"{self.config.max_audio_seconds:g} allows ({longest}); split the audio or raise max_audio_seconds"
            )
        hidden = nn.functional.gelu(encoder.conv1(input_features)) * mel_mask[:, None, :].to(input_features.dtype)
        hidden = nn.functional.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
        frame_mask = mel_mask[:, ::2][:, : hidden.shape[1]]
        hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
        hidden = nn.functional.dropout(hidden, p=encoder.dropout, training=self.training)
        additive_mask = (1.0 - frame_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in encoder.layers:
            hidden = layer(hidden, additive_mask)
        return encoder.layer_norm(hidden), frame_mask

    def get_audio_pooled_output(
        self,
        input_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean of the audio tower's last hidden states over the frames that hold real audio: `[batch, hidden]`."""
        audio = self._check_audio_inputs(input_values, input_features)
        if audio_attention_mask is None:
            audio_attention_mask = torch.ones(audio.shape[0], audio.shape[-1], dtype=torch.long, device=audio.device)
        if audio_attention_mask.shape != (audio.shape[0], audio.shape[-1]):
            raise ValueError(
                f"audio_attention_mask has shape {tuple(audio_attention_mask.shape)}, expected "
                f"{(audio.shape[0], audio.shape[-1])} to match the audio inputs"
            )
        if self.config.uses_spectrogram:
            hidden, frame_mask = self._whisper_hidden_states(audio, audio_attention_mask)
        else:
            hidden = self.audio_model(input_values=audio, attention_mask=audio_attention_mask).last_hidden_state
            frame_mask = self.audio_model._get_feature_vector_attention_mask(hidden.shape[1], audio_attention_mask)
        frame_mask = frame_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * frame_mask).sum(dim=1) / frame_mask.sum(dim=1).clamp_min(1.0)

    def get_audio_features(
        self,
        input_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Projected (not yet normalised) audio embeddings: `[batch, projection_dim]`."""
        return self.audio_projection(self.get_audio_pooled_output(input_values, input_features, audio_attention_mask))

    # ------------------------------------------------------------------------------------------------- text
    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Projected (not yet normalised) embeddings of the texts' first token: `[batch, projection_dim]`."""
        hidden = self.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.text_projection(hidden[:, 0])

    # ---------------------------------------------------------------------------------------------- forward
    def logit_scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The audio and text inverse temperatures, exponentiated and clamped to `logit_scale_max`."""
        ceiling = math.log(self.config.logit_scale_max)
        return self.logit_scale_a.clamp(max=ceiling).exp(), self.logit_scale_t.clamp(max=ceiling).exp()

    def similarity_logits(
        self, audio_embeds: torch.Tensor, text_embeds: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio->text, text->audio) logits of normalised embeddings, each scaled by its own temperature."""
        scale_a, scale_t = self.logit_scales()
        cosine = audio_embeds @ text_embeds.T
        return scale_a * cosine, scale_t * cosine.T

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        gender_input_ids: torch.Tensor | None = None,
        gender_attention_mask: torch.Tensor | None = None,
        emotion_labels: torch.Tensor | None = None,
        gender_labels: torch.Tensor | None = None,
        audio_pooled_output: torch.Tensor | None = None,
        return_loss: bool | None = None,
        **kwargs,
    ) -> GEmoClapOutput:
        r"""
        audio_attention_mask: 1 for real samples (or mel frames), 0 for padding; named apart from the text mask.
        input_ids / attention_mask: one prompt per audio in training ("The emotion is {label}."), or one per
            candidate label at inference.
        gender_input_ids / gender_attention_mask: the gender prompts, one per audio ("ml" training).
        emotion_labels / gender_labels: class indices per audio; build the ground-truth matrices of the loss.
        audio_pooled_output: precomputed pooled audio-tower outputs (a frozen tower's cache) used instead of the tower.
        return_loss: compute the loss (default: whenever `emotion_labels` is given).
        """
        if input_ids is None:
            raise ValueError("input_ids (the tokenised prompts) are required")
        if audio_pooled_output is None:
            audio_pooled_output = self.get_audio_pooled_output(input_values, input_features, audio_attention_mask)
        audio_embeds = nn.functional.normalize(self.audio_projection(audio_pooled_output), dim=-1)
        text_embeds = nn.functional.normalize(self.get_text_features(input_ids, attention_mask), dim=-1)
        logits_per_audio, logits_per_text = self.similarity_logits(audio_embeds, text_embeds)

        gender_text_embeds = logits_per_audio_gender = logits_per_text_gender = None
        if gender_input_ids is not None:
            gender_text_embeds = nn.functional.normalize(
                self.get_text_features(gender_input_ids, gender_attention_mask), dim=-1
            )
            logits_per_audio_gender, logits_per_text_gender = self.similarity_logits(audio_embeds, gender_text_embeds)

        loss = None
        if return_loss is None:
            return_loss = emotion_labels is not None
        if return_loss:
            loss = self.compute_loss(
                (logits_per_audio, logits_per_text),
                (logits_per_audio_gender, logits_per_text_gender),
                emotion_labels,
                gender_labels,
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
        )

    def compute_loss(
        self,
        emotion_logits: tuple[torch.Tensor, torch.Tensor],
        gender_logits: tuple[torch.Tensor | None, torch.Tensor | None],
        emotion_labels: torch.Tensor | None,
        gender_labels: torch.Tensor | None,
    ) -> torch.Tensor:
        """The configured variant's loss; checks that the labels it needs were given."""
        variant, target = self.config.variant, self.config.target
        batch = emotion_logits[0].shape[0]
        if emotion_logits[0].shape != (batch, batch):
            raise ValueError(
                f"training needs one prompt per audio: got {batch} audios and {emotion_logits[0].shape[1]} prompts"
            )
        if emotion_labels is None or emotion_labels.numel() != batch:
            raise ValueError(f"emotion_labels must hold one label per audio ({batch})")
        if variant == "emo":
            return emo_clap_loss(*emotion_logits, emotion_labels, target)
        if gender_labels is None or gender_labels.numel() != batch:
            raise ValueError(f"variant {variant!r} needs gender_labels, one per audio ({batch})")
        if variant == "sl":
            return sl_gemo_clap_loss(*emotion_logits, emotion_labels, gender_labels, self.config.sl_alpha, target)
        if gender_logits[0] is None:
            raise ValueError("variant 'ml' needs gender_input_ids (one gender prompt per audio)")
        return ml_gemo_clap_loss(
            emotion_logits, gender_logits, emotion_labels, gender_labels, self.config.ml_alpha, target
        )


__all__ = ["GEmoClapModel", "GEmoClapOutput", "GEmoClapPreTrainedModel"]
