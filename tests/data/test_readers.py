"""Each reader on a committed excerpt of its real format, and on corrupted copies of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wattbit.data import (
    FORMATS,
    HOURLY_COLUMN_NAMES,
    read_curtailment_summary,
    read_eria_jukyu,
    read_jepx_spot,
    read_jukyu,
    read_tepco_daily,
    read_tepco_yearly,
)
from wattbit.errors import DataSourceError

JUKYU = "area_jukyu_ryomakom"
# area -> (file, number of lines before the first data row)
AREA_FILES = {
    "hokkaido": ("sup_dem_results_2022_1q.csv", 4),
    "tohoku": ("juyo_2022_tohoku_1Q.txt", 1),
    "chubu": ("2022_areabalance_current_term.csv", 5),
    "hokuriku": ("area_jisseki_rikuden202204.csv", 6),
    "kansai": ("area_jyukyu_jisseki_2022.csv", 2),
    "chugoku": ("eria_jyukyu.csv", 3),
    "shikoku": ("jukyu2022.csv", 9),
    "kyushu": ("area_jyukyu_jisseki_2021_1Q.csv", 2),
}


def utc(jst: str) -> pd.Timestamp:
    return pd.Timestamp(jst, tz="Asia/Tokyo").tz_convert("UTC")


def area_file(root: Path, area: str) -> Path:
    return root / JUKYU / area / AREA_FILES[area][0]


# --- the real excerpts ----------------------------------------------------------------------

# area -> (JST hour, column, MW) picked by hand from the raw excerpt
KNOWN_VALUES = {
    "hokkaido": ("2022-04-01 00:00", "demand_mw", 3285.0),
    "tohoku": ("2022-04-01 00:00", "thermal_mw", 7239.0),  # Tohoku's own column order
    "chubu": ("2022-04-01 00:00", "tie_net_import_mw", 292.0),
    "hokuriku": ("2022-04-01 00:00", "hydro_mw", 1366.0),
    "kansai": ("2022-04-01 00:00", "pumped_storage_mw", -330.0),
    "chugoku": ("2022-04-17 11:00", "solar_curtailed_mw", 456.0),
    "shikoku": ("2022-04-09 11:00", "solar_curtailed_mw", 150.0),  # 15 万kW
    "kyushu": ("2021-04-01 00:00", "tie_net_import_mw", -1986.0),
}


@pytest.mark.parametrize("area", sorted(AREA_FILES))
def test_jukyu_reader_reads_two_days_in_utc(fixtures_raw, area):
    jf = read_jukyu(area_file(fixtures_raw, area), FORMATS[area])
    f = jf.frame
    assert list(f.columns) == list(HOURLY_COLUMN_NAMES)
    assert len(f) == 48 and f.index.is_unique and f.index.is_monotonic_increasing
    assert str(f.index.tz) == "UTC" and f.index.name == "time"
    assert (np.diff(f.index.asi8) == np.diff(f.index.asi8)[0]).all()
    when, col, mw = KNOWN_VALUES[area]
    assert f.loc[utc(when), col] == mw
    assert f["demand_mw"].notna().all() and (f["demand_mw"] > 1000).all()


def test_jst_start_of_hour_becomes_utc(fixtures_raw):
    f = read_jukyu(area_file(fixtures_raw, "kyushu"), FORMATS["kyushu"]).frame
    assert f.index[0] == pd.Timestamp("2021-03-31 15:00", tz="UTC")
    assert f.iloc[0]["demand_mw"] == 7228.0


def test_shikoku_is_in_man_kw(fixtures_raw):
    f = read_jukyu(area_file(fixtures_raw, "shikoku"), FORMATS["shikoku"]).frame
    assert f.loc[utc("2022-04-09 00:00"), "demand_mw"] == 2330.0  # 233 万kW
    assert f.loc[utc("2022-04-09 00:00"), "nuclear_mw"] == 880.0


def test_not_applicable_marks_are_counted_and_empty_columns_kept_nan(fixtures_raw):
    cg = read_jukyu(area_file(fixtures_raw, "chugoku"), FORMATS["chugoku"])
    assert cg.not_applicable["wind_curtailed_mw"] > 0
    assert cg.frame.loc[utc("2022-04-17 00:00"), "solar_curtailed_mw"] == 0.0
    hr = read_jukyu(area_file(fixtures_raw, "hokuriku"), FORMATS["hokuriku"])
    assert hr.unreported == ("geothermal_mw",)
    assert hr.frame["geothermal_mw"].isna().all()


def test_hokkaido_date_carried_over_to_rows_without_one(fixtures_raw):
    f = read_jukyu(area_file(fixtures_raw, "hokkaido"), FORMATS["hokkaido"]).frame
    assert f.index[-1] == utc("2022-04-02 23:00")


def test_tepco_daily_hourly_demand_and_solar_mean(fixtures_raw):
    jf = read_tepco_daily(fixtures_raw / "tepco_juyo_dlxiii/2022/20220401_power_usage.csv")
    f = jf.frame
    assert jf.area == "tokyo" and len(f) == 24
    assert f.loc[utc("2022-04-01 10:00"), "demand_mw"] == 38000.0
    # mean of the twelve 5-min solar values 10:00..10:55 (363 .. 601 万kW)
    vals = [363, 373, 387, 403, 429, 452, 479, 510, 532, 554, 575, 601]
    assert f.loc[utc("2022-04-01 10:00"), "solar_mw"] == pytest.approx(np.mean(vals) * 10)
    assert f["thermal_mw"].isna().all()


def test_tepco_yearly_demand_only(fixtures_raw):
    f = read_tepco_yearly(fixtures_raw / "tepco_juyo_dlxiii/juyo-2021.csv").frame
    assert len(f) == 48
    assert f.iloc[0]["demand_mw"] == 31840.0
    assert f.index[0] == utc("2021-01-01 00:00")
    assert f["solar_mw"].isna().all()


def test_jepx_spot_prices_in_jpy_per_mwh(fixtures_raw):
    p = read_jepx_spot(fixtures_raw / "jepx_spot_dlxiii/spot_summary_FY2022.csv")
    assert len(p) == 96
    assert p.index[1] - p.index[0] == pd.Timedelta(minutes=30)
    first = p.loc[utc("2022-04-01 00:00")]
    assert first["system"] == 11970.0 and first["hokkaido"] == 10390.0 and first["tokyo"] == 12120.0
    assert p.loc[utc("2022-04-01 01:00"), "tokyo"] == 24320.0


def test_curtailment_summary(fixtures_raw):
    s = read_curtailment_summary(fixtures_raw / JUKYU / "summary/curtailment_rate_by_fiscal_year.csv")
    ky = s[(s.area == "kyushu")].set_index("fiscal_year")
    assert ky.loc[2021, "curtailed_mwh"] == 534891 and ky.loc[2022, "curtailed_mwh"] == 448766


# --- corrupted copies -----------------------------------------------------------------------


def _lines(path: Path, encoding: str) -> list[str]:
    return path.read_bytes().decode(encoding).splitlines(keepends=True)


def _write(path: Path, lines: list[str], encoding: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(lines).encode(encoding))
    return path


def _corrupt(src: Path, dst: Path, encoding: str, header_lines: int, how: str) -> tuple[Path, int]:
    """A corrupted copy of ``src``; returns it and the 1-based line the reader must name."""
    lines = _lines(src, encoding)
    k = header_lines + 10  # 0-based index of the 11th data row
    if how == "wrong_encoding":
        other = "utf-8" if encoding != "utf-8-sig" else "cp932"
        return _write(dst, lines, other), None  # the first line that does not decode
    if how == "gap":
        del lines[k]
        return _write(dst, lines, encoding), k + 1
    if how == "duplicate":
        lines.insert(k, lines[k - 1])
        return _write(dst, lines, encoding), k + 1
    raise AssertionError(how)


def _sep(line: str) -> tuple[list[str], str]:
    body = line.rstrip("\r\n")
    return body.split(","), line[len(body):]


@pytest.mark.parametrize("how", ["wrong_encoding", "gap", "duplicate"])
@pytest.mark.parametrize("area", sorted(AREA_FILES))
def test_jukyu_corrupted(fixtures_raw, tmp_path, area, how):
    fmt = FORMATS[area]
    src = area_file(fixtures_raw, area)
    path, line = _corrupt(src, tmp_path / area / src.name, fmt.encoding, AREA_FILES[area][1], how)
    with pytest.raises(DataSourceError) as exc:
        read_jukyu(path, fmt)
    assert exc.value.file == str(path)
    assert exc.value.line == line if line is not None else exc.value.line >= 1
    msg = str(exc.value)
    assert {"wrong_encoding": "encoded as", "gap": "gap", "duplicate": "duplicate"}[how] in msg


@pytest.mark.parametrize("area", sorted(AREA_FILES))
def test_jukyu_bad_number(fixtures_raw, tmp_path, area):
    fmt = FORMATS[area]
    src = area_file(fixtures_raw, area)
    lines = _lines(src, fmt.encoding)
    k = AREA_FILES[area][1] + 5
    cells, end = _sep(lines[k])
    cells[fmt.columns.index("thermal_mw")] = "12a"
    lines[k] = ",".join(cells) + end
    path = _write(tmp_path / area / src.name, lines, fmt.encoding)
    with pytest.raises(DataSourceError, match=r"a number in column 'thermal_mw', found '12a'") as exc:
        read_jukyu(path, fmt)
    assert exc.value.line == k + 1


@pytest.mark.parametrize("area", sorted(AREA_FILES))
def test_jukyu_missing_column(fixtures_raw, tmp_path, area):
    """Drop the solar-curtailment column everywhere: the header no longer matches."""
    fmt = FORMATS[area]
    src = area_file(fixtures_raw, area)
    lines = _lines(src, fmt.encoding)
    j = fmt.columns.index("solar_curtailed_mw")
    out = []
    for ln in lines:
        cells, end = _sep(ln)
        if len(cells) > j:
            del cells[j]
        out.append(",".join(cells) + end)
    path = _write(tmp_path / area / src.name, out, fmt.encoding)
    with pytest.raises(DataSourceError, match=f"the {area} header") as exc:
        read_jukyu(path, fmt)
    assert exc.value.line is not None


def test_jukyu_empty_cell_in_reported_column(fixtures_raw, tmp_path):
    fmt = FORMATS["kyushu"]
    src = area_file(fixtures_raw, "kyushu")
    lines = _lines(src, fmt.encoding)
    cells, end = _sep(lines[7])
    cells[1] = ""
    lines[7] = ",".join(cells) + end
    path = _write(tmp_path / "kyushu" / src.name, lines, fmt.encoding)
    with pytest.raises(DataSourceError, match="demand_mw") as exc:
        read_jukyu(path, fmt)
    assert exc.value.line == 8


def test_jukyu_short_row(fixtures_raw, tmp_path):
    fmt = FORMATS["chubu"]
    src = area_file(fixtures_raw, "chubu")
    lines = _lines(src, fmt.encoding)
    cells, end = _sep(lines[20])
    lines[20] = ",".join(cells[:6]) + end
    path = _write(tmp_path / "chubu" / src.name, lines, fmt.encoding)
    with pytest.raises(DataSourceError, match="14 columns") as exc:
        read_jukyu(path, fmt)
    assert exc.value.line == 21


TEPCO_DAILY = "tepco_juyo_dlxiii/2022/20220401_power_usage.csv"


@pytest.mark.parametrize(
    "how, expect",
    [
        ("wrong_encoding", "encoded as utf-8"),
        ("bad_number", "a number"),
        ("gap", r"expected the hour 2022-04-01 05:00 JST on this line \(a gap: 1 hour missing"),
        ("duplicate", "a duplicate: this row repeats the hour 2022-04-01 04:00 JST"),
        ("missing_column", "a block headed"),
    ],
)
def test_tepco_daily_corrupted(fixtures_raw, tmp_path, how, expect):
    src = fixtures_raw / TEPCO_DAILY
    lines = _lines(src, "utf-8")
    hourly = next(i for i, ln in enumerate(lines) if ln.startswith("DATE,TIME,当日実績(万kW)"))
    k = hourly + 6
    enc = "utf-8"
    if how == "wrong_encoding":
        enc = "cp932"
    elif how == "bad_number":
        cells, end = _sep(lines[k])
        cells[2] = "38x0"
        lines[k] = ",".join(cells) + end
    elif how == "gap":
        del lines[k]
    elif how == "duplicate":
        lines.insert(k, lines[k - 1])
    elif how == "missing_column":
        five = next(i for i, ln in enumerate(lines) if ln.startswith("DATE,TIME,当日実績(５分"))
        cells, end = _sep(lines[five])
        lines[five] = ",".join(cells[:3]) + end
    path = _write(tmp_path / "20220401_power_usage.csv", lines, enc)
    with pytest.raises(DataSourceError, match=expect) as exc:
        read_tepco_daily(path)
    assert exc.value.file == str(path)
    if how in ("bad_number", "gap", "duplicate"):
        assert exc.value.line == k + 1


@pytest.mark.parametrize(
    "how, expect",
    [
        ("wrong_encoding", "encoded as utf-8"),
        ("bad_number", "a number"),
        ("empty_price", "a price"),
        ("gap", "a gap: 1 slot missing"),
        ("duplicate", "a duplicate"),
        ("missing_column", "エリアプライス九州"),
    ],
)
def test_jepx_corrupted(fixtures_raw, tmp_path, how, expect):
    src = fixtures_raw / "jepx_spot_dlxiii/spot_summary_FY2022.csv"
    lines = _lines(src, "utf-8")
    k = 30
    enc = "utf-8"
    if how == "wrong_encoding":
        enc = "cp932"
    elif how in ("bad_number", "empty_price"):
        cells, end = _sep(lines[k])
        cells[6] = "1O.5" if how == "bad_number" else ""
        lines[k] = ",".join(cells) + end
    elif how == "gap":
        del lines[k]
    elif how == "duplicate":
        lines.insert(k, lines[k - 1])
    elif how == "missing_column":
        out = []
        for ln in lines:
            cells, end = _sep(ln)
            del cells[14]  # エリアプライス九州
            out.append(",".join(cells) + end)
        lines = out
    path = _write(tmp_path / "spot_summary_FY2022.csv", lines, enc)
    with pytest.raises(DataSourceError, match=expect) as exc:
        read_jepx_spot(path)
    if how in ("bad_number", "empty_price", "gap", "duplicate"):
        assert exc.value.line == k + 1
    else:
        assert exc.value.line == 1


@pytest.mark.parametrize("how", ["gap", "bad_number", "wrong_encoding"])
def test_tepco_yearly_corrupted(fixtures_raw, tmp_path, how):
    src = fixtures_raw / "tepco_juyo_dlxiii/juyo-2021.csv"
    lines = _lines(src, "utf-8")
    enc = "utf-8"
    k = 12
    if how == "gap":
        del lines[k]
    elif how == "bad_number":
        lines[k] = lines[k].replace(",", ",x", 2)[:-1] + "\n"
        lines[k] = lines[k].rsplit(",", 1)[0] + ",3O00\n"
    else:
        enc = "utf-16"
    path = _write(tmp_path / "juyo-2021.csv", lines, enc)
    with pytest.raises(DataSourceError) as exc:
        read_tepco_yearly(path)
    if how != "wrong_encoding":
        assert exc.value.line == k + 1


def test_curtailment_summary_corrupted(fixtures_raw, tmp_path):
    src = fixtures_raw / JUKYU / "summary/curtailment_rate_by_fiscal_year.csv"
    lines = _lines(src, "utf-8")
    lines[3] = lines[3].replace(",0,", ",zero,", 1) if ",0," in lines[3] else lines[3][:-2] + "x\n"
    path = _write(tmp_path / src.name, lines, "utf-8")
    with pytest.raises(DataSourceError) as exc:
        read_curtailment_summary(path)
    assert exc.value.line == 4


@pytest.mark.parametrize(
    "read, args",
    [
        (read_jukyu, (FORMATS["kyushu"],)),
        (read_eria_jukyu, ("kyushu",)),
        (read_jepx_spot, ()),
        (read_tepco_daily, ()),
        (read_tepco_yearly, ()),
        (read_curtailment_summary, ()),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_a_missing_file_is_a_data_source_error_naming_the_path(read_error, tmp_path, read, args):
    """Not a bare FileNotFoundError: the path, what was expected and the fix."""
    path = tmp_path / "not_downloaded.csv"
    err = read_error(read, path, None, *args)
    assert "an existing, readable file (check the path" in str(err)
    assert "No such file or directory" in str(err)
    err = read_error(read, tmp_path, None, *args)  # a folder, not a file
    assert "an existing, readable file" in str(err)
