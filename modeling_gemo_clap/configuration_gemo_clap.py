"""GEmo-CLAP configuration (torch-free: it can be read where only transformers is installed)."""

from __future__ import annotations

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .choices_gemo_clap import AUDIO_LAYER_POOLINGS, AUDIO_POOLINGS, TARGET_NORMALISATIONS, VARIANTS, tower_kind
from .labels_gemo_clap import (
    DEFAULT_EMOTION_LABELS,
    DEFAULT_GENDER_LABELS,
    DEFAULT_GENDER_PROMPT_TEMPLATE,
    DEFAULT_PROMPT_TEMPLATE,
    check_labels,
    check_template,
)

DEFAULT_MAX_AUDIO_SECONDS = 14.0  # the paper's trim of IEMOCAP clips
# old name -> (new name, old value -> new value): settings of checkpoints and config files saved before a rename
RENAMED_FIELDS = {
    "target": ("target_normalisation", None),
    "use_weighted_layer_sum": ("audio_layer_pooling", {True: "weighted_sum", False: "last"}),
}


def current_setting(name: str, value):
    """`(name, value)` of a setting as this version calls it: a setting saved under an old name is renamed (and its
    value translated); any other passes unchanged."""
    if name not in RENAMED_FIELDS:
        return name, value
    new_name, values = RENAMED_FIELDS[name]
    if values is not None and isinstance(value, bool):
        value = values[value]
    return new_name, value


class GEmoClapConfig(PreTrainedConfig):
    r"""
    Configuration of a [`GEmoClapModel`]: an audio tower, a text tower, two projection MLPs into one
    space and learnable temperatures, trained with the Emo-CLAP, SL-GEmo-CLAP or ML-GEmo-CLAP objective
    (Pan et al., 2023, arXiv 2306.07848).

    Args:
        audio_config (`dict` or `PreTrainedConfig`): config of the audio tower (WavLM, wav2vec2, HuBERT,
            data2vec-audio or Whisper, of which only the encoder is used). Defaults to WavLM.
        text_config (`dict` or `PreTrainedConfig`): config of the text tower (any encoder). Defaults to RoBERTa.
        projection_dim (`int`): size of the shared embedding space.
        projection_layers (`int`): number of linear layers in each projection MLP (>= 1).
        projection_hidden_act (`str`): activation between projection layers.
        variant (`str`): a name of the variant table `VARIANTS`: "emo" (Emo-CLAP), "sl" (SL-GEmo-CLAP) or
            "ml" (ML-GEmo-CLAP).
        sl_alpha (`float`): weight `a` of the emotion matrix in SL's target `a*M_e + (1-a)*M_g`.
        ml_alpha (`float`): weight `a_e` of the emotion loss in ML's `a_e*L_e + (1-a_e)*L_g`.
        logit_scale_init (`float`): initial value of both temperatures' inverse (CLIP's 1/0.07).
        logit_scale_max (`float`): upper clamp of the exponentiated temperatures.
        target_normalisation (`str`): how the ground-truth matrix becomes row distributions, "softmax" (paper,
            eq. 4-5) or "row" (each row divided by its sum). Checkpoints saved before the rename call it `target`.
        audio_pooling (`str`): "mean" over the real frames (the paper) or "statistics" (their mean and standard
            deviation, concatenated).
        audio_layer_pooling (`str`): which hidden states of the audio tower are pooled: "last" (the paper),
            "weighted_sum" (every hidden state pooled, the pooled statistics summed with learnable softmax weights:
            SUPERB's weighted sum, for mean pooling equal to pooling the weighted sum of the hidden states) or
            "concatenate" (every hidden state pooled, concatenated). Checkpoints saved before it call it
            `use_weighted_layer_sum` (true: "weighted_sum").
        audio_standardisation (`bool`): standardise each pooled statistic of each hidden state with a mean and
            standard deviation measured on the training split (buffers saved with the checkpoint;
            `GEmoClapModel.set_audio_standardisation`), as a linear probe standardises its inputs.
        projection_dropout (`float`): dropout on the input of each layer of the audio projection.
        emotion_labels / gender_labels (`list[str]`): label names, in class-index order.
        prompt_template / gender_prompt_template (`str`): prompt templates with one `{}` placeholder.
        max_audio_seconds (`float`): longest input the audio tower takes (and the pipeline's default chunk
            length); Whisper slices its positional table to it so short clips are not padded to 30 s.
    """

    model_type = "gemo_clap"
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="wavlm"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="roberta"),
    }

    audio_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 512
    projection_layers: int = 2
    projection_hidden_act: str = "gelu"
    variant: str = "emo"
    sl_alpha: float = 0.8
    ml_alpha: float = 0.8
    logit_scale_init: float = 1 / 0.07
    logit_scale_max: float = 100.0
    target_normalisation: str = "softmax"
    audio_pooling: str = "mean"
    audio_layer_pooling: str = "last"
    audio_standardisation: bool = False
    projection_dropout: float = 0.0
    emotion_labels: list[str] | None = None
    gender_labels: list[str] | None = None
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    gender_prompt_template: str = DEFAULT_GENDER_PROMPT_TEMPLATE
    max_audio_seconds: float = DEFAULT_MAX_AUDIO_SECONDS
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        for old in RENAMED_FIELDS:
            if old in kwargs:
                setattr(self, *current_setting(old, kwargs.pop(old)))
        super().__post_init__(**kwargs)
        if self.emotion_labels is None:
            self.emotion_labels = list(DEFAULT_EMOTION_LABELS)
        if self.gender_labels is None:
            self.gender_labels = list(DEFAULT_GENDER_LABELS)
        self.validate_fields()

    def validate_fields(self) -> None:
        """Raise `ValueError` naming the first field whose value is not allowed."""
        choices = {
            "variant": tuple(VARIANTS),
            "target_normalisation": TARGET_NORMALISATIONS,
            "audio_pooling": AUDIO_POOLINGS,
            "audio_layer_pooling": AUDIO_LAYER_POOLINGS,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        for name in ("sl_alpha", "ml_alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        for name in ("prompt_template", "gender_prompt_template"):
            check_template(getattr(self, name), name)
        for name in ("emotion_labels", "gender_labels"):
            check_labels(getattr(self, name), name)
        for name in ("projection_layers", "projection_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("max_audio_seconds", "logit_scale_init", "logit_scale_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not isinstance(self.audio_standardisation, bool):
            raise ValueError(f"audio_standardisation must be true or false, got {self.audio_standardisation!r}")
        dropout = self.projection_dropout
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"projection_dropout must be in [0, 1), got {dropout!r}")
        longest = tower_kind(self.audio_config.model_type).longest_input_seconds(self.audio_config)
        if longest is not None and self.max_audio_seconds > longest:
            raise ValueError(
                f"max_audio_seconds must be <= {longest:g} for this {self.audio_config.model_type} encoder"
            )

    @property
    def has_gender_prompts(self) -> bool:
        """Whether the variant trains gender prompts beside the emotion ones, so the model can also tell gender."""
        return VARIANTS[self.variant].needs_gender_prompts

    @property
    def pools_all_layers(self) -> bool:
        """Whether the pooling reads every hidden state of the audio tower (else only the last)."""
        return self.audio_layer_pooling != "last"

    @property
    def uses_spectrogram(self) -> bool:
        """Whether the audio tower takes log-mel `input_features` (Whisper) rather than raw `input_values`."""
        return tower_kind(self.audio_config.model_type).input_name == "input_features"


__all__ = ["GEmoClapConfig"]
