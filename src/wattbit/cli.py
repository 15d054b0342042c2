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

# --- twin ------------------------------------------------------------------------------------

# --- service ---------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (keep 127.0.0.1 behind a TLS proxy).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    fleet: Annotated[str, typer.Option(help="Bundled fleet name or a fleet file (.toml/.yaml).")] = "japan-9",
    executor: Annotated[Optional[str], typer.Option(help="slurm | simulated | dry-run (default: slurm with --slurm, else dry-run).")] = None,
    slurm: Annotated[Optional[Path], typer.Option("--slurm", help="Slurm clusters file, one table per site (see docs/service.md); implies --executor slurm.")] = None,
    state_dir: Annotated[Path, typer.Option(help="Folder for the SQLite database and the executor's ledger.")] = Path("wattbit-state"),
    database_url: Annotated[Optional[str], typer.Option(help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in --state-dir).")] = None,
    policy: Annotated[str, typer.Option(help="Controller policy: baseline, temporal, spatial, wls.")] = "wls",
    tick_s: Annotated[float, typer.Option(help="Seconds between controller turns (0: on events only).")] = 60.0,
    horizon_slots: Annotated[int, typer.Option(help="Planner look-ahead [30-min slots].")] = 48,
    lightpath_setup_s: Annotated[Optional[float], typer.Option(help="Lightpath setup time for moves [s] (default: the APN model's).")] = None,
) -> None:
    """Run the control plane's HTTP API. The first admin token comes from WATTBIT_ADMIN_TOKEN."""
    import os

    from wattbit.service import Settings, serve as run

    executor = executor or ("slurm" if slurm is not None else "dry-run")
    settings = Settings(state_dir=state_dir, database_url=database_url, fleet=fleet, executor=executor,
                        slurm_sites=slurm, policy=policy, tick_s=tick_s, horizon_slots=horizon_slots,
                        admin_token=os.environ.get("WATTBIT_ADMIN_TOKEN") or None,
                        lightpath_setup_s=lightpath_setup_s)
    console.print(f"wattbit control plane on http://{host}:{port} (fleet {fleet}, executor {executor}); "
                  f"API docs at /docs")
    run(settings, host=host, port=port)


def main() -> None:
    """Console entry point: WattbitError becomes a one-line message and exit code 2."""
    try:
        app()
    except WattbitError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
