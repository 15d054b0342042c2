"""Writing a file so that a reader never finds half of it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_whole"]


def write_whole(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a file beside it, which then
    replaces it in one step; an interrupted write leaves the previous file as it was.

    >>> import tempfile
    >>> p = write_whole(Path(tempfile.mkdtemp()) / "a" / "b.txt", lambda tmp: tmp.write_text("done"))
    >>> p.read_text(), sorted(x.name for x in p.parent.iterdir())
    ('done', ['b.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
    return path
