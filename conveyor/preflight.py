"""Checks before a command touches the workspace: a command that cannot do anything
says what to run instead, and leaves nothing behind (no empty workspace, no log file).
"""

from __future__ import annotations

from pathlib import Path

from conveyor.config import Config
from conveyor.errors import InputError

NEEDS_SOURCE = frozenset({"update", "replay"})
NEEDS_WORKSPACE = frozenset({"inference", "summary", "explain", "models", "promote",
                             "rollback"})
DEMO_SOURCE = "flights.csv"  # what `conveyor demo` writes for the bundled conveyor.yaml


def missing_sources(config: Config) -> list[tuple[str, Path]]:
    """The files the config reads that do not exist: (config key, path)."""
    missing = []
    if config.source.path is not None and not config.source.path.exists():
        missing.append(("source.path", config.source.path))
    for spec in config.enrich:
        if spec.path is not None and not spec.path.exists():
            missing.append((f"enrich '{spec.name}' path", spec.path))
    return missing


def listed(missing: list[tuple[str, Path]]) -> str:
    """The missing files as a person reads them: ``source.path '/x/flights.csv'; ...``."""
    return "; ".join(f"{key} '{path}'" for key, path in missing)


def demo_hint(config: Config) -> str:
    if config.source.path is not None and config.source.path.name == DEMO_SOURCE:
        return (" This is the bundled demo config: write its data with `make demo` (which "
                "also replays ten batches) or `conveyor demo --prepare-only`.")
    return ""


def check(config: Config, command: str) -> None:
    """Refuse a command that cannot work yet, naming what to run; create nothing."""
    if command in NEEDS_SOURCE:
        missing = missing_sources(config)
        if missing:
            raise InputError(f"cannot run {command}: the data the config reads does not exist "
                             f"({listed(missing)}).{demo_hint(config)} Nothing was created.")
    elif command in NEEDS_WORKSPACE and not config.workspace.exists():
        first = "" if not missing_sources(config) else demo_hint(config)
        raise InputError(f"cannot run {command}: there is no workspace yet at '{config.workspace}' "
                         "(nothing ingested or trained). Run `python run.py -mode update` "
                         f"(or `conveyor replay`) first.{first}")
