"""The ``wattbit`` command line. Each command parses its options and calls one library function;
no policy or model logic lives here."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from wattbit.errors import InvalidInput, SweepFailed, WattbitError
from wattbit.units import JST, jst_minute

app = typer.Typer(
    name="wattbit",
    help="Workload Shift for Japan's distributed AI data centers: digital twin and control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts carry units in brackets ("[s]"), not markup
)
console = Console()

DataDir = Annotated[
    Path | None,
    typer.Option("--data", help="Dataset folder written by `wattbit data import` (default: bundled FY2021-FY2022)."),
]

# --- data ------------------------------------------------------------------------------------
data_app = typer.Typer(help="Import and summarise grid data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _when(text: str | None, option: str):
    """An instant given on the command line (JST unless it names a zone), as a UTC timestamp; None
    stays None. Text that is no date is refused naming the option."""
    import pandas as pd

    from wattbit.domain._validate import to_timestamp

    if text is None:
        return None
    try:
        ts = to_timestamp(text)
    except ValueError:
        ts = pd.NaT
    if pd.isna(ts):  # (an empty text parses as NaT)
        raise InvalidInput(f"{option} = {text!r} is not a date or time; give e.g. 2023-03-06 or "
                           "'2023-03-06 18:00' (JST unless a zone is given, e.g. 2023-03-06T09:00+00:00)")
    return ts


IGNORED_SHOWN = 20
"""Ignored files `data import` names one by one (the count covers the rest)."""


def _num(x: float, fmt: str) -> str:
    return "n/a" if math.isnan(x) else format(x, fmt)


@data_app.command("import")
def data_import(
    raw_dir: Annotated[Path, typer.Argument(help="Folder of raw TSO/TEPCO/JEPX files (searched recursively).")],
    out: Annotated[Path, typer.Option("--out", help="Dataset folder to write.")],
) -> None:
    """Read, validate and convert raw grid files into wattbit's compact dataset."""
    from rich import box
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from wattbit.data import import_raw

    with Progress(TextColumn("[bold]import"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  console=console, transient=True) as bar:
        task = bar.add_task("", total=None)
        report = import_raw(raw_dir, out, progress=lambda done, total, f: bar.update(task, completed=done, total=total, description=f))
    table = Table(title=f"imported into {report.out_dir}", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True, show_edge=False)
    for col in ("area", "first (JST)", "last (JST)", "hours"):
        table.add_column(col, justify="right" if col == "hours" else "left")
    for area, (a, b, n) in report.coverage.items():
        table.add_row(area, jst_minute(a), jst_minute(b), f"{n:,}")
    if report.price_coverage:
        a, b, n = report.price_coverage
        table.add_row("JEPX prices", jst_minute(a), jst_minute(b), f"{n:,} slots")
    console.print(table)
    console.print(f"{len(report.sources)} files read, {len(report.ignored)} other files ignored", highlight=False)
    shown = IGNORED_SHOWN
    for name in report.ignored[:shown]:
        console.print(f"  ignored: {name}", highlight=False, markup=False)
    if len(report.ignored) > shown:
        console.print(f"  ... and {len(report.ignored) - shown} more", highlight=False)
    if report.summary_check is not None:
        worst = report.summary_check["rel_diff"].abs().max()
        console.print(f"curtailment totals vs the source's summaries: largest difference {worst:.3%}")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(str(w))}")


@data_app.command("summary")
def data_summary(data: DataDir = None) -> None:
    """Per area and fiscal year: demand, solar and wind TWh, curtailment, mean JEPX price."""
    from rich import box
    from rich.table import Table

    from wattbit.data import summary

    df = summary(data)
    table = Table(title="grid data per area and fiscal year (April-March)", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True, show_edge=False)
    heads = ("area", "FY", "hours", "demand\nTWh", "solar\nTWh", "wind\nTWh", "curtailed\nMWh", "curtailed\n%",
             "mean price\nJPY/MWh")
    for i, h in enumerate(heads):
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
    for r in df.itertuples():
        table.add_row(
            r.area, str(r.fiscal_year), f"{r.hours:,}", _num(r.demand_twh, ".2f"), _num(r.solar_twh, ".2f"),
            _num(r.wind_twh, ".2f"), _num(r.curtailed_mwh, ",.0f"), _num(r.curtailed_pct, ".2f"),
            _num(r.mean_price_jpy_per_mwh, ",.0f"),
        )
    console.print(table)
    console.print("n/a: the source has no such column (Tokyo: demand and solar only; no solar before FY2022).")


@data_app.command("forecast-error")
def data_forecast_error(
    data: DataDir = None,
    start: Annotated[str | None, typer.Option(help="Period start, e.g. 2022-04-01 (JST if no zone given).")] = None,
    end: Annotated[str | None, typer.Option(help="Period end (exclusive).")] = None,
    step_s: Annotated[int, typer.Option("--step-s", help="Slot length [s]: 1800 or 3600.")] = 1800,
    horizon_h: Annotated[float, typer.Option("--horizon-h", help="Forecast horizon [h].")] = 24.0,
    every: Annotated[int, typer.Option(help="Issue a forecast every N slots.")] = 4,
) -> None:
    """Error of the seasonal-persistence forecaster per area and signal (MAE, bias)."""
    from rich import box
    from rich.table import Table

    from wattbit.grid.forecast import evaluate_forecaster

    if not horizon_h > 0:
        raise InvalidInput(f"--horizon-h = {horizon_h:g}; give the forecast horizon in hours, > 0 (e.g. 24)")
    err = evaluate_forecaster(_when(start, "--start"), _when(end, "--end"), step_s, horizon_h, every, data)
    a, b = err.attrs["start"], err.attrs["end"]
    table = Table(title=(f"forecast error, {a.tz_convert(JST):%Y-%m-%d} .. {b.tz_convert(JST):%Y-%m-%d} JST, "
                         f"horizon {horizon_h:g} h, issued every {every} slots"), box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True, show_edge=False)
    for i, h in enumerate(("area", "signal", "MAE", "bias", "mean truth", "MAE %\nof mean")):
        table.add_column(h, justify="left" if i < 2 else "right", no_wrap=True)
    for (area, signal), r in err.iterrows():
        table.add_row(area, signal, f"{r.mae:,.1f}", f"{r.bias:+,.1f}", f"{r.mean_truth:,.1f}", _num(r.mae_pct, ".1f"))
    console.print(table)

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
    for values in frame.itertuples(index=True, name=None):  # (iterrows would make counts floats)
        idx, row = values[0], values[1:]
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
    start: Annotated[str | None, typer.Option(help="Release window start, JST (default: the scenario's).")] = None,
    end: Annotated[str | None, typer.Option(help="Release window end, JST, exclusive (default: the scenario's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).")] = None,
    scenario: Annotated[str, typer.Option(help="Bundled scenario name or scenario file.")] = "default",
    source: Annotated[str | None, typer.Option(help="'traces' or 'synthetic' (default: the scenario's).")] = None,
) -> None:
    """Build a scenario's jobs and print the mix beside the traces it came from."""
    import dataclasses

    from wattbit.scenarios import load_scenario
    from wattbit.workload import describe_workload

    sc = load_scenario(scenario)
    spec = sc.workload
    if seed is not None:
        spec = dataclasses.replace(spec, seed=seed)
    if source is not None:
        spec = dataclasses.replace(spec, source=source)
    t0 = _when(start, "--start") or sc.start
    t1 = _when(end, "--end") or sc.end
    reports = describe_workload(sc.fleet, spec, t0, t1)
    span = f"{jst_minute(t0)} .. {jst_minute(t1)} JST"
    mix = reports["mix"][["jobs", "gpu_h", "gpu_h_share_pu", "gpus_p50", "gpus_max", "runtime_h_p50",
                          "runtime_h_mean", "runtime_h_p90", "resident_share_pu"]]
    mix.columns = ["jobs", "GPU-h", "share", "GPUs p50", "GPUs max", "h p50", "h mean", "h p90", "resident"]
    _print_frame(mix, f"workload mix: {sc.fleet.name}, {span}, source {spec.source}, seed {spec.seed}")
    _print_frame(reports["sizes"].rename(columns=lambda c: c.replace("_inference", "_inf")),
                 "share of each kind's jobs by GPU count", digits=3)
    _print_frame(reports["trace"], "built jobs beside the traces (openb pods, Philly run times)", digits=3)

# --- twin ------------------------------------------------------------------------------------


def _run_with_progress(scenario, policies, data, out: Path, report: bool, workers: int | None = None,
                       chunks: int = 1) -> None:
    """Simulate with one progress bar per policy, print the KPI table, write the outputs;
    ``workers`` runs at once (default: one per core), each policy's run cut into ``chunks``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from wattbit.sim.kpi import format_kpi_table
    from wattbit.sim.run import build_world, check_chunks, make_out_dir, save_outputs, simulate

    check_chunks(policies, chunks)  # before the world is built: a year's takes seconds
    make_out_dir(out)  # and the folder the outputs go to, rather than after the run
    console.print(
        f"[bold]{scenario.name}[/]: fleet {scenario.fleet.name} ({len(scenario.fleet.sites)} sites, "
        f"{scenario.fleet.gpu_count:,} GPUs), {jst_minute(scenario.start)} .. "
        f"{jst_minute(scenario.end)} JST, policies: {', '.join(policies)}")
    with console.status("loading grid data, building jobs and the APN"):
        world = build_world(scenario, data_dir=data)
    console.print(f"{len(world.jobs):,} jobs, {len(world.truth.time):,} slots of "
                  f"{scenario.step_s / 60:.0f} min")
    with Progress(TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        tasks = {p: progress.add_task(p, total=len(world.truth.time), start=False) for p in policies}

        def on_slot(p: str, i: int, n: int) -> None:
            if i == 0:
                progress.start_task(tasks[p])  # the clock of each bar starts with its policy
            progress.update(tasks[p], completed=i + 1, total=n)  # (cut in chunks: n counts the warm-ups)

        workers = workers or min(len(policies) * chunks, os.cpu_count() or 1)
        comparison = simulate(scenario, policies, world=world, on_slot=on_slot, workers=workers, chunks=chunks)
    console.print(format_kpi_table(comparison.table), highlight=False, markup=False, soft_wrap=True)
    written = save_outputs(comparison, out, report=report)
    if "report" in written:
        try:
            from wattbit.sim.report import report_summary

            for line in report_summary(comparison):
                console.print(f"- {line}", highlight=False, markup=False)
        except ImportError:
            pass
    console.print(f"outputs in {out}/ ({', '.join(p.name for p in written.values() if p.parent == out)})"
                  if written else "")


def _default_policies(*, oracle: bool) -> list[str]:
    """Every policy, the one with foresight (the oracle) only if ``oracle``."""
    from wattbit.control.policies import POLICIES

    return [name for name, p in POLICIES.items() if oracle or not p.foresight]


Policies = Annotated[
    list[str] | None,
    typer.Option("--policy", "-p", help="Policy to run (repeat for several): baseline, temporal, "
                 "spatial, wls, oracle. Default: all five."),
]
OutDir = Annotated[Path, typer.Option("--out", help="Folder for the KPI table, records and report.")]
Workers = Annotated[
    int | None,
    typer.Option("--workers", min=1, help="Runs at once, each in its own process (default: one "
                 "per core). The results do not depend on it."),
]
Chunks = Annotated[
    int,
    typer.Option("--chunks", min=1, help="Cut each policy's run in time into this many pieces that run at "
                 "once, each warmed up on the jobs before it: faster on several cores, close to but not "
                 "the same as one piece (docs/benchmarks.md). Not with the oracle."),
]


@app.command("run")
def run(
    full_year: Annotated[bool, typer.Option("--full-year", help="Run all of FY2022 instead of the default fortnight.")] = False,
    policy: Policies = None,
    data: DataDir = None,
    out: OutDir = Path("out"),
    report: Annotated[bool, typer.Option(help="Write the HTML report.")] = True,
    workers: Workers = None,
    chunks: Chunks = 1,
) -> None:
    """The digital twin on the bundled default scenario: japan-9 fleet, FY2022 grid data,
    trace-driven workload. Prints the key figures and writes the report. With --full-year the
    oracle is left out unless asked for (-p oracle): its one-shot LP over a whole year is large.
    With --chunks it is left out too: its plan sees the whole period and is not cut."""
    from wattbit.scenarios import load_scenario

    scenario = load_scenario("full-year" if full_year else "default")
    _run_with_progress(scenario, policy or _default_policies(oracle=not (full_year or chunks > 1)), data, out,
                       report, workers, chunks)


@app.command("simulate")
def simulate_cmd(
    scenario: Annotated[str, typer.Option("--scenario", "-s", help="Scenario file (TOML/YAML) or bundled name.")] = "default",
    policy: Policies = None,
    start: Annotated[str | None, typer.Option(help="Override the period start (JST unless a zone is given).")] = None,
    end: Annotated[str | None, typer.Option(help="Override the period end, exclusive.")] = None,
    data: DataDir = None,
    out: OutDir = Path("out"),
    report: Annotated[bool, typer.Option(help="Write the HTML report.")] = True,
    workers: Workers = None,
    chunks: Chunks = 1,
) -> None:
    """Run a scenario through the twin under one or more policies (by default all five; with
    --chunks, all but the oracle)."""
    from wattbit.scenarios import load_scenario, with_period

    sc = with_period(load_scenario(scenario), _when(start, "--start"), _when(end, "--end"))
    _run_with_progress(sc, policy or _default_policies(oracle=chunks == 1), data, out, report, workers, chunks)


# --- service ---------------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (keep 127.0.0.1 behind a TLS proxy).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    fleet: Annotated[str, typer.Option(help="Bundled fleet name or a fleet file (.toml/.yaml).")] = "japan-9",
    executor: Annotated[str | None, typer.Option(help="slurm | simulated | dry-run (default: slurm with --slurm, else dry-run).")] = None,
    slurm: Annotated[Path | None, typer.Option("--slurm", help="Slurm clusters file, one table per site (see docs/service.md); implies --executor slurm.")] = None,
    state_dir: Annotated[Path, typer.Option(help="Folder for the SQLite database and the executor's ledger.")] = Path("wattbit-state"),
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in --state-dir).")] = None,
    policy: Annotated[str, typer.Option(help="Controller policy: baseline, temporal, spatial, wls.")] = "wls",
    tick_s: Annotated[float, typer.Option(help="Seconds between controller turns (0: on events only).")] = 60.0,
    horizon_slots: Annotated[int, typer.Option(help="Planner look-ahead [30-min slots].")] = 48,
    lightpath_setup_s: Annotated[float | None, typer.Option(help="Lightpath setup time for moves [s] (default: the APN model's).")] = None,
    replay_start: Annotated[str | None, typer.Option(
        "--replay-start", envvar="WATTBIT_REPLAY_START", show_envvar=True,
        help="Recorded instant whose grid the controller replays from the start, ISO 8601 with its offset, "
             "e.g. 2022-08-01T18:00+09:00 (default: the live instant's own season and hour).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Validate the options, print the settings and exit without serving.")] = False,
) -> None:
    """Run the control plane's HTTP API. The first admin token comes from WATTBIT_ADMIN_TOKEN."""
    from dataclasses import fields

    from wattbit.service import Settings
    from wattbit.service import serve as serve_api
    from wattbit.service.settings import aware_instant

    executor = executor or ("slurm" if slurm is not None else "dry-run")
    from_env = ctx.get_parameter_source("replay_start").name == "ENVIRONMENT"  # typer's own click
    replay_name = "WATTBIT_REPLAY_START" if from_env else "--replay-start"
    settings = Settings(state_dir=state_dir, database_url=database_url, fleet=fleet, executor=executor,
                        slurm_sites=slurm, policy=policy, tick_s=tick_s, horizon_slots=horizon_slots,
                        admin_token=os.environ.get("WATTBIT_ADMIN_TOKEN") or None,
                        lightpath_setup_s=lightpath_setup_s,
                        replay_start=None if replay_start is None else aware_instant(replay_start, replay_name))
    if check:
        from wattbit.service.plane import check_settings

        check_settings(settings)  # what the start would refuse: fleet, policy, clusters file, replay
        for f in fields(settings):
            if f.repr:
                console.print(f"{f.name} = {getattr(settings, f.name)}", highlight=False, markup=False)
        return
    replay = ("" if settings.replay_start is None else
              f", grid replayed from {jst_minute(settings.replay_start)} JST")
    console.print(f"wattbit control plane on http://{host}:{port} (fleet {fleet}, executor {executor}{replay}); "
                  f"API docs at /docs")
    serve_api(settings, host=host, port=port)


# --- sweep -----------------------------------------------------------------------------------


@app.command("sweep")
def sweep_cmd(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep file (YAML/TOML): base scenario and axes.")],
    address: Annotated[str | None, typer.Option("--address", help="Join this Ray cluster (e.g. ray://head:10001); default: a local Ray instance.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for sweep.parquet and summary.md.")] = Path("out/sweep"),
    workers: Annotated[int | None, typer.Option("--workers", help="CPUs of the local Ray instance; 0: the standard library's process pool instead of Ray.")] = None,
    data: DataDir = None,
    resume: Annotated[bool, typer.Option("--resume", help="Take the cells an earlier run of the same sweep finished (OUT/cells) instead of running them again.")] = False,
) -> None:
    """Run many scenarios (fleet sizes × APN capacities × policies × periods) in parallel.

    Each cell's results are written to OUT/cells as it finishes; after an interruption,
    --resume runs only the cells that are missing. A cell that fails does not stop the others;
    the command then names it, writes the others' outputs and exits with status 2."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from wattbit.sim.sweep import (
        describe_cell,
        load_sweep,
        run_sweep,
        saved_cell,
        sweep_cells,
        write_sweep,
    )

    spec = load_sweep(sweep_file)
    n = len(sweep_cells(spec))
    console.print(f"[bold]sweep {spec.name}[/]: {n} cells × {len(spec.policies)} policies on base "
                  f"scenario {spec.base.name!r}")
    cells_dir = out / "cells"
    started = False  # (an error before any cell ran, e.g. a refused cell, saved nothing)
    try:
        with Progress(TextColumn("{task.description:>16}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            overall = progress.add_task("cells", total=None)  # (the total comes with the first cell)
            bars: dict[tuple[int, str], int] = {}

            def on_slot(c, policy: str, i: int, slots: int) -> None:
                nonlocal started
                started = True
                key = (c.index, policy)
                if key not in bars:
                    bars[key] = progress.add_task(f"cell {c.index} {policy}", total=slots)
                progress.update(bars[key], completed=i + 1)
                if i + 1 >= slots:
                    progress.remove_task(bars.pop(key))

            def on_cell(c, k: int, total: int) -> None:
                progress.update(overall, completed=k, total=total)
                console.print(f"{describe_cell(c)} done ({k}/{total})", highlight=False)

            result = run_sweep(spec, address=address, workers=workers, data_dir=data, cells_dir=cells_dir,
                               resume=resume, on_cell=on_cell, on_slot=on_slot)
    except SweepFailed as exc:  # the other cells ran to the end: write what they give
        paths = write_sweep(exc.result, out)
        console.print(paths["summary"].read_text(encoding="utf-8"), highlight=False, soft_wrap=True)
        console.print(f"ran on {exc.result.engine}; outputs of the cells that finished: {paths['table']}, "
                      f"{paths['summary']}", highlight=False)
        raise
    except BaseException:
        saved = sum(1 for c in sweep_cells(spec) if saved_cell(cells_dir, spec, c, data) is not None)
        if started and saved:
            console.print(f"[bold]sweep stopped[/]: {saved} of {n} cells finished and are saved in "
                          f"{cells_dir}; run it again with --resume to run only the others", highlight=False)
        raise
    if result.reused:
        console.print(f"{len(result.reused)} of {n} cells taken from {cells_dir} (an earlier run)",
                      highlight=False)
    paths = write_sweep(result, out)
    console.print(paths["summary"].read_text(encoding="utf-8"), highlight=False, soft_wrap=True)
    console.print(f"ran on {result.engine}; outputs: {paths['table']}, {paths['summary']}", highlight=False)


def main() -> None:
    """Console entry point: WattbitError becomes a one-line message and exit code 2."""
    try:
        app()
    except WattbitError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # "[period]" is no markup
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
