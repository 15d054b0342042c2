"""One exception tree for wattbit.

::

    WattbitError                      base of everything wattbit raises on purpose
    ├── InvalidInput(ValueError)      a value a user gave is wrong: names field, value and fix
    │   └── UnknownName(KeyError)     a name (area, site, policy, ...) that does not exist
    ├── DataSourceError               a data file is malformed: names file, line and expectation
    ├── Infeasible                    a plan or reservation cannot be met: names the binding limits
    ├── SolverError                   the LP/MILP solver failed for a reason other than infeasibility
    ├── ExecutorError                 a scheduler (Slurm, ...) refused or failed a command
    ├── ResidencyViolation            an action would move data out of its allowed areas
    ├── SweepFailed                   cells of a sweep failed; the others finished (``.result``)
    └── MissingExtra(ImportError)     an optional dependency is absent: says which pip install fixes it

Every message says *what* is wrong, *which* object, the *value* seen and, where there is one,
the *fix*.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "DataSourceError",
    "ExecutorError",
    "Infeasible",
    "InvalidInput",
    "MissingExtra",
    "ResidencyViolation",
    "SolverError",
    "SweepFailed",
    "UnknownName",
    "WattbitError",
    "require_extra",
    "unknown_name",
]


class WattbitError(Exception):
    """Base class of every error wattbit raises on purpose."""


class InvalidInput(WattbitError, ValueError):
    """A user-supplied value is invalid.

    >>> raise InvalidInput("site 'x': gpu_count = -8; expected an integer >= 1")
    Traceback (most recent call last):
    ...
    wattbit.errors.InvalidInput: site 'x': gpu_count = -8; expected an integer >= 1
    """


class UnknownName(InvalidInput, KeyError):
    """A name that does not exist (an area, a site, a policy, a job id)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DataSourceError(WattbitError):
    """A data file cannot be read as expected.

    file : the path;  line : 1-based line number or None;  expected : what should have been there
    """

    def __init__(self, file: object, line: int | None, expected: str, found: object = None):
        self.file, self.line, self.expected, self.found = str(file), line, expected, found
        where = f"{self.file}:{line}" if line is not None else self.file
        msg = f"{where}: expected {expected}"
        if found is not None:
            msg += f", found {found!r}"
        super().__init__(msg)


class Infeasible(WattbitError):
    """A plan or reservation cannot satisfy its constraints; the message names the binding limits."""


class SolverError(WattbitError):
    """The optimisation solver failed (status other than optimal/infeasible)."""


class ExecutorError(WattbitError):
    """A scheduler command (sbatch, scontrol, ...) failed or returned something unexpected."""


class ResidencyViolation(WattbitError):
    """An action would place or move a job's data outside its allowed areas."""


class SweepFailed(WattbitError):
    """Cells of a scenario sweep failed while the others ran to the end.

    result : the sweep's result over the cells that finished (``wattbit.sim.sweep.SweepResult``,
    whose ``failed`` holds the (cell index, error text) of each failed cell).
    """

    def __init__(self, message: str, result: object):
        super().__init__(message)
        self.result = result


class MissingExtra(WattbitError, ImportError):
    """An optional dependency is not installed."""


def unknown_name(kind: str, name: str, known: Iterable[str], field: str | None = None) -> UnknownName:
    """Build an UnknownName error with a "did you mean" hint (when a known name is close).

    >>> str(unknown_name("area", "tokio", ["tokyo", "kyushu"]))
    "area 'tokio' not found; did you mean 'tokyo'? (known: kyushu, tokyo)"
    >>> str(unknown_name("scenario", "myscen", ["full-year", "default"]))
    "scenario 'myscen' not found (known: default, full-year)"
    """
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1) if isinstance(name, str) else []
    prefix = f"{field}: " if field else ""
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return UnknownName(f"{prefix}{kind} {name!r} not found{hint} (known: {', '.join(known)})")


def require_extra(module: str, extra: str):
    """Import an optional module or raise MissingExtra naming the pip command that fixes it.

    >>> require_extra("json", "none").__name__
    'json'
    >>> require_extra("no_such_module_xyz", "report")
    Traceback (most recent call last):
    ...
    wattbit.errors.MissingExtra: this feature needs 'no_such_module_xyz': pip install 'wattbit[report]'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"this feature needs {module!r}: pip install 'wattbit[{extra}]'"
        ) from exc
