"""A cell runner for the sweep tests that fails in one cell and runs the others as usual.

It lives in a module of its own so that the sweep's worker processes can import it: the test
puts this folder on ``sys.path``, which spawned workers inherit, and replaces
``wattbit.sim.sweep.run_cell`` with :func:`run_cell_failing_in_cell_1`."""

from __future__ import annotations

from wattbit.errors import SolverError
from wattbit.sim.sweep import run_cell

FAILING_CELL = 1


def run_cell_failing_in_cell_1(base, cell, *args, **kwargs):
    if cell.index == FAILING_CELL:
        raise SolverError("HiGHS ended with status 'Time limit reached' (raised by the test's cell runner)")
    return run_cell(base, cell, *args, **kwargs)
