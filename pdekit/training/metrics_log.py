"""The training metrics log: one JSON object per epoch, one per line, readable with ``pandas.read_json(lines=True)``.

This is the record a run keeps of its epochs; the metrics themselves (errors, correlations,
spectra) are computed in ``pdekit.rollout.evaluate`` and ``Trainer.evaluate``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pdekit.atomic import write_atomically


class MetricsLog:
    """Appends one JSON object per line to ``path``; ``truncate_after(epoch)`` drops what a resumed run redoes.

    Args:
        path: the log file (``run_dir/metrics.jsonl``); its directory is created.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        """Appends ``record`` as one line.

        Args:
            record: a JSON-serialisable dict (a Trainer's epoch record).
        """
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        """Returns the records written so far, in order (empty if there is no log yet)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate_after(self, epoch: int) -> None:
        """Keeps only the records of epochs ``<= epoch`` (those a checkpoint covers).

        The log is rewritten atomically: a kill mid-rewrite keeps the old one.

        Args:
            epoch: the last epoch to keep, counted from 0 (-1 keeps none).
        """
        kept = [r for r in self.read() if r.get("epoch", -1) <= epoch]
        write_atomically(self.path, "".join(json.dumps(r) + "\n" for r in kept))
