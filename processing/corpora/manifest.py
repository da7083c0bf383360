"""Generic manifest: a CSV or JSONL file with ``path, emotion, gender, speaker`` (+ optional ``fold``) per utterance.

Paths are relative to the manifest's folder (absolute paths are kept). ``gender`` is ``female``/``male`` (or ``f``/
``m``, any case); ``fold``, when the column is present, is an integer >= 1 on every row and replaces automatic
speaker folds. Emotion labels keep their order of first appearance. The example id is the path as written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from ..records import CorpusError, CorpusScan, Skipped, Utterance

REQUIRED_COLUMNS = ("path", "emotion", "gender", "speaker")
GENDER_VALUES = {"female": "female", "f": "female", "male": "male", "m": "male"}


def _csv_rows(path: Path) -> Iterator[tuple[str, dict]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise CorpusError(f"{path}: missing required column(s) {missing} (found {reader.fieldnames})")
        has_fold = "fold" in reader.fieldnames
        for row in reader:
            yield f"{path}, line {reader.line_num}", row if has_fold else {**row, "fold": None}


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise CorpusError(f"{where}: not valid JSON ({error})") from error
            if not isinstance(row, dict):
                raise CorpusError(f"{where}: expected a JSON object")
            missing = [c for c in REQUIRED_COLUMNS if c not in row]
            if missing:
                raise CorpusError(f"{where}: missing required column(s) {missing}")
            yield where, row


def _parse_row(where: str, row: dict, base: Path, fold_column: bool) -> tuple[Utterance, Path]:
    values = {column: str(row[column] if row[column] is not None else "").strip() for column in REQUIRED_COLUMNS}
    empty = [column for column, value in values.items() if not value]
    if empty:
        raise CorpusError(f"{where}: empty value in column(s) {empty}")
    gender = GENDER_VALUES.get(values["gender"].lower())
    if gender is None:
        raise CorpusError(f"{where}: unknown gender {values['gender']!r} (expected female/male or f/m)")
    fold = row.get("fold")
    if fold_column != (fold not in (None, "")):
        raise CorpusError(f"{where}: 'fold' must be given on every row or on none")
    if fold_column:
        try:
            fold = int(str(fold).strip())
        except ValueError:
            fold = 0
        if fold < 1:
            raise CorpusError(f"{where}: fold must be an integer >= 1, got {row['fold']!r}")
    audio = base / values["path"]
    return Utterance(values["path"], str(audio), values["emotion"], gender, values["speaker"], fold), audio


def scan_manifest(path: str | Path) -> CorpusScan:
    """Utterances listed in a ``.csv`` or ``.jsonl`` manifest; rows whose audio file is missing are skipped."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"manifest not found: {path}")
    rows = _jsonl_rows(path) if path.suffix.lower() in (".jsonl", ".json") else _csv_rows(path)
    records, skipped, labels, first_row = [], [], {}, {}
    fold_column = None
    for where, row in rows:
        if fold_column is None:
            fold_column = row.get("fold") not in (None, "")
        record, audio = _parse_row(where, row, path.parent, fold_column)
        if record.id in first_row:
            raise CorpusError(f"{where}: path {record.id!r} already listed at {first_row[record.id]}")
        first_row[record.id] = where
        labels.setdefault(record.emotion, None)
        if audio.is_file():
            records.append(record)
        elif audio.is_dir():
            skipped.append(Skipped(str(audio), "folder, not an audio file", f"listed at {where}"))
        else:
            skipped.append(Skipped(str(audio), "missing audio file", f"listed at {where}"))
    if fold_column is None:
        raise CorpusError(f"{path}: no rows")
    return CorpusScan("manifest", records, tuple(labels), skipped)
