"""`gemo-clap predict`: the emotion timeline (and, for checkpoints trained with gender prompts, gender) of audio files
and folders.

Each file goes through the zero-shot pipeline with `return_segments=True`: by default (`--segmentation vad`) Silero
VAD finds the speech, sliding windows inside it are scored, smoothed and merged into segments, and the overall
scores are weighted by speech duration; `--segmentation fixed` scores chunks of `--segment-seconds` over the whole
signal. Files are read block by block (memory flat in file length). Gender comes from the same audio pass.

Folders are searched recursively for audio files. `--output-dir` writes one result per input (JSON, plus `--format`,
`--embeddings` and `--plot` files) and `summary.csv`; every file is written atomically and the JSON last, so a rerun
skips the inputs whose files are all there. A file that cannot be used gets one clear line and is counted; the exit
code is 0 when at least one file was done (or already finished) and 2, as for any bad input, when every file failed.

The model is loaded with the installed gemo_clap code. `--trust-remote-code` runs the checkpoint's own code
instead, as transformers does; a Hub repo id needs it only for checkpoints the installed code cannot load.
`--onnx DIR` runs a folder written by `gemo-clap export-onnx` with onnxruntime instead (no torch is imported),
with the same windows and output.

`--stream -` follows live audio on standard input instead (a WAV stream, or raw 16-bit PCM with `--sampling-rate`):
one JSON line per event of the model's `EmotionStream` (`{"event": "partial"|"final", "start", "end", "label",
"score"}`, plus `"gender"` for checkpoints trained with gender prompts), each flushed as it is decided; the end of the
input, a stall, Ctrl-C or SIGTERM flush the open segment and exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .loading import load_classifier, load_onnx_runner
from .modeling.audio_gemo_clap import AudioDecodeError
from .modeling.labels_gemo_clap import parse_labels
from .modeling.timeline_gemo_clap import SEGMENTATIONS, TimelineSettings
from .processing.atomic import atomic_path, check_folder_path
from .stream_input import InputReader, PcmDecoder, deferred_interrupts
from .timeline.exports import FORMATS, render, summary_csv, summary_row, to_csv
from .timeline.result import predict_file, write_results

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf", ".w64")
SUMMARY_FILE = "summary.csv"
STALL_SECONDS = 10.0  # --stream: input silent this long ends the stream
# option -> (pipeline keyword, help); the defaults are `TimelineSettings`'
TIMELINE_OPTIONS = {
    "--window-seconds": ("window_s", "window length inside speech (default {:g}; at most the model's maximum)"),
    "--hop-seconds": ("hop_s", "step between windows (default {:g}; at most the window)"),
    "--smoothing-seconds": ("smoothing_s", "moving average of the scores over time (default {:g}; 0: none)"),
    "--vad-threshold": ("vad_threshold", "speech probability that starts speech (default {:g})"),
    "--min-speech-seconds": ("min_speech_s", "shorter speech is dropped (default {:g})"),
    "--min-silence-seconds": ("min_silence_s", "shorter pauses do not end speech (default {:g})"),
    "--speech-pad-seconds": ("speech_pad_s", "padding on each side of speech (default {:g})"),
    "--span-gap-seconds": (
        "span_gap_s",
        "the overall scores: speech regions at most this far apart are scored as one span (default {:g})",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model folder or hub id")
    source.add_argument("--onnx", help="folder written by `gemo-clap export-onnx` (onnxruntime, no torch)")
    parser.add_argument("files", nargs="*", help="audio files, or folders searched recursively for audio files")
    parser.add_argument(
        "--labels", help="comma-separated candidate labels (default: the model's emotions; --onnx: the exported ones)"
    )
    parser.add_argument("--template", help="prompt template with {} (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per audio-tower call")
    parser.add_argument(
        "--segmentation",
        choices=SEGMENTATIONS,
        help="vad: speech spans scored whole for the file's scores, windows inside speech for its timeline (the "
        "default); fixed: chunks over the whole signal (the default with --segment-seconds)",
    )
    parser.add_argument(
        "--segment-seconds",
        type=float,
        help="--segmentation fixed: chunk length, the pipeline's chunk_length_s (default: the model's maximum)",
    )
    defaults = TimelineSettings()
    for flag, (keyword, text) in TIMELINE_OPTIONS.items():
        parser.add_argument(flag, type=float, help="--segmentation vad: " + text.format(getattr(defaults, keyword)))
    parser.add_argument("--format", choices=FORMATS, help="print (or with --output-dir write) each timeline so")
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument("--output-dir", type=Path, help="write one result per file and summary.csv here")
    parser.add_argument("--embeddings", action="store_true", help="with --output-dir: audio embeddings as .npz")
    parser.add_argument("--plot", action="store_true", help="with --output-dir: a PNG of each timeline")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="run the checkpoint's own code (as transformers does)"
    )
    live = parser.add_argument_group("live audio")
    live.add_argument(
        "--stream",
        metavar="SOURCE",
        help="'-': follow live audio on standard input (or SOURCE, a named pipe): a WAV stream, or raw 16-bit mono "
        "PCM with --sampling-rate; prints one JSON line per event, flushed as it is decided",
    )
    live.add_argument(
        "--sampling-rate", type=int, metavar="HZ", help="--stream: the rate of raw PCM input (a WAV says its own)"
    )
    live.add_argument(
        "--stall-seconds",
        type=float,
        metavar="SECONDS",
        default=STALL_SECONDS,
        help="--stream: no input for this long ends the stream, flushing the open segment (default %(default)g; "
        "0: wait forever)",
    )


def find_inputs(paths: list[str]) -> list[tuple[str, str]]:
    """(audio path, its result's name under --output-dir) of each input: a file as given (named by its file name),
    or every audio file under a folder, recursively and sorted (named by its path inside the folder)."""
    if not paths:
        raise ValueError("give audio files or folders, or --stream - for live audio on standard input")
    found = []
    for given in paths:
        if os.path.isdir(given):
            folder = Path(given)
            files = sorted(
                path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS
            )
            if not files:
                raise ValueError(f"no audio files in {folder} (searched recursively for {', '.join(AUDIO_EXTENSIONS)})")
            found += [(str(path), path.relative_to(folder).as_posix()) for path in files]
        else:
            found.append((given, Path(given).name))
    return found


def result_files(output_dir: Path, name: str, fmt: str | None, embeddings: bool, plot: bool) -> dict[str, Path]:
    """The files one input's result is written to (the JSON last: its presence marks the input as finished)."""
    base = output_dir / name
    files = {}
    if fmt not in (None, "json"):
        files[fmt] = base.with_name(f"{base.name}.{fmt}")
    if embeddings:
        files["embeddings"] = base.with_name(f"{base.name}.embeddings.npz")
    if plot:
        files["plot"] = base.with_name(f"{base.name}.png")
    files["json"] = base.with_name(f"{base.name}.json")
    return files


def _timeline_options(args: argparse.Namespace) -> dict:
    """The timeline options given on the command line, as the pipeline's keywords."""
    values = {keyword: getattr(args, flag[2:].replace("-", "_")) for flag, (keyword, _) in TIMELINE_OPTIONS.items()}
    return {keyword: value for keyword, value in values.items() if value is not None}


def _options(args: argparse.Namespace, labels: list[str] | None, return_gender: bool) -> dict:
    options = {
        "candidate_labels": labels,
        "hypothesis_template": args.template,
        "return_gender": return_gender,
        "segmentation": args.segmentation or ("fixed" if args.segment_seconds is not None else "vad"),
        "return_timestamps": args.plot,
        "return_embeddings": args.embeddings,
        **_timeline_options(args),
    }
    if args.segment_seconds is not None:
        options["chunk_length_s"] = args.segment_seconds
    return options


@contextmanager
def _named_as_flags() -> Iterator[None]:
    """Bad options are a usage error, named as the command line names them."""
    try:
        yield
    except ValueError as error:
        message = str(error).replace("chunk_length_s", "--segment-seconds").replace("candidate_labels", "--labels")
        message = message.replace("hypothesis_template", "--template")
        for flag, (keyword, _) in TIMELINE_OPTIONS.items():
            message = message.replace(keyword, flag)
        raise ValueError(message.replace("segmentation=", "--segmentation ")) from error


def _check_usage(args: argparse.Namespace, fmt: str | None, inputs: list[tuple[str, str]]) -> None:
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.sampling_rate is not None:
        raise ValueError("--sampling-rate applies to --stream (raw PCM on standard input); files say their own")
    if (args.embeddings or args.plot) and args.output_dir is None:
        raise ValueError("--embeddings and --plot write files: give --output-dir")
    if args.output_dir is None:
        if fmt in ("srt", "vtt") and len(inputs) != 1:
            raise ValueError(f"--format {fmt} prints the subtitles of one file: give one file, or --output-dir")
        return
    check_folder_path(args.output_dir, "--output-dir")
    owners: dict[str, str] = {}
    for path, name in inputs:
        if name in owners and owners[name] != path:
            raise ValueError(f"{owners[name]} and {path} would both write {args.output_dir / name}.*: run them apart")
        owners[name] = path


def _load(args: argparse.Namespace):
    """(the pipeline or the ONNX runner, whether it scores gender, its sampling rate)."""
    if args.onnx is not None:
        classifier = load_onnx_runner(args.onnx, args.trust_remote_code)
        return classifier, classifier.gender_labels is not None, classifier.sampling_rate
    classifier = load_classifier(args.model, args.trust_remote_code)
    return classifier, classifier.model.config.has_gender_prompts, classifier.processor.sampling_rate


def run(args: argparse.Namespace) -> int:
    labels = parse_labels(args.labels)
    if args.stream is not None:
        return run_stream(args, labels)
    fmt = args.format or ("json" if args.json else None)
    inputs = find_inputs(args.files)
    _check_usage(args, fmt, inputs)
    classifier, return_gender, rate = _load(args)
    options = _options(args, labels, return_gender)
    with _named_as_flags():  # bad options are a usage error, before any file
        classifier.check_options(**options)

    rows, printed, failures, skipped = [], [], [], 0
    for path, name in inputs:
        files = result_files(args.output_dir, name, fmt, args.embeddings, args.plot) if args.output_dir else {}
        if files and all(target.is_file() for target in files.values()):
            result = json.loads(files["json"].read_text())
            rows.append(summary_row(result, path, "skipped: already finished"))
            skipped += 1
            continue
        try:
            result, output = predict_file(classifier, path, args.batch_size, **options)
        except ValueError as error:
            problem = error.__cause__ if isinstance(error.__cause__, AudioDecodeError) else None
            reason = problem.phrase if problem else str(error)
            print(f"{path}: error: {reason}", file=sys.stderr)
            failures.append((path, reason))
            rows.append(summary_row(None, path, "error", reason))
            continue
        rows.append(summary_row(result, path, "done"))
        if files:
            write_results(files, result, output, path, rate)
        elif fmt == "csv":
            printed.append(result)
        elif fmt is not None:
            print(render(result, fmt), end="" if fmt == "rttm" else "\n")
        else:
            print(describe(result))
    if fmt == "csv" and printed:
        print(to_csv(printed), end="")
    if args.output_dir is not None:
        with atomic_path(args.output_dir / SUMMARY_FILE) as staged:
            staged.write_text(summary_csv(rows))
    if len(inputs) > 1 or args.output_dir is not None:
        done = len(inputs) - skipped - len(failures)
        print(
            f"predict: {len(inputs)} file(s): {done} done, {skipped} already finished, {len(failures)} could not "
            "be used" + "".join(f"\n  {path}: {reason}" for path, reason in failures),
            file=sys.stderr,
        )
    return 2 if inputs and len(failures) == len(inputs) else 0  # bad input, as every command's


def _check_stream_usage(args: argparse.Namespace) -> None:
    if args.files:
        raise ValueError("--stream follows live audio: give no files")
    for flag, given in (
        ("--output-dir", args.output_dir is not None),
        ("--format", args.format is not None),
        ("--json", args.json),
        ("--embeddings", args.embeddings),
        ("--plot", args.plot),
        ("--segment-seconds", args.segment_seconds is not None),
    ):
        if given:
            raise ValueError(f"{flag} applies to files; --stream prints one JSON line per event")
    if args.segmentation == "fixed":
        raise ValueError("--stream follows speech as it comes: --segmentation vad only")
    if args.sampling_rate is not None and args.sampling_rate < 1:
        raise ValueError(f"--sampling-rate must be a positive number of Hz, got {args.sampling_rate}")
    if args.stall_seconds < 0:
        raise ValueError(f"--stall-seconds must be >= 0 (0: wait forever), got {args.stall_seconds:g}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")


def _print_events(events: list[dict]) -> None:
    """One JSON line per event (times rounded to ms), flushed at once: a reader of the pipe sees it now."""
    for event in events:
        print(json.dumps({**event, "start": round(event["start"], 3), "end": round(event["end"], 3)}), flush=True)


def run_stream(args: argparse.Namespace, labels: list[str] | None) -> int:
    """`--stream SOURCE`: the events of live audio as JSON lines until the end of the input, a stall, Ctrl-C or
    SIGTERM, each of which flushes the open segment and exits 0 (as does a reader closing the pipe)."""
    _check_stream_usage(args)
    reader = InputReader(sys.stdin.buffer if args.stream == "-" else open(args.stream, "rb"))  # noqa: SIM115
    classifier, return_gender, _ = _load(args)  # the input is being read (and kept) meanwhile
    options = {
        "candidate_labels": labels,
        "hypothesis_template": args.template,
        "return_gender": return_gender,
        "batch_size": args.batch_size,
        **_timeline_options(args),
    }
    with _named_as_flags():  # bad options are a usage error, before any audio is used
        classifier.stream(**options)
    decoder, stream, seconds = PcmDecoder(args.sampling_rate), None, 0.0
    try:
        with deferred_interrupts() as stopped:
            try:
                for data in reader.blocks(args.stall_seconds, stopped):
                    samples = decoder.feed(data)
                    if decoder.rate is None:
                        continue
                    stream = stream or classifier.stream(sampling_rate=decoder.rate, **options)
                    seconds += samples.size / decoder.rate
                    _print_events(stream.push(samples))
                    if decoder.done:
                        reader.ending = "end of the WAV data"
                        break
                note = decoder.finish()
            finally:  # whatever ends the stream (even bad input), what was decided is printed
                if stream is not None:
                    _print_events(stream.close())
    except BrokenPipeError:  # the reader of our output is gone: nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    print(
        f"predict: stream ended ({reader.ending}) after {seconds:.2f} s of audio" + (f"; {note}" if note else ""),
        file=sys.stderr,
    )
    return 0


def describe(result: dict) -> str:
    """One line per file: the overall emotion, gender, duration, speech and segment count."""
    gender = f"  gender {result['gender']}" if result.get("gender") else ""
    sizes = (
        f"[{result['duration']:.1f} s, {result['speech_seconds']:.1f} s speech, {len(result['segments'])} segment(s)]"
    )
    best = result["scores"][0]
    label = f"{best['label']} ({best['score']:.2f}){gender}"
    if not result["speech"]:
        return f"{result['file']}: no speech (scored whole: {label})  {sizes}"
    return f"{result['file']}: {label}  {sizes}"
