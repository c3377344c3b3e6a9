"""The file formats. Each writer takes the rows as they stream out of PostgreSQL, writes them
out, calls ``on_rows(n)`` with the running count, and answers the number of rows.

CSV is PostgreSQL's own CSV (``COPY ... (FORMAT csv, HEADER)``) passed through untouched (its
query has already put ``'`` before text that a spreadsheet would take for a formula: see
``datasets``). CSV and Parquet write to a file object (the export's S3 upload); XLSX needs a file
on disk (the format is a zip written at the end).
Parquet and XLSX read that CSV as Arrow record batches with the dataset's column types (a
bounded block at a time) and write them out: Parquet one row group per batch, XLSX row by row in
xlsxwriter's constant-memory mode.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from domain.exports.service import XLSX_MAX_ROWS

OnRows = Callable[[int], None]

BLOCK_BYTES = 8 << 20  # Arrow's CSV block: the unit of memory and of a Parquet row group


class TooManyRowsForXlsx(Exception):
    code = "too_many_rows_for_xlsx"

    def __init__(self, rows: int) -> None:
        super().__init__(
            f"{rows} rows do not fit in one XLSX sheet ({XLSX_MAX_ROWS} at most); "
            "choose CSV or Parquet, or a narrower range"
        )
        self.rows = rows


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the data of a COPY ... TO STDOUT)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def write_csv(chunks: Iterable[bytes], out: BinaryIO, on_rows: OnRows) -> int:
    """Lines are counted for progress only (a quoted value may hold a newline); the caller
    takes the exact count from COPY."""
    lines = 0
    for chunk in chunks:
        out.write(chunk)
        lines += chunk.count(b"\n")
        on_rows(max(lines - 1, 0))
    return max(lines - 1, 0)


def arrow_batches(chunks: Iterable[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """PostgreSQL CSV without a header, as record batches of ``schema``: unquoted empty is
    NULL, a quoted empty string stays a string; booleans are t/f. No rows: no batches (the
    file then holds the schema alone; Arrow refuses to read an empty CSV)."""
    chunks = iter(chunks)
    first = next((chunk for chunk in chunks if chunk), None)
    if first is None:
        return
    reader = pacsv.open_csv(
        io.BufferedReader(ChunkReader(itertools.chain([first], chunks)), buffer_size=1 << 20),
        read_options=pacsv.ReadOptions(column_names=schema.names, block_size=BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    for batch in reader:
        yield batch.cast(schema) if batch.schema != schema else batch


def write_parquet(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, out: BinaryIO, on_rows: OnRows
) -> int:
    rows = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
            on_rows(rows)
    return rows


def write_xlsx(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, path: Path, on_rows: OnRows
) -> int:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "remove_timezone": True,  # the values are UTC (docs/exports.md)
            "strings_to_numbers": False,
            "strings_to_formulas": False,  # a participant's name is never a formula
            "strings_to_urls": False,
            "default_date_format": "yyyy-mm-dd hh:mm:ss",
        },
    )
    try:
        sheet = workbook.add_worksheet("data")
        bold = workbook.add_format({"bold": True})
        for i, field in enumerate(schema):
            sheet.write_string(0, i, field.name, bold)
            if pa.types.is_timestamp(field.type):  # UTC, as in every format
                sheet.set_column(i, i, 20)
        rows = 0
        for batch in batches:
            if rows + batch.num_rows > XLSX_MAX_ROWS:
                raise TooManyRowsForXlsx(rows + batch.num_rows)
            columns = [column.to_pylist() for column in batch.columns]
            for values in zip(*columns, strict=True):
                rows += 1
                sheet.write_row(rows, 0, values)
            on_rows(rows)
    finally:
        workbook.close()
    return rows
