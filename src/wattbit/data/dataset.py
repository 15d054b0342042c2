"""The compact dataset wattbit runs on: import from raw files, load, summarise.

A dataset folder holds

* ``hourly.parquet`` — the tidy hourly table: one row per (``time`` UTC, ``area``) where a source
  has data, float32 columns of :data:`wattbit.data.columns.HOURLY_COLUMNS` (NaN where the source
  has no such column, e.g. Tokyo's generation mix);
* ``prices_30min.parquet`` — JEPX day-ahead prices per 30-min slot: ``system`` and nine areas
  [JPY/MWh];
* ``manifest.json`` — every source file read (relative path, SHA-256, kind, area, rows) and
  the coverage per area.

:func:`import_raw` writes it deterministically (same raw files → same bytes). The default
dataset (FY2021-FY2022) ships in ``wattbit/resources/data`` with its PROVENANCE.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from wattbit.data.columns import CURTAILMENT_COLUMNS, HOURLY_COLUMN_NAMES
from wattbit.data.eria import AREA_BY_CODE, ERIA_FILE, read_eria_jukyu
from wattbit.data.jepx import JEPX_AREAS, SYSTEM, read_jepx_spot
from wattbit.data.jukyu import FORMATS, JukyuFile, read_jukyu
from wattbit.data.summaries import SUMMARY_FILES, read_curtailment_summary
from wattbit.data.tepco import read_tepco_daily, read_tepco_yearly
from wattbit.domain.area import AREA_NAMES
from wattbit.errors import DataSourceError, InvalidInput
from wattbit.units import JST

__all__ = [
    "HOURLY_FILE",
    "MANIFEST_FILE",
    "PRICES_FILE",
    "ImportReport",
    "default_data_dir",
    "import_raw",
    "load_dataset",
    "load_prices",
    "load_system_price",
    "summary",
]

HOURLY_FILE = "hourly.parquet"
PRICES_FILE = "prices_30min.parquet"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
_PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 9, "write_statistics": False}


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Deterministic, compact Parquet: zstd, byte-stream-split floats, no statistics."""
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    pq.write_table(table, path, use_dictionary=["area"] if "area" in table.column_names else False,
                   use_byte_stream_split=floats, **_PARQUET_OPTIONS)
_AREA_ORDER = {a: i for i, a in enumerate(AREA_NAMES)}


def default_data_dir() -> Path:
    """The bundled dataset's folder inside the installed package."""
    return Path(str(resources.files("wattbit") / "resources" / "data"))


# --- import ---------------------------------------------------------------------------------

_TEPCO_DAILY = re.compile(r"^\d{8}_power_usage\.csv$")
_TEPCO_YEARLY = re.compile(r"^juyo-\d{4}\.csv$")
_JEPX_SPOT = re.compile(r"^spot_summary_.*\.csv$")


def _kind(path: Path) -> tuple[str, str | None] | None:
    """Which reader a file goes to, from its folder and name; None = not a grid data file."""
    name, parent = path.name, path.parent.name.lower()
    eria = ERIA_FILE.match(name)
    if eria and parent in AREA_NAMES:
        code_area = AREA_BY_CODE.get(eria.group(2))
        if code_area != parent:
            raise DataSourceError(path, None, f"a file of area {parent!r} in folder {parent}/ (its name says {code_area!r})")
        return "eria", parent
    if path.suffix.lower() in (".csv", ".txt") and parent in FORMATS:
        return "jukyu", parent
    if _TEPCO_DAILY.match(name):
        return "tepco_daily", "tokyo"
    if _TEPCO_YEARLY.match(name):
        return "tepco_yearly", "tokyo"
    if _JEPX_SPOT.match(name):
        return "jepx_spot", None
    if name in SUMMARY_FILES:
        return "curtailment_summary", None
    return None


@dataclass
class SourceFile:
    """One source file read by an import."""

    path: str
    kind: str
    area: str | None
    sha256: str
    rows: int


@dataclass
class ImportReport:
    """What :func:`import_raw` read, wrote and had to say.

    out_dir : dataset folder written;  sources : every file read;  ignored : files under the raw
    folder that are not grid data files wattbit reads (relative paths);  coverage : per area
    ``(first UTC hour, last UTC hour, hours present)``;  gaps : per area, the missing hour ranges
    between files (those rows are absent, never filled);  not_applicable : per area and column,
    "－" cells read as 0 MW;  unreported : per area, columns some file leaves empty (NaN);
    summary_check : the source's own curtailment totals per area and fiscal year next to
    wattbit's, when the raw folder has ``curtailment_rate_by_fiscal_year.csv``.
    """

    out_dir: Path
    sources: list[SourceFile] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    coverage: dict[str, tuple[pd.Timestamp, pd.Timestamp, int]] = field(default_factory=dict)
    price_coverage: tuple[pd.Timestamp, pd.Timestamp, int] | None = None
    gaps: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = field(default_factory=dict)
    not_applicable: dict[str, dict[str, int]] = field(default_factory=dict)
    unreported: dict[str, list[str]] = field(default_factory=dict)
    summary_check: pd.DataFrame | None = None

    @property
    def warnings(self) -> list[str]:
        """Human-readable notes on everything that was not read one-to-one."""
        out = []
        for area, gaps in self.gaps.items():
            hours = sum(int((b - a) / pd.Timedelta(hours=1)) + 1 for a, b in gaps)
            spans = "; ".join(f"{a:%Y-%m-%d %H:%M} .. {b:%Y-%m-%d %H:%M} UTC" for a, b in gaps[:3])
            out.append(f"{area}: {hours} hours missing between files, left absent (not filled): {spans}")
        for area, cols in self.not_applicable.items():
            text = ", ".join(f"{c} {n}" for c, n in cols.items())
            out.append(f"{area}: 'not applicable' (－) cells read as 0 MW: {text}")
        for area, cols in self.unreported.items():
            out.append(f"{area}: columns left empty by the source, kept as NaN: {', '.join(cols)}")
        if self.summary_check is not None:
            bad = self.summary_check[self.summary_check["rel_diff"].abs() > 0.005]
            for row in bad.itertuples():
                out.append(
                    f"{row.area} FY{row.fiscal_year}: curtailment {row.curtailed_mwh:,.0f} MWh differs from "
                    f"the source summary {row.source_curtailed_mwh:,.0f} MWh by {row.rel_diff:+.2%}"
                )
        return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _merge_area(area: str, files: list[JukyuFile]) -> tuple[pd.DataFrame, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """Concatenate one area's files; a repeated hour is an error, a gap between files is reported."""
    files = sorted(files, key=lambda f: f.frame.index[0])
    for a, b in pairwise(files):
        if b.frame.index[0] <= a.frame.index[-1]:
            raise DataSourceError(
                b.path, None,
                f"no hour already given by {a.path} (it runs to {a.frame.index[-1]:%Y-%m-%d %H:%M} UTC)",
                f"{b.frame.index[0]:%Y-%m-%d %H:%M} UTC",
            )
    gaps = []
    for a, b in pairwise(files):
        nxt = a.frame.index[-1] + pd.Timedelta(hours=1)
        if b.frame.index[0] > nxt:
            gaps.append((nxt, b.frame.index[0] - pd.Timedelta(hours=1)))
    frame = pd.concat([f.frame for f in files])
    return frame, gaps


def _hourly_table(frames: dict[str, pd.DataFrame]) -> pa.Table:
    parts = []
    for area in sorted(frames, key=_AREA_ORDER.__getitem__):
        f = frames[area].reset_index()
        f.insert(1, "area", area)
        parts.append(f)
    df = pd.concat(parts, ignore_index=True)
    df["_o"] = df["area"].map(_AREA_ORDER)
    df = df.sort_values(["time", "_o"], kind="mergesort").drop(columns="_o")
    arrays = [
        pa.array(df["time"].to_numpy(dtype="datetime64[ms]"), type=pa.timestamp("ms", tz="UTC")),
        pa.array(df["area"].to_numpy(dtype=object), type=pa.string()),
    ]
    arrays += [pa.array(df[c].to_numpy(dtype=np.float32), type=pa.float32()) for c in HOURLY_COLUMN_NAMES]
    return pa.Table.from_arrays(arrays, names=["time", "area", *HOURLY_COLUMN_NAMES])


def _price_table(prices: pd.DataFrame) -> pa.Table:
    arrays = [pa.array(prices.index.tz_convert(None).to_numpy(dtype="datetime64[ms]"), type=pa.timestamp("ms", tz="UTC"))]
    names = ["time", SYSTEM, *JEPX_AREAS]
    arrays += [pa.array(prices[c].to_numpy(dtype=np.float32), type=pa.float32()) for c in names[1:]]
    return pa.Table.from_arrays(arrays, names=names)


def _fiscal_year(time_utc: pd.DatetimeIndex) -> np.ndarray:
    """Japanese fiscal year (April-March, JST) of UTC instants.

    >>> _fiscal_year(pd.DatetimeIndex(["2022-03-31 14:59", "2022-03-31 15:00"], tz="UTC")).tolist()
    [2021, 2022]
    """
    jst = time_utc.tz_convert(JST)
    return np.where(jst.month >= 4, jst.year, jst.year - 1)


def import_raw(
    raw_dir: Path,
    out_dir: Path,
    progress: Callable[[int, int, str], None] | None = None,
) -> ImportReport:
    """Read every grid data file under ``raw_dir``, validate it and write the compact dataset.

    Files are recognised by folder and name: TSO area files in a folder named after the area
    (``kyushu/``, ``shikoku/``, ...; any period, in that TSO's FY2016-FY2023 layout, or the
    common ``eria_jukyu_YYYYMM_NN.csv`` format of April 2024 on), TEPCO daily
    ``YYYYMMDD_power_usage.csv`` and yearly ``juyo-YYYY.csv``, JEPX ``spot_summary_*.csv``, and
    the curtailment summary tables (used only to cross-check). Other files are listed in
    ``ImportReport.ignored``. Any malformed file raises DataSourceError naming file and line.

    raw_dir : folder to scan recursively;  out_dir : dataset folder to write (created);
    progress : called as ``progress(done, total, file)`` after each file, for progress bars
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise InvalidInput(f"raw data folder {str(raw_dir)!r} does not exist; pass the folder holding the TSO/JEPX files")
    paths = sorted(p for p in raw_dir.rglob("*") if p.is_file())
    report = ImportReport(out_dir=out_dir)
    todo = []
    for p in paths:
        kind = _kind(p)
        rel = p.relative_to(raw_dir).as_posix()
        if kind is None:
            report.ignored.append(rel)
        else:
            todo.append((p, rel, *kind))
    per_area: dict[str, list[JukyuFile]] = {}
    price_parts: list[tuple[Path, pd.DataFrame]] = []
    summaries: list[pd.DataFrame] = []
    for done, (p, rel, kind, area) in enumerate(todo, start=1):
        if kind == "jukyu":
            jf = read_jukyu(p, FORMATS[area])
            rows = jf.lines
        elif kind == "eria":
            jf = read_eria_jukyu(p, area)
            rows = jf.lines
        elif kind == "tepco_daily":
            jf = read_tepco_daily(p)
            rows = 24
        elif kind == "tepco_yearly":
            jf = read_tepco_yearly(p)
            rows = jf.lines
        elif kind == "jepx_spot":
            jf = None
            prices = read_jepx_spot(p)
            price_parts.append((p, prices))
            rows = len(prices)
        else:
            jf = None
            s = read_curtailment_summary(p)
            if p.name == "curtailment_rate_by_fiscal_year.csv":
                summaries.append(s)
            rows = len(s)
        if jf is not None:
            per_area.setdefault(jf.area, []).append(jf)
            for col, n in jf.not_applicable.items():
                d = report.not_applicable.setdefault(jf.area, {})
                d[col] = d.get(col, 0) + n
            for col in jf.unreported:
                cols = report.unreported.setdefault(jf.area, [])
                if col not in cols:
                    cols.append(col)
        report.sources.append(SourceFile(rel, kind, area, _sha256(p), rows))
        if progress is not None:
            progress(done, len(todo), rel)

    if not per_area:
        raise DataSourceError(raw_dir, None, "at least one TSO area or TEPCO file (see docs/data.md for the layout)")
    frames = {}
    for area, files in per_area.items():
        frame, gaps = _merge_area(area, files)
        frames[area] = frame
        if gaps:
            report.gaps[area] = gaps
        report.coverage[area] = (frame.index[0], frame.index[-1], len(frame))
    hourly = _hourly_table(frames)

    if not price_parts:
        raise DataSourceError(raw_dir, None, "at least one JEPX spot_summary_*.csv file")
    price_parts.sort(key=lambda x: x[1].index[0])
    for (pa_, a), (pb, b) in pairwise(price_parts):
        if b.index[0] <= a.index[-1]:
            raise DataSourceError(pb, None, f"no slot already given by {pa_}", f"{b.index[0]:%Y-%m-%d %H:%M} UTC")
    prices = pd.concat([p for _, p in price_parts])
    report.price_coverage = (prices.index[0], prices.index[-1], len(prices))

    out_dir.mkdir(parents=True, exist_ok=True)
    _write_parquet(hourly, out_dir / HOURLY_FILE)
    _write_parquet(_price_table(prices), out_dir / PRICES_FILE)
    manifest = {
        "format_version": FORMAT_VERSION,
        "hourly_file": HOURLY_FILE,
        "prices_file": PRICES_FILE,
        "coverage_utc": {
            a: {"first": f"{c[0]:%Y-%m-%dT%H:%MZ}", "last": f"{c[1]:%Y-%m-%dT%H:%MZ}", "hours": c[2]}
            for a, c in sorted(report.coverage.items(), key=lambda x: _AREA_ORDER[x[0]])
        },
        "prices_coverage_utc": {
            "first": f"{prices.index[0]:%Y-%m-%dT%H:%MZ}", "last": f"{prices.index[-1]:%Y-%m-%dT%H:%MZ}",
            "slots": len(prices),
        },
        "sources": [s.__dict__ for s in report.sources],
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    _load_hourly.cache_clear()
    _load_prices_wide_cached.cache_clear()

    if summaries:
        src = pd.concat(summaries).drop_duplicates(["fiscal_year", "area"])
        mine = summary(out_dir)[["fiscal_year", "area", "curtailed_mwh"]]
        chk = mine.merge(src[["fiscal_year", "area", "curtailed_mwh"]].rename(columns={"curtailed_mwh": "source_curtailed_mwh"}),
                         on=["fiscal_year", "area"], how="inner")
        denom = chk["source_curtailed_mwh"].where(chk["source_curtailed_mwh"] != 0)
        chk["rel_diff"] = ((chk["curtailed_mwh"] - chk["source_curtailed_mwh"]) / denom).fillna(
            (chk["curtailed_mwh"] != chk["source_curtailed_mwh"]).astype(float)
        )
        report.summary_check = chk.reset_index(drop=True)
    return report


# --- load -----------------------------------------------------------------------------------


def _resolve(data_dir: Path | None) -> Path:
    d = default_data_dir() if data_dir is None else Path(data_dir)
    if not (d / HOURLY_FILE).is_file() or not (d / PRICES_FILE).is_file():
        raise InvalidInput(
            f"dataset folder {str(d)!r} has no {HOURLY_FILE} and {PRICES_FILE}; "
            "create it with `wattbit data import RAW_DIR --out DIR`"
        )
    return d.resolve()


@functools.lru_cache(maxsize=8)
def _load_hourly(path: Path) -> pd.DataFrame:
    table = pq.read_table(path / HOURLY_FILE)
    time = pd.DatetimeIndex(table.column("time").to_numpy(), name="time").tz_localize("UTC")
    area = pd.Index(table.column("area").to_numpy(zero_copy_only=False), name="area")
    data = {c: table.column(c).to_numpy() for c in HOURLY_COLUMN_NAMES}
    df = pd.DataFrame(data, index=pd.MultiIndex.from_arrays([time, area]))
    return df


def load_dataset(data_dir: Path | None = None) -> pd.DataFrame:
    """The hourly tidy grid table.

    MultiIndex (``time`` UTC tz-aware, hour start; ``area``), sorted by time then area in
    :data:`wattbit.domain.AREA_NAMES` order; float32 columns named with their unit
    (:data:`wattbit.data.columns.HOURLY_COLUMNS`). Rows exist only where a source has data; NaN
    (never 0) marks a column a source does not have — Tokyo has demand and solar only, and no
    solar before April 2022. Okinawa is absent.

    data_dir : a folder written by :func:`import_raw`; default the bundled FY2021-FY2022 dataset
    """
    return _load_hourly(_resolve(data_dir)).copy()


@functools.lru_cache(maxsize=8)
def _load_prices_wide_cached(path: Path) -> pd.DataFrame:
    table = pq.read_table(path / PRICES_FILE)
    time = pd.DatetimeIndex(table.column("time").to_numpy(), name="time").tz_localize("UTC")
    return pd.DataFrame({c: table.column(c).to_numpy() for c in table.column_names[1:]}, index=time)


def _load_prices_wide(data_dir: Path | None = None) -> pd.DataFrame:
    return _load_prices_wide_cached(_resolve(data_dir))


def load_prices(data_dir: Path | None = None) -> pd.DataFrame:
    """JEPX day-ahead area prices per 30-min slot.

    MultiIndex (``time`` UTC slot start, ``area``) for the nine interconnected areas, one float
    column ``price_jpy_per_mwh`` (JEPX publishes JPY/kWh; × 1000). The system price is
    :func:`load_system_price`.

    data_dir : dataset folder; default the bundled dataset
    """
    wide = _load_prices_wide(data_dir)[list(JEPX_AREAS)]
    long = wide.stack()
    long.index = long.index.set_names(["time", "area"])
    return long.rename("price_jpy_per_mwh").to_frame()


def load_system_price(data_dir: Path | None = None) -> pd.Series:
    """JEPX system price (unsplit market) per 30-min slot [JPY/MWh], indexed by UTC ``time``.

    data_dir : dataset folder; default the bundled dataset
    """
    return _load_prices_wide(data_dir)[SYSTEM].rename("system_price_jpy_per_mwh").copy()


def load_prices_wide(data_dir: Path | None = None) -> pd.DataFrame:
    """Prices as a (time × column) frame: ``system`` and the nine areas [JPY/MWh]."""
    return _load_prices_wide(data_dir).copy()


# --- summary --------------------------------------------------------------------------------


def summary(data_dir: Path | None = None) -> pd.DataFrame:
    """Per area and fiscal year (April-March, JST): energy, curtailment and mean price.

    Columns: ``area``, ``fiscal_year``, ``hours`` (hours with data), ``demand_twh``,
    ``solar_twh``, ``wind_twh``, ``curtailed_mwh`` (solar + wind curtailment; NaN where the
    source has no curtailment column, i.e. Tokyo), ``curtailed_pct`` (curtailed /
    (solar + wind + curtailed) × 100, the source summaries' definition) and
    ``mean_price_jpy_per_mwh`` (time-mean JEPX area price over the fiscal year's slots).
    Hourly values are MW averages over one hour, so each row sums to MWh.

    data_dir : dataset folder; default the bundled dataset
    """
    df = load_dataset(data_dir).astype("float64")
    df["fiscal_year"] = _fiscal_year(df.index.get_level_values("time"))
    df = df.reset_index()
    df["curtailed_mw"] = df[list(CURTAILMENT_COLUMNS)].sum(axis=1, min_count=2)
    g = df.groupby(["area", "fiscal_year"], sort=False)

    def total(col: str) -> pd.Series:
        return g[col].sum(min_count=1)

    out = pd.DataFrame({
        "hours": g.size(),
        "demand_twh": total("demand_mw") / 1e6,
        "solar_twh": total("solar_mw") / 1e6,
        "wind_twh": total("wind_mw") / 1e6,
        "curtailed_mwh": total("curtailed_mw"),
    })
    vre = (out["solar_twh"].fillna(0) + out["wind_twh"].fillna(0)) * 1e6 + out["curtailed_mwh"]
    out["curtailed_pct"] = 100 * out["curtailed_mwh"] / vre.where(vre > 0)
    prices = _load_prices_wide(data_dir)[list(JEPX_AREAS)].astype("float64")
    p = prices.stack().rename("p").reset_index()
    p.columns = ["time", "area", "p"]
    p["fiscal_year"] = _fiscal_year(pd.DatetimeIndex(p["time"]))
    mean_price = p.groupby(["area", "fiscal_year"])["p"].mean()
    out["mean_price_jpy_per_mwh"] = mean_price.reindex(out.index)
    out = out.reset_index()
    out["_o"] = out["area"].map(_AREA_ORDER)
    out = out.sort_values(["_o", "fiscal_year"]).drop(columns="_o").reset_index(drop=True)
    return out
