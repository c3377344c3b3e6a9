"""Reading back the XLSX files the exports write (no XLSX reader is a dependency): the first
sheet's cells, from the workbook's XML."""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime, timedelta
from io import BytesIO
from xml.etree import ElementTree

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
EPOCH = datetime(1899, 12, 30, tzinfo=UTC)


def _column(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref).group(0)
    n = 0
    for c in letters:
        n = n * 26 + ord(c) - 64
    return n - 1


def read_rows(data: bytes) -> list[list[object]]:
    """Rows of the first sheet: strings, numbers (float), booleans; empty cells are None."""
    with zipfile.ZipFile(BytesIO(data)) as book:
        shared: list[str] = []
        if "xl/sharedStrings.xml" in book.namelist():
            root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")) for si in root]
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iter(f"{{{NS['m']}}}row"):
        values: dict[int, object] = {}
        for cell in row.iter(f"{{{NS['m']}}}c"):
            kind = cell.get("t")
            if kind == "inlineStr":
                value: object = "".join(t.text or "" for t in cell.iter(f"{{{NS['m']}}}t"))
            else:
                v = cell.find("m:v", NS)
                if v is None:
                    continue
                if kind == "s":
                    value = shared[int(v.text)]
                elif kind == "b":
                    value = v.text == "1"
                elif kind == "str":
                    value = v.text
                else:
                    value = float(v.text)
            values[_column(cell.get("r"))] = value
        width = max(values) + 1 if values else 0
        rows.append([values.get(i) for i in range(width)])
    return rows


def excel_time(serial: float) -> datetime:
    """An Excel date serial (the exports write UTC) as an aware datetime, to the millisecond."""
    return EPOCH + timedelta(milliseconds=round(serial * 86_400_000))
