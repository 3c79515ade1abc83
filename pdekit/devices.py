"""The device pdekit chooses when none is given, and the one place that choice is written."""

from __future__ import annotations

import torch

Device = torch.device | str
"""A torch device or its name (``"cpu"``, ``"cuda"``, ``"cuda:1"``)."""


def default_device(local_rank: int | None = None) -> torch.device:
    """Returns the CUDA device (``local_rank``'s, else the current one) when CUDA is present, else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device() if local_rank is None else local_rank)


def resolve_device(device: Device | None) -> torch.device:
    """Returns ``device`` as a ``torch.device`` with its index filled in; ``None`` is ``default_device()``."""
    if device is None:
        return default_device()
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device
