"""The digital twin's speed: the default fortnight, a month of FY2022, or the full year.

    PYTHONPATH=src python benchmarks/bench_twin.py                          # default fortnight
    PYTHONPATH=src python benchmarks/bench_twin.py --full-year              # all of FY2022
    PYTHONPATH=src python benchmarks/bench_twin.py --full-year --period 2023-03-01 2023-04-01
    PYTHONPATH=src python benchmarks/bench_twin.py --profile                # + cProfile of wls
    PYTHONPATH=src python benchmarks/bench_twin.py --replan-slots 1 4       # planner policies at two cadences
    PYTHONPATH=src python benchmarks/bench_twin.py --coarse-blocks 2 1      # ... and two horizon block layouts
    PYTHONPATH=src python benchmarks/bench_twin.py --repeat 3               # median of 3 runs, round by round
    PYTHONPATH=src python benchmarks/bench_twin.py --full-year --chunks 1 2 # in one piece, and cut in two

Prints, per policy: slots, wall time, slots/s, peak RSS, the headline KPIs and each
demand-response request's commitment and delivery; with a period of the full-year scenario, the
full year's time extrapolated from the time per slot (said so in the table). ``--profile`` runs
wls once more under cProfile and prints where a slot's time goes.
Results go to benchmarks/README.md (section ``bench_twin``).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import pstats
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, peak_rss_mb, today, update_section

KPIS = (("curtailment_absorbed_mwh", "absorbed MWh", "{:,.0f}"), ("cost_mjpy", "cost M JPY", "{:,.1f}"),
        ("deadline_misses", "misses", "{:.0f}"), ("moves", "moves", "{:.0f}"),
        ("decide_ms_mean", "decide ms", "{:.1f}"))
PARTS = ("build", "solve", "stored", "dispatch")
"""The controller's decision time by part (Controller.time_s, in the twin's counters)."""


def chunk_text(index: int, counters: dict) -> str:
    """One chunk's run of a cut run, and where its time went: HiGHS, the decision's parts (solving
    without HiGHS's share) and the twin's own accounting, the rest of its run [s]."""
    run_s = counters.get("run_s", 0.0)
    parts = {part: counters.get(f"decide_{part}_s", 0.0) for part in PARTS}
    highs_s = counters.get("highs_s", 0.0)
    shown = {**parts, "solve": parts["solve"] - highs_s}
    return (f"chunk {index}: ran {run_s:.1f} s: HiGHS {highs_s:.1f}, "
            + ", ".join(f"{'solve besides HiGHS' if part == 'solve' else part} {s:.1f}" for part, s in shown.items())
            + f", the twin's accounting {run_s - sum(parts.values()):.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full-year", action="store_true", help="the full-year scenario (FY2022)")
    ap.add_argument("--period", nargs=2, metavar=("START", "END"),
                    help="run only this period of the scenario (JST) and extrapolate to its full length")
    ap.add_argument("--policies", nargs="+", default=["wls", "baseline"])
    ap.add_argument("--replan-slots", nargs="+", type=int, metavar="N",
                    help="run the planner policies at each of these replan cadences (default: the scenario's)")
    ap.add_argument("--coarse-blocks", nargs="+", type=int, metavar="N",
                    help="run the planner policies with each of these numbers of blocks per coarse size "
                         "(default: the scenario's)")
    ap.add_argument("--fine-block-slots", nargs="+", type=int, metavar="N",
                    help="run the planner policies with each of these slots per fine block "
                         "(1, 2 or 4; default: the scenario's)")
    ap.add_argument("--chunks", nargs="+", type=int, metavar="N", default=[1],
                    help="run every configuration cut in time into each of these numbers of chunks, "
                         "that many at once (wattbit.sim.chunks; default: 1, in one piece)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run every configuration N times, round by round, and report the median run "
                         "with the range of wall times")
    ap.add_argument("--profile", action="store_true", help="cProfile one more wls run")
    ap.add_argument("--top", type=int, default=25, help="profile entries to print")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error(f"--repeat {args.repeat}: give 1 or more runs per configuration")

    from wattbit.control.policies import policy as _policy
    from wattbit.scenarios import load_scenario, with_period
    from wattbit.sim.run import build_world, simulate

    full = load_scenario("full-year" if args.full_year else "default")
    sc = with_period(full, *args.period) if args.period else full
    print(f"machine: {machine()}")
    t = time.perf_counter()
    world = build_world(sc)
    world_s = time.perf_counter() - t
    n = len(world.truth.time)
    print(f"scenario {full.name}, period {sc.start} .. {sc.end}: {len(world.jobs):,} jobs, {n:,} slots "
          f"(run window to the last deadline); world built in {world_s:.1f} s")
    rows = []
    # slots of the full scenario: its period's slots plus the same drain to the last deadline
    step = world.truth.step_s
    full_slots = (full.end - full.start).total_seconds() / step + n - (sc.end - sc.start).total_seconds() / step
    runs = []
    for p in args.policies:
        planner = _policy(p).planner
        for k in (args.replan_slots if (args.replan_slots and planner) else [sc.replan_slots]):
            for cb in (args.coarse_blocks if (args.coarse_blocks and planner) else [sc.coarse_blocks]):
                for fb in (args.fine_block_slots if (args.fine_block_slots and planner) else [sc.fine_block_slots]):
                    for c in args.chunks:
                        runs.append((p, dataclasses.replace(sc, replan_slots=k, coarse_blocks=cb,
                                                            fine_block_slots=fb), planner, c))
    # with --repeat, the runs go round by round (each configuration once per round), so that the
    # machine's drift over the hour spreads over all of them; each is reported by its median run
    done: list[list[tuple[float, object]]] = [[] for _ in runs]
    for r in range(args.repeat):
        for i, (p, run_sc, _, chunks) in enumerate(runs):
            t = time.perf_counter()
            comp = simulate(run_sc, [p], world=world, chunks=chunks, workers=chunks)
            done[i].append((time.perf_counter() - t, comp))
            if args.repeat > 1:
                print(f"  round {r + 1}/{args.repeat}: {p} (replan {run_sc.replan_slots}, coarse "
                      f"{run_sc.coarse_blocks}, fine blocks of {run_sc.fine_block_slots}) "
                      f"{done[i][-1][0]:.1f} s", flush=True)
    for (p, run_sc, planner, chunks), tries in zip(runs, done):
        walls = sorted(w for w, _ in tries)
        wall, comp = sorted(tries, key=lambda wc: wc[0])[(len(tries) - 1) // 2]  # the median run
        k = comp.table[p]
        label = f"{p}, replan {run_sc.replan_slots}" if planner else p
        if planner and args.coarse_blocks:
            label += f", coarse {run_sc.coarse_blocks}"
        if planner and args.fine_block_slots:
            label += f", fine {run_sc.fine_block_slots}"
        if len(args.chunks) > 1 or chunks > 1:
            label += f", {chunks} chunk{'s' if chunks > 1 else ''}"
        row = {"policy": label, "slots": n, "wall_s": wall, "slots_per_s": n / wall,
               "rss": max(peak_rss_mb(), peak_rss_mb(children=True)),
               "plans": comp.results[p].counters.get("plans", 0),
               "wall_text": f"{wall:.1f}" + (f" ({walls[0]:.1f}–{walls[-1]:.1f})" if len(walls) > 1 else "")}
        row.update({key: float(k[key]) for key, _, _ in KPIS})
        # the decision time early and late in the period: the state the controller is shown
        # holds every released job, finished ones too, so it grows as the run goes on
        d = comp.results[p].decide_s
        q = max(1, int((sc.end - sc.start).total_seconds() / world.truth.step_s) // 4)
        row["decide_q1_ms"], row["decide_q4_ms"] = 1e3 * d[:q].mean(), 1e3 * d[3 * q:4 * q].mean()
        counters = comp.results[p].counters
        row["parts"] = " / ".join(f"{counters.get(f'decide_{part}_s', 0.0):.1f}" for part in PARTS)
        row["highs_s"] = counters.get("highs_s", 0.0)
        if args.period:
            row["full_s"] = wall / n * full_slots
        extra = f", full {full.name} extrapolated {row['full_s']:,.0f} s" if args.period else ""
        row["split"] = "-"
        if chunks > 1:  # where a cut run's wall time goes: its longest chunk, and the rest
            longest = max((c.get("run_s", 0.0) for c in comp.results[p].chunk_counters), default=0.0)
            row["split"] = f"{longest:.1f} / {wall - longest:.1f}"
            extra += (f"  longest chunk {longest:.1f} s, the rest {wall - longest:.1f} s "
                      "(starting the chunks, their results back, stitching)")
            extra += "".join(f"\n{'':26s} {chunk_text(i, c)}"
                             for i, c in enumerate(comp.results[p].chunk_counters))
        rows.append(row)
        print(f"{label:26s} {n:6,} slots {row['plans']:6,} plans {row['wall_text']:>8s} s {n / wall:7.1f} slots/s  peak RSS {row['rss']:,.0f} MB  "
              + "  ".join(f"{h} {fmt.format(row[key])}" for key, h, fmt in KPIS)
              + f"  decide ms 1st/4th quarter {row['decide_q1_ms']:.1f}/{row['decide_q4_ms']:.1f}"
              + f"  decide s {'/'.join(PARTS)} {row['parts']} (HiGHS {row['highs_s']:.1f})" + extra,
              flush=True)
        for d in comp.results[p].dr.itertuples():  # each demand-response request: committed, delivered
            print(f"{'':26s} {d.request_id}: committed {d.committed_mw:.2f} MW, change of load in the "
                  f"asked direction {d.delivered_mean_mw:+.2f} MW mean", flush=True)
    profile_text = ""
    if args.profile:
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        simulate(sc if not args.replan_slots else dataclasses.replace(sc, replan_slots=args.replan_slots[-1]),
                 ["wls"], world=world)
        prof.disable()
        wall = time.perf_counter() - t
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime")
        stats.print_stats(args.top)
        profile_text = (f"wls under cProfile: {wall:.1f} s for {n} slots "
                        f"({1000 * wall / n:.1f} ms per slot, profiler overhead included)\n"
                        + buf.getvalue())
        print(profile_text)
    if not args.no_readme:
        cmd = "PYTHONPATH=src python benchmarks/bench_twin.py " + shlex.join(sys.argv[1:])
        head = (["policy", "slots", "plans", "wall s" + (f" (median of {args.repeat}; range)" if args.repeat > 1 else ""),
                 "slots/s", "peak RSS MB (largest process)"] + [h for _, h, _ in KPIS]
                + ["decide ms, 1st / 4th quarter of the period", "decide s: " + " / ".join(PARTS),
                   "HiGHS s (of solve)"])
        cut = any(r["split"] != "-" for r in rows)
        if cut:
            head.append("cut runs: longest chunk s / the rest s")
        if args.period:
            head.append(f"{full.name} extrapolated s")
        table = []
        for r in rows:
            cells = [r["policy"], f"{r['slots']:,}", f"{r['plans']:,}", r["wall_text"], f"{r['slots_per_s']:.1f}",
                     f"{r['rss']:,.0f}"] + [fmt.format(r[key]) for key, _, fmt in KPIS] + [
                     f"{r['decide_q1_ms']:.1f} / {r['decide_q4_ms']:.1f}", r["parts"], f"{r['highs_s']:.1f}"]
            if cut:
                cells.append(r["split"])
            if args.period:
                cells.append(f"{r['full_s']:,.0f}")
            table.append(cells)
        label = f"{full.name}" + (f", period {args.period[0]} .. {args.period[1]} JST" if args.period else "")
        body = (f"### Twin: {label} ({today()})\n\nMachine: {machine()}.  \nCommand: `{cmd.strip()}`  \n"
                f"{len(world.jobs):,} jobs, {n:,} slots of 30 min (the run window reaches the last deadline, "
                f"or the end of the grid data); world built in {world_s:.1f} s (not in the wall times)."
                + (f" Extrapolation: wall time per slot × the full scenario's {full_slots:,.0f} slots "
                   "(its period plus the same drain after it; assumes the same job density)."
                   if args.period else "")
                + "\n\n" + markdown_table(head, table))
        if profile_text:
            body += "\n\n<details><summary>cProfile of wls (top by own time)</summary>\n\n```\n" + \
                    profile_text.strip() + "\n```\n</details>"
        section = "bench_twin_" + ("full_year" if args.full_year else "default") + ("_period" if args.period else "")
        update_section(section, body)


if __name__ == "__main__":
    main()
