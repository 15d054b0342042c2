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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.errors import DataSourceError

__all__ = ["HALF_HOUR_S", "NOT_APPLICABLE", "check_half_hour_grid", "check_regular_grid", "jst_slot_start",
           "normalise", "parse_number", "read_rows"]

HALF_HOUR_S = 1800
"""Length of one market / area-data slot [s] (JEPX and the TSOs publish 48 slots a day)."""

NOT_APPLICABLE = "-"
"""The TSOs' "not applicable" mark (全角 "－", NFKC-normalised to "-"): no plant of that kind
or no curtailment order in that hour. Readers map it to 0 MW and count it (see ImportReport)."""


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_rows(path: Path, encoding: str) -> list[tuple[int, list[str]]]:
    """Decode ``path`` strictly and split it into CSV rows.

    Returns ``[(line_number, cells), ...]`` with 1-based physical line numbers. A byte sequence
    that is not valid ``encoding`` raises DataSourceError with the line where it sits.

    A path that is missing or cannot be read raises DataSourceError too (not the OSError).

    path : file to read;  encoding : Python codec name ("cp932", "utf-8-sig", ...)

    >>> read_rows(Path("no/such/file.csv"), "utf-8")
    Traceback (most recent call last):
    ...
    wattbit.errors.DataSourceError: no/such/file.csv: expected an existing, readable file (check the path, or download the file again), found 'No such file or directory'
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:  # missing, a folder, no permission
        raise DataSourceError(
            path, None, "an existing, readable file (check the path, or download the file again)",
            exc.strerror or type(exc).__name__,
        ) from None
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


def jst_slot_start(start: pd.Timestamp) -> str:
    """The default way to show a slot in an error: its JST start.

    >>> jst_slot_start(pd.Timestamp("2024-04-01 09:30"))
    '2024-04-01 09:30 JST'
    """
    return f"{start:%Y-%m-%d %H:%M} JST"


def check_regular_grid(
    path: Path,
    starts: np.ndarray,
    lines: Sequence[int],
    step_s: int,
    label: Callable[[pd.Timestamp], str] = jst_slot_start,
    *,
    first: np.datetime64 | None = None,
    noun: str = "slot",
) -> None:
    """Check that rows hold consecutive slots of ``step_s``: none missing, none repeated, in order.

    The first row sets the grid (or ``first``, where the file's layout fixes where it starts);
    row ``i`` must then start ``i`` × ``step_s`` later. The first row that does not raises
    DataSourceError with its line, the slot expected there, the slot found and the fix (restore
    the missing rows, delete the repeated row, sort the rows, or remove rows before the first).

    path : the file (for the message);  starts : slot starts, naive JST, ``datetime64[s]``;
    lines : 1-based line of each row;  step_s : slot length [s];  label : shows a slot start as the
    file writes it (a reader whose labels are not slot starts passes its own, e.g. Kyushu's end
    labels);  first : the start the first row must have (None: whatever it has);  noun : what one
    row is called in the message ("slot", "hour", "5-min value")

    >>> t = np.array(["2024-04-01T00:00", "2024-04-01T01:00", "2024-04-01T03:00"], "datetime64[s]")
    >>> check_regular_grid(Path("x.csv"), t[:2], [3, 4], 3600, noun="hour")
    >>> check_regular_grid(Path("x.csv"), t, [3, 4, 5], 3600, noun="hour")
    Traceback (most recent call last):
    ...
    wattbit.errors.DataSourceError: x.csv:5: expected the hour 2024-04-01 02:00 JST on this line (a gap: 1 hour missing (2024-04-01 02:00 JST); restore the missing rows, e.g. download the complete file again), found '2024-04-01 03:00 JST'
    """
    t = np.asarray(starts, dtype="datetime64[s]")
    if t.size == 0:
        return
    step = np.timedelta64(int(step_s), "s")
    origin = t[0] if first is None else np.datetime64(first, "s")
    want = origin + np.arange(len(t)) * step
    bad = np.flatnonzero(t != want)
    if not bad.size:
        return
    i = int(bad[0])
    expected, found = pd.Timestamp(want[i]), pd.Timestamp(t[i])
    if t[i] > want[i]:
        n = int((t[i] - want[i]) // step)
        span = label(expected) if n == 1 else f"{label(expected)} .. {label(pd.Timestamp(t[i] - step))}"
        why = (f"a gap: {n} {noun}{'s' if n > 1 else ''} missing ({span}); "
               "restore the missing rows, e.g. download the complete file again")
    elif i == 0:
        why = f"this row is before the first {noun} the file covers; remove the rows before {label(expected)}"
    elif t[i] == t[i - 1]:
        why = f"a duplicate: this row repeats the {noun} {label(found)} of line {lines[i - 1]}; delete the repeated row"
    else:
        why = f"out of order: this row goes back to {label(found)}; sort the rows by time"
    raise DataSourceError(path, lines[i], f"the {noun} {label(expected)} on this line ({why})", label(found))


def check_half_hour_grid(
    path: Path,
    starts: np.ndarray,
    lines: Sequence[int],
    label: Callable[[pd.Timestamp], str] = jst_slot_start,
) -> None:
    """:func:`check_regular_grid` on 30-min slots (the TSOs' common format and JEPX).

    >>> t = np.array(["2024-04-01T00:00", "2024-04-01T00:30", "2024-04-01T01:30"], "datetime64[s]")
    >>> check_half_hour_grid(Path("x.csv"), t[:2], [3, 4])
    >>> check_half_hour_grid(Path("x.csv"), t, [3, 4, 5])
    Traceback (most recent call last):
    ...
    wattbit.errors.DataSourceError: x.csv:5: expected the slot 2024-04-01 01:00 JST on this line (a gap: 1 slot missing (2024-04-01 01:00 JST); restore the missing rows, e.g. download the complete file again), found '2024-04-01 01:30 JST'
    """
    check_regular_grid(path, starts, lines, HALF_HOUR_S, label)
