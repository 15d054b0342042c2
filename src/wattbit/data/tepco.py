"""Readers for TEPCO Power Grid's Tokyo-area demand files (でんき予報).

Two layouts, both in 万kW (= 10 MW) and JST:

* the daily ``YYYYMMDD_power_usage.csv`` (UTF-8): several CSV blocks; wattbit reads the hourly
  block ``DATE,TIME,当日実績(万kW),...`` (24 rows: hourly-average demand) and the 5-minute block
  ``DATE,TIME,当日実績(５分間隔値)(万kW),太陽光発電実績(５分間隔値)(万kW),...`` (288 rows), whose
  solar values are averaged over each hour's twelve 5-min values to give ``solar_mw``;
* the yearly ``juyo-YYYY.csv`` (UTF-8; its header text is double-encoded upstream, the numbers
  are fine): ``DATE,TIME,<demand 万kW>``, hourly demand only.

Source: TEPCO Power Grid でんき予報 CSVs as stored in github.com/dlxiii/epco_scraper (commit
291d33d); see ``tepco_juyo_dlxiii/PROVENANCE.md``. These files have no generation mix and no
curtailment columns; the other Tokyo columns stay NaN.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.data._text import check_regular_grid, normalise, parse_number, read_rows, trimmed
from wattbit.data.columns import HOURLY_COLUMN_NAMES
from wattbit.data.jukyu import JukyuFile, _parse_date, _parse_hour, jst_to_utc
from wattbit.errors import DataSourceError

__all__ = ["MW_PER_MAN_KW", "read_tepco_daily", "read_tepco_yearly"]

MW_PER_MAN_KW = 10.0
"""1 万kW = 10,000 kW = 10 MW (definition of the Japanese unit 万 = 10^4)."""

_HOURLY_HEAD = ("DATE", "TIME", "当日実績(万kW)")
_FIVE_MIN_HEAD = ("DATE", "TIME", "当日実績(5分間隔値)(万kW)", "太陽光発電実績(5分間隔値)(万kW)")


_HOUR_S = 3600
"""Slot of the hourly block and of the yearly file [s]."""
_FIVE_MIN_S = 300
"""Slot of the 5-minute block [s] (12 values an hour)."""

_DATE = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$")


def _block(rows, head: tuple[str, ...], path: Path) -> tuple[int, list[tuple[int, list[str]]]]:
    """The header line of the block headed ``head`` and its dated rows (up to the next block)."""
    for i, (line, cells) in enumerate(rows):
        if trimmed(cells)[: len(head)] == head:
            block = []
            for ln, c in rows[i + 1 :]:
                if not c or not _DATE.match(c[0].strip()):
                    break
                block.append((ln, c))
            if not block:
                raise DataSourceError(path, line + 1, "a dated row after this block header", ",".join(rows[i + 1][1]) if i + 1 < len(rows) else "")
            return line, block
    raise DataSourceError(path, None, f"a block headed {','.join(head)}")


def _expect_rows(block, n: int, head_line: int, path: Path) -> None:
    if len(block) != n:
        raise DataSourceError(path, head_line, f"{n} rows in the block under this header", f"{len(block)} rows")


def _stamp(cells: list[str], path: Path, line: int, minutes: bool) -> np.datetime64:
    y, m, d = _parse_date(cells[0], path, line)
    t = normalise(cells[1])
    hh, _, mm = t.partition(":")
    if not (hh.isdigit() and mm.isdigit() and len(mm) == 2 and int(hh) < 24 and int(mm) < 60):
        raise DataSourceError(path, line, "a time like 13:05", cells[1])
    if not minutes and mm != "00":
        raise DataSourceError(path, line, "an hour start like 13:00", cells[1])
    return np.datetime64(f"{y:04d}-{m:02d}-{d:02d}T{int(hh):02d}:{mm}", "s")


def read_tepco_daily(path: Path) -> JukyuFile:
    """Read one daily ``power_usage.csv``: 24 hourly demand values and the hourly mean solar.

    path : the daily file
    """
    path = Path(path)
    rows = read_rows(path, "utf-8")
    h_line, hourly = _block(rows, _HOURLY_HEAD, path)
    f_line, five = _block(rows, _FIVE_MIN_HEAD, path)
    h_t = np.array([_stamp(c, path, ln, False) for ln, c in hourly], dtype="datetime64[s]")
    midnight = h_t[0].astype("datetime64[D]").astype("datetime64[s]")  # the hourly block starts at 0:00
    check_regular_grid(path, h_t, [ln for ln, _ in hourly], _HOUR_S, first=midnight, noun="hour")
    _expect_rows(hourly, 24, h_line, path)
    f_t = np.array([_stamp(c, path, ln, True) for ln, c in five], dtype="datetime64[s]")
    check_regular_grid(path, f_t, [ln for ln, _ in five], _FIVE_MIN_S, first=h_t[0], noun="5-min value")
    _expect_rows(five, 288, f_line, path)
    demand, solar = [], []
    for ln, c in hourly:
        v = parse_number(c[2], path, ln, "当日実績(万kW)")
        if v is None:
            raise DataSourceError(path, ln, "a demand value in 当日実績(万kW)", "")
        demand.append(v * MW_PER_MAN_KW)
    for ln, c in five:
        if len(c) < 4:
            raise DataSourceError(path, ln, "4 columns", f"{len(c)} columns")
        v = parse_number(c[3], path, ln, "太陽光発電実績(5分間隔値)(万kW)")
        if v is None:
            raise DataSourceError(path, ln, "a solar value in 太陽光発電実績(5分間隔値)(万kW)", "")
        solar.append(v * MW_PER_MAN_KW)
    frame = pd.DataFrame(
        {"demand_mw": demand, "solar_mw": np.asarray(solar).reshape(24, 12).mean(axis=1)},
        index=jst_to_utc(h_t),
    ).reindex(columns=list(HOURLY_COLUMN_NAMES))
    return JukyuFile(path, "tokyo", frame, lines=24 + 288)


def read_tepco_yearly(path: Path) -> JukyuFile:
    """Read a yearly ``juyo-YYYY.csv``: hourly demand only.

    path : the yearly file
    """
    path = Path(path)
    rows = read_rows(path, "utf-8")
    start = None
    for i, (_, cells) in enumerate(rows[:5]):
        t = trimmed(cells)
        if t[:2] == ("DATE", "TIME") and len(t) == 3:
            start = i + 1
            break
    if start is None:
        raise DataSourceError(path, 2, "a header DATE,TIME,<demand 万kW> in the first lines")
    stamps, lines, demand = [], [], []
    for ln, cells in rows[start:]:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) < 3:
            raise DataSourceError(path, ln, "3 columns", f"{len(cells)} columns")
        y, m, d = _parse_date(cells[0], path, ln)
        h = _parse_hour(cells[1], "H:MM", path, ln)
        stamps.append(np.datetime64(f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:00", "s"))
        lines.append(ln)
        v = parse_number(cells[2], path, ln, "demand (万kW)")
        if v is None:
            raise DataSourceError(path, ln, "a demand value", "")
        demand.append(v * MW_PER_MAN_KW)
    if not stamps:
        raise DataSourceError(path, None, "at least one data row")
    t = np.array(stamps, dtype="datetime64[s]")
    check_regular_grid(path, t, lines, _HOUR_S, noun="hour")
    frame = pd.DataFrame({"demand_mw": demand}, index=jst_to_utc(t)).reindex(columns=list(HOURLY_COLUMN_NAMES))
    return JukyuFile(path, "tokyo", frame, lines=len(stamps))
