"""Inter-regional tie-lines (地域間連系線) between the nine interconnected areas.

Capacities are rough, static, symmetric defaults — not OCCTO's operating capacities (運用容量),
which vary by season, time of day and direction. Source, unless a row says otherwise: the
Electricity Maps zone configuration (electricitymaps-contrib, config/exchanges/JP-*_JP-*.yaml,
``capacity``), taken as facts with attribution. Hokkaido-Tohoku is corrected to 1,200 MW: the
Hokkaido-Honshu HVDC link was raised from 900 MW to 1,200 MW when the new Hokuto-Imabetsu HVDC
line (300 MW) entered service in March 2019 (OCCTO / Hokkaido Electric Power Network).
"""

from __future__ import annotations

from dataclasses import dataclass

from wattbit.domain.area import AREAS
from wattbit.errors import InvalidInput, unknown_name

__all__ = ["TIE_LINES", "TieLine", "tie_line"]


@dataclass(frozen=True, slots=True)
class TieLine:
    """One inter-regional tie-line.

    a, b : the two area names (a before b in AREAS order);  name : usual name;
    capacity_mw : transfer capacity, each direction [MW];  source : where the figure comes from
    """

    a: str
    b: str
    name: str
    capacity_mw: float
    source: str

    def __post_init__(self) -> None:
        names = [x.name for x in AREAS]
        for end in (self.a, self.b):
            if end not in names:
                raise unknown_name("area", end, names, field=f"tie-line {self.name!r}")
        if self.capacity_mw <= 0:
            raise InvalidInput(f"tie-line {self.name!r}: capacity_mw = {self.capacity_mw}; expected > 0")


_EM = "Electricity Maps config/exchanges (electricitymaps-contrib b354f28)"

TIE_LINES: tuple[TieLine, ...] = (
    TieLine("hokkaido", "tohoku", "Hokkaido-Honshu HVDC (北本連系線)", 1200.0,
            "OCCTO/HEPCO: 900 MW + Hokuto-Imabetsu 300 MW since March 2019"),
    TieLine("tohoku", "tokyo", "Tohoku-Tokyo (相馬双葉幹線)", 5150.0, _EM),
    TieLine("tokyo", "chubu", "Frequency converters (FC: 佐久間, 新信濃, 東清水, 飛騨信濃)", 2100.0, _EM),
    TieLine("chubu", "hokuriku", "Chubu-Hokuriku BTB (南福光)", 300.0, _EM),
    TieLine("chubu", "kansai", "Chubu-Kansai (三重東近江線)", 2500.0, _EM),
    TieLine("hokuriku", "kansai", "Hokuriku-Kansai (越前嶺南線)", 1900.0, _EM),
    TieLine("kansai", "chugoku", "Kansai-Chugoku (西播東岡山線, 山崎智頭線)", 4140.0, _EM),
    TieLine("kansai", "shikoku", "Kansai-Shikoku HVDC (阿南紀北直流幹線)", 1400.0, _EM),
    TieLine("chugoku", "shikoku", "Honshi interconnection (本四連系線)", 1200.0, _EM),
    TieLine("chugoku", "kyushu", "Kanmon interconnection (関門連系線)", 2470.0, _EM),
)
"""The ten tie-lines of OCCTO's list, one per neighbouring pair of :data:`wattbit.domain.AREAS`."""


def tie_line(a: str, b: str) -> TieLine:
    """The tie-line between two areas, in either order.

    >>> tie_line("kyushu", "chugoku").capacity_mw
    2470.0
    """
    for t in TIE_LINES:
        if {t.a, t.b} == {a, b}:
            return t
    raise InvalidInput(f"no tie-line between {a!r} and {b!r}; neighbours are listed in wattbit.domain.AREAS")
