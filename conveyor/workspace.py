"""The state folder: its layout, where each store lives, and the writer lock.

Files in it are written through :mod:`conveyor.io.atomic` (temp file in the same
folder, fsync, rename), so a crash leaves the old file or the new one, never half
of one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from conveyor.errors import ConveyorError, LockedError
from conveyor.io.atomic import _clear_write_errors, sweep_folder

if TYPE_CHECKING:
    from conveyor.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workspace:
    """Paths of one state folder."""

    root: Path
    database_url: str | None = None  # a server database instead of <root>/conveyor.db
    raw_url: str | None = None  # raw batches elsewhere than <root>/raw: a folder or a URL
    models_url: str | None = None  # model versions elsewhere than <root>/models

    @classmethod
    def of(cls, config: Any) -> Workspace:
        """The workspace a config names (``workspace`` and the ``store`` section)."""
        store = config.store
        return cls(config.workspace, store.url, store.raw_url, store.models_url)

    @property
    def db_path(self) -> Path:
        return self.root / "conveyor.db"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.db_path}"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def raw_store(self) -> Storage:
        """Where new raw batches are written (``store.raw_url``, default ``<root>/raw``)."""
        from conveyor.storage import open_storage  # storage builds on this module's writes

        return open_storage(self.raw_url or self.raw)

    @property
    def models_store(self) -> Storage:
        """Where new model versions are written (``store.models_url``, default
        ``<root>/models``)."""
        from conveyor.storage import open_storage

        return open_storage(self.models_url or self.models)

    def catalog_path(self, location: str) -> str:
        """What the catalog records for a stored file or folder: a path relative to the
        root when it is inside the workspace (so the folder can move), else its absolute
        path or URL."""
        if "://" not in location and Path(location).is_relative_to(self.root):
            return str(Path(location).relative_to(self.root))
        return location

    def resolve(self, recorded: str) -> Path | str:
        """Where a file the catalog records lives: a path, or a URL (see :meth:`catalog_path`).

        A relative path must stay inside the workspace: a catalog row edited to
        ``../../elsewhere`` is refused rather than followed.
        """
        if "://" in recorded:
            return recorded
        path = self.root / recorded
        if not Path(recorded).is_absolute() and not os.path.normpath(path).startswith(
                os.path.normpath(self.root) + os.sep):
            raise ConveyorError(f"the catalog records '{recorded}', which points outside the "
                                f"workspace '{self.root}'; the metadata database was edited "
                                "by hand or damaged: restore it from a backup")
        return path

    def model_folder(self, recorded: str, version: int) -> Path | str:
        """Where version ``version``'s folder lives, as the catalog records it.

        A local folder must be exactly ``v000007`` (its own number) directly in a
        models store, the workspace's ``models/`` or ``store.models_url``, once every
        symlink is followed, and hold no symlink itself: a catalog row or a folder
        that an attacker pointed elsewhere is refused, not read. A URL is taken as
        recorded (object stores have no links).
        """
        location = self.resolve(recorded)
        if isinstance(location, str):
            return location
        name = f"v{version:06d}"
        local = (self.models_url or "").removeprefix("file://")
        roots = [self.models] + ([Path(local)] if local and "://" not in local else [])
        real = Path(os.path.realpath(location))
        inside = location.name == name and any(
            real == Path(os.path.realpath(root)) / name for root in roots)
        linked = inside and real.is_dir() and any(
            entry.is_symlink() for entry in os.scandir(real))
        if not inside or linked:
            raise ConveyorError(
                f"model v{version} is recorded at '{recorded}', which "
                f"{'holds a symlink' if linked else 'is not its own folder in the models store'}"
                f" ({' or '.join(str(r / name) for r in roots)}); refusing to read it: the "
                "models folder or the metadata database was changed by hand")
        return location

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def create(self) -> Workspace:
        """Create the folder tree (idempotent) and return self.

        A folder or state file of the tree that is a symlink leading out of the
        workspace is refused: conveyor would write through it (the raw and model
        stores may live elsewhere through ``store.raw_url`` / ``store.models_url``).
        """
        root = Path(os.path.realpath(self.root))
        for name in ("raw", "quarantine", "models", "reports", "predictions", "cache", "logs",
                     "conveyor.db", ".lock", "logs/conveyor.log"):
            path = self.root / name
            if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(root):
                raise ConveyorError(
                    f"'{path}' is a symlink to '{os.path.realpath(path)}', outside the "
                    f"workspace '{self.root}'; conveyor writes only inside its workspace: "
                    "remove the link (put the raw or model store elsewhere with "
                    "store.raw_url or store.models_url)")
        for folder in (self.raw, self.quarantine, self.models, self.reports, self.predictions,
                       self.cache, self.logs):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConveyorError(
                    f"cannot create workspace folder '{folder}': {exc.strerror}; "
                    "check the 'workspace' key and the folder's permissions"
                ) from None
        return self

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        """Hold the writer lock; wait up to ``timeout`` seconds, then fail clearly."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / ".lock"))
        try:
            with _clear_write_errors(self.root / ".lock"):  # a read-only or full workspace
                lock.acquire(timeout=0)
        except Timeout:
            log.warning("another conveyor process is updating %s; waiting up to %.0f s",
                        self.root, timeout)
            try:
                lock.acquire(timeout=timeout)
            except Timeout:
                raise LockedError(
                    f"workspace '{self.root}' is locked by another update; try again when it "
                    "finishes (or raise lock.timeout_seconds)"
                ) from None
        try:
            self.sweep_temp_files()
            yield
        finally:
            lock.release()

    def sweep_temp_files(self) -> list[str]:
        """Remove the hidden temp files and folders that a killed writer left behind.

        Call it with the writer lock held: it sweeps only folders that writers fill
        under the lock (the raw and model stores when they are folders, cache,
        quarantine and its batch folders, reports/quality), so no temp file it
        removes can still be in use. Inference
        outputs and summaries are written without the lock and are left alone.
        """
        folders = [self.cache, self.reports / "quality", self.quarantine]
        if self.quarantine.is_dir():
            folders += [p for p in self.quarantine.iterdir()
                        if p.is_dir() and not p.name.startswith(".")]
        removed = [str(p) for folder in folders for p in sweep_folder(folder)]
        removed += self.raw_store.sweep() + self.models_store.sweep()
        if removed:
            prefix = f"{self.root}{os.sep}"
            log.info("removed %d temp file(s) left by an interrupted write: %s", len(removed),
                     ", ".join(p.removeprefix(prefix) for p in removed))
        return removed
