"""The one reader of a user's table file (CSV/TSV, Parquet, Excel), chosen by extension.

Every command that reads a file a user names goes through :func:`read_user_table`:
the path must be a regular file, a CSV header can be checked within a bounded
number of characters before pandas reads the whole file, and each failure
(empty, not decodable, not parseable) becomes one readable error. The commands
word these errors differently (``conveyor init`` speaks of a data file, an
update of the source, inference of the input file), so the wording is a
:class:`Wording` each caller passes; the checks are the same.
"""

from __future__ import annotations

import csv as csvlib
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.parquet as pq

from conveyor.errors import ConveyorError, InputError
from conveyor.io.userfiles import check_regular_file

if TYPE_CHECKING:
    from conveyor.config import CsvOptions

EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet",
              ".xlsx": "excel"}

# a header is read from at most this many characters, and may name at most this many
# columns: the cost of refusing any file stays bounded whatever its size
HEADER_CHARS = 8 << 20
MAX_COLUMNS = 100_000


@dataclass(frozen=True)
class Wording:
    """How one command names a user's file and words each failure to read it.

    Templates are filled with ``path``, ``kind`` (named through ``kinds``),
    ``reason``, ``encoding``, ``byte`` and ``suffix``.
    """

    error: type[ConveyorError]
    file: str  # names the file: "input file" -> "input file 'x.csv' not found"
    empty: str
    unreadable: str
    undecodable: str | None  # None: a UnicodeDecodeError goes to the caller (it tries another)
    unsupported: str = ("'{path}' has an unsupported extension '{suffix}'; use one of "
                        "{extensions}")
    kinds: Mapping[str, str] = field(default_factory=dict)
    catch: tuple[type[Exception], ...] = (ValueError, OSError, KeyError)  # become `unreadable`
    tidy: bool = False  # drop pandas' tokenizer jargon ("C error: ") from the reason

    def fail(self, template: str, path: Path, **values: object) -> ConveyorError:
        """The error for ``template`` filled in for ``path``."""
        return self.error(template.format(path=path, **values))


INPUT = Wording(
    InputError, "input file", empty="input file '{path}' is empty",
    unreadable="cannot read input file '{path}' as {kind}: {reason}",
    undecodable=("input file '{path}' is not valid {encoding} text (byte {byte}); "
                 "re-save it as {encoding}"),
    catch=(ValueError, OSError))


@dataclass(frozen=True)
class TableRead:
    """What to read of a table file, beyond its path."""

    delimiter: str = ","
    encoding: str = "utf-8"
    decimal: str = "."
    sheet: str | int = 0
    rows: int | None = None  # only the first rows (a sample); None: all
    columns: list[str] | None = None  # CSV: only these columns
    as_text: bool = False  # CSV: every cell as written (text, no missing markers)
    check_header: bool = False  # CSV: bounded header checks before pandas reads it all

    @classmethod
    def of(cls, csv: CsvOptions, sheet: str | int = 0, as_text: bool = False,
           check_header: bool = False) -> TableRead:
        """The whole file, read with the config's CSV options."""
        return cls(csv.delimiter, csv.encoding, csv.decimal, sheet=sheet, as_text=as_text,
                   check_header=check_header)


def file_kind(path: Path) -> str | None:
    """Return the reader kind of a file from its extension, None when unsupported.

    >>> file_kind(Path("a.TSV")), file_kind(Path("a.json"))
    ('csv', None)
    """
    return EXTENSIONS.get(path.suffix.lower())


def separator(path: Path, delimiter: str) -> str:
    """A ``.tsv`` file is split on tabs whatever the configured delimiter."""
    return "\t" if path.suffix.lower() == ".tsv" else delimiter


def read_user_table(path: Path, kind: str | None, read: TableRead,
                    wording: Wording = INPUT) -> pd.DataFrame:
    """Read a user's table file; ``kind`` None means by its extension."""
    check_regular_file(path, wording.file, wording.error)
    if kind is None:
        kind = file_kind(path)
        if kind is None:
            raise wording.fail(wording.unsupported, path, suffix=path.suffix,
                               extensions=sorted(EXTENSIONS))
    try:
        return _read(path, kind, read, wording)
    except UnicodeDecodeError as exc:
        if wording.undecodable is None:
            raise
        raise wording.fail(wording.undecodable, path, encoding=read.encoding,
                           byte=exc.start) from None
    except pd.errors.EmptyDataError:
        raise wording.fail(wording.empty, path) from None
    except wording.catch as exc:
        reason = str(exc)
        if wording.tidy:
            reason = " ".join(reason.split("C error: ")[-1].split())
        raise wording.fail(wording.unreadable, path, kind=wording.kinds.get(kind, kind),
                           reason=reason) from None


def _read(path: Path, kind: str, read: TableRead, wording: Wording) -> pd.DataFrame:
    if kind == "csv":
        sep = separator(path, read.delimiter)
        if read.check_header:
            csv_header(path, read.encoding, sep, wording)
        if read.as_text:
            return pd.read_csv(path, sep=sep, encoding=read.encoding, dtype=str,
                               keep_default_na=False, nrows=read.rows, usecols=read.columns)
        return pd.read_csv(path, sep=sep, encoding=read.encoding, decimal=read.decimal,
                           low_memory=False, nrows=read.rows, usecols=read.columns)
    if kind == "parquet":
        if read.rows is None:
            return pd.read_parquet(path)
        parquet = pq.ParquetFile(path)
        first = next(parquet.iter_batches(batch_size=read.rows), None)
        return (first.to_pandas() if first is not None
                else parquet.schema_arrow.empty_table().to_pandas())
    return pd.read_excel(path, sheet_name=read.sheet, nrows=read.rows, engine="openpyxl")


def csv_header(path: Path, encoding: str, sep: str, wording: Wording = INPUT) -> list[str]:
    """Return the column names of a CSV file, refusing a header that is too long, too
    wide, or repeats a name; reads at most HEADER_CHARS characters."""
    try:
        with open(path, encoding=encoding, newline="") as handle:
            head = handle.read(HEADER_CHARS)
    except UnicodeDecodeError as exc:
        if wording.undecodable is None:
            raise
        raise wording.fail(wording.undecodable, path, encoding=encoding,
                           byte=exc.start) from None
    text = io.StringIO(head)
    try:
        header = next(csvlib.reader(text, delimiter=sep), None)
    except csvlib.Error as exc:  # e.g. a cell over csv.field_size_limit() characters
        raise wording.error(f"{wording.file} '{path}' has a header conveyor cannot read "
                            f"({exc}); column names must be short text on the first "
                            "line") from None
    if len(head) == HEADER_CHARS and text.tell() == len(head):
        raise wording.error(f"{wording.file} '{path}' has a header line longer than "
                            f"{HEADER_CHARS:,} characters; column names must be on the first "
                            "line, one per column")
    if not header:
        raise wording.fail(wording.empty, path)
    check_names(path, header, wording)
    if header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    return header


def check_names(path: Path, names: list[str], wording: Wording = INPUT) -> None:
    """Refuse more than MAX_COLUMNS columns or a repeated name (in linear time)."""
    if len(names) > MAX_COLUMNS:
        raise wording.error(f"{wording.file} '{path}' has {len(names):,} columns, more than "
                            f"the {MAX_COLUMNS:,} conveyor reads; keep the model's columns")
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        shown = ", ".join(repr(n[:40]) for n in repeated[:10])
        more = f" and {len(repeated) - 10} more" if len(repeated) > 10 else ""
        raise wording.error(f"{wording.file} '{path}' repeats column name(s) {shown}{more}; "
                            "give each column its own name")
