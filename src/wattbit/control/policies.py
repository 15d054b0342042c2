"""The Workload-Shift policies, all run by the same controller.

A policy is a set of levers, not code: the controller builds the same planning problem and
switches levers on and off (see ``docs/policies.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from wattbit.errors import unknown_name

__all__ = ["POLICIES", "Policy", "policy"]


@dataclass(frozen=True, slots=True)
class Policy:
    """Which Workload-Shift levers a policy may pull.

    temporal : defer or advance work within deadlines;  spatial : place on and migrate to
    other sites;  throttle : run jobs below full speed;  reroute : serve online inference from
    another site inside its RTT budget;  planner : uses the LP planner (else first-come
    first-served at the home site);  foresight : plans once with the real future known.
    """

    name: str
    temporal: bool
    spatial: bool
    throttle: bool
    reroute: bool
    planner: bool
    foresight: bool
    description: str


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("baseline", False, False, False, False, False, False,
               "no shifting: every job runs at its home site as soon as capacity allows"),
        Policy("temporal", True, False, False, False, True, False,
               "defer or advance within deadlines at the home site (carbon-intelligent computing)"),
        Policy("spatial", False, True, False, True, True, False,
               "place and migrate between sites, never defer"),
        Policy("wls", True, True, True, True, True, False,
               "full Workload Shift: temporal + spatial + throttling + inference rerouting, "
               "re-planned every slot on forecasts"),
        Policy("oracle", True, True, True, True, True, True,
               "the same problem solved once with the real future known (perfect-foresight bound)"),
    )
}


def policy(name: str | Policy) -> Policy:
    """Look a policy up by name.

    >>> policy("wls").spatial
    True
    >>> policy("wsl")
    Traceback (most recent call last):
    ...
    wattbit.errors.UnknownName: policy 'wsl' not found; did you mean 'wls'? (known: ...)
    """
    if isinstance(name, Policy):
        return name
    if name not in POLICIES:
        raise unknown_name("policy", name, POLICIES)
    return POLICIES[name]
