"""A file's emotion timeline (one `gemo-clap predict` result) as text: JSON, CSV, SubRip (.srt) and WebVTT subtitles
that any player shows, RTTM for diarization tools (the emotion in the speaker field), and the summary CSV of a run.
Torch-free: `predict --onnx` uses it."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable

FORMATS = ("json", "csv", "srt", "vtt", "rttm")
SEGMENT_COLUMNS = ("file", "start", "end", "label", "score", "gender")
SUMMARY_COLUMNS = ("file", "status", "duration", "speech_seconds", "segments", "label", "score", "gender", "error")


def clock(seconds: float, decimal: str) -> str:
    """`HH:MM:SS<decimal>mmm` (SubRip uses a comma, WebVTT a full stop)."""
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{decimal}{rest % 1000:03d}"


def caption(segment: dict) -> str:
    """A segment's subtitle text: `angry 0.82` (and `, female` for checkpoints trained with gender prompts)."""
    text = f"{segment['label']} {segment['score']:.2f}"
    return text + (f", {segment['gender']}" if segment.get("gender") else "")


def to_json(result: dict) -> str:
    return json.dumps(result)


def to_srt(result: dict) -> str:
    cues = [
        f"{index}\n{clock(s['start'], ',')} --> {clock(s['end'], ',')}\n{caption(s)}\n"
        for index, s in enumerate(result["segments"], start=1)
    ]
    return "\n".join(cues)


def to_vtt(result: dict) -> str:
    cues = [f"{clock(s['start'], '.')} --> {clock(s['end'], '.')}\n{caption(s)}\n" for s in result["segments"]]
    return "\n".join(["WEBVTT\n", *cues])


def rttm_id(path: str) -> str:
    """A file's RTTM id: its name without the extension, whitespace replaced (RTTM fields are space-separated)."""
    name = re.split(r"[\\/]", path)[-1].rsplit(".", 1)[0]
    return re.sub(r"\s+", "_", name) or "audio"


def to_rttm(result: dict) -> str:
    """One `SPEAKER <file> 1 <start> <duration> <NA> <NA> <emotion> <NA> <NA>` line per segment."""
    file_id = rttm_id(result["file"])
    return "".join(
        f"SPEAKER {file_id} 1 {s['start']:.3f} {s['end'] - s['start']:.3f} <NA> <NA> {s['label']} <NA> <NA>\n"
        for s in result["segments"]
    )


def to_csv(results: Iterable[dict]) -> str:
    """One row per segment of every result: `file,start,end,label,score,gender` (gender empty without gender
    prompts)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SEGMENT_COLUMNS)
    for result in results:
        for s in result["segments"]:
            writer.writerow(
                [result["file"], s["start"], s["end"], s["label"], f"{s['score']:.6f}", s.get("gender", "")]
            )
    return buffer.getvalue()


def render(result: dict, fmt: str) -> str:
    """One result in `fmt` (one of `FORMATS`)."""
    writers = {"json": to_json, "srt": to_srt, "vtt": to_vtt, "rttm": to_rttm, "csv": lambda r: to_csv([r])}
    return writers[fmt](result)


def summary_row(result: dict | None, file: str, status: str, error: str = "") -> dict:
    """A summary CSV row: the file's overall emotion (and gender), durations and segment count, or its error."""
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(file=file, status=status, error=error)
    if result is not None:
        best = result["scores"][0] if result["scores"] else {"label": "", "score": ""}
        row.update(
            duration=result["duration"],
            speech_seconds=result["speech_seconds"],
            segments=len(result["segments"]),
            label=best["label"] if result["speech"] else "no speech",
            score=f"{best['score']:.6f}" if result["scores"] else "",
            gender=result.get("gender") or "",
        )
    return row


def summary_csv(rows: Iterable[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
