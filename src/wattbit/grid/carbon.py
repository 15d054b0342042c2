"""Carbon intensity of each area's supply, average and marginal, from the hourly generation mix.

Emission factors are **life-cycle** medians in gCO2eq/kWh (= kg/MWh), so that every source,
including solar, wind and nuclear, carries its own figure:

==========  =====  ==========================================================================
fuel        g/kWh  source
==========  =====  ==========================================================================
coal          820  IPCC AR5 WG3 (2014), Annex III, Table A.III.2, pulverised coal, median
gas           490  ibid., natural gas combined cycle, median
oil           650  UK Parliamentary Office of Science and Technology (POST), "Carbon footprint
                   of electricity generation" (2014 update); AR5 Annex III has no oil figure
biomass       230  IPCC AR5 Annex III, biomass dedicated, median
geothermal     38  ibid., geothermal, median
hydro          24  ibid., hydropower, median
nuclear        12  ibid., nuclear, median
solar          45  mid-point of AR5's PV rooftop (41) and utility-scale (48) medians; Japan's
                   fleet has both (assumption)
wind           11  ibid., wind onshore, median
==========  =====  ==========================================================================

The TSO files of FY2016-FY2023 do not split thermal (火力) by fuel. wattbit weights the fuel
factors by the thermal fuel shares of Japan's generation (:data:`THERMAL_FUEL_SHARES`, from the
Electricity Maps zone configuration's 2022 ``fallbackZoneMixes`` for the Japanese zones, which
give coal 45.0 %, gas 50.6 %, oil 4.4 % of fossil generation in every area), giving
:data:`THERMAL_G_PER_KWH` ≈ 646 g/kWh. The figures were taken as facts with attribution; no
Electricity Maps file is shipped.

Average intensity (location-based) of area *a* in hour *h*::

    avg = (Σ_f gen_f · EF_f + max(import, 0) · EF_import) / (Σ_f gen_f + max(import, 0))

over nuclear, thermal, hydro, geothermal, biomass, solar and wind output (pumped storage is left
out: its energy was generated, and counted, when it was pumped), where EF_import is the mean
own-generation intensity of the area's neighbours in that hour (the files give only the net
tie-line flow, not its origin). Marginal intensity is 0 while the area curtails solar or wind
(the next MWh would have been curtailed) and :data:`MARGINAL_THERMAL_G_PER_KWH` otherwise.
The method and its limits are in docs/assumptions.md (## Grid data and signals).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "COLUMN_FACTORS",
    "JAPAN_ANNUAL_G_PER_KWH",
    "JAPAN_MIX_SHARES",
    "LIFECYCLE_G_PER_KWH",
    "MARGINAL_THERMAL_G_PER_KWH",
    "THERMAL_FUEL_SHARES",
    "THERMAL_G_PER_KWH",
    "TOKYO_ANNUAL_G_PER_KWH",
    "TOKYO_MIX_SHARES",
    "TOKYO_NON_SOLAR_G_PER_KWH",
    "own_generation_intensity",
    "thermal_factor",
]

LIFECYCLE_G_PER_KWH: dict[str, float] = {
    "coal": 820.0,
    "gas": 490.0,
    "oil": 650.0,
    "biomass": 230.0,
    "geothermal": 38.0,
    "hydro": 24.0,
    "nuclear": 12.0,
    "solar": 45.0,
    "wind": 11.0,
}
"""Life-cycle emission factors [gCO2eq/kWh]; sources in the module docstring."""

THERMAL_FUEL_SHARES: dict[str, float] = {"coal": 0.450, "gas": 0.506, "oil": 0.044}
"""Fuel shares of fossil (火力) generation [pu]. Source: Electricity Maps zone configuration
(electricitymaps-contrib, config/zones/JP-*.yaml, ``fallbackZoneMixes.powerOriginRatios``,
"Electricity Maps, 2022 average"): coal 45.0 %, gas 50.6 %, oil 4.4 % of coal + gas + oil in
each Japanese area (the same split in every area). Applied to every area and year (assumption)."""


def thermal_factor(shares: dict[str, float] = THERMAL_FUEL_SHARES) -> float:
    """Emission factor of a thermal fleet from its fuel shares [gCO2eq/kWh].

    shares : fuel -> share of thermal output [pu], summing to 1

    >>> round(thermal_factor(), 1)
    645.5
    >>> thermal_factor({"gas": 1.0})
    490.0
    """
    total = sum(shares.values())
    return sum(LIFECYCLE_G_PER_KWH[f] * s for f, s in shares.items()) / total


THERMAL_G_PER_KWH: float = thermal_factor()
"""Life-cycle factor of area thermal output (火力, not split by fuel) ≈ 645.5 gCO2eq/kWh."""

MARGINAL_THERMAL_G_PER_KWH: float = LIFECYCLE_G_PER_KWH["gas"]
"""Marginal intensity outside curtailment hours: LNG combined cycle, 490 gCO2eq/kWh (IPCC AR5
Annex III median). Assumption: in Japan's merit order nuclear, hydro and coal run as base load
and LNG units follow load, so an extra MWh is most often met by LNG."""

COLUMN_FACTORS: dict[str, float] = {
    "nuclear_mw": LIFECYCLE_G_PER_KWH["nuclear"],
    "thermal_mw": THERMAL_G_PER_KWH,
    "hydro_mw": LIFECYCLE_G_PER_KWH["hydro"],
    "geothermal_mw": LIFECYCLE_G_PER_KWH["geothermal"],
    "biomass_mw": LIFECYCLE_G_PER_KWH["biomass"],
    "solar_mw": LIFECYCLE_G_PER_KWH["solar"],
    "wind_mw": LIFECYCLE_G_PER_KWH["wind"],
}
"""Factor applied to each generation column of the tidy table [gCO2eq/kWh]."""

TOKYO_MIX_SHARES: dict[str, float] = {
    "coal": 0.3744, "gas": 0.4203, "oil": 0.0378, "biomass": 0.0124, "geothermal": 0.0009,
    "hydro": 0.0575, "nuclear": 0.0003, "solar": 0.0896, "wind": 0.0047,
}
"""Tokyo area generation shares, 2022 [pu]. Source: Electricity Maps zone configuration,
config/zones/JP-TK.yaml, ``fallbackZoneMixes.powerOriginRatios`` "Electricity Maps, 2022 average"
(hydro includes 0.0001 hydro discharge; 0.0019 "unknown" left out). Used only because TEPCO's
files in this dataset carry no generation mix."""


def _mix_intensity(shares: dict[str, float]) -> float:
    total = sum(shares.values())
    return sum(LIFECYCLE_G_PER_KWH[f] * s for f, s in shares.items()) / total


TOKYO_NON_SOLAR_G_PER_KWH: float = _mix_intensity({f: s for f, s in TOKYO_MIX_SHARES.items() if f != "solar"})
"""Intensity of Tokyo's supply other than solar, from :data:`TOKYO_MIX_SHARES` [gCO2eq/kWh]."""

TOKYO_ANNUAL_G_PER_KWH: float = _mix_intensity(TOKYO_MIX_SHARES)
"""Tokyo's annual-mix intensity, used for hours without a TEPCO solar value [gCO2eq/kWh]."""

JAPAN_MIX_SHARES: dict[str, float] = {
    "coal": 0.3107, "gas": 0.3515, "oil": 0.0312, "biomass": 0.0144, "geothermal": 0.0027,
    "hydro": 0.0814, "nuclear": 0.0724, "solar": 0.0899, "wind": 0.0083,
}
"""Japan's generation shares, 2021 [pu]. Source: Electricity Maps zone configuration,
config/zones/JP.yaml, ``fallbackZoneMixes.powerOriginRatios`` "Electricity Maps, 2021 average"
(hydro includes 0.0008 hydro discharge; 0.0375 "unknown" left out)."""

JAPAN_ANNUAL_G_PER_KWH: float = _mix_intensity(JAPAN_MIX_SHARES)
"""Japan's annual-mix intensity ≈ 475 gCO2eq/kWh; the forecasters' no-data prior."""


def own_generation_intensity(gen_mw: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Intensity of an area's own generation and its total, hour by hour.

    gen_mw : generation column name -> output per hour [MW] (NaN counts as 0: a source that does
    not report a fuel has none of it)
    Returns (intensity [gCO2eq/kWh], total generation [MW]); intensity is NaN where total is 0.

    >>> i, g = own_generation_intensity({"thermal_mw": np.array([100.0]), "solar_mw": np.array([100.0])})
    >>> round(float(i[0]), 2), float(g[0])
    (345.27, 200.0)
    """
    emis = 0.0
    total = 0.0
    for col, factor in COLUMN_FACTORS.items():
        if col in gen_mw:
            g = np.nan_to_num(np.clip(np.asarray(gen_mw[col], dtype=float), 0, None))
            emis = emis + g * factor
            total = total + g
    total = np.asarray(total, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, emis / np.where(total > 0, total, 1), np.nan), total
