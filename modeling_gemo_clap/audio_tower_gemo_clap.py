"""The audio towers GEmo-CLAP drives, one class per kind: how to build and load it, run it on a padded batch
(hidden states and the mask of real frames), freeze its front end, and compute its input features one clip at
a time. Adding a tower kind is one subclass of its `TowerKind` (the torch-free facts the configuration checks)
registered in `AUDIO_TOWERS`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from .audio_gemo_clap import pad_to_longest
from .choices_gemo_clap import MEL_FRAMES_PER_SECOND, TowerKind, WaveformKind, WhisperKind, tower_kind


class AudioTower(TowerKind):
    """How to drive one kind of audio tower (its facts: the `TowerKind` it derives from)."""

    @staticmethod
    def from_config(audio_config) -> nn.Module:
        return AutoModel.from_config(audio_config)

    @staticmethod
    def from_pretrained(name_or_path) -> nn.Module:
        return AutoModel.from_pretrained(name_or_path)

    @staticmethod
    def layers(tower: nn.Module) -> nn.ModuleList:
        return tower.encoder.layers

    @staticmethod
    def freeze_front_end(tower: nn.Module) -> None:
        """Freeze the CNN feature encoder."""
        tower.freeze_feature_encoder()

    def hidden_states(
        self, tower: nn.Module, audio: torch.Tensor, mask: torch.Tensor, max_seconds: float, all_layers: bool
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """(hidden states `[batch, frames, hidden]`: all of them or only the last, mask of real frames `[batch, frames]`)."""
        outputs = tower(input_values=audio, attention_mask=mask, output_hidden_states=all_layers)
        states = outputs.hidden_states if all_layers else (outputs.last_hidden_state,)
        return states, tower._get_feature_vector_attention_mask(states[-1].shape[1], mask)

    supports_layer_inputs = False  # whether `layer_states` can run the tower from a cached hidden state

    def layer_states(self, tower: nn.Module, hidden: torch.Tensor, frame_mask: torch.Tensor, start: int) -> list:
        """The hidden states `start + 1, ...` (the last one final, as `hidden_states` gives it) from hidden state
        `start` (the input of layer `start`, 0-based) and its mask of real frames."""
        raise ValueError(
            f"{type(self).__name__} cannot run its layers from a cached hidden state: train freeze=layers with "
            "cache_audio_features=false"
        )

    @staticmethod
    def features(feature_extractor, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Model inputs and `audio_attention_mask` of mono clips at the extractor's rate, each normalised alone."""
        features = feature_extractor(
            arrays,
            sampling_rate=feature_extractor.sampling_rate,
            padding=True,
            return_attention_mask=True,
            return_tensors="np",
        )
        return {"input_values": features["input_values"], "audio_attention_mask": features["attention_mask"]}


class WaveformTower(WaveformKind, AudioTower):
    """wav2vec2-family towers on raw 16 kHz waveforms (`input_values`)."""


class _WhisperEncoderWeights(WhisperEncoder):
    """Whisper's encoder, loaded from a full Whisper checkpoint without reporting its unused decoder weights."""

    _keys_to_ignore_on_load_unexpected = [r"^decoder\.", r"^proj_out\."]


class WhisperTower(WhisperKind, AudioTower):
    """Whisper's encoder on log-mel `input_features`, run on inputs up to `max_audio_seconds`: the positional table
    is sliced to the input length and padded frames are masked out of attention, so a short clip is neither padded
    to 30 s nor changed by the padding of a batch."""

    @staticmethod
    def from_config(audio_config) -> nn.Module:
        return WhisperEncoder(audio_config)

    @staticmethod
    def from_pretrained(name_or_path) -> nn.Module:
        """Only the encoder's weights (`encoder.*` or `model.encoder.*`) of a Whisper checkpoint."""
        encoder = _WhisperEncoderWeights.from_pretrained(name_or_path, key_mapping={r"^(model\.)?encoder\.": ""})
        encoder.__class__ = WhisperEncoder  # the plain encoder `from_config` builds
        return encoder

    @staticmethod
    def layers(tower: nn.Module) -> nn.ModuleList:
        return tower.layers

    @staticmethod
    def freeze_front_end(tower: nn.Module) -> None:
        """Freeze the convolutions and the positional table."""
        for module in (tower.conv1, tower.conv2, tower.embed_positions):
            module.requires_grad_(False)

    def hidden_states(
        self, tower: nn.Module, audio: torch.Tensor, mask: torch.Tensor, max_seconds: float, all_layers: bool
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        longest = int(max_seconds * MEL_FRAMES_PER_SECOND)
        if audio.shape[-1] > longest:
            raise ValueError(
                f"input_features hold {audio.shape[-1]} mel frames, more than max_audio_seconds={max_seconds:g} "
                f"allows ({longest}); split the audio (the pipeline's chunk_length_s) or raise max_audio_seconds"
            )
        hidden = nn.functional.gelu(tower.conv1(audio)) * mask[:, None, :].to(audio.dtype)
        hidden = nn.functional.gelu(tower.conv2(hidden)).permute(0, 2, 1)
        frame_mask = mask[:, ::2][:, : hidden.shape[1]]
        hidden = hidden + tower.embed_positions.weight[: hidden.shape[1]]
        hidden = nn.functional.dropout(hidden, p=tower.dropout, training=tower.training)
        states = [hidden, *self.layer_states(tower, hidden, frame_mask, 0)]
        return tuple(states) if all_layers else (states[-1],), frame_mask

    supports_layer_inputs = True

    def layer_states(self, tower: nn.Module, hidden: torch.Tensor, frame_mask: torch.Tensor, start: int) -> list:
        additive_mask = (1.0 - frame_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        states = []
        for layer in tower.layers[start:]:
            hidden = layer(hidden, additive_mask)
            states.append(hidden)
        if states:
            states[-1] = tower.layer_norm(states[-1])
        return states

    @staticmethod
    def features(feature_extractor, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Log-mel frames of each clip alone (not padded to 30 s), then zero-padded to the longest with a frame mask."""
        mels = [
            feature_extractor(
                array, sampling_rate=feature_extractor.sampling_rate, padding="longest", return_tensors="np"
            )["input_features"][0]
            for array in arrays
        ]
        batch, mask = pad_to_longest(mels)
        return {"input_features": batch, "audio_attention_mask": mask}


AUDIO_TOWERS: dict[str, AudioTower] = {
    model_type: tower() for tower in (WaveformTower, WhisperTower) for model_type in tower.model_types
}


def audio_tower(model_type: str) -> AudioTower:
    """The adapter of an audio tower `model_type`; a clear error for kinds GEmo-CLAP does not drive."""
    tower_kind(model_type)  # raises for an unknown kind
    return AUDIO_TOWERS[model_type]


def audio_tower_for_inputs(model_input_names: Any) -> AudioTower:
    """The adapter whose model input a feature extractor produces (`input_features` or `input_values`)."""
    for tower in AUDIO_TOWERS.values():
        if tower.input_name in model_input_names:
            return tower
    raise ValueError(f"no GEmo-CLAP audio tower takes the inputs {list(model_input_names)}")
