"""Helpers shared by the corpus readers that parse audio file names."""

from __future__ import annotations

from pathlib import Path

from ..records import CorpusError


def list_audio_files(directory: str | Path, suffix: str = ".wav") -> list[Path]:
    """Audio files under ``directory`` (recursive, sorted by name), without macOS ``._*`` companions."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CorpusError(f"corpus folder not found: {directory}")
    files = [p for p in directory.rglob(f"*{suffix}") if not p.name.startswith("._") and p.is_file()]
    if not files:
        raise CorpusError(f"no {suffix} files under {directory}")
    return sorted(files, key=lambda p: (p.name, str(p)))
