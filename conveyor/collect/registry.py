"""The source kinds: ``source.kind`` -> the factory that opens it for an update.

Adding a data source is one module with a factory ``(config, workspace, store) ->
Source`` (see :mod:`conveyor.collect.protocol`) and one line here (or a call to
:func:`register_source`); the config's ``source.kind`` must name it.
"""

from __future__ import annotations

from conveyor.collect.inbox import InboxSource
from conveyor.collect.protocol import Source, SourceFactory
from conveyor.collect.table_stream import TableStream
from conveyor.config import Config
from conveyor.errors import ConfigError
from conveyor.store import Store
from conveyor.workspace import Workspace

SOURCES: dict[str, SourceFactory] = {
    "csv": TableStream.open,
    "parquet": TableStream.open,
    "excel": TableStream.open,
    "sql": TableStream.open,
    "inbox": InboxSource,
}


def register_source(kind: str, factory: SourceFactory) -> None:
    """Make ``kind`` a source kind (a later registration of the same kind replaces it)."""
    SOURCES[kind] = factory


def open_source(config: Config, workspace: Workspace, store: Store) -> Source:
    """Open the configured source for one update."""
    try:
        factory = SOURCES[config.source.kind]
    except KeyError:
        raise ConfigError(f"source.kind '{config.source.kind}' is not a source kind; use one "
                          f"of {', '.join(sorted(SOURCES))}") from None
    return factory(config, workspace, store)
