"""Grid signals per area: curtailment headroom, price, carbon, and their forecasts."""

from wattbit.grid.signals import SIGNAL_FIELDS, Forecaster, GridSignals, PerfectForesight
from wattbit.grid.truth import GapWarning, hourly_signals, load_signals, signal_span
from wattbit.grid.forecast import SeasonalPersistenceForecaster, concat_signals, forecast_error
from wattbit.grid.ties import TIE_LINES, TieLine, tie_line

__all__ = [
    "GridSignals",
    "Forecaster",
    "PerfectForesight",
    "SIGNAL_FIELDS",
    "load_signals",
    "hourly_signals",
    "GapWarning",
    "signal_span",
    "SeasonalPersistenceForecaster",
    "forecast_error",
    "concat_signals",
    "TIE_LINES",
    "TieLine",
    "tie_line",
]
