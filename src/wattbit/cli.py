"""The ``wattbit`` command line. Each command parses its options and calls one library function;
no policy or model logic lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from wattbit.errors import WattbitError

app = typer.Typer(
    name="wattbit",
    help="Workload Shift for Japan's distributed AI data centers: digital twin and control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()

DataDir = Annotated[
    Optional[Path],
    typer.Option("--data", help="Dataset folder written by `wattbit data import` (default: bundled FY2021-FY2022)."),
]

# --- data ------------------------------------------------------------------------------------
data_app = typer.Typer(help="Import and summarise grid data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# --- network ---------------------------------------------------------------------------------
network_app = typer.Typer(help="The All-Photonics Network: paths, latency, move times.", no_args_is_help=True)
app.add_typer(network_app, name="network")

# --- fleet and workload ----------------------------------------------------------------------
fleet_app = typer.Typer(help="Fleets and workloads.", no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")


def _print_frame(frame, title: str, digits: int = 2) -> None:
    """Print a DataFrame as a rich table (index first, numbers rounded)."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    out = Console(width=max(console.width, 120))
    table = Table(title=title, title_justify="left")
    index_names = [n or "" for n in (frame.index.names or [""])]
    for name in index_names:
        table.add_column(str(name), style="bold")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for idx, row in frame.iterrows():
        keys = idx if isinstance(idx, tuple) else (idx,)
        cells = []
        for v in row:
            if isinstance(v, (bool, np.bool_)):
                cells.append("yes" if v else "NO")
            elif isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
                cells.append(f"{int(v):,}")
            elif isinstance(v, (float, np.floating)):
                cells.append(f"{v:,.{digits}f}")
            else:
                cells.append(str(v))
        table.add_row(*[str(k) for k in keys], *cells)
    out.print(table)


@fleet_app.command("show")
def fleet_show(
    fleet: Annotated[str, typer.Argument(help="Bundled fleet name or fleet file.")] = "japan-9",
) -> None:
    """Sites of a fleet with GPUs, PUE, IT cap and modelled power [MW]."""
    from wattbit.power import fleet_power_table
    from wattbit.scenarios import load_fleet

    f = load_fleet(fleet)
    table = fleet_power_table(f)[
        ["area", "gpus", "pue", "it_power_max_mw", "it_idle_mw", "it_full_mw", "facility_full_mw"]
    ].astype(object).fillna("")
    table.columns = ["area", "GPUs", "PUE", "IT cap MW", "IT idle MW", "IT full MW", "facility full MW"]
    _print_frame(table, f"fleet {f.name}: {len(f.sites)} sites, {f.gpu_count:,} H200-class GPUs")


@fleet_app.command("workload")
def fleet_workload(
    start: Annotated[Optional[str], typer.Option(help="Release window start, JST (default: the scenario's).")] = None,
    end: Annotated[Optional[str], typer.Option(help="Release window end, JST, exclusive (default: the scenario's).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default: the scenario's).")] = None,
    scenario: Annotated[str, typer.Option(help="Bundled scenario name or scenario file.")] = "default",
    source: Annotated[Optional[str], typer.Option(help="'traces' or 'synthetic' (default: the scenario's).")] = None,
) -> None:
    """Build a scenario's jobs and print the mix beside the traces it came from."""
    import dataclasses

    from wattbit.domain._validate import to_timestamp
    from wattbit.scenarios import load_scenario
    from wattbit.workload import describe_workload

    sc = load_scenario(scenario)
    spec = sc.workload
    if seed is not None:
        spec = dataclasses.replace(spec, seed=seed)
    if source is not None:
        spec = dataclasses.replace(spec, source=source)
    t0 = to_timestamp(start) if start else sc.start
    t1 = to_timestamp(end) if end else sc.end
    reports = describe_workload(sc.fleet, spec, t0, t1)
    span = f"{t0.tz_convert('Asia/Tokyo'):%Y-%m-%d %H:%M} .. {t1.tz_convert('Asia/Tokyo'):%Y-%m-%d %H:%M} JST"
    mix = reports["mix"][["jobs", "gpu_h", "gpu_h_share_pu", "gpus_p50", "gpus_max", "runtime_h_p50",
                          "runtime_h_mean", "runtime_h_p90", "resident_share_pu"]]
    mix.columns = ["jobs", "GPU-h", "share", "GPUs p50", "GPUs max", "h p50", "h mean", "h p90", "resident"]
    _print_frame(mix, f"workload mix: {sc.fleet.name}, {span}, source {spec.source}, seed {spec.seed}")
    _print_frame(reports["sizes"].rename(columns=lambda c: c.replace("_inference", "_inf")),
                 "share of each kind's jobs by GPU count", digits=3)
    _print_frame(reports["trace"], "built jobs beside the traces (openb pods, Philly run times)", digits=3)

# --- twin ------------------------------------------------------------------------------------


def main() -> None:
    """Console entry point: WattbitError becomes a one-line message and exit code 2."""
    try:
        app()
    except WattbitError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
