"""Zero-shot evaluation, the paper's inference: each utterance gets the label whose prompt embedding is closest
(cosine) to its audio embedding; scored with WAR, UAR, macro-F1, per-class recall, per-gender and confusion.

Test folds and `gemo-clap evaluate` score each clip through the zero-shot pipeline as `gemo-clap predict` scores a
file (`pipeline_predictions`: the scoring protocol users meet); validation during training scores the cached
features of the same speech-trimmed clips (`zero_shot_predictions`)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ...modeling import GEmoClapModel, GEmoClapProcessor
from ...processing.audio import SAMPLING_RATE, decode_example_audio
from ..training_model import audio_features
from .metric_loading import ser_metric

SCORING_STEP = 64  # clips per pipeline call: decoded a step at a time, so memory is bounded by the step


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
    the audio inputs or a frozen tower's cache (`audio_features`). For a model trained with gender prompts
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
        audio_embeds = audio_features(model, batch)
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


def scoring_sentence(segmentation: str = "vad") -> str:
    """How test clips are scored under `segmentation`, for reports and model cards."""
    if segmentation == "vad":
        return (
            "each test clip scored as `gemo-clap predict` and `gemo-clap evaluate` score a file (segmentation=vad: "
            "Silero VAD finds the speech, the speech spans are scored whole; a clip without speech is scored whole)"
        )
    return "each test clip scored whole (segmentation=fixed: chunks of the model's maximum length)"


def pipeline_predictions(
    classifier,
    dataset,
    label_names: Sequence[str],
    template: str,
    gender_names: Sequence[str],
    segmentation: str = "vad",
    batch_size: int = 16,
    accelerator: Accelerator | None = None,
    progress: bool = True,
) -> tuple[dict[str, list[int]], dict]:
    """(predicted and reference emotion ids and genders, the scoring protocol) of every clip of a built `dataset`,
    each scored by the zero-shot `classifier` as `gemo-clap predict` scores a file: `segmentation="vad"` (speech
    spans scored whole; a clip without detected speech scored whole, counted in the protocol's `no_speech_clips`)
    or "fixed" (the whole clip in chunks of the model's maximum). With an `accelerator` the clips are split across
    processes and the results gathered."""
    config = classifier.model.config
    options = {
        "candidate_labels": list(label_names),
        "hypothesis_template": template,
        "return_gender": config.has_gender_prompts,
        "return_segments": True,
        "segmentation": segmentation,
        "batch_size": batch_size,
    }
    indices = list(range(len(dataset)))
    main = accelerator is None or accelerator.is_local_main_process
    with accelerator.split_between_processes(indices) if accelerator else nullcontext(indices) as mine:
        rows = []
        for start in tqdm(range(0, len(mine), SCORING_STEP), desc="scoring", disable=not (progress and main)):
            step = mine[start : start + SCORING_STEP]
            clips = [
                {"array": decode_example_audio(dataset[index]["audio"]), "sampling_rate": SAMPLING_RATE}
                for index in step
            ]
            for result in classifier(clips, **options):
                gender = result["gender"][0]["label"] if result.get("gender") else None
                rows.append((result["scores"][0]["label"], gender, result["speech"]))
    if accelerator is not None and accelerator.num_processes > 1:
        rows = gather_object(rows)
    outputs = {
        "predictions": [list(label_names).index(label) for label, _, _ in rows],
        "references": list(dataset["emotion"]),
    }
    if "gender" in dataset.column_names:
        outputs["genders"] = list(dataset["gender"])
        if config.has_gender_prompts:
            outputs["gender_predictions"] = [list(gender_names).index(gender) for _, gender, _ in rows]
    protocol = {"segmentation": segmentation, "no_speech_clips": sum(not speech for _, _, speech in rows)}
    return outputs, protocol


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


def per_corpus_scores(
    outputs: dict[str, list[int]], test, label_names: Sequence[str], gender_names: Sequence[str]
) -> dict:
    """`{"per_corpus": {corpus: scores}}` of the outputs of a test set (a built dataset) holding a `corpus` column
    (several corpora at once; empty otherwise)."""
    if "corpus" not in test.column_names:
        return {}
    corpora = list(test["corpus"])
    scores = {}
    for name in dict.fromkeys(corpora):
        rows = [i for i, corpus in enumerate(corpora) if corpus == name]
        subset = {key: [values[i] for i in rows] for key, values in outputs.items() if values}
        scores[name] = {"utterances": len(rows), **score(subset, label_names, gender_names)}
    return {"per_corpus": scores}
