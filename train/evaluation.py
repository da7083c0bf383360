"""Zero-shot evaluation, the paper's inference: each utterance gets the label whose prompt embedding is closest
(cosine) to its audio embedding; scored with WAR, UAR, macro-F1, per-class recall, per-gender and confusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from ..modeling import GEmoClapModel, GEmoClapProcessor
from .audio_cache import AudioFeatureCache
from .metric_loading import load_ser_metric

AUDIO_INPUTS = ("input_values", "input_features", "audio_attention_mask")


def pooled_audio(model: GEmoClapModel, batch: dict, cache: AudioFeatureCache | None) -> torch.Tensor:
    """The batch's pooled audio-tower outputs, from the cache when it holds them all (and filling it otherwise)."""
    keys = batch["keys"]
    cached = cache.lookup(keys) if cache is not None else None
    if cached is not None:
        return cached.to(model.device)
    pooled = model.get_audio_pooled_output(**{name: batch[name] for name in AUDIO_INPUTS if name in batch})
    if cache is not None:
        cache.store(keys, pooled)
    return pooled


@torch.no_grad()
def prompt_embeddings(model: GEmoClapModel, processor: GEmoClapProcessor, labels: Sequence[str], template: str):
    """Normalised text embeddings of one prompt per label."""
    tokens = processor(text=[template.format(label) for label in labels]).to(model.device)
    return torch.nn.functional.normalize(model.get_text_features(tokens["input_ids"], tokens["attention_mask"]), dim=-1)


@torch.no_grad()
def zero_shot_predictions(
    model: GEmoClapModel,
    processor: GEmoClapProcessor,
    dataloader: DataLoader,
    accelerator: Accelerator,
    label_names: Sequence[str],
    template: str,
    cache: AudioFeatureCache | None = None,
) -> dict[str, list[int]]:
    """Predicted and reference emotion ids (and genders) for every utterance, gathered over processes."""
    model = accelerator.unwrap_model(model)
    was_training = model.training
    model.eval()
    text_embeds = prompt_embeddings(model, processor, label_names, template)
    outputs: dict[str, list[int]] = {"predictions": [], "references": [], "genders": []}
    for batch in dataloader:
        audio_embeds = torch.nn.functional.normalize(model.audio_projection(pooled_audio(model, batch, cache)), dim=-1)
        predictions = (audio_embeds @ text_embeds.T).argmax(dim=-1)
        columns = [predictions, batch["emotion_labels"]] + (
            [batch["gender_labels"]] if "gender_labels" in batch else []
        )
        for name, values in zip(outputs, accelerator.gather_for_metrics(columns)):
            outputs[name].extend(values.tolist())
    model.train(was_training)
    return outputs


def score(outputs: dict[str, list[int]], label_names: Sequence[str], gender_names: Sequence[str]) -> dict:
    """WAR, UAR, macro-F1, per-class recall, per-gender WAR/UAR and the confusion matrix."""
    return load_ser_metric().compute(
        predictions=outputs["predictions"],
        references=outputs["references"],
        genders=outputs["genders"] or None,
        label_names=list(label_names),
        gender_names=list(gender_names),
    )
