"""Read fleets and scenarios from TOML/YAML files (and the bundled ones by name).

A scenario file names its fleet (bundled name, file, or an inline ``[fleet]`` table), its period,
the workload recipe, objective weights, demand-response events and site outages. Every field,
its unit and its default: docs/scenarios.md (generated from :data:`SCENARIO_FIELDS`). Errors name
the file, the field, the value and the fix.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import tomllib
from importlib import resources
from pathlib import Path

import pandas as pd

from wattbit.domain import (
    DemandResponse,
    Fleet,
    Scenario,
    Site,
    SiteOutage,
    Weights,
    WorkloadSpec,
)
from wattbit.domain._validate import integer, text, to_timestamp, wrong_type
from wattbit.errors import InvalidInput, UnknownName, unknown_name
from wattbit.units import fiscal_year, jst_text

__all__ = [
    "SCENARIO_FIELDS",
    "bundled_fleets",
    "bundled_scenarios",
    "fleet_from_dict",
    "load_fleet",
    "load_scenario",
    "read_time",
    "scenario_fields_markdown",
    "scenario_from_dict",
]


def _bundled(kind: str) -> tuple[str, ...]:
    folder = resources.files("wattbit") / "resources" / f"{kind}s"
    return tuple(sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")))


def bundled_fleets() -> tuple[str, ...]:
    """Names of the fleets shipped with wattbit.

    >>> "japan-9" in bundled_fleets()
    True
    """
    return _bundled("fleet")


def bundled_scenarios() -> tuple[str, ...]:
    """Names of the scenarios shipped with wattbit.

    >>> bundled_scenarios()
    ('default', 'full-year')
    """
    return _bundled("scenario")


SUFFIXES = (".toml", ".yaml", ".yml")
"""The suffixes of scenario and fleet files (in any case: ``my.TOML`` is TOML)."""


def _is_file_name(path: Path) -> bool:
    """Whether ``path`` names a scenario/fleet file by its suffix (else it is a bundled name)."""
    return path.suffix.lower() in SUFFIXES


def _read(path_or_name: str | Path, kind: str) -> tuple[dict, str]:
    path = Path(path_or_name)
    if _is_file_name(path):
        if not path.exists():
            raise InvalidInput(f"{kind} file {str(path)!r} does not exist; check the path")
        if not path.is_file():
            raise InvalidInput(f"{kind} file {str(path)!r} is not a file; give the path of a {kind} file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{kind} file {str(path)!r} cannot be read as UTF-8 text: {exc}") from None
        origin = str(path)
    else:
        name = str(path_or_name)
        res = resources.files("wattbit") / "resources" / f"{kind}s" / f"{name}.toml"
        if not res.is_file():
            if path.is_file():
                raise InvalidInput(
                    f"{kind} {name!r} is not a bundled {kind} (known: {', '.join(_bundled(kind))}), "
                    f"and a {kind} file is read only if its name ends in .toml, .yaml or .yml; give a "
                    "path ending in .toml or .yaml (rename the file)")
            raise unknown_name(kind, name, _bundled(kind))
        text, origin, path = res.read_text(encoding="utf-8"), f"bundled {kind} {name!r}", Path(f"{name}.toml")
    if path.suffix.lower() == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"{origin}: not valid TOML: {exc}") from None
    else:
        import yaml

        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"{origin}: expected a table of fields at the top, found {type(raw).__name__}")
    return raw, origin


# --- fields --------------------------------------------------------------------------------------

SCENARIO_FIELDS: dict[str, dict[str, tuple[str, str, object, str]]] = {
    "": {
        "name": ("str", "-", "file stem", "scenario name, used in reports"),
        "description": ("str", "-", "''", "free text"),
        "fleet": ("str or table", "-", "'japan-9'",
                  "bundled fleet name, path of a fleet file, or an inline table with name and [[fleet.sites]]"),
        "step_s": ("float", "s", 1800.0, "slot length: 900, 1800 (JEPX half hour) or 3600"),
        "horizon_slots": ("int", "-", 96, "planner look-ahead in slots (96 × 30 min = 2 days)"),
        "replan_slots": ("int", "-", 1, "solve the plan at most every this many slots, 1 .. 4 (events force a new plan at once)"),
        "coarse_blocks": ("int", "-", 2, "planner blocks of each coarser size (2, 4, 8 … fine blocks) after the first four slots; 1 makes a smaller, faster LP"),
        "fine_block_slots": ("int", "-", 1, "slots per planner block among the first four: 1 (one by one), 2 or 4 (with replan_slots = 4: one target from plan to plan, an LP less than half as large)"),
        "inference_forecast_days": ("int", "d", 14, "days of online-inference arrivals the plan averages to expect serving windows not yet open (0: released inference only)"),
    },
    "period": {
        "start": ("datetime", "JST if naive", "required", "first instant of the run"),
        "end": ("datetime", "JST if naive", "required", "end of the run (exclusive)"),
        "fiscal_year": ("int", "-", "none", "if given, the period must lie in this Japanese fiscal year (April–March): the grid year; checked when the file is read (--start/--end on the command line replace the period)"),
    },
    "workload": {
        "source": ("str", "-", "'traces'", "'traces' (scaled real traces) or 'synthetic'"),
        "seed": ("int", "-", 0, "random seed, an integer >= 0; the same seed gives the same jobs"),
        "utilisation_pu": ("float", "pu", 0.6, "mean share of fleet GPUs the workload asks for"),
        "inference_share_pu": ("float", "pu", 0.2, "share of GPU-hours that is online inference"),
        "residency_share_pu": ("float", "pu", 0.2, "share of jobs bound to their home area"),
    },
    "weights": {
        "carbon_price_jpy_per_t": ("float", "JPY/t-CO2", 10_000.0, "internal carbon price"),
        "curtailment_value_jpy_per_mwh": ("float", "JPY/MWh", 5_000.0, "value of each MWh of curtailed power absorbed"),
        "deadline_penalty_jpy_per_gpu_h": ("float", "JPY/GPU-h", 50_000.0, "work left undone at a deadline"),
        "unserved_inference_penalty_jpy_per_gpu_h": ("float", "JPY/GPU-h", 200_000.0, "online inference not served"),
        "move_penalty_jpy_per_gb": ("float", "JPY/GB", 1.0, "checkpoint moved over the APN"),
        "gpu_hour_value_jpy": ("float", "JPY/GPU-h", 500.0, "value of a GPU-hour lost to checkpoints and moves"),
    },
    "demand_response": {
        "request_id": ("str", "-", "required", "unique key of the request"),
        "direction": ("str", "-", "required", "'up' (上げDR: raise load) or 'down' (下げDR: lower load)"),
        "area": ("str", "-", "required", "grid area; the fleet must have a site there"),
        "power_mw": ("float", "MW", "required", "change asked for (positive)"),
        "start": ("datetime", "JST if naive", "required", "window start"),
        "end": ("datetime", "JST if naive", "required", "window end (exclusive)"),
        "response_deadline_s": ("float", "s", 300.0, "time allowed to reach the change (secondary reserve ≈ 300 s)"),
        "issued_by": ("str", "-", "'grid-operator'", "who asked"),
        "issued_at": ("datetime", "JST if naive", None, "when the request reaches the fleet; none: at start (announced requests come earlier)"),
    },
    "outages": {
        "site": ("str", "-", "required", "site name in the fleet"),
        "start": ("datetime", "JST if naive", "required", "outage start"),
        "end": ("datetime", "JST if naive", "required", "outage end (exclusive)"),
    },
}
"""Every scenario field: section → field → (type, unit, default, meaning). Sections
``demand_response`` and ``outages`` are lists of tables ([[demand_response]])."""


def scenario_fields_markdown() -> str:
    """The field table of docs/scenarios.md, generated from :data:`SCENARIO_FIELDS`.

    >>> scenario_fields_markdown().splitlines()[0]
    '| section | field | type | unit | default | meaning |'
    """
    lines = ["| section | field | type | unit | default | meaning |", "|---|---|---|---|---|---|"]
    for section, fields in SCENARIO_FIELDS.items():
        label = "(top level)" if not section else (
            f"[[{section}]]" if section in ("demand_response", "outages") else f"[{section}]")
        for name, (typ, unit, default, meaning) in fields.items():
            lines.append(f"| {label} | `{name}` | {typ} | {unit} | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def _where(section: str, index: int | None = None) -> str:
    if not section:
        return "top level"
    return f"[[{section}]] #{index + 1}" if index is not None else f"[{section}]"


def _check_fields(origin: str, where: str, table: dict, known, doc: str) -> None:
    """Refuse a key of ``table`` that is not in ``known``: the closest known one, if any, all of
    them and the doc that describes them."""
    known = list(known)
    for key in table:
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1) if isinstance(key, str) else []
        listed = f"known fields: {', '.join(known)}; see {doc}"
        hint = f"did you mean {close[0]!r}? ({listed})" if close else listed
        raise InvalidInput(f"{origin}: {where}: unknown field {key!r}; {hint}")


def _check_keys(origin: str, section: str, table: dict, index: int | None = None) -> None:
    known = [*SCENARIO_FIELDS[section], *([*SCENARIO_FIELDS][1:] if not section else [])]
    _check_fields(origin, _where(section, index), table, known, "docs/scenarios.md")


def _array(origin: str, raw: dict, key: str, each: str, doc: str = "docs/scenarios.md",
           label: str | None = None) -> list[dict]:
    """The tables of the array of tables ``[[label]]`` (``raw[key]``; none if absent): a single
    ``[label]`` table, a value or an entry that is not a table is refused with the fix."""
    label = label or key
    entries = raw.get(key)
    if entries is None:
        return []
    if isinstance(entries, dict):
        raise InvalidInput(
            f"{origin}: [{label}] is a single table; write [[{label}]] (an array of tables; in YAML "
            f"a list), one per {each} (see {doc})")
    if not isinstance(entries, list):
        raise InvalidInput(
            f"{origin}: {key} = {entries!r}; expected [[{label}]] tables (an array of tables; in "
            f"YAML a list), one per {each} (see {doc})")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInput(
                f"{origin}: [[{label}]] #{i + 1} = {entry!r}; expected a table of fields, one per "
                f"{each} (see {doc})")
    return entries


def read_time(origin: str, where: str, field: str, value: object) -> pd.Timestamp:
    """A date-time as scenario and sweep files give it (text, or a date or date-time their parser
    made; JST where it names no zone), refused with ``origin``, ``where`` and ``field`` named where
    it is missing, empty or not a date-time."""
    if value is None:
        raise InvalidInput(f"{origin}: {where}: {field} is missing; give a date-time like '2023-03-06 00:00' (JST)")
    if isinstance(value, (_dt.datetime, _dt.date)) and not isinstance(value, _dt.datetime):
        value = _dt.datetime.combine(value, _dt.time())
    bad = InvalidInput(
        f"{origin}: {where}: {field} = {value!r} is not a date-time; write e.g. '2023-03-06 00:00' (JST)")
    if not isinstance(value, (str, _dt.datetime)):  # a number would count nanoseconds from 1970
        raise bad
    try:
        ts = to_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise bad from None
    if pd.isna(ts):  # '' parses as NaT
        raise bad
    return ts


def _build(origin: str, where: str, cls, kwargs: dict, doc: str = "docs/scenarios.md"):
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        one = len(missing) == 1
        raise InvalidInput(f"{origin}: {where}: {', '.join(missing)} {'is' if one else 'are'} missing; "
                           f"add {'it' if one else 'them'} (see {doc})")
    try:
        return cls(**kwargs)
    except UnknownName as exc:
        raise UnknownName(f"{origin}: {where}: {exc}") from None
    except InvalidInput as exc:
        raise InvalidInput(f"{origin}: {where}: {exc}") from None
    except TypeError as exc:
        raise InvalidInput(f"{origin}: {where}: {exc}; see {doc} for the fields") from None


SITE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Site) if f.init)
"""The fields of a fleet's ``[[sites]]`` entry (docs/fleet.md)."""


def fleet_from_dict(raw: dict, origin: str = "fleet") -> Fleet:
    """A fleet from a parsed table with ``name`` and a list ``sites`` of site tables.

    Unknown accelerators are rejected here (the power model must know them).
    """
    return _fleet(raw, origin, "sites")


def _fleet(raw: dict, origin: str, label: str) -> Fleet:
    """:func:`fleet_from_dict`, its array of sites written ``[[label]]`` in the file."""
    from wattbit.power import accelerator_power

    doc = "docs/fleet.md"
    sites = _array(origin, raw, "sites", "site", doc, label)
    if not sites:
        raise InvalidInput(f"{origin}: no [[{label}]] entries; a fleet needs at least one site (see {doc})")
    name = text(origin, "name", raw.get("name", origin))
    built = []
    for i, s in enumerate(sites):
        _check_fields(origin, f"sites[{i}]", s, SITE_FIELDS, doc)
        site = _build(origin, f"sites[{i}]", Site, dict(s), doc)
        try:
            accelerator_power(site.accelerator)
        except UnknownName as exc:
            raise UnknownName(f"{origin}: sites[{i}] ({site.name}): {exc}") from None
        built.append(site)
    return _build(origin, "fleet", Fleet, {"name": name, "sites": tuple(built)}, doc)


def load_fleet(path_or_name: str | Path = "japan-9") -> Fleet:
    """A fleet from a TOML/YAML file, or a bundled one by name.

    >>> load_fleet("japan-9").site("kyushu-dc").area
    'kyushu'
    """
    raw, origin = _read(path_or_name, "fleet")
    return fleet_from_dict(raw, origin)


def _fleet_of(raw: dict, origin: str, base: Path | None) -> Fleet:
    spec = raw.get("fleet", "japan-9")
    if isinstance(spec, dict):
        return _fleet(spec, f"{origin}: [fleet]", "fleet.sites")
    if not isinstance(spec, str):
        raise InvalidInput(f"{origin}: fleet = {spec!r}; expected a bundled fleet name, a file path or a [fleet] table")
    path = Path(spec)
    if _is_file_name(path) and base is not None and not path.is_absolute():
        path = base / path
    try:
        return load_fleet(path if _is_file_name(path) else spec)
    except UnknownName as exc:
        raise UnknownName(f"{origin}: fleet: {exc}") from None
    except InvalidInput as exc:
        raise InvalidInput(f"{origin}: fleet: {exc}") from None


def scenario_from_dict(raw: dict, origin: str = "scenario", name: str = "scenario",
                       base: Path | None = None) -> Scenario:
    """A scenario from a parsed table (see :data:`SCENARIO_FIELDS`)."""
    _check_keys(origin, "", raw)
    name = text(origin, "name", raw.get("name", name))
    if not isinstance(raw.get("description", ""), str):
        raise wrong_type(origin, "description", raw["description"], "a string, in quotes")
    fleet = _fleet_of(raw, origin, base)

    period = raw.get("period")
    if period is None:
        raise InvalidInput(f"{origin}: [period] is missing; add start and end, e.g. start = '2023-03-06 00:00'")
    if not isinstance(period, dict):
        raise InvalidInput(f"{origin}: period = {period!r}; expected a [period] table with start and end")
    _check_keys(origin, "period", period)
    start = read_time(origin, "[period]", "start", period.get("start"))
    end = read_time(origin, "[period]", "end", period.get("end"))
    if end <= start:
        raise InvalidInput(f"{origin}: [period]: end {jst_text(end)} is not after start {jst_text(start)}; "
                           "give an end later than the start")
    fy = period.get("fiscal_year")
    if fy is not None:
        integer(f"{origin}: [period]", "fiscal_year", fy,
                note=" such as 2022 (FY2022: 2022-04-01 .. 2023-04-01 JST)")
        last = end - pd.Timedelta(seconds=1)
        if fiscal_year(start) != fy or fiscal_year(last) != fy:
            raise InvalidInput(
                f"{origin}: [period]: fiscal_year = {fy!r} but the period {jst_text(start)} .. {jst_text(end)} "
                f"is not inside FY{fy} ({fy}-04-01 .. {fy + 1}-04-01 JST); "
                "move the period or change fiscal_year"
            )

    sections = {}
    for section, cls in (("workload", WorkloadSpec), ("weights", Weights)):
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise InvalidInput(f"{origin}: [{section}] = {table!r}; expected a table of fields")
        _check_keys(origin, section, table)
        sections[section] = _build(origin, f"[{section}]", cls, table)

    events = []
    for i, dr in enumerate(_array(origin, raw, "demand_response", "request")):
        _check_keys(origin, "demand_response", dr, i)
        where = _where("demand_response", i)
        kw = dict(dr)
        kw["start"] = read_time(origin, where, "start", dr.get("start"))
        kw["end"] = read_time(origin, where, "end", dr.get("end"))
        if "issued_at" in dr:
            kw["issued_at"] = read_time(origin, where, "issued_at", dr.get("issued_at"))
        events.append(_build(origin, where, DemandResponse, kw))
    outages = []
    for i, o in enumerate(_array(origin, raw, "outages", "outage")):
        _check_keys(origin, "outages", o, i)
        where = _where("outages", i)
        kw = dict(o)
        kw["start"] = read_time(origin, where, "start", o.get("start"))
        kw["end"] = read_time(origin, where, "end", o.get("end"))
        outages.append(_build(origin, where, SiteOutage, kw))

    kwargs = {
        "name": name, "fleet": fleet, "start": start, "end": end,
        "workload": sections["workload"], "weights": sections["weights"],
        "demand_response": tuple(events), "outages": tuple(outages),
    }
    for key in ("step_s", "horizon_slots", "replan_slots", "coarse_blocks", "fine_block_slots", "inference_forecast_days"):
        if key in raw:
            kwargs[key] = raw[key]
    return _build(origin, "scenario", Scenario, kwargs)


def load_scenario(path_or_name: str | Path = "default") -> Scenario:
    """A scenario from a TOML/YAML file, or a bundled one by name (``"default"``, ``"full-year"``).

    >>> s = load_scenario("default")
    >>> s.fleet.name, str(s.start.tz_convert("Asia/Tokyo")), len(s.time)
    ('japan-9', '2023-03-06 00:00:00+09:00', 672)
    """
    raw, origin = _read(path_or_name, "scenario")
    path = Path(path_or_name)
    base = path.parent if _is_file_name(path) else None
    name = path.stem if _is_file_name(path) else str(path_or_name)
    return scenario_from_dict(raw, origin, name, base)


def with_period(scenario: Scenario, start: str | pd.Timestamp | None = None,
                end: str | pd.Timestamp | None = None) -> Scenario:
    """The scenario over another period (naive times are JST); demand-response requests and
    outages outside the new period are dropped.

    >>> s = with_period(load_scenario("default"), "2023-03-13", "2023-03-15")
    >>> len(s.time), [d.request_id for d in s.demand_response]
    (96, [])
    """
    origin = f"scenario {scenario.name!r}"
    t0 = read_time(origin, "period", "start", start) if start is not None else scenario.start
    t1 = read_time(origin, "period", "end", end) if end is not None else scenario.end
    if t1 <= t0:
        raise InvalidInput(f"{origin}: period: end {jst_text(t1)} is not after start {jst_text(t0)}; "
                           "give an end after the start")
    return dataclasses.replace(
        scenario, start=t0, end=t1,
        demand_response=tuple(d for d in scenario.demand_response if d.start < t1 and d.end > t0),
        outages=tuple(o for o in scenario.outages if o.start < t1 and o.end > t0))
