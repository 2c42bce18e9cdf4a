"""The output of batch inference: where it goes and how its chunks are written."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from conveyor.config import CsvOptions


def output_path(source: Path, out_dir: Path, version: int) -> Path:
    r"""Where the predictions for ``source`` go: its name (control characters such as a line
    break replaced, so the printed path is one line), the version and the time.

    >>> output_path(Path("a\nb.csv"), Path("/out"), 7).name[:20]
    'a_b-predict-v000007-'
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    stem = re.sub(r"[\x00-\x1f\x7f]", "_", source.stem)
    return out_dir / f"{stem}-predict-v{version:06d}-{stamp}{source.suffix.lower()}"


class ChunkWriter:
    """Writes output chunks in the input's format; CSV values pass through as text."""

    def __init__(self, tmp: Path, kind: str, csv: CsvOptions, tsv: bool) -> None:
        self.tmp, self.kind, self.csv = tmp, kind, csv
        self.sep = "\t" if tsv else csv.delimiter
        self.parquet: pq.ParquetWriter | None = None
        self.frames: list[pd.DataFrame] = []
        self.header = True

    def write(self, table: pa.Table) -> None:
        if self.kind == "parquet":
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.tmp, table.schema)
            self.parquet.write_table(table)
        elif self.kind == "excel":
            self.frames.append(table.to_pandas())
        else:
            self._write_csv(table)

    def _write_csv(self, table: pa.Table) -> None:
        # the header is written here: Arrow quotes every name, whatever quoting_style says
        options = pacsv.WriteOptions(include_header=False, delimiter=self.sep,
                                     quoting_style="none")
        with open(self.tmp, "ab") as handle:
            if self.header:
                handle.write((self.sep.join(_field(n, self.sep) for n in table.column_names)
                              + "\n").encode("utf-8"))
            try:
                sink = pa.BufferOutputStream()
                pacsv.write_csv(table, sink, options)
                handle.write(sink.getvalue().to_pybytes())
            except pa.ArrowInvalid:
                # a value holds the delimiter, a quote or a line break: quote only those
                handle.write(self._quoted_csv(table).encode("utf-8"))
        self.header = False

    def _quoted_csv(self, table: pa.Table) -> str:
        """The chunk's rows as CSV text, quoting a field only where :func:`_field` must."""
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        lines = [self.sep.join(_field(c[i], self.sep) for c in columns)
                 for i in range(table.num_rows)]
        return "".join(line + "\n" for line in lines)

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self.kind == "excel":
            pd.concat(self.frames, ignore_index=True).to_excel(self.tmp, index=False,
                                                               engine="openpyxl")


def _field(value: object, sep: str) -> str:
    """A value as CSV text, quoted only when it holds the delimiter, a quote, ``\n`` or
    ``\r`` (Python's csv module and pandas leave a lone ``\r`` unquoted, and readers take
    it for the end of a line).

    >>> print(_field("a,b", ","), _field(4.0, ","), _field("x", ","), _field('a "b" c', ";"))
    "a,b" 4 x "a ""b"" c"
    """
    if value is None or isinstance(value, str):
        text = value or ""
    elif isinstance(value, bool):
        text = "true" if value else "false"  # as Arrow writes the other chunks
    else:
        whole = isinstance(value, float) and value.is_integer() and abs(value) < 1e15
        # numbers as Arrow writes them: 4, not 4.0
        text = str(int(value)) if whole and isinstance(value, float) else \
            repr(value) if isinstance(value, float) else str(value)
    if any(c in text for c in (sep, '"', "\n", "\r")):
        return '"' + text.replace('"', '""') + '"'
    return text
