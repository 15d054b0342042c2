"""The columns of wattbit's tidy grid table, written down once (name, unit, meaning).

This one table feeds the readers (which must produce exactly these names), validation and
``docs/data.md``. Sign conventions: ``pumped_storage_mw`` > 0 while generating, < 0 while
pumping; ``tie_net_import_mw`` > 0 while the area imports over its tie-lines (the TSO files'
own convention, consistent with supply = demand).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CURTAILMENT_COLUMNS", "GENERATION_COLUMNS", "HOURLY_COLUMNS", "HOURLY_COLUMN_NAMES", "Column"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the tidy hourly table.

    name : column name with its unit suffix;  unit : unit text;  meaning : what it holds, and the
    Japanese source label (エリア需給実績 column) it comes from.
    """

    name: str
    unit: str
    meaning: str


HOURLY_COLUMNS: tuple[Column, ...] = (
    Column("demand_mw", "MW", "area demand, hourly average (エリア需要; sending end)"),
    Column("nuclear_mw", "MW", "nuclear output (原子力)"),
    Column("thermal_mw", "MW", "thermal output, all fossil fuels and unidentified supply (火力)"),
    Column("hydro_mw", "MW", "conventional hydro output (水力)"),
    Column("geothermal_mw", "MW", "geothermal output (地熱)"),
    Column("biomass_mw", "MW", "biomass output identified by the TSO (バイオマス)"),
    Column("solar_mw", "MW", "solar output actually delivered (太陽光実績)"),
    Column("solar_curtailed_mw", "MW", "solar output curtailed by TSO order (太陽光抑制量/出力制御量)"),
    Column("wind_mw", "MW", "wind output actually delivered (風力実績)"),
    Column("wind_curtailed_mw", "MW", "wind output curtailed by TSO order (風力抑制量/出力制御量)"),
    Column("pumped_storage_mw", "MW", "pumped storage net: > 0 generating, < 0 pumping (揚水)"),
    Column("tie_net_import_mw", "MW", "interconnector net flow: > 0 import into the area (連系線)"),
)

HOURLY_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in HOURLY_COLUMNS)
CURTAILMENT_COLUMNS: tuple[str, ...] = ("solar_curtailed_mw", "wind_curtailed_mw")
GENERATION_COLUMNS: tuple[str, ...] = (
    "nuclear_mw", "thermal_mw", "hydro_mw", "geothermal_mw", "biomass_mw", "solar_mw", "wind_mw",
)
