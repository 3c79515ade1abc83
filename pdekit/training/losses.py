"""Relative L2 and H1 losses, averaged over the batch.

neuraloperator's ``LpLoss`` and ``H1Loss`` are right for operator learning (per sample and channel,
relative to the target's norm, H1 by periodic finite differences) but sum over the batch by default,
which ties the learning rate to the batch size; pdekit uses them with ``reduction="mean"``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from neuralop.losses import H1Loss, LpLoss

from pdekit.rollout.evaluate import relative_error
from pdekit.rollout.objectives import Loss


def relative_l2(dim: int) -> Loss:
    """Returns ``loss(prediction, target)``: ``||prediction - target|| / ||target||`` over ``dim`` space axes, mean over batch and
    channels.

    Args:
        dim: the number of space axes of ``[B, C, *S]``.

    Returns:
        ``loss(prediction [B, C, *S], target [B, C, *S]) -> []`` (neuraloperator's ``LpLoss``, ``p=2``).
    """
    return LpLoss(d=dim, p=2, reduction="mean")


def relative_h1(dim: int) -> Loss:
    """Returns ``loss(prediction, target)``: the relative H1 error (values and first derivatives), mean over batch and channels.

    Args:
        dim: the number of space axes of ``[B, C, *S]``.

    Returns:
        ``loss(prediction [B, C, *S], target [B, C, *S]) -> []`` (neuraloperator's ``H1Loss``).
    """
    return H1Loss(d=dim, reduction="mean")


LOSSES: dict[str, Callable[[int], Loss]] = {"l2": relative_l2, "h1": relative_h1}


def make_loss(name: str, dim: int) -> Loss:
    """Returns the loss ``name`` over ``dim`` space axes.

    Args:
        name: a name in ``LOSSES``: ``"l2"`` or ``"h1"``.
        dim: the number of space axes.

    Returns:
        ``loss(prediction [B, C, *S], target [B, C, *S]) -> []``.

    Raises:
        ValueError: if ``name`` is not in ``LOSSES``.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name](dim)


def relative_l2_per_sample(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns the relative L2 error of each sample and channel: ``[B, C]`` from ``[B, C, *S]`` inputs.

    ``pdekit.rollout.relative_error`` over the space axes: a zero target channel counts its absolute error.

    Args:
        prediction: ``[B, C, *S]``.
        target: ``[B, C, *S]``.

    Returns:
        ``[B, C]``.
    """
    return relative_error(prediction, target, start_dim=2)
