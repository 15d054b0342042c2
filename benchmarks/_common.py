"""Helpers shared by the benchmark scripts: the machine's description, peak memory, and the
results tables kept in benchmarks/README.md (each script owns one marked section)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import resource
import sys
from pathlib import Path

README = Path(__file__).with_name("README.md")


def machine() -> str:
    """'2 cores, 23.4 GiB, AMD EPYC ..., CPython 3.11.7' from /proc (Linux) and the interpreter."""
    cores = os.cpu_count() or 0
    mem_gib = float("nan")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 2**20
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cores} cores, {mem_gib:.1f} GiB, {cpu}, "
            f"{platform.python_implementation()} {platform.python_version()}")


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of its finished children) [MB]."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    kb = resource.getrusage(who).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


def today() -> str:
    return _dt.date.today().isoformat()


def update_section(name: str, body: str, readme: Path = README) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in the README
    (appending the section if it is not there yet)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text, encoding="utf-8")


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
