"""wattbit — run Japan's regionally distributed AI data centers as one virtual data center whose
load follows the grid (Workload Shift over an All-Photonics Network).

The public API is what ``__all__`` lists; everything else may change.
"""

from wattbit.domain import (
    DemandResponse,
    Fleet,
    Job,
    JobKind,
    Scenario,
    Site,
    Weights,
    WorkloadSpec,
)
from wattbit.errors import (
    DataSourceError,
    Infeasible,
    InvalidInput,
    MissingExtra,
    WattbitError,
)
from wattbit.grid import GridSignals

__version__ = "0.1.0"

__all__ = [
    "DataSourceError",
    "DemandResponse",
    "Fleet",
    "GridSignals",
    "Infeasible",
    "InvalidInput",
    "Job",
    "JobKind",
    "MissingExtra",
    "Scenario",
    "Site",
    "WattbitError",
    "Weights",
    "WorkloadSpec",
    "__version__",
]
