"""What a GEmo-CLAP configuration may name, torch-free (the configuration imports no torch; the torch modules build
on these): the table of variants, the target normalisations, the audio poolings and the kinds of audio tower with
the facts the configuration checks. Only the standard library."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TARGET_NORMALISATIONS = ("softmax", "row")
AUDIO_POOLINGS = ("mean", "statistics")
AUDIO_LAYER_POOLINGS = ("last", "weighted_sum", "concatenate")
MEL_FRAMES_PER_SECOND = 100  # Whisper: hop of 160 samples at 16 kHz


@dataclass(frozen=True)
class Variant:
    """One GEmo-CLAP objective: its loss and what it needs.

    Args:
        name: the config value (`GEmoClapConfig.variant`).
        title: its name in the paper and on model cards.
        description: a sentence for the model card.
        loss: `loss(inputs: LossInputs, alpha, target_normalisation) -> scalar`, or the name of such a function in
            `loss_gemo_clap` (the shipped variants: their table needs no torch).
        alpha_field: the config field holding its weight `alpha` (None: it has none).
        needs_gender_labels: the ground truth uses each utterance's gender.
        needs_gender_prompts: it also trains against one gender prompt per utterance (and so can predict gender).
    """

    name: str
    title: str
    description: str
    loss: Callable[..., Any] | str
    alpha_field: str | None = None
    needs_gender_labels: bool = False
    needs_gender_prompts: bool = False


VARIANTS: dict[str, Variant] = {}


def register_variant(variant: Variant) -> Variant:
    """Add (or replace) a variant in the table every caller reads: config validation, model, training, reports, card."""
    VARIANTS[variant.name] = variant
    return variant


register_variant(
    Variant(
        "emo",
        "Emo-CLAP",
        "Emo-CLAP is the emotion-only baseline of Pan et al. (2023): the contrastive targets pair each clip with the"
        " prompts of its emotion.",
        "emo_clap_loss",
    )
)
register_variant(
    Variant(
        "sl",
        "SL-GEmo-CLAP",
        "SL-GEmo-CLAP is the soft-label GEmo-CLAP of Pan et al. (2023): the contrastive targets are soft labels that"
        " combine emotion agreement with gender agreement between clips.",
        "sl_gemo_clap_loss",
        alpha_field="sl_alpha",
        needs_gender_labels=True,
    )
)
register_variant(
    Variant(
        "ml",
        "ML-GEmo-CLAP",
        "ML-GEmo-CLAP is the multi-task GEmo-CLAP of Pan et al. (2023): an emotion contrastive loss and a gender"
        " contrastive loss are trained together on the shared audio encoder.",
        "ml_gemo_clap_loss",
        alpha_field="ml_alpha",
        needs_gender_labels=True,
        needs_gender_prompts=True,
    )
)


class TowerKind:
    """One kind of audio tower as a configuration sees it: the `model_type`s it covers, the model input the processor
    produces for it (`input_name`, `input_ndim` dimensions), its hidden states and its longest input."""

    model_types: tuple[str, ...] = ()
    input_name: str = "input_values"
    input_ndim: int = 2

    @staticmethod
    def num_hidden_states(audio_config) -> int:
        """Hidden states the tower yields: its input embeddings plus one per transformer layer."""
        return audio_config.num_hidden_layers + 1

    @staticmethod
    def longest_input_seconds(audio_config) -> float | None:
        """The longest input the tower can take (None: no limit of its own)."""
        return None


class WaveformKind(TowerKind):
    """wav2vec2-family towers on raw 16 kHz waveforms (`input_values`)."""

    model_types = ("wavlm", "wav2vec2", "hubert", "data2vec-audio")


class WhisperKind(TowerKind):
    """Whisper's encoder on log-mel `input_features`, at most `max_source_positions` positions of 2 mel frames."""

    model_types = ("whisper",)
    input_name = "input_features"
    input_ndim = 3

    @staticmethod
    def num_hidden_states(audio_config) -> int:
        return audio_config.encoder_layers + 1

    @staticmethod
    def longest_input_seconds(audio_config) -> float:
        return audio_config.max_source_positions * 2 / MEL_FRAMES_PER_SECOND


TOWER_KINDS: dict[str, type[TowerKind]] = {
    model_type: kind for kind in (WaveformKind, WhisperKind) for model_type in kind.model_types
}


def tower_kind(model_type: str) -> type[TowerKind]:
    """The kind of an audio tower `model_type`; a clear error for kinds GEmo-CLAP does not drive."""
    if model_type not in TOWER_KINDS:
        raise ValueError(f"audio_config.model_type must be one of {tuple(TOWER_KINDS)}, got {model_type!r}")
    return TOWER_KINDS[model_type]
