"""The one way conveyor writes a file or a folder: temp name, fsync, rename.

Every file conveyor keeps is written through :func:`atomic_write` (a hidden temp
file in the same folder, fsynced, then renamed over the final name), so a crash
leaves the old file or the new one, never half of one; :func:`atomic_write_dir`
does the same for a whole folder. A write the OS refuses raises
:class:`WriteError`, which names the file and the fix. A leaf module: it imports
nothing of conveyor but its errors.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from conveyor.errors import ConveyorError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sweep_folder(folder: Path) -> list[Path]:
    """Remove the hidden temp files and folders of interrupted atomic writes in ``folder``."""
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        if not _TEMP_NAME.match(path.name):
            continue
        with contextlib.suppress(OSError):  # a read-only workspace: leave it
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


# the hidden temp names atomic_write/atomic_write_dir use: ".<name>.<mkstemp's 8 chars>.tmp"
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem allows fsync on a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class WriteError(ConveyorError, OSError):
    """A workspace file could not be written: disk full, read-only, permission denied.

    Also an :class:`OSError` (with the original ``errno``), so code that catches
    either keeps working; the message names the file and the problem on one line.
    """

    @classmethod
    def of(cls, path: Path, exc: OSError) -> WriteError:
        reason = exc.strerror or str(exc)
        other = isinstance(exc.filename, str) and \
            Path(exc.filename).parent not in (path, path.parent)
        where = f" ({exc.filename})" if other else ""  # e.g. the source of a copy
        error = cls(f"cannot write '{path}': {reason}{where}{_HINTS.get(exc.errno or 0, '')}; "
                    "it was left as it was")
        error.errno = exc.errno
        return error


_HINTS = {
    errno.ENOSPC: " (the disk is full: free some space, then run again)",
    errno.EDQUOT: " (the disk quota is used up: free some space, then run again)",
    errno.EROFS: " (make the workspace writable or point `workspace` elsewhere)",
    errno.EACCES: " (check the owner and permissions of the workspace folder)",
    errno.EPERM: " (check the owner and permissions of the workspace folder)",
}


@contextlib.contextmanager
def _clear_write_errors(path: Path) -> Iterator[None]:
    """Turn an OSError of a write into a :class:`WriteError` that names ``path``."""
    try:
        yield
    except (ConveyorError, TimeoutError):  # filelock's Timeout is an OSError too
        raise
    except OSError as exc:
        raise WriteError.of(path, exc) from exc


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temp file that is then renamed.

    The temp file lives in the destination folder (so the rename is atomic) and is
    hidden (leading dot) so no reader ever lists it. On any failure it is removed
    and the previous content of ``path`` is untouched; an OSError (disk full,
    read-only, permissions) is raised as a :class:`WriteError` naming ``path``.
    """
    with _clear_write_errors(path):
        return _atomic_write(path, write)


def _atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
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

    A crash leaves at most a hidden ``.name.*.tmp`` folder that no reader lists; an
    OSError is raised as a :class:`WriteError` naming ``path`` (see :func:`atomic_write`).
    """
    with _clear_write_errors(path):
        return _atomic_write_dir(path, fill)


def _atomic_write_dir(path: Path, fill: Callable[[Path], None]) -> Path:
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
