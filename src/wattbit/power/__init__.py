"""Accelerator, node and facility power models (see :mod:`wattbit.power.model`)."""

from wattbit.power.model import (
    NODE_OVERHEAD_FIXED_SHARE_PU,
    NODE_OVERHEAD_W_PER_GPU,
    AcceleratorPower,
    accelerator_power,
    energy_per_work_pu,
    facility_power_mw,
    fleet_power_table,
    gpu_power_w,
    known_accelerators,
    node_overhead_w_per_gpu,
    power_coefficients,
    site_facility_power_max_mw,
    site_it_power_mw,
    throttled_mw_per_gpu,
    work_rate_pu,
)

__all__ = [
    "NODE_OVERHEAD_FIXED_SHARE_PU",
    "NODE_OVERHEAD_W_PER_GPU",
    "AcceleratorPower",
    "accelerator_power",
    "energy_per_work_pu",
    "facility_power_mw",
    "fleet_power_table",
    "gpu_power_w",
    "known_accelerators",
    "node_overhead_w_per_gpu",
    "power_coefficients",
    "site_facility_power_max_mw",
    "site_it_power_mw",
    "throttled_mw_per_gpu",
    "work_rate_pu",
]
