"""Railway geometry the APN's fiber follows: stations, and track segments between them.

Two halves:

* :func:`derive_railway` reads the raw GeoJSON of Japan's Shinkansen and key conventional lines
  (``../shared/data/raw/rail_jrslod_n02``, N02-derived linework; see its PROVENANCE.md) and
  returns the compact derived table that wattbit ships in
  ``src/wattbit/resources/network/railway.json``: every station (merged across lines by name) and
  every station-to-station track segment with its exact along-track length [km] and a simplified
  polyline (for maps only). Run ``python -m wattbit.network.railway <raw_dir>`` to regenerate it.
* :func:`load_railway` reads that shipped table (cached) into a :class:`Railway`, which answers
  shortest along-track routes and nearest stations. It never touches ../shared.

Attribution (required by the source): 「国土数値情報（鉄道データ）」（国土交通省）を加工して作成 —
derived from MLIT National Land Numerical Information (railway data, N02), via the 鉄道駅LOD /
JR駅LOD dataset (uedayou.net/jrslod, Hiroshi Ueda) and the snapshot in
github.com/zaiyingzhao/Jinshin_Visualization @ bd11aa6b5848.

Along-track lengths are haversine sums over the full-resolution polylines. Checked against
published actual route km (実キロ): Tōkaidō Shinkansen 515.3 vs 515.4 km, San'yō 553.1 vs 553.7,
Tōhoku 675.4 vs 674.9, Kyūshū 256.8 vs 256.8, Hokkaidō (Seikan) 148.7 vs 148.8
(docs/network.md; published figures from ../shared/context/apn-optical-notes.md §3).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from wattbit.errors import DataSourceError, InvalidInput, unknown_name

__all__ = [
    "ATTRIBUTION",
    "EARTH_RADIUS_KM",
    "RESOURCE",
    "Railway",
    "Segment",
    "Station",
    "derive_railway",
    "great_circle_km",
    "load_railway",
    "polyline_km",
    "simplify",
]

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius [km] (IUGG mean radius R1 = 6,371.0088 km), used for haversine distances."""

RESOURCE = ("resources", "network", "railway.json")
ATTRIBUTION = (
    "「国土数値情報（鉄道データ）」（国土交通省）を加工して作成 / derived from MLIT National Land "
    "Numerical Information, railway data (N02), via 鉄道駅LOD (uedayou.net/jrslod) and "
    "github.com/zaiyingzhao/Jinshin_Visualization @ bd11aa6b58486ad7c4f1e3055cbb2f7d64604392"
)

SIMPLIFY_TOLERANCE_KM = 0.03
"""Douglas–Peucker tolerance for the shipped map polylines [km]; lengths are stored exactly."""

# Raw file stem -> English line name.
LINES: Mapping[str, str] = {
    "jr_hokkaido_hokkaido_shinkansen": "Hokkaido Shinkansen",
    "jr_east_tohoku_shinkansen": "Tohoku Shinkansen",
    "jr_east_joetsu_shinkansen": "Joetsu Shinkansen",
    "jr_east_hokuriku_shinkansen": "Hokuriku Shinkansen (JR East)",
    "jr_west_hokuriku_shinkansen": "Hokuriku Shinkansen (JR West)",
    "jr_central_tokaido_shinkansen": "Tokaido Shinkansen",
    "jr_west_sanyo_shinkansen": "Sanyo Shinkansen",
    "jr_kyushu_kyushu_shinkansen": "Kyushu Shinkansen",
    "jr_west_uno_line": "Uno Line",
    "jr_west_honshi_bisan_line": "Honshi-Bisan Line (JR West)",
    "jr_shikoku_honshi_bisan_line": "Honshi-Bisan Line (Seto-Ohashi)",
    "jr_shikoku_yosan_line": "Yosan Line",
    "jr_shikoku_kotoku_line": "Kotoku Line",
    "jr_hokkaido_hakodate_main_line": "Hakodate Main Line",
    "jr_hokkaido_muroran_main_line": "Muroran Main Line",
    "jr_hokkaido_chitose_line": "Chitose Line",
}

# Romanised names (Hepburn, macrons dropped) of the stations that can become APN nodes: the
# junctions and the main cities. Other stations keep their Japanese name as their id.
ROMAJI: Mapping[str, str] = {
    "東京": "Tokyo", "品川": "Shinagawa", "新横浜": "Shin-Yokohama", "小田原": "Odawara",
    "静岡": "Shizuoka", "浜松": "Hamamatsu", "豊橋": "Toyohashi", "名古屋": "Nagoya",
    "岐阜羽島": "Gifu-Hashima", "米原": "Maibara", "京都": "Kyoto", "新大阪": "Shin-Osaka",
    "新神戸": "Shin-Kobe", "姫路": "Himeji", "岡山": "Okayama", "福山": "Fukuyama",
    "広島": "Hiroshima", "新山口": "Shin-Yamaguchi", "小倉": "Kokura", "博多": "Hakata",
    "熊本": "Kumamoto", "鹿児島中央": "Kagoshima-Chuo", "上野": "Ueno", "大宮": "Omiya",
    "宇都宮": "Utsunomiya", "郡山": "Koriyama", "福島": "Fukushima", "仙台": "Sendai",
    "一ノ関": "Ichinoseki", "盛岡": "Morioka", "八戸": "Hachinohe", "新青森": "Shin-Aomori",
    "奥津軽いまべつ": "Okutsugaru-Imabetsu", "木古内": "Kikonai",
    "新函館北斗": "Shin-Hakodate-Hokuto", "函館": "Hakodate", "大沼": "Onuma", "森": "Mori",
    "長万部": "Oshamambe", "倶知安": "Kutchan", "小樽": "Otaru", "札幌": "Sapporo",
    "白石": "Shiroishi", "新札幌": "Shin-Sapporo", "岩見沢": "Iwamizawa", "旭川": "Asahikawa",
    "東室蘭": "Higashi-Muroran", "室蘭": "Muroran", "苫小牧": "Tomakomai", "沼ノ端": "Numanohata",
    "千歳": "Chitose", "南千歳": "Minami-Chitose", "新千歳空港": "New Chitose Airport",
    "高崎": "Takasaki", "長野": "Nagano", "上越妙高": "Joetsu-Myoko", "富山": "Toyama",
    "金沢": "Kanazawa", "新潟": "Niigata", "茶屋町": "Chayamachi", "宇野": "Uno", "児島": "Kojima",
    "宇多津": "Utazu", "坂出": "Sakaide", "多度津": "Tadotsu", "高松": "Takamatsu",
    "徳島": "Tokushima", "松山": "Matsuyama", "宇和島": "Uwajima", "向井原": "Mukaibara",
    "伊予大洲": "Iyo-Ozu", "内子": "Uchiko",
}

# Links the geometry lacks, estimated as great-circle × 1.2 (the notes' default where no rail
# figure exists, ../shared/context/apn-optical-notes.md §3) and flagged ``estimated``.
GAP_LINKS: tuple[tuple[str, str, str, str], ...] = (
    (
        "金沢", "米原", "Hokuriku Main Line (estimated)",
        (
            "JR West Hokuriku Main Line Kanazawa–Maibara (operating km about 177) carries fiber but is "
            "not in the N02 snapshot, which ends the Hokuriku Shinkansen at Kanazawa"
        ),
    ),
)
GAP_FACTOR_PU = 1.2
"""Route/great-circle ratio for estimated links [pu] (apn-optical-notes §3: 'use great-circle × 1.2
as a default and flag it'; measured ratios on the Shinkansen lines are 1.07–1.28)."""


# --- pure geometry ------------------------------------------------------------------------------


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance between two points [km] (mean Earth radius 6,371.0088 km).

    lat1, lon1, lat2, lon2 : coordinates [deg]

    >>> round(great_circle_km(35.6812, 139.7671, 33.5897, 130.4207))  # Tokyo - Hakata
    886
    """
    p = math.pi / 180.0
    h = (
        math.sin((lat2 - lat1) * p / 2) ** 2
        + math.cos(lat1 * p) * math.cos(lat2 * p) * math.sin((lon2 - lon1) * p / 2) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def polyline_km(coords: Iterable[tuple[float, float]]) -> float:
    """Length of a [lon, lat] polyline [km].

    >>> round(polyline_km([(139.0, 35.0), (140.0, 35.0), (140.0, 36.0)]), 1)
    202.3
    """
    pts = list(coords)
    return sum(great_circle_km(a[1], a[0], b[1], b[0]) for a, b in itertools.pairwise(pts))


def simplify(coords: list[tuple[float, float]], tolerance_km: float) -> list[tuple[float, float]]:
    """Douglas–Peucker simplification of a [lon, lat] polyline (local equirectangular metric).

    coords : the polyline [deg];  tolerance_km : largest allowed deviation [km]

    >>> simplify([(0.0, 0.0), (0.5, 0.0001), (1.0, 0.0)], tolerance_km=0.1)
    [(0.0, 0.0), (1.0, 0.0)]
    """
    if len(coords) < 3:
        return list(coords)
    lat0 = math.radians(sum(c[1] for c in coords) / len(coords))
    kx, ky = 111.195 * math.cos(lat0), 111.195  # km per degree (2πR/360)
    xy = [(c[0] * kx, c[1] * ky) for c in coords]
    keep = [False] * len(coords)
    keep[0] = keep[-1] = True
    stack = [(0, len(coords) - 1)]
    while stack:
        i, j = stack.pop()
        (x1, y1), (x2, y2) = xy[i], xy[j]
        dx, dy = x2 - x1, y2 - y1
        norm = math.hypot(dx, dy)
        best, best_k = -1.0, -1
        for k in range(i + 1, j):
            x, y = xy[k]
            d = abs(dy * (x - x1) - dx * (y - y1)) / norm if norm > 0 else math.hypot(x - x1, y - y1)
            if d > best:
                best, best_k = d, k
        if best > tolerance_km:
            keep[best_k] = True
            stack += [(i, best_k), (best_k, j)]
    return [c for c, k in zip(coords, keep) if k]


# --- the shipped table -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Station:
    """A railway station that fiber passes. id : romanised name where known, else Japanese;
    name_ja : Japanese name;  lat, lon : location [deg];  lines : lines serving it."""

    id: str
    name_ja: str
    lat: float
    lon: float
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Segment:
    """Track between two adjacent stations of one line.

    a, b : station ids;  line : English line name;  length_km : along-track length [km];
    estimated : True where the length is a great-circle estimate, not geometry;
    coords : simplified [lon, lat] polyline for maps [deg].
    """

    a: str
    b: str
    line: str
    length_km: float
    estimated: bool
    coords: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Railway:
    """Stations and track segments; answers shortest along-track routes.

    >>> rw = load_railway()
    >>> round(rw.route("Tokyo", "Shin-Osaka")[1], 1)  # Tōkaidō Shinkansen, actual km 515.4
    515.3
    """

    stations: tuple[Station, ...]
    segments: tuple[Segment, ...]
    attribution: str
    _by_id: dict = field(init=False, repr=False, compare=False)
    _adj: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {s.id: s for s in self.stations}
        adj: dict[str, list[tuple[str, float, int]]] = defaultdict(list)
        for i, seg in enumerate(self.segments):
            for end in (seg.a, seg.b):
                if end not in by_id:
                    raise DataSourceError("railway.json", None, f"segment ends at a known station, {seg}", end)
            adj[seg.a].append((seg.b, seg.length_km, i))
            adj[seg.b].append((seg.a, seg.length_km, i))
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_adj", dict(adj))

    def station(self, station_id: str) -> Station:
        try:
            return self._by_id[station_id]
        except KeyError:
            raise unknown_name("station", station_id, self._by_id) from None

    def neighbours(self, station_id: str) -> list[tuple[str, float, int]]:
        """(neighbour id, track km, segment index) of each segment touching the station."""
        return self._adj.get(station_id, [])

    def nearest(self, lat: float, lon: float) -> tuple[Station, float]:
        """The station closest to a point and its great-circle distance [km]."""
        best = min(self.stations, key=lambda s: great_circle_km(lat, lon, s.lat, s.lon))
        return best, great_circle_km(lat, lon, best.lat, best.lon)

    def distances_from(self, source: str) -> tuple[dict[str, float], dict[str, tuple[str, int]]]:
        """Dijkstra from a station: track km to every reachable station, and predecessors."""
        self.station(source)
        dist, prev = {source: 0.0}, {}
        heap = [(0.0, source)]
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist[u]:
                continue
            for v, length_km, i in self._adj.get(u, ()):
                nd = d + length_km
                if nd < dist.get(v, math.inf) - 1e-12:
                    dist[v], prev[v] = nd, (u, i)
                    heapq.heappush(heap, (nd, v))
        return dist, prev

    def route(self, a: str, b: str) -> tuple[tuple[str, ...], float, tuple[int, ...]]:
        """Shortest route between two stations: (station ids, track km, segment indices)."""
        dist, prev = self.distances_from(a)
        self.station(b)
        if b not in dist:
            raise InvalidInput(f"stations {a!r} and {b!r} are not joined by any railway line in the geometry")
        nodes, segs = [b], []
        while nodes[-1] != a:
            u, i = prev[nodes[-1]]
            nodes.append(u)
            segs.append(i)
        return tuple(reversed(nodes)), dist[b], tuple(reversed(segs))


def _from_dict(raw: dict, origin: str) -> Railway:
    try:
        stations = tuple(
            Station(s["id"], s["name_ja"], float(s["lat"]), float(s["lon"]), tuple(s["lines"]))
            for s in raw["stations"]
        )
        segments = tuple(
            Segment(
                g["a"], g["b"], g["line"], float(g["length_km"]), bool(g.get("estimated", False)),
                tuple((float(x), float(y)) for x, y in g["coords"]),
            )
            for g in raw["segments"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataSourceError(origin, None, "the railway table written by derive_railway", repr(exc)) from None
    return Railway(stations, segments, raw.get("attribution", ATTRIBUTION))


@functools.lru_cache(maxsize=1)
def load_railway() -> Railway:
    """The railway geometry shipped with wattbit (read once per process)."""
    res = resources.files("wattbit").joinpath(*RESOURCE)
    return _from_dict(json.loads(res.read_text(encoding="utf-8")), "wattbit/" + "/".join(RESOURCE))


# --- derivation from the raw GeoJSON (offline, needs ../shared) --------------------------------


def _line_parts(route: dict) -> list[list[tuple[float, float]]]:
    parts = []
    for feature in route["features"]:
        geom = feature["geometry"]
        if geom["type"] == "LineString":
            parts.append(geom["coordinates"])
        elif geom["type"] == "MultiLineString":
            parts.extend(geom["coordinates"])
    return [[(round(c[0], 6), round(c[1], 6)) for c in p] for p in parts]


def _line_segments(route: dict, stations: list[tuple[str, tuple[float, float]]]):
    """Station-to-station track of one line: (name a, name b, km, full polyline)."""
    adj: dict = defaultdict(dict)
    for part in _line_parts(route):
        for p, q in itertools.pairwise(part):
            if p != q:
                d = great_circle_km(p[1], p[0], q[1], q[0])
                adj[p][q] = adj[q][p] = d
    vertices = list(adj)
    at = {}
    for name, (lon, lat) in stations:
        v = min(vertices, key=lambda v: (v[0] - lon) ** 2 + (v[1] - lat) ** 2)
        at[v] = name
    found: dict[tuple[str, str], tuple[float, list]] = {}
    for v0, name in at.items():
        dist, prev, heap = {v0: 0.0}, {}, [(0.0, v0)]
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist[u]:
                continue
            if u != v0 and u in at:  # stop at the next station: it bounds a segment
                key = tuple(sorted((name, at[u])))
                if key not in found or d < found[key][0]:
                    path = [u]
                    while path[-1] != v0:
                        path.append(prev[path[-1]])
                    found[key] = (d, path if key[0] == at[u] else path[::-1])
                continue
            for w, length in adj[u].items():
                if d + length < dist.get(w, math.inf):
                    dist[w], prev[w] = d + length, u
                    heapq.heappush(heap, (d + length, w))
    return [(a, b, km, path) for (a, b), (km, path) in sorted(found.items())]


def derive_railway(raw_dir: str | Path) -> dict:
    """Derive the compact railway table from the raw GeoJSON folder (rail_jrslod_n02)."""
    raw_dir = Path(raw_dir)
    stations: dict[str, dict] = {}
    segments: list[dict] = []
    for stem, line in LINES.items():
        try:
            route = json.loads((raw_dir / f"{stem}.route.geojson").read_text(encoding="utf-8"))
            points = json.loads((raw_dir / f"{stem}.stations.geojson").read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DataSourceError(exc.filename, None, "the rail_jrslod_n02 GeoJSON files (see its PROVENANCE.md)") from None
        named = [(f["properties"]["name"], tuple(f["geometry"]["coordinates"][:2])) for f in points["features"]]
        for name, (lon, lat) in named:
            entry = stations.setdefault(
                name, {"id": ROMAJI.get(name, name), "name_ja": name, "lat": round(lat, 6), "lon": round(lon, 6), "lines": []}
            )
            if great_circle_km(lat, lon, entry["lat"], entry["lon"]) > 2.0:
                raise DataSourceError(raw_dir / f"{stem}.stations.geojson", None, f"station {name!r} within 2 km of its namesake on {entry['lines']}")
            entry["lines"].append(line)
        for a, b, km, path in _line_segments(route, named):
            coords = simplify(path, SIMPLIFY_TOLERANCE_KM)
            segments.append({
                "a": stations[a]["id"], "b": stations[b]["id"], "line": line, "length_km": round(km, 4),
                "coords": [[round(x, 5), round(y, 5)] for x, y in coords],
            })
    for a, b, line, why in GAP_LINKS:
        sa, sb = stations[a], stations[b]
        km = great_circle_km(sa["lat"], sa["lon"], sb["lat"], sb["lon"]) * GAP_FACTOR_PU
        segments.append({
            "a": sa["id"], "b": sb["id"], "line": line, "length_km": round(km, 4), "estimated": True,
            "note": why, "coords": [[sa["lon"], sa["lat"]], [sb["lon"], sb["lat"]]],
        })
    return {
        "attribution": ATTRIBUTION,
        "derived_by": "python -m wattbit.network.railway ../shared/data/raw/rail_jrslod_n02",
        "length_method": "haversine sum over the full-resolution polylines; coords are simplified for maps only",
        "stations": sorted(stations.values(), key=lambda s: s["id"]),
        "segments": segments,
    }


def write_resource(raw_dir: str | Path, out: str | Path) -> Path:
    """Derive the table and write it as compact JSON (one station/segment per line)."""
    table = derive_railway(raw_dir)
    lines = ["{"]
    for key in ("attribution", "derived_by", "length_method"):
        lines.append(f"{json.dumps(key)}: {json.dumps(table[key], ensure_ascii=False)},")
    for key in ("stations", "segments"):
        rows = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in table[key]]
        lines.append(f'{json.dumps(key)}: [\n' + ",\n".join(rows) + "\n]" + ("," if key == "stations" else ""))
    lines.append("}")
    out = Path(out)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    import sys

    raw = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/raw/rail_jrslod_n02"
    target = Path(__file__).resolve().parents[1].joinpath(*RESOURCE)
    target.parent.mkdir(parents=True, exist_ok=True)
    print(write_resource(raw, target))
