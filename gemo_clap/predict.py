"""`gemo-clap predict`: emotion scores (and, for ML-GEmo-CLAP, gender) of audio files.

Files longer than the model's `max_audio_seconds` (or than `--segment-seconds`) are read window by window with
soundfile, so memory stays flat in file length, and reported as a timeline plus a duration-weighted overall result.
A file that cannot be read gets one clear line; the exit code is non-zero only when every file failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, ...)")
    parser.add_argument("--labels", help="comma-separated candidate labels (default: the model's emotions)")
    parser.add_argument("--template", help="prompt template with {} (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--segment-seconds", type=float, help="window length (default: the model's maximum)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")


def windows(path: str, sampling_rate: int, seconds: float) -> Iterator[tuple[float, float, np.ndarray]]:
    """(start, end, mono float32 audio at `sampling_rate`) windows of a file, read block by block."""
    import librosa
    import soundfile as sf

    with sf.SoundFile(path) as audio:
        block = max(1, int(seconds * audio.samplerate))
        start = 0
        for frames in audio.blocks(blocksize=block, dtype="float32", always_2d=True):
            mono = frames.mean(axis=1)
            if audio.samplerate != sampling_rate:
                mono = librosa.resample(mono, orig_sr=audio.samplerate, target_sr=sampling_rate)
            yield start / audio.samplerate, (start + len(frames)) / audio.samplerate, mono.astype(np.float32)
            start += len(frames)


def predict_file(
    classifier,
    path: str,
    labels: list[str],
    template: str,
    segment_seconds: float,
    batch_size: int,
    gender_labels: list[str] | None,
    gender_template: str,
) -> dict:
    """Timeline and duration-weighted overall scores of one file (and gender when `gender_labels` is given)."""
    import soundfile as sf

    try:
        sf.info(path)
    except Exception as error:  # noqa: BLE001 - soundfile raises several types for unreadable files
        if not Path(path).exists():
            raise ValueError("file not found") from error
        if Path(path).is_dir():
            raise ValueError("is a directory, not an audio file") from error
        raise ValueError(f"not a readable audio file ({error})") from error
    rate = classifier.processor.sampling_rate
    timeline, totals, gender_totals, seconds = [], np.zeros(len(labels)), np.zeros(len(gender_labels or [])), 0.0
    batch: list[tuple[float, float, np.ndarray]] = []

    def flush() -> None:
        nonlocal seconds
        clips = [clip for _, _, clip in batch]
        emotion_scores = classifier(clips, candidate_labels=labels, hypothesis_template=template, batch_size=len(clips))
        gender_scores = (
            classifier(
                clips, candidate_labels=gender_labels, hypothesis_template=gender_template, batch_size=len(clips)
            )
            if gender_labels
            else [None] * len(clips)
        )
        for (start, end, _), emotion, gender in zip(batch, emotion_scores, gender_scores):
            weight = end - start
            seconds += weight
            totals[:] += weight * np.array([{e["label"]: e["score"] for e in emotion}[label] for label in labels])
            entry = {
                "start": round(start, 3),
                "end": round(end, 3),
                "label": emotion[0]["label"],
                "score": emotion[0]["score"],
            }
            if gender is not None:
                gender_totals[:] += weight * np.array(
                    [{g["label"]: g["score"] for g in gender}[x] for x in gender_labels]
                )
                entry["gender"] = gender[0]["label"]
            timeline.append(entry)
        batch.clear()

    for window in windows(path, rate, segment_seconds):
        batch.append(window)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if seconds == 0:
        raise ValueError("the file holds no audio")
    overall = sorted(
        ({"label": label, "score": float(s / seconds)} for label, s in zip(labels, totals)),
        key=lambda entry: -entry["score"],
    )
    result = {"file": path, "duration": round(seconds, 3), "scores": overall, "timeline": timeline}
    if gender_labels:
        result["gender"] = max(zip(gender_totals, gender_labels))[1]
    return result


def run(args: argparse.Namespace) -> int:
    from transformers import pipeline

    from .modeling import VARIANTS
    from .modeling.pipeline_gemo_clap import check_label_prompts

    classifier = pipeline("zero-shot-audio-classification", model=args.model, trust_remote_code=True)
    config = classifier.model.config
    labels = [label.strip() for label in args.labels.split(",")] if args.labels else list(config.emotion_labels)
    template = args.template or config.prompt_template
    check_label_prompts(labels, template)
    segment = args.segment_seconds or config.max_audio_seconds
    if not 0 < segment <= config.max_audio_seconds:
        raise ValueError(f"--segment-seconds must be in (0, {config.max_audio_seconds:g}], got {segment:g}")
    variant = VARIANTS.get(config.variant)
    gender_labels = list(config.gender_labels) if variant and variant.needs_gender_prompts else None
    failures = 0
    for path in args.files:
        try:
            result = predict_file(
                classifier,
                path,
                labels,
                template,
                segment,
                args.batch_size,
                gender_labels,
                config.gender_prompt_template,
            )
        except ValueError as error:
            failures += 1
            print(f"{path}: error: {error}", file=sys.stderr)
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
