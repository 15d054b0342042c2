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


def main() -> None:
    """Console entry point: WattbitError becomes a one-line message and exit code 2."""
    try:
        app()
    except WattbitError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
