"""wattbit.network — the All-Photonics Network (APN) on railway dark fiber.

Topology from the railway geometry (:mod:`wattbit.network.railway`), per-path latency and
all-optical feasibility from a closed-form GSNR model (:mod:`wattbit.network.qot`), lightpath
reservations (:mod:`wattbit.network.lightpath`) and job move times (:mod:`wattbit.network.apn`).
GNPy is optional (``pip install 'wattbit[qot]'``) and only recalibrates the QoT coefficients.
"""

from wattbit.network.apn import (
    APN,
    DEFAULT_PARAMS,
    DEFAULT_SLACK_PU,
    DEFAULT_WAVELENGTHS_PER_PAIR,
    ApnParams,
    Link,
    MoveBreakdown,
    MoveCost,
    Path,
    build_apn,
    transport_power_w,
)
from wattbit.network.lightpath import LightpathBook, Reservation

__all__ = [
    "APN",
    "DEFAULT_PARAMS",
    "DEFAULT_SLACK_PU",
    "DEFAULT_WAVELENGTHS_PER_PAIR",
    "ApnParams",
    "LightpathBook",
    "Link",
    "MoveBreakdown",
    "MoveCost",
    "Path",
    "Reservation",
    "build_apn",
    "transport_power_w",
]
