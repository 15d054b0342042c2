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

FleetArg = Annotated[str, typer.Option("--fleet", help="Bundled fleet name or a fleet TOML/YAML file.")]


@network_app.command("paths")
def network_paths(
    fleet: FleetArg = "japan-9",
    move_gb: Annotated[float, typer.Option("--move-gb", help="Data moved in the move-time column [GB].")] = 1000.0,
    fiber_pairs: Annotated[int, typer.Option(help="Fiber pairs per link.")] = 1,
    wavelengths_per_pair: Annotated[int, typer.Option(help="Wavelengths per fiber pair (64 = 75 GHz grid).")] = 64,
    slack_pu: Annotated[float, typer.Option(help="Fiber length / track length.")] = 1.03,
) -> None:
    """Every site pair: fiber km, one-way latency, all-optical or regenerated, best rate, move time."""
    from wattbit.network.report import paths_report

    typer.echo(paths_report(fleet, move_gb=move_gb, fiber_pairs=fiber_pairs,
                            wavelengths_per_pair=wavelengths_per_pair, slack_pu=slack_pu))


@network_app.command("links")
def network_links(
    fleet: FleetArg = "japan-9",
    fiber_pairs: Annotated[int, typer.Option(help="Fiber pairs per link.")] = 1,
    wavelengths_per_pair: Annotated[int, typer.Option(help="Wavelengths per fiber pair.")] = 64,
    slack_pu: Annotated[float, typer.Option(help="Fiber length / track length.")] = 1.03,
) -> None:
    """The APN's links: fiber and track km, amplified spans, wavelengths, railway line."""
    from wattbit.network.report import links_report

    typer.echo(links_report(fleet, fiber_pairs=fiber_pairs, wavelengths_per_pair=wavelengths_per_pair, slack_pu=slack_pu))


@network_app.command("move")
def network_move(
    size_gb: Annotated[float, typer.Argument(help="Checkpoint size [GB].")],
    src: Annotated[str, typer.Argument(help="Source site.")],
    dst: Annotated[str, typer.Argument(help="Destination site.")],
    fleet: FleetArg = "japan-9",
    wavelengths: Annotated[int, typer.Option(help="Wavelengths allocated to the move.")] = 1,
    concurrent_moves: Annotated[int, typer.Option(help="Moves sharing those wavelengths.")] = 1,
) -> None:
    """Time to move a job's state between two sites, part by part."""
    from wattbit.network.report import move_report

    typer.echo(move_report(size_gb, src, dst, fleet, wavelengths=wavelengths, concurrent_moves=concurrent_moves))

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
