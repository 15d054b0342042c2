"""Read fleets and scenarios from TOML/YAML files (and the bundled ones by name)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from wattbit.domain import Fleet, Site
from wattbit.errors import InvalidInput, unknown_name

__all__ = ["load_fleet", "bundled_fleets"]


def bundled_fleets() -> tuple[str, ...]:
    folder = resources.files("wattbit") / "resources" / "fleets"
    return tuple(sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")))


def _read(path_or_name: str | Path, kind: str) -> tuple[dict, str]:
    path = Path(path_or_name)
    if path.suffix in (".toml", ".yaml", ".yml"):
        if not path.exists():
            raise InvalidInput(f"{kind} file {str(path)!r} does not exist")
        text, origin = path.read_text(encoding="utf-8"), str(path)
    else:
        name = str(path_or_name)
        res = resources.files("wattbit") / "resources" / f"{kind}s" / f"{name}.toml"
        if not res.is_file():
            known = bundled_fleets() if kind == "fleet" else ()
            raise unknown_name(kind, name, known)
        text, origin, path = res.read_text(encoding="utf-8"), f"bundled {kind} {name!r}", Path(f"{name}.toml")
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text), origin
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"{origin}: not valid TOML: {exc}") from None
    import yaml

    try:
        return yaml.safe_load(text) or {}, origin
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{origin}: not valid YAML: {exc}") from None


def fleet_from_dict(raw: dict, origin: str = "fleet") -> Fleet:
    sites = raw.get("sites")
    if not sites:
        raise InvalidInput(f"{origin}: no [[sites]] entries; a fleet needs at least one site")
    built = []
    for i, s in enumerate(sites):
        try:
            built.append(Site(**s))
        except TypeError as exc:
            raise InvalidInput(f"{origin}: sites[{i}]: {exc}; see docs/scenarios.md for the fields") from None
    return Fleet(name=raw.get("name", origin), sites=tuple(built))


def load_fleet(path_or_name: str | Path = "japan-9") -> Fleet:
    """A fleet from a TOML/YAML file, or a bundled one by name.

    >>> load_fleet("japan-9").site("kyushu-dc").area
    'kyushu'
    """
    raw, origin = _read(path_or_name, "fleet")
    return fleet_from_dict(raw, origin)
