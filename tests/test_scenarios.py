"""Scenario files: the bundled ones, every section, and errors naming file, field, value, fix."""

from __future__ import annotations

import os
import re
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
    with pytest.raises(InvalidInput, match=r"f.toml: sites\[0\]: site 'a': gpu_count = -8; expected an integer >= 1"):
        load_fleet(p)
    p.write_text('[[sites]]\nname = "a"\narea = "tokyo"\nlat = 35.7\nlon = 139.8\ngpu_count = 8\n'
                 'it_power_max_mw = 1\naccelerator = "h2000"\n', encoding="utf-8")
    with pytest.raises(UnknownName, match=r"accelerator 'h2000' not found; did you mean 'h200'"):
        load_fleet(p)
    p.write_text('[[sites]]\nname = "a"\narea = "tokyo"\nlat = 35.7\nlon = 139.8\ngpus = 8\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"sites\[0\]: unknown field 'gpus'; known fields: name, .*gpu_count.*; "
                                           r"see docs/fleet.md"):
        load_fleet(p)
    p.write_text('[[sites]]\nname = "a"\narea = "tokyo"\nlat = 35.7\nlon = 139.8\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"sites\[0\]: gpu_count, it_power_max_mw are missing; add them "
                                           r"\(see docs/fleet.md\)"):
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


# --- review of the loaders: wrong types, misspelt site fields, tables for arrays, JST ----------

DR = """
[[demand_response]]
request_id = "x"
direction = "up"
area = "kyushu"
power_mw = 1
start = "2023-03-06 10:00"
end = "2023-03-06 11:00"
"""
OUTAGE = """
[[outages]]
site = "tokyo-dc"
start = "2023-03-06 10:00"
end = "2023-03-06 11:00"
"""
SITE = 'name = "a"\narea = "tokyo"\nlat = 35.7\nlon = 139.8\ngpu_count = 8\nit_power_max_mw = 1\n'


@pytest.mark.parametrize("text, where, shown", [
    (MINIMAL + '[workload]\nutilisation_pu = "high"\n', r"\[workload\]", r"utilisation_pu = 'high' is a string"),
    (MINIMAL + DR.replace("power_mw = 1", 'power_mw = "4 MW"'), r"\[\[demand_response\]\] #1",
     r"power_mw = '4 MW' is a string"),
    (MINIMAL + '[weights]\ncarbon_price_jpy_per_t = "cheap"\n', r"\[weights\]",
     r"carbon_price_jpy_per_t = 'cheap' is a string"),
    (MINIMAL + DR + 'response_deadline_s = "fast"\n', r"\[\[demand_response\]\] #1",
     r"response_deadline_s = 'fast' is a string"),
    (MINIMAL + DR + "response_deadline_s = true\n", r"\[\[demand_response\]\] #1",
     r"response_deadline_s = True is a boolean"),
    ('horizon_slots = "96"\n' + MINIMAL, "scenario", r"horizon_slots = '96' is a string"),
], ids=["utilisation", "power", "carbon-price", "deadline", "deadline-bool", "horizon"])
def test_wrong_type_names_field_and_value(tmp_path, text, where, shown):
    """The type is checked before the value is compared: the message names the file, the section,
    the field, the value and what was expected, not Python's comparison error."""
    with pytest.raises(InvalidInput) as err:
        load_scenario(write(tmp_path, text))
    msg = str(err.value)
    assert re.search(rf"s\.toml: {where}: .*{shown}; expected an? (finite number|fraction|integer)", msg), msg
    assert "not supported" not in msg


@pytest.mark.parametrize("text, pattern", [
    ("horizon_slots = 96.5\n" + MINIMAL, r"horizon_slots = 96.5; expected an integer >= 1"),
    (MINIMAL.replace('name = "mini"', "name = 5"), r"s\.toml: name = 5; expected a non-empty string"),
    (MINIMAL + DR.replace('request_id = "x"', "request_id = 1"),
     r"\[\[demand_response\]\] #1: demand response: request_id = 1; expected a non-empty string"),
    (MINIMAL + OUTAGE.replace('site = "tokyo-dc"', "site = 3"),
     r"\[\[outages\]\] #1: outage: site = 3; expected a non-empty string"),
    ("fine_block_slots = 2.0\n" + MINIMAL, r"fine_block_slots = 2.0; expected 1, 2 or 4"),
    (MINIMAL.replace('end = "2023-03-07 00:00"', "end = 20230307"), r"end = 20230307 is not a date-time"),
], ids=["horizon-float", "name-int", "request-id-int", "outage-site-int", "fine-blocks-float", "time-int"])
def test_wrong_types_are_refused_not_accepted(tmp_path, text, pattern):
    with pytest.raises(InvalidInput, match=pattern):
        load_scenario(write(tmp_path, text))


@pytest.mark.parametrize("text, pattern", [
    (MINIMAL.replace("[period]", '[period]\nfiscal_year = "2022"'),
     r"s\.toml: \[period\]: fiscal_year = '2022' is a string; expected an integer such as 2022"),
    (MINIMAL + "[workload]\nseed = 1.5\n", r"s\.toml: \[workload\]: workload: seed = 1.5; expected an integer >= 0"),
    (MINIMAL + '[workload]\nseed = "one"\n', r"seed = 'one' is a string; expected an integer >= 0"),
    ('step_s = "half-hour"\n' + MINIMAL,
     r"s\.toml: scenario: scenario 'mini': step_s = 'half-hour' is a string; expected 900, 1800 or 3600"),
], ids=["fiscal-year-str", "seed-float", "seed-str", "step-str"])
def test_wrong_types_raise_invalid_input_not_python_errors(tmp_path, text, pattern):
    """Before the fix these were a TypeError, a numpy TypeError when the jobs were built, and a
    ValueError from float()."""
    with pytest.raises(InvalidInput, match=pattern):
        load_scenario(write(tmp_path, text))


def test_seed_refused_before_any_job_is_built(tmp_path):
    """A float seed used to load and then fail inside numpy when the workload was built."""
    with pytest.raises(InvalidInput, match="seed = 1.5"):
        load_scenario(write(tmp_path, MINIMAL + "[workload]\nseed = 1.5\n"))
    assert load_scenario(write(tmp_path, MINIMAL + "[workload]\nseed = 7\n")).workload.seed == 7


def test_misspelt_site_field_suggests_and_points_to_fleet_docs(tmp_path):
    hint = (r"sites\[0\]: unknown field 'pues'; did you mean 'pue'\? \(known fields: name, area, lat, lon, "
            r"gpu_count, .*base_load_pu; see docs/fleet\.md\)")
    f = tmp_path / "f.toml"
    f.write_text("[[sites]]\n" + SITE + "pues = 1.25\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"f\.toml: " + hint):
        load_fleet(f)
    inline = MINIMAL.replace('fleet = "japan-9"\n', "") + '[fleet]\nname = "x"\n[[fleet.sites]]\n' + SITE + "pues = 1.25\n"
    with pytest.raises(InvalidInput, match=r"s\.toml: \[fleet\]: " + hint):
        load_scenario(write(tmp_path, inline))


@pytest.mark.parametrize("section, body, each", [
    ("demand_response", DR, "request"),
    ("outages", OUTAGE, "outage"),
])
def test_single_table_where_an_array_of_tables_is_expected(tmp_path, section, body, each):
    text = MINIMAL + body.replace(f"[[{section}]]", f"[{section}]")
    with pytest.raises(InvalidInput, match=rf"s\.toml: \[{section}\] is a single table; write \[\[{section}\]\] "
                                           rf"\(an array of tables.*\), one per {each}"):
        load_scenario(write(tmp_path, text))
    assert len(getattr(load_scenario(write(tmp_path, MINIMAL + body)), section)) == 1


def test_single_sites_table_in_a_fleet(tmp_path):
    f = tmp_path / "f.toml"
    f.write_text("[sites]\n" + SITE, encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"\[sites\] is a single table; write \[\[sites\]\] .*one per site"):
        load_fleet(f)
    inline = MINIMAL.replace('fleet = "japan-9"\n', "") + '[fleet]\nname = "x"\n[fleet.sites]\n' + SITE
    with pytest.raises(InvalidInput, match=r"\[fleet\.sites\] is a single table; write \[\[fleet\.sites\]\]"):
        load_scenario(write(tmp_path, inline))


def test_unknown_name_without_a_close_match_has_no_stray_semicolon():
    with pytest.raises(UnknownName) as err:
        load_scenario("myscen")
    assert str(err.value) == "scenario 'myscen' not found (known: default, full-year)"


@pytest.mark.parametrize("loader, kind", [(load_scenario, "scenario"), (load_fleet, "fleet")])
def test_existing_file_without_a_scenario_suffix(tmp_path, monkeypatch, loader, kind):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").write_text(MINIMAL, encoding="utf-8")
    with pytest.raises(InvalidInput, match=rf"{kind} 'mine' is not a bundled {kind} .*give a path ending in "
                                           r"\.toml or \.yaml"):
        loader("mine")


def test_upper_case_suffix_is_read(tmp_path):
    s = load_scenario(write(tmp_path, MINIMAL, "my.TOML"))
    assert s.name == "mini" and len(s.time) == 48
    f = tmp_path / "F.TOML"
    f.write_text('name = "one"\n[[sites]]\n' + SITE, encoding="utf-8")
    assert load_fleet(f).name == "one"
    assert load_scenario(write(tmp_path, MINIMAL.replace('"japan-9"', '"F.TOML"'))).fleet.name == "one"


@pytest.mark.parametrize("text, pattern", [
    (MINIMAL.replace('end = "2023-03-07 00:00"', 'end = "2023-03-05 00:00"'),
     r"\[period\]: end 2023-03-05 00:00 JST is not after start 2023-03-06 00:00 JST"),
    (MINIMAL + DR.replace('end = "2023-03-06 11:00"', 'end = "2023-03-06 09:00"'),
     r"demand response 'x': end 2023-03-06 09:00 JST is not after start 2023-03-06 10:00 JST"),
    (MINIMAL + DR + 'issued_at = "2023-03-06 12:00"\n',
     r"issued_at 2023-03-06 12:00 JST is after start 2023-03-06 10:00 JST"),
    (MINIMAL + OUTAGE.replace('end = "2023-03-06 11:00"', 'end = "2023-03-06 09:00"'),
     r"outage of 'tokyo-dc': end 2023-03-06 09:00 JST is not after start 2023-03-06 10:00 JST"),
    (MINIMAL.replace("[period]", "[period]\nfiscal_year = 2021"),
     r"the period 2023-03-06 00:00 JST \.\. 2023-03-07 00:00 JST is not inside FY2021"),
], ids=["period", "dr", "issued-at", "outage", "fiscal-year"])
def test_window_errors_show_jst_as_written(tmp_path, text, pattern):
    with pytest.raises(InvalidInput, match=pattern) as err:
        load_scenario(write(tmp_path, text))
    assert "+00:00" not in str(err.value)


def test_with_period_error_in_jst():
    from wattbit.scenarios import with_period

    with pytest.raises(InvalidInput, match=r"scenario 'default': period: end 2023-03-05 00:00 JST is not after "
                                           r"start 2023-03-06 00:00 JST; give an end after the start"):
        with_period(load_scenario(), "2023-03-06", "2023-03-05")
    with pytest.raises(InvalidInput, match=r"period: start = 'next monday' is not a date-time"):
        with_period(load_scenario(), "next monday")
    with pytest.raises(InvalidInput, match=r"period: end = '' is not a date-time"):  # (it parses as NaT)
        with_period(load_scenario(), None, "")
