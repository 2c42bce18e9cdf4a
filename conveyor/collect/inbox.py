"""The inbox: a folder where new files of the stream arrive over time.

Each update takes the oldest file not yet processed (by name, then arrival
time) as one batch. Every file is recorded with its sha256 once processed, so
it is never read again, and files are never deleted. A file that cannot be
used is copied, bytes untouched, to the quarantine with ``reason.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from conveyor.collect import sources
from conveyor.collect.protocol import Batch
from conveyor.collect.stream import Window
from conveyor.config import Config
from conveyor.errors import ConveyorError, SourceError
from conveyor.io import tables
from conveyor.io.atomic import atomic_write, atomic_write_text
from conveyor.store import Store
from conveyor.store.db import utcnow
from conveyor.workspace import Workspace

log = logging.getLogger(__name__)


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


def check_schema(store: Store, frame: pd.DataFrame, name: str, recent: int) -> None:
    """Refuse a batch that lacks columns every one of the ``recent`` newest batches had.

    One file with extra columns does not make them required: a column becomes part of
    the schema once every batch of the training window has it.
    """
    previous = store.accepted_batches(recent)
    if not previous:
        return
    columns = [store.batch_columns(b["id"]) for b in previous]
    everywhere = set.intersection(*map(set, columns))
    known = [c for c in columns[-1] if c in everywhere]
    missing = [c for c in known if c not in frame.columns]
    if missing:
        raise SourceError(f"'{name}' lacks column(s) {missing} that earlier batches had "
                          "(a different schema); fix the file and drop it in the inbox again "
                          "under a new name")


class InboxSource:
    """``source.kind: inbox``: the oldest unprocessed file is the next batch.

    The files pending when the update starts are taken in order; a repeat (same
    sha256) is recorded and skipped, and a file that cannot be used is quarantined
    and ends the update. Each file is recorded in ``inbox_files`` once processed.
    """

    def __init__(self, config: Config, workspace: Workspace, store: Store) -> None:
        self.config, self.workspace, self.store = config, workspace, store
        self._files: Iterator[Path] | None = None
        self._stopped: str | None = None  # the message after a quarantined file

    def next_batch(self, cursor: int) -> Batch | None:
        if self._files is None:
            assert self.config.source.path is not None
            processed = set(self.store.frame("inbox_files")["name"])
            self._files = iter(pending_files(self.config.source.path, self.config.source.pattern,
                                             processed))
        if self._stopped is not None:
            return None
        for path in self._files:
            batch = self._take(path, cursor)
            if batch is not None or self._stopped is not None:
                return batch
        return None

    def message(self, ingested: int) -> str:
        if self._stopped is not None:
            return self._stopped
        if not ingested:
            return f"no new files in the inbox {self.config.source.path}; nothing to update"
        return f"ingested {ingested} inbox file(s)"

    def _take(self, path: Path, cursor: int) -> Batch | None:
        """The file as a batch; None for a repeat or a quarantined file."""
        config, store = self.config, self.store
        sha, size = sources.file_sha256(path), path.stat().st_size
        record = {"name": path.name, "sha256": sha, "size_bytes": size, "processed_at": utcnow()}
        if store.inbox_file_by_sha(sha) is not None:
            store.record("inbox_files", **record, status="duplicate",
                         reason="same bytes as an already processed file")
            log.warning("inbox file %s repeats an earlier file (same sha256); skipped", path.name)
            return None
        try:
            frame = sources.read_file(path, file_kind(path), config.source.csv,
                                      config.source.sheet)
            frame = sources.check_columns(frame, config.source.time_column,
                                          config.target.source_column,
                                          f"inbox file '{path.name}'",
                                          set(config.columns.categorical or []))
            check_schema(store, frame, path.name, config.train.window_batches)
        except ConveyorError as exc:
            folder = quarantine_file(path, self.workspace.quarantine, str(exc))
            with store.transaction() as conn:
                store.insert_rows(conn, "inbox_files", [{**record, "status": "quarantined",
                                                         "reason": str(exc)}])
                store.add_event(conn, "quarantine", f"{path.name}: {exc}")
            self._stopped = f"inbox file quarantined to {folder}: {exc}"
            return None
        frame = frame.sort_values(config.source.time_column, kind="stable")
        times = frame[config.source.time_column]
        window = Window(cursor, times.min(), times.max())

        def ingested(row: dict[str, Any]) -> None:
            store.record("inbox_files", **record, status="ingested", batch_id=row["id"])

        return Batch(window, frame.reset_index(drop=True), path.name, ingested)
