"""Grid signals per area: curtailment headroom, price, carbon, and their forecasts."""

from wattbit.grid.signals import SIGNAL_FIELDS, Forecaster, GridSignals, PerfectForesight

__all__ = ["GridSignals", "Forecaster", "PerfectForesight", "SIGNAL_FIELDS"]
