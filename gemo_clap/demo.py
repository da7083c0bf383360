"""`gemo-clap demo`: the whole product offline, in a few minutes on a CPU.

By default it generates a small SYNTHETIC emotional-speech corpus (voiced signals, not speech), builds it with
the same code as real corpora, trains a small randomly initialised SL-GEmo-CLAP through the real training loop,
evaluates it on held-out speakers, saves it with safetensors and remote code, reloads it with `AutoModel` and
the zero-shot `pipeline(..., trust_remote_code=True)` and classifies a few held-out clips, which it keeps as WAV files
for `gemo-clap predict`. With `--audio-encoder/--text-encoder` (hub ids or folders) and `--dataset` it does the same
for real. A rerun replaces the previous demo's run in the same output folder.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import shutil
import tempfile
import time
from pathlib import Path

import soundfile as sf

CHANCE_NOTE = "chance level is {:.1f}% for {} balanced classes"
SYNTHETIC_FOLDS = 4  # speaker-independent folds of the synthetic corpus


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .modeling import VARIANTS

    parser.add_argument("--output-dir", default="gemo-clap-demo", help="where the dataset, model and results go")
    parser.add_argument(
        "--audio-encoder", help="audio tower (hub id or folder); default: a small random Whisper-style encoder"
    )
    parser.add_argument("--text-encoder", help="text tower (hub id or folder); default: a small random BERT")
    parser.add_argument("--dataset", help="a dataset built by `gemo-clap build-dataset`; default: synthetic")
    parser.add_argument("--variant", default="sl", choices=list(VARIANTS))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--test-fold", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)


def _stage(text: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    import datasets

    from .modeling import VARIANTS
    from .processing.atomic import check_folder_path
    from .processing.builder import build_corpus, save_dataset
    from .processing.synthetic import generate_corpus
    from .train.config import TrainingConfig
    from .train.loop import existing_run, train
    from .train.tiny_towers import save_tiny_encoders

    synthetic = args.dataset is None
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    if synthetic and not 1 <= args.test_fold <= SYNTHETIC_FOLDS:
        raise ValueError(f"--test-fold must be from 1 to {SYNTHETIC_FOLDS} (the synthetic folds), got {args.test_fold}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    datasets.disable_progress_bars()  # the demo's own lines say what happened
    started = time.monotonic()
    output = Path(args.output_dir)
    check_folder_path(output, "--output-dir")
    if existing_run(output / "run"):
        print(f"replacing the previous demo run in {output / 'run'}")
    if synthetic:
        print("NOTE: this demo runs on SYNTHETIC signals (voiced tones shaped by emotion and gender), not speech;")
        print("      its numbers show the pipeline works, not how well GEmo-CLAP recognises real emotions.")
        with tempfile.TemporaryDirectory(prefix="gemo-clap-synthetic-") as corpus_dir:
            manifest = generate_corpus(corpus_dir, speakers_per_gender=4, clips_per_emotion=6, seed=args.seed)
            _stage(f"generated a synthetic corpus: {manifest}", started)
            dataset, report = build_corpus(
                "manifest", manifest, num_folds=SYNTHETIC_FOLDS, cache_dir=Path(corpus_dir) / "cache"
            )
            dataset_dir = save_dataset(dataset, output / "dataset", overwrite=True)
        _stage(
            f"built it like a real corpus: {len(dataset)} utterances, {SYNTHETIC_FOLDS} speaker-independent folds -> "
            f"{dataset_dir}",
            started,
        )
    else:
        dataset_dir = Path(args.dataset)
    audio_encoder, text_encoder = args.audio_encoder, args.text_encoder
    if audio_encoder is None or text_encoder is None:
        tiny_audio, tiny_text = save_tiny_encoders(output / "towers", "whisper", seed=args.seed)
        audio_encoder, text_encoder = audio_encoder or tiny_audio, text_encoder or tiny_text
        _stage("made small randomly initialised towers (no download)", started)

    config = TrainingConfig(
        audio_encoder=str(audio_encoder),
        text_encoder=str(text_encoder),
        model={"variant": args.variant, "projection_dim": 64},
        dataset=str(dataset_dir),
        test_fold=args.test_fold,
        output_dir=str(output / "run"),
        num_epochs=args.epochs,
        warmup_epochs=1,
        learning_rate=1e-3 if synthetic else 1e-5,
        # Small batches: more optimiser steps per epoch move the random towers out of their nearly collapsed start.
        batch_size=8 if synthetic else 16,
        validation_fraction=0.15,
        seed=args.seed,
    )
    _stage(
        f"training {VARIANTS[args.variant].title}, test fold {args.test_fold} (speakers never seen in training)",
        started,
    )
    result = train(config, overwrite=True)
    metrics = result.test_metrics
    _stage(
        f"saved the best epoch by validation UAR ({result.best_epoch + 1} of {args.epochs}) with safetensors and "
        f"remote code -> {result.model_dir}",
        started,
    )

    examples = _classify_with_pipeline(result.model_dir, dataset_dir, args.test_fold, output / "examples", started)
    names = list(metrics["per_class_recall"])
    print()
    print(f"Held-out speakers (fold {args.test_fold}){' on SYNTHETIC data' if synthetic else ''}:")
    print("| metric | value |\n| --- | --- |")
    print(f"| WAR | {100 * metrics['war']:.1f}% |\n| UAR | {100 * metrics['uar']:.1f}% |")
    print(f"| macro-F1 | {100 * metrics['macro_f1']:.1f}% |")
    for name, recall in metrics["per_class_recall"].items():
        print(f"| recall {name} | {100 * recall:.1f}% |")
    print(CHANCE_NOTE.format(100 / len(names), len(names)))
    _stage("done", started)
    model = shlex.quote(str(result.model_dir))
    print(f"next: gemo-clap predict --model {model} {shlex.quote(str(examples))}  (or your own audio files)")
    needs = "" if importlib.util.find_spec("gradio") else '; it needs the app extra: pip install -e ".[app]"'
    print(f"      gemo-clap app --model {model}  (a web app{needs})")
    return 0


def _classify_with_pipeline(model_dir: Path, dataset_dir: Path, test_fold: int, examples: Path, started: float) -> Path:
    """Reload the saved folder as a Hugging Face user would and classify a few held-out clips; return the folder
    `examples` they are written to (as WAV files, for `gemo-clap predict`)."""
    import datasets
    from transformers import AutoModel, pipeline

    from .processing.audio import SAMPLING_RATE, decode_example_audio

    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True)
    classifier = pipeline("zero-shot-audio-classification", model=str(model_dir), trust_remote_code=True)
    _stage(f"reloaded with AutoModel ({type(model).__name__}) and pipeline ({type(classifier).__name__})", started)
    test = datasets.load_from_disk(str(dataset_dir)).filter(
        lambda fold: fold == test_fold, input_columns="fold", keep_in_memory=True
    )
    names = test.features["emotion"].names
    rows = [test[i] for i in range(0, len(test), max(1, len(test) // 6))][:6]
    clips = [decode_example_audio(row["audio"]) for row in rows]
    predictions = classifier(clips, batch_size=len(rows))
    for row, scores in zip(rows, predictions):
        print(
            f"  {row['id']:<24} true {names[row['emotion']]:<8} predicted {scores[0]['label']:<8} ({scores[0]['score']:.2f})"
        )
    shutil.rmtree(examples, ignore_errors=True)  # a previous demo's clips
    examples.mkdir(parents=True)
    for row, clip in zip(rows, clips):
        name = Path(row["id"]).name
        sf.write(examples / (name if name.lower().endswith(".wav") else f"{name}.wav"), clip, SAMPLING_RATE)
    return examples
