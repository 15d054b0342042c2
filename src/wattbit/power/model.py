"""Accelerator, node and facility power of an AI data center.

Three layers, as in the physics:

1. one accelerator: :func:`gpu_power_w` and :func:`work_rate_pu` against its duty cycle,
   interpolated from a measurement (H200: ``resources/power/h200.json``);
2. one site's IT power: idle power of every installed GPU, plus the extra power of the busy
   ones, plus node overhead (CPU, memory, NICs, NVSwitch, fans) — :func:`site_it_power_mw`;
3. facility power = IT power × PUE — :func:`facility_power_mw`.

For a fixed duty cycle the site's power is *linear* in the number of busy GPUs, which is what the
LP planner uses: :func:`power_coefficients` gives ``facility MW = base_mw + mw_per_busy_gpu × busy``
at full duty, and :func:`throttled_mw_per_gpu` / :func:`work_rate_pu` the same slope and the work
done at a lower duty cycle.

**Throttling costs more throughput than it saves power.** From the H200 measurement, at 50 % duty a
GPU draws 76 % of its full-load power (518.7 of 685.6 W) and does 60 % of the work (395.8 of
657.1 TFLOP/s); at 25 % duty 52 % of the power for 33 % of the work. The *extra* power over idle
(what a busy GPU adds) falls faster: 71 % at 50 % duty, 42 % at 25 % — so throttling a busy GPU
sheds power, but every MWh it sheds costs more GPU-hours than suspending whole GPUs would:
energy per unit of work rises as the job is throttled (see :func:`energy_per_work_pu`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from wattbit.domain import Job, Site
from wattbit.errors import InvalidInput, unknown_name

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CHECKPOINT_WRITE_GB_PER_S_PER_GPU",
    "NODE_OVERHEAD_FIXED_SHARE_PU",
    "NODE_OVERHEAD_W_PER_GPU",
    "START_LEAD_S",
    "THROTTLE_LEAD_S",
    "AcceleratorPower",
    "accelerator_power",
    "checkpoint_s",
    "energy_per_work_pu",
    "facility_power_mw",
    "fleet_power_table",
    "gpu_power_w",
    "known_accelerators",
    "node_overhead_w_per_gpu",
    "power_coefficients",
    "restart_h_per_gpu",
    "site_facility_power_max_mw",
    "site_it_power_mw",
    "throttled_mw_per_gpu",
    "work_rate_pu",
]

NODE_OVERHEAD_W_PER_GPU = 575.0
"""Power of everything in a GPU server except the GPUs, per GPU, at full load [W].

Source: NVIDIA DGX H200 (and DGX H100) user guide / datasheet, "system power usage ~10.2 kW max"
for an 8-GPU node with 8 × 700 W GPUs: (10,200 − 8 × 700) / 8 = 575 W per GPU for the two CPUs,
memory, NVSwitch, NICs, storage and fans. It is a maximum, so the IT power model errs high.
"""

NODE_OVERHEAD_FIXED_SHARE_PU = 0.5
"""Share of the node overhead drawn whatever the GPUs do (CPUs idle, memory, NICs, switches,
fans at low speed) [pu]; the rest scales with the GPUs' dynamic power (fans, CPU feeding work).

Assumption (docs/assumptions.md, "Fleet and power"): no public split for HGX H200 nodes; half is
a middle value between an overhead that is all fixed and one that is all load-driven.
"""


CHECKPOINT_WRITE_GB_PER_S_PER_GPU = 0.56
"""Checkpoint write (and restore) rate per GPU [GB/s]: ``torch.save`` of a bf16 + Adam state to
local disk measured on an H200 node (../shared/data/accelerator-power/h200-measured.json,
``checkpoint.torch_save_to_local_disk_gb_per_s`` = 0.56). Shards are written in parallel, one
per GPU."""

START_LEAD_S = 30.0
"""Time from a start command to the job drawing full power [s]: scheduler dispatch plus process
and CUDA-context start. Assumption (docs/assumptions.md, "Action lead times")."""

THROTTLE_LEAD_S = 1.0
"""Time for a power-cap/duty change to take effect [s]: an NVML power-limit or duty change acts
within about a second. Assumption (docs/assumptions.md, "Action lead times")."""


def checkpoint_s(job: Job) -> float:
    """Time to write (or read back) a job's checkpoint, shards in parallel [s]: a 1,120 GB state
    (70 B parameters × 16 B) on 64 GPUs takes 1120 / 64 / 0.56 = 31 s."""
    if job.checkpoint_gb <= 0:
        return 0.0
    return job.checkpoint_gb / job.gpus / CHECKPOINT_WRITE_GB_PER_S_PER_GPU


def restart_h_per_gpu(checkpoint_gb_per_gpu: float | np.ndarray) -> float | np.ndarray:
    """GPU time lost to one stop and restart of a job, per GPU [h]: its checkpoint written at the
    stop and read back at the restart, plus the start lead (:data:`START_LEAD_S`). A 70 B model
    on 64 GPUs (17.5 GB per GPU): (2 × 17.5 / 0.56 + 30) / 3600 = 0.0257 h.

    >>> round(restart_h_per_gpu(17.5), 4)
    0.0257
    """
    out = (2.0 * np.asarray(checkpoint_gb_per_gpu, dtype=float) / CHECKPOINT_WRITE_GB_PER_S_PER_GPU
           + START_LEAD_S) / 3600.0
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True, slots=True)
class AcceleratorPower:
    """A measured power/throughput curve of one accelerator against duty cycle.

    name : key (``"h200"``);  duty_pu : measured duty cycles, ascending from 0 to 1 [pu];
    power_w : average power at each duty cycle [W] (duty 0 = idle with a CUDA context);
    work_pu : throughput at each duty cycle relative to duty 1 [pu];
    training_w : average power in a real training step [W];  power_limit_w : board limit [W];
    source : where the numbers come from.
    """

    name: str
    duty_pu: tuple[float, ...]
    power_w: tuple[float, ...]
    work_pu: tuple[float, ...]
    training_w: float
    power_limit_w: float
    source: str

    @property
    def idle_w(self) -> float:
        """Power of an allocated but idle GPU (duty 0) [W]."""
        return self.power_w[0]

    @property
    def full_w(self) -> float:
        """Power at full duty [W]."""
        return self.power_w[-1]


def known_accelerators() -> tuple[str, ...]:
    """Accelerators with a bundled power curve.

    >>> known_accelerators()
    ('h200',)
    """
    folder = resources.files("wattbit") / "resources" / "power"
    return tuple(sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")))


@cache
def accelerator_power(accelerator: str = "h200") -> AcceleratorPower:
    """The bundled power curve of an accelerator.

    >>> accelerator_power("h200").full_w
    685.6
    >>> accelerator_power("h100x")
    Traceback (most recent call last):
    ...
    wattbit.errors.UnknownName: accelerator: accelerator 'h100x' not found; did you mean 'h200'? (known: h200)
    """
    res = resources.files("wattbit") / "resources" / "power" / f"{accelerator}.json"
    if not res.is_file():
        raise unknown_name("accelerator", accelerator, known_accelerators(), field="accelerator")
    raw = json.loads(res.read_text(encoding="utf-8"))
    curve = raw["duty_curve"]
    tflops = curve["tflops"]
    return AcceleratorPower(
        name=raw["accelerator"],
        duty_pu=tuple(curve["duty_pu"]),
        power_w=tuple(curve["power_w"]),
        work_pu=tuple(t / tflops[-1] for t in tflops),
        training_w=raw["training_w"],
        power_limit_w=raw["power_limit_w"],
        source=raw["source"],
    )


def _check_duty(duty_pu: float, where: str) -> None:
    """A duty cycle must be a number in [0, 1]; NaN, a value outside (which ``np.interp`` would
    clamp) or a non-number raises InvalidInput naming the value and the fix. One comparison on
    the hot path."""
    try:
        if 0.0 <= duty_pu <= 1.0:  # False for NaN
            return
    except TypeError:
        pass
    raise InvalidInput(
        f"{where}: duty_pu = {duty_pu!r}; expected a duty cycle in [0, 1] (share of time the GPU "
        "computes: 1 = full duty, 0 = idle); clamp or rescale it, e.g. 0.5 for half duty"
    )


def gpu_power_w(duty_pu: float, accelerator: str = "h200") -> float:
    """Average power of one busy accelerator at a duty cycle, interpolated linearly between the
    measured points [W].

    duty_pu : share of time the GPU computes [0..1]; 0 = idle with a CUDA context.
    Source: ``resources/power/h200.json`` (H200 SXM, bf16 GEMM at duty 0/25/50/75/100 %:
    120.1 / 358.2 / 518.7 / 647.8 / 685.6 W; a real training step drew 640.3 W).

    >>> gpu_power_w(1.0)
    685.6
    >>> gpu_power_w(0.5)
    518.7
    >>> round(gpu_power_w(0.6), 2)  # between the 50 % and 75 % points
    570.34
    >>> gpu_power_w(1.5)
    Traceback (most recent call last):
    ...
    wattbit.errors.InvalidInput: gpu_power_w: duty_pu = 1.5; expected a duty cycle in [0, 1] (share of time the GPU computes: 1 = full duty, 0 = idle); clamp or rescale it, e.g. 0.5 for half duty
    """
    _check_duty(duty_pu, "gpu_power_w")
    curve = accelerator_power(accelerator)
    return float(np.interp(duty_pu, curve.duty_pu, curve.power_w))


def work_rate_pu(duty_pu: float, accelerator: str = "h200") -> float:
    """Throughput at a duty cycle relative to full duty [pu] (measured bf16 GEMM TFLOP/s).

    A job throttled to ``duty_pu`` needs ``runtime_h / work_rate_pu(duty_pu)`` hours.

    >>> round(work_rate_pu(0.5), 3)   # 395.8 / 657.1 TFLOP/s
    0.602
    >>> work_rate_pu(0.0)
    0.0
    """
    _check_duty(duty_pu, "work_rate_pu")
    curve = accelerator_power(accelerator)
    return float(np.interp(duty_pu, curve.duty_pu, curve.work_pu))


def energy_per_work_pu(duty_pu: float, accelerator: str = "h200") -> float:
    """GPU energy per unit of work at a duty cycle, relative to full duty [pu]; above 1 means
    throttling wastes energy.

    >>> round(energy_per_work_pu(0.5), 2)   # 0.757 of the power for 0.602 of the work
    1.26
    >>> round(energy_per_work_pu(0.25), 2)
    1.56
    """
    _check_duty(duty_pu, "energy_per_work_pu")
    curve = accelerator_power(accelerator)
    rate = work_rate_pu(duty_pu, accelerator)
    if rate <= 0.0:
        raise InvalidInput(
            f"energy_per_work_pu: duty_pu = {duty_pu!r}; a GPU at that duty does no work "
            f"(work rate {rate:g}), so energy per unit of work is undefined; expected a duty cycle "
            "in (0, 1], e.g. 0.25"
        )
    return (gpu_power_w(duty_pu, accelerator) / curve.full_w) / rate


def node_overhead_w_per_gpu(duty_pu: float = 1.0, busy: bool = True, accelerator: str = "h200") -> float:
    """Node overhead (CPUs, memory, NICs, NVSwitch, fans) per GPU [W].

    A fixed share :data:`NODE_OVERHEAD_FIXED_SHARE_PU` of :data:`NODE_OVERHEAD_W_PER_GPU` is drawn
    by every installed GPU's node; the rest scales with the GPU's dynamic power
    (``gpu_power_w(duty) − idle``) relative to full load.

    >>> node_overhead_w_per_gpu(busy=False)
    287.5
    >>> node_overhead_w_per_gpu(1.0)
    575.0
    """
    _check_duty(duty_pu, "node_overhead_w_per_gpu")
    fixed = NODE_OVERHEAD_W_PER_GPU * NODE_OVERHEAD_FIXED_SHARE_PU
    if not busy:
        return fixed
    curve = accelerator_power(accelerator)
    dynamic_pu = (gpu_power_w(duty_pu, accelerator) - curve.idle_w) / (curve.full_w - curve.idle_w)
    return fixed + NODE_OVERHEAD_W_PER_GPU * (1.0 - NODE_OVERHEAD_FIXED_SHARE_PU) * dynamic_pu


def _busy_extra_w(duty_pu: float, accelerator: str) -> float:
    """What one busy GPU adds over an idle one, its node share included [W]."""
    curve = accelerator_power(accelerator)
    return (gpu_power_w(duty_pu, accelerator) - curve.idle_w) + (
        node_overhead_w_per_gpu(duty_pu, True, accelerator) - node_overhead_w_per_gpu(busy=False)
    )


def site_it_power_mw(site: Site, busy_gpus: float, duty_pu: float = 1.0) -> float:
    """IT power of a site [MW]: every installed GPU idles, the busy ones add their extra power at
    ``duty_pu``, and the nodes add their overhead. Linear in ``busy_gpus`` at a fixed duty.

    site : the site;  busy_gpus : GPUs running work [-] (base-load GPUs included);
    duty_pu : duty cycle of the busy GPUs [0..1].

    >>> from wattbit.examples import tiny_fleet
    >>> s = tiny_fleet().site("kyushu-dc")          # 512 H200
    >>> round(site_it_power_mw(s, 0), 4)            # 512 × (120.1 + 287.5) W
    0.2087
    >>> round(site_it_power_mw(s, 512), 4)          # 512 × (685.6 + 575) W = 645.4 kW
    0.6454
    """
    if not (0.0 <= busy_gpus <= site.gpu_count):
        raise InvalidInput(
            f"site {site.name!r}: busy_gpus = {busy_gpus!r}; expected 0..{site.gpu_count} "
            "(the GPUs installed there)"
        )
    curve = accelerator_power(site.accelerator)
    idle_w = site.gpu_count * (curve.idle_w + node_overhead_w_per_gpu(busy=False))
    return (idle_w + busy_gpus * _busy_extra_w(duty_pu, site.accelerator)) / 1e6


def facility_power_mw(site: Site, it_power_mw: float) -> float:
    """Facility power = IT power × PUE [MW].

    >>> from wattbit.examples import tiny_fleet
    >>> facility_power_mw(tiny_fleet().site("tokyo-dc"), 1.0)
    1.35
    """
    return it_power_mw * site.pue


def power_coefficients(site: Site) -> tuple[float, float]:
    """Linear facility-power model of a site at full duty:
    ``facility MW = base_mw + mw_per_busy_gpu × busy_gpus``.

    Returns (base_mw [MW], mw_per_busy_gpu [MW/GPU]).

    >>> from wattbit.examples import tiny_fleet
    >>> base, slope = power_coefficients(tiny_fleet().site("kyushu-dc"))
    >>> round(base, 4), round(slope * 1e6, 2)      # MW, W per busy GPU (× PUE 1.25)
    (0.2609, 1066.25)
    """
    base_mw = facility_power_mw(site, site_it_power_mw(site, 0.0))
    return base_mw, throttled_mw_per_gpu(site, 1.0)


def throttled_mw_per_gpu(site: Site, duty_pu: float) -> float:
    """Facility power one busy GPU adds over an idle one at a duty cycle [MW/GPU] (the LP slope
    for a throttled job). Pair it with :func:`work_rate_pu` for the work it does.

    >>> from wattbit.examples import tiny_fleet
    >>> s = tiny_fleet().site("kyushu-dc")
    >>> round(throttled_mw_per_gpu(s, 0.5) / throttled_mw_per_gpu(s, 1.0), 3)  # power kept
    0.705
    >>> round(work_rate_pu(0.5), 3)                                              # work kept
    0.602
    """
    return _busy_extra_w(duty_pu, site.accelerator) * site.pue / 1e6


def site_facility_power_max_mw(site: Site) -> float:
    """Facility power with every GPU busy at full duty [MW].

    >>> from wattbit.examples import tiny_fleet
    >>> round(site_facility_power_max_mw(tiny_fleet().site("kyushu-dc")), 4)
    0.8068
    """
    return facility_power_mw(site, site_it_power_mw(site, site.gpu_count, 1.0))


def fleet_power_table(fleet) -> pd.DataFrame:
    """One row per site: area, GPUs, PUE, IT cap, idle/full-load IT power and facility power [MW],
    and the LP coefficients; a last row ``total``.

    >>> from wattbit.examples import tiny_fleet
    >>> t = fleet_power_table(tiny_fleet())
    >>> int(t.loc["total", "gpus"]), bool((t["it_full_mw"] <= t["it_power_max_mw"]).all())
    (2048, True)
    """
    import pandas as pd

    rows = {}
    for s in fleet.sites:
        base, slope = power_coefficients(s)
        rows[s.name] = {
            "area": s.area, "lat": s.lat, "lon": s.lon, "accelerator": s.accelerator,
            "gpus": s.gpu_count, "pue": s.pue, "it_power_max_mw": s.it_power_max_mw,
            "it_idle_mw": site_it_power_mw(s, 0.0), "it_full_mw": site_it_power_mw(s, s.gpu_count),
            "facility_full_mw": site_facility_power_max_mw(s),
            "base_mw": base, "kw_per_busy_gpu": slope * 1e3,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    total = table[["gpus", "it_power_max_mw", "it_idle_mw", "it_full_mw", "facility_full_mw", "base_mw"]].sum()
    table.loc["total", total.index] = total
    table.loc["total", ["area", "accelerator"]] = ["", ""]
    table["gpus"] = table["gpus"].astype(int)
    table.index.name = "site"
    return table
