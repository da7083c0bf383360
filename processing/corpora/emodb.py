"""Berlin EmoDB: everything is in the file names (``03a01Fa.wav`` = speaker 03, text a01, emotion F, version a)."""

from __future__ import annotations

import re
from pathlib import Path

from ..records import CorpusScan, Skipped, Utterance
from .common import list_audio_files

EMOTION_CODES = {
    "W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness", "N": "neutral"
}  # fmt: skip
LABELS = tuple(EMOTION_CODES.values())
SPEAKER_GENDERS = {
    "03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
    "12": "male", "13": "female", "14": "female", "15": "male", "16": "female",
}  # fmt: skip
_FILE_NAME = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])\.wav$")


def scan_emodb(source: str | Path) -> CorpusScan:
    """EmoDB utterances under ``source`` (the corpus folder or its ``wav/``); speakers come from the documented list."""
    source = Path(source)
    directory = source / "wav" if (source / "wav").is_dir() else source
    records, skipped = [], []
    files, metadata = list_audio_files(directory)
    for path in files:
        match = _FILE_NAME.match(path.name)
        if match is None or match.group(1) not in SPEAKER_GENDERS:
            skipped.append(Skipped(str(path), "not an EmoDB file name", "expected e.g. 03a01Fa.wav"))
            continue
        speaker, _, code, _ = match.groups()
        records.append(Utterance(path.stem, str(path), EMOTION_CODES[code], SPEAKER_GENDERS[speaker], speaker))
    return CorpusScan("emodb", records, LABELS, skipped, metadata)
