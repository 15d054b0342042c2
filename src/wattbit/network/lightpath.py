"""Lightpath reservations on the APN: first-fit wavelength assignment with continuity.

A reservation holds ``wavelengths`` channels on every link of the shortest path between two
sites for a time window ``[start, end)``. Channels are numbered ``0 .. fiber_pairs ×
wavelengths_per_pair − 1`` on every link; wavelength continuity means the same channel numbers on
all links of the path (no conversion; regenerators are not used to change wavelength here, which
is conservative). First fit takes the lowest channel numbers free on every link for the whole
window. A reservation that cannot be met raises :class:`wattbit.errors.Infeasible` naming the
blocking link, the window and how many channels were free.

``retire(t)`` stops checking reservations that ended by ``t`` for conflicts; from then on the book
answers only for windows that start at or after ``t`` (an earlier start raises InvalidInput).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wattbit.domain._validate import integer
from wattbit.errors import Infeasible, InvalidInput, unknown_name
from wattbit.network.apn import APN

__all__ = ["LightpathBook", "Reservation"]


@dataclass(frozen=True, slots=True)
class Reservation:
    """Wavelengths held on a path for a time window.

    reservation_id : ``"lp-<n>"``;  src, dst : site names;  start, end : window [UTC, end
    exclusive];  channels : channel numbers held on every link (continuity);  link_ids : the
    path's links;  owner : free label (job id, tenant);  rate_gbps : capacity of the reservation
    (channels × per-wavelength line rate) [Gbit/s].
    """

    reservation_id: str
    src: str
    dst: str
    start: pd.Timestamp
    end: pd.Timestamp
    channels: tuple[int, ...]
    link_ids: tuple[str, ...]
    owner: str
    rate_gbps: float

    @property
    def wavelengths(self) -> int:
        return len(self.channels)

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def overlaps(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        return self.start < end and start < self.end


_UTC = pd.Timestamp(0, tz="UTC").tz


def _utc(value, field: str) -> pd.Timestamp:
    if isinstance(value, pd.Timestamp) and value.tz is _UTC:
        return value  # (the common case, checked first: a controller books every move)
    if not isinstance(value, pd.Timestamp):
        raise InvalidInput(f"{field} = {value!r}; expected a pandas.Timestamp with a time zone")
    if value.tzinfo is None:
        raise InvalidInput(
            f"{field} = {value!r} has no time zone; give it one, e.g. pd.Timestamp('{value}', tz='UTC')"
        )
    return value.tz_convert("UTC")


class LightpathBook:
    """The wavelength reservations of one APN over time.

    >>> from wattbit.scenarios import load_fleet
    >>> from wattbit.network import build_apn
    >>> book = LightpathBook(build_apn(load_fleet("japan-9")))
    >>> t0 = pd.Timestamp("2025-05-04 03:00", tz="UTC")
    >>> r = book.reserve("tokyo-dc", "kyushu-dc", t0, t0 + pd.Timedelta("30min"), wavelengths=2)
    >>> r.channels, r.rate_gbps
    ((0, 1), 400.0)
    >>> book.reserve("kansai-dc", "kyushu-dc", t0, t0 + pd.Timedelta("10min")).channels
    (2,)
    >>> book.release(r.reservation_id)
    >>> book.reserve("kansai-dc", "kyushu-dc", t0, t0 + pd.Timedelta("10min")).channels
    (0,)
    """

    def __init__(self, apn: APN) -> None:
        self.apn = apn
        self._reservations: dict[str, Reservation] = {}
        self._span_ns: dict[str, tuple[int, int, tuple[int, ...]]] = {}  # rid -> (start, end [ns], channels)
        self._by_link: dict[str, set[str]] = defaultdict(set)  # live: may still conflict
        self._history_by_link: dict[str, set[str]] = defaultdict(set)  # every reservation
        self._counter = itertools.count(1)
        self._retired_to: pd.Timestamp | None = None  # latest retire(before): windows start here or later
        self._peak: dict[str, int] = {}  # link -> most channels ever in use at once [-]
        self._stale: set[str] = set()  # links booked or released since their peak was swept
        self._path_cap: dict[tuple[str, ...], int] = {}  # a path's links -> its fewest channels [-]

    @property
    def reservations(self) -> tuple[Reservation, ...]:
        return tuple(self._reservations.values())

    @property
    def retired_to(self) -> pd.Timestamp | None:
        """The latest :meth:`retire` point: the book answers only for windows that start there or
        later (None before any retire)."""
        return self._retired_to

    def capacity(self, link_id: str) -> int:
        """Channels on a link [-]."""
        return self.apn.link(link_id).wavelengths

    def _check_after_retire(self, what: str, src: str, dst: str, start: pd.Timestamp) -> None:
        point = self._retired_to
        if point is not None and start < point:
            raise InvalidInput(
                f"{what} {src!r} -> {dst!r}: start = {start} is before the book's retire point {point} (retire(before={point})): "
                "reservations that ended by then are no longer checked for conflicts, so the book answers only "
                f"for windows from that instant on. Give start >= {point}"
            )

    def _peak_in_use(self, rids: Iterable[str], start_ns: int | None = None, end_ns: int | None = None) -> int:
        """Most channels the reservations ``rids`` hold at once within ``[start_ns, end_ns)``
        (None: unbounded) [-]: a sweep over their starts and ends, in arrays (a link's whole
        history is swept when its peak is asked for)."""
        span = self._span_ns
        spans = np.array([(span[rid][0], span[rid][1], len(span[rid][2])) for rid in rids],
                         dtype=np.int64).reshape(-1, 3)
        starts, ends, n = spans[:, 0], spans[:, 1], spans[:, 2]
        if start_ns is not None or end_ns is not None:
            hit = np.ones(len(spans), dtype=bool)
            if end_ns is not None:
                hit &= starts < end_ns
            if start_ns is not None:
                hit &= ends > start_ns
                starts = np.maximum(starts, start_ns)
            starts, ends, n = starts[hit], ends[hit], n[hit]
        if not len(n):
            return 0
        # at one instant an end comes before a start (windows are [start, end): the two do not
        # overlap): events sorted by instant, then by change, negative first
        at, change = np.concatenate([ends, starts]), np.concatenate([-n, n])
        order = np.lexsort((change, at))
        return int(np.cumsum(change[order]).max())  # (an end follows its start: never < 0)

    def _busy_ns(self, link_id: str, start_ns: int, end_ns: int) -> set[int]:
        """Channels of the link held at some instant of ``[start_ns, end_ns)``."""
        busy: set[int] = set()
        span = self._span_ns
        for rid in self._by_link.get(link_id, ()):
            r_start, r_end, channels = span[rid]
            if r_start < end_ns and start_ns < r_end:  # Reservation.overlaps, in integers
                busy.update(channels)
        return busy

    def free_channels(self, src: str, dst: str, start: pd.Timestamp, end: pd.Timestamp) -> tuple[int, ...]:
        """Channels free on every link of the src–dst path for the whole window."""
        start, end = _utc(start, "start"), _utc(end, "end")
        self._check_after_retire("free channels", src, dst, start)
        path = self.apn.path(src, dst)
        if not path.link_ids:
            return ()
        return tuple(self._free_on_path(path.link_ids, start.value, end.value))

    def _path_capacity(self, link_ids: tuple[str, ...]) -> int:
        """Channels of a path's link with the fewest [-] (remembered per path: asked at every booking)."""
        cap = self._path_cap.get(link_ids)
        if cap is None:
            cap = self._path_cap[link_ids] = min(self.capacity(lid) for lid in link_ids)
        return cap

    def _free_on_path(self, link_ids: tuple[str, ...], start_ns: int, end_ns: int,
                      limit: int | None = None) -> list[int]:
        """The channels free on every link of a path for the whole of ``[start_ns, end_ns)``,
        lowest first (the first ``limit`` of them, if given: first fit stops there). Channels are
        numbered from 0 on every link: free on all = below the smallest capacity and busy on none."""
        busy: set[int] = set()
        for lid in link_ids:
            busy |= self._busy_ns(lid, start_ns, end_ns)
        free: list[int] = []
        for channel in range(self._path_capacity(link_ids)):
            if channel not in busy:
                free.append(channel)
                if len(free) == limit:
                    break
        return free

    def reserve(
        self,
        src: str,
        dst: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        wavelengths: int = 1,
        owner: str = "",
    ) -> Reservation:
        """Hold ``wavelengths`` channels on the src–dst path for ``[start, end)`` (first fit).

        src, dst : site names;  start, end : window [tz-aware; start not before the latest
        :meth:`retire` point];  wavelengths : channels [-] (any integer, NumPy's too, not a bool);
        owner : a label kept with the reservation
        """
        start, end = _utc(start, "start"), _utc(end, "end")
        if not end > start:
            raise InvalidInput(f"reservation window: end = {end} is not after start = {start}; give end > start")
        wavelengths = integer("reservation", "wavelengths", wavelengths, low=1)  # (a Python int in the book)
        if src == dst:
            raise InvalidInput(f"reservation: src and dst are both {src!r}; a lightpath joins two different sites")
        self._check_after_retire("reservation", src, dst, start)
        path = self.apn.path(src, dst)
        cap = self._path_capacity(path.link_ids)
        if wavelengths > cap:
            raise InvalidInput(
                f"reservation {src!r} -> {dst!r}: wavelengths = {wavelengths}; a link carries at most {cap}. "
                "Ask for fewer, or build the APN with more fiber_pairs"
            )
        start_ns, end_ns = start.value, end.value
        free = self._free_on_path(path.link_ids, start_ns, end_ns, limit=wavelengths)  # first fit
        if len(free) < wavelengths:
            per_link = {lid: self.capacity(lid) - len(self._busy_ns(lid, start_ns, end_ns)) for lid in path.link_ids}
            blocking = min(per_link, key=per_link.get)
            raise Infeasible(
                f"lightpath {src!r} -> {dst!r} for {start.isoformat()} .. {end.isoformat()}: needs {wavelengths} "
                f"wavelength(s) free on every link; link {blocking!r} has {per_link[blocking]} of "
                f"{self.capacity(blocking)} free in that window and only {len(free)} channel(s) are free on the "
                "whole path (wavelength continuity). Shift the window, ask for fewer wavelengths, or add fiber pairs"
            )
        rid = f"lp-{next(self._counter)}"
        r = Reservation(
            rid, src, dst, start, end, tuple(free[:wavelengths]), path.link_ids, owner, wavelengths * path.rate_gbps
        )
        self._reservations[rid] = r
        self._span_ns[rid] = (start_ns, end_ns, r.channels)
        for lid in path.link_ids:
            self._by_link[lid].add(rid)
            self._history_by_link[lid].add(rid)
        self._stale.update(path.link_ids)  # (the peaks are swept when asked for, not at every booking)
        return r

    def retire(self, before: pd.Timestamp) -> int:
        """Stop checking reservations that ended by ``before`` for conflicts (they stay in the
        history and in the statistics); a long-running controller calls it every step so that
        booking stays fast. From then on the book answers only for windows that start at or after
        the latest ``before`` it was given: :meth:`reserve` and :meth:`free_channels` refuse an
        earlier start (InvalidInput). Returns how many were retired (counted once per link)."""
        before = _utc(before, "before")
        if self._retired_to is None or before > self._retired_to:
            self._retired_to = before
        before_ns = before.value
        done = 0
        span = self._span_ns
        for rids in self._by_link.values():
            old = {rid for rid in rids if span[rid][1] <= before_ns}
            rids -= old
            done += len(old)
        return done

    def release(self, reservation_id: str) -> None:
        """Give a reservation's wavelengths back."""
        r = self._reservations.pop(reservation_id, None)
        if r is None:
            raise unknown_name("reservation", reservation_id, self._reservations, field="reservation_id")
        del self._span_ns[reservation_id]
        for lid in r.link_ids:
            self._by_link[lid].discard(reservation_id)
            self._history_by_link[lid].discard(reservation_id)
            self._stale.add(lid)

    def used(self, link_id: str, at: pd.Timestamp) -> int:
        """Channels in use on a link at an instant [-]."""
        at = _utc(at, "at")
        return sum(
            self._reservations[rid].wavelengths
            for rid in self._history_by_link.get(link_id, ())
            if self._reservations[rid].start <= at < self._reservations[rid].end
        )

    def utilisation(self, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, float]:
        """Peak fraction of each link's wavelengths in use within ``[start, end)`` [pu]."""
        start, end = _utc(start, "start"), _utc(end, "end")
        start_ns, end_ns = start.value, end.value
        return {
            link.link_id: self._peak_in_use(self._history_by_link.get(link.link_id, ()), start_ns, end_ns)
            / link.wavelengths
            for link in self.apn.links
        }

    def peak_utilisation(self) -> float:
        """Highest fraction of any link's wavelengths in use at any instant, over every reservation
        held (retired ones included, released ones not) [pu]: the largest :meth:`utilisation`
        over all time. Each link booked or released since the last call is swept again (once
        per call, not at every booking: a controller books a move at a time)."""
        for lid in self._stale:
            self._peak[lid] = self._peak_in_use(self._history_by_link.get(lid, ()))
        self._stale.clear()
        return max((n / self.capacity(lid) for lid, n in self._peak.items()), default=0.0)
