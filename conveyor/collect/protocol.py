"""What a data source gives an update: the next batch of rows, one at a time.

A source kind (``source.kind`` in the config) is a factory registered in
:mod:`conveyor.collect.registry`; it opens a :class:`Source` for one update.
The cursor an update passes is the next window index (the batches catalog);
a source that keeps its own record of what it has given (the inbox's
processed files) may use that instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from conveyor.collect.stream import Window

if TYPE_CHECKING:
    from conveyor.config import Config
    from conveyor.store import Store
    from conveyor.workspace import Workspace


def _nothing(row: dict[str, Any]) -> None:
    """The default follow-up of an ingested batch: none."""


@dataclass(frozen=True)
class Batch:
    """One batch as the source wrote it (enrichment and checks come later)."""

    window: Window
    frame: pd.DataFrame
    name: str  # where it came from, as the batches catalog records it
    ingested: Callable[[dict[str, Any]], None] = field(default=_nothing)  # gets the catalog row


class Source(Protocol):
    """A stream of batches for one update."""

    def next_batch(self, cursor: int) -> Batch | None:
        """The batch at or after ``cursor`` (the next window index), None when none is left."""
        ...

    def message(self, ingested: int) -> str:
        """What the update says after ``ingested`` batches (0: why there was nothing)."""
        ...


SourceFactory = Callable[["Config", "Workspace", "Store"], Source]
