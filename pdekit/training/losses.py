"""Relative L2 and H1 losses, and the Galerkin transformer's regularised L2, averaged over the batch.

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


def galerkin_h1(dim: int, gamma: float = 0.1) -> Loss:
    """Returns ``loss(prediction, target)``: the Galerkin transformer's 1D training loss, relative L2 plus a relative-gradient regulariser.

    Cao, "Choose a Transformer: Fourier or Galerkin", NeurIPS 2021 (``WeightedL2Loss(regularizer=True)``
    in the authors' ``libs/ft.py``; ``gamma = 0.1`` is their 1D default, ``get_args_1d``). Per sample
    and channel, with ``h = 1 / n`` the spacing on the unit interval and ``D`` the central difference
    ``(u[i+1] - u[i-1]) / 2h``:

        ||p - t|| / ||t||  +  sqrt(gamma h) ||D p - D t||_interior / ||D t||

    each term averaged over batch and channels (the authors' ``gamma * h`` inside the square root;
    one ``h`` of their mesh-weighted norms cancels). ``D p`` is taken at the interior points only, as
    the authors take it; ``D t`` is periodic. Where ``t`` (or ``D t``) is zero the term is the
    absolute error, as ``relative_error`` has it. Deliberate differences: the authors difference the
    target on the 8192-point grid before subsampling and pad it as if its last point repeated its
    first; here it is differenced on the training grid, periodically, which needs no finer data.

    Raises:
        ValueError: ``dim`` is not 1 (the authors' 2D loss, ``WeightedL2Loss2d``, is another one).
    """
    if dim != 1:
        raise ValueError(f"trainer.loss 'galerkin_h1' is the Galerkin authors' 1D loss; the data have {dim} space axes")

    def loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n = target.shape[-1]
        slope = (target.roll(-1, -1) - target.roll(1, -1)) * (n / 2)
        mismatch = ((prediction[..., 2:] - prediction[..., :-2]) * (n / 2) - slope[..., 1:-1]).norm(dim=-1)
        norm = slope.norm(dim=-1)
        regulariser = mismatch / torch.where(norm > 0, norm, torch.ones_like(norm))
        return relative_error(prediction, target).mean() + (gamma / n) ** 0.5 * regulariser.mean()

    return loss


LOSSES: dict[str, Callable[[int], Loss]] = {"l2": relative_l2, "h1": relative_h1, "galerkin_h1": galerkin_h1}


def make_loss(name: str, dim: int) -> Loss:
    """Returns the loss ``name`` over ``dim`` space axes.

    Args:
        name: a name in ``LOSSES``: ``"l2"``, ``"h1"`` or ``"galerkin_h1"``.
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
