"""The report renders in a real browser: headless Chromium draws every plotly figure offline and
the screenshot is far from blank.

The comparison is the tiny example scenario on the grid data bundled with wattbit (no
../shared needed), baseline and wls.
"""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")
WINDOW = (1400, 3000)


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
         *args, url],
        capture_output=True, text=True, timeout=180, check=True)


def png_filtered_rows(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (still filtered) pixel rows of an 8-bit PNG.

    Filtering predicts each byte from its neighbours, so a page of one colour filters to
    (almost) all zero bytes; drawn content does not.
    """
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth = struct.unpack(">IIB", body[:9])
            assert depth == 8
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    return width, height, zlib.decompress(idat)


def busy_share(path: Path) -> float:
    """Share of non-zero filtered bytes in a PNG (filter-type bytes left out) [pu]."""
    _width, height, rows = png_filtered_rows(path)
    stride = len(rows) // height
    pixels = b"".join(rows[i * stride + 1:(i + 1) * stride] for i in range(height))
    return 1.0 - pixels.count(0) / len(pixels)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    pytest.importorskip("plotly")
    from wattbit.examples import tiny_jobs, tiny_scenario
    from wattbit.sim.report import write_report
    from wattbit.sim.run import build_world, simulate

    sc = tiny_scenario()
    comparison = simulate(sc, ("baseline", "wls"), world=build_world(sc, jobs=tiny_jobs()))
    return write_report(comparison, tmp_path_factory.mktemp("report") / "tiny.html")


def test_every_figure_is_drawn(report, tmp_path):
    dom = chromium(report.as_uri(), tmp_path / "profile", "--dump-dom").stdout
    figures = dom.count('class="plotly-graph-div')
    # curtailment, site stacks, delays and policy bars always; the APN figures when jobs moved
    assert figures >= 4
    # plotly.js draws an <svg class="main-svg"> per figure (two: plot and hover layers)
    assert dom.count('class="main-svg"') >= 2 * figures
    assert "Headline" in dom and "APN: links and data moved" in dom
    # the site stacks (y arrays the page decodes from 16-bit steps) are drawn as filled paths
    sites = dom[dom.index('id="fig-sites"'):dom.index('id="fig-delays"')]
    fills = re.findall(r'<path class="js-fill"[^>]*\bd="([^"]*)"', sites)
    assert sum(len(d) > 200 for d in fills) == 2 * 3, "3 sites x (baseline, wls)"


def test_screenshot_is_not_blank(report, tmp_path):
    shot = tmp_path / "report.png"
    chromium(report.as_uri(), tmp_path / "profile", f"--screenshot={shot}")
    blank_html = tmp_path / "blank.html"
    blank_html.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    blank = tmp_path / "blank.png"
    chromium(blank_html.as_uri(), tmp_path / "profile", f"--screenshot={blank}")

    width, height, _ = png_filtered_rows(shot)
    assert (width, height) == WINDOW
    assert shot.stat().st_size > 8 * blank.stat().st_size
    assert busy_share(blank) < 0.001
    assert busy_share(shot) > 0.01
