"""The shipped railway table: lengths against published actual km, compactness, and (where
../shared is present) that it is exactly what the raw GeoJSON derives to."""

from __future__ import annotations

import json
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest

from wattbit.network.railway import ATTRIBUTION, derive_railway, load_railway, polyline_km

RAW = Path(__file__).resolve().parents[3] / "shared" / "data" / "raw" / "rail_jrslod_n02"
if not RAW.exists():
    RAW = Path("/work/shared/data/raw/rail_jrslod_n02")


@pytest.mark.parametrize(
    ("a", "b", "actual_km"),
    [
        # published actual route km (実キロ), ../shared/context/apn-optical-notes.md §3
        ("Tokyo", "Shin-Osaka", 515.4),
        ("Shin-Osaka", "Hakata", 553.7),
        ("Tokyo", "Shin-Aomori", 674.9),
        ("Hakata", "Kagoshima-Chuo", 256.8),
        ("Shin-Aomori", "Shin-Hakodate-Hokuto", 148.8),
        ("Omiya", "Niigata", 269.5),
        ("Takasaki", "Kanazawa", 345.5),
        ("Tokyo", "Morioka", 496.5),
    ],
)
def test_track_km_matches_published_actual_km(a, b, actual_km):
    _, km, _ = load_railway().route(a, b)
    assert km == pytest.approx(actual_km, rel=0.01)


def test_okayama_takamatsu_matches_published_operating_km():
    _, km, _ = load_railway().route("Okayama", "Takamatsu")
    assert km == pytest.approx(71.8, rel=0.02)  # Seto-Ohashi Line, 71.8 operating km


def test_simplified_polylines_keep_length_within_half_a_percent():
    per_line = defaultdict(lambda: [0.0, 0.0])
    for seg in load_railway().segments:
        if seg.estimated:
            continue
        per_line[seg.line][0] += seg.length_km
        per_line[seg.line][1] += polyline_km(seg.coords)
    for line, (exact, simplified) in per_line.items():
        assert simplified == pytest.approx(exact, rel=0.005), line


def test_resource_is_compact_and_attributed():
    res = resources.files("wattbit").joinpath("resources", "network", "railway.json")
    assert len(res.read_bytes()) < 250_000
    assert "国土数値情報（鉄道データ）" in load_railway().attribution
    estimated = [s for s in load_railway().segments if s.estimated]
    assert [(s.a, s.b) for s in estimated] == [("Kanazawa", "Maibara")]


@pytest.mark.shared
@pytest.mark.skipif(not RAW.exists(), reason="needs ../shared/data/raw/rail_jrslod_n02")
def test_shipped_table_is_what_the_raw_geometry_derives_to():
    derived = derive_railway(RAW)
    res = resources.files("wattbit").joinpath("resources", "network", "railway.json")
    shipped = json.loads(res.read_text(encoding="utf-8"))
    assert derived["attribution"] == ATTRIBUTION == shipped["attribution"]
    assert derived["stations"] == shipped["stations"]
    assert derived["segments"] == shipped["segments"]
