"""Tables of the APN for people: every site pair's path, and the links."""

from __future__ import annotations

import itertools
from pathlib import Path as FilePath

import pandas as pd

from wattbit.domain import Fleet
from wattbit.errors import InvalidInput
from wattbit.network.apn import (
    APN,
    DEFAULT_SLACK_PU,
    DEFAULT_WAVELENGTHS_PER_PAIR,
    build_apn,
    transport_power_w,
)

__all__ = ["format_paths", "links_table", "paths_report", "paths_table"]


def _fleet(fleet: str | FilePath | Fleet) -> Fleet:
    if isinstance(fleet, Fleet):
        return fleet
    from wattbit.scenarios import load_fleet  # scenarios sits above network; import at call time

    return load_fleet(fleet)


def paths_table(apn: APN, move_gb: float = 1000.0) -> pd.DataFrame:
    """One row per site pair: fiber km, one-way latency, all-optical or regenerated, mode, rate,
    GSNR, transport power of one wavelength and the time to move ``move_gb`` [GB]."""
    rows = []
    for a, b in itertools.combinations(apn.sites, 2):
        p = apn.path(a, b)
        rows.append({
            "src": a,
            "dst": b,
            "fiber_km": p.fiber_km,
            "latency_ms": p.latency_s * 1e3,
            "optical": "all-optical" if p.all_optical else f"regen x{len(p.regen_sites)}",
            "rate_gbps": p.rate_gbps,
            "mode": p.mode,
            "gsnr_db": p.gsnr_db,
            "power_w": transport_power_w(p),
            "move_s": apn.move_time_s(move_gb, a, b),
            "regen_sites": " ".join(p.regen_sites),
        })
    return pd.DataFrame(rows)


def links_table(apn: APN) -> pd.DataFrame:
    """One row per APN link."""
    return pd.DataFrame([
        {"link_id": k.link_id, "km": k.length_km, "track_km": k.track_km, "spans": k.spans,
         "wavelengths": k.wavelengths, "line": k.line, "estimated": k.estimated}
        for k in apn.links
    ])


def format_paths(table: pd.DataFrame, move_gb: float) -> str:
    """Fixed-width text of :func:`paths_table` (what ``wattbit network paths`` prints)."""
    head = (f"{'src':<12} {'dst':<12} {'fiber km':>8} {'one-way ms':>10} {'optical':<11} "
            f"{'rate Gbps':>9} {'mode':<15} {'GSNR dB':>7} {'move ' + format(move_gb / 1000, 'g') + ' TB s':>12}")
    lines = [head, "-" * len(head)]
    for r in table.itertuples():
        lines.append(
            f"{r.src:<12} {r.dst:<12} {r.fiber_km:>8.0f} {r.latency_ms:>10.2f} {r.optical:<11} "
            f"{r.rate_gbps:>9.0f} {r.mode:<15} {r.gsnr_db:>7.1f} {r.move_s:>12.1f}"
        )
    regen = table[table.regen_sites != ""]
    for r in regen.itertuples():
        lines.append(f"regenerators {r.src} - {r.dst}: {r.regen_sites}")
    return "\n".join(lines)


def paths_report(
    fleet: str | FilePath | Fleet = "japan-9",
    *,
    move_gb: float = 1000.0,
    fiber_pairs: int = 1,
    wavelengths_per_pair: int = DEFAULT_WAVELENGTHS_PER_PAIR,
    slack_pu: float = DEFAULT_SLACK_PU,
) -> str:
    """Build the fleet's APN and return the path table as text.

    fleet : bundled fleet name, fleet file or Fleet;  move_gb : data moved in the move-time
    column [GB];  fiber_pairs, wavelengths_per_pair, slack_pu : as in build_apn
    """
    apn = build_apn(_fleet(fleet), fiber_pairs=fiber_pairs, wavelengths_per_pair=wavelengths_per_pair, slack_pu=slack_pu)
    return format_paths(paths_table(apn, move_gb), move_gb)


def links_report(fleet: str | FilePath | Fleet = "japan-9", *, fiber_pairs: int = 1,
                 wavelengths_per_pair: int = DEFAULT_WAVELENGTHS_PER_PAIR, slack_pu: float = DEFAULT_SLACK_PU) -> str:
    """Build the fleet's APN and return its links as text."""
    apn = build_apn(_fleet(fleet), fiber_pairs=fiber_pairs, wavelengths_per_pair=wavelengths_per_pair, slack_pu=slack_pu)
    t = links_table(apn)
    head = f"{'link':<28} {'fiber km':>8} {'track km':>8} {'spans':>5} {'λ':>4}  line"
    lines = [head, "-" * 100]
    for r in t.itertuples():
        flag = "  (estimated)" if r.estimated and "estimated" not in r.line and r.line != "access" else ""
        lines.append(f"{r.link_id:<28} {r.km:>8.1f} {r.track_km:>8.1f} {r.spans:>5} {r.wavelengths:>4}  {r.line}{flag}")
    lines.append(f"always-on line system power: {apn.line_system_power_w() / 1e3:.1f} kW")
    return "\n".join(lines)


def move_report(size_gb: float, src: str, dst: str, fleet: str | FilePath | Fleet = "japan-9", *,
                wavelengths: int = 1, concurrent_moves: int = 1) -> str:
    """Build the fleet's APN and return the breakdown of one move as text."""
    if src == dst:
        raise InvalidInput(f"move: source and destination are both {src!r}; a move joins two different sites")
    apn = build_apn(_fleet(fleet))
    p = apn.path(src, dst)
    b = apn.move_breakdown(size_gb, src, dst, wavelengths, concurrent_moves)
    c = apn.params
    return "\n".join([
        (f"{size_gb:g} GB {src} -> {dst}: {p.fiber_km:.0f} km, one-way {p.latency_s * 1e3:.2f} ms, "
         f"{'all-optical' if p.all_optical else 'regenerated at ' + ', '.join(p.regen_sites)}, "
         f"{wavelengths} x {p.rate_gbps:g} Gbit/s ({p.mode})"),
        f"  checkpoint write  {b.write_s:9.1f} s   ({c.storage_write_gbps:g} Gbit/s storage)",
        (f"  transfer          {b.transfer_s:9.1f} s   ({b.rate_gbps:.0f} Gbit/s goodput, "
         f"efficiency {c.transfer_efficiency_pu:g}; BDP {b.bdp_gb * 1e3:.0f} MB"
         f"{', window-bound' if b.window_limited else ''})"),
        f"  restore           {b.restore_s:9.1f} s   ({c.storage_read_gbps:g} Gbit/s storage)",
        f"  lightpath setup   {b.setup_s:9.1f} s",
        f"  total             {b.total_s:9.1f} s   transport power {transport_power_w(p, wavelengths):.0f} W",
    ])
