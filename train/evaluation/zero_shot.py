"""Zero-shot evaluation, the paper's inference: each utterance gets the label whose prompt embedding is closest
(cosine) to its audio embedding; scored with WAR, UAR, macro-F1, per-class recall, per-gender and confusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ...modeling import GEmoClapModel, GEmoClapProcessor
from .metric_loading import ser_metric

AUDIO_INPUTS = (  # what `GEmoClapModel.get_audio_features` takes: audio, or what a frozen tower's cache holds
    "input_values",
    "input_features",
    "audio_attention_mask",
    "audio_layer_statistics",
    "audio_layer_input",
    "audio_frame_mask",
    "audio_lower_statistics",
)


@torch.no_grad()
def zero_shot_predictions(
    model: GEmoClapModel,
    processor: GEmoClapProcessor,
    dataloader: DataLoader,
    accelerator: Accelerator,
    label_names: Sequence[str],
    template: str,
    gender_names: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, list[int]]:
    """Predicted and reference emotion ids (and genders) for every utterance, gathered over processes. Batches hold
    the audio inputs or a frozen tower's cached `audio_layer_statistics`. For a model trained with gender prompts
    (ML-GEmo-CLAP), `gender_predictions` come from the same audio embeddings against the gender prompts."""
    model = accelerator.unwrap_model(model)
    was_training = model.training
    model.eval()
    label_embeds = model.get_label_embeddings(processor, label_names, template)
    gender_embeds = None
    if model.config.has_gender_prompts:
        genders = list(gender_names or model.config.gender_labels)
        gender_embeds = model.get_label_embeddings(processor, genders, model.config.gender_prompt_template)
    outputs: dict[str, list[int]] = {"predictions": [], "references": [], "genders": [], "gender_predictions": []}
    batches = tqdm(dataloader, desc="scoring", disable=not (progress and accelerator.is_local_main_process))
    for batch in batches:
        audio_embeds = model.get_audio_features(**{name: batch[name] for name in AUDIO_INPUTS if name in batch})
        columns = {
            "predictions": model.similarity_logits(audio_embeds, label_embeds)[0].argmax(dim=-1),
            "references": batch["emotion_labels"],
        }
        if "gender_labels" in batch:
            columns["genders"] = batch["gender_labels"]
            if gender_embeds is not None:
                columns["gender_predictions"] = model.similarity_logits(audio_embeds, gender_embeds)[0].argmax(dim=-1)
        for name, values in zip(columns, accelerator.gather_for_metrics(list(columns.values()))):
            outputs[name].extend(values.tolist())
    model.train(was_training)
    return outputs


def score(outputs: dict[str, list[int]], label_names: Sequence[str], gender_names: Sequence[str]) -> dict:
    """WAR, UAR, macro-F1, per-class recall, the confusion matrix and, with genders, per-gender WAR/UAR, the gender
    gap and the gender accuracy of gender predictions: the SER metric of `zero_shot_predictions`' outputs."""
    return ser_metric().compute(
        predictions=outputs["predictions"],
        references=outputs["references"],
        genders=outputs.get("genders") or None,
        gender_predictions=outputs.get("gender_predictions") or None,
        label_names=list(label_names),
        gender_names=list(gender_names),
    )
