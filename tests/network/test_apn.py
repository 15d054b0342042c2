"""The APN on the japan-9 fleet: topology, latency, QoT, move times, against hand calculations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from wattbit.domain import Fleet, Site
from wattbit.errors import InvalidInput, UnknownName
from wattbit.network import ApnParams, build_apn, transport_power_w
from wattbit.network.qot import gsnr_db, load_qot, span_lengths_km
from wattbit.network.railway import great_circle_km, load_railway
from wattbit.scenarios import load_fleet
from wattbit.units import FIBER_DELAY_S_PER_KM


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet("japan-9")


@pytest.fixture(scope="module")
def apn(fleet):
    return build_apn(fleet)


def test_every_site_is_a_node_and_every_pair_connected(apn):
    assert set(apn.sites) <= set(apn.nodes)
    for a, b in itertools.combinations(apn.sites, 2):
        p = apn.path(a, b)
        assert p.nodes[0] == a and p.nodes[-1] == b
        assert len(p.link_ids) == len(p.nodes) - 1


def test_hokkaido_and_shikoku_links_are_in(apn):
    lines = " ".join(link.line for link in apn.links)
    assert "Hokkaido Shinkansen" in lines  # Seikan tunnel
    assert "Honshi-Bisan Line (Seto-Ohashi)" in lines  # Seto-Ohashi bridge
    assert "hokkaido-dc" in apn.path("hokkaido-dc", "tokyo-dc").nodes


def test_latency_targets(apn):
    tokyo_fukuoka_ms = apn.path("tokyo-dc", "kyushu-dc").latency_s * 1e3
    tokyo_osaka_ms = apn.path("tokyo-dc", "kansai-dc").latency_s * 1e3
    assert 5.0 <= tokyo_fukuoka_ms <= 7.0
    assert 2.5 <= tokyo_osaka_ms <= 3.5


def test_latency_is_hand_calculation(apn):
    """One-way = (track km × slack + access km) × 4.9 µs/km + two transceiver ends."""
    rw = load_railway()
    _, track_km, _ = rw.route("Tokyo", "Shin-Osaka")
    tokyo, osaka = apn.fleet.site("tokyo-dc"), apn.fleet.site("kansai-dc")
    access_km = 1.2 * (
        great_circle_km(tokyo.lat, tokyo.lon, rw.station("Tokyo").lat, rw.station("Tokyo").lon)
        + great_circle_km(osaka.lat, osaka.lon, rw.station("Shin-Osaka").lat, rw.station("Shin-Osaka").lon)
    )
    fiber_km = track_km * 1.03 + access_km
    expected_s = fiber_km * 4.9e-6 + 2 * 10e-6
    p = apn.path("tokyo-dc", "kansai-dc")
    assert p.fiber_km == pytest.approx(fiber_km, rel=1e-9)
    assert p.latency_s == pytest.approx(expected_s, rel=1e-9)
    assert track_km == pytest.approx(515.4, rel=0.005)  # published actual km, Tōkaidō Shinkansen


def test_path_is_symmetric(apn):
    for a, b in itertools.combinations(apn.sites, 2):
        ab, ba = apn.path(a, b), apn.path(b, a)
        assert ab.nodes == ba.nodes[::-1]
        assert ab.latency_s == ba.latency_s and ab.rate_gbps == ba.rate_gbps and ab.mode == ba.mode


def test_path_is_shortest_by_fiber_km(apn):
    """Triangle inequality over every site triple: no detour is shorter."""
    for a, b, c in itertools.permutations(apn.sites, 3):
        assert apn.path(a, c).fiber_km <= apn.path(a, b).fiber_km + apn.path(b, c).fiber_km + 1e-6


def test_latency_matrix(apn):
    m = apn.latency_matrix_s()
    n = len(apn.sites)
    assert m.shape == (n, n)
    assert np.allclose(m, m.T) and np.all(np.diag(m) == 0)
    i, j = apn.sites.index("tokyo-dc"), apn.sites.index("kyushu-dc")
    assert m[i, j] == apn.path("tokyo-dc", "kyushu-dc").latency_s


def test_gsnr_matches_closed_form_by_hand(apn):
    """GSNR of a path = 1/(1/floor + Σ 1/span(loss)) with the shipped coefficients, recomputed here."""
    q = load_qot()
    p = apn.path("tokyo-dc", "chubu-dc")
    spans = [s for lid in p.link_ids for s in span_lengths_km(apn.link(lid).length_km, 90.0)]
    coeff = {c.baud_gbd: c for c in q.coefficients}[63.1]
    inv = 10 ** (-coeff.floor_db / 10)
    for km in spans:
        loss = 0.25 * km + 1.0
        inv += 10 ** (-(coeff.span_db - 0.6667 * (loss - 23.5)) / 10)
    assert p.gsnr_db == pytest.approx(10 * math.log10(1 / inv), abs=1e-9)
    assert p.gsnr_db == pytest.approx(gsnr_db(q, 63.1, spans))
    # 200G QPSK needs 17 + 2 dB; 400G 16QAM needs 24 + 2 dB
    assert p.mode == ("400G-16QAM-63G" if p.gsnr_db >= 26.0 else "200G-QPSK-63G")


def test_short_paths_get_higher_rates_than_long_ones(apn):
    assert apn.path("chubu-dc", "kansai-dc").rate_gbps >= apn.path("tokyo-dc", "kyushu-dc").rate_gbps
    assert apn.path("tokyo-dc", "kyushu-dc").rate_gbps >= apn.path("hokkaido-dc", "kyushu-dc").rate_gbps


def test_regeneration_beyond_reach():
    """Kagoshima–Sapporo (~2,500 km): GNPy finds no feasible mode (notes §1.4), so the path is
    regenerated at an intermediate ROADM and is no longer all-photonic."""
    fleet = Fleet("long", (
        Site("south", "kyushu", 31.5838, 130.5413, 1024, 1.0),   # Kagoshima-Chuo
        Site("north", "hokkaido", 43.0687, 141.3508, 1024, 1.0),  # Sapporo
        Site("middle", "tokyo", 35.6812, 139.7671, 1024, 1.0),
    ))
    apn = build_apn(fleet)
    p = apn.path("south", "north")
    assert p.fiber_km > 2400
    assert not p.all_optical
    on_path = set(p.nodes[1:-1]) | {sid for lid in p.link_ids for sid, _ in apn.link(lid).via}
    assert p.regen_sites and set(p.regen_sites) <= on_path
    mode = next(m for m in apn.modes if m.name == p.mode)
    assert p.gsnr_db >= mode.required_osnr_db + 2.0  # every optical segment closes
    fiber = p.fiber_km * FIBER_DELAY_S_PER_KM + 2 * 10e-6
    assert p.latency_s == pytest.approx(fiber + len(p.regen_sites) * 20e-6)  # 20 µs per regenerator
    assert transport_power_w(p) == pytest.approx(2 * (1 + len(p.regen_sites)) * p.module_power_w + p.line_power_share_w)
    short = apn.path("middle", "north")
    assert short.all_optical and short.regen_sites == ()


def test_regeneration_picks_fewest_regenerators():
    """Only 126 GBd modes: Sapporo–Fukuoka needs regeneration; one regenerator suffices at 400G."""
    from dataclasses import replace

    q = load_qot()
    wide_only = replace(q, modes=tuple(m for m in q.modes if m.baud_gbd > 100))
    apn = build_apn(load_fleet("japan-9"), wavelengths_per_pair=32, qot=wide_only)
    p = apn.path("hokkaido-dc", "kyushu-dc")
    assert not p.all_optical and len(p.regen_sites) == 1
    assert p.regen_sites[0] in p.nodes  # a ROADM is preferred when it costs no extra regenerator
    # each half closes for the chosen mode; the whole does not
    i = p.nodes.index(p.regen_sites[0])
    halves = [p.link_ids[:i], p.link_ids[i:]]
    mode = next(m for m in wide_only.modes if m.name == p.mode)
    for ids in halves:
        spans = [s for lid in ids for s in span_lengths_km(apn.link(lid).length_km, 90.0)]
        assert gsnr_db(wide_only, mode.baud_gbd, spans) >= mode.required_osnr_db + 2.0
    whole = [s for lid in p.link_ids for s in span_lengths_km(apn.link(lid).length_km, 90.0)]
    assert all(gsnr_db(wide_only, m.baud_gbd, whole) < m.required_osnr_db + 2.0 for m in wide_only.modes)


def test_move_time_hand_calculation(apn):
    """1 TB Tokyo→Fukuoka: write 1000×8/800 + 1000×8/(0.9×R) + 1.5 RTT + restore 1000×8/800 + 60 s."""
    p = apn.path("tokyo-dc", "kyushu-dc")
    expected = 10.0 + 8000.0 / (0.9 * p.rate_gbps) + 1.5 * 2 * p.latency_s + 10.0 + 60.0
    assert apn.move_time_s(1000.0, "tokyo-dc", "kyushu-dc") == pytest.approx(expected, rel=1e-12)
    b = apn.move_breakdown(1000.0, "tokyo-dc", "kyushu-dc", wavelengths=2)
    assert b.rate_gbps == pytest.approx(0.9 * 2 * p.rate_gbps)
    assert b.bdp_gb == pytest.approx(2 * p.rate_gbps * 2 * p.latency_s / 8)
    assert not b.window_limited


def test_concurrent_moves_share_capacity(apn):
    one = apn.move_breakdown(500.0, "tokyo-dc", "kansai-dc")
    two = apn.move_breakdown(500.0, "tokyo-dc", "kansai-dc", concurrent_moves=2)
    assert two.rate_gbps == pytest.approx(one.rate_gbps / 2)
    assert two.transfer_s > 1.9 * one.transfer_s


def test_window_bounds_rate_over_long_rtt(fleet):
    """With one flow and a 64 MB window, Tokyo–Fukuoka is window-bound: rate = window / RTT."""
    apn = build_apn(fleet, params=ApnParams(flows=1, flow_window_gb=0.064))
    b = apn.move_breakdown(100.0, "tokyo-dc", "kyushu-dc")
    rtt = apn.path("tokyo-dc", "kyushu-dc").rtt_s
    assert b.window_limited
    assert b.rate_gbps == pytest.approx(0.064 * 8 / rtt)


def test_move_to_same_site_is_free(apn):
    assert apn.move_time_s(1000.0, "tokyo-dc", "tokyo-dc") == 0.0


def test_a_pairs_move_cost_gives_the_move_time_to_the_last_bit(apn):
    """A planner's move times come from each site pair's constants (APN.move_cost): the same
    float as move_time_s for any size, also window-bound and with shared capacity."""
    rng = np.random.default_rng(7)
    sizes = [0.0, 1e-3, *rng.uniform(0.0, 5000.0, 20).tolist()]
    pairs = [("tokyo-dc", "kyushu-dc"), ("kansai-dc", "tokyo-dc"), ("kyushu-dc", "kyushu-dc")]
    for (src, dst), (w, k) in itertools.product(pairs, [(1, 1), (2, 1), (1, 3)]):
        cost = apn.move_cost(src, dst, wavelengths=w, concurrent_moves=k)
        for size in sizes:
            assert cost.time_s(size) == apn.move_time_s(size, src, dst, w, k)  # (its parts summed)
    assert apn.move_cost("tokyo-dc", "kansai-dc").time_s(100) == apn.move_time_s(100.0, "tokyo-dc", "kansai-dc")
    for bad in (float("nan"), -1.0, math.inf, "100", True):
        for ask in (apn.move_cost("tokyo-dc", "kansai-dc").time_s, apn.move_cost("tokyo-dc", "kansai-dc").breakdown):
            with pytest.raises(InvalidInput, match=f"size_gb = {bad!r}"):
                ask(bad)
    # the arguments are checked even where nothing would move
    with pytest.raises(InvalidInput, match="wavelengths = 65"):
        apn.move_time_s(10.0, "tokyo-dc", "tokyo-dc", wavelengths=65)


def test_rtt_from_user_area(apn):
    local = apn.rtt_s("kyushu", "kyushu-dc")
    far = apn.rtt_s("tokyo", "kyushu-dc")
    assert local < 1e-3
    assert far == pytest.approx(2 * apn.path("tokyo-dc", "kyushu-dc").latency_s, rel=0.02)
    assert apn.rtt_s("hokkaido", "kyushu-dc") > far


def test_transport_power(apn):
    p = apn.path("tokyo-dc", "kyushu-dc")
    w = transport_power_w(p)
    assert w == pytest.approx(2 * p.module_power_w + p.line_power_share_w)
    assert transport_power_w(p, wavelengths=4) == pytest.approx(4 * w)
    # energy per bit of the transceivers is 0.04–0.2 W per Gbit/s (F16)
    assert 0.04 <= 2 * p.module_power_w / p.rate_gbps <= 0.5
    assert apn.line_system_power_w() > 0


# --- bad input -----------------------------------------------------------------------------------


def test_unknown_site_names_field_value_and_fix(apn):
    with pytest.raises(UnknownName, match=r"src_site: site 'tokio-dc' not found; did you mean 'tokyo-dc'\?"):
        apn.path("tokio-dc", "kyushu-dc")
    with pytest.raises(UnknownName, match=r"dst_site: site 'nowhere'"):
        apn.move_time_s(10.0, "tokyo-dc", "nowhere")


def test_site_off_network_is_refused_with_distance_and_limit():
    naha = Site("okinawa-dc", "okinawa", 26.2124, 127.6809, 1024, 1.0)
    tokyo = Site("tokyo-dc", "tokyo", 35.6812, 139.7671, 1024, 1.0)
    with pytest.raises(InvalidInput) as err:
        build_apn(Fleet("test", (tokyo, naha)))
    msg = str(err.value)
    assert "site 'okinawa-dc'" in msg and "lat/lon" in msg
    assert "km from the nearest fiber node" in msg and "the limit is 100 km" in msg
    assert "access_limit_km" in msg  # the fix


def test_user_area_off_network(apn):
    with pytest.raises(InvalidInput, match=r"user_area: area 'okinawa' .* the limit is 100 km"):
        apn.rtt_s("okinawa", "kyushu-dc")
    with pytest.raises(UnknownName, match=r"user_area: area 'kyushuu' not found; did you mean 'kyushu'"):
        apn.rtt_s("kyushuu", "kyushu-dc")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"size_gb": -1.0}, "size_gb"), ({"wavelengths": 0}, "wavelengths"), ({"concurrent_moves": 0}, "concurrent_moves"),
     ({"wavelengths": 65}, "wavelengths = 65")],
)
def test_bad_move_input(apn, kwargs, field):
    args = {"size_gb": 10.0, "src": "tokyo-dc", "dst": "kansai-dc"} | kwargs
    with pytest.raises(InvalidInput, match=field):
        apn.move_time_s(**args)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"fiber_pairs": 0}, "fiber_pairs"), ({"slack_pu": 0.9}, "slack_pu"), ({"wavelengths_per_pair": 200}, "wavelengths_per_pair")],
)
def test_bad_build_input(fleet, kwargs, field):
    with pytest.raises(InvalidInput, match=field):
        build_apn(fleet, **kwargs)


def test_concurrent_moves_on_different_paths_share_common_links():
    """Two fiber pairs of 2 wavelengths: moves Tokyo→Osaka and Tokyo→Nagoya share Tokyo~Nagoya."""
    apn = build_apn(load_fleet("japan-9"), wavelengths_per_pair=4)
    alone = apn.concurrent_move_times_s([(1000.0, "tokyo-dc", "kansai-dc")], wavelengths=4)
    assert alone[0] == pytest.approx(apn.move_time_s(1000.0, "tokyo-dc", "kansai-dc", wavelengths=4))
    both = apn.concurrent_move_times_s(
        [(1000.0, "tokyo-dc", "kansai-dc"), (1000.0, "tokyo-dc", "kansai-dc")], wavelengths=4
    )
    same = apn.move_time_s(1000.0, "tokyo-dc", "kansai-dc", wavelengths=4, concurrent_moves=2)
    assert both == pytest.approx([same, same])
    # disjoint paths do not slow each other
    apart = apn.concurrent_move_times_s(
        [(1000.0, "tokyo-dc", "tohoku-dc"), (1000.0, "kansai-dc", "kyushu-dc")], wavelengths=4
    )
    assert apart[0] == pytest.approx(apn.move_time_s(1000.0, "tokyo-dc", "tohoku-dc", wavelengths=4))
    assert apart[1] == pytest.approx(apn.move_time_s(1000.0, "kansai-dc", "kyushu-dc", wavelengths=4))
    # overlapping only in part, the moves share Tokyo~Nagoya for a while: between alone and half rate
    mixed = apn.concurrent_move_times_s([(1500.0, "tokyo-dc", "chubu-dc"), (1000.0, "tokyo-dc", "kansai-dc")], wavelengths=4)
    half = apn.move_time_s(1000.0, "tokyo-dc", "kansai-dc", wavelengths=4, concurrent_moves=2)
    assert alone[0] < mixed[1] < half


def test_link_spans_follow_the_networks_qot_model(fleet, apn):
    """A link cuts its fiber into spans of the model its APN was built with, not the shipped one."""
    from dataclasses import replace

    from wattbit.network.report import links_table

    short = replace(load_qot(), span_km_max=40.0)
    custom = build_apn(fleet, qot=short)
    for link in custom.links:
        assert link.spans == len(span_lengths_km(link.length_km, 40.0))
    longest = max(custom.links, key=lambda k: k.length_km)
    assert longest.spans > apn.link(longest.link_id).spans  # 40 km spans are more than 90 km ones
    assert links_table(custom).spans.tolist() == [k.spans for k in custom.links]
    # the links agree with what the network's paths and line system count
    p = custom.path("tokyo-dc", "chubu-dc")
    assert p.spans == sum(custom.link(lid).spans for lid in p.link_ids)
    p = custom.params
    roadms = sum(p.roadm_base_w + p.roadm_per_degree_w * custom.roadm_degree(n)
                 for n in custom.nodes if n not in custom.sites)
    ila = sum(k.spans - 1 for k in custom.links)
    assert custom.line_system_power_w() == pytest.approx(ila * p.ila_power_w + roadms)
    # the shipped model is unchanged
    for link in apn.links:
        assert link.spans == len(span_lengths_km(link.length_km, load_qot().span_km_max))


def test_a_move_takes_numpy_numbers_and_refuses_a_bool(apn):
    assert apn.move_time_s(np.int64(1000), "tokyo-dc", "kyushu-dc") == apn.move_time_s(1000.0, "tokyo-dc", "kyushu-dc")
    with pytest.raises(InvalidInput, match="size_gb = True is a boolean; expected a finite number >= 0"):
        apn.move_time_s(True, "tokyo-dc", "kyushu-dc")
