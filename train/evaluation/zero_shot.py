"""Zero-shot evaluation, the paper's inference: each utterance gets the label whose prompt embedding is closest
(cosine) to its audio embedding; scored with WAR, UAR, macro-F1, per-class recall, per-gender and confusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from ...modeling import GEmoClapModel, GEmoClapProcessor
from ..audio_cache import AudioFeatureCache
from .metric_loading import load_ser_metric

AUDIO_INPUTS = ("input_values", "input_features", "audio_attention_mask")


def audio_layer_statistics(model: GEmoClapModel, batch: dict, cache: AudioFeatureCache | None) -> torch.Tensor:
    """The batch's `get_audio_layer_statistics`, from the cache when it holds them all (and filling it otherwise)."""
    keys = batch["cache_keys"]
    cached = cache.lookup(keys) if cache is not None else None
    if cached is not None:
        return cached.to(model.device)
    statistics = model.get_audio_layer_statistics(**{name: batch[name] for name in AUDIO_INPUTS if name in batch})
    if cache is not None:
        cache.store(keys, statistics)
    return statistics


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
    label_embeds = model.get_label_embeddings(processor, label_names, template)
    outputs: dict[str, list[int]] = {"predictions": [], "references": [], "genders": []}
    for batch in dataloader:
        audio_embeds = model.get_audio_features(audio_layer_statistics=audio_layer_statistics(model, batch, cache))
        predictions = model.similarity_logits(audio_embeds, label_embeds)[0].argmax(dim=-1)
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
