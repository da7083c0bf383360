"""Zero-shot speech emotion classification with GEmo-CLAP: cosine similarity between the audio embedding and the
embeddings of one prompt per candidate label ("The emotion is {label}."). Long inputs are split into chunks, as
the ASR pipeline does (`chunk_length_s`), and their scores combined (`return_timestamps` gives each chunk's)."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline

from .audio_gemo_clap import audio_chunks, check_chunk_length, chunk_results, longest_first
from .loss_gemo_clap import VARIANTS

PIPELINE_TASK = "zero-shot-audio-classification"


def check_label_prompts(candidate_labels: list[str], template: str, what: str = "candidate_labels") -> None:
    """Reject empty or duplicate labels and templates without a `{}` placeholder."""
    if len(candidate_labels) == 0:
        raise ValueError(f"{what} is empty: give at least one label")
    if any(not isinstance(label, str) or not label.strip() for label in candidate_labels):
        raise ValueError(f"{what} must be non-empty strings, got {candidate_labels!r}")
    duplicates = sorted(label for label, count in Counter(candidate_labels).items() if count > 1)
    if duplicates:
        raise ValueError(f"{what} contains duplicates: {duplicates}")
    if "{}" not in template:
        raise ValueError(f"hypothesis_template must contain a '{{}}' placeholder for the label, got {template!r}")


class GEmoClapZeroShotAudioClassificationPipeline(ChunkPipeline):
    """
    `pipeline("zero-shot-audio-classification", model=..., trust_remote_code=True)` for GEmo-CLAP checkpoints.

    Inputs: file paths (decoded with soundfile, no ffmpeg; read chunk by chunk), bytes, 1-D/2-D numpy arrays or
    tensors at the model's sampling rate, `{"array"|"raw": ..., "sampling_rate": ...}` dicts, or lists of these
    (batched with `batch_size`, which counts chunks). `candidate_labels` default to the checkpoint's emotion labels,
    `hypothesis_template` to its prompt template; each label set's prompt embeddings are computed once and reused.

    Inputs longer than `chunk_length_s` (default: the model's `max_audio_seconds`) are split into chunks of that
    length; a tail shorter than half a chunk joins the previous chunk (or, where that would exceed the model's
    maximum, the two are split into equal halves). Returns per input `[{"label", "score"}, ...]`, sorted, scores
    summing to 1: the duration-weighted mean of the chunks' scores. With `return_timestamps=True`: `{"scores": [...],
    "chunks": [{"timestamp": (start_s, end_s), "scores": [...]}, ...]}`. With `return_gender=True` (checkpoints
    trained with gender prompts, ML-GEmo-CLAP) the result is a dict that also holds `"gender"` scores (per input
    and per chunk), computed from the same audio embeddings.
    """

    _load_processor = True
    _load_feature_extractor = True
    _load_tokenizer = True
    _load_image_processor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prompt_embeddings: dict[tuple[tuple[str, ...], str], torch.Tensor] = {}

    def __call__(self, inputs: Any, **kwargs) -> list | dict:
        """Classify one input or a list. A list of in-memory clips is run longest first (length bucketing: little
        padding per batch) and the results come back in input order."""
        if not isinstance(inputs, list):
            return super().__call__(inputs, **kwargs)
        return longest_first(inputs, self.processor.sampling_rate, partial(super().__call__, **kwargs))

    def _sanitize_parameters(
        self,
        candidate_labels=None,
        hypothesis_template=None,
        chunk_length_s=None,
        return_timestamps=None,
        return_gender=None,
        **kwargs,
    ):
        config = self.model.config
        if isinstance(candidate_labels, str):
            candidate_labels = [label.strip() for label in candidate_labels.split(",")]
        labels = list(candidate_labels) if candidate_labels is not None else list(config.emotion_labels)
        template = hypothesis_template if hypothesis_template is not None else config.prompt_template
        check_label_prompts(labels, template)
        chunk = check_chunk_length(chunk_length_s, config.max_audio_seconds)
        gender = None
        if return_gender:
            variant = VARIANTS.get(config.variant)
            if variant is None or not variant.needs_gender_prompts:
                raise ValueError(
                    f"return_gender needs a checkpoint trained with gender prompts (e.g. ML-GEmo-CLAP); this one is "
                    f"{config.variant!r}"
                )
            gender = (list(config.gender_labels), config.gender_prompt_template)
        forward = {"candidate_labels": labels, "hypothesis_template": template, "gender": gender}
        postprocess = {"candidate_labels": labels, "return_timestamps": bool(return_timestamps), "gender": gender}
        return {"chunk_length_s": chunk}, forward, postprocess

    def preprocess(self, audio: Any, chunk_length_s: float):
        """Chunks `{"audio", "start", "end", "is_last"}` of one input (`audio_chunks`); a file is read one chunk at
        a time."""
        pieces = audio_chunks(audio, self.processor.sampling_rate, chunk_length_s, self.model.config.max_audio_seconds)
        previous = None  # one chunk of look-ahead tells the last one
        for piece in pieces:
            if previous is not None:
                yield self._chunk(previous, is_last=False)
            previous = piece
        yield self._chunk(previous, is_last=True)

    @staticmethod
    def _chunk(piece: tuple[tuple[float, float], np.ndarray], is_last: bool) -> dict:
        (start, end), array = piece
        return {"audio": array, "start": start, "end": end, "is_last": is_last}

    def prompt_embeddings(self, candidate_labels: list[str], hypothesis_template: str) -> torch.Tensor:
        """`model.get_label_embeddings` of the label prompts, computed once per (labels, template)."""
        key = (tuple(candidate_labels), hypothesis_template)
        if key not in self._prompt_embeddings:
            self._prompt_embeddings[key] = self.model.get_label_embeddings(
                self.processor, candidate_labels, hypothesis_template
            )
        return self._prompt_embeddings[key]

    def _forward(self, model_inputs, candidate_labels, hypothesis_template, gender):
        clips = model_inputs["audio"]
        clips = clips if isinstance(clips, list) else [clips]
        inputs = self.processor(audio=clips, sampling_rate=self.processor.sampling_rate).to(self.device)
        audio_embeds = self.model.get_audio_features(**inputs)  # one audio-tower pass for emotion and gender
        outputs = {
            "logits": self.model.similarity_logits(
                audio_embeds, self.prompt_embeddings(candidate_labels, hypothesis_template)
            )[0],
            "start": model_inputs["start"],
            "end": model_inputs["end"],
            "is_last": model_inputs["is_last"],
        }
        if gender is not None:
            outputs["gender_logits"] = self.model.similarity_logits(audio_embeds, self.prompt_embeddings(*gender))[0]
        return outputs

    def postprocess(self, model_outputs, candidate_labels, return_timestamps, gender):
        spans = [(float(output["start"]), float(output["end"])) for output in model_outputs]
        tasks = {"scores": ("logits", candidate_labels)}
        if gender is not None:
            tasks["gender"] = ("gender_logits", gender[0])
        scores = {
            name: ([output[key][0].float().softmax(dim=-1).tolist() for output in model_outputs], labels)
            for name, (key, labels) in tasks.items()
        }
        return chunk_results(spans, scores, return_timestamps)


__all__ = ["PIPELINE_TASK", "GEmoClapZeroShotAudioClassificationPipeline"]
