"""Writing a file so that a reader never finds half of it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_whole"]


def write_whole(path: str | Path, write: Callable[[Path], object], *, durable: bool = False) -> Path:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a file beside it (named for this
    writer alone), which then replaces it in one step. A write that fails or is interrupted
    leaves the previous file as it was, and its own file is removed. ``durable`` syncs the new
    file to disk before it replaces the old one, and the folder after (a record that must
    survive a crash: without the folder's sync, the replace itself may be lost).

    >>> import tempfile
    >>> p = write_whole(Path(tempfile.mkdtemp()) / "a" / "b.txt", lambda tmp: tmp.write_text("done"))
    >>> p.read_text(), sorted(x.name for x in p.parent.iterdir())
    ('done', ['b.txt'])
    >>> def half(tmp):
    ...     tmp.write_text("half")
    ...     raise OSError("disk full")
    >>> write_whole(p, half)
    Traceback (most recent call last):
    ...
    OSError: disk full
    >>> p.read_text(), sorted(x.name for x in p.parent.iterdir())
    ('done', ['b.txt'])
    >>> write_whole(p, lambda tmp: tmp.write_text("kept"), durable=True).read_text()
    'kept'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            folder = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
