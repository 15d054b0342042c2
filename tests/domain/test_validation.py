"""Bad input is rejected when a domain object is built, with the field, the value and the fix."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from wattbit.domain import DemandResponse, Fleet, Site, WorkloadSpec
from wattbit.errors import InvalidInput, UnknownName
from wattbit.examples import tiny_fleet, tiny_jobs

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
    with pytest.raises(UnknownName, match=r"area 'kanto' not found; \(known: chubu, chugoku, .*tokyo\)"):
        DemandResponse("dr", "up", "kanto", 1.0, T0, T0 + pd.Timedelta(hours=1))


def test_area_that_is_not_a_string():
    with pytest.raises(InvalidInput, match=r"site 'x-dc': area = 13; expected an area name such as 'tokyo'"):
        site(area=13)


# --- negative GPU count ----------------------------------------------------------------------

def test_site_negative_gpu_count():
    with pytest.raises(InvalidInput, match=r"site 'x-dc': gpu_count = -8; expected a positive integer"):
        site(gpu_count=-8)


def test_job_negative_gpus():
    with pytest.raises(InvalidInput, match=r"job 'trn-1': gpus = -8; expected a positive integer"):
        replace(tiny_jobs()[0], gpus=-8)


def test_job_fractional_gpus():
    with pytest.raises(InvalidInput, match=r"gpus = 2.5; expected a positive integer"):
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
