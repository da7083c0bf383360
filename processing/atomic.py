"""Writes that never leave a half-written file or folder behind: build beside the destination, then rename."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL, OLD = "partial", "old"  # the suffixes of a file being written and of one being replaced


def staging_path(destination: str | Path, unique: bool = False) -> Path:
    """Where `destination` is built before it is renamed into place: a hidden sibling (same file system).
    `unique` adds the process id, for writers that may race; processes writing one folder together share it."""
    destination = Path(destination)
    return destination.with_name(f".{destination.name}.{PARTIAL}" + (f"-{os.getpid()}" if unique else ""))


def leftovers(folder: str | Path) -> list[Path]:
    """What an interrupted write would leave in `folder` (recursively): staged files and folders, replaced ones
    and discarded ones. Empty after every write that finished."""
    pattern = re.compile(rf"^\..+\.({PARTIAL}|{OLD})(-\d+)?$")
    return sorted(path for path in Path(folder).rglob(".*") if pattern.match(path.name))


def check_folder_path(path: str | Path, what: str = "folder") -> None:
    """Raise `NotADirectoryError` when `path`, or a folder it would be created in, is an existing file."""
    path = Path(path)
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                where = "is a file" if candidate == path else f"would be created inside the file {candidate}"
                raise NotADirectoryError(f"{what} {path} {where}")
            return


def remove(path: str | Path) -> None:
    """Remove a file or a folder tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def discard(paths: list[Path], folder: Path) -> None:
    """Remove `paths` (inside `folder`): all moved into one hidden folder first, so none is left half-deleted."""
    if not paths:
        return
    trash = staging_path(folder / "discarded", unique=True)
    trash.mkdir()
    for path in paths:
        os.replace(path, trash / path.name)
    remove(trash)


def replace_with(staged: str | Path, destination: str | Path) -> None:
    """Put the finished `staged` file or folder at `destination`, replacing what is there. Files are replaced
    atomically; a folder is swapped in by two renames, and the old one is restored if the second fails."""
    staged, destination = Path(staged), Path(destination)
    if not (destination.is_dir() and staged.is_dir()):
        os.replace(staged, destination)
        return
    old = destination.with_name(f".{destination.name}.{OLD}-{os.getpid()}")
    remove(old)
    os.replace(destination, old)
    try:
        os.replace(staged, destination)
    except OSError:
        os.replace(old, destination)
        raise
    remove(old)


@contextmanager
def atomic_path(destination: str | Path, unique: bool = False) -> Iterator[Path]:
    """Yield a staging path to write `destination` at; when the block ends without error it replaces
    `destination`, otherwise it is removed and `destination` is left as it was."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged = staging_path(destination, unique)
    remove(staged)
    try:
        yield staged
        replace_with(staged, destination)
    finally:
        remove(staged)
