"""Text summary of a built dataset: counts per emotion x gender x fold, skipped files, dropped labels."""

from __future__ import annotations

from collections import Counter, defaultdict

import datasets

from .builder import BuildReport

MAX_LISTED_PER_REASON = 10


def count_table(dataset: datasets.Dataset) -> tuple[list[str], list[list[str]]]:
    """Header and rows of utterance counts: one row per (emotion, gender) and totals, one column per fold."""
    columns = dataset.select_columns(["emotion", "gender", "fold"]).to_dict()
    emotions, genders = dataset.features["emotion"].names, dataset.features["gender"].names
    folds = sorted(set(columns["fold"]))
    cells = Counter()
    for emotion, gender, fold in zip(columns["emotion"], columns["gender"], columns["fold"]):
        for key in ((emotions[emotion], genders[gender]), ("total", genders[gender]), ("total", "all")):
            cells[(*key, fold)] += 1
    keys = [(e, g) for e in emotions for g in genders] + [("total", g) for g in genders] + [("total", "all")]
    header = ["emotion", "gender", *(f"fold {fold}" for fold in folds), "total"]
    rows = [[*key, *(str(cells[(*key, f)]) for f in folds), str(sum(cells[(*key, f)] for f in folds))] for key in keys]
    return header, rows


def format_summary(dataset: datasets.Dataset, report: BuildReport) -> str:
    """Multi-line report printed by ``gemo-clap build-dataset``."""
    hours = sum(dataset.select_columns(["duration"]).to_dict()["duration"]) / 3600
    lines = [f"{report.corpus}: {report.num_examples} utterances, {hours:.2f} h of audio"]
    header, rows = count_table(dataset)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))))
    if report.dropped_labels:
        dropped = ", ".join(f"{label} {n}" for label, n in report.dropped_labels.most_common())
        lines.append(f"dropped {sum(report.dropped_labels.values())} utterances with unmapped labels: {dropped}")
    by_reason = defaultdict(list)
    for item in report.skipped:
        by_reason[item.reason].append(item)
    lines.append(f"skipped {len(report.skipped)} item(s)" + (":" if report.skipped else ""))
    for reason, items in by_reason.items():
        lines.append(f"  {reason}: {len(items)}")
        for item in items[:MAX_LISTED_PER_REASON]:
            lines.append(f"    {item.source}" + (f"  {item.detail}" if item.detail else ""))
        if len(items) > MAX_LISTED_PER_REASON:
            lines.append(f"    ... and {len(items) - MAX_LISTED_PER_REASON} more")
    if report.metadata:
        lines.append(f"skipped {len(report.metadata)} macOS metadata file(s) (._*), not audio")
    if report.normalised:
        lines.append(f"peak-normalised {len(report.normalised)} float file(s) holding samples beyond [-1, 1]:")
        lines += [f"    {item.source}  {item.detail}" for item in report.normalised[:MAX_LISTED_PER_REASON]]
        if len(report.normalised) > MAX_LISTED_PER_REASON:
            lines.append(f"    ... and {len(report.normalised) - MAX_LISTED_PER_REASON} more")
    return "\n".join(lines)
