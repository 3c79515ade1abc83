"""Relative L2 and H1 losses, averaged over the batch.

neuraloperator's ``LpLoss`` and ``H1Loss`` are right for operator learning (per sample and channel,
relative to the target's norm, H1 by periodic finite differences) but sum over the batch by default,
which ties the learning rate to the batch size; pdekit uses them with ``reduction="mean"``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from neuralop.losses import H1Loss, LpLoss

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def relative_l2(dim: int) -> Loss:
    """Returns ``loss(prediction, target)``: ``||prediction - target|| / ||target||`` over ``dim`` space axes, mean over batch and
    channels."""
    return LpLoss(d=dim, p=2, reduction="mean")


def relative_h1(dim: int) -> Loss:
    """Returns ``loss(prediction, target)``: the relative H1 error (values and first derivatives), mean over batch and channels."""
    return H1Loss(d=dim, reduction="mean")


LOSSES: dict[str, Callable[[int], Loss]] = {"l2": relative_l2, "h1": relative_h1}


def make_loss(name: str, dim: int) -> Loss:
    """Returns the loss ``name`` (``"l2"`` or ``"h1"``) over ``dim`` space axes."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name](dim)


def relative_l2_per_sample(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns the relative L2 error of each sample and channel: ``[B, C]`` from ``[B, C, *S]`` inputs."""
    difference = (prediction - target).flatten(2).norm(dim=-1)
    return difference / target.flatten(2).norm(dim=-1).clamp_min(torch.finfo(target.dtype).tiny)
