"""The file tab of `gemo-clap app`: check an uploaded or recorded file, run the served model on it and make what the
tab shows (overall scores, gender, the timeline picture, the segment table) and offers (JSON, CSV, SRT downloads,
named after the upload as `predict --output-dir` names them). Gradio-free: bad input is a one-line `ValueError`
that the UI shows."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..modeling.audio_gemo_clap import MIN_SECONDS, AudioDecodeError, file_duration
from ..modeling.vad_gemo_clap import VAD_SAMPLING_RATE
from ..timeline.result import write_results
from .model import ServedModel

DEFAULT_MAX_SECONDS = 600.0  # longest file the app takes (`--max-seconds`)
DOWNLOADS = ("json", "csv", "srt")
TABLE_HEADERS = ["start (s)", "end (s)", "emotion", "score", "gender"]


def minutes(seconds: float) -> str:
    """`m:ss` of a duration."""
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def check_upload(path: str | None, max_seconds: float) -> float:
    """The duration (s) of an upload or recording the app can analyse; `ValueError` with one line saying what is
    wrong otherwise (nothing given, not audio, empty, shorter than 0.1 s, longer than `max_seconds`)."""
    if not path:
        raise ValueError("no audio: upload a file or record from the microphone first")
    name = Path(path).name
    try:
        frames, rate = file_duration(path)
    except AudioDecodeError:
        raise ValueError(f"{name} is not a readable audio file (WAV, FLAC, OGG, MP3, ...)") from None
    if frames == 0:
        raise ValueError(f"{name} is empty: it holds no audio")
    seconds = frames / rate
    if seconds < MIN_SECONDS:
        raise ValueError(f"{name} lasts {seconds:.3f} s, shorter than {MIN_SECONDS:g} s: too short to hold speech")
    if seconds > max_seconds:
        raise ValueError(f"{name} lasts {minutes(seconds)}, longer than this app's limit of {minutes(max_seconds)}")
    return seconds


class ResultFolders:
    """One folder per analysis for its downloads and picture, under one temporary root; Gradio copies what a request
    returns into its own cache, so folders older than `keep_s` are removed as new ones are made."""

    def __init__(self, keep_s: float = 3600.0):
        self.root = Path(tempfile.mkdtemp(prefix="gemo-clap-app-"))
        self.keep_s = keep_s
        atexit.register(shutil.rmtree, self.root, ignore_errors=True)

    def new(self) -> Path:
        now = time.time()
        for old in self.root.iterdir():
            if now - old.stat().st_mtime > self.keep_s:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.root))


@dataclass
class FileAnalysis:
    """What the file tab shows of one file."""

    result: dict  # the `predict --format json` result
    scores: dict[str, float] | str  # gr.Label's value: label -> score, or "no speech detected"
    gender: dict[str, float] | None
    picture: Path  # the timeline PNG
    table: list[list]  # TABLE_HEADERS rows, one per segment
    downloads: list[Path]


def segment_rows(segments: list[dict], with_gender: bool) -> list[list]:
    """The segment table's rows (`TABLE_HEADERS`, without the gender column for models without gender)."""
    rows = [[round(s["start"], 2), round(s["end"], 2), s["label"], round(s["score"], 3)] for s in segments]
    return [row + [s["gender"]] for row, s in zip(rows, segments)] if with_gender else rows


def analyse_file(
    served: ServedModel,
    path: str | None,
    labels: str | None,
    template: str | None,
    folders: ResultFolders,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    progress: Callable[..., None] = lambda *args, **kwargs: None,
) -> FileAnalysis:
    """Analyse one upload; `progress(fraction, desc=...)` is told how far it got (Gradio's `gr.Progress`)."""
    seconds = check_upload(path, max_seconds)
    label_list, template = served.resolve(labels, template)
    total = seconds * VAD_SAMPLING_RATE
    progress(0.0, desc="finding speech and scoring windows")
    result, output = served.analyse(
        path, label_list, template, lambda samples: progress(0.9 * min(samples / total, 1.0), desc="scoring")
    )
    name = Path(path).name
    result["file"] = name
    folder = folders.new()
    files = {"csv": folder / f"{name}.csv", "srt": folder / f"{name}.srt", "plot": folder / f"{name}.png"}
    files["json"] = folder / f"{name}.json"  # written last, as `predict` does
    progress(0.9, desc="drawing the timeline")
    write_results(files, result, output, path, served.sampling_rate)
    best = {entry["label"]: entry["score"] for entry in result["scores"]}
    gender = {entry["label"]: entry["score"] for entry in result.get("gender_scores") or []}
    return FileAnalysis(
        result=result,
        scores=best if result["speech"] else "no speech detected",
        gender=gender or None,
        picture=files["plot"],
        table=segment_rows(result["segments"], served.gender_labels is not None),
        downloads=[files[kind] for kind in DOWNLOADS],
    )
