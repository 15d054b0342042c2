"""Decoding and cell parsing shared by the readers.

Every failure raises :class:`~wattbit.errors.DataSourceError` naming the file, the 1-based line
and what was expected, so a user who downloads a newer file from a TSO site learns exactly what
changed.
"""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from wattbit.errors import DataSourceError

__all__ = ["NOT_APPLICABLE", "normalise", "parse_number", "read_rows"]

NOT_APPLICABLE = "-"
"""The TSOs' "not applicable" mark (全角 "－", NFKC-normalised to "-"): no plant of that kind
or no curtailment order in that hour. Readers map it to 0 MW and count it (see ImportReport)."""


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_rows(path: Path, encoding: str) -> list[tuple[int, list[str]]]:
    """Decode ``path`` strictly and split it into CSV rows.

    Returns ``[(line_number, cells), ...]`` with 1-based physical line numbers. A byte sequence
    that is not valid ``encoding`` raises DataSourceError with the line where it sits.

    path : file to read;  encoding : Python codec name ("cp932", "utf-8-sig", ...)
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = _line_of_offset(data, exc.start)
        raise DataSourceError(
            path, line, f"text encoded as {encoding}", data[exc.start : exc.start + 8]
        ) from None
    if encoding == "utf-8" and text.startswith("\ufeff"):
        text = text[1:]
    out: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for cells in reader:
            # reader.line_num is the physical line where this record ended
            out.append((reader.line_num, cells))
    except csv.Error as exc:
        raise DataSourceError(path, reader.line_num, "well-formed CSV", str(exc)) from None
    return out


def normalise(cell: str) -> str:
    """NFKC-normalise and strip a header or value cell.

    >>> normalise(" 太陽光（実績） ")
    '太陽光(実績)'
    >>> normalise("－")
    '-'
    """
    return unicodedata.normalize("NFKC", cell).strip()


def trimmed(cells: list[str]) -> tuple[str, ...]:
    """Normalised cells without the trailing empty ones.

    >>> trimmed(["DATE", "TIME", "", " "])
    ('DATE', 'TIME')
    """
    out = [normalise(c) for c in cells]
    while out and out[-1] == "":
        out.pop()
    return tuple(out)


def parse_number(text: str, path: Path, line: int, column: str) -> float | None:
    """Parse one numeric cell; ``None`` for an empty cell, ``nan`` never.

    Thousands separators are accepted ("27,154"); the not-applicable mark must be handled by the
    caller. Anything else raises DataSourceError naming the column.

    >>> parse_number("-1,959", Path("x.csv"), 3, "tie")
    -1959.0
    >>> parse_number("", Path("x.csv"), 3, "tie") is None
    True
    >>> parse_number("12a", Path("x.csv"), 3, "tie")
    Traceback (most recent call last):
    ...
    wattbit.errors.DataSourceError: x.csv:3: expected a number in column 'tie', found '12a'
    """
    s = text.strip().replace(",", "")
    if s == "":
        return None
    try:
        value = float(s)
    except ValueError:
        raise DataSourceError(path, line, f"a number in column {column!r}", text) from None
    if not math.isfinite(value):
        raise DataSourceError(path, line, f"a finite number in column {column!r}", text)
    return value


def iter_nonblank(rows: list[tuple[int, list[str]]], start: int) -> Iterator[tuple[int, list[str]]]:
    """Rows from index ``start`` on whose cells are not all empty."""
    for line, cells in rows[start:]:
        if any(c.strip() for c in cells):
            yield line, cells
