"""The planning problem in numbers: sites, time blocks, flexibility classes and grid signals.

The planner does not see individual jobs. It sees *flexibility classes* — jobs that may run on
the same set of sites and that start from the same place — described by three curves over the
horizon's blocks (a relaxation of the per-job problem, tight for the decisions of the first block):

* ``cap_gpus[c, b]``: how many GPUs the class could use at once in block b (sum of its jobs' GPUs);
* ``due_gpu_h[c, b]``: work that must be done by the end of block b (deadlines, pacing) [GPU-h];
* ``remaining_gpu_h[c]``: all the work the class has left [GPU-h].

Online inference forms *service classes* with a GPU demand per block that must be served from
sites inside its round-trip budget. Every array is named with its unit; dimensions are written
``(class, site, block)`` and so on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from wattbit.domain import Weights
from wattbit.domain._validate import integer, is_integer, wrong_type
from wattbit.errors import InvalidInput

__all__ = [
    "WEIGHT_FIELDS", "Blocks", "DRConstraint", "PlanningProblem", "ServiceClasses", "WorkClasses", "weight_kwargs",
]


@dataclass(frozen=True, eq=False)
class Blocks:
    """Consecutive time blocks of a horizon: ``duration_h[b]`` [h], starting ``offset_h[b]`` after
    the decision instant, each covering ``slots[b]`` of the underlying slots."""

    duration_h: np.ndarray
    slots: np.ndarray

    def __post_init__(self) -> None:
        if len(self.duration_h) == 0 or (np.asarray(self.duration_h) <= 0).any():
            raise InvalidInput("blocks: every duration_h must be > 0 and there must be at least one")

    @property
    def n(self) -> int:
        return len(self.duration_h)

    @property
    def offset_h(self) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(self.duration_h)[:-1]])

    @property
    def end_h(self) -> np.ndarray:
        return np.cumsum(self.duration_h)

    @property
    def end_slot(self) -> np.ndarray:
        """The slot (counted from the plan's start) before which each block ends [slots]."""
        return np.cumsum(self.slots)

    @classmethod
    def uniform(cls, n_slots: int, step_h: float) -> Blocks:
        return cls(np.full(n_slots, step_h), np.ones(n_slots, dtype=int))

    @classmethod
    def telescoping(cls, n_slots: int, step_h: float, fine_slots: int = 8,
                    coarse_blocks: int | None = None, fine_block_slots: int = 1) -> Blocks:
        """Fine blocks first, coarser later: ``fine_slots`` slots in blocks of
        ``fine_block_slots`` (1: one by one), then blocks of 2, 4, 8 … times that,
        ``coarse_blocks`` of each size (default half the fine blocks: each size as often as the
        previous size's span allows). The decisions that are executed come from the first
        blocks, so detail matters most there; fewer and longer blocks make a smaller LP.

        >>> b = Blocks.telescoping(96, 0.5)
        >>> int(b.slots.sum()), b.n
        (96, 22)
        >>> Blocks.telescoping(96, 0.5, fine_slots=4).slots.tolist()
        [1, 1, 1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 32]
        >>> Blocks.telescoping(96, 0.5, fine_slots=4, coarse_blocks=1).slots.tolist()
        [1, 1, 1, 1, 2, 4, 8, 16, 32, 30]
        >>> Blocks.telescoping(96, 0.5, fine_slots=4, coarse_blocks=1, fine_block_slots=4).slots.tolist()
        [4, 8, 16, 32, 36]
        """
        if coarse_blocks is not None:
            coarse_blocks = integer("blocks", "coarse_blocks", coarse_blocks, low=1)
        unit = fine_block_slots
        if not (is_integer(unit) and unit >= 1 and fine_slots % unit == 0):
            raise wrong_type("blocks", "fine_block_slots", unit, f"an integer >= 1 that divides the {fine_slots} "
                             "fine slots (1 plans them one by one)")
        unit = int(unit)
        fine_blocks = fine_slots // unit
        sizes: list[int] = []
        used, size = 0, 1
        while used < n_slots:
            count = fine_blocks if size == 1 else (coarse_blocks or max(1, fine_blocks // 2))
            for _ in range(count):
                if used >= n_slots:
                    break
                take = min(size * unit, n_slots - used)
                sizes.append(take)
                used += take
            size *= 2
        slots = np.asarray(sizes, dtype=int)
        return cls(slots * step_h, slots)

    def started(self, elapsed_h: float) -> Blocks:
        """The blocks seen from ``elapsed_h`` into their first slot: the first block shorter by that
        much, the others unchanged, so that they still end on the slot grid (a plan made between
        two slots, as a live clock makes them).

        >>> Blocks.uniform(3, 0.5).started(0.2).duration_h.tolist()
        [0.3, 0.5, 0.5]
        """
        if elapsed_h == 0:
            return self
        first_slot_h = self.duration_h[0] / self.slots[0]
        if not 0 < elapsed_h < first_slot_h:
            raise InvalidInput(f"blocks: elapsed_h = {elapsed_h!r}; expected a part of the first slot, "
                               f"0 .. {first_slot_h:g} h")
        duration = np.asarray(self.duration_h, dtype=float).copy()
        duration[0] -= elapsed_h
        return Blocks(duration, self.slots)

    def aggregate_mean(self, per_slot: np.ndarray) -> np.ndarray:
        """Mean over each block of an array shaped ``(slot, ...)``."""
        edges = np.concatenate([[0], np.cumsum(self.slots)])
        if len(per_slot) < edges[-1]:
            raise InvalidInput(
                f"blocks: need {edges[-1]} slots of data, got {len(per_slot)}; shorten the horizon"
            )
        sums = np.add.reduceat(per_slot[: edges[-1]], edges[:-1], axis=0)
        return sums / self.slots.reshape((-1,) + (1,) * (per_slot.ndim - 1))


@dataclass(frozen=True, eq=False)
class WorkClasses:
    """Deferrable work (training, fine-tuning, batch inference) grouped into classes.

    allowed[c, s] : site s may run class c (residency, policy);  origin[c] : site index where the
    class's state lies (running or checkpointed), -1 if none yet;
    cap_gpus[c, b] : GPUs the class can use at once [GPU];  due_gpu_h[c, b] : cumulative work
    due by the end of block b [GPU-h];  remaining_gpu_h[c] : work left [GPU-h];
    move_h[c, s] : time a move from the origin to s costs (GPUs idle) [h];
    checkpoint_gb_per_gpu[c] : state to ship per GPU moved [GB/GPU];
    upper_gpu_h[c, b] : cumulative work that *can* be done by the end of block b, given releases
    [GPU-h] (None: all remaining work is available now, the online case);
    running_gpus[c] : GPUs of the class running now [GPU];  restart_h[c] : GPU time one stop and
    restart of the class's jobs loses, per GPU [h] (checkpoint out and back in, start lead). With
    both given the LP charges every GPU it starts — above what runs now, or above the block
    before — at that loss valued at ``gpu_hour_value_jpy``; None: starts are free.
    """

    allowed: np.ndarray
    origin: np.ndarray
    cap_gpus: np.ndarray
    due_gpu_h: np.ndarray
    remaining_gpu_h: np.ndarray
    move_h: np.ndarray
    checkpoint_gb_per_gpu: np.ndarray
    upper_gpu_h: np.ndarray | None = None
    keys: tuple = ()
    running_gpus: np.ndarray | None = None
    restart_h: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.origin)


@dataclass(frozen=True, eq=False)
class ServiceClasses:
    """Online inference: ``demand_gpus[k, b]`` [GPU] to serve from sites with ``allowed[k, s]``."""

    allowed: np.ndarray
    demand_gpus: np.ndarray
    keys: tuple = ()

    @property
    def n(self) -> int:
        return self.allowed.shape[0]


@dataclass(frozen=True, eq=False)
class DRConstraint:
    """A demand-response request as a constraint on an area's fleet load over some blocks.

    area : area index;  blocks : bool mask over blocks;  direction : +1 (上げ, raise) or -1 (下げ);
    target_mw : change asked for when ``ref_block`` >= 0, else the fleet facility load to reach
    (>= for up, <= for down) [MW];  ref_block : if >= 0, the target is relative to the area's
    planned load in that block (used when the reference load is not known yet: the oracle).
    """

    request_id: str
    area: int
    blocks: np.ndarray
    direction: int
    target_mw: float
    ref_block: int = -1


_DEFAULT_WEIGHTS = Weights()


def _weight(name: str):
    """A :class:`PlanningProblem` field for the objective weight ``name`` of
    :class:`wattbit.domain.Weights`, defaulting to Weights' own value (the field names the weight
    it takes; :data:`WEIGHT_FIELDS` is read from these)."""
    return field(default=getattr(_DEFAULT_WEIGHTS, name), metadata={"weight": name})


DR_PENALTY_JPY_PER_MWH = 1_000_000.0
"""Cost of a MWh of demand-response shortfall in the plan [JPY/MWh]. An assumption, not a market
figure: dearer than any energy, carbon or curtailment term per MWh (prices reach 100,000 JPY/MWh),
and cheaper per MWh than the deadline penalty's 50,000 JPY and the unserved-inference penalty's
200,000 JPY per GPU-hour (a GPU-hour draws about 1 kWh: some 50 and 200 M JPY/MWh), so that the
plan meets a request whenever it can without missing a deadline or leaving inference unserved
(docs/assumptions.md, "Objective weights"). What the controller commits is what the plan then
delivers, not the request."""


@dataclass(frozen=True, eq=False)
class PlanningProblem:
    """Everything the LP needs, in arrays.

    site_area[s] : area index of site s;  cap_gpus[s, b] : GPUs available to wattbit [GPU];
    base_mw[s] : facility power with no job running [MW];  mw_per_gpu[s] : facility power per
    busy GPU at full speed [MW/GPU];  price_jpy_per_mwh[a, b];  curtailment_mw[a, b];
    carbon_marginal_g_per_kwh[a, b] : intensity of grid-served energy (thermal margin while the
    area curtails, since the surplus is then used up) [g/kWh].
    """

    blocks: Blocks
    site_area: np.ndarray
    cap_gpus: np.ndarray
    base_mw: np.ndarray
    mw_per_gpu: np.ndarray
    price_jpy_per_mwh: np.ndarray
    curtailment_mw: np.ndarray
    carbon_marginal_g_per_kwh: np.ndarray
    work: WorkClasses
    service: ServiceClasses
    dr: tuple[DRConstraint, ...] = ()
    # the objective's weights, each the Weights field it names, with its default
    carbon_price_jpy_per_t: float = _weight("carbon_price_jpy_per_t")
    curtailment_value_jpy_per_mwh: float = _weight("curtailment_value_jpy_per_mwh")
    deadline_penalty_jpy_per_gpu_h: float = _weight("deadline_penalty_jpy_per_gpu_h")
    unserved_penalty_jpy_per_gpu_h: float = _weight("unserved_inference_penalty_jpy_per_gpu_h")
    move_penalty_jpy_per_gb: float = _weight("move_penalty_jpy_per_gb")
    gpu_hour_value_jpy: float = _weight("gpu_hour_value_jpy")
    dr_penalty_jpy_per_mwh: float = DR_PENALTY_JPY_PER_MWH
    allow_moves: bool = True
    meta: dict = field(default_factory=dict)

    @property
    def n_sites(self) -> int:
        return len(self.site_area)

    @property
    def n_areas(self) -> int:
        return self.price_jpy_per_mwh.shape[0]


WEIGHT_FIELDS: dict[str, str] = {f.name: f.metadata["weight"] for f in fields(PlanningProblem)
                                 if "weight" in f.metadata}
"""Objective field of a :class:`PlanningProblem` → field of :class:`wattbit.domain.Weights`, read
from the problem's fields (where the two vocabularies meet).

>>> WEIGHT_FIELDS["unserved_penalty_jpy_per_gpu_h"]
'unserved_inference_penalty_jpy_per_gpu_h'
"""


def weight_kwargs(weights) -> dict[str, float]:
    """The objective fields of a :class:`PlanningProblem` from a scenario's
    :class:`wattbit.domain.Weights`."""
    return {field: getattr(weights, w) for field, w in WEIGHT_FIELDS.items()}
