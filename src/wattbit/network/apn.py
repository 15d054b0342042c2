"""The All-Photonics Network joining a fleet's sites: topology, paths, latency, move times.

Topology. Each site attaches to the nearest railway station by an access link (great-circle ×
``access_slack_pu``; refused beyond ``access_limit_km``). The APN keeps the railway track that
lies on a shortest route between two attachment stations; its nodes (ROADMs) are the attachment
stations and the junctions where three or more of those routes meet, and its links are the track
between them. Fiber length = track length × ``slack_pu``.

Per path (shortest by fiber km): one-way latency = 4.9 µs/km × fiber km + node constants;
the best transceiver mode from the closed-form GSNR model of :mod:`wattbit.network.qot`; where
no mode closes the path all-optically, OEO regenerators at the fewest intermediate ROADMs (the
path is then not all-photonic).

Move time = checkpoint write + size / (efficiency × path rate) + restore + lightpath setup, with
the transfer rate also bounded by the flows' windows over the round trip (bandwidth-delay product).
Every constant is in :class:`ApnParams` with its source.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from wattbit.domain import Fleet
from wattbit.domain import area as _area
from wattbit.domain._validate import integer, positive
from wattbit.errors import Infeasible, InvalidInput, unknown_name
from wattbit.network.qot import (
    QotModel,
    TransceiverMode,
    best_mode,
    gsnr_db,
    load_qot,
    span_lengths_km,
)
from wattbit.network.railway import Railway, load_railway
from wattbit.units import FIBER_DELAY_S_PER_KM

__all__ = [
    "APN",
    "DEFAULT_PARAMS",
    "DEFAULT_SLACK_PU",
    "DEFAULT_WAVELENGTHS_PER_PAIR",
    "ApnParams",
    "Link",
    "MoveBreakdown",
    "MoveCost",
    "Path",
    "build_apn",
    "goodput_gbps",
    "transport_power_w",
]

DEFAULT_SLACK_PU = 1.03
"""Fiber length / track length [pu]: cable slack, station detours and splice loops.
ASSUMPTION from ../shared/context/apn-optical-notes.md §3–4.1 (fiber ≈ actual km × 1.02–1.05,
default fiber_factor 1.03); to be replaced by the fiber owner's OTDR lengths."""

DEFAULT_WAVELENGTHS_PER_PAIR = 64
"""Wavelengths per fiber pair: 4.8 THz of C band on a 75 GHz grid = 64 (notes §4.1 and F15;
75 GHz is the 400ZR / 63 GBd slot, F12). 126 GBd modes need 150 GHz, i.e. 32 wavelengths."""


@dataclass(frozen=True, slots=True)
class ApnParams:
    """Constants of the APN model, each with its source (see docs/network.md).

    access_slack_pu : access-link length / great-circle distance [pu] — notes §3 default where
        no rail figure exists (great-circle × 1.2);
    access_limit_km : farthest a site or user city may be from a railway station [km] —
        ASSUMPTION: beyond ~100 km a metro access link is a project of its own, not a parameter;
    transceiver_latency_s : DSP + FEC delay of one coherent transceiver end [s] — ASSUMPTION
        10 µs, below the 30 µs mapyourtech gives for 40G FEC (latency falls with line rate;
        https://mapyourtech.com/fec-and-latency); the notes (§4.2) allow 0;
    regen_latency_s : one OEO regenerator (receive + transmit) [s] — 2 × transceiver;
    roadm_latency_s : express pass through a ROADM [s] — 0: a passive WSS path, metres of fiber;
    transfer_efficiency_pu : goodput / line rate [pu] — 0.9, notes §4.2 (framing, FEC-free
        payload, protocol overhead);
    storage_write_gbps, storage_read_gbps : checkpoint write at the source and restore at the
        destination [Gbit/s] — 800 (100 GB/s): DDN AI400X2-Turbo appliances saturating ~100 GB/s
        read and write per DGX-B200 (ddn.com blog "DDN's AI storage optimized for NVIDIA
        DGX-B200", 2024); checkpoint I/O is taken as one node's worth of storage bandwidth;
    lightpath_setup_s : establishing a lightpath (ROADM configuration, power equalisation,
        transceiver lock) [s] — ASSUMPTION 60 s: operators' ROADM provisioning is 'minutes'
        (Birand et al., "Real-time power control for dynamic optical networks", Columbia 2013);
    flows : parallel transport flows per move [-] and flow_window_gb : receive window of each
        [GB] — ESnet fasterdata host tuning (100G hosts: buffers up to 2 GB); 8 × 0.5 GB by default,
        so the window binds only beyond 4 GB in flight (see move_breakdown);
    ila_power_w : one in-line amplifier site per fiber pair [W] — 140 W + 30–60 W overhead,
        midpoint 185 W (F17: Van Heddeghem et al. 2012);
    roadm_base_w, roadm_per_degree_w : ROADM node [W] — 150 W + 85 W per degree (F17).
    """

    access_slack_pu: float = 1.2
    access_limit_km: float = 100.0
    transceiver_latency_s: float = 10e-6
    regen_latency_s: float = 20e-6
    roadm_latency_s: float = 0.0
    transfer_efficiency_pu: float = 0.9
    storage_write_gbps: float = 800.0
    storage_read_gbps: float = 800.0
    lightpath_setup_s: float = 60.0
    flows: int = 8
    flow_window_gb: float = 0.5
    ila_power_w: float = 185.0
    roadm_base_w: float = 150.0
    roadm_per_degree_w: float = 85.0

    def __post_init__(self) -> None:
        for name in ("access_slack_pu", "access_limit_km", "transfer_efficiency_pu", "storage_write_gbps",
                     "storage_read_gbps", "flow_window_gb"):
            positive("ApnParams", name, getattr(self, name))
        for name in ("transceiver_latency_s", "regen_latency_s", "roadm_latency_s", "lightpath_setup_s",
                     "ila_power_w", "roadm_base_w", "roadm_per_degree_w"):
            positive("ApnParams", name, getattr(self, name), allow_zero=True)
        if self.transfer_efficiency_pu > 1:
            raise InvalidInput(f"ApnParams: transfer_efficiency_pu = {self.transfer_efficiency_pu}; expected 0 < x <= 1")
        if self.access_slack_pu < 1:
            raise InvalidInput(f"ApnParams: access_slack_pu = {self.access_slack_pu}; expected >= 1 (a cable is never shorter than the great circle)")
        integer("ApnParams", "flows", self.flows, low=1)


DEFAULT_PARAMS = ApnParams()


@dataclass(frozen=True, slots=True)
class Link:
    """One APN link (a fiber route between two nodes).

    link_id : ``"a~b"``;  a, b : node ids (a site name or a station id);  length_km : fiber length
    [km];  wavelengths : wavelengths across its fiber pairs [-];  line : railway line(s) it follows
    (``"access"`` for a site's access link);  track_km : railway (or great-circle) length before
    slack [km];  estimated : True when part of it is a great-circle estimate, not geometry;
    via : stations the link passes, each with its fiber km from ``a`` (candidate regenerator huts);
    span_km_max : largest amplifier spacing [km] of the QoT model of the APN the link belongs to
    (:class:`APN` sets it to ``APN.qot.span_km_max``; None on a link outside an APN means the
    shipped model's).
    """

    link_id: str
    a: str
    b: str
    length_km: float
    wavelengths: int
    line: str
    track_km: float = 0.0
    estimated: bool = False
    via: tuple[tuple[str, float], ...] = ()
    span_km_max: float | None = None

    @property
    def spans(self) -> int:
        """Amplified spans (in-line amplifiers + 1) at its network's span length (as the paths
        and the line-system power count them)."""
        span_km = load_qot().span_km_max if self.span_km_max is None else self.span_km_max
        return len(span_lengths_km(self.length_km, span_km))


@dataclass(frozen=True, slots=True)
class Path:
    """The light path between two sites.

    src, dst : site names;  nodes : node ids from src to dst;  link_ids : links in order;
    fiber_km : fiber length [km];  latency_s : one-way latency incl. node constants [s];
    all_optical : no OEO regeneration on the way;  rate_gbps : line rate of one wavelength
    [Gbit/s];  mode : transceiver mode;  regen_sites : nodes holding a regenerator;
    gsnr_db : GSNR of the weakest optical segment [dB, 0.1 nm];  spans : amplified spans [-];
    module_power_w : one transceiver end [W];  line_power_share_w : this wavelength's share of the
    always-on line system on the path (amplifiers, ROADMs) [W].
    """

    src: str
    dst: str
    nodes: tuple[str, ...]
    link_ids: tuple[str, ...]
    fiber_km: float
    latency_s: float
    all_optical: bool
    rate_gbps: float
    mode: str
    regen_sites: tuple[str, ...]
    gsnr_db: float
    spans: int = 0
    module_power_w: float = 0.0
    line_power_share_w: float = 0.0

    @property
    def rtt_s(self) -> float:
        """Round-trip time [s]."""
        return 2.0 * self.latency_s

    def reversed(self) -> Path:
        return Path(
            self.dst, self.src, self.nodes[::-1], self.link_ids[::-1], self.fiber_km, self.latency_s,
            self.all_optical, self.rate_gbps, self.mode, self.regen_sites[::-1], self.gsnr_db, self.spans,
            self.module_power_w, self.line_power_share_w,
        )


@dataclass(frozen=True, slots=True)
class MoveBreakdown:
    """The parts of a job move between two sites.

    write_s : checkpoint write at the source [s];  transfer_s : transfer incl. handshake and the
    last byte's flight [s];  restore_s : read and restore at the destination [s];  setup_s :
    lightpath setup [s];  rate_gbps : goodput of this move [Gbit/s];  bdp_gb : bandwidth-delay
    product of the allocated capacity [GB];  window_limited : True when the flows' windows, not
    the line, bound the rate.
    """

    write_s: float
    transfer_s: float
    restore_s: float
    setup_s: float
    rate_gbps: float
    bdp_gb: float
    window_limited: bool

    @property
    def total_s(self) -> float:
        return self.write_s + self.transfer_s + self.restore_s + self.setup_s


def goodput_gbps(line_gbps: float, rtt_s: float, params: ApnParams = DEFAULT_PARAMS) -> tuple[float, bool]:
    """A move's goodput [Gbit/s] and whether the flows' windows bind it: min(efficiency × line
    rate, flows × window / RTT).

    line_gbps : capacity allocated to the move [Gbit/s];  rtt_s : round-trip time [s]

    >>> goodput_gbps(400.0, 0.0)
    (360.0, False)
    """
    line = params.transfer_efficiency_pu * line_gbps
    window = params.flows * params.flow_window_gb * 8.0 / rtt_s if rtt_s > 0 else math.inf
    return min(line, window), window < line


@dataclass(frozen=True, slots=True)
class MoveCost:
    """What a move between two sites costs in time, for any checkpoint size: one path's
    constants, found once (:meth:`APN.move_cost`), so that a planner asking for hundreds of move
    times a plan skips the path search and the checks of :meth:`APN.move_breakdown`.

    src, dst : site names;  write_gbps, read_gbps : checkpoint write and restore rates [Gbit/s];
    rate_gbps : the move's goodput [Gbit/s];  rtt_s : the path's round trip [s];  setup_s :
    lightpath setup [s];  line_gbps : capacity allocated to the move [Gbit/s];  window_limited :
    True when the flows' windows, not the line, bound the goodput
    """

    src: str
    dst: str
    write_gbps: float
    read_gbps: float
    rate_gbps: float
    rtt_s: float
    setup_s: float
    line_gbps: float
    window_limited: bool

    def _check_size(self, size_gb: float) -> None:
        if not (type(size_gb) is float and 0.0 <= size_gb < math.inf):  # (checked in full only then)
            positive(f"move {self.src!r} -> {self.dst!r}", "size_gb", size_gb, allow_zero=True)

    def breakdown(self, size_gb: float) -> MoveBreakdown:
        """The parts of moving ``size_gb`` [GB] (nothing moves between a site and itself): the
        transfer is size / goodput + RTT (connection handshake) + RTT/2 (the last byte in flight).
        A size that is not a finite number >= 0 is refused."""
        self._check_size(size_gb)
        if self.src == self.dst or size_gb == 0:
            return MoveBreakdown(0.0, 0.0, 0.0, 0.0, math.inf, 0.0, False)
        return MoveBreakdown(
            write_s=size_gb * 8.0 / self.write_gbps,
            transfer_s=size_gb * 8.0 / self.rate_gbps + 1.5 * self.rtt_s,
            restore_s=size_gb * 8.0 / self.read_gbps,
            setup_s=self.setup_s,
            rate_gbps=self.rate_gbps,
            bdp_gb=self.line_gbps * self.rtt_s / 8.0,
            window_limited=self.window_limited,
        )

    def time_s(self, size_gb: float) -> float:
        """``breakdown(size_gb).total_s``, summed in the same order without building the parts
        [s]; a size that is not a finite number >= 0 is refused.

        >>> cost = MoveCost("a", "b", 800.0, 800.0, 360.0, 0.0, 60.0, 400.0, False)
        >>> round(cost.time_s(1000.0), 3)  # write 10 s + transfer 22.222 s + restore 10 s + setup 60 s
        102.222
        """
        self._check_size(size_gb)
        if self.src == self.dst or size_gb == 0:
            return 0.0
        bits = size_gb * 8.0
        return bits / self.write_gbps + (bits / self.rate_gbps + 1.5 * self.rtt_s) + bits / self.read_gbps \
            + self.setup_s


@dataclass(frozen=True)
class APN:
    """The APN of a fleet. Build it with :func:`build_apn`.

    sites : site names;  links : APN links (each given ``qot.span_km_max``, so that its
    ``spans`` are the ones this network counts);  fiber_pairs : per link [-];  wavelengths_per_pair :
    [-];  slack_pu : fiber / track length [pu];  params : model constants;  qot : QoT model.
    """

    fleet: Fleet
    links: tuple[Link, ...]
    fiber_pairs: int
    wavelengths_per_pair: int
    slack_pu: float
    params: ApnParams
    qot: QotModel
    site_station: dict  # site -> (station id, access km)
    railway: Railway = field(repr=False)
    _adj: dict = field(init=False, repr=False, compare=False)
    _links: dict = field(init=False, repr=False, compare=False)
    _paths: dict = field(init=False, repr=False, compare=False)
    _rail_dist: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # a link's spans are cut by this network's QoT model (what its paths and power count)
        span_km = self.qot.span_km_max
        object.__setattr__(self, "links", tuple(
            link if link.span_km_max == span_km else replace(link, span_km_max=span_km) for link in self.links
        ))
        adj: dict[str, list[tuple[str, Link]]] = defaultdict(list)
        for link in self.links:
            adj[link.a].append((link.b, link))
            adj[link.b].append((link.a, link))
        object.__setattr__(self, "_adj", dict(adj))
        object.__setattr__(self, "_links", {link.link_id: link for link in self.links})
        object.__setattr__(self, "_paths", {})
        object.__setattr__(self, "_rail_dist", {})

    # --- topology -------------------------------------------------------------------------------
    @property
    def sites(self) -> tuple[str, ...]:
        return self.fleet.site_names

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(self._adj)

    @property
    def slot_ghz(self) -> float:
        """Spectrum slot of one wavelength [GHz] (band / wavelengths per pair)."""
        return self.qot.band_ghz / self.wavelengths_per_pair

    @property
    def modes(self) -> tuple[TransceiverMode, ...]:
        """Modes that fit the grid slot, best first."""
        return self.qot.modes_for_slot(self.slot_ghz)

    def link(self, link_id: str) -> Link:
        try:
            return self._links[link_id]
        except KeyError:
            raise unknown_name("link", link_id, self._links, field="link_id") from None

    def roadm_degree(self, node: str) -> int:
        return len(self._adj.get(node, ()))

    def _site(self, name: str, field_name: str) -> str:
        if name not in self.fleet.site_names:
            raise unknown_name("site", name, self.fleet.site_names, field=field_name)
        return name

    # --- paths ----------------------------------------------------------------------------------
    def path(self, src_site: str, dst_site: str) -> Path:
        """Shortest light path between two sites (by fiber km), with its QoT and latency."""
        known = self._paths.get((src_site, dst_site))
        if known is not None:  # (only valid names are ever cached)
            return known
        self._site(src_site, "src_site")
        self._site(dst_site, "dst_site")
        key = (src_site, dst_site)
        if key not in self._paths:
            rev = self._paths.get((dst_site, src_site))
            self._paths[key] = rev.reversed() if rev else self._compute_path(src_site, dst_site)
        return self._paths[key]

    def _route(self, src: str, dst: str) -> tuple[list[str], list[Link]]:
        # Dijkstra by fiber km; ties broken by node id so (a, b) and (b, a) agree.
        dist, prev = {src: 0.0}, {}
        heap = [(0.0, src)]
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist[u]:
                continue
            if u == dst:
                break
            for v, link in sorted(self._adj.get(u, ()), key=lambda e: e[1].link_id):
                nd = d + link.length_km
                if nd < dist.get(v, math.inf) - 1e-9:
                    dist[v], prev[v] = nd, (u, link)
                    heapq.heappush(heap, (nd, v))
        if dst not in dist:
            raise Infeasible(f"sites {src!r} and {dst!r} are not connected by the APN")
        nodes, links = [dst], []
        while nodes[-1] != src:
            u, link = prev[nodes[-1]]
            nodes.append(u)
            links.append(link)
        return nodes[::-1], links[::-1]

    def _compute_path(self, src: str, dst: str) -> Path:
        if src == dst:
            return Path(src, dst, (src,), (), 0.0, 0.0, True, math.inf, "local", (), math.inf)
        if src > dst:  # compute one canonical direction so both agree exactly
            return self._compute_path(dst, src).reversed()
        nodes, links = self._route(src, dst)
        spans_per_link = [span_lengths_km(link.length_km, self.qot.span_km_max) for link in links]
        fiber_km = sum(link.length_km for link in links)

        mode, g = best_mode(self.qot, [s for spans in spans_per_link for s in spans], self.slot_ghz)
        regens: list[int] = []
        if mode is None:
            mode, g, regens = self._regenerate(nodes, links)
        express = len(nodes) - 2 - len(set(regens) & set(nodes))
        p = self.params
        latency = (
            fiber_km * FIBER_DELAY_S_PER_KM
            + 2 * p.transceiver_latency_s
            + len(regens) * p.regen_latency_s
            + max(0, express) * p.roadm_latency_s
        )
        n_spans = sum(len(s) for s in spans_per_link)
        amplifiers = sum(len(s) - 1 for s in spans_per_link)
        roadm_w = sum(
            p.roadm_base_w + p.roadm_per_degree_w * self.roadm_degree(n) for n in nodes if n not in self.fleet.site_names
        )
        share = (amplifiers * p.ila_power_w + roadm_w) / self.wavelengths_per_pair
        return Path(
            src, dst, tuple(nodes), tuple(link.link_id for link in links), fiber_km, latency, not regens,
            mode.rate_gbps, mode.name, tuple(regens), g, n_spans, mode.module_power_w, share,
        )

    def _regenerate(self, nodes: list[str], links: list[Link]) -> tuple[TransceiverMode, float, list[str]]:
        """Fewest regenerators (then highest rate) so that every optical segment closes.

        Regenerators may sit at a ROADM or at a station along a link (an equipment hut; the
        link's amplifier chain is then split there). For each mode (best first), walk the path
        greedily: from the last regenerator go to the farthest point the mode still reaches;
        greedy places the fewest regenerators for that mode since reach only shrinks as a
        segment grows. A second walk prefers the farthest reachable ROADM and is kept when it
        needs no more regenerators.
        """
        points: list[tuple[str, float]] = [(nodes[0], 0.0)]
        bounds: list[tuple[float, float]] = []
        offset = 0.0
        for k, link in enumerate(links):
            via = link.via if link.a == nodes[k] else tuple((sid, link.length_km - x) for sid, x in reversed(link.via))
            points += [(sid, offset + x) for sid, x in via]
            bounds.append((offset, offset + link.length_km))
            offset += link.length_km
            points.append((nodes[k + 1], offset))

        def spans(x0: float, x1: float) -> list[float]:
            out: list[float] = []
            for lo, hi in bounds:
                lo, hi = max(lo, x0), min(hi, x1)
                if hi - lo > 1e-9:
                    out += span_lengths_km(hi - lo, self.qot.span_km_max)
            return out

        n = len(points) - 1
        roadm = {i for i, (name, _) in enumerate(points) if name in self._adj and 0 < i < n}

        def walk(mode: TransceiverMode, prefer_roadm: bool) -> tuple[float, list[str]] | None:
            need = mode.required_osnr_db + self.qot.margin_db
            regens: list[str] = []
            start, worst = 0, math.inf
            while start < n:
                reachable: list[tuple[int, float]] = []
                for j in range(start + 1, n + 1):
                    g = gsnr_db(self.qot, mode.baud_gbd, spans(points[start][1], points[j][1]))
                    if g < need:
                        break
                    reachable.append((j, g))
                if not reachable:
                    return None
                j, g = reachable[-1]
                if prefer_roadm and j < n:
                    j, g = next(((i, x) for i, x in reversed(reachable) if i in roadm), (j, g))
                worst = min(worst, g)
                if j < n:
                    regens.append(points[j][0])
                start = j
            return worst, regens

        best = None
        for mode in self.modes:  # best first
            fewest = walk(mode, prefer_roadm=False)
            if fewest is None:
                continue
            at_roadms = walk(mode, prefer_roadm=True)
            worst, regens = at_roadms if at_roadms and len(at_roadms[1]) == len(fewest[1]) else fewest
            if best is None or len(regens) < len(best[2]):
                best = (mode, worst, regens)
        if best is None:
            gap = max(b[1] - a[1] for a, b in itertools.pairwise(points))
            raise Infeasible(
                f"path {nodes[0]!r} -> {nodes[-1]!r}: no transceiver mode closes the {gap:.0f} km between two "
                "adjacent stations even with a regenerator at every station; check the QoT model's modes"
            )
        return best

    # --- latency --------------------------------------------------------------------------------
    def latency_matrix_s(self) -> np.ndarray:
        """One-way latency between every pair of sites [s], in fleet site order."""
        names = self.sites
        out = np.zeros((len(names), len(names)))
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if i != j:
                    out[i, j] = self.path(a, b).latency_s
        return out

    def _attach(self, lat: float, lon: float, what: str, field_name: str, value: object) -> tuple[str, float]:
        station, gc_km = self.railway.nearest(lat, lon)
        if gc_km > self.params.access_limit_km:
            raise InvalidInput(
                f"{field_name}: {what} {value!r} at ({lat:.4f}, {lon:.4f}) is {gc_km:.0f} km from the nearest "
                f"fiber node ({station.id}); the limit is {self.params.access_limit_km:.0f} km. Place it within "
                f"{self.params.access_limit_km:.0f} km of the railway fiber, or raise ApnParams.access_limit_km"
            )
        return station.id, gc_km * self.params.access_slack_pu

    def rtt_s(self, user_area: str, site: str) -> float:
        """Round-trip time from the users of a grid area (its main city) to a site [s].

        The city attaches to its nearest railway station (access = great-circle × access slack);
        the route follows the railway to the site's station, × fiber slack.
        """
        self._site(site, "site")
        try:
            a = _area(user_area)
        except InvalidInput as exc:
            raise type(exc)(f"user_area: {exc}") from None
        user_station, user_access_km = self._attach(a.lat, a.lon, "area", "user_area", a.name)
        site_station, site_access_km = self.site_station[site]
        if user_station not in self._rail_dist:
            self._rail_dist[user_station] = self.railway.distances_from(user_station)[0]
        dist = self._rail_dist[user_station]
        if site_station not in dist:
            raise Infeasible(f"user_area {a.name!r}: no railway route from {user_station} to site {site!r}")
        fiber_km = dist[site_station] * self.slack_pu + user_access_km + site_access_km
        one_way = fiber_km * FIBER_DELAY_S_PER_KM + 2 * self.params.transceiver_latency_s
        return 2.0 * one_way

    # --- moves ----------------------------------------------------------------------------------
    def move_breakdown(
        self, size_gb: float, src: str, dst: str, wavelengths: int = 1, concurrent_moves: int = 1
    ) -> MoveBreakdown:
        """The parts of moving ``size_gb`` of job state from ``src`` to ``dst``.

        ``wavelengths`` are allocated on the path and shared by ``concurrent_moves`` moves
        (moves that share a link share its capacity); each move gets wavelengths × rate /
        concurrent_moves, bounded by the flows' windows over the round trip.

        size_gb : checkpoint size [GB];  src, dst : site names;  wavelengths : allocated [-];
        concurrent_moves : moves sharing them [-]
        """
        return self.move_cost(src, dst, wavelengths, concurrent_moves).breakdown(size_gb)  # (each checks its own)

    def move_cost(self, src: str, dst: str, wavelengths: int = 1, concurrent_moves: int = 1) -> MoveCost:
        """The constants of a move from ``src`` to ``dst`` (:class:`MoveCost`: its ``time_s(size_gb)``
        is :meth:`move_time_s` for any size); the arguments as :meth:`move_breakdown`'s, each
        checked even where nothing would move (more wavelengths than a link carries are refused
        between a site and itself too)."""
        wavelengths = integer("move", "wavelengths", wavelengths, low=1)
        concurrent_moves = integer("move", "concurrent_moves", concurrent_moves, low=1)
        path = self.path(src, dst)
        p = self.params
        capacity = self.fiber_pairs * self.wavelengths_per_pair
        if wavelengths > capacity:
            raise InvalidInput(
                f"move {src!r} -> {dst!r}: wavelengths = {wavelengths}; a link carries at most {capacity} "
                f"({self.fiber_pairs} fiber pair(s) × {self.wavelengths_per_pair}); ask for fewer or build the "
                "APN with more fiber_pairs"
            )
        line = wavelengths * path.rate_gbps / concurrent_moves
        rate, window_limited = goodput_gbps(line, path.rtt_s, p)
        return MoveCost(src, dst, p.storage_write_gbps, p.storage_read_gbps, rate, path.rtt_s,
                        p.lightpath_setup_s, line, window_limited)

    def move_time_s(
        self, size_gb: float, src: str, dst: str, wavelengths: int = 1, concurrent_moves: int = 1
    ) -> float:
        """Checkpoint write + transfer + restore + lightpath setup [s] (see move_breakdown)."""
        return self.move_breakdown(size_gb, src, dst, wavelengths, concurrent_moves).total_s

    def concurrent_move_times_s(
        self, moves: Sequence[tuple[float, str, str]], wavelengths: int = 1
    ) -> list[float]:
        """Completion times of moves that run at once and share the links they cross [s].

        Each move (size_gb, src, dst) writes its checkpoint and sets up its lightpath, then
        transfers using up to ``wavelengths`` wavelengths of its path. Where moves cross the same
        link they share its wavelengths max-min fairly (progressive filling; fractional shares
        stand for time-sharing), re-shared whenever a move starts or finishes. Each move ends
        with 1.5 RTT of protocol and flight time and its restore. A single move takes exactly
        :meth:`move_time_s`.

        moves : (size [GB], source site, destination site) each;  wavelengths : most a move may use [-]
        """
        wavelengths = integer("concurrent moves", "wavelengths", wavelengths, low=1)
        p = self.params
        n = len(moves)
        paths, size_gbit, start_s = [], [], []
        for size_gb, src, dst in moves:
            positive("move", "size_gb", size_gb, allow_zero=True)
            paths.append(self.path(src, dst))
            size_gbit.append(size_gb * 8.0)
            start_s.append(size_gb * 8.0 / p.storage_write_gbps + p.lightpath_setup_s)
        done_s = [0.0] * n
        remaining = list(size_gbit)
        pending = {i for i in range(n) if paths[i].src != paths[i].dst and size_gbit[i] > 0}
        t = 0.0
        while pending:
            active = [i for i in pending if start_s[i] <= t + 1e-12]
            share = self._fair_wavelengths(active, paths, wavelengths)
            rate = {}
            for i in active:
                window = p.flows * p.flow_window_gb * 8.0 / paths[i].rtt_s
                rate[i] = min(p.transfer_efficiency_pu * share[i] * paths[i].rate_gbps, window)
            waits = [start_s[i] - t for i in pending if start_s[i] > t + 1e-12]
            finish = [remaining[i] / rate[i] for i in active if rate[i] > 0]
            step = min(waits + finish)
            for i in active:
                remaining[i] -= rate[i] * step
            t += step
            for i in list(active):
                if remaining[i] <= 1e-9 * max(1.0, size_gbit[i]):
                    pending.discard(i)
                    done_s[i] = t + 1.5 * paths[i].rtt_s + size_gbit[i] / p.storage_read_gbps
        return done_s

    def _fair_wavelengths(self, active: list[int], paths: list[Path], cap: int) -> dict[int, float]:
        """Max-min fair wavelengths per active move under each link's wavelength count."""
        share = {i: 0.0 for i in active}
        left = {lid: float(self.link(lid).wavelengths) for i in active for lid in paths[i].link_ids}
        free = set(active)
        while free:
            users = defaultdict(list)
            for i in free:
                for lid in paths[i].link_ids:
                    users[lid].append(i)
            inc = min([left[lid] / len(us) for lid, us in users.items()] + [cap - share[i] for i in free])
            for i in free:
                share[i] += inc
                for lid in paths[i].link_ids:
                    left[lid] -= inc
            saturated = {lid for lid in users if left[lid] <= 1e-9}
            free = {i for i in free if share[i] < cap - 1e-9 and not saturated & set(paths[i].link_ids)}
        return share

    # --- power ----------------------------------------------------------------------------------
    def line_system_power_w(self) -> float:
        """Always-on power of the line system: in-line amplifiers and ROADMs, all fiber pairs [W]."""
        p = self.params
        ila = sum(len(span_lengths_km(link.length_km, self.qot.span_km_max)) - 1 for link in self.links)
        roadms = sum(
            p.roadm_base_w + p.roadm_per_degree_w * self.roadm_degree(n) for n in self.nodes if n not in self.fleet.site_names
        )
        return self.fiber_pairs * (ila * p.ila_power_w + roadms)


def transport_power_w(path: Path, wavelengths: int = 1) -> float:
    """Optical transport power of carrying ``wavelengths`` on a path [W].

    Per wavelength: two transceiver ends per optical segment (2 × (1 + regenerators) modules,
    module powers F12–F14) plus its share of the always-on amplifiers and ROADMs on the path
    (``path.line_power_share_w``: ILA 185 W per fiber pair, ROADM 150 W + 85 W/degree, F17,
    divided by the wavelengths of a fiber pair).

    >>> p = Path("a", "b", ("a", "b"), ("a~b",), 100.0, 5e-4, True, 400.0, "m", (), 25.0, 2, 21.0, 10.0)
    >>> transport_power_w(p, wavelengths=2)
    104.0
    """
    wavelengths = integer("transport_power_w", "wavelengths", wavelengths, low=1)
    if path.src == path.dst:
        return 0.0
    modules = 2 * (1 + len(path.regen_sites))
    return wavelengths * (modules * path.module_power_w + path.line_power_share_w)


def build_apn(
    fleet: Fleet,
    *,
    fiber_pairs: int = 1,
    wavelengths_per_pair: int = DEFAULT_WAVELENGTHS_PER_PAIR,
    slack_pu: float = DEFAULT_SLACK_PU,
    params: ApnParams = DEFAULT_PARAMS,
    qot: QotModel | None = None,
) -> APN:
    """Build the APN joining a fleet's sites along the railway fiber.

    fleet : the sites;  fiber_pairs : fiber pairs per link [-];  wavelengths_per_pair : grid
    channels per fiber pair [-] (slot = 4.8 THz / this);  slack_pu : fiber / track length [pu];
    params : model constants;  qot : QoT model (default: the shipped one)

    >>> from wattbit.scenarios import load_fleet
    >>> apn = build_apn(load_fleet("japan-9"))
    >>> p = apn.path("tokyo-dc", "kansai-dc")
    >>> round(p.latency_s * 1e3, 2), p.all_optical
    (2.62, True)
    """
    fiber_pairs = integer("build_apn", "fiber_pairs", fiber_pairs, low=1)
    wavelengths_per_pair = integer("build_apn", "wavelengths_per_pair", wavelengths_per_pair, low=1)
    positive("build_apn", "slack_pu", slack_pu)
    if slack_pu < 1.0:
        raise InvalidInput(f"build_apn: slack_pu = {slack_pu}; expected >= 1 (fiber is never shorter than the track)")
    qot = qot or load_qot()
    if not qot.modes_for_slot(qot.band_ghz / wavelengths_per_pair):
        raise InvalidInput(
            f"build_apn: wavelengths_per_pair = {wavelengths_per_pair} gives a {qot.band_ghz / wavelengths_per_pair:.1f} GHz "
            f"slot, narrower than every transceiver mode; use at most {int(qot.band_ghz // min(m.slot_ghz for m in qot.modes))}"
        )
    railway = load_railway()
    site_station: dict[str, tuple[str, float]] = {}
    for site in fleet.sites:
        station, gc_km = railway.nearest(site.lat, site.lon)
        if gc_km > params.access_limit_km:
            raise InvalidInput(
                f"site {site.name!r}: lat/lon = ({site.lat}, {site.lon}) is {gc_km:.0f} km from the nearest fiber "
                f"node ({station.id}); the limit is {params.access_limit_km:.0f} km. Move the site within "
                f"{params.access_limit_km:.0f} km of the railway fiber, or raise ApnParams.access_limit_km"
            )
        site_station[site.name] = (station.id, gc_km * params.access_slack_pu)

    # Track used by a shortest route between two attachment stations.
    stations = sorted({s for s, _ in site_station.values()})
    used_segments: set[int] = set()
    for i, a in enumerate(stations):
        dist, prev = railway.distances_from(a)
        for b in stations[i + 1:]:
            if b not in dist:
                raise Infeasible(
                    f"fleet {fleet.name!r}: stations {a} and {b} are on railway networks with no track between them"
                )
            node = b
            while node != a:
                node, seg = prev[node]
                used_segments.add(seg)
    graph: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for i in sorted(used_segments):
        seg = railway.segments[i]
        graph[seg.a].append((seg.b, i))
        graph[seg.b].append((seg.a, i))
    keep = set(stations) | {n for n, edges in graph.items() if len({v for v, _ in edges}) >= 3}

    wavelengths = fiber_pairs * wavelengths_per_pair
    links: list[Link] = []
    seen: set[int] = set()
    for start in sorted(keep):
        for first, seg_i in sorted(graph.get(start, ())):
            if seg_i in seen:
                continue
            chain, node, seg_idx = [seg_i], first, seg_i
            via: list[tuple[str, float]] = []
            seen.add(seg_i)
            while node not in keep:
                via.append((node, sum(railway.segments[j].length_km for j in chain) * slack_pu))
                v, j = next((v, j) for v, j in graph[node] if j != seg_idx)
                chain.append(j)
                seen.add(j)
                node, seg_idx = v, j
            segs = [railway.segments[j] for j in chain]
            track_km = sum(s.length_km for s in segs)
            lines = " + ".join(dict.fromkeys(s.line for s in segs))
            links.append(Link(
                f"{start}~{node}", start, node, track_km * slack_pu, wavelengths, lines, track_km,
                any(s.estimated for s in segs), tuple(via),
            ))
    for site in fleet.sites:
        station, access_km = site_station[site.name]
        links.append(Link(
            f"{site.name}~{station}", site.name, station, access_km, wavelengths, "access",
            access_km / params.access_slack_pu, True,
        ))
    return APN(fleet, tuple(links), fiber_pairs, wavelengths_per_pair, slack_pu, params, qot, site_station, railway)
