"""The raw store: each batch exactly as collected, one immutable Parquet file.

Files are named ``batch-<window>-<sha8>.parquet`` and written whole to the raw
:class:`~conveyor.storage.Storage` (a folder, or an object store); the catalog
row in the metadata store is added only after the file is in place.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from conveyor.errors import ConveyorError
from conveyor.storage import Storage, locate


def encode(frame: pd.DataFrame) -> bytes:
    """Return the Parquet bytes of a batch (deterministic for the same content)."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue().to_pybytes()


def digest(data: bytes) -> str:
    """Return the hex sha256 of encoded batch bytes (the batch's identity in the catalog)."""
    return hashlib.sha256(data).hexdigest()


def write_batch(raw: Storage, window_index: int, data: bytes) -> tuple[str, str]:
    """Store encoded batch bytes; return the file's location (path or URL) and its sha256."""
    sha = digest(data)
    key = f"batch-{window_index:06d}-{sha[:8]}.parquet"
    raw.put_bytes(key, data)
    return raw.location(key), sha


def read_batch(location: Path | str, sha256: str | None = None) -> pd.DataFrame:
    """Read a stored batch; with ``sha256``, refuse a file that changed since ingestion."""
    store, key = locate(location)
    try:
        data = store.get_bytes(key)
    except (FileNotFoundError, IsADirectoryError):
        raise ConveyorError(f"raw batch file '{location}' is missing from the raw store") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ConveyorError(f"raw batch file '{location}' does not match its catalogued sha256")
    return decode(data)


def decode(data: bytes) -> pd.DataFrame:
    """The batch that encoded bytes hold, as every reader of the raw store sees it."""
    return pq.read_table(pa.BufferReader(data)).to_pandas()
