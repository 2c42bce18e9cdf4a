"""Checks on the files a user names (inputs, sources, side tables) before they are read.

A path may name anything: a folder, a FIFO that blocks the reader forever, a device
such as ``/dev/zero`` that never ends, or a symlink to one of those. Only a regular
file is read; everything else is refused with what it is.
"""

from __future__ import annotations

import stat
from pathlib import Path

from conveyor.errors import ConveyorError, InputError


def check_regular_file(path: Path, what: str = "input file",
                       error: type[ConveyorError] = InputError, hint: str = "") -> None:
    """Raise ``error`` unless ``path`` is a regular file (after following symlinks).

    ``what`` names the file in the message (``"source file"``); ``hint`` is added
    when it is missing.

    >>> try:
    ...     check_regular_file(Path("/dev/null"))
    ... except InputError as exc:
    ...     print(str(exc)[:60])
    input file '/dev/null' is not a regular file (a FIFO, device
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"{what} '{path}' not found{hint}") from None
    except OSError as exc:
        raise error(f"cannot open {what} '{path}': {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise error(f"{what} '{path}' is a folder, not a file; give the data file inside it")
    if not stat.S_ISREG(mode):
        via = f", reached through the symlink '{path}'" if path.is_symlink() else ""
        raise error(f"{what} '{path}' is not a regular file (a FIFO, device or socket{via}); "
                    "give a data file")
