"""Logging setup for the command line: a rotating file in the workspace plus stderr.

Library modules only create loggers; nothing is configured on import.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

# the process id: updates, promotions, API workers and inference append to one file
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def setup_logging(log_dir: Path | None, console_level: int = logging.INFO) -> None:
    """Send conveyor's logs to ``log_dir/conveyor.log`` (rotating) and to stderr."""
    root = logging.getLogger("conveyor")
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler()
    console.setLevel(console_level)
    console.setFormatter(logging.Formatter("conveyor: %(message)s"))
    root.addHandler(console)
    if log_dir is not None and _leaves(log_dir / "conveyor.log", log_dir.parent):
        root.warning("not writing the log file: '%s' is a symlink out of the workspace "
                     "'%s'; remove the link", log_dir / "conveyor.log", log_dir.parent)
    elif log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            file_handler = logging.handlers.RotatingFileHandler(
                log_dir / "conveyor.log", maxBytes=5_000_000, backupCount=3, encoding="utf-8")
        except OSError as exc:
            root.warning("cannot write the log file in %s: %s", log_dir, exc.strerror)
        else:
            file_handler.setLevel(logging.DEBUG)
            file_handler.setFormatter(logging.Formatter(FORMAT))
            root.addHandler(file_handler)


def _leaves(path: Path, root: Path) -> bool:
    """Whether ``path`` (or a folder on the way to it) links out of ``root``."""
    return (path.is_symlink() or path.parent.is_symlink()) and not Path(
        os.path.realpath(path)).is_relative_to(os.path.realpath(root))
