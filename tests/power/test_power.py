"""Power model: measured curve, linearity, throttling economics, and caps never exceeded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattbit.domain import Site
from wattbit.errors import InvalidInput, UnknownName
from wattbit.examples import tiny_fleet
from wattbit.power import (
    NODE_OVERHEAD_W_PER_GPU,
    accelerator_power,
    energy_per_work_pu,
    facility_power_mw,
    fleet_power_table,
    gpu_power_w,
    node_overhead_w_per_gpu,
    power_coefficients,
    site_facility_power_max_mw,
    site_it_power_mw,
    throttled_mw_per_gpu,
    work_rate_pu,
)
from wattbit.scenarios import load_fleet

SHARED = Path(os.environ.get("WATTBIT_SHARED", Path(__file__).resolve().parents[3] / "shared"))
needs_shared = pytest.mark.skipif(not (SHARED / "data" / "raw").is_dir(), reason="../shared/data/raw absent")

JAPAN9 = load_fleet("japan-9")
SITES = JAPAN9.sites + tiny_fleet().sites


@pytest.mark.shared
@needs_shared
def test_bundled_curve_is_the_measurement():
    raw = json.loads((SHARED / "data" / "accelerator-power" / "h200-measured.json").read_text())
    by_phase = {p["phase"]: p for p in raw["phases"]}
    assert gpu_power_w(0.0) == by_phase["idle, CUDA context open"]["avg_w"]
    for duty, key in ((1.0, "bf16 GEMM 8192^3, duty 100%"), (0.75, "bf16 GEMM, duty 75% (busy 75 ms of each 100 ms)"),
                      (0.5, "bf16 GEMM, duty 50%"), (0.25, "bf16 GEMM, duty 25%")):
        assert gpu_power_w(duty) == by_phase[key]["avg_w"]
        assert work_rate_pu(duty) == pytest.approx(by_phase[key]["tflops"] / 657.1)


def test_interpolation_between_points_and_monotone():
    assert gpu_power_w(0.625) == pytest.approx((518.7 + 647.8) / 2)
    duties = [i / 20 for i in range(21)]
    powers = [gpu_power_w(d) for d in duties]
    assert powers == sorted(powers)
    assert max(powers) <= accelerator_power().power_limit_w


def test_throttling_saves_less_power_than_it_costs_throughput():
    """The measured fact the planner must know: energy per unit of work rises when throttled."""
    site = JAPAN9.site("kyushu-dc")
    full = throttled_mw_per_gpu(site, 1.0)
    for duty in (0.25, 0.5, 0.75):
        assert energy_per_work_pu(duty) > 1.0
        # the share of work lost is larger than the share of chip power shed
        assert 1 - work_rate_pu(duty) > 1 - gpu_power_w(duty) / gpu_power_w(1.0)
        assert throttled_mw_per_gpu(site, duty) < full


def test_site_power_by_hand():
    site = tiny_fleet().site("kyushu-dc")  # 512 GPUs, PUE 1.25
    idle_w = 512 * (120.1 + NODE_OVERHEAD_W_PER_GPU / 2)
    full_w = 512 * (685.6 + NODE_OVERHEAD_W_PER_GPU)
    assert site_it_power_mw(site, 0) == pytest.approx(idle_w / 1e6)
    assert site_it_power_mw(site, 512) == pytest.approx(full_w / 1e6)
    assert facility_power_mw(site, 1.0) == 1.25
    base, slope = power_coefficients(site)
    assert base == pytest.approx(idle_w * 1.25 / 1e6)
    assert base + slope * 512 == pytest.approx(site_facility_power_max_mw(site))


@pytest.mark.parametrize("site", SITES, ids=lambda s: s.name)
def test_linear_in_busy_gpus(site):
    for duty in (0.3, 1.0):
        p0, p1 = site_it_power_mw(site, 0, duty), site_it_power_mw(site, site.gpu_count, duty)
        mid = site_it_power_mw(site, site.gpu_count / 2, duty)
        assert mid == pytest.approx((p0 + p1) / 2)
        assert (p1 - p0) / site.gpu_count * site.pue == pytest.approx(throttled_mw_per_gpu(site, duty))


@pytest.mark.parametrize("site", JAPAN9.sites, ids=lambda s: s.name)
def test_japan9_full_load_within_it_cap(site):
    assert site_it_power_mw(site, site.gpu_count, 1.0) <= site.it_power_max_mw


@settings(max_examples=300, deadline=None)
@given(i=st.integers(0, len(SITES) - 1), busy_pu=st.floats(0, 1), duty=st.floats(0, 1))
def test_fleet_power_never_exceeds_caps(i, busy_pu, duty):
    """Any number of busy GPUs (up to those installed), any duty cycle: IT power ≤ the site's cap,
    facility power ≤ its full-load maximum."""
    site = SITES[i]
    busy = busy_pu * site.gpu_count
    it = site_it_power_mw(site, busy, duty)
    assert 0 < it <= site.it_power_max_mw
    assert facility_power_mw(site, it) <= site_facility_power_max_mw(site) + 1e-9


def test_fleet_table_totals():
    t = fleet_power_table(JAPAN9)
    assert t.loc["total", "gpus"] == JAPAN9.gpu_count
    assert t.loc["total", "it_full_mw"] == pytest.approx(t.drop("total")["it_full_mw"].sum())
    assert (t.drop("total")["it_full_mw"] <= t.drop("total")["it_power_max_mw"]).all()


def test_busy_beyond_installed_is_rejected():
    site = tiny_fleet().site("kansai-dc")
    with pytest.raises(InvalidInput, match=r"busy_gpus = 600; expected 0..512"):
        site_it_power_mw(site, 600)
    with pytest.raises(InvalidInput, match="busy_gpus = -1"):
        site_it_power_mw(site, -1)


def test_unknown_accelerator_named_with_fix():
    with pytest.raises(UnknownName, match=r"accelerator 'h2000' not found; did you mean 'h200'"):
        accelerator_power("h2000")
    site = Site("x", "tokyo", 35.7, 139.8, 8, 0.1, accelerator="b200")
    with pytest.raises(UnknownName, match="accelerator 'b200' not found"):
        site_it_power_mw(site, 1)


@pytest.mark.parametrize("duty", [1.5, -0.1, float("nan"), float("inf"), "0.5", None])
@pytest.mark.parametrize("fn", [gpu_power_w, work_rate_pu, node_overhead_w_per_gpu, energy_per_work_pu])
def test_duty_outside_zero_to_one_is_refused_not_clamped(fn, duty):
    """1.5 used to give the full-duty 685.6 W and NaN passed through: InvalidInput naming the value."""
    with pytest.raises(InvalidInput) as exc:
        fn(duty)
    assert f"duty_pu = {duty!r}; expected a duty cycle in [0, 1]" in str(exc.value)


def test_duty_range_ends_are_accepted():
    assert gpu_power_w(0.0) == accelerator_power().idle_w and gpu_power_w(1) == accelerator_power().full_w
    assert work_rate_pu(0.0) == 0.0 and work_rate_pu(1.0) == 1.0
    assert node_overhead_w_per_gpu(0.0) == node_overhead_w_per_gpu(busy=False)
    assert energy_per_work_pu(1.0) == pytest.approx(1.0)


def test_energy_per_work_at_zero_duty_is_refused():
    """A GPU at duty 0 does no work: InvalidInput, not ZeroDivisionError."""
    with pytest.raises(InvalidInput, match=r"energy_per_work_pu: duty_pu = 0.0; a GPU at that duty does no work"):
        energy_per_work_pu(0.0)
