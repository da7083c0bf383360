"""CREMA-D: ``1001_DFA_ANG_XX.wav`` = actor_sentence_emotion_level; actor gender from ``VideoDemographics.csv``."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ..records import GENDERS, CorpusError, CorpusScan, Skipped, Utterance
from .common import list_audio_files

EMOTION_CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LABELS = tuple(EMOTION_CODES.values())
DEMOGRAPHICS = "VideoDemographics.csv"
_FILE_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})\.wav$")


def read_demographics(path: str | Path) -> dict[str, str]:
    """Actor id -> ``female``/``male`` from ``VideoDemographics.csv`` (columns ``ActorID``, ``Sex``)."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"ActorID", "Sex"} - set(reader.fieldnames or ())
        if missing:
            raise CorpusError(f"{path}: missing column(s) {sorted(missing)}")
        genders = {}
        for row in reader:
            sex = (row["Sex"] or "").strip().lower()
            if sex not in GENDERS:
                raise CorpusError(f"{path}, line {reader.line_num}: unknown Sex value {row['Sex']!r}")
            genders[row["ActorID"].strip()] = sex
    return genders


def scan_crema_d(source: str | Path) -> CorpusScan:
    """CREMA-D utterances of ``source`` (the repository folder with ``AudioWAV/`` and ``VideoDemographics.csv``)."""
    source = Path(source)
    directory = source / "AudioWAV" if (source / "AudioWAV").is_dir() else source
    candidates = [source / DEMOGRAPHICS, source.parent / DEMOGRAPHICS]
    demographics = next((p for p in candidates if p.is_file()), None)
    if demographics is None:
        raise CorpusError(f"CREMA-D needs {DEMOGRAPHICS} for speaker genders: not found at {candidates[0]}")
    genders = read_demographics(demographics)
    records, skipped = [], []
    files, metadata = list_audio_files(directory)
    for path in files:
        match = _FILE_NAME.match(path.name)
        if match is None or match.group(3) not in EMOTION_CODES:
            skipped.append(Skipped(str(path), "not a CREMA-D file name", "expected e.g. 1001_DFA_ANG_XX.wav"))
            continue
        actor = match.group(1)
        if actor not in genders:
            raise CorpusError(f"actor {actor} of {path} is not listed in {demographics}")
        records.append(Utterance(path.stem, str(path), EMOTION_CODES[match.group(3)], genders[actor], actor))
    return CorpusScan("crema-d", records, LABELS, skipped, metadata)
