"""The ONNX runner (onnxruntime, numpy features, no torch) vs the torch zero-shot pipeline on the same clips, printed
as ratios:

1. throughput (seconds of audio per wall second), batched (8 chunks per call) and one clip at a time, with the same
   number of threads, and the largest probability difference between the two;
2. the size of model.onnx vs the checkpoint's model.safetensors (which also holds the text tower);
3. the peak RSS of a fresh process classifying the clips: the runner (torch and transformers blocked) vs the pipeline.

Towers: the pretrained whisper-tiny.en encoder from ../shared and all-MiniLM-L6-v2 when present, else small random
ones; clips: real EmoDB files from ../shared when present, else generated 1-5 s clips. Run:
`python benchmarks/bench_onnx.py [--quick] [--threads N]`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from bench_inference import RATE, best_of, clip, peak_rss, towers
from gemo_clap.train.towers import build_model_and_processor

from gemo_clap.onnx.export import export_onnx
from gemo_clap.onnx.runtime import ONNX_FILE, GEmoClapOnnxRunner
from gemo_clap.predict import load_classifier

EMODB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emodb" / "wav"
PEAK_RSS = {
    "runner": (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['transformers'] = None\n"
        "from gemo_clap.onnx.runtime import GEmoClapOnnxRunner\n"
        "GEmoClapOnnxRunner(sys.argv[1], num_threads=int(sys.argv[2]))(sys.argv[3:], batch_size=8)\n"
    ),
    "pipeline": (
        "import sys, torch\n"
        "from gemo_clap.predict import load_classifier\n"
        "torch.set_num_threads(int(sys.argv[2]))\n"
        "with torch.no_grad():\n"
        "    load_classifier(sys.argv[1], False)(sys.argv[3:], batch_size=8)\n"
    ),
}


def audio_files(workdir: Path, count: int) -> tuple[list[str], str]:
    """(paths of `count` clips, what they are): every k-th EmoDB file, else generated clips."""
    if EMODB.is_dir():
        paths = sorted(EMODB.glob("*.wav"))
        step = max(1, len(paths) // count)
        return [str(path) for path in paths[::step][:count]], f"{count} EmoDB clips"
    lengths = np.random.default_rng(0).uniform(1.0, 5.0, count)
    paths = []
    for index, seconds in enumerate(lengths):
        path = workdir / f"clip-{index}.wav"
        sf.write(path, clip(float(seconds), index), RATE)
        paths.append(str(path))
    return paths, f"{count} generated 1-5 s clips (../shared EmoDB absent)"


def runner_peak_rss(kind: str, model: Path, files: list[str], threads: int) -> float:
    """Peak RSS (MiB) of a fresh process that classifies `files` with the runner or the pipeline."""
    return peak_rss(PEAK_RSS[kind], str(model), str(threads), *files)


def largest_difference(ours: list[list[dict]], theirs: list[list[dict]]) -> float:
    return max(
        abs(entry["score"] - {e["label"]: e["score"] for e in other}[entry["label"]])
        for result, other in zip(ours, theirs)
        for entry in result
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="8 clips, one repeat (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        audio_dir, text_dir, description = towers(workdir)
        model, processor = build_model_and_processor(audio_dir, text_dir, variant="sl")
        model_dir, onnx_dir = workdir / "model", workdir / "onnx"
        model.save_pretrained(model_dir)
        processor.save_pretrained(model_dir)
        export_onnx(model_dir, onnx_dir)
        files, clips_description = audio_files(workdir, 8 if args.quick else 48)
        seconds = sum(sf.info(path).duration for path in files)
        runner = GEmoClapOnnxRunner(onnx_dir, num_threads=args.threads)
        pipe = load_classifier(str(model_dir), False)
        print(f"towers: {description}; {clips_description} ({seconds:.1f} s); {args.threads} thread(s)")

        repeats = 1 if args.quick else 3
        with torch.no_grad():
            difference = largest_difference(runner(files, batch_size=8), pipe(files, batch_size=8))
            for batch_size in (8, 1):
                onnx_time = best_of(lambda size=batch_size: runner(files, batch_size=size), repeats)
                torch_time = best_of(lambda size=batch_size: pipe(files, batch_size=size), repeats)
                print(
                    f"1. batch {batch_size}: runner / pipeline throughput = {torch_time / onnx_time:.2f}x "
                    f"(runner {seconds / onnx_time:.0f} s of audio/s, pipeline {seconds / torch_time:.0f} s/s)"
                )
        print(f"   largest probability difference runner vs pipeline: {difference:.1e}")

        onnx_size = (onnx_dir / ONNX_FILE).stat().st_size / 2**20
        checkpoint_size = (model_dir / "model.safetensors").stat().st_size / 2**20
        print(
            f"2. {ONNX_FILE} / model.safetensors = {onnx_size / checkpoint_size:.2f} "
            f"({onnx_size:.1f} MiB vs {checkpoint_size:.1f} MiB)"
        )

        runner_peak = runner_peak_rss("runner", onnx_dir, files, args.threads)
        pipeline_peak = runner_peak_rss("pipeline", model_dir, files, args.threads)
        print(
            f"3. peak RSS runner / pipeline = {runner_peak / pipeline_peak:.2f} "
            f"(runner {runner_peak:.0f} MiB without torch, pipeline {pipeline_peak:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
