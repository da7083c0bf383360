"""`gemo-clap predict`: emotion scores (and, for checkpoints trained with gender prompts, gender) of audio files.

Each file goes through the zero-shot pipeline with `chunk_length_s` (default: the model's `max_audio_seconds`) and
`return_timestamps=True`, so a long file is read chunk by chunk (memory flat in file length) and reported as a
timeline plus the duration-weighted overall result; gender comes from the same audio pass (`return_gender`).
A file that cannot be used gets one clear line; the exit code is non-zero only when every file failed.

The model is loaded with the installed gemo_clap code. `--trust-remote-code` runs the checkpoint's own code
instead, as transformers does; a Hub repo id needs it only for checkpoints the installed code cannot load.
`--onnx DIR` runs a folder written by `gemo-clap export-onnx` with onnxruntime instead (no torch is imported),
with the same chunks and output.
"""

from __future__ import annotations

import argparse
import json
import sys

from .modeling.audio_gemo_clap import AudioDecodeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model folder or hub id")
    source.add_argument("--onnx", help="folder written by `gemo-clap export-onnx` (onnxruntime, no torch)")
    parser.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, ...)")
    parser.add_argument(
        "--labels", help="comma-separated candidate labels (default: the model's emotions; --onnx: the exported ones)"
    )
    parser.add_argument("--template", help="prompt template with {} (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=8, help="chunks per audio-tower call")
    parser.add_argument(
        "--segment-seconds", type=float, help="chunk length, the pipeline's chunk_length_s (default: the model's)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="run the checkpoint's own code (as transformers does)"
    )


def load_classifier(model: str, trust_remote_code: bool):
    """The zero-shot pipeline of a model folder or repo id: the installed code, or with `trust_remote_code` the
    checkpoint's own."""
    from transformers import pipeline

    from .modeling import PIPELINE_TASK, GEmoClapModel, GEmoClapProcessor, GEmoClapZeroShotAudioClassificationPipeline
    from .train.towers import local_folder_or_repo_id

    model = str(local_folder_or_repo_id(model))
    if trust_remote_code:
        return pipeline(PIPELINE_TASK, model=model, trust_remote_code=True)
    processor = GEmoClapProcessor.from_pretrained(model)
    return GEmoClapZeroShotAudioClassificationPipeline(
        model=GEmoClapModel.from_pretrained(model),
        processor=processor,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
    )


def predict_file(classifier, path: str, batch_size: int, **call_kwargs) -> dict:
    """The overall scores, the timeline of chunks and, with `return_gender`, the gender of one file."""
    output = classifier(path, return_timestamps=True, batch_size=batch_size, **call_kwargs)
    timeline = []
    for chunk in output["chunks"]:
        start, end = chunk["timestamp"]
        entry = {"start": round(start, 3), "end": round(end, 3), **chunk["scores"][0]}
        if "gender" in chunk:
            entry["gender"] = chunk["gender"][0]["label"]
        timeline.append(entry)
    duration = round(sum(chunk["timestamp"][1] - chunk["timestamp"][0] for chunk in output["chunks"]), 3)
    result = {"file": path, "duration": duration, "scores": output["scores"], "timeline": timeline}
    if "gender" in output:
        result["gender"] = output["gender"][0]["label"]
        result["gender_scores"] = output["gender"]
    return result


def load_onnx_runner(folder: str, trust_remote_code: bool):
    """The onnxruntime runner of an exported folder, called like the pipeline."""
    from .onnx.runtime import GEmoClapOnnxRunner

    if trust_remote_code:
        raise ValueError("--trust-remote-code applies to --model only; an --onnx folder runs no checkpoint code")
    return GEmoClapOnnxRunner(folder)


def run(args: argparse.Namespace) -> int:
    labels = None if args.labels is None else [label.strip() for label in args.labels.split(",")]
    if args.onnx is not None:
        classifier = load_onnx_runner(args.onnx, args.trust_remote_code)
        return_gender = classifier.gender_labels is not None
    else:
        from .modeling import VARIANTS
        from .modeling.pipeline_gemo_clap import check_label_prompts

        classifier = load_classifier(args.model, args.trust_remote_code)
        config = classifier.model.config
        if labels is not None:
            check_label_prompts(labels, args.template or config.prompt_template, what="--labels")
        variant = VARIANTS.get(config.variant)
        return_gender = bool(variant and variant.needs_gender_prompts)
    call_kwargs = {
        "candidate_labels": labels,
        "hypothesis_template": args.template,
        "chunk_length_s": args.segment_seconds,
        "return_gender": return_gender,
    }
    classifier._sanitize_parameters(**call_kwargs)  # bad options are a usage error, before any file
    failures = 0
    for path in args.files:
        try:
            result = predict_file(classifier, path, args.batch_size, **call_kwargs)
        except ValueError as error:
            failures += 1
            problem = error.__cause__ if isinstance(error.__cause__, AudioDecodeError) else None
            print(f"{path}: error: {problem.phrase if problem else error}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(result))
        else:
            best = result["scores"][0]
            gender = f"  gender {result['gender']}" if "gender" in result else ""
            print(
                f"{path}: {best['label']} ({best['score']:.2f}){gender}  [{result['duration']:.1f} s, "
                f"{len(result['timeline'])} window(s)]"
            )
    return 1 if failures == len(args.files) else 0
