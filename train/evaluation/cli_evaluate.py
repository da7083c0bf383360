"""`gemo-clap evaluate`: zero-shot evaluation of a saved model on a built dataset (any corpus: cross-corpus too)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROGRESS_STEP = 64  # clips per pipeline call (the progress bar's step)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...modeling.timeline_gemo_clap import SEGMENTATIONS, TimelineSettings

    parser.add_argument("--model", required=True, help="saved model folder or hub id")
    parser.add_argument("--dataset", required=True, help="dataset folder written by `gemo-clap build-dataset`")
    parser.add_argument("--fold", type=int, help="evaluate only this fold (default: the whole dataset)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--template", help="prompt template with one {} (default: the model's)")
    parser.add_argument(
        "--segmentation",
        choices=SEGMENTATIONS,
        default=TimelineSettings.segmentation,
        help="how each clip is scored, as `gemo-clap predict` scores a file: vad (windows inside detected speech, "
        "the default) or fixed (chunks of the model's maximum length over the whole clip)",
    )
    parser.add_argument("--output", help="write the metrics as JSON here")


def evaluate_model(
    model_path: str,
    dataset_path: str,
    fold: int | None = None,
    batch_size: int = 16,
    template: str | None = None,
    segmentation: str = "vad",
) -> dict:
    """WAR/UAR/... of a saved model on a dataset's utterances (one fold or all), labels = the dataset's emotions.
    Each clip is scored the way `gemo-clap predict` scores a file (the pipeline with `return_segments=True` and
    `segmentation`: a long clip is never cut to its first seconds); a clip in which the VAD finds no speech is scored
    whole (`segmentation="fixed"`) and counted in `no_speech_clips`."""
    from tqdm.auto import tqdm

    from ...loading import load_classifier
    from ...processing.audio import SAMPLING_RATE, decode_example_audio
    from ..data import gender_names, load_built_dataset
    from .zero_shot import score

    dataset = load_built_dataset(dataset_path)
    folds = sorted(set(dataset["fold"]))
    if fold is not None:
        if fold not in folds:
            raise ValueError(f"fold {fold} is not one of the dataset's folds {folds}")
        dataset = dataset.filter(lambda value: value == fold, input_columns="fold", keep_in_memory=True)
        folds = [fold]
    classifier = load_classifier(model_path, trust_remote_code=False)
    config = classifier.model.config
    emotions, template, _ = classifier.resolve_prompts(dataset.features["emotion"].names, template, what="emotions")
    genders = gender_names(dataset)
    print(
        f"scoring {len(dataset)} utterances of fold(s) {folds}"
        + ("" if fold is not None else ": the whole dataset, including any folds the model was trained on"),
        file=sys.stderr,
    )
    print(f"each clip scored as `gemo-clap predict` scores a file: segmentation={segmentation}", file=sys.stderr)
    options = {
        "candidate_labels": emotions,
        "hypothesis_template": template,
        "return_gender": config.has_gender_prompts,
        "return_segments": True,
        "batch_size": batch_size,
    }

    def clips(indices: range | list[int]) -> list[dict]:  # decoded a step at a time: memory bounded by the step
        return [{"array": decode_example_audio(dataset[i]["audio"]), "sampling_rate": SAMPLING_RATE} for i in indices]

    results = []
    for start in tqdm(range(0, len(dataset), PROGRESS_STEP), desc="scoring", unit_scale=PROGRESS_STEP):
        indices = range(start, min(start + PROGRESS_STEP, len(dataset)))
        results += classifier(clips(indices), segmentation=segmentation, **options)
    silent = [index for index, result in enumerate(results) if not result["speech"]]
    if silent:
        for index, result in zip(silent, classifier(clips(silent), segmentation="fixed", **options)):
            results[index] = result
    outputs = {
        "predictions": [emotions.index(result["scores"][0]["label"]) for result in results],
        "references": list(dataset["emotion"]),
    }
    if "gender" in dataset.column_names:
        outputs["genders"] = list(dataset["gender"])
        if config.has_gender_prompts:
            outputs["gender_predictions"] = [genders.index(result["gender"][0]["label"]) for result in results]
    policy = {"segmentation": segmentation, "no_speech_clips": len(silent)}
    return {"folds": folds, "long_audio_policy": policy, **score(outputs, emotions, genders)}


def run(args: argparse.Namespace) -> int:
    from ...atomic import atomic_path, check_folder_path
    from .metrics.ser_metrics import GENDER_SCORES, SCORE_TITLES, SCORES
    from .report import percent

    if args.output:
        check_folder_path(Path(args.output).parent, "--output's folder")
    metrics = evaluate_model(args.model, args.dataset, args.fold, args.batch_size, args.template, args.segmentation)
    policy = metrics["long_audio_policy"]
    print(
        f"segmentation {policy['segmentation']} (as predict); "
        f"clips without detected speech: {policy['no_speech_clips']}"
    )
    print("  ".join(f"{SCORE_TITLES[key]} {percent(metrics[key], 1)}" for key in SCORES))
    for gender, values in metrics.get("per_gender", {}).items():
        print(f"  {gender}: " + "  ".join(f"{SCORE_TITLES[key]} {percent(values[key], 1)}" for key in GENDER_SCORES))
    if "gender_gap" in metrics:
        gap = metrics["gender_gap"]
        print(
            "  gender gap: " + ", ".join(f"{SCORE_TITLES[key]} {percent(gap[key], 1)} points" for key in GENDER_SCORES)
        )
    if "gender_accuracy" in metrics:
        print(f"  gender accuracy of the gender prompts: {percent(metrics['gender_accuracy'], 1)}")
    if args.output:
        with atomic_path(args.output, unique=True) as partial:
            partial.write_text(json.dumps(metrics, indent=2))
    return 0
