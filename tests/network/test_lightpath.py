"""Lightpath reservations: first fit with wavelength continuity, never above a link's wavelengths."""

from __future__ import annotations

import itertools

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
