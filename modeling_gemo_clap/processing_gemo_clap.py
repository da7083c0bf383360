"""GEmo-CLAP processor: the audio tower's feature extractor and the text tower's tokenizer in one object."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from transformers import AutoFeatureExtractor, AutoTokenizer, BatchFeature, ProcessorMixin

from .audio_gemo_clap import resample, to_mono_float, validate_audio
from .audio_tower_gemo_clap import AudioTower, audio_tower_for_inputs


class GEmoClapProcessor(ProcessorMixin):
    r"""
    Bundles the audio tower's feature extractor (wav2vec2-family `input_values` or Whisper log-mel `input_features`)
    and the text tower's tokenizer. `processor(audio=..., text=..., sampling_rate=...)` returns the model inputs,
    with the audio mask as `audio_attention_mask` so it never collides with the text `attention_mask`.

    Each clip's features are computed on the clip alone and then padded, so a clip's features (and the model's
    embedding of it) do not depend on the other clips of the batch.

    Args:
        feature_extractor: the audio tower's feature extractor.
        tokenizer: the text tower's tokenizer.
        max_audio_seconds: clips longer than this are cut to it (with a warning); None keeps them whole.
    """

    def __init__(self, feature_extractor, tokenizer, max_audio_seconds: float | None = None):
        self.max_audio_seconds = max_audio_seconds
        super().__init__(feature_extractor, tokenizer)

    @classmethod
    def from_encoders(cls, audio_encoder, text_encoder, max_audio_seconds: float | None = None) -> GEmoClapProcessor:
        """The feature extractor of `audio_encoder` and the tokenizer of `text_encoder` (hub ids or folders)."""
        return cls(
            AutoFeatureExtractor.from_pretrained(audio_encoder),
            AutoTokenizer.from_pretrained(text_encoder),
            max_audio_seconds,
        )

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    @property
    def audio_tower(self) -> AudioTower:
        """The adapter of the audio tower this feature extractor feeds."""
        return audio_tower_for_inputs(self.feature_extractor.model_input_names)

    @property
    def uses_spectrogram(self) -> bool:
        return self.audio_tower.input_name == "input_features"

    def prepare_audio(self, audio: Any, sampling_rate: int | None = None, index: int = 0) -> np.ndarray:
        """Validate one clip and bring it to mono float32 at the extractor's rate, cut to `max_audio_seconds`.
        Clips shorter than 0.1 s (no frame of speech) are an error."""
        where = f"audio item {index}"
        array = to_mono_float(audio, where)  # validated below, once at the extractor's rate
        if sampling_rate is None:
            warnings.warn(
                f"no sampling_rate given for the audio; assuming {self.sampling_rate} Hz. Pass sampling_rate to be sure.",
                stacklevel=3,
            )
        elif sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be positive, got {sampling_rate}")
        else:
            array = resample(array, sampling_rate, self.sampling_rate)
        validate_audio(array, self.sampling_rate, where)
        if self.max_audio_seconds is not None and array.size > self.max_audio_seconds * self.sampling_rate:
            warnings.warn(
                f"{where} lasts {array.size / self.sampling_rate:.1f} s; cut to the model's "
                f"max_audio_seconds={self.max_audio_seconds:g} (the pipeline's chunk_length_s splits long audio)",
                stacklevel=3,
            )
            array = array[: int(self.max_audio_seconds * self.sampling_rate)]
        return array

    def __call__(
        self,
        audio: Any = None,
        text: str | Sequence[str] | None = None,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        **tokenizer_kwargs,
    ) -> BatchFeature:
        """Model inputs for `audio` (one clip or a list of clips) and/or `text` (one string or a list)."""
        if audio is None and text is None:
            raise ValueError("pass audio, text, or both")
        data: dict[str, Any] = {}
        if audio is not None:
            clips = audio if _is_batch(audio) else [audio]
            if len(clips) == 0:
                raise ValueError("audio is an empty list")
            arrays = [self.prepare_audio(clip, sampling_rate, index) for index, clip in enumerate(clips)]
            data.update(self.audio_tower.features(self.feature_extractor, arrays))
        if text is not None:
            if not isinstance(text, str) and len(text) == 0:
                raise ValueError("text is an empty list")
            tokens = self.tokenizer(text, padding=True, truncation=True, return_tensors="np", **tokenizer_kwargs)
            data["input_ids"], data["attention_mask"] = tokens["input_ids"], tokens["attention_mask"]
        return BatchFeature(data, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return [self.audio_tower.input_name, "audio_attention_mask", "input_ids", "attention_mask"]


def _is_batch(audio: Any) -> bool:
    """A list/tuple of clips (arrays, tensors or lists), as opposed to one clip given as a list of numbers."""
    return isinstance(audio, (list, tuple)) and (len(audio) == 0 or not np.isscalar(audio[0]))


__all__ = ["GEmoClapProcessor"]
