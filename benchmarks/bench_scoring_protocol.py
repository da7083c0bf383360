"""The accuracy users get: EmoDB 4-class fold models scored through the default path of `predict`/`evaluate`
(`segmentation=vad`: speech spans scored whole) and through the whole-clip protocol (`segmentation=fixed`), on the
clips as they are and with silence padding (0.5-1.5 s of faint noise, std 3e-4, before and after each clip, fixed
seed: how calls and most corpora arrive), for models trained on whole clips (`speech_trim=false`, the previous
rounds) and on each clip from its first speech to its last (`speech_trim=true`, the default now).

Real EmoDB from ../shared (339 utterances, the product's 5 speaker-independent folds), the shipped
`cpu-whisper-{tiny,base}-sl` configs, seeds 1, 2, 3. Each fold model is loaded once and scores its test fold in the
four conditions with `pipeline_predictions` (the code training and `evaluate` use); the clean/vad cell must equal
the fold's `test_results.json` (checked). The all-layers and last-layer probes of the same run sit beside them (they
see what the run's cache holds: whole or speech-trimmed clips, clean). Also counts the EmoDB clips the VAD finds no
speech in, clean and padded, and scaled down to -40 dBFS peaks.

`--validation` decides `speech_trim` as the product's settings are decided, on validation splits only: for each
outer fold t (never scored), trained on the folds but t and the next one, scored on the next (speakers never trained
on), no probes.

Run alone, from the repository root: `python benchmarks/bench_scoring_protocol.py [--towers tiny,base]
[--seeds 1,2,3] [--trims false,true] [--validation] [--output-dir DIR]`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from bench_emodb_table import percent
from bench_emodb_variants import TOWERS, emodb_workspace
from gemo_clap.modeling import timeline_gemo_clap
from gemo_clap.modeling.timeline_gemo_clap import TimelineSettings, speech_regions
from gemo_clap.processing.audio import SAMPLING_RATE, decode_example_audio, encode_wav, speech_detector
from gemo_clap.processing.builder import save_dataset
from gemo_clap.processing.conditions import pad_with_silence
from gemo_clap.train.cli_cross_validate import cross_validate
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.evaluation.probe import PROBE_LAYERS, probe_name
from gemo_clap.train.evaluation.zero_shot import pipeline_predictions, score

from gemo_clap.loading import load_classifier

CONDITIONS = [(audio, segmentation) for audio in ("clean", "padded") for segmentation in ("vad", "fixed")]


def padded_dataset(dataset, seed: int = 0):
    """The dataset with every clip padded (`pad_with_silence`, one generator seeded with `seed`, in dataset order)."""
    rng = np.random.default_rng(seed)
    padded = [
        {"bytes": encode_wav(pad_with_silence(decode_example_audio(audio), rng)), "path": None}
        for audio in dataset["audio"]
    ]
    return dataset.remove_columns("audio").add_column("audio", padded, feature=dataset.features["audio"])


def no_speech_counts(dataset) -> dict[str, int]:
    """Clips in which the default VAD finds no speech: clean, padded, and at -40 and -50 dBFS peaks, with the
    second, louder search of quiet inputs and (`first search`) without it."""
    vad, settings = speech_detector(), TimelineSettings()
    clips = [decode_example_audio(audio) for audio in dataset["audio"]]
    rng = np.random.default_rng(1)
    variants = {
        "clean": clips,
        "padded": [pad_with_silence(clip, rng) for clip in clips],
        "-40 dBFS": [clip * 0.01 / np.abs(clip).max() for clip in clips],
        "-50 dBFS": [clip * 10**-2.5 / np.abs(clip).max() for clip in clips],
    }
    counts, default = {}, timeline_gemo_clap.MAX_VAD_GAIN
    for gain, suffix in ((default, ""), (1.0, ", first search")):  # a gain of at most 1: no second search
        timeline_gemo_clap.MAX_VAD_GAIN = gain
        for name, signals in variants.items():
            counts[name + suffix] = sum(not speech_regions(signal, SAMPLING_RATE, vad, settings) for signal in signals)
    timeline_gemo_clap.MAX_VAD_GAIN = default
    return counts


def score_fold_models(run_dir: Path, datasets: dict, label_names: list[str], genders: list[str]) -> dict:
    """Per condition, the metrics of every fold model under `run_dir` on its own test fold."""
    results = {f"{audio}/{segmentation}": [] for audio, segmentation in CONDITIONS}
    for model_dir in sorted(run_dir.glob("**/model")):
        expected = json.loads((model_dir.parent / "test_results.json").read_text())
        classifier = load_classifier(str(model_dir))
        template = classifier.model.config.prompt_template
        for audio, segmentation in CONDITIONS:
            dataset = datasets[audio]
            fold = dataset.filter(lambda value: value == expected["fold"], input_columns="fold", keep_in_memory=True)
            outputs, protocol = pipeline_predictions(
                classifier, fold, label_names, template, genders, segmentation, batch_size=8, progress=False
            )
            metrics = {**score(outputs, label_names, genders), "scoring_protocol": protocol}
            if (audio, segmentation) == ("clean", "vad"):  # training's own test scoring: the same number
                assert metrics["confusion_matrix"] == expected["confusion_matrix"], model_dir
            results[f"{audio}/{segmentation}"].append(metrics)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--towers", default="tiny,base")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--trims", default="false,true", help="speech_trim values to train with")
    parser.add_argument("--validation", action="store_true", help="inner splits of the training folds only")
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    started = time.monotonic()
    with emodb_workspace(args.output_dir) as (root, dataset, dataset_dir):
        label_names, genders = dataset.features["emotion"].names, dataset.features["gender"].names
        datasets = {"clean": dataset, "padded": padded_dataset(dataset)}
        save_dataset(datasets["padded"], root / "emodb-4class-padded", overwrite=True)
        print(f"clips without detected speech (of {len(dataset)}): {no_speech_counts(dataset)}", flush=True)
        table = []
        for tower in args.towers.split(","):
            for trim in args.trims.split(","):
                out = root / tower / f"{'validation-' if args.validation else ''}trim-{trim}"
                overrides = [
                    f"audio_encoder={TOWERS[tower]}",
                    f"dataset={dataset_dir}",
                    f"output_dir={out}",
                    f"audio_cache_dir={root / 'audio_cache'}",
                    f"speech_trim={trim}",
                    "report_to=none",
                ]
                run_started = time.monotonic()
                if args.validation:
                    folds = sorted(set(dataset["fold"]))
                    for outer in folds:
                        inner = [*overrides, f"output_dir={out / f'outer_{outer}'}", f"exclude_folds=[{outer}]"]
                        config = TrainingConfig.load(f"cpu-whisper-{tower}-sl", inner)
                        cross_validate(config, ["sl"], [outer % len(folds) + 1], seeds, overwrite=True)
                else:
                    config = TrainingConfig.load(f"cpu-whisper-{tower}-sl", overrides)
                    paths = cross_validate(config, ["sl"], seeds=seeds, overwrite=True, probes=PROBE_LAYERS)
                    report = json.loads(Path(paths["results_json"]).read_text())["variants"]
                    for name in map(probe_name, PROBE_LAYERS):
                        table.append(
                            {"tower": tower, "trim": trim, "row": name, "cells": {"clean/fixed": report[name]["folds"]}}
                        )
                trained = time.monotonic() - run_started
                conditions = score_fold_models(out, datasets, label_names, genders)
                table.append({"tower": tower, "trim": trim, "row": "sl", "cells": conditions})
                no_speech = {
                    name: sum(m["scoring_protocol"]["no_speech_clips"] for m in runs)
                    for name, runs in conditions.items()
                }
                print(
                    f"[{time.monotonic() - started:6.0f}s] {tower} speech_trim={trim}: "
                    + "  ".join(
                        f"{name} WAR {percent(runs, 'war')} UAR {percent(runs, 'uar')}"
                        for name, runs in conditions.items()
                    )
                    + f"  (train {trained:.0f} s; no-speech clips {no_speech})",
                    flush=True,
                )
        titles = [f"{audio}, {'default (vad)' if seg == 'vad' else 'whole clip (fixed)'}" for audio, seg in CONDITIONS]
        print(f"\n| tower | trained on | row | {' | '.join(titles)} |")
        print("| --- " * (3 + len(titles)) + "|")
        for entry in table:
            cells = []
            for audio, segmentation in CONDITIONS:
                runs = entry["cells"].get(f"{audio}/{segmentation}")  # a probe: clean clips, whole (as cached)
                cells.append(f"{percent(runs, 'war')} / {percent(runs, 'uar')}" if runs else "-")
            trained_on = "speech (first to last)" if entry["trim"] == "true" else "whole clips"
            print(f"| {entry['tower']} | {trained_on} | {entry['row']} | {' | '.join(cells)} |")
        summary = [
            {
                "tower": e["tower"],
                "speech_trim": e["trim"],
                "row": e["row"],
                **{
                    name: {key: float(np.mean([r[key] for r in runs])) for key in ("war", "uar")}
                    for name, runs in e["cells"].items()
                },
            }
            for e in table
        ]
        (root / f"scoring_protocol{'-validation' if args.validation else ''}.json").write_text(
            json.dumps(summary, indent=2) + "\n"
        )
        print(f"\ntotal wall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
