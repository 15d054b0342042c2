"""Closed-form QoT model, and its optional GNPy calibration (runs only where gnpy is installed)."""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import numpy as np
import pytest

from wattbit.errors import InvalidInput, MissingExtra
from wattbit.network.qot import best_mode, calibrate_with_gnpy, gsnr_db, load_qot, span_lengths_km

HAS_GNPY = importlib.util.find_spec("gnpy") is not None


def test_gsnr_single_reference_span_by_hand():
    q = load_qot()
    c = q.coefficients_for(63.1)
    expected = -10 * math.log10(10 ** (-c.floor_db / 10) + 10 ** (-c.span_db / 10))
    assert gsnr_db(q, 63.1, [90.0]) == pytest.approx(expected)


def test_gsnr_falls_with_spans_and_span_loss():
    q = load_qot()
    assert gsnr_db(q, 63.1, [90.0] * 4) > gsnr_db(q, 63.1, [90.0] * 8)
    assert gsnr_db(q, 63.1, [60.0] * 4) > gsnr_db(q, 63.1, [90.0] * 4)
    # -2/3 dB of span GSNR per dB of span loss: 10 km more is 2.5 dB more loss
    c = q.coefficients_for(63.1)
    one = 1 / (1 / 10 ** (gsnr_db(q, 63.1, [100.0]) / 10) - 1 / 10 ** (c.floor_db / 10))
    assert 10 * math.log10(one) == pytest.approx(c.span_db - 0.6667 * 2.5, abs=1e-6)


def test_reach_against_gnpy_bisection():
    """Notes §1.4 max reach at 0.25 dB/km (GNPy bisection; GNPy auto-splits into ~90 km spans):
    100G 2,062 km, 200G QPSK 1,219 km, 400G 16QAM 164 km, 400G QPSK 126 GBd 1,219 km,
    800G 164 km. The closed form lands within about one span of each."""
    q = load_qot()

    def reach_km(name: str) -> float:
        mode = next(m for m in q.modes if m.name == name)
        km = 10.0
        while gsnr_db(q, mode.baud_gbd, span_lengths_km(km + 10, 90.0)) >= mode.required_osnr_db + q.margin_db:
            km += 10
        return km

    gnpy_km = {"100G-QPSK-32G": 2062, "200G-QPSK-63G": 1219, "400G-16QAM-63G": 164,
               "400G-QPSK-126G": 1219, "800G-16QAM-126G": 164}
    for name, km in gnpy_km.items():
        assert abs(reach_km(name) - km) <= 100, name


def test_best_mode_prefers_rate_then_falls_back():
    q = load_qot()
    short, _ = best_mode(q, [80.0], slot_ghz=75.0)
    long_, _ = best_mode(q, [90.0] * 15, slot_ghz=75.0)
    none, g = best_mode(q, [90.0] * 40, slot_ghz=75.0)
    assert short.rate_gbps == 400.0 and long_.rate_gbps < 400.0
    assert none is None and g < min(m.required_osnr_db for m in q.modes) + q.margin_db
    wide, _ = best_mode(q, [80.0], slot_ghz=150.0)
    assert wide.rate_gbps == 800.0


@pytest.mark.skipif(HAS_GNPY, reason="gnpy is installed; the missing-extra message cannot be shown")
def test_calibration_without_gnpy_names_the_extra():
    with pytest.raises(MissingExtra, match=r"pip install 'wattbit\[qot\]'"):
        calibrate_with_gnpy()


@pytest.mark.skipif(not HAS_GNPY, reason="needs the optional extra: pip install 'wattbit[qot]'")
def test_calibration_with_gnpy_reproduces_shipped_coefficients():
    shipped = load_qot()
    fitted = calibrate_with_gnpy(spans=(1, 4, 16, 32))
    for c in shipped.coefficients:
        f = fitted.coefficients_for(c.baud_gbd)
        assert f.floor_db == pytest.approx(c.floor_db, abs=0.5)
        assert f.span_db == pytest.approx(c.span_db, abs=0.5)
        assert "GNPy" in f.source


@pytest.mark.parametrize("bad", [True, 0.0, "20", float("inf")])
def test_a_qot_model_refuses_a_bool_or_a_span_that_is_not_a_finite_positive_number(bad):
    with pytest.raises(InvalidInput, match=rf"QotModel: span_km_max = {bad!r}.*; expected a finite number > 0"):
        dataclasses.replace(load_qot(), span_km_max=bad)


def test_a_qot_model_takes_a_numpy_span():
    assert dataclasses.replace(load_qot(), span_km_max=np.int64(80)).span_km_max == 80
