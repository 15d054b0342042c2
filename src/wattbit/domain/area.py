"""The ten Japanese grid (TSO) areas.

Sources: OCCTO, "Outline of the electricity supply-demand areas" (電力需給エリア) — nine
interconnected areas plus isolated Okinawa; Hokkaido, Tohoku and Tokyo run at 50 Hz, the others
at 60 Hz; east and west meet only through the frequency converters between Tokyo and Chubu.
Neighbours are the areas joined by an interconnector (連系線) in OCCTO's list of ten
inter-regional tie-lines; capacities live in :mod:`wattbit.grid` with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattbit.errors import InvalidInput, unknown_name

__all__ = ["AREAS", "AREA_NAMES", "INTERCONNECTED_AREAS", "Area", "area"]


@dataclass(frozen=True, slots=True)
class Area:
    """One TSO area.

    name : lowercase English key (``"kyushu"``);  name_ja : Japanese name;
    code : short code used by OCCTO/Electricity Maps (``"KY"``);  frequency_hz : 50 or 60;
    neighbours : names of the areas linked by a tie-line;  lat, lon : a representative point
    (the main city) [deg], for maps only.
    """

    name: str
    name_ja: str
    code: str
    frequency_hz: int
    neighbours: tuple[str, ...]
    lat: float
    lon: float

    @property
    def interconnected(self) -> bool:
        return bool(self.neighbours)


AREAS: tuple[Area, ...] = (
    Area("hokkaido", "北海道", "HKD", 50, ("tohoku",), 43.06, 141.35),
    Area("tohoku", "東北", "TH", 50, ("hokkaido", "tokyo"), 38.27, 140.87),
    Area("tokyo", "東京", "TK", 50, ("tohoku", "chubu"), 35.68, 139.77),
    Area("chubu", "中部", "CB", 60, ("tokyo", "hokuriku", "kansai"), 35.18, 136.91),
    Area("hokuriku", "北陸", "HR", 60, ("chubu", "kansai"), 36.59, 136.63),
    Area("kansai", "関西", "KN", 60, ("chubu", "hokuriku", "chugoku", "shikoku"), 34.69, 135.50),
    Area("chugoku", "中国", "CG", 60, ("kansai", "shikoku", "kyushu"), 34.39, 132.46),
    Area("shikoku", "四国", "SK", 60, ("kansai", "chugoku"), 34.34, 134.05),
    Area("kyushu", "九州", "KY", 60, ("chugoku",), 33.59, 130.40),
    Area("okinawa", "沖縄", "ON", 60, (), 26.21, 127.68),
)

AREA_NAMES: tuple[str, ...] = tuple(a.name for a in AREAS)
INTERCONNECTED_AREAS: tuple[str, ...] = tuple(a.name for a in AREAS if a.interconnected)
_BY_NAME = {a.name: a for a in AREAS}
_BY_CODE = {a.code.lower(): a for a in AREAS}


def area(name: str) -> Area:
    """Look an area up by name or code, case-insensitively.

    >>> area("Kyushu").code
    'KY'
    >>> area("KY").name
    'kyushu'
    >>> area("tokio")
    Traceback (most recent call last):
    ...
    wattbit.errors.UnknownName: area 'tokio' not found; did you mean 'tokyo'? (known: ...)
    """
    if not isinstance(name, str):
        raise InvalidInput(f"area = {name!r}; expected an area name such as 'tokyo'")
    key = name.strip().lower()
    found = _BY_NAME.get(key) or _BY_CODE.get(key)
    if found is None:
        raise unknown_name("area", key, AREA_NAMES)
    return found
