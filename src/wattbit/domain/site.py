"""AI data-center sites and the fleet they form."""

from __future__ import annotations

from dataclasses import dataclass, field

from wattbit.domain._validate import (
    area_name,
    fraction,
    integer,
    is_number,
    number_fix,
    positive,
    text,
    wrong_type,
)
from wattbit.errors import InvalidInput, unknown_name

__all__ = ["Fleet", "Site"]


@dataclass(frozen=True, slots=True)
class Site:
    """One AI data center.

    name : unique key (``"kyushu-dc"``);  area : its grid area name;
    lat, lon : location [deg];  accelerator : key into :mod:`wattbit.power` (``"h200"``);
    gpu_count : accelerators installed [-];  it_power_max_mw : IT power cap [MW];
    pue : power usage effectiveness [-] (facility = IT × PUE);
    residency_zone : jurisdiction label used by data-residency rules (``"jp"``);
    base_load_pu : share of the GPUs taken by load outside wattbit's control [0..1].
    """

    name: str
    area: str
    lat: float
    lon: float
    gpu_count: int
    it_power_max_mw: float
    pue: float = 1.3
    accelerator: str = "h200"
    residency_zone: str = "jp"
    base_load_pu: float = 0.0

    def __post_init__(self) -> None:
        text("site", "name", self.name)
        owner = f"site {self.name!r}"
        object.__setattr__(self, "area", area_name(owner, "area", self.area))
        for name in ("lat", "lon"):
            value = getattr(self, name)
            if not is_number(value):
                raise wrong_type(owner, name, value, "a number of degrees" + number_fix(value))
        if not (20.0 <= self.lat <= 46.0 and 122.0 <= self.lon <= 154.0):
            raise InvalidInput(
                f"{owner}: location ({self.lat}, {self.lon}) is outside Japan; "
                "expected lat 20..46, lon 122..154 [deg]"
            )
        object.__setattr__(self, "gpu_count", integer(owner, "gpu_count", self.gpu_count, low=1))
        positive(owner, "it_power_max_mw", self.it_power_max_mw)
        if not is_number(self.pue) or not (1.0 <= self.pue <= 3.0):
            raise wrong_type(owner, "pue", self.pue, "1.0..3.0 (typical 1.1..1.6)" + number_fix(self.pue))
        text(owner, "accelerator", self.accelerator)
        text(owner, "residency_zone", self.residency_zone)
        fraction(owner, "base_load_pu", self.base_load_pu)


@dataclass(frozen=True, slots=True)
class Fleet:
    """A set of sites run as one virtual data center. The APN joining them is built by
    :func:`wattbit.network.build_apn` from the sites' locations."""

    name: str
    sites: tuple[Site, ...]
    _index: dict = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        text("fleet", "name", self.name)
        if not self.sites:
            raise InvalidInput(f"fleet {self.name!r}: no sites; add at least one [[sites]] entry")
        object.__setattr__(self, "sites", tuple(self.sites))
        index: dict[str, int] = {}
        for i, s in enumerate(self.sites):
            if s.name in index:
                raise InvalidInput(f"fleet {self.name!r}: site name {s.name!r} appears twice; names must be unique")
            index[s.name] = i
        object.__setattr__(self, "_index", index)

    @property
    def site_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sites)

    @property
    def areas(self) -> tuple[str, ...]:
        """Areas that hold at least one site, in site order, without repeats."""
        return tuple(dict.fromkeys(s.area for s in self.sites))

    def site(self, name: str) -> Site:
        try:
            return self.sites[self._index[name]]
        except KeyError:
            raise unknown_name("site", name, self.site_names) from None

    def index(self, name: str) -> int:
        if name not in self._index:
            raise unknown_name("site", name, self.site_names)
        return self._index[name]

    def sites_in(self, areas) -> tuple[Site, ...]:
        areas = set(areas)
        return tuple(s for s in self.sites if s.area in areas)

    @property
    def gpu_count(self) -> int:
        return sum(s.gpu_count for s in self.sites)
