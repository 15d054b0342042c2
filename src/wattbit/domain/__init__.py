"""Domain objects: frozen, validated when built, no I/O."""

from wattbit.domain.action import Action, Cancel, Migrate, Reroute, Start, Suspend, Throttle
from wattbit.domain.area import AREA_NAMES, AREAS, INTERCONNECTED_AREAS, Area, area
from wattbit.domain.events import DemandResponse, DRDirection, SiteOutage
from wattbit.domain.job import Job, JobKind
from wattbit.domain.scenario import Scenario, Weights, WorkloadSpec
from wattbit.domain.site import Fleet, Site

__all__ = [
    "AREAS",
    "AREA_NAMES",
    "INTERCONNECTED_AREAS",
    "Action",
    "Area",
    "Cancel",
    "DRDirection",
    "DemandResponse",
    "Fleet",
    "Job",
    "JobKind",
    "Migrate",
    "Reroute",
    "Scenario",
    "Site",
    "SiteOutage",
    "Start",
    "Suspend",
    "Throttle",
    "Weights",
    "WorkloadSpec",
    "area",
]
