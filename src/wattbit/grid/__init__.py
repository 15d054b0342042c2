"""Grid signals per area: curtailment headroom, price, carbon, and their forecasts."""

from wattbit.grid.signals import SIGNAL_FIELDS, Forecaster, GridSignals, PerfectForesight
from wattbit.grid.truth import GapWarning, hourly_signals, load_signals

__all__ = [
    "GridSignals",
    "Forecaster",
    "PerfectForesight",
    "SIGNAL_FIELDS",
    "load_signals",
    "hourly_signals",
    "GapWarning",
]
