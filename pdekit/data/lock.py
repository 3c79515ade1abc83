"""Exclusive locks on a directory (a run directory, a store being generated), so a second writer is refused at once.

The lock is an ``fcntl.flock`` on a file: inside a run directory (``.pdekit.lock``), or beside a Zarr
store (``<store>.lock``), since Zarr refuses to create a store in a directory that already holds a
file. The operating system releases it when
the holder exits, however it exits (SIGKILL included), so a killed job never leaves a stale lock
behind, and nothing has to be cleaned up before a resume. Stores at non-local URLs (``memory://``,
``s3://``, ...) have no file to lock: ``DirectoryLock`` is then a no-op, and two writers there must be
kept apart by the user.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_FILE = ".pdekit.lock"


class LockedError(RuntimeError):
    """Another process holds the lock; the message names the directory and what holds it."""


def local_directory(target) -> Path | None:
    """Returns ``target`` as a local path (plain paths and ``file://`` URLs), or None for other URLs."""
    text = os.fspath(target) if isinstance(target, os.PathLike) else str(target)
    if text.startswith("file://"):
        return Path(text[len("file://") :])
    if "://" in text:
        return None
    return Path(text)


class DirectoryLock:
    """Holds an exclusive lock on ``directory`` while in a ``with`` block; ``what`` names the job in messages.

    The lock file is inside the directory (created if missing), or with ``beside=True`` next to it
    (``<directory>.lock``, for a Zarr store). Raises ``LockedError`` at once, without waiting, if
    another process holds it. The lock file records the holder's pid and job, for the message a
    second process prints.
    """

    def __init__(self, directory, what: str, *, beside: bool = False):
        self.directory = local_directory(directory)
        self.what, self.beside = what, beside
        self._file: IO[str] | None = None

    @property
    def path(self) -> Path | None:
        """Returns the lock file's path (None for a non-local URL)."""
        if self.directory is None:
            return None
        return self.directory.with_name(self.directory.name + ".lock") if self.beside else self.directory / LOCK_FILE

    def __enter__(self) -> DirectoryLock:
        path = self.path
        if path is None:
            return self
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LockedError(
                f"{self.directory} is in use by {holder}: wait for it to finish (or stop it) before running {self.what} there"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({self.what})")
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
