"""Where raw batches and model versions live: a local folder or any fsspec URL.

Both stores hold files under ``/``-separated keys (``batch-000012-<sha8>.parquet``,
``v000007/model.skops``). The catalog records where each one went (see
:meth:`conveyor.workspace.Workspace.catalog_path`), so reading never lists a
store and never depends on today's configuration.

- :class:`LocalStorage`, for a plain path or a ``file://`` URL, writes through
  :func:`conveyor.io.atomic.atomic_write` (hidden temp name, fsync, rename) and
  :func:`~conveyor.io.atomic.atomic_write_dir`: a reader sees a whole file or
  model folder, or none.
- :class:`FsspecStorage`, for any other fsspec URL (``s3://``, ``gs://``,
  ``az://``, ``memory://``...), writes each object in one put. Object stores
  make a put visible whole or not at all; a model folder is several objects,
  so a crash can leave part of one, which no catalog row points to and which
  the next update skips (see ``docs/scaling.md``).

Example, with fsspec's in-memory filesystem:

>>> store = open_storage("memory://doc/raw")
>>> store.put_bytes("batch-000001-0a1b2c3d.parquet", b"rows")
>>> store.get_bytes("batch-000001-0a1b2c3d.parquet"), store.exists("gone")
(b'rows', False)
>>> store.location("batch-000001-0a1b2c3d.parquet")
'memory://doc/raw/batch-000001-0a1b2c3d.parquet'
>>> folder, key = locate(store.location("batch-000001-0a1b2c3d.parquet"))
>>> folder.url, key
('memory://doc/raw', 'batch-000001-0a1b2c3d.parquet')
"""

from __future__ import annotations

import posixpath
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

from conveyor.errors import ConveyorError
from conveyor.io.atomic import WriteError, atomic_write_bytes, atomic_write_dir, sweep_folder


def is_url(location: str | Path) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a path."""
    return isinstance(location, str) and "://" in location


class Storage(ABC):
    """Files under keys below one root: what a raw or model store must provide."""

    url: str  # the root, as configured

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key``; readers see the old content or the new, never half."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Return the bytes under ``key``; raise FileNotFoundError when there are none."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a file or a folder is stored under ``key``."""

    @abstractmethod
    def put_dir(self, key: str, files: Mapping[str, bytes]) -> None:
        """Write a folder of ``files`` (name to bytes) under ``key``, which must be new."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file or folder under ``key`` (nothing there: nothing to do)."""

    @abstractmethod
    def location(self, key: str) -> str:
        """Return the absolute path or URL of ``key``."""

    def sweep(self) -> list[str]:
        """Remove what interrupted writes left behind; return their locations."""
        return []


class LocalStorage(Storage):
    """A folder on this machine (or a mounted share); writes are temp file, fsync, rename."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(str(root).removeprefix("file://"))
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def put_bytes(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self._path(key), data)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def put_dir(self, key: str, files: Mapping[str, bytes]) -> None:
        def fill(folder: Path) -> None:
            for name, data in files.items():
                (folder / name).write_bytes(data)

        atomic_write_dir(self._path(key), fill)

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def location(self, key: str) -> str:
        return str(self._path(key))

    def sweep(self) -> list[str]:
        return [str(p) for p in sweep_folder(self.root)]


class FsspecStorage(Storage):
    """Any fsspec filesystem (``s3://bucket/prefix``, ``memory://``...): one put per file.

    The filesystem's package must be installed (``s3fs`` for ``s3://``, ``gcsfs``
    for ``gs://``, ``adlfs`` for ``az://``); credentials come from its usual
    environment variables or config files.
    """

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise ConveyorError(f"cannot open storage '{url}': {exc}") from None
        self._root = root.rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)  # folders, where there are
            self.fs.pipe_file(path, data)
        except OSError as exc:
            raise _write_error(self.location(key), exc) from exc

    def get_bytes(self, key: str) -> bytes:
        data: bytes = self.fs.cat_file(self._path(key))
        return data

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def put_dir(self, key: str, files: Mapping[str, bytes]) -> None:
        if self.exists(key):
            raise ConveyorError(f"'{self.location(key)}' already exists; refusing to overwrite it")
        for name, data in files.items():
            self.put_bytes(f"{key}/{name}", data)

    def delete(self, key: str) -> None:
        path = self._path(key)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def location(self, key: str) -> str:
        return f"{self.url}/{key}"


def _write_error(location: str, exc: OSError) -> WriteError:
    error = WriteError(f"cannot write '{location}': {exc.strerror or exc}; it was left as it was")
    error.errno = exc.errno
    return error


def open_storage(url: str | Path) -> Storage:
    """Return the store at ``url``: a path or ``file://`` URL is local, anything else fsspec."""
    if is_url(url) and not str(url).startswith("file://"):
        return FsspecStorage(str(url))
    return LocalStorage(url)


def locate(location: str | Path) -> tuple[Storage, str]:
    """Return the store holding the file or folder at ``location`` and its key there."""
    if is_url(location):
        parent, _, name = str(location).rstrip("/").rpartition("/")
        return open_storage(parent), name
    path = Path(location)
    return LocalStorage(path.parent), path.name

