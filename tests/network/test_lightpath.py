"""Lightpath reservations: first fit with wavelength continuity, never above a link's wavelengths."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattbit.errors import Infeasible, InvalidInput, UnknownName
from wattbit.network import LightpathBook, build_apn
from wattbit.scenarios import load_fleet

T0 = pd.Timestamp("2025-05-04 00:00", tz="UTC")
SLOT = pd.Timedelta("30min")


@pytest.fixture(scope="module")
def small_apn():
    """japan-9 with 4 wavelengths per fiber pair (300 GHz slots) so that links fill up quickly."""
    return build_apn(load_fleet("japan-9"), wavelengths_per_pair=4)


def test_first_fit_and_continuity(small_apn):
    book = LightpathBook(small_apn)
    a = book.reserve("tokyo-dc", "kansai-dc", T0, T0 + SLOT, wavelengths=2)
    assert a.channels == (0, 1)
    # shares Tokyo~Nagoya with a: must skip channels 0, 1
    b = book.reserve("tokyo-dc", "chubu-dc", T0, T0 + SLOT)
    assert b.channels == (2,)
    # does not overlap in time with a: first fit starts at 0 again
    c = book.reserve("tokyo-dc", "kansai-dc", T0 + SLOT, T0 + 2 * SLOT)
    assert c.channels == (0,)
    # kansai->kyushu shares only kansai's access link with a (0, 1 busy): gets 2
    d = book.reserve("kansai-dc", "kyushu-dc", T0, T0 + SLOT)
    assert d.channels == (2,)
    # Tokyo->Fukuoka crosses Tokyo~Nagoya (0, 1, 2 busy) and the San'yo links (2 busy): only 3
    e = book.reserve("tokyo-dc", "kyushu-dc", T0, T0 + SLOT)
    assert e.channels == (3,)
    assert e.rate_gbps == small_apn.path("tokyo-dc", "kyushu-dc").rate_gbps


def test_refusal_names_blocking_link_and_window(small_apn):
    book = LightpathBook(small_apn)
    book.reserve("tokyo-dc", "chubu-dc", T0, T0 + 2 * SLOT, wavelengths=4, owner="job-1")
    with pytest.raises(Infeasible) as err:
        book.reserve("tokyo-dc", "kansai-dc", T0 + SLOT, T0 + 3 * SLOT)
    msg = str(err.value)
    assert "tokyo-dc~Tokyo" in msg or "Nagoya~Tokyo" in msg
    assert T0.isoformat().split("+")[0][:10] in msg and "0 of 4 free" in msg
    # after release it fits
    book.release(book.reservations[0].reservation_id)
    assert book.reserve("tokyo-dc", "kansai-dc", T0 + SLOT, T0 + 3 * SLOT).channels == (0,)


def test_utilisation(small_apn):
    book = LightpathBook(small_apn)
    book.reserve("tokyo-dc", "kansai-dc", T0, T0 + SLOT, wavelengths=2)
    book.reserve("tokyo-dc", "chubu-dc", T0 + SLOT, T0 + 2 * SLOT, wavelengths=3)
    u = book.utilisation(T0, T0 + SLOT)
    assert u["Nagoya~Tokyo"] == 0.5
    assert book.utilisation(T0, T0 + 2 * SLOT)["Nagoya~Tokyo"] == 0.75  # peak, not sum
    assert u["Hakata~Hiroshima"] == 0.0
    assert book.peak_utilisation() == 0.75
    assert book.used("Nagoya~Tokyo", T0 + SLOT) == 3


def test_bad_input(small_apn):
    book = LightpathBook(small_apn)
    with pytest.raises(InvalidInput, match="end = .* is not after start"):
        book.reserve("tokyo-dc", "kansai-dc", T0, T0)
    with pytest.raises(InvalidInput, match="no time zone"):
        book.reserve("tokyo-dc", "kansai-dc", pd.Timestamp("2025-05-04"), T0 + SLOT)
    with pytest.raises(InvalidInput, match="wavelengths = 5; a link carries at most 4"):
        book.reserve("tokyo-dc", "kansai-dc", T0, T0 + SLOT, wavelengths=5)
    with pytest.raises(UnknownName, match="src_site: site 'osaka-dc' not found"):
        book.reserve("osaka-dc", "kansai-dc", T0, T0 + SLOT)
    with pytest.raises(UnknownName, match="reservation_id: reservation 'lp-99' not found"):
        book.release("lp-99")


_APN = build_apn(load_fleet("japan-9"), wavelengths_per_pair=4)
_SITES = _APN.sites
_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"),
            st.sampled_from(_SITES),
            st.sampled_from(_SITES),
            st.integers(0, 7),  # start slot
            st.integers(1, 4),  # duration in slots
            st.integers(1, 4),  # wavelengths
        ),
        st.tuples(st.just("release"), st.integers(0, 50)),
    ),
    max_size=40,
)


@settings(max_examples=120, deadline=None)
@given(_ops)
def test_reservations_never_exceed_link_wavelengths(ops):
    book = LightpathBook(_APN)
    for op in ops:
        if op[0] == "release":
            held = book.reservations
            if held:
                book.release(held[op[1] % len(held)].reservation_id)
            continue
        _, src, dst, s, d, k = op
        if src == dst:
            continue
        start, end = T0 + s * SLOT, T0 + (s + d) * SLOT
        free_before = book.free_channels(src, dst, start, end)
        try:
            r = book.reserve(src, dst, start, end, wavelengths=k)
        except Infeasible:
            # refused only when continuity really leaves fewer than k channels
            assert len(free_before) < k
            continue
        assert r.channels == free_before[:k]  # first fit
    # invariant: at every slot, on every link, used <= wavelengths and no channel is held twice
    for slot in range(12):
        t0, t1 = T0 + slot * SLOT, T0 + (slot + 1) * SLOT
        for link in _APN.links:
            active = [r for r in book.reservations if link.link_id in r.link_ids and r.overlaps(t0, t1)]
            channels = list(itertools.chain.from_iterable(r.channels for r in active))
            assert len(channels) == len(set(channels))
            assert len(channels) <= link.wavelengths
            assert all(0 <= c < link.wavelengths for c in channels)
            assert book.utilisation(t0, t1)[link.link_id] <= 1.0


# --- peak utilisation, retire, integer wavelengths ------------------------------------------------

HOUR = pd.Timedelta("1h")


def test_peak_utilisation_counts_bookings_made_out_of_start_order(small_apn):
    """[1h, 2h) booked before [0, 3h): both are in use at 1h, on the same links."""
    book = LightpathBook(small_apn)
    book.reserve("tokyo-dc", "chubu-dc", T0 + HOUR, T0 + 2 * HOUR)
    book.reserve("tokyo-dc", "chubu-dc", T0, T0 + 3 * HOUR)
    assert book.used("Nagoya~Tokyo", T0 + HOUR) == 2
    assert max(book.utilisation(T0, T0 + 3 * HOUR).values()) == 0.5
    assert book.peak_utilisation() == 0.5


def test_peak_utilisation_counts_released_reservations_out(small_apn):
    book = LightpathBook(small_apn)
    big = book.reserve("tokyo-dc", "chubu-dc", T0, T0 + SLOT, wavelengths=3)
    book.reserve("tokyo-dc", "chubu-dc", T0 + SLOT, T0 + 2 * SLOT)
    assert book.peak_utilisation() == 0.75
    book.release(big.reservation_id)
    assert max(book.utilisation(T0, T0 + 2 * SLOT).values()) == 0.25
    assert book.peak_utilisation() == 0.25
    book.release(book.reservations[0].reservation_id)
    assert book.peak_utilisation() == 0.0
    # and it grows again from what is left
    book.reserve("tokyo-dc", "kansai-dc", T0, T0 + SLOT, wavelengths=2)
    assert book.peak_utilisation() == 0.5


def _old_rule_peak(book: LightpathBook, booked) -> float:
    """What peak_utilisation gave before it swept: at each booking, the channels in use at that
    booking's start, over the reservations booked so far, on each of its links."""
    peak = 0.0
    for i, r in enumerate(booked):
        for lid in r.link_ids:
            in_use = sum(q.wavelengths for q in booked[: i + 1] if lid in q.link_ids and q.start <= r.start < q.end)
            peak = max(peak, in_use / book.capacity(lid))
    return peak


_in_order = st.lists(
    st.tuples(
        st.sampled_from(_SITES),
        st.sampled_from(_SITES),
        st.integers(0, 3),  # slots after the previous booking's start
        st.integers(1, 4),  # duration in slots
        st.integers(1, 4),  # wavelengths
        st.booleans(),  # retire at the start first, as the controller does each step
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(_in_order)
def test_peak_utilisation_unchanged_for_bookings_in_start_order(ops):
    """The controller books in increasing start order (retiring as it goes): there the peak is
    what the booking-time rule gave, so the digital twin's figures do not change."""
    book = LightpathBook(_APN)
    booked, s = [], 0
    for src, dst, step, d, k, retire in ops:
        s += step
        start, end = T0 + s * SLOT, T0 + (s + d) * SLOT
        if retire:
            book.retire(start)
        if src == dst:
            continue
        try:
            booked.append(book.reserve(src, dst, start, end, wavelengths=k))
        except Infeasible:
            continue
    assert book.peak_utilisation() == _old_rule_peak(book, booked)
    if booked:
        assert book.peak_utilisation() == max(book.utilisation(T0, T0 + (s + 5) * SLOT).values())


def test_retire_refuses_windows_that_start_before_it(small_apn):
    book = LightpathBook(small_apn)
    book.reserve("tokyo-dc", "chubu-dc", T0, T0 + SLOT, wavelengths=4)
    book.retire(T0 + SLOT)
    # [T0, T0 + 2 SLOT) would hold a 5th channel of 4 at T0, against the retired reservation
    with pytest.raises(InvalidInput, match=r"start = 2025-05-04 00:00:00\+00:00 is before .*retire.* 00:30:00"):
        book.reserve("tokyo-dc", "chubu-dc", T0, T0 + 2 * SLOT)
    with pytest.raises(InvalidInput, match="retire"):
        book.free_channels("tokyo-dc", "chubu-dc", T0, T0 + 2 * SLOT)
    # an earlier retire does not move the point back
    book.retire(T0)
    with pytest.raises(InvalidInput, match="retire"):
        book.reserve("tokyo-dc", "chubu-dc", T0 + SLOT - pd.Timedelta("1ns"), T0 + 2 * SLOT)
    # from the retire point on, booking goes on
    assert book.reserve("tokyo-dc", "chubu-dc", T0 + SLOT, T0 + 2 * SLOT, wavelengths=4).channels == (0, 1, 2, 3)
    assert book.peak_utilisation() == 1.0


@pytest.mark.parametrize("n", [np.int64(2), np.int32(2), np.uint8(2)])
def test_reserve_accepts_numpy_integers(small_apn, n):
    book = LightpathBook(small_apn)
    r = book.reserve("tokyo-dc", "kansai-dc", T0, T0 + SLOT, wavelengths=n)
    assert r.channels == (0, 1) and r.wavelengths == 2
    assert type(r.rate_gbps) is float and r.rate_gbps == 2 * small_apn.path("tokyo-dc", "kansai-dc").rate_gbps
    assert book.used("Nagoya~Tokyo", T0) == 2 and book.peak_utilisation() == 0.5


@pytest.mark.parametrize("n", [True, np.bool_(True), 2.0, np.float64(2.0), "2", 0, np.int64(0)])
def test_reserve_refuses_non_integer_wavelengths(small_apn, n):
    with pytest.raises(InvalidInput, match="wavelengths = .*; expected an integer >= 1"):
        LightpathBook(small_apn).reserve("tokyo-dc", "kansai-dc", T0, T0 + SLOT, wavelengths=n)
