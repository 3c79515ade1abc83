"""Files written whole or not at all: a reader sees the old file or the new one, never a torn one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Yields a file open for writing that replaces ``path`` when the block ends without an error.

    The data go to a temporary file in the same directory, are flushed to disk (``fsync``), and
    replace ``path`` by one ``os.replace`` (atomic on POSIX and Windows); on an error the temporary
    file is removed and ``path`` is left as it was. ``mode`` is ``"w"`` (text) or ``"wb"``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomically(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` whole or not at all (``atomic_file``)."""
    with atomic_file(path) as file:
        file.write(text)
