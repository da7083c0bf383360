"""Helpers shared by the corpus readers that parse audio file names."""

from __future__ import annotations

from pathlib import Path

from ..records import CorpusError

APPLE_DOUBLE = "._"  # macOS metadata companions ("._03a01Fa.wav") copied beside the real files


def list_audio_files(directory: str | Path, suffix: str = ".wav") -> tuple[list[Path], list[str]]:
    """Audio files under ``directory`` (recursive, sorted by name), and the macOS ``._*`` companions left out."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CorpusError(f"corpus folder not found: {directory}")
    found = [p for p in directory.rglob(f"*{suffix}") if p.is_file()]
    files = [p for p in found if not p.name.startswith(APPLE_DOUBLE)]
    if not files:
        raise CorpusError(f"no {suffix} files under {directory}")
    companions = sorted(str(p) for p in found if p.name.startswith(APPLE_DOUBLE))
    return sorted(files, key=lambda p: (p.name, str(p))), companions
