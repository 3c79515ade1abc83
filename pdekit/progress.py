"""Progress bars that behave in logs: off when standard error is not a terminal, and under ``TQDM_DISABLE``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **options: Any) -> tqdm:
    """Returns a tqdm bar over ``iterable`` that draws only where it helps.

    ``enabled=False`` (a command's ``--no-progress`` or ``-q``) turns it off; otherwise tqdm's
    ``disable=None`` turns it off when standard error is not a terminal, so a redirected log holds no
    carriage-return frames, and a non-empty ``TQDM_DISABLE`` (other than ``0``/``false``) turns it off
    everywhere.
    """
    disabled_by_environment = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")
    return tqdm(iterable, disable=True if not enabled or disabled_by_environment else None, **options)
