"""Speaker-independent cross-validation folds, numbered 1..K."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .records import GENDERS, CorpusError, Utterance


def speaker_genders(records: Sequence[Utterance]) -> dict[str, str]:
    """Gender of every speaker; a speaker recorded with both genders is an error naming two of its utterances."""
    genders: dict[str, Utterance] = {}
    for record in records:
        first = genders.setdefault(record.speaker, record)
        if first.gender != record.gender:
            raise CorpusError(
                f"speaker {record.speaker!r} is {first.gender} in {first.path} but {record.gender} in {record.path}"
            )
    return {speaker: record.gender for speaker, record in genders.items()}


def assign_speaker_folds(genders: dict[str, str], num_folds: int) -> dict[str, int]:
    """Deal speakers (female then male, each sorted by id) round-robin onto folds ``1..num_folds``.

    The male deal continues where the female one stopped, so every fold gets speakers of both genders whenever each
    gender has at least ``num_folds`` speakers, and fold sizes differ by at most one speaker. Deterministic.
    """
    if not 2 <= num_folds <= len(genders):
        raise CorpusError(f"cannot make {num_folds} speaker-independent folds from {len(genders)} speakers")
    folds, position = {}, 0
    for gender in GENDERS:
        for speaker in sorted(s for s, g in genders.items() if g == gender):
            folds[speaker] = position % num_folds + 1
            position += 1
    return folds


def with_speaker_folds(records: Sequence[Utterance], num_folds: int) -> list[Utterance]:
    """Records with ``fold`` set by [`assign_speaker_folds`]."""
    folds = assign_speaker_folds(speaker_genders(records), num_folds)
    return [replace(record, fold=folds[record.speaker]) for record in records]
