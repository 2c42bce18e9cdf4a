"""The inbox: a folder where new files of the stream arrive over time.

Each update takes the oldest file not yet processed (by name, then arrival
time) as one batch. Every file is recorded with its sha256 once processed, so
it is never read again, and files are never deleted. A file that cannot be
used is copied, bytes untouched, to the quarantine with ``reason.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conveyor.errors import SourceError
from conveyor.io import tables
from conveyor.io.atomic import atomic_write, atomic_write_text


def file_kind(path: Path) -> str:
    """Return the reader kind of an inbox file from its extension."""
    kind = tables.file_kind(path)
    if kind is None:
        raise SourceError(f"inbox file '{path.name}' has an unsupported extension; use one of "
                          f"{sorted(tables.EXTENSIONS)}")
    return kind


def pending_files(folder: Path, pattern: str, processed: set[str]) -> list[Path]:
    """Return the inbox files not processed yet, oldest name first."""
    if not folder.is_dir():
        raise SourceError(f"inbox folder '{folder}' not found (source.path in the config)")
    files = [p for p in folder.glob(pattern)
             if p.is_file() and not p.name.startswith(".") and p.name not in processed]
    return sorted(files, key=lambda p: (p.name, p.stat().st_mtime))


def quarantine_file(path: Path, quarantine_dir: Path, reason: str) -> Path:
    """Copy a rejected file with its reason; the original stays where it arrived."""
    folder = quarantine_dir / f"inbox-{path.name}"
    atomic_write(folder / path.name, lambda tmp: shutil.copyfile(path, tmp))
    atomic_write_text(folder / "reason.json",
                      json.dumps({"file": str(path), "reason": reason}, indent=2))
    return folder
