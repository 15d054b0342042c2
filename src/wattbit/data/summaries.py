"""Reader for the curtailment summary tables of the source repository (ryomakom/renewable_energy).

Files (UTF-8 with BOM, one header row): ``curtailment_rate_by_fiscal_year.csv``
(fiscalyear, area, generate, restraint, restraint_rate), ``curtailment_rate_by_calendar_year.csv``
(year, ...), ``curtailment_rate_by_month.csv`` (year, month, area, ...),
``monthly_output_and_curtailment_by_area.csv`` (area, year, fiscalyear, month, generate,
restraint) and ``curtailment_days_by_area.csv`` (area, year, month, 制御があった日数).
``generate`` is solar + wind output and ``restraint`` solar + wind curtailment, both in MWh;
``restraint_rate`` = restraint / (generate + restraint). wattbit uses them to cross-check its own
totals (``wattbit data import`` reports the comparison).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from wattbit.data._text import parse_number, read_rows, trimmed
from wattbit.errors import DataSourceError

__all__ = ["SUMMARY_FILES", "read_curtailment_summary"]

SUMMARY_FILES = (
    "curtailment_rate_by_fiscal_year.csv",
    "curtailment_rate_by_calendar_year.csv",
    "curtailment_rate_by_month.csv",
    "monthly_output_and_curtailment_by_area.csv",
    "curtailment_days_by_area.csv",
)

_RENAME = {
    "fiscalyear": "fiscal_year",
    "year": "year",
    "month": "month",
    "area": "area",
    "generate": "vre_output_mwh",
    "restraint": "curtailed_mwh",
    "restraint_rate": "curtailment_rate_pu",
    "制御があった日数": "curtailment_days",
}
_INTEGER = {"fiscal_year", "year", "month", "curtailment_days"}


def read_curtailment_summary(path: Path) -> pd.DataFrame:
    """Read one summary table into a frame with wattbit's column names.

    Every header name must be a known one (see the module doc); areas are lowercase names.

    path : one of :data:`SUMMARY_FILES`
    """
    path = Path(path)
    rows = read_rows(path, "utf-8")
    if not rows:
        raise DataSourceError(path, 1, "a header row")
    line0, head = rows[0]
    names = trimmed(head)
    for n in names:
        if n not in _RENAME:
            raise DataSourceError(path, line0, f"header names among {', '.join(_RENAME)}", n)
    cols = [_RENAME[n] for n in names]
    if "area" not in cols:
        raise DataSourceError(path, line0, "an 'area' column", ",".join(names))
    out: dict[str, list] = {c: [] for c in cols}
    for line, cells in rows[1:]:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(cols):
            raise DataSourceError(path, line, f"{len(cols)} columns", f"{len(cells)} columns")
        for c, cell in zip(cols, cells):
            if c == "area":
                if not cell.strip():
                    raise DataSourceError(path, line, "an area name", cell)
                out[c].append(cell.strip().lower())
                continue
            v = parse_number(cell, path, line, c)
            if v is None:
                raise DataSourceError(path, line, f"a number in column {c!r}", cell)
            out[c].append(int(v) if c in _INTEGER else v)
    return pd.DataFrame(out)
