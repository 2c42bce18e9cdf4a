"""The inference output keeps the input's CSV text: names and values quoted only where
CSV needs it."""

from __future__ import annotations

import pyarrow as pa

from conveyor.config import CsvOptions
from conveyor.serve.output import ChunkWriter


def _written(tmp_path, tables):
    writer = ChunkWriter(tmp_path / "out.csv", "csv", CsvOptions(), tsv=False)
    for table in tables:
        writer.write(table)
    writer.close()
    return (tmp_path / "out.csv").read_text(encoding="utf-8")


def test_plain_names_are_not_quoted_and_a_name_with_the_delimiter_is(tmp_path):
    first = pa.table({"when": ["2024-01-01"], "x, y": [1.5], "predict": [2.0]})
    second = pa.table({"when": ["2024-01-02"], "x, y": [2.5], "predict": [3.25]})
    assert _written(tmp_path, [first, second]) == (
        'when,"x, y",predict\n2024-01-01,1.5,2\n2024-01-02,2.5,3.25\n')


def test_a_value_that_needs_quotes_keeps_the_header_plain(tmp_path):
    table = pa.table({"a": ["one, two"], "predict": [1.0]})
    assert _written(tmp_path, [table]) == 'a,predict\n"one, two",1\n'
