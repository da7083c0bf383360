"""A picture of a file's emotion timeline (`gemo-clap predict --plot`): the waveform's envelope with the emotion
segments coloured and non-speech shaded, each emotion's score over time, the segments as a lane of labelled bars
and, for checkpoints trained with gender prompts, a gender lane. Readable for long files: the envelope is computed
in blocks (memory flat in file length) and the time axis is in minutes:seconds. Torch-free (matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..modeling.audio_gemo_clap import audio_blocks

EMOTION_COLOURS = {  # the usual emotions keep one colour in every picture; other labels take tab10's
    "angry": "#d62728",
    "happy": "#ff9f1c",
    "sad": "#1f77b4",
    "neutral": "#7f7f7f",
    "fear": "#9467bd",
    "disgust": "#2ca02c",
    "surprise": "#e377c2",
    "calm": "#17becf",
    "bored": "#8c564b",
}
GENDER_COLOURS = {"female": "#c51b7d", "male": "#4d9221"}
NON_SPEECH = "#e6e6e6"


def colours(labels: Sequence[str], known: dict[str, str] = EMOTION_COLOURS) -> dict[str, str]:
    """One colour per label: the fixed ones above, then tab10's in order."""
    spare = iter(c for c in ("#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5") if c not in known)
    return {label: known.get(label) or next(spare, "#333333") for label in labels}


def envelope(path: str | os.PathLike, sampling_rate: int, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres in seconds, peak absolute amplitude per bin of `step_s`) of an audio file, read in blocks."""
    step = max(1, round(step_s * sampling_rate))
    peaks, leftover = [], np.zeros(0, dtype=np.float32)
    for block in audio_blocks(path, sampling_rate):
        block = np.concatenate([leftover, np.abs(block)])
        whole = block.size // step * step
        peaks.append(block[:whole].reshape(-1, step).max(axis=1))
        leftover = block[whole:]
    if leftover.size:
        peaks.append(leftover.max(keepdims=True))
    values = np.concatenate(peaks) if peaks else np.zeros(0, dtype=np.float32)
    return (np.arange(values.size) + 0.5) * step / sampling_rate, values


def _minutes(seconds: float, _position=None) -> str:
    """`m:ss` (`m:ss.s` for times between whole seconds)."""
    if abs(seconds - round(seconds)) < 1e-6:
        return f"{round(seconds) // 60}:{round(seconds) % 60:02d}"
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def score_curves(
    chunks: Sequence[dict], labels: Sequence[str], duration: float, points: int = 4000
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(grid of times, {label: score at each time}): on an even grid over the file, the mean score of the windows
    covering each time (as the timeline averages them), NaN where no window is."""
    grid = (np.arange(points) + 0.5) * duration / points
    sums, counts = np.zeros((len(labels), points)), np.zeros(points)
    for chunk in chunks:
        start, end = chunk["timestamp"]
        inside = slice(int(np.searchsorted(grid, start)), int(np.searchsorted(grid, end)))
        scores = {entry["label"]: entry["score"] for entry in chunk["scores"]}
        sums[:, inside] += np.array([scores[label] for label in labels])[:, None]
        counts[inside] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    return grid, dict(zip(labels, means))


def _tick_spacing(duration: float) -> float:
    """A round tick spacing (seconds) giving about 10 to 20 ticks."""
    for spacing in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if duration / spacing <= 20:
            return spacing
    return 7200


def _lane(axis, segments: Sequence[dict], key: str, palette: dict[str, str], duration: float, title: str) -> None:
    """Labelled horizontal bars, one per segment, coloured by `segment[key]`; the label written where it fits."""
    axis.set_ylim(0, 1)
    axis.set_yticks([])
    axis.set_ylabel(title, rotation=0, ha="right", va="center")
    fits = duration / 60  # a label needs about 1/60 of the width
    for segment in segments:
        start, end, value = segment["start"], segment["end"], segment[key]
        axis.broken_barh([(start, end - start)], (0.1, 0.8), color=palette.get(value, "#333333"))
        if end - start >= fits * max(len(value), 3) / 5:
            axis.text((start + end) / 2, 0.5, value, ha="center", va="center", fontsize=7, color="white", clip_on=True)


def plot_timeline(result: dict, audio_path: str | os.PathLike, destination, sampling_rate: int) -> None:
    """Write the PNG of one `predict` result (with its windows' scores in `result["chunks"]`) to `destination` (a
    path or a binary file)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    duration = max(float(result["duration"]), 1e-3)
    segments = result["segments"]
    labels = [entry["label"] for entry in sorted(result["scores"], key=lambda e: e["label"])] or sorted(
        {s["label"] for s in segments}
    )
    palette = colours(labels)
    with_gender = any("gender" in segment for segment in segments)
    rows = [2.2, 2.0, 0.5] + ([0.4] if with_gender else [])
    figure, axes = plt.subplots(
        len(rows), 1, figsize=(16, 1.0 + sum(rows)), sharex=True, gridspec_kw={"height_ratios": rows, "hspace": 0.08}
    )
    times, peaks = envelope(audio_path, sampling_rate, step_s=max(duration / 4000, 0.01))

    speech = [(s["start"], s["end"]) for s in segments]
    gaps = [(end, start) for (_, end), (start, _) in zip([(0.0, 0.0), *speech], [*speech, (duration, duration)])]
    for axis in axes:
        for start, end in gaps:
            if end > start:
                axis.axvspan(start, end, color=NON_SPEECH, zorder=0, lw=0)

    wave = axes[0]
    wave.fill_between(times, -peaks, peaks, color="#404040", lw=0, zorder=2)
    for segment in segments:
        wave.axvspan(segment["start"], segment["end"], color=palette.get(segment["label"]), alpha=0.35, lw=0, zorder=1)
    limit = float(peaks.max()) * 1.05 if peaks.size and peaks.max() > 0 else 1.0
    wave.set_ylim(-limit, limit)
    wave.set_yticks([])
    wave.set_ylabel("waveform", rotation=0, ha="right", va="center")

    curves = axes[1]
    grid, curves_by_label = score_curves(result.get("chunks") or [], labels, duration)
    lower = np.zeros(grid.size)
    for label in labels:  # stacked (the scores sum to 1); NaN (no window) leaves a gap
        upper = lower + curves_by_label[label]
        curves.fill_between(grid, lower, upper, color=palette[label], lw=0, alpha=0.85)
        lower = upper
    curves.set_ylim(0, 1)
    curves.set_ylabel("scores\n(stacked)", rotation=0, ha="right", va="center")
    curves.grid(axis="y", alpha=0.3)

    _lane(axes[2], segments, "label", palette, duration, "emotion")
    if with_gender:
        _lane(axes[3], segments, "gender", GENDER_COLOURS, duration, "gender")

    axes[-1].set_xlim(0, duration)
    axes[-1].xaxis.set_major_locator(MultipleLocator(_tick_spacing(duration)))
    axes[-1].xaxis.set_major_formatter(FuncFormatter(_minutes))
    axes[-1].set_xlabel("time (min:s)")
    handles = [Patch(color=palette[label], label=label) for label in labels]
    if with_gender:
        genders = sorted({s["gender"] for s in segments})
        handles += [Patch(color=GENDER_COLOURS.get(g, "#333333"), label=g) for g in genders]
    handles.append(Patch(color=NON_SPEECH, label="no speech"))
    best = f"{result['scores'][0]['label']} {result['scores'][0]['score']:.2f}" if result["scores"] else "no speech"
    figure.legend(handles=handles, loc="upper right", ncol=len(handles), frameon=False, fontsize=9)
    figure.suptitle(
        f"{os.path.basename(str(result['file']))}: {best}  ({_minutes(duration)}, "
        f"{result['speech_seconds']:.1f} s speech, {len(segments)} segment{'' if len(segments) == 1 else 's'})",
        x=0.01,
        ha="left",
        fontsize=11,
    )
    figure.savefig(destination, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
