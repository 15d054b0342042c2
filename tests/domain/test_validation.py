"""Bad input is rejected when a domain object is built, with the field, the value and the fix."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from wattbit.domain import DemandResponse, Fleet, Site, SiteOutage, Weights, WorkloadSpec
from wattbit.errors import InvalidInput, UnknownName
from wattbit.examples import tiny_fleet, tiny_jobs, tiny_scenario

T0 = pd.Timestamp("2023-03-06 09:00", tz="Asia/Tokyo")


def site(**kw):
    base = {"name": "x-dc", "area": "tokyo", "lat": 35.7, "lon": 139.8, "gpu_count": 64, "it_power_max_mw": 0.1}
    return Site(**{**base, **kw})


# --- unknown area ----------------------------------------------------------------------------

def test_site_unknown_area():
    with pytest.raises(UnknownName) as err:
        site(area="tokio")
    msg = str(err.value)
    assert "site 'x-dc'" in msg and "area:" in msg and "'tokio'" in msg and "did you mean 'tokyo'" in msg


def test_job_unknown_allowed_area():
    with pytest.raises(UnknownName) as err:
        replace(tiny_jobs()[0], allowed_areas=frozenset({"kyushuu"}))
    msg = str(err.value)
    assert "job 'trn-1'" in msg and "allowed_areas" in msg and "'kyushuu'" in msg and "did you mean 'kyushu'" in msg


def test_job_unknown_user_area():
    with pytest.raises(UnknownName, match=r"job 'oi-1': user_area: area 'osaka' not found"):
        replace(tiny_jobs()[9], user_area="osaka")


def test_demand_response_unknown_area():
    with pytest.raises(UnknownName, match=r"demand response 'dr': area: area 'kyusyu' not found; did you mean 'kyushu'"):
        DemandResponse("dr", "up", "kyusyu", 1.0, T0, T0 + pd.Timedelta(hours=1))
    # no close name: the message lists the known ones instead
    with pytest.raises(UnknownName, match=r"area 'kanto' not found \(known: chubu, chugoku, .*tokyo\)"):
        DemandResponse("dr", "up", "kanto", 1.0, T0, T0 + pd.Timedelta(hours=1))


def test_area_that_is_not_a_string():
    with pytest.raises(InvalidInput, match=r"site 'x-dc': area = 13; expected an area name such as 'tokyo'"):
        site(area=13)


# --- negative GPU count ----------------------------------------------------------------------

def test_site_negative_gpu_count():
    with pytest.raises(InvalidInput, match=r"site 'x-dc': gpu_count = -8; expected an integer >= 1"):
        site(gpu_count=-8)


def test_job_negative_gpus():
    with pytest.raises(InvalidInput, match=r"job 'trn-1': gpus = -8; expected an integer >= 1"):
        replace(tiny_jobs()[0], gpus=-8)


@pytest.mark.parametrize("job_id", ["", "x,LD_PRELOAD=/tmp/evil.so", "../../escape", "a|b", "has space", "-lead",
                                    "x" * 65, 7])
def test_a_job_id_that_could_not_name_a_file_or_a_slurm_job_is_refused(job_id):
    """It becomes a checkpoint folder, a ledger file and part of sbatch's --export and squeue's
    '|'-separated output: a ',' would add a variable, '../' leave the storage, '|' split a line."""
    with pytest.raises(InvalidInput, match="expected 1 to 64 letters, digits and '._:-'"):
        replace(tiny_jobs()[0], job_id=job_id)


def test_job_ids_of_every_kind_in_use_are_accepted():
    for job_id in ("trn-000123", "oi-tokyo-0-0.0", "j0123456789ab", "t4826203cb2", "a:b_c.d"):
        assert replace(tiny_jobs()[0], job_id=job_id).job_id == job_id


def test_job_fractional_gpus():
    with pytest.raises(InvalidInput, match=r"gpus = 2.5; expected an integer >= 1"):
        replace(tiny_jobs()[0], gpus=2.5)


# --- a job allowed nowhere -------------------------------------------------------------------

def test_job_allowed_nowhere():
    with pytest.raises(InvalidInput) as err:
        replace(tiny_jobs()[0], allowed_areas=frozenset())
    msg = str(err.value)
    assert "job 'trn-1'" in msg and "allowed_areas is empty" in msg and "list at least one area" in msg


def test_job_allowed_areas_as_bare_string():
    with pytest.raises(InvalidInput, match=r"allowed_areas = 'tokyo' is a single string; give a list"):
        replace(tiny_jobs()[0], allowed_areas="tokyo")


# --- other fields ----------------------------------------------------------------------------

@pytest.mark.parametrize("kw, pattern", [
    ({"pue": 0.9}, r"pue = 0.9; expected 1.0..3.0"),
    ({"it_power_max_mw": -1.0}, r"it_power_max_mw = -1.0; expected a finite number > 0"),
    ({"lat": 51.5, "lon": -0.1}, r"location \(51.5, -0.1\) is outside Japan"),
    ({"base_load_pu": 1.5}, r"base_load_pu = 1.5; expected a fraction"),
])
def test_site_fields(kw, pattern):
    with pytest.raises(InvalidInput, match=pattern):
        site(**kw)


def test_job_deadline_before_runtime_fits():
    job = tiny_jobs()[0]
    with pytest.raises(InvalidInput, match=r"runtime_h = 20.0 does not fit in its window .* extend the deadline"):
        replace(job, deadline=job.release + pd.Timedelta(hours=10))


def test_job_naive_time():
    with pytest.raises(InvalidInput, match=r"release = .* has no time zone; give it one"):
        replace(tiny_jobs()[0], release=pd.Timestamp("2023-03-06"))


def test_online_job_needs_user_area():
    with pytest.raises(InvalidInput, match="online inference needs user_area, rtt_budget_s and deadline"):
        replace(tiny_jobs()[9], user_area=None)


def test_fleet_duplicate_and_empty():
    s = site()
    with pytest.raises(InvalidInput, match=r"site name 'x-dc' appears twice"):
        Fleet("f", (s, s))
    with pytest.raises(InvalidInput, match=r"no sites; add at least one"):
        Fleet("f", ())


def test_workload_spec_fields():
    with pytest.raises(InvalidInput, match=r"source = 'trace'; expected 'traces' or 'synthetic'"):
        WorkloadSpec(source="trace")
    with pytest.raises(InvalidInput, match=r"utilisation_pu = 1.2; expected a fraction"):
        WorkloadSpec(utilisation_pu=1.2)


def test_fleet_lookup_suggests():
    with pytest.raises(UnknownName, match=r"site 'kyusyu-dc' not found; did you mean 'kyushu-dc'"):
        tiny_fleet().site("kyusyu-dc")


# --- the type is checked before the value (a bool is not a number) ---------------------------

@pytest.mark.parametrize("build, pattern", [
    (lambda: Weights(carbon_price_jpy_per_t="cheap"),
     r"weights: carbon_price_jpy_per_t = 'cheap' is a string; expected a finite number >= 0"),
    (lambda: Weights(move_penalty_jpy_per_gb=True), r"move_penalty_jpy_per_gb = True is a boolean"),
    (lambda: DemandResponse("dr", "up", "kyushu", "4 MW", T0, T0 + pd.Timedelta(hours=1)),
     r"demand response 'dr': power_mw = '4 MW' is a string; expected a finite number > 0"),
    (lambda: DemandResponse("dr", "up", "kyushu", 1.0, T0, T0 + pd.Timedelta(hours=1), response_deadline_s="fast"),
     r"response_deadline_s = 'fast' is a string; expected a finite number > 0"),
    (lambda: WorkloadSpec(utilisation_pu="high"), r"workload: utilisation_pu = 'high' is a string; expected a fraction"),
    (lambda: WorkloadSpec(residency_share_pu=None), r"residency_share_pu = None; expected a fraction"),
    (lambda: site(pue="1.2"), r"site 'x-dc': pue = '1.2' is a string; expected 1.0..3.0"),
    (lambda: site(lat="35.7"), r"site 'x-dc': lat = '35.7' is a string; expected a number of degrees"),
    (lambda: site(base_load_pu=False), r"base_load_pu = False is a boolean; expected a fraction"),
    (lambda: replace(tiny_jobs()[0], priority="high"), r"job 'trn-1': priority = 'high' is a string; expected an integer 0 .. 9"),
    (lambda: replace(tiny_jobs()[0], runtime_h="2h"), r"job 'trn-1': runtime_h = '2h' is a string"),
], ids=["weights-str", "weights-bool", "power", "deadline", "utilisation", "share-none", "pue", "lat",
        "base-load-bool", "priority", "runtime"])
def test_wrong_type_is_invalid_input_naming_field_and_value(build, pattern):
    with pytest.raises(InvalidInput, match=pattern) as err:
        build()
    assert "not supported" not in str(err.value)


@pytest.mark.parametrize("build, pattern", [
    (lambda: replace(tiny_scenario(), horizon_slots=96.5), r"scenario 'tiny': horizon_slots = 96.5; expected an integer >= 1"),
    (lambda: replace(tiny_scenario(), horizon_slots="96"), r"horizon_slots = '96' is a string; expected an integer"),
    (lambda: replace(tiny_scenario(), name=5), r"scenario: name = 5; expected a non-empty string"),
    (lambda: replace(tiny_scenario(), step_s="half-hour"), r"step_s = 'half-hour' is a string; expected 900, 1800 or 3600"),
    (lambda: replace(tiny_scenario(), replan_slots=True), r"replan_slots = True is a boolean; expected an integer 1 .. 4"),
    (lambda: replace(tiny_scenario(), fine_block_slots=2.0), r"fine_block_slots = 2.0; expected 1, 2 or 4"),
    (lambda: WorkloadSpec(seed=1.5), r"workload: seed = 1.5; expected an integer >= 0"),
    (lambda: WorkloadSpec(seed="one"), r"workload: seed = 'one' is a string; expected an integer >= 0"),
    (lambda: WorkloadSpec(seed=-1), r"workload: seed = -1; expected an integer >= 0"),
    (lambda: DemandResponse(1, "up", "kyushu", 1.0, T0, T0 + pd.Timedelta(hours=1)),
     r"demand response: request_id = 1; expected a non-empty string"),
    (lambda: SiteOutage(3, T0, T0 + pd.Timedelta(hours=1)), r"outage: site = 3; expected a non-empty string"),
    (lambda: site(accelerator=200), r"site 'x-dc': accelerator = 200; expected a non-empty string"),
    (lambda: Fleet(7, (site(),)), r"fleet: name = 7; expected a non-empty string"),
], ids=["horizon-float", "horizon-str", "name-int", "step-str", "replan-bool", "fine-blocks-float", "seed-float",
        "seed-str", "seed-negative", "request-id-int", "outage-site-int", "accelerator-int",
        "fleet-name-int"])
def test_wrong_types_are_refused(build, pattern):
    with pytest.raises(InvalidInput, match=pattern):
        build()


# --- numpy's integers are integers (a count read from an array) --------------------------------

_INTEGER_FIELDS = {
    "replan_slots": lambda v: replace(tiny_scenario(), replan_slots=v),
    "coarse_blocks": lambda v: replace(tiny_scenario(), coarse_blocks=v),
    "fine_block_slots": lambda v: replace(tiny_scenario(), fine_block_slots=v),
    "inference_forecast_days": lambda v: replace(tiny_scenario(), inference_forecast_days=v),
    "horizon_slots": lambda v: replace(tiny_scenario(), horizon_slots=v),
    "seed": lambda v: WorkloadSpec(seed=v),
    "gpu_count": lambda v: site(gpu_count=v),
    "gpus": lambda v: replace(tiny_jobs()[0], gpus=v),
    "priority": lambda v: replace(tiny_jobs()[0], priority=v),
}


@pytest.mark.parametrize("name", list(_INTEGER_FIELDS))
def test_a_numpy_integer_is_accepted_and_kept_as_a_python_int(name):
    built = _INTEGER_FIELDS[name](np.int64(2))
    value = getattr(built, name)
    assert value == 2 and type(value) is int


@pytest.mark.parametrize("bad", [True, 2.5], ids=["bool", "float"])
@pytest.mark.parametrize("name", list(_INTEGER_FIELDS))
def test_a_bool_or_a_fraction_is_still_refused_as_an_integer(name, bad):
    with pytest.raises(InvalidInput, match=rf"{name} = {bad!r}"):
        _INTEGER_FIELDS[name](bad)


def test_step_s_given_as_an_integer_is_stored_as_seconds_float():
    s = replace(tiny_scenario(), step_s=3600)
    assert s.step_s == 3600.0 and isinstance(s.step_s, float)


def test_names_of_other_types_are_not_python_errors():
    from wattbit.domain import area

    with pytest.raises(InvalidInput, match=r"area = 5; expected an area name such as 'tokyo'"):
        area(5)
    with pytest.raises(UnknownName, match=r"site 5 not found \(known: kansai-dc, kyushu-dc, tokyo-dc\)"):
        tiny_fleet().site(5)


def test_unknown_name_without_a_close_match():
    from wattbit.errors import unknown_name

    assert str(unknown_name("scenario", "myscen", ["default", "full-year"])) == \
        "scenario 'myscen' not found (known: default, full-year)"
    assert str(unknown_name("site", "x", ["a"], field="home_site")) == "home_site: site 'x' not found (known: a)"


# --- instants in messages are shown in JST ---------------------------------------------------

def test_window_errors_show_jst():
    later = T0 + pd.Timedelta(hours=1)
    with pytest.raises(InvalidInput, match=r"end 2023-03-06 09:00 JST is not after start 2023-03-06 10:00 JST"):
        DemandResponse("dr", "up", "kyushu", 1.0, later, T0)
    with pytest.raises(InvalidInput, match=r"issued_at 2023-03-06 10:00 JST is after start 2023-03-06 09:00 JST"):
        DemandResponse("dr", "up", "kyushu", 1.0, T0, later, issued_at=later)
    with pytest.raises(InvalidInput, match=r"outage of 'x-dc': end 2023-03-06 09:00 JST is not after start "
                                           r"2023-03-06 10:00 JST"):
        SiteOutage("x-dc", later, T0)
    with pytest.raises(InvalidInput, match=r"scenario 'tiny': end 2023-03-18 00:00 JST is not after start "
                                           r"2023-03-18 00:00 JST"):
        replace(tiny_scenario(), end=tiny_scenario().start)
    job = tiny_jobs()[0]
    with pytest.raises(InvalidInput, match=r"job 'trn-1': deadline \d{4}-\d\d-\d\d \d\d:\d\d JST is not after "
                                           r"release \d{4}-\d\d-\d\d \d\d:\d\d JST"):
        replace(job, deadline=job.release)
