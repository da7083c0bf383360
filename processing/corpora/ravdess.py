"""RAVDESS speech: ``03-01-05-01-02-01-12.wav`` = modality-channel-emotion-intensity-statement-repetition-actor.

Only speech (vocal channel ``01``) is read: song files (channel ``02``) are left out without being reported as
skipped. Odd actors are male, even actors female.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..records import CorpusScan, Skipped, Utterance
from .common import list_audio_files

EMOTION_CODES = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}  # fmt: skip
LABELS = tuple(EMOTION_CODES.values())
_FILE_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.wav$")


def scan_ravdess(source: str | Path) -> CorpusScan:
    """RAVDESS speech utterances under ``source`` (searched recursively, e.g. ``Actor_01/``); speaker ``Actor_NN``."""
    records, skipped = [], []
    files, metadata = list_audio_files(source)
    for path in files:
        match = _FILE_NAME.match(path.name)
        if match is None or match.group(3) not in EMOTION_CODES or int(match.group(7)) == 0:
            skipped.append(Skipped(str(path), "not a RAVDESS file name", "expected e.g. 03-01-05-01-02-01-12.wav"))
            continue
        if match.group(2) != "01":
            continue
        actor = int(match.group(7))
        gender = "male" if actor % 2 else "female"
        records.append(Utterance(path.stem, str(path), EMOTION_CODES[match.group(3)], gender, f"Actor_{actor:02d}"))
    return CorpusScan("ravdess", records, LABELS, skipped, metadata)
