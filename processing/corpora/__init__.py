"""Corpus readers: each turns a corpus on disk into a [`CorpusScan`] (utterance metadata, no audio)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..records import CorpusError, CorpusScan
from .crema_d import scan_crema_d
from .emodb import scan_emodb
from .iemocap import scan_iemocap
from .manifest import scan_manifest
from .ravdess import scan_ravdess

READERS: dict[str, Callable[[str | Path], CorpusScan]] = {
    "iemocap": scan_iemocap,
    "emodb": scan_emodb,
    "ravdess": scan_ravdess,
    "crema-d": scan_crema_d,
    "manifest": scan_manifest,
}


def scan_corpus(corpus: str, source: str | Path) -> CorpusScan:
    """Read ``source`` with the reader of ``corpus`` (one of ``READERS``)."""
    if corpus not in READERS:
        raise CorpusError(f"unknown corpus {corpus!r}; choose one of {', '.join(READERS)}")
    if not Path(source).exists():
        raise CorpusError(f"{corpus} source not found: {source}")
    return READERS[corpus](source)


__all__ = ["READERS", "scan_corpus", "scan_crema_d", "scan_emodb", "scan_iemocap", "scan_manifest", "scan_ravdess"]
