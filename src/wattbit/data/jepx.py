"""Reader for JEPX day-ahead spot results (スポット市場 取引結果, yearly summary CSV).

One row per delivery day (受渡日, JST) and half-hour slot (時刻コード 1..48; slot k covers
[(k-1)·30 min, k·30 min) from 00:00 JST). Prices are published in JPY/kWh and converted here to
JPY/MWh (× 1000). Columns are found by their names, so a file that adds or reorders columns
still reads; a missing column is an error.

Source: Japan Electric Power Exchange (JEPX), www.jepx.jp, yearly spot summaries, as stored in
github.com/dlxiii/jepx_scraper (commit 1381a65); see ``jepx_spot_dlxiii/PROVENANCE.md``.
The price floor is 0.01 JPY/kWh (10 JPY/MWh). Okinawa has no JEPX price.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.data._text import HALF_HOUR_S, check_half_hour_grid, parse_number, read_rows, trimmed
from wattbit.data.jukyu import _parse_date, jst_to_utc
from wattbit.domain.area import AREAS
from wattbit.errors import DataSourceError

__all__ = ["JEPX_AREAS", "JPY_PER_MWH_PER_JPY_PER_KWH", "SYSTEM", "read_jepx_spot"]

JPY_PER_MWH_PER_JPY_PER_KWH = 1000.0
"""1 JPY/kWh = 1000 JPY/MWh."""

SYSTEM = "system"
"""Column name of the JEPX system price (the price of the unsplit market)."""

JEPX_AREAS: tuple[str, ...] = tuple(a.name for a in AREAS if a.name != "okinawa")
_PRICE_COLUMNS = {SYSTEM: "システムプライス(円/kWh)"} | {
    a.name: f"エリアプライス{a.name_ja}(円/kWh)" for a in AREAS if a.name != "okinawa"
}


def _slot_label(start: pd.Timestamp) -> str:
    """A slot as JEPX writes it: delivery day and slot code 1..48.

    >>> _slot_label(pd.Timestamp("2022-04-01 09:30"))
    '受渡日 2022/04/01 時刻コード 20 (09:30 JST)'
    """
    code = (start.hour * 3600 + start.minute * 60) // HALF_HOUR_S + 1
    return f"受渡日 {start:%Y/%m/%d} 時刻コード {code} ({start:%H:%M} JST)"


def read_jepx_spot(path: Path) -> pd.DataFrame:
    """Read one JEPX spot summary file.

    Returns a frame indexed by UTC slot start ``time`` (30 min) with one column per price
    (``system`` and the nine area names) in JPY/MWh. Raises DataSourceError for a missing
    column, a bad number, an empty price, or a slot that is missing, repeated or out of order.

    path : the CSV (UTF-8, one header row)
    """
    path = Path(path)
    rows = read_rows(path, "utf-8")
    if not rows:
        raise DataSourceError(path, 1, "a header row")
    line0, head = rows[0]
    head = list(trimmed(head))
    need = {"受渡日": None, "時刻コード": None} | {v: None for v in _PRICE_COLUMNS.values()}
    for name in need:
        if name not in head:
            raise DataSourceError(path, line0, f"a column {name!r} in the header", ",".join(head))
        need[name] = head.index(name)
    i_day, i_slot = need["受渡日"], need["時刻コード"]
    n_min = max(need.values()) + 1
    stamps, lines = [], []
    prices = {k: [] for k in _PRICE_COLUMNS}
    for line, cells in rows[1:]:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) < n_min:
            raise DataSourceError(path, line, f"{n_min} columns", f"{len(cells)} columns")
        y, m, d = _parse_date(cells[i_day], path, line)
        slot = cells[i_slot].strip()
        if not slot.isdigit() or not 1 <= int(slot) <= 48:
            raise DataSourceError(path, line, "a slot code 1..48 in 時刻コード", slot)
        stamps.append(np.datetime64(f"{y:04d}-{m:02d}-{d:02d}T00:00", "s") + np.timedelta64(HALF_HOUR_S * (int(slot) - 1), "s"))
        lines.append(line)
        for key, col in _PRICE_COLUMNS.items():
            v = parse_number(cells[need[col]], path, line, col)
            if v is None:
                raise DataSourceError(path, line, f"a price in {col!r}", "")
            prices[key].append(v)
    if not stamps:
        raise DataSourceError(path, None, "at least one data row")
    t = np.array(stamps, dtype="datetime64[s]")
    check_half_hour_grid(path, t, lines, _slot_label)
    data = {k: np.round(np.asarray(v) * JPY_PER_MWH_PER_JPY_PER_KWH, 6) for k, v in prices.items()}
    return pd.DataFrame(data, index=jst_to_utc(t))
