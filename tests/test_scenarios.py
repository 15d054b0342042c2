"""Scenario files: the bundled ones, every section, and errors naming file, field, value, fix."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from wattbit.domain import DRDirection
from wattbit.errors import InvalidInput, UnknownName
from wattbit.examples import tiny_fleet, tiny_jobs, tiny_scenario
from wattbit.power import power_coefficients
from wattbit.scenarios import SCENARIO_FIELDS, bundled_scenarios, load_fleet, load_scenario

SHARED = Path(os.environ.get("WATTBIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
KYUSHU = SHARED / "data" / "raw" / "area_jukyu_ryomakom" / "kyushu"
needs_shared = pytest.mark.skipif(not KYUSHU.is_dir(), reason="../shared/data/raw absent")
JST = "Asia/Tokyo"

MINIMAL = """
name = "mini"
fleet = "japan-9"
[period]
start = "2023-03-06 00:00"
end = "2023-03-07 00:00"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_default_scenario():
    s = load_scenario()
    assert s.name == "default" and s.fleet.name == "japan-9"
    assert s.start == pd.Timestamp("2023-03-06", tz=JST)
    assert s.end == pd.Timestamp("2023-03-20", tz=JST)
    assert s.step_s == 1800 and s.horizon_slots == 96 and len(s.time) == 14 * 48
    up = [d for d in s.demand_response if d.direction is DRDirection.UP]
    down = [d for d in s.demand_response if d.direction is DRDirection.DOWN]
    assert [d.area for d in up] == ["kyushu"] and [d.area for d in down] == ["tokyo"]
    evening = down[0].start.tz_convert(JST)
    assert evening.weekday() < 5 and 17 <= evening.hour < 21


def test_default_dr_sized_to_the_fleet():
    """上げDR: at most what kyushu-dc could add from 60 % busy to all busy; 下げDR: at most what
    tokyo-dc could shed from 60 % busy to idle."""
    s = load_scenario()
    for dr in s.demand_response:
        site = s.fleet.sites_in([dr.area])[0]
        _base, slope = power_coefficients(site)
        busy = s.workload.utilisation_pu * site.gpu_count
        room = slope * (site.gpu_count - busy) if dr.direction is DRDirection.UP else slope * busy
        assert 0 < dr.power_mw <= room


@pytest.mark.shared
@needs_shared
def test_default_period_is_kyushus_heaviest_curtailment_fortnight():
    frames = [pd.read_csv(KYUSHU / f"area_jyukyu_jisseki_2022_{q}Q.csv", encoding="cp932", skiprows=2, header=None)
              for q in range(1, 5)]
    df = pd.concat(frames)
    t = pd.to_datetime(df[0], format="%Y/%m/%d %H:%M")
    curtailed = pd.Series(pd.to_numeric(df[8], errors="coerce").fillna(0).to_numpy()
                          + pd.to_numeric(df[10], errors="coerce").fillna(0).to_numpy(), index=t)
    daily = curtailed.resample("D").sum()
    best_end = daily.rolling(14).sum().idxmax()  # label = last day of the window
    s = load_scenario()
    assert s.start.tz_convert(JST).tz_localize(None) == best_end - pd.Timedelta(days=13)
    assert curtailed.sum() == 448_766  # FY2022 total, as MISSION.md quotes


def test_full_year():
    s = load_scenario("full-year")
    assert s.start == pd.Timestamp("2022-04-01", tz=JST) and s.end == pd.Timestamp("2023-04-01", tz=JST)
    assert len(s.time) == 365 * 48
    assert bundled_scenarios() == ("default", "full-year")


def test_examples_are_small_and_consistent():
    from wattbit.workload import check_jobs

    sc = tiny_scenario()
    assert sc.fleet == tiny_fleet() and sc.fleet.gpu_count == 2048
    jobs = tiny_jobs()
    assert {j.kind.value for j in jobs} == {"training", "fine_tuning", "batch_inference", "online_inference"}
    check_jobs(sc.fleet, jobs)
    assert all(sc.start <= j.release < sc.end for j in jobs)


def test_yaml_and_inline_fleet(tmp_path):
    p = write(tmp_path, """
name: yaml-mini
fleet:
  name: two
  sites:
    - {name: a-dc, area: kyushu, lat: 33.6, lon: 130.4, gpu_count: 64, it_power_max_mw: 0.1}
    - {name: b-dc, area: tokyo, lat: 35.7, lon: 139.8, gpu_count: 64, it_power_max_mw: 0.1}
period: {start: "2023-03-06 00:00", end: "2023-03-06 12:00"}
workload: {source: synthetic, seed: 4}
outages:
  - {site: a-dc, start: "2023-03-06 01:00", end: "2023-03-06 02:00"}
step_s: 3600
""", "s.yaml")
    s = load_scenario(p)
    assert s.fleet.site_names == ("a-dc", "b-dc") and s.workload.source == "synthetic"
    assert len(s.time) == 12 and s.outages[0].site == "a-dc"


def test_fleet_by_relative_path(tmp_path):
    (tmp_path / "f.toml").write_text(
        'name = "one"\n[[sites]]\nname = "k-dc"\narea = "kyushu"\nlat = 33.6\nlon = 130.4\n'
        'gpu_count = 64\nit_power_max_mw = 0.1\n', encoding="utf-8")
    s = load_scenario(write(tmp_path, MINIMAL.replace('"japan-9"', '"f.toml"')))
    assert s.fleet.name == "one"


# --- errors name the file, the field, the value and the fix ---------------------------------

def test_unknown_field_suggests(tmp_path):
    p = write(tmp_path, MINIMAL + "[workload]\nutilisation = 0.5\n")
    with pytest.raises(InvalidInput, match=r"s.toml: \[workload\]: unknown field 'utilisation'; did you mean 'utilisation_pu'\?"):
        load_scenario(p)


def test_bad_value_names_file_and_section(tmp_path):
    p = write(tmp_path, MINIMAL + "[workload]\nutilisation_pu = 1.5\n")
    with pytest.raises(InvalidInput, match=r"s.toml: \[workload\]: workload: utilisation_pu = 1.5; expected a fraction"):
        load_scenario(p)


def test_unknown_area_in_dr(tmp_path):
    p = write(tmp_path, MINIMAL + """
[[demand_response]]
request_id = "x"
direction = "up"
area = "kyusyu"
power_mw = 1
start = "2023-03-06 10:00"
end = "2023-03-06 11:00"
""")
    with pytest.raises(UnknownName, match=r"s.toml: \[\[demand_response\]\] #1: demand response 'x': area: area 'kyusyu' not found; did you mean 'kyushu'"):
        load_scenario(p)


def test_bad_time_and_fiscal_year(tmp_path):
    p = write(tmp_path, MINIMAL.replace('"2023-03-07 00:00"', '"next tuesday"'))
    with pytest.raises(InvalidInput, match=r"\[period\]: end = 'next tuesday' is not a date-time; write e.g."):
        load_scenario(p)
    p = write(tmp_path, MINIMAL.replace("[period]", "[period]\nfiscal_year = 2021"))
    with pytest.raises(InvalidInput, match=r"fiscal_year = 2021 but the period .* is not inside FY2021.*move the period"):
        load_scenario(p)


def test_missing_period_and_unknown_fleet(tmp_path):
    with pytest.raises(InvalidInput, match=r"\[period\] is missing; add start and end"):
        load_scenario(write(tmp_path, 'fleet = "japan-9"\n'))
    with pytest.raises(UnknownName, match=r"fleet: fleet 'japan-8' not found; did you mean 'japan-9'"):
        load_scenario(write(tmp_path, MINIMAL.replace('"japan-9"', '"japan-8"')))


def test_unknown_scenario_and_missing_file(tmp_path):
    with pytest.raises(UnknownName, match=r"scenario 'defualt' not found; did you mean 'default'"):
        load_scenario("defualt")
    with pytest.raises(InvalidInput, match="does not exist"):
        load_scenario(tmp_path / "nope.toml")


def test_fleet_site_errors_name_the_entry(tmp_path):
    p = tmp_path / "f.toml"
    p.write_text('[[sites]]\nname = "a"\narea = "tokyo"\nlat = 35.7\nlon = 139.8\ngpu_count = -8\n'
                 'it_power_max_mw = 1\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"f.toml: sites\[0\]: site 'a': gpu_count = -8; expected a positive integer"):
        load_fleet(p)
    p.write_text('[[sites]]\nname = "a"\narea = "tokyo"\nlat = 35.7\nlon = 139.8\ngpu_count = 8\n'
                 'it_power_max_mw = 1\naccelerator = "h2000"\n', encoding="utf-8")
    with pytest.raises(UnknownName, match=r"accelerator 'h2000' not found; did you mean 'h200'"):
        load_fleet(p)
    p.write_text('[[sites]]\nname = "a"\narea = "tokyo"\nlat = 35.7\nlon = 139.8\ngpus = 8\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"sites\[0\]: .*unexpected keyword argument 'gpus'.*docs/scenarios.md"):
        load_fleet(p)


def test_field_table_covers_the_domain_objects():
    from wattbit.domain import DemandResponse, SiteOutage, Weights, WorkloadSpec

    for section, cls in (("workload", WorkloadSpec), ("weights", Weights),
                         ("demand_response", DemandResponse), ("outages", SiteOutage)):
        assert set(SCENARIO_FIELDS[section]) == set(cls.__dataclass_fields__), section


def test_field_defaults_match_the_domain_objects():
    from dataclasses import MISSING, fields

    from wattbit.domain import DemandResponse, Weights, WorkloadSpec

    for section, cls in (("workload", WorkloadSpec), ("weights", Weights), ("demand_response", DemandResponse)):
        for f in fields(cls):
            documented = SCENARIO_FIELDS[section][f.name][2]
            if f.default is MISSING:
                assert documented == "required", (section, f.name)
            elif isinstance(f.default, str):
                assert documented == repr(f.default), (section, f.name)
            else:
                assert documented == f.default, (section, f.name)


REPO = Path(__file__).resolve().parents[1]


def test_docs_field_table_is_current():
    from wattbit.scenarios import scenario_fields_markdown

    assert scenario_fields_markdown() in (REPO / "docs" / "scenarios.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("doc", ["scenarios.md", "fleet.md", "workload.md"])
def test_docs_examples_run(doc):
    import doctest

    result = doctest.testfile(str(REPO / "docs" / doc), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
