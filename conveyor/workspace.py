"""The state folder: its layout, the writer lock, and the one atomic-write helper.

Every file conveyor keeps is written through :func:`atomic_write` (temp file in
the same folder, fsync, rename), so a crash leaves the old file or the new
one, never half of one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from conveyor.errors import ConveyorError, LockedError

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass(frozen=True)
class Workspace:
    """Paths of one state folder."""

    root: Path
    database_url: str | None = None  # a server database instead of <root>/conveyor.db

    @classmethod
    def of(cls, config: Any) -> Workspace:
        """The workspace a config names (``workspace`` and ``store.url``)."""
        return cls(config.workspace, config.store.url)

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
        """Create the folder tree (idempotent) and return self."""
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
            yield
        finally:
            lock.release()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem allows fsync on a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temp file that is then renamed.

    The temp file lives in the destination folder (so the rename is atomic) and is
    hidden (leading dot) so no reader ever lists it. On any failure it is removed
    and the previous content of ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; keep the user's usual mode
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write bytes atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_dir(path: Path, fill: Callable[[Path], None]) -> Path:
    """Create folder ``path`` atomically: ``fill(tmpdir)`` writes its files, then a rename.

    A crash leaves at most a hidden ``.name.*.tmp`` folder that no reader lists.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise ConveyorError(f"'{path}' already exists; refusing to overwrite it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        fill(tmp)
        for child in tmp.iterdir():
            with open(child, "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(tmp)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)
    return path
