"""GEmo-CLAP configuration."""

from __future__ import annotations

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

VARIANTS = ("emo", "sl", "ml")
TARGET_NORMALISATIONS = ("softmax", "row")
WAVEFORM_AUDIO_TOWERS = ("wavlm", "wav2vec2", "hubert", "data2vec-audio")
SPECTROGRAM_AUDIO_TOWERS = ("whisper",)


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
        variant (`str`): "emo" (Emo-CLAP), "sl" (SL-GEmo-CLAP) or "ml" (ML-GEmo-CLAP).
        sl_alpha (`float`): weight `a` of the emotion matrix in SL's target `a*M_e + (1-a)*M_g`.
        ml_alpha (`float`): weight `a_e` of the emotion loss in ML's `a_e*L_e + (1-a_e)*L_g`.
        logit_scale_init (`float`): initial value of both temperatures' inverse (CLIP's 1/0.07).
        logit_scale_max (`float`): upper clamp of the exponentiated temperatures.
        target (`str`): ground-truth normalisation, "softmax" (paper, eq. 4-5) or "row" (row-normalised).
        emotion_labels / gender_labels (`list[str]`): label names, in class-index order.
        prompt_template / gender_prompt_template (`str`): prompt templates with one `{}` placeholder.
        max_audio_seconds (`float`): longest input the audio tower takes; Whisper slices its positional table
            to it so short clips are not padded to 30 s.
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
    target: str = "softmax"
    emotion_labels: list[str] | None = None
    gender_labels: list[str] | None = None
    prompt_template: str = "The emotion is {}."
    gender_prompt_template: str = "The speaker is {}."
    max_audio_seconds: float = 14.0
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.emotion_labels is None:
            self.emotion_labels = ["angry", "happy", "sad", "neutral"]
        if self.gender_labels is None:
            self.gender_labels = ["female", "male"]
        self.validate_fields()

    def validate_fields(self) -> None:
        """Raise `ValueError` naming the first field whose value is not allowed."""
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.target not in TARGET_NORMALISATIONS:
            raise ValueError(f"target must be one of {TARGET_NORMALISATIONS}, got {self.target!r}")
        for name in ("sl_alpha", "ml_alpha"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        for name in ("prompt_template", "gender_prompt_template"):
            if "{}" not in getattr(self, name):
                raise ValueError(f"{name} must contain a '{{}}' placeholder, got {getattr(self, name)!r}")
        for name in ("emotion_labels", "gender_labels"):
            labels = getattr(self, name)
            if len(labels) < 2 or len(set(labels)) != len(labels):
                raise ValueError(f"{name} must hold at least two distinct names, got {labels!r}")
        if self.projection_layers < 1 or self.projection_dim < 1:
            raise ValueError("projection_layers and projection_dim must be >= 1")
        if self.max_audio_seconds <= 0:
            raise ValueError(f"max_audio_seconds must be > 0, got {self.max_audio_seconds!r}")
        tower = self.audio_config.model_type
        if tower not in WAVEFORM_AUDIO_TOWERS + SPECTROGRAM_AUDIO_TOWERS:
            raise ValueError(
                f"audio_config.model_type must be one of {WAVEFORM_AUDIO_TOWERS + SPECTROGRAM_AUDIO_TOWERS}, got {tower!r}"
            )
        if tower == "whisper":
            longest = self.audio_config.max_source_positions * 2 / 100  # 2 mel frames per position, 100 per second
            if self.max_audio_seconds > longest:
                raise ValueError(f"max_audio_seconds must be <= {longest:g} for this Whisper encoder")

    @property
    def uses_spectrogram(self) -> bool:
        """Whether the audio tower takes log-mel `input_features` (Whisper) rather than raw `input_values`."""
        return self.audio_config.model_type in SPECTROGRAM_AUDIO_TOWERS


__all__ = ["GEmoClapConfig"]
