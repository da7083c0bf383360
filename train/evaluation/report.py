"""Cross-validation reports: ``results.json``, a markdown table ``results.md`` and confusion-matrix PNGs.

A fold result is the output of the SER metric (``train/metrics/ser_metrics.py``) plus a ``"fold"`` id, e.g.
``{"fold": "03", "war": 0.81, "uar": 0.79, "macro_f1": 0.78, "confusion_matrix": [[...]], "per_gender": {...}}``.
Standard deviations are population standard deviations over folds (``numpy.std``, ``ddof=0``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .metrics.ser_metrics import GENDER_SCORES, SCORE_TITLES, SCORES


def _mean_std(values: Sequence[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": [float(v) for v in values]}


def percent(value: float | dict | Sequence[float], digits: int = 2) -> str:
    """A score in percent: one value ("81.25"), or a mean and standard deviation ("81.25 ± 3.10") from a summary
    (`{"mean", "std"}`) or from the values themselves (population std). The one format of every report and table."""
    if isinstance(value, dict):
        mean, std = value["mean"], value["std"]
    elif isinstance(value, (int, float)):
        return f"{100 * value:.{digits}f}"
    else:
        mean, std = float(np.mean(value)), float(np.std(value))
    return f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f}"


def _check_fold(result: dict, index: int) -> None:
    missing = [key for key in ("fold", *SCORES, "confusion_matrix") if key not in result]
    if missing:
        raise ValueError(f"fold result #{index} (fold={result.get('fold')!r}) lacks {missing}")


def summarize_folds(fold_results: Sequence[dict]) -> dict:
    """Mean/std over folds of WAR, UAR, macro-F1 and per-gender WAR/UAR, plus the confusion matrix summed over folds.

    Returns ``{"num_folds", "folds", "war": {"mean", "std", "values"}, "uar": ..., "macro_f1": ...,
    "per_gender": {gender: {"war": {...}, "uar": {...}}}, "confusion_matrix": [[...]]}``; a gender is summarised
    over the folds that report it.
    """
    if not fold_results:
        raise ValueError("summarize_folds: no fold results given")
    for index, result in enumerate(fold_results):
        _check_fold(result, index)
    shapes = {np.shape(result["confusion_matrix"]) for result in fold_results}
    if len(shapes) != 1:
        raise ValueError(f"summarize_folds: folds have confusion matrices of different shapes {sorted(shapes)}")

    summary = {
        "num_folds": len(fold_results),
        "folds": [result["fold"] for result in fold_results],
        **{score: _mean_std([result[score] for result in fold_results]) for score in SCORES},
    }
    genders = sorted({gender for result in fold_results for gender in result.get("per_gender", {})})
    summary["per_gender"] = {}
    for gender in genders:
        reported = [result["per_gender"][gender] for result in fold_results if gender in result.get("per_gender", {})]
        summary["per_gender"][gender] = {score: _mean_std([r[score] for r in reported]) for score in GENDER_SCORES}
    gaps = [result["gender_gap"] for result in fold_results if "gender_gap" in result]
    if gaps:
        summary["gender_gap"] = {score: _mean_std([gap[score] for gap in gaps]) for score in GENDER_SCORES}
    accuracies = [result["gender_accuracy"] for result in fold_results if "gender_accuracy" in result]
    if accuracies:
        summary["gender_accuracy"] = _mean_std(accuracies)
    seeds = sorted({result["seed"] for result in fold_results if "seed" in result})
    if seeds:  # several seeds: the spread of the per-seed means, beside the spread over every run
        means = {seed: [r for r in fold_results if r.get("seed") == seed] for seed in seeds}
        summary["seeds"] = seeds
        summary["over_seeds"] = {
            score: _mean_std([float(np.mean([r[score] for r in runs])) for runs in means.values()]) for score in SCORES
        }
    summary["confusion_matrix"] = np.sum([result["confusion_matrix"] for result in fold_results], axis=0).tolist()
    return summary


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(first: str, genders: Sequence[str], gaps: bool, gender_accuracy: bool) -> list[str]:
    titles = [first, *(f"{SCORE_TITLES[score]} (%)" for score in SCORES)]
    titles += [f"{SCORE_TITLES[score]} {gender} (%)" for gender in genders for score in GENDER_SCORES]
    titles += [f"gender gap {SCORE_TITLES[score]} (pts)" for score in GENDER_SCORES] if gaps else []
    titles += ["gender accuracy (%)"] if gender_accuracy else []
    return [_row(titles), _row(["---"] * len(titles))]


def _run_name(result: dict) -> str:
    return f"seed {result['seed']}, fold {result['fold']}" if "seed" in result else str(result["fold"])


def markdown_table(fold_results_by_variant: dict[str, Sequence[dict]], protocol: Sequence[str] = ()) -> str:
    """Markdown report: the protocol (lines of `protocol`, if any), one summary row per variant (mean ± std over
    folds, or over seeds x folds, in %), then a per-run table per variant.

    Gender columns appear when any fold reports ``per_gender`` (a fold without a gender shows ``–``), gender-gap
    columns (absolute WAR and UAR difference between the genders, in points) when any reports ``gender_gap``, and a
    gender-accuracy column when any reports ``gender_accuracy`` (variants with gender prompts).
    """
    summaries = {variant: summarize_folds(results) for variant, results in fold_results_by_variant.items()}
    genders = sorted({gender for summary in summaries.values() for gender in summary["per_gender"]})
    gaps = any("gender_gap" in summary for summary in summaries.values())
    gender_accuracy = any("gender_accuracy" in summary for summary in summaries.values())

    def gender_cells(entry: dict, cell) -> list[str]:
        per_gender = entry.get("per_gender", {})
        cells = [cell(per_gender[g][s]) if g in per_gender else "–" for g in genders for s in GENDER_SCORES]
        if gaps:
            cells += [cell(entry["gender_gap"][s]) if "gender_gap" in entry else "–" for s in GENDER_SCORES]
        if gender_accuracy:
            cells.append(cell(entry["gender_accuracy"]) if "gender_accuracy" in entry else "–")
        return cells

    seeded = any("seeds" in summary for summary in summaries.values())
    spread = "seeds x folds" if seeded else "folds"
    lines = ["# Cross-validation results", ""]
    lines += [*(f"- {line}" for line in protocol), ""] if protocol else []
    lines += [f"Mean ± standard deviation over {spread} (population std, ddof=0).", ""]
    lines += _header("Variant", genders, gaps, gender_accuracy)
    for variant, summary in summaries.items():
        runs = (
            f"{len(summary['seeds'])} seeds x {summary['num_folds'] // len(summary['seeds'])} folds"
            if "seeds" in summary
            else f"{summary['num_folds']} folds"
        )
        cells = [f"{variant} ({runs})", *(percent(summary[score]) for score in SCORES)]
        lines.append(_row(cells + gender_cells(summary, percent)))
    if seeded:
        lines += ["", "Spread of the per-seed means (std over seeds):", ""]
        lines += [_row(["Variant", *(f"{SCORE_TITLES[score]} (%)" for score in SCORES)]), _row(["---"] * 4)]
        for variant, summary in summaries.items():
            if "over_seeds" in summary:
                lines.append(_row([variant, *(percent(summary["over_seeds"][score]) for score in SCORES)]))

    for variant, results in fold_results_by_variant.items():
        lines += ["", f"## {variant}", ""]
        lines += _header("Fold", genders, gaps, gender_accuracy)
        for result in results:
            cells = [_run_name(result), *(percent(result[score]) for score in SCORES)]
            lines.append(_row(cells + gender_cells(result, percent)))
        summary = summaries[variant]
        cells = ["mean ± std", *(percent(summary[score]) for score in SCORES)]
        lines.append(_row(cells + gender_cells(summary, percent)))
    return "\n".join(lines) + "\n"


def confusion_matrix_figsize(num_labels: int) -> tuple[float, float]:
    """Figure size in inches (width, height) of a confusion-matrix plot with ``num_labels`` classes."""
    return 2.5 + 0.8 * num_labels, 2.0 + 0.8 * num_labels


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], label_names: Sequence[str], path: str | Path, *, title: str = "", dpi: int = 100
) -> Path:
    """Save a row-normalised confusion matrix (rows = reference, columns = prediction) as a PNG.

    Each cell shows the percentage of its reference class and the count; classes without references show 0%.
    """
    counts = np.asarray(matrix, dtype=np.int64)
    if counts.shape != (len(label_names), len(label_names)):
        raise ValueError(f"confusion matrix of shape {counts.shape} does not match {len(label_names)} label names")
    support = counts.sum(axis=1, keepdims=True)
    percent = 100 * np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)

    figure = Figure(figsize=confusion_matrix_figsize(len(label_names)), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    image = axes.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    figure.colorbar(image, ax=axes, label="% of reference class")
    for (row, column), value in np.ndenumerate(percent):
        color = "white" if value > 50 else "black"
        label = f"{value:.1f}%\n({counts[row, column]})"
        axes.text(column, row, label, ha="center", va="center", color=color, fontsize=8)
    ticks = np.arange(len(label_names))
    axes.set_xticks(ticks, label_names, rotation=45, ha="right")
    axes.set_yticks(ticks, label_names)
    axes.set_xlabel("Predicted")
    axes.set_ylabel("Reference")
    axes.set_title(title)
    path = Path(path)
    figure.savefig(path, format="png")
    return path


def _file_stem(variant: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", variant)


def write_report(
    output_dir: str | Path,
    fold_results_by_variant: dict[str, Sequence[dict]],
    label_names: Sequence[str],
    protocol: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``results.json`` (with ``protocol``, lines saying how the numbers were obtained), ``results.md`` and
    ``confusion_matrix_<variant>.png`` (summed over folds).

    Returns ``{"results_json": path, "results_md": path, "confusion_matrix_<variant>": path, ...}``.
    """
    if not fold_results_by_variant:
        raise ValueError("write_report: no variants given")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summaries = {variant: summarize_folds(results) for variant, results in fold_results_by_variant.items()}
    paths = {"results_json": output_dir / "results.json", "results_md": output_dir / "results.md"}
    report = {
        **({"protocol": list(protocol)} if protocol else {}),
        "label_names": list(label_names),
        "variants": {
            variant: {"summary": summaries[variant], "folds": list(results)}
            for variant, results in fold_results_by_variant.items()
        },
    }
    paths["results_json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    paths["results_md"].write_text(markdown_table(fold_results_by_variant, protocol), encoding="utf-8")
    for variant, summary in summaries.items():
        paths[f"confusion_matrix_{variant}"] = plot_confusion_matrix(
            summary["confusion_matrix"],
            label_names,
            output_dir / f"confusion_matrix_{_file_stem(variant)}.png",
            title=f"{variant}: sum over {summary['num_folds']} folds",
        )
    return paths
