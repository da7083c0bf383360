"""Zero-shot speech emotion classification with GEmo-CLAP: cosine similarity between the audio embedding and the
embeddings of one prompt per candidate label ("The emotion is {label}.")."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import numpy as np
import torch
from transformers import Pipeline
from transformers.audio_utils import load_audio

PIPELINE_TASK = "zero-shot-audio-classification"


def read_audio_file(path: str | os.PathLike | bytes, sampling_rate: int) -> np.ndarray:
    """Decode a file path (or its bytes) with soundfile and resample to `sampling_rate`; clear errors for bad files."""
    if not isinstance(path, bytes):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise ValueError(f"audio file not found: {path}")
        if os.path.isdir(path):
            raise ValueError(f"audio path is a directory, not a file: {path}")
    try:
        return load_audio(path, sampling_rate=sampling_rate, backend="soundfile")
    except Exception as error:  # soundfile/libsndfile raise several types for unreadable input
        name = "audio bytes" if isinstance(path, bytes) else path
        raise ValueError(f"cannot decode {name} as audio ({type(error).__name__}: {error})") from error


def check_label_prompts(candidate_labels: list[str], template: str) -> None:
    """Reject empty or duplicate labels and templates without a `{}` placeholder."""
    if len(candidate_labels) == 0:
        raise ValueError("candidate_labels is empty: give at least one label")
    if any(not isinstance(label, str) or not label.strip() for label in candidate_labels):
        raise ValueError(f"candidate_labels must be non-empty strings, got {candidate_labels!r}")
    duplicates = sorted(label for label, count in Counter(candidate_labels).items() if count > 1)
    if duplicates:
        raise ValueError(f"candidate_labels contains duplicates: {duplicates}")
    if "{}" not in template:
        raise ValueError(f"hypothesis_template must contain a '{{}}' placeholder for the label, got {template!r}")


def _in_memory_seconds(item: Any, sampling_rate: int) -> float | None:
    """Duration of an in-memory clip (array, tensor or audio dict); None for files and anything else."""
    if isinstance(item, dict):
        array, rate = item.get("array", item.get("raw")), item.get("sampling_rate") or sampling_rate
    else:
        array, rate = item, sampling_rate
    shape = getattr(array, "shape", None)
    return max(shape) / rate if shape else None


class GEmoClapZeroShotAudioClassificationPipeline(Pipeline):
    """
    `pipeline("zero-shot-audio-classification", model=..., trust_remote_code=True)` for GEmo-CLAP checkpoints.

    Inputs: file paths (decoded with soundfile, no ffmpeg), bytes, 1-D/2-D numpy arrays or tensors at the model's
    sampling rate, `{"array"|"raw": ..., "sampling_rate": ...}` dicts, or lists of these (batched with `batch_size`).
    `candidate_labels` default to the checkpoint's emotion labels, `hypothesis_template` to its prompt template.
    Each label set's prompt embeddings are computed once and reused. Returns `[{"label", "score"}, ...]` per input,
    sorted by score, scores summing to 1.
    """

    _load_processor = True
    _load_feature_extractor = True
    _load_tokenizer = True
    _load_image_processor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prompt_embeddings: dict[tuple[tuple[str, ...], str], torch.Tensor] = {}

    def __call__(self, inputs: Any, **kwargs) -> list:
        """Classify one input or a list. A list of in-memory clips is run in length-sorted batches (length
        bucketing: little padding per batch) and the results come back in input order."""
        durations = (
            [_in_memory_seconds(item, self.processor.sampling_rate) for item in inputs]
            if isinstance(inputs, list)
            else []
        )
        if len(durations) < 2 or None in durations:
            return super().__call__(inputs, **kwargs)
        order = sorted(range(len(inputs)), key=lambda index: -durations[index])
        results = super().__call__([inputs[index] for index in order], **kwargs)
        ordered = [None] * len(inputs)
        for position, index in enumerate(order):
            ordered[index] = results[position]
        return ordered

    def _sanitize_parameters(self, candidate_labels=None, hypothesis_template=None, **kwargs):
        if isinstance(candidate_labels, str):
            candidate_labels = [label.strip() for label in candidate_labels.split(",")]
        labels = list(candidate_labels) if candidate_labels is not None else list(self.model.config.emotion_labels)
        template = hypothesis_template if hypothesis_template is not None else self.model.config.prompt_template
        check_label_prompts(labels, template)
        return {}, {"candidate_labels": labels, "hypothesis_template": template}, {"candidate_labels": labels}

    def preprocess(self, audio: Any) -> dict[str, np.ndarray]:
        sampling_rate = self.processor.sampling_rate
        if isinstance(audio, (str, os.PathLike, bytes)):
            audio = read_audio_file(audio, sampling_rate)
        elif isinstance(audio, dict):
            array = audio.get("array", audio.get("raw"))
            if array is None or "sampling_rate" not in audio:
                raise ValueError("an audio dict needs 'array' (or 'raw') and 'sampling_rate' keys")
            return {"audio": self.processor.prepare_audio(array, audio["sampling_rate"])}
        return {"audio": self.processor.prepare_audio(audio, sampling_rate)}

    def prompt_embeddings(self, candidate_labels: list[str], hypothesis_template: str) -> torch.Tensor:
        """`model.get_label_embeddings` of the label prompts, computed once per (labels, template)."""
        key = (tuple(candidate_labels), hypothesis_template)
        if key not in self._prompt_embeddings:
            self._prompt_embeddings[key] = self.model.get_label_embeddings(
                self.processor, candidate_labels, hypothesis_template
            )
        return self._prompt_embeddings[key]

    def _forward(self, model_inputs, candidate_labels, hypothesis_template):
        clips = model_inputs["audio"]
        clips = clips if isinstance(clips, list) else [clips]
        inputs = self.processor(audio=clips, sampling_rate=self.processor.sampling_rate).to(self.device)
        audio_embeds = self.model.get_audio_features(**inputs)
        logits, _ = self.model.similarity_logits(
            audio_embeds, self.prompt_embeddings(candidate_labels, hypothesis_template)
        )
        return {"logits": logits}

    def postprocess(self, model_outputs, candidate_labels):
        scores = model_outputs["logits"][0].float().softmax(dim=-1).tolist()
        ranked = sorted(zip(scores, candidate_labels), key=lambda pair: -pair[0])
        return [{"label": label, "score": score} for score, label in ranked]


__all__ = ["GEmoClapZeroShotAudioClassificationPipeline", "PIPELINE_TASK"]
