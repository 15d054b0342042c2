"""The TSOs' common 30-min format (eria_jukyu_YYYYMM_NN.csv, April 2024 on).

Test files are written here in that layout from the committed FY2022 Kyushu/Tohoku excerpts (real
values, each hour split into two equal half-hours); the real 2026 files under ../shared are read
by the test marked ``shared``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wattbit.data import FORMATS, import_raw, load_dataset, read_eria_jukyu, read_jukyu
from wattbit.data.eria import AREA_BY_CODE, ERIA_FILE
from wattbit.errors import DataSourceError, UnknownName

HEADER = ("DATE,TIME,エリア需要,原子力,火力(LNG),火力(石炭),火力(石油),火力(その他),火力出力制御量,水力,地熱,バイオマス,"
          "バイオマス出力制御量,太陽光発電実績,太陽光出力制御量,風力発電実績,風力出力制御量,揚水,蓄電池,連系線,その他,合計")


def _hourly(fixtures_raw: Path) -> pd.DataFrame:
    src = fixtures_raw / "area_jukyu_ryomakom/kyushu/area_jyukyu_jisseki_2021_1Q.csv"
    return read_jukyu(src, FORMATS["kyushu"]).frame


def write_eria(path: Path, hourly: pd.DataFrame, *, year_shift: int, end_label: bool, quoted: bool,
               compact_date: bool, encoding: str) -> Path:
    """Write ``hourly`` (UTC) as a common-format file, thermal split 40/40/10/10 across fuels."""
    lines = ["単位[MW平均],,,供給力", HEADER]
    for t_utc, r in hourly.iterrows():
        for half in (0, 30):
            start = t_utc.tz_convert("Asia/Tokyo").tz_localize(None) + pd.DateOffset(years=year_shift) + pd.Timedelta(minutes=half)
            label = start + pd.Timedelta(minutes=30) if end_label else start
            day, hh = (label - pd.Timedelta(minutes=30), 24) if end_label and label.hour == 0 and label.minute == 0 else (label, label.hour)
            date = day.strftime("%Y%m%d") if compact_date else f"{day.year}/{day.month}/{day.day}"
            time = f"{hh}:{label.minute:02d}"
            th = r.thermal_mw
            vals = [r.demand_mw, r.nuclear_mw, 0.4 * th, 0.4 * th, 0.1 * th, 0.1 * th, 0, r.hydro_mw, r.geothermal_mw,
                    r.biomass_mw, 0, r.solar_mw, r.solar_curtailed_mw, r.wind_mw, r.wind_curtailed_mw,
                    r.pumped_storage_mw, 0, r.tie_net_import_mw, 0, r.demand_mw]
            cells = [date, time] + [f"{v:g}" for v in vals]
            lines.append(",".join(f'"{c}"' for c in cells) if quoted else ",".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


@pytest.mark.parametrize(
    "style",
    [
        {"end_label": True, "quoted": True, "compact_date": True, "encoding": "cp932"},  # Kyushu's
        {"end_label": False, "quoted": False, "compact_date": False, "encoding": "cp932"},  # most TSOs'
    ],
)
def test_common_format_round_trip(fixtures_raw, tmp_path, style):
    hourly = _hourly(fixtures_raw)
    area = "kyushu" if style["end_label"] else "chugoku"
    path = write_eria(tmp_path / "eria_jukyu_202404_09.csv", hourly, year_shift=3, **style)
    got = read_eria_jukyu(path, area).frame
    assert len(got) == len(hourly)
    assert got.index[0] == pd.Timestamp("2024-04-01 00:00", tz="Asia/Tokyo")
    np.testing.assert_allclose(got["thermal_mw"].to_numpy(), hourly["thermal_mw"].to_numpy(), rtol=1e-9)
    for col in ("demand_mw", "solar_curtailed_mw", "tie_net_import_mw", "pumped_storage_mw"):
        np.testing.assert_array_equal(got[col].to_numpy(), hourly[col].to_numpy())


def test_tokyo_is_utf8(fixtures_raw, tmp_path):
    hourly = _hourly(fixtures_raw)
    path = write_eria(tmp_path / "eria_jukyu_202404_03.csv", hourly, year_shift=3, end_label=False,
                      quoted=False, compact_date=False, encoding="utf-8")
    assert len(read_eria_jukyu(path, "tokyo").frame) == 48
    with pytest.raises(DataSourceError, match="encoded as cp932"):
        read_eria_jukyu(path, "kansai")


@pytest.mark.parametrize("how, expect", [
    ("gap", "a gap: 1 slot missing"),
    ("duplicate", "a duplicate"),
    ("bad_number", "a number"),
    ("missing_column", "column '風力出力制御量'"),
    ("half_hour", "whole hours"),
])
def test_common_format_corrupted(fixtures_raw, tmp_path, how, expect):
    path = write_eria(tmp_path / "eria_jukyu_202404_07.csv", _hourly(fixtures_raw), year_shift=3,
                      end_label=False, quoted=False, compact_date=False, encoding="cp932")
    lines = path.read_bytes().decode("cp932").split("\n")
    k = 20
    if how == "gap":
        del lines[k]
    elif how == "duplicate":
        lines.insert(k, lines[k - 1])
    elif how == "bad_number":
        cells = lines[k].split(",")
        cells[5] = "1.2.3"
        lines[k] = ",".join(cells)
    elif how == "missing_column":
        lines = [",".join(c for j, c in enumerate(ln.split(",")) if j != 16) for ln in lines]
    elif how == "half_hour":
        del lines[2]
    path.write_bytes("\n".join(lines).encode("cp932"))
    with pytest.raises(DataSourceError, match=expect) as exc:
        read_eria_jukyu(path, "chugoku")
    if how in ("gap", "duplicate", "bad_number"):
        assert exc.value.line == k + 1



@pytest.mark.parametrize("area, hint", [("kyusyu", "did you mean 'kyushu'?"), ("okinawa-", "did you mean 'okinawa'?")])
def test_an_unknown_area_name_is_refused_with_the_name_and_a_hint(fixtures_raw, tmp_path, area, hint):
    """Not a bare KeyError: UnknownName naming the area and the name to use."""
    path = write_eria(tmp_path / "eria_jukyu_202404_09.csv", _hourly(fixtures_raw), year_shift=3,
                      end_label=True, quoted=True, compact_date=True, encoding="cp932")
    with pytest.raises(UnknownName) as exc:
        read_eria_jukyu(path, area)
    assert f"area {area!r} not found; {hint}" in str(exc.value)
    assert "(known: chubu, chugoku, " in str(exc.value)


@pytest.mark.parametrize("area", ["Kyushu", "KYUSHU", " kyushu ", "KY"])
def test_an_area_in_capitals_or_by_code_is_read_as_its_lowercase_name(fixtures_raw, tmp_path, area):
    """As a site, a job or a demand-response request takes it; Kyushu's end labels still apply."""
    path = write_eria(tmp_path / "eria_jukyu_202404_09.csv", _hourly(fixtures_raw), year_shift=3,
                      end_label=True, quoted=True, compact_date=True, encoding="cp932")
    got = read_eria_jukyu(path, area)
    assert got.area == "kyushu"
    assert got.frame.index[0] == pd.Timestamp("2024-04-01 00:00", tz="Asia/Tokyo")
    assert got.frame.equals(read_eria_jukyu(path, "kyushu").frame)


def test_import_common_format_files(fixtures_raw, tmp_path):
    raw = tmp_path / "downloads"
    hourly = _hourly(fixtures_raw)
    write_eria(raw / "kyushu/eria_jukyu_202404_09.csv", hourly, year_shift=3, end_label=True, quoted=True,
               compact_date=True, encoding="cp932")
    jepx = fixtures_raw / "jepx_spot_dlxiii/spot_summary_FY2022.csv"
    (raw / "jepx").mkdir()
    (raw / "jepx/spot_summary_2024.csv").write_bytes(jepx.read_bytes().replace(b"2022/", b"2024/"))
    import_raw(raw, tmp_path / "out")
    ky = load_dataset(tmp_path / "out").xs("kyushu", level="area")
    assert ky.index[0] == pd.Timestamp("2024-04-01 00:00", tz="Asia/Tokyo") and len(ky) == 48

    # a file whose area code disagrees with its folder is refused
    shutil.move(raw / "kyushu/eria_jukyu_202404_09.csv", raw / "kyushu/eria_jukyu_202404_08.csv")
    with pytest.raises(DataSourceError, match="its name says 'shikoku'"):
        import_raw(raw, tmp_path / "out2")


@pytest.mark.shared
def test_real_common_format_samples(shared_raw):
    folder = shared_raw / "electricitymaps_jp/eria_jukyu_samples_2026"
    files = sorted(folder.glob("eria_jukyu_*.csv"))
    assert len(files) == 9
    for f in files:
        area = AREA_BY_CODE[ERIA_FILE.match(f.name).group(2)]
        frame = read_eria_jukyu(f, area).frame
        assert len(frame) == 50, f.name
        assert frame["demand_mw"].notna().all() and (frame["demand_mw"] > 300).all(), f.name
        assert frame["thermal_mw"].notna().all(), f.name
        first = frame.index[0].tz_convert("Asia/Tokyo")
        assert (first.hour, first.minute) == (0, 0), f.name  # Kyushu's end labels shifted to starts
