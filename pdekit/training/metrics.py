"""Training metrics as JSON lines: one object per epoch, readable with ``pandas.read_json(lines=True)``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pdekit.atomic import write_atomically


class MetricsLog:
    """Appends one JSON object per line to ``path``; ``truncate_after(epoch)`` drops what a resumed run redoes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate_after(self, epoch: int) -> None:
        """Keeps only the records of epochs ``<= epoch`` (those a checkpoint covers)."""
        kept = [r for r in self.read() if r.get("epoch", -1) <= epoch]
        write_atomically(self.path, "".join(json.dumps(r) + "\n" for r in kept))  # a kill mid-rewrite keeps the old log
