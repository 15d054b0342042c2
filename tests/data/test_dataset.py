"""The bundled dataset, the import (including files of a later period) and the summary."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from wattbit.cli import app
from wattbit.data import (
    HOURLY_COLUMN_NAMES,
    default_data_dir,
    import_raw,
    load_dataset,
    load_prices,
    load_system_price,
    summary,
)
from wattbit.data.dataset import HOURLY_FILE, MANIFEST_FILE, PRICES_FILE
from wattbit.data.summaries import read_curtailment_summary
from wattbit.domain import INTERCONNECTED_AREAS
from wattbit.errors import DataSourceError, InvalidInput

SOURCE_CURTAILMENT_MWH = {("kyushu", 2021): 534_891.0, ("kyushu", 2022): 448_766.0}
"""Kyushu's solar + wind curtailment per fiscal year in the source's own summary table."""


# --- the bundled dataset --------------------------------------------------------------------


def test_bundled_dataset_shape_and_index():
    df = load_dataset()
    assert df.index.names == ["time", "area"]
    time = df.index.get_level_values("time")
    assert str(time.tz) == "UTC"
    assert df.index.is_unique and time.is_monotonic_increasing
    assert list(df.columns) == list(HOURLY_COLUMN_NAMES)
    assert all(dt == np.float32 for dt in df.dtypes)
    areas = set(df.index.get_level_values("area"))
    assert areas == set(INTERCONNECTED_AREAS)  # Okinawa is absent
    ky = df.xs("kyushu", level="area")
    assert len(ky) == 2 * 8760
    assert ky.index[0] == pd.Timestamp("2021-04-01 00:00", tz="Asia/Tokyo")


def test_tokyo_has_no_mix_or_curtailment_columns():
    tk = load_dataset().xs("tokyo", level="area")
    for col in ("thermal_mw", "nuclear_mw", "solar_curtailed_mw", "wind_curtailed_mw", "tie_net_import_mw"):
        assert tk[col].isna().all(), col
    fy22 = tk.loc[pd.Timestamp("2022-04-01", tz="Asia/Tokyo"):]
    assert fy22["demand_mw"].notna().all() and fy22["solar_mw"].notna().all()
    assert fy22["solar_mw"].max() > 10_000  # Tokyo solar peaks above 10 GW


def test_load_dataset_returns_a_copy():
    a = load_dataset()
    a.iloc[0, 0] = -1.0
    assert load_dataset().iloc[0, 0] != -1.0


def test_prices_and_the_kyushu_floor():
    p = load_prices()
    assert p.index.names == ["time", "area"]
    assert list(p.columns) == ["price_jpy_per_mwh"]
    assert set(p.index.get_level_values("area")) == set(INTERCONNECTED_AREAS)
    ky = p.xs("kyushu", level="area")["price_jpy_per_mwh"]
    jst = ky.index.tz_convert("Asia/Tokyo")
    fy = np.where(jst.month >= 4, jst.year, jst.year - 1)
    floor = ky == 10.0  # 0.01 JPY/kWh
    # JEPX PROVENANCE.md: 1,909 of 17,520 FY2022 Kyushu slots at the floor (FY2021: 1,515)
    assert int(floor[fy == 2022].sum()) == 1909
    assert int(floor[fy == 2021].sum()) == 1515
    sys_ = load_system_price()
    assert len(sys_) == 35_040 and sys_.name == "system_price_jpy_per_mwh"


def test_summary_table():
    s = summary().set_index(["area", "fiscal_year"])
    for key, mwh in SOURCE_CURTAILMENT_MWH.items():
        assert s.loc[key, "curtailed_mwh"] == pytest.approx(mwh, rel=0.005)
    assert s.loc[("kyushu", 2021), "curtailed_pct"] == pytest.approx(3.9, abs=0.05)
    assert np.isnan(s.loc[("tokyo", 2022), "curtailed_mwh"])  # not reported, not zero
    assert 20_000 < s.loc[("tokyo", 2022), "mean_price_jpy_per_mwh"] < 30_000
    assert 80 < s.loc[("kyushu", 2022), "demand_twh"] < 90


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(InvalidInput, match="wattbit data import"):
        load_dataset(tmp_path)


# --- import from the committed excerpts -------------------------------------------------------


def test_import_excerpts_is_deterministic(fixtures_raw, tmp_path):
    r1 = import_raw(fixtures_raw, tmp_path / "a")
    import_raw(fixtures_raw, tmp_path / "b")
    for name in (HOURLY_FILE, PRICES_FILE, MANIFEST_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert set(r1.coverage) == {"hokkaido", "tohoku", "tokyo", "chubu", "hokuriku", "kansai", "chugoku", "shikoku", "kyushu"}
    assert "README.md" in r1.ignored
    assert r1.summary_check is not None  # the excerpts carry the fiscal-year table
    assert any("geothermal_mw" in w for w in r1.warnings)  # Hokuriku's empty column is reported
    assert any("tokyo" in w and "missing between files" in w for w in r1.warnings)


def test_import_rejects_overlapping_files(fixtures_raw, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(fixtures_raw, raw)
    ky = raw / "area_jukyu_ryomakom" / "kyushu"
    shutil.copy(ky / "area_jyukyu_jisseki_2021_1Q.csv", ky / "area_jyukyu_jisseki_2021_1Q_copy.csv")
    with pytest.raises(DataSourceError, match="no hour already given by"):
        import_raw(raw, tmp_path / "out")


def test_import_stops_at_a_malformed_file(fixtures_raw, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(fixtures_raw, raw)
    f = raw / "area_jukyu_ryomakom" / "tohoku" / "juyo_2022_tohoku_1Q.txt"
    lines = f.read_bytes().split(b"\r\n")
    del lines[20]
    f.write_bytes(b"\r\n".join(lines))
    with pytest.raises(DataSourceError) as exc:
        import_raw(raw, tmp_path / "out")
    assert exc.value.file.endswith("juyo_2022_tohoku_1Q.txt") and exc.value.line == 21


def _shift_year(src: Path, dst: Path, encoding: str, old: str, new: str) -> None:
    """A copy of ``src`` with every date of year ``old`` moved to year ``new``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    text = src.read_bytes().decode(encoding)
    dst.write_bytes(text.replace(old + "/", new + "/").encode(encoding))


def _later_period_raw(fixtures_raw: Path, root: Path) -> Path:
    """Files of FY2023 (after the bundled data) in the TSOs' and JEPX's own formats."""
    raw = root / "downloads"
    j = fixtures_raw / "area_jukyu_ryomakom"
    _shift_year(j / "kyushu/area_jyukyu_jisseki_2021_1Q.csv", raw / "kyushu/area_jyukyu_jisseki_2023_1Q.csv",
                "cp932", "2021", "2023")
    _shift_year(j / "tohoku/juyo_2022_tohoku_1Q.txt", raw / "tohoku/juyo_2023_tohoku_1Q.txt", "cp932", "2022", "2023")
    _shift_year(j / "shikoku/jukyu2022.csv", raw / "shikoku/jukyu2023.csv", "utf-8-sig", "2022", "2023")
    _shift_year(fixtures_raw / "jepx_spot_dlxiii/spot_summary_FY2022.csv", raw / "jepx/spot_summary_2023.csv",
                "utf-8", "2022", "2023")
    return raw


def test_import_and_summarise_a_later_period_via_cli(fixtures_raw, tmp_path):
    raw = _later_period_raw(fixtures_raw, tmp_path)
    (raw / "notes.txt").write_text("what I downloaded, and when\n", encoding="utf-8")
    out = tmp_path / "dataset"
    runner = CliRunner()
    res = runner.invoke(app, ["data", "import", str(raw), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "kyushu" in res.output and "2023-04-01 00:00" in res.output
    assert "1 other files ignored" in res.output and "ignored: notes.txt" in res.output  # named, to find a misplaced file

    res = runner.invoke(app, ["data", "summary", "--data", str(out)])
    assert res.exit_code == 0, res.output
    rows = [ln.split() for ln in res.output.splitlines() if ln.startswith(("kyushu", "tohoku", "shikoku"))]
    assert {(r[0], r[1]) for r in rows} == {("kyushu", "2023"), ("tohoku", "2023"), ("shikoku", "2023")}

    s = summary(out).set_index(["area", "fiscal_year"])
    assert s.loc[("kyushu", 2023), "hours"] == 48
    ky = load_dataset(out).xs("kyushu", level="area")
    assert ky.index[0] == pd.Timestamp("2023-04-01 00:00", tz="Asia/Tokyo")
    assert ky.iloc[0]["demand_mw"] == 7228.0  # the excerpt's first value, moved to 2023
    assert s.loc[("shikoku", 2023), "curtailed_mwh"] > 0
    assert not np.isnan(s.loc[("kyushu", 2023), "mean_price_jpy_per_mwh"])

    # the forecast error over the areas the dataset has; a fleet that needs others is refused
    # naming the area and the fix
    res = runner.invoke(app, ["data", "forecast-error", "--data", str(out)])
    assert res.exit_code == 0, res.output
    assert {ln.split()[0] for ln in res.output.splitlines() if ln.startswith(("kyushu", "tohoku", "shikoku", "tokyo"))} \
        == {"kyushu", "tohoku", "shikoku"}
    res = runner.invoke(app, ["simulate", "--data", str(out), "-p", "baseline", "--start", "2023-04-01",
                              "--end", "2023-04-02", "--out", str(tmp_path / "run")])
    assert res.exit_code != 0
    assert "has no data for area 'hokkaido' (it has tohoku, shikoku, kyushu); import that area's TSO files" \
        in str(res.exception)


def test_cli_import_reports_a_malformed_file(fixtures_raw, tmp_path):
    raw = _later_period_raw(fixtures_raw, tmp_path)
    f = raw / "kyushu/area_jyukyu_jisseki_2023_1Q.csv"
    f.write_bytes(f.read_bytes().replace(b"2023/4/1 5:00,", b"2023/4/1 4:00,"))
    import sys

    from wattbit.cli import main

    argv = sys.argv
    sys.argv = ["wattbit", "data", "import", str(raw), "--out", str(tmp_path / "o")]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = argv
    assert exc.value.code == 2


# --- against the full raw data (../shared) -----------------------------------------------------


@pytest.fixture(scope="module")
def rebuilt(shared_raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("rebuilt")
    report = import_raw(shared_raw, out)
    return out, report


@pytest.mark.shared
def test_rebuild_from_shared_is_bit_for_bit(rebuilt):
    out, _ = rebuilt
    bundled = default_data_dir()
    for name in (HOURLY_FILE, PRICES_FILE, MANIFEST_FILE):
        assert (out / name).read_bytes() == (bundled / name).read_bytes(), name


@pytest.mark.shared
def test_curtailment_totals_match_the_source_summaries(rebuilt, shared_raw):
    out, report = rebuilt
    src = read_curtailment_summary(shared_raw / "area_jukyu_ryomakom/summary/curtailment_rate_by_fiscal_year.csv")
    src = src[src.fiscal_year.isin([2021, 2022])].set_index(["area", "fiscal_year"])["curtailed_mwh"]
    mine = summary(out).set_index(["area", "fiscal_year"])["curtailed_mwh"]
    assert len(src) == 16  # 8 areas x 2 fiscal years
    for key, mwh in src.items():
        assert mine.loc[key] == pytest.approx(mwh, rel=0.005, abs=0.5), key
    for key, mwh in SOURCE_CURTAILMENT_MWH.items():
        assert src.loc[key] == mwh
        assert mine.loc[key] == pytest.approx(mwh, rel=0.005)
    assert (report.summary_check["rel_diff"].abs() <= 0.005).all()
