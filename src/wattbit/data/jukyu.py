"""Readers for the eight TSOs' hourly area supply-demand files (エリア需給実績, FY2016-FY2023 format).

Each TSO publishes its own CSV layout: encoding, comment lines, a header of one to three rows,
how date and time are written, the column order and the unit. Each layout is one
:class:`JukyuFormat` in :data:`FORMATS`; :func:`read_jukyu` reads any file of a layout and returns
the tidy hourly frame (UTC ``time`` index, the columns of :mod:`wattbit.data.columns`, in MW).

Source of the layouts: the files under ``area_jukyu_ryomakom/`` (github.com/ryomakom/
renewable_energy, commit debf120, byte copies of the TSOs' pages) and their PROVENANCE.md.
Values are hourly energies in MWh, i.e. hourly-average MW, except Shikoku (万kW = 10 MW, hourly
average). Timestamps are JST and mark the start of the hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.data._text import (
    NOT_APPLICABLE,
    check_regular_grid,
    iter_nonblank,
    normalise,
    parse_number,
    read_rows,
    trimmed,
)
from wattbit.data.columns import HOURLY_COLUMN_NAMES
from wattbit.errors import DataSourceError

__all__ = ["FORMATS", "JukyuFile", "JukyuFormat", "jst_to_utc", "read_jukyu"]

JST_OFFSET = pd.Timedelta(hours=9)
"""Japan Standard Time is UTC+9 all year (Japan has no daylight saving time)."""

_TIME_COLUMNS = ("datetime", "date", "time")

_HOUR_S = 3600
"""Slot of these files [s]: one row per hour."""


@dataclass(frozen=True)
class JukyuFormat:
    """One TSO's CSV layout.

    area : wattbit area name;  encoding : codec of the file;  header : the header rows exactly as
    they appear (NFKC-normalised, trailing empty cells dropped), searched for in the first lines;
    columns : what each position holds — a canonical column name, ``"datetime"``, ``"date"``,
    ``"time"`` or None (ignored, e.g. the TSO's own total);  time_style : ``"H:MM"`` or ``"H時"``;
    date_once_per_day : the date appears only on each day's first row (Hokkaido);
    mw_per_unit : MW per file unit [MW] (1 for MWh per hour, 10 for 万kW);  footer : first-cell
    prefix of a summary row that ends the data (Shikoku's 合計), or None.
    """

    area: str
    encoding: str
    header: tuple[tuple[str, ...], ...]
    columns: tuple[str | None, ...]
    time_style: str = "H:MM"
    date_once_per_day: bool = False
    mw_per_unit: float = 1.0
    footer: str | None = None

    def __post_init__(self) -> None:
        known = set(HOURLY_COLUMN_NAMES) | set(_TIME_COLUMNS)
        bad = [c for c in self.columns if c is not None and c not in known]
        if bad:
            raise ValueError(f"format {self.area!r}: unknown column names {bad}")


_STD = (  # the column order most TSOs use after the time columns
    "demand_mw", "nuclear_mw", "thermal_mw", "hydro_mw", "geothermal_mw", "biomass_mw",
    "solar_mw", "solar_curtailed_mw", "wind_mw", "wind_curtailed_mw",
    "pumped_storage_mw", "tie_net_import_mw",
)
_KANSAI_KYUSHU_GROUP = ("", "", "", "", "", "", "", "太陽光", "太陽光", "風力", "風力")


def _kansai_kyushu(area: str, pumped: str) -> JukyuFormat:
    return JukyuFormat(
        area, "cp932",
        header=(
            _KANSAI_KYUSHU_GROUP,
            ("DATE_TIME", "エリア需要〔MWh〕", "原子力〔MWh〕", "火力〔MWh〕", "水力〔MWh〕", "地熱〔MWh〕",
             "バイオマス〔MWh〕", "実績〔MWh〕", "抑制量〔MWh〕", "実績〔MWh〕", "抑制量〔MWh〕",
             f"{pumped}〔MWh〕", "連系線〔MWh〕"),
        ),
        columns=("datetime", *_STD),
    )


FORMATS: dict[str, JukyuFormat] = {
    "hokkaido": JukyuFormat(
        "hokkaido", "cp932",
        header=(
            ("", "", "", "供給力"),
            ("月日", "時刻", "エリア需要", "原子力", "火力", "水力", "地熱", "バイオマス", "太陽光実績",
             "太陽光抑制量", "風力実績", "風力抑制量", "揚水", "連系線", "供給力合計"),
        ),
        columns=("date", "time", *_STD, None),
        time_style="H時",
        date_once_per_day=True,
    ),
    "tohoku": JukyuFormat(
        "tohoku", "cp932",
        header=(
            ("DATE_TIME", "エリア需要〔MWh〕", "水力〔MWh〕", "火力〔MWh〕", "原子力〔MWh〕", "太陽光実績〔MWh〕",
             "太陽光抑制量〔MWh〕", "風力実績〔MWh〕", "風力抑制量〔MWh〕", "地熱〔MWh〕", "バイオマス〔MWh〕",
             "揚水〔MWh〕", "連系線〔MWh〕"),
        ),
        columns=("datetime", "demand_mw", "hydro_mw", "thermal_mw", "nuclear_mw", "solar_mw",
                 "solar_curtailed_mw", "wind_mw", "wind_curtailed_mw", "geothermal_mw", "biomass_mw",
                 "pumped_storage_mw", "tie_net_import_mw"),
    ),
    "chubu": JukyuFormat(
        "chubu", "cp932",
        header=(
            ("", "", "", "", "", "", "", "", "", "", "", "", "", "単位:MWh"),
            ("DATE", "TIME", "エリア需要", "原子力", "火力", "水力", "地熱", "バイオマス", "太陽光(実績)",
             "太陽光(出力制御量)", "風力(実績)", "風力(出力制御量)", "揚水", "連系線"),
        ),
        columns=("date", "time", *_STD),
    ),
    "hokuriku": JukyuFormat(
        "hokuriku", "cp932",
        header=(
            ("", "", "エリア需要", "原子力", "火力", "水力", "地熱", "バイオマス", "太陽光実績", "太陽光抑制量",
             "風力実績", "風力抑制量", "揚水", "連系線"),
            ("DATE", "TIME", *(("MWh",) * 12)),
        ),
        columns=("date", "time", *_STD),
    ),
    "kansai": _kansai_kyushu("kansai", "揚水"),
    "chugoku": JukyuFormat(
        "chugoku", "cp932",
        header=(
            ("", "", "需要実績(MWh)", "供給実績(MWh)"),
            ("DATE", "TIME", "需要", "原子力", "火力", "水力", "地熱", "バイオマス", "太陽光(実績)",
             "太陽光(抑制量)", "風力(実績)", "風力(抑制量)", "揚水", "連系線潮流"),
        ),
        columns=("date", "time", *_STD),
    ),
    "shikoku": JukyuFormat(
        "shikoku", "utf-8-sig",
        header=(
            ("", "", "", "", "", "", "", "", "", "", "", "", "", "", "(単位:万kW)"),
            ("DATE", "TIME", "エリア需要", "供給力"),
            ("", "", "", "原子力", "火力", "水力", "地熱", "バイオマス", "太陽光", "", "風力", "", "揚水", "連系線", "合計"),
            ("", "", "", "", "", "", "", "", "実績", "制御量", "実績", "制御量"),
        ),
        columns=("date", "time", *_STD, None),
        mw_per_unit=10.0,
        footer="合計",
    ),
    "kyushu": _kansai_kyushu("kyushu", "揚水等"),
}


@dataclass
class JukyuFile:
    """What one file yielded.

    path : the file;  area : area name;  frame : tidy hourly frame (UTC ``time`` index, MW columns);
    not_applicable : per column, how many "－" (not applicable) cells were read as 0 MW;
    unreported : columns the file leaves entirely empty (kept as NaN);  lines : data rows read.
    """

    path: Path
    area: str
    frame: pd.DataFrame
    not_applicable: dict[str, int] = field(default_factory=dict)
    unreported: tuple[str, ...] = ()
    lines: int = 0


def jst_to_utc(naive_jst: np.ndarray) -> pd.DatetimeIndex:
    """Naive JST wall-clock instants to a UTC DatetimeIndex named ``time``.

    >>> jst_to_utc(np.array(["2021-04-01T00:00"], dtype="datetime64[s]"))[0]
    Timestamp('2021-03-31 15:00:00+0000', tz='UTC')
    """
    idx = pd.DatetimeIndex(np.asarray(naive_jst, dtype="datetime64[s]") - np.timedelta64(9, "h"))
    return idx.tz_localize("UTC").rename("time")


def _find_header(rows: list[tuple[int, list[str]]], fmt: JukyuFormat, path: Path) -> int:
    """Index in ``rows`` of the first data row after ``fmt.header``."""
    n = len(fmt.header)
    norm = [trimmed(cells) for _, cells in rows[:40]]
    for i in range(len(norm) - n + 1):
        if all(norm[i + k] == fmt.header[k] for k in range(n)):
            return i + n
    # a file saved in another encoding: say so rather than "header not found"
    for alt in ("utf-8-sig", "cp932"):
        if alt == fmt.encoding:
            continue
        try:
            alt_rows = read_rows(path, alt)
        except DataSourceError:
            continue
        alt_norm = [trimmed(cells) for _, cells in alt_rows[:40]]
        if any(all(alt_norm[i + k] == fmt.header[k] for k in range(n)) for i in range(len(alt_norm) - n + 1)):
            raise DataSourceError(path, 1, f"text encoded as {fmt.encoding} (the {fmt.area} TSO's encoding)",
                                  f"{alt} text")
    # name the header row we expected and what the closest line holds
    key = fmt.header[-1] if fmt.header[-1] and fmt.header[-1][0] else fmt.header[0]
    line, cells = rows[0] if rows else (1, [])
    for ln, cells_ in rows[:40]:
        t = trimmed(cells_)
        if t and t[0] == key[0]:
            line, cells = ln, cells_
            break
    raise DataSourceError(
        path, line, f"the {fmt.area} header {','.join(key)} (as in the TSO's published layout)",
        ",".join(trimmed(cells)),
    )


def _parse_date(text: str, path: Path, line: int) -> tuple[int, int, int]:
    parts = normalise(text).split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise DataSourceError(path, line, "a date like 2021/4/1", text)
    y, m, d = (int(p) for p in parts)
    if not (1 <= m <= 12 and 1 <= d <= 31 and 1900 < y < 2200):
        raise DataSourceError(path, line, "a valid date YYYY/M/D", text)
    return y, m, d


def _parse_hour(text: str, style: str, path: Path, line: int) -> int:
    t = normalise(text)
    if style == "H時":
        ok = t.endswith("時") and t[:-1].isdigit()
        hour = int(t[:-1]) if ok else -1
    else:
        hh, _, mm = t.partition(":")
        ok = hh.isdigit() and mm == "00"
        hour = int(hh) if ok else -1
    if not 0 <= hour <= 23:
        want = "an hour like 13時" if style == "H時" else "an hour start like 13:00"
        raise DataSourceError(path, line, want, text)
    return hour


def read_jukyu(path: Path, fmt: JukyuFormat) -> JukyuFile:
    """Read one area supply-demand file of layout ``fmt``.

    Raises DataSourceError (file, line, expectation) for a wrong encoding, a changed header, a
    short row, a bad number, an empty cell in a column that has values elsewhere in the file, a
    gap (a missing hour) or a duplicate hour. The not-applicable mark "－" is read as 0 MW and
    counted; a column the file leaves empty throughout is kept as NaN and listed.

    path : the CSV file;  fmt : its layout (one of :data:`FORMATS`)
    """
    path = Path(path)
    rows = read_rows(path, fmt.encoding)
    start = _find_header(rows, fmt, path)
    value_cols = [(j, c) for j, c in enumerate(fmt.columns) if c is not None and c not in _TIME_COLUMNS]
    pos = {c: j for j, c in enumerate(fmt.columns) if c in _TIME_COLUMNS}
    n_min = max(j for j, c in enumerate(fmt.columns) if c is not None) + 1

    stamps: list[np.datetime64] = []
    lines: list[int] = []
    values = {c: [] for _, c in value_cols}
    na_count = {c: 0 for _, c in value_cols}
    date: tuple[int, int, int] | None = None
    ended_at: int | None = None
    for line, cells in iter_nonblank(rows, start):
        if ended_at is not None:
            raise DataSourceError(path, line, f"nothing after the {fmt.footer} row on line {ended_at}",
                                  ",".join(cells))
        first = normalise(cells[0]) if cells else ""
        if fmt.footer and first.startswith(fmt.footer):
            ended_at = line
            continue
        if len(cells) < n_min:
            raise DataSourceError(path, line, f"{n_min} columns", f"{len(cells)} columns")
        if "datetime" in pos:
            d_text, _, t_text = normalise(cells[pos["datetime"]]).partition(" ")
            date = _parse_date(d_text, path, line)
            hour = _parse_hour(t_text, fmt.time_style, path, line)
        else:
            d_text = cells[pos["date"]]
            if d_text.strip() or not fmt.date_once_per_day:
                date = _parse_date(d_text, path, line)
            elif date is None:
                raise DataSourceError(path, line, "a date on the first data row", d_text)
            hour = _parse_hour(cells[pos["time"]], fmt.time_style, path, line)
        try:
            stamps.append(np.datetime64(f"{date[0]:04d}-{date[1]:02d}-{date[2]:02d}T{hour:02d}:00", "s"))
        except ValueError:
            raise DataSourceError(path, line, "a calendar date", "/".join(map(str, date))) from None
        lines.append(line)
        for j, col in value_cols:
            cell = normalise(cells[j])
            if cell == NOT_APPLICABLE:
                na_count[col] += 1
                values[col].append(0.0)
            else:
                values[col].append(parse_number(cell, path, line, col))

    if not stamps:
        raise DataSourceError(path, None, "at least one data row after the header")
    t = np.array(stamps, dtype="datetime64[s]")
    check_regular_grid(path, t, lines, _HOUR_S, noun="hour")

    data: dict[str, np.ndarray] = {}
    unreported: list[str] = []
    for _, col in value_cols:
        vals = values[col]
        missing = [k for k, v in enumerate(vals) if v is None]
        if len(missing) == len(vals):
            unreported.append(col)
            data[col] = np.full(len(vals), np.nan)
            continue
        if missing:
            raise DataSourceError(
                path, lines[missing[0]], f"a number in column {col!r} (it has values on other rows)", ""
            )
        data[col] = np.asarray(vals, dtype=float) * fmt.mw_per_unit
    frame = pd.DataFrame(data, index=jst_to_utc(t))
    frame = frame.reindex(columns=list(HOURLY_COLUMN_NAMES))
    return JukyuFile(
        path, fmt.area, frame,
        not_applicable={c: n for c, n in na_count.items() if n},
        unreported=tuple(unreported),
        lines=len(stamps),
    )
