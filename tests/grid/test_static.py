"""Static grid facts: tie-lines and emission factors."""

import pytest

from wattbit.domain import AREAS
from wattbit.errors import InvalidInput
from wattbit.grid import TIE_LINES, TieLine, carbon, tie_line


def test_one_tie_line_per_neighbouring_pair():
    pairs = {frozenset((a.name, n)) for a in AREAS for n in a.neighbours}
    assert {frozenset((t.a, t.b)) for t in TIE_LINES} == pairs
    assert tie_line("tokyo", "chubu").capacity_mw == 2100.0
    assert tie_line("hokkaido", "tohoku").capacity_mw == 1200.0
    with pytest.raises(InvalidInput):
        tie_line("kyushu", "tokyo")


def test_tie_line_validation():
    with pytest.raises(InvalidInput, match="capacity_mw"):
        TieLine("kyushu", "chugoku", "x", 0.0, "test")
    with pytest.raises(InvalidInput, match="did you mean"):
        TieLine("kyusyu", "chugoku", "x", 10.0, "test")


def test_thermal_and_mix_factors():
    assert sum(carbon.THERMAL_FUEL_SHARES.values()) == pytest.approx(1.0)
    assert carbon.THERMAL_G_PER_KWH == pytest.approx(0.45 * 820 + 0.506 * 490 + 0.044 * 650)
    assert 440 < carbon.JAPAN_ANNUAL_G_PER_KWH < 520
    assert carbon.TOKYO_NON_SOLAR_G_PER_KWH > carbon.TOKYO_ANNUAL_G_PER_KWH
