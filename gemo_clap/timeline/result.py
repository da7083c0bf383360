"""One file's emotion timeline as `gemo-clap predict` and the app give it: the JSON result of the pipeline's (or the
ONNX runner's) output, and the files it is written to (the export formats, embeddings, the picture), each atomically
and the JSON last."""

from __future__ import annotations

from pathlib import Path

from ..modeling.audio_gemo_clap import file_duration
from ..processing.atomic import atomic_path
from .exports import render

NO_SPEECH_NOTE = "no speech detected: the whole file was scored"


def predict_file(classifier, path: str, batch_size: int, **call_kwargs) -> tuple[dict, dict]:
    """(the JSON result of one file, the pipeline's full output): `file`, `duration`, `speech`, `speech_seconds`,
    `scores`, `segments` (times rounded to ms), and `gender`/`gender_scores` when gender is asked."""
    output = classifier(path, batch_size=batch_size, return_segments=True, **call_kwargs)
    if not isinstance(output, dict) or "segments" not in output:  # a checkpoint's own code from before timelines
        raise ValueError("this pipeline returns no emotion timeline (segments): run without --trust-remote-code")
    frames, rate = file_duration(path)
    segments = [{**s, "start": round(s["start"], 3), "end": round(s["end"], 3)} for s in output["segments"]]
    result = {
        "file": path,
        "duration": round(frames / rate, 3),
        "speech": output["speech"],
        "speech_seconds": round(sum(s["end"] - s["start"] for s in output["segments"]), 3),
        "scores": output["scores"],
        "segments": segments,
    }
    if "gender" in output:
        result["gender"] = output["gender"][0]["label"] if output["gender"] else None
        result["gender_scores"] = output["gender"]
    if not output["speech"]:
        result["note"] = NO_SPEECH_NOTE
    return result, output


def write_results(files: dict[str, Path], result: dict, output: dict, audio_path: str, rate: int) -> None:
    """Write one input's files, each atomically, the JSON last."""
    import numpy as np

    for kind, path in files.items():
        with atomic_path(path) as staged, open(staged, "wb") as handle:
            if kind == "embeddings":
                embeddings = output["embeddings"]
                spans = np.asarray([(s["start"], s["end"]) for s in result["segments"]], dtype=np.float64)
                np.savez(
                    handle,
                    file_embedding=embeddings["file"] if embeddings["file"] is not None else np.zeros(0, np.float32),
                    segment_embeddings=embeddings["segments"],
                    segment_spans=spans.reshape(-1, 2),
                    window_embeddings=embeddings["windows"],
                    window_spans=embeddings["window_spans"],
                )
            elif kind == "plot":
                from .plot import plot_timeline

                plot_timeline({**result, "chunks": output.get("chunks", [])}, audio_path, handle, rate)
            else:
                handle.write((render(result, kind) + ("\n" if kind == "json" else "")).encode())  # a text file's end
