"""Prometheus metrics of the control plane, on a registry of its own (one per app, no globals).

=========================================  =========================================================
metric                                     meaning
=========================================  =========================================================
``wattbit_site_power_mw{site}``            estimated facility power of the site now [MW]
``wattbit_site_gpus_busy{site}``           GPUs running work, weighted by duty cycle [-]
``wattbit_curtailment_absorbed_mwh_total`` MWh of posted curtailment absorbed, per ``area``
``wattbit_pending_decisions``              controller actions issued whose effect the clusters do
                                           not show yet (a start still queued, a move in flight)
``wattbit_jobs{status}``                   jobs in the book per status
``wattbit_decision_seconds``               time of one controller step [s]
``wattbit_reaction_seconds``               demand-response request → last command issued [s]
``wattbit_action_outcomes_total``          actions per ``kind`` and ``outcome``
=========================================  =========================================================

Curtailment absorbed in an area over a tick = min(the fleet's load there, the posted
curtailment headroom) × the tick's length — the same rule the twin uses (:mod:`wattbit.sim.twin`).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.site_power_mw = Gauge("wattbit_site_power_mw", "Estimated facility power of the site [MW]",
                                   ["site"], registry=r)
        self.site_gpus_busy = Gauge("wattbit_site_gpus_busy", "GPUs running work, duty-weighted",
                                    ["site"], registry=r)
        self.absorbed_mwh = Counter("wattbit_curtailment_absorbed_mwh", "Posted curtailment absorbed [MWh]",
                                    ["area"], registry=r)
        self.pending_actions = Gauge("wattbit_pending_decisions",
                                     "Controller actions issued whose effect is not observed yet", registry=r)
        self.jobs = Gauge("wattbit_jobs", "Jobs per status", ["status"], registry=r)
        self.decision_s = Histogram("wattbit_decision_seconds", "Controller step time [s]", registry=r,
                                    buckets=(0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 60))
        self.reaction_s = Histogram("wattbit_reaction_seconds",
                                    "Demand-response request to last command issued [s]", registry=r,
                                    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
        self.outcomes = Counter("wattbit_action_outcomes", "Actions per kind and outcome",
                                ["kind", "outcome"], registry=r)

    def sites(self, power_mw: Mapping[str, float], gpus_busy: Mapping[str, float]) -> None:
        for site, mw in power_mw.items():
            self.site_power_mw.labels(site=site).set(mw)
        for site, g in gpus_busy.items():
            self.site_gpus_busy.labels(site=site).set(g)

    def absorbed(self, mwh: Mapping[str, float]) -> None:
        for area, v in mwh.items():
            self.absorbed_mwh.labels(area=area).inc(max(0.0, v))

    def job_counts(self, counts: Mapping[str, int]) -> None:
        for status in ("pending", "running", "suspended", "migrating", "done", "cancelled", "failed"):
            self.jobs.labels(status=status).set(counts.get(status, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
