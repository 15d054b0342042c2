"""A long twin run cut in time: chunks that run side by side, each warmed up on the jobs before it.

One twin run is a chain of slots, each starting from the state the previous left, so it uses one
core however many there are. A year, though, forgets quickly: no job lives longer than its
deadline (12 days at most in the bundled workload), so the fleet at any instant holds only jobs
released in the days just before it. A chunk therefore starts a *warm-up* earlier than the part it
keeps, at least one job lifetime (:func:`warmup_slots`): every job alive when its kept part begins
is then in its run, released and scheduled from the start, and the chunks can run at once.

What each chunk keeps (:func:`stitch`):

- the sites', areas' and slots' records from ``keep_start`` to ``keep_end``;
- the jobs released in its kept part that finished in its run; a job still going at the chunk's
  end is taken from the next chunk, which ran it from its release (within its warm-up);
- the demand-response requests whose window starts in its kept part.

The first chunk has no warm-up: up to its ``keep_end`` it *is* the run in one piece. Later chunks
begin with an empty fleet at ``run_start``; by ``keep_start`` the fleet holds the same jobs as in
the run in one piece but, having decided on an emptier fleet early in the warm-up, not
necessarily in the same places or as far along. That difference is the approximation, and
``docs/benchmarks.md`` measures it over FY2022. Policies with foresight are not cut: the oracle's
plan spans the whole period.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wattbit.domain import Job
from wattbit.domain._validate import integer
from wattbit.errors import InvalidInput
from wattbit.sim.twin import SLOT_COUNTERS, TwinResult, job_end

__all__ = ["Chunk", "check_chunk_count", "split_run", "stitch", "warmup_slots"]


@dataclass(frozen=True)
class Chunk:
    """One piece of a run cut in time (UTC instants on the run's slot grid).

    index : its place, from 0;  run_start : where its run begins (its warm-up from here);
    keep_start, keep_end : the part whose records it keeps [start, end); the last chunk's
    ``keep_end`` is the end of the whole run.
    """

    index: int
    run_start: pd.Timestamp
    keep_start: pd.Timestamp
    keep_end: pd.Timestamp

    @property
    def warmup(self) -> pd.Timedelta:
        return self.keep_start - self.run_start


def warmup_slots(jobs: Sequence[Job], step_s: float) -> int:
    """Slots of warm-up that cover the longest-lived job: from release to deadline (or, without
    one, to release + 3 × run time, as :func:`wattbit.sim.twin.run_window` counts it) [slots].

    >>> from wattbit.examples import tiny_jobs
    >>> warmup_slots(tiny_jobs(), 1800)  # the online services' 48 h
    96
    """
    if not jobs:
        return 0
    life_ns = max(job_end(j).value - j.release_ns for j in jobs)
    return max(0, math.ceil(life_ns / (step_s * 1e9)))


def check_chunk_count(chunks: int) -> int:
    """Refuse a number of chunks that is not a whole number from 1 up; the number, as a Python
    int (numpy's integers are taken too)."""
    return integer("run", "chunks", chunks, low=1, note=" (1 runs the period in one piece)")


def split_run(time: pd.DatetimeIndex, chunks: int, warmup: int) -> tuple[Chunk, ...]:
    """Cut the run over the slots ``time`` into ``chunks`` parts that each run (nearly) the same
    number of slots, warm-up included: each part after the first runs from ``warmup`` slots
    before the part it keeps, so the first keeps that many slots more than the others (where
    the run is long enough; otherwise all keep the same).

    >>> t = pd.date_range("2022-04-01", periods=10, freq="30min", tz="UTC")
    >>> [(c.run_start.strftime("%H:%M"), c.keep_start.strftime("%H:%M"), c.keep_end.strftime("%H:%M"))
    ...  for c in split_run(t, 2, warmup=2)]
    [('00:00', '00:00', '03:00'), ('02:00', '03:00', '05:00')]
    """
    n = len(time)
    chunks = check_chunk_count(chunks)
    if chunks > n:
        raise InvalidInput(f"chunks = {chunks}: the run has only {n} slots; give at most {n} chunks")
    if warmup < 0:
        raise InvalidInput(f"warmup = {warmup} slots; expected >= 0")
    step = time[1] - time[0] if n > 1 else pd.Timedelta(0)
    # the first part keeps `first` slots, the others `first - warmup`: all run `first` slots
    first = (n + (chunks - 1) * warmup) / chunks
    if chunks > 1 and first - warmup >= 1:
        edges = [0] + [round(first + k * (first - warmup)) for k in range(chunks - 1)] + [n]
    else:
        edges = [round(k * n / chunks) for k in range(chunks + 1)]
    end = time[-1] + step
    at = [time[i] if i < n else end for i in edges]
    return tuple(Chunk(k, time[max(0, edges[k] - warmup)], at[k], at[k + 1]) for k in range(chunks))


def _keeps(chunk: Chunk, t) -> np.ndarray:
    """Which of the instants ``t`` fall in the chunk's kept part."""
    return np.asarray((t >= chunk.keep_start) & (t < chunk.keep_end))


def _kept(frame: pd.DataFrame, chunk: Chunk) -> pd.DataFrame:
    t = frame.index.get_level_values("time") if isinstance(frame.index, pd.MultiIndex) else frame.index
    return frame[_keeps(chunk, t)]


def stitch(chunks: Sequence[Chunk], results: Sequence[TwinResult], peak_pu: Sequence[float],
           job_ids: Sequence[str]) -> TwinResult:
    """One run's records from its chunks' (see the module's docstring for what each keeps).

    peak_pu : each chunk's peak link utilisation within its kept part [pu];  job_ids : every
    job of the run, in the order its jobs table should have (the order the run in one piece
    gives).

    Counters that add up over slots (:data:`wattbit.sim.twin.SLOT_COUNTERS`) are summed over the
    kept slots; the time counters (``decide_*_s``, ``highs_s``, ``run_s``) over whole chunk runs,
    warm-ups included: they are the computing time spent. Each chunk's own counters stay in
    ``chunk_counters``: when the chunks run at once, the wall time beyond the longest chunk's
    ``run_s`` is starting them and stitching.
    """
    if not (len(chunks) == len(results) == len(peak_pu)) or not chunks:
        raise InvalidInput(f"stitch: {len(chunks)} chunks, {len(results)} results and {len(peak_pu)} "
                           "peaks; expected one of each per chunk, at least one")
    last = len(chunks) - 1
    job_rows, carried = [], set()

    def among(ids: list[str], some: set[str]) -> np.ndarray:
        # (a set of Python strings: Index.isin on the jobs' Arrow strings takes a second here)
        return np.fromiter((j in some for j in ids), bool, len(ids))

    for k, (chunk, r) in enumerate(zip(chunks, results)):
        jobs = r.jobs
        ids = jobs["job_id"].tolist()
        own = (jobs["release"] >= chunk.keep_start).to_numpy(bool) | among(ids, carried) if k \
            else np.ones(len(jobs), bool)
        if k < last:  # still going at the chunk's end: the next chunk ran it from its release
            going = own & ~jobs["finished"].to_numpy(bool) & among(ids, set(results[k + 1].jobs["job_id"].tolist()))
            job_rows.append(jobs[own & ~going])
            carried = {j for j, g in zip(ids, going.tolist()) if g}
        else:
            job_rows.append(jobs[own])
    jobs = pd.concat(job_rows).set_index("job_id")
    if len(jobs) != len(job_ids) or not jobs.index.is_unique:
        raise InvalidInput(f"stitch: the chunks hold {len(jobs)} job rows ({jobs.index.nunique()} distinct) "
                           f"for {len(job_ids)} jobs; the chunks must cover the run's jobs once each")
    jobs = jobs.reindex(pd.Index(job_ids, name="job_id")).reset_index()

    dr = [r.dr[_keeps(c, r.dr["start"])] for c, r in zip(chunks, results)]
    slots = pd.concat([_kept(r.slots, c) for c, r in zip(chunks, results)])
    decide = np.concatenate([r.decide_s[_keeps(c, r.slots.index)] for c, r in zip(chunks, results)])
    counters: dict = {name: slots[name].sum().item() for name in SLOT_COUNTERS}
    counters.update(slots=len(slots), chunks=len(chunks),
                    warmup_slots=max(round(c.warmup / pd.Timedelta(hours=results[0].step_h)) for c in chunks),
                    peak_link_utilisation_pu=float(max(peak_pu)))
    timed = [k for k in results[0].counters if k.startswith("decide_") or k in ("highs_s", "run_s")]
    counters.update({k: float(sum(r.counters.get(k, 0.0) for r in results)) for k in timed})
    first = results[0]
    return TwinResult(
        policy=first.policy, step_h=first.step_h,
        sites=pd.concat([_kept(r.sites, c) for c, r in zip(chunks, results)]),
        areas=pd.concat([_kept(r.areas, c) for c, r in zip(chunks, results)]),
        jobs=jobs, dr=pd.concat(dr, ignore_index=True) if dr else first.dr, counters=counters,
        decide_s=decide, slots=slots, chunk_counters=tuple(dict(r.counters) for r in results))
