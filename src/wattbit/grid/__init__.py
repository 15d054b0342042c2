"""Grid signals per area: curtailment headroom, price, carbon, and their forecasts."""

from wattbit.grid.forecast import SeasonalPersistenceForecaster, concat_signals, forecast_error
from wattbit.grid.signals import SIGNAL_FIELDS, Forecaster, GridSignals, PerfectForesight
from wattbit.grid.ties import TIE_LINES, TieLine, tie_line
from wattbit.grid.truth import GapWarning, hourly_signals, load_signals, signal_areas, signal_span

__all__ = [
    "SIGNAL_FIELDS",
    "TIE_LINES",
    "Forecaster",
    "GapWarning",
    "GridSignals",
    "PerfectForesight",
    "SeasonalPersistenceForecaster",
    "TieLine",
    "concat_signals",
    "forecast_error",
    "hourly_signals",
    "load_signals",
    "signal_areas",
    "signal_span",
    "tie_line",
]
