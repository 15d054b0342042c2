"""Reader for the TSOs' common area supply-demand format (エリア需給実績, April 2024 onward).

Since FY2024 all ten TSOs publish monthly files named ``eria_jukyu_YYYYMM_NN.csv`` (NN = area
code 01 Hokkaido .. 10 Okinawa) with one layout: a unit row ``単位[MW平均]``, then a header
``DATE,TIME,エリア需要,原子力,火力(LNG),火力(石炭),火力(石油),火力(その他),[火力出力制御量,]水力,地熱,
バイオマス,[バイオマス出力制御量,]太陽光発電実績,太陽光出力制御量,風力発電実績,風力出力制御量,揚水,蓄電池,
連系線,その他,合計`` and one row per 30-min slot, values in MW averaged over the slot.

Differences between TSOs, all handled here: the encoding (Tokyo UTF-8, the others CP932),
full-width or half-width brackets, dates written ``2026/4/1``, ``2026/04/01`` or ``20260401``,
quoted cells (Kyushu), and the time label: Kyushu labels each slot by its **end** (``0:30`` ..
``24:00``), the others by its start. Columns are found by name.

wattbit's table is hourly: each hour is the mean of its two half-hour slots (both must be
present). The four thermal columns are summed into ``thermal_mw``; 蓄電池 (battery), その他
(other), 合計 (total) and the thermal/biomass curtailment columns have no place in the table yet
and are not read.

Layout source: the TSOs' published files (e.g. Kyushu Electric Power Transmission and
Distribution, エリア需給実績 page), as seen in real files of March-April 2026.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.data._text import (
    HALF_HOUR_S,
    check_half_hour_grid,
    jst_slot_start,
    parse_number,
    read_rows,
    trimmed,
)
from wattbit.data.columns import HOURLY_COLUMN_NAMES
from wattbit.data.jukyu import JukyuFile, jst_to_utc
from wattbit.domain._validate import area_name
from wattbit.domain.area import AREA_NAMES
from wattbit.errors import DataSourceError

__all__ = ["AREA_BY_CODE", "ERIA_ENCODING", "ERIA_FILE", "SLOT_LABEL_IS_END", "read_eria_jukyu"]

ERIA_FILE = re.compile(r"^eria_jukyu_(\d{6})_(\d{2})\.csv$")
"""The TSOs' file name: month YYYYMM and area code NN."""

AREA_BY_CODE: dict[str, str] = {f"{i + 1:02d}": name for i, name in enumerate(AREA_NAMES)}
"""Area code in the file name -> area name (01 hokkaido .. 10 okinawa, OCCTO's order)."""

ERIA_ENCODING: dict[str, str] = {a: ("utf-8" if a == "tokyo" else "cp932") for a in AREA_NAMES}
"""Encoding per TSO: Tokyo publishes UTF-8, the other TSOs CP932 (seen in the published files;
Tohoku's assumed CP932)."""

SLOT_LABEL_IS_END: frozenset[str] = frozenset({"kyushu"})
"""TSOs that label a slot by its end time (Kyushu writes 0:30 .. 24:00)."""

_COLUMNS = {
    "エリア需要": "demand_mw",
    "原子力": "nuclear_mw",
    "火力(LNG)": "thermal_mw",
    "火力(石炭)": "thermal_mw",
    "火力(石油)": "thermal_mw",
    "火力(その他)": "thermal_mw",
    "水力": "hydro_mw",
    "地熱": "geothermal_mw",
    "バイオマス": "biomass_mw",
    "太陽光発電実績": "solar_mw",
    "太陽光出力制御量": "solar_curtailed_mw",
    "風力発電実績": "wind_mw",
    "風力出力制御量": "wind_curtailed_mw",
    "揚水": "pumped_storage_mw",
    "連系線": "tie_net_import_mw",
}


def _stamp(date: str, time: str, path: Path, line: int) -> np.datetime64:
    d = date.strip()
    if re.fullmatch(r"\d{8}", d):
        y, m, dd = int(d[:4]), int(d[4:6]), int(d[6:])
    else:
        parts = d.split("/")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise DataSourceError(path, line, "a date like 2026/4/1 or 20260401", date)
        y, m, dd = (int(p) for p in parts)
    hh, _, mm = time.strip().partition(":")
    if not (hh.isdigit() and mm in ("00", "30") and int(hh) <= 24):
        raise DataSourceError(path, line, "a half-hour time like 13:30", time)
    try:
        day = np.datetime64(f"{y:04d}-{m:02d}-{dd:02d}", "s")
    except ValueError:
        raise DataSourceError(path, line, "a calendar date", date) from None
    return day + np.timedelta64(int(hh) * 3600 + int(mm) * 60, "s")


def _end_label(start: pd.Timestamp) -> str:
    """A slot as an end-labelling TSO writes it (the last slot of a day is ``24:00``).

    >>> _end_label(pd.Timestamp("2026-04-01 23:30"))
    '2026-04-01 23:30 JST (labelled 2026/04/01 24:00)'
    """
    end = start + pd.Timedelta(seconds=HALF_HOUR_S)
    day, hour = (start, 24) if (end.hour, end.minute) == (0, 0) else (end, end.hour)
    return f"{jst_slot_start(start)} (labelled {day:%Y/%m/%d} {hour}:{end.minute:02d})"


def read_eria_jukyu(path: Path, area: str) -> JukyuFile:
    """Read one common-format file of ``area`` into the hourly tidy frame.

    Raises DataSourceError for a wrong encoding, a missing column, a bad number, a gap or a
    repeated slot, or an hour with only one of its half-hours.

    path : the ``eria_jukyu_YYYYMM_NN.csv`` file;  area : its area, by name or code in any case
    (as :func:`wattbit.domain.area` reads it: "Tokyo", "TK"; an unknown name raises UnknownName)
    """
    area = area_name("read_eria_jukyu", "area", area)
    path = Path(path)
    rows = read_rows(path, ERIA_ENCODING[area])
    head_i = next((i for i, (_, c) in enumerate(rows[:10]) if trimmed(c)[:2] == ("DATE", "TIME")), None)
    if head_i is None:
        raise DataSourceError(path, 2, "a header row starting DATE,TIME (TSO common format)")
    head_line, head = rows[head_i]
    names = trimmed(head)
    pos: dict[str, list[int]] = {}
    for j, n in enumerate(names):
        if n in _COLUMNS:
            pos.setdefault(_COLUMNS[n], []).append(j)
    missing = [n for n, c in _COLUMNS.items() if c not in pos or (c == "thermal_mw" and len(pos[c]) < 4)]
    missing = [n for n in missing if n not in names]
    if missing:
        raise DataSourceError(path, head_line, f"the column {missing[0]!r} in the header", ",".join(names))
    n_min = max(j for js in pos.values() for j in js) + 1
    shift = -HALF_HOUR_S if area in SLOT_LABEL_IS_END else 0

    stamps, lines = [], []
    raw: dict[str, list[list[float | None]]] = {c: [] for c in pos}
    for line, cells in rows[head_i + 1 :]:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) < n_min:
            raise DataSourceError(path, line, f"{n_min} columns", f"{len(cells)} columns")
        stamps.append(_stamp(cells[0], cells[1], path, line) + np.timedelta64(shift, "s"))
        lines.append(line)
        for col, js in pos.items():
            raw[col].append([parse_number(cells[j], path, line, names[j]) for j in js])
    if not stamps:
        raise DataSourceError(path, None, "at least one data row")
    t = np.array(stamps, dtype="datetime64[s]")
    check_half_hour_grid(path, t, lines, _end_label if area in SLOT_LABEL_IS_END else jst_slot_start)
    if (t[0].astype("int64") % 3600) or len(t) % 2:
        line = lines[0] if t[0].astype("int64") % 3600 else lines[-1]
        raise DataSourceError(path, line, "whole hours (both half-hour slots of every hour)")

    data = {}
    for col, vals in raw.items():
        arr = np.array([[np.nan if v is None else v for v in row] for row in vals], dtype=float)
        empty = np.isnan(arr)
        for k in range(arr.shape[1]):
            if empty[:, k].any() and not empty[:, k].all():
                i = int(np.flatnonzero(empty[:, k])[0])
                raise DataSourceError(path, lines[i], f"a number in column {names[pos[col][k]]!r} (it has values on other rows)", "")
        # a column left empty throughout is unreported (NaN); summed thermal ignores such parts
        if empty.all():
            series = np.full(len(t), np.nan)
        else:
            series = np.nansum(arr, axis=1)
        data[col] = series.reshape(-1, 2).mean(axis=1)
    frame = pd.DataFrame(data, index=jst_to_utc(t[::2])).reindex(columns=list(HOURLY_COLUMN_NAMES))
    unreported = tuple(c for c in pos if np.isnan(data[c]).all())
    return JukyuFile(path, area, frame, unreported=unreported, lines=len(t))
