"""Long-rollout metrics against a reference trajectory: error and correlation per step, spectra, enstrophy.

Trajectories are ``[B, T, C, *S]``. ``relative_error`` is pdekit's one relative L2 error: the
Trainer's validation, the rollout and per-field errors here and the PINN error all call it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def relative_error(prediction: torch.Tensor, reference: torch.Tensor, start_dim: int = 2) -> torch.Tensor:
    """Returns the relative L2 error ``||prediction - reference|| / ||reference||`` over the axes from ``start_dim`` on.

    Where the reference is zero the error is the absolute one, ``||prediction - reference||``: 0 for
    a zero prediction, never NaN or infinity. (Clamping the norm at the smallest normal number
    instead, 1.2e-38 in float32, overflows to infinity for any error above about 4.)

    Args:
        prediction: ``[*lead, *rest]``, the same shape as ``reference``.
        reference: ``[*lead, *rest]``; ``lead`` has ``start_dim`` axes.
        start_dim: the first axis of the norm; the axes before it are kept (0: one norm over everything).

    Returns:
        The errors, shaped ``[*lead]`` (a 0-d tensor for ``start_dim=0``).

    Raises:
        ValueError: if the shapes differ.
    """
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction and reference must have the same shape; got {tuple(prediction.shape)} and {tuple(reference.shape)}")
    difference = (prediction - reference).flatten(start_dim).norm(dim=-1)
    norm = reference.flatten(start_dim).norm(dim=-1)
    positive = norm > 0
    return torch.where(positive, difference / torch.where(positive, norm, torch.ones_like(norm)), difference)


def relative_l2_per_step(prediction: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Returns the relative L2 error at each step, mean over members: ``[T]``.

    Each member's and step's norm runs over all channels and points (``relative_error``; a zero
    reference state counts its absolute error).

    Args:
        prediction: ``[B, T, C, *S]``.
        reference: ``[B, T, C, *S]``.

    Returns:
        ``[T]``, the mean over the ``B`` members.
    """
    return relative_error(prediction, reference).mean(0)


def relative_l2_per_field(prediction: torch.Tensor, reference: torch.Tensor, fields: Sequence[tuple[str, int]]) -> dict[str, torch.Tensor]:
    """Returns each field's relative L2 error per member and step, ``{name: [B, T]}``, from ``[B, T, C, *S]``.

    ``fields`` lists ``(name, channels)`` in channel order; a vector field's error is that of the
    whole vector (all its components in one norm), and no two fields share a norm, so fields of
    different units never mix. A zero reference counts as the error's norm itself, not infinity.

    Args:
        prediction: ``[B, T, C, *S]``.
        reference: ``[B, T, C, *S]``.
        fields: ``(name, channels)`` pairs whose channels add up to ``C``.

    Returns:
        ``{name: [B, T]}`` in the order of ``fields``.

    Raises:
        ValueError: if ``fields`` do not cover the ``C`` channels.
    """
    if sum(n for _, n in fields) != prediction.shape[2]:
        raise ValueError(f"fields {list(fields)} cover {sum(n for _, n in fields)} channels; the trajectories have {prediction.shape[2]}")
    errors, first = {}, 0
    for name, channels in fields:
        errors[name] = relative_error(prediction[:, :, first : first + channels], reference[:, :, first : first + channels])
        first += channels
    return errors


def correlation_per_step(prediction: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Returns the Pearson correlation of prediction and reference over all points of each member and step: ``[B, T]``.

    A constant state (zero variance) correlates 0 with anything.

    Args:
        prediction: ``[B, T, C, *S]``.
        reference: ``[B, T, C, *S]``.

    Returns:
        ``[B, T]``, each in ``[-1, 1]``.
    """
    p = prediction.flatten(2) - prediction.flatten(2).mean(-1, keepdim=True)
    r = reference.flatten(2) - reference.flatten(2).mean(-1, keepdim=True)
    return (p * r).sum(-1) / (p.norm(dim=-1) * r.norm(dim=-1)).clamp_min(torch.finfo(p.dtype).tiny)


# PDE-Refiner's threshold (Lippe et al., NeurIPS 2023); Kochkov et al. (PNAS 2021) count the time above 0.95.
CORRELATION_THRESHOLD = 0.8


def correlation_time(prediction: torch.Tensor, reference: torch.Tensor, threshold: float = CORRELATION_THRESHOLD) -> torch.Tensor:
    """Returns, per member, the number of steps before the correlation first drops below ``threshold``: ``[B]``.

    The measure of "Stable long rollouts" in PDE-Refiner (Lippe et al., NeurIPS 2023); a member that
    never drops below it scores the full length ``T``.

    Args:
        prediction: ``[B, T, C, *S]``.
        reference: ``[B, T, C, *S]``.
        threshold: the correlation (``correlation_per_step``) below which a step counts as decorrelated.

    Returns:
        ``[B]`` integer step counts in ``[0, T]``.
    """
    below = correlation_per_step(prediction, reference) < threshold  # [B, T]
    steps = prediction.shape[1]
    first = torch.where(below.any(1), below.float().argmax(1), torch.full_like(below[:, 0], steps, dtype=torch.long))
    return first


def energy_spectrum(u: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(k, E(k))``: the energy ``|u_hat|^2 / 2`` summed over shells of integer wavenumber magnitude.

    The Fourier coefficients are normalised by the number of points (``norm="forward"``), so by
    Parseval the shells sum to the mean of ``u^2 / 2`` over the grid.

    Args:
        u: ``[..., *S]`` on a periodic grid whose last ``dim`` axes are space.
        dim: the number of space axes.

    Returns:
        ``(k [K], E [..., K])``: the shells' integer wavenumbers ``0 .. K - 1`` and their energies, ``E``
        keeping ``u``'s leading axes.
    """
    shape = u.shape[-dim:]
    coefficients = torch.fft.fftn(u, dim=tuple(range(-dim, 0)), norm="forward")
    density = 0.5 * coefficients.abs().square()
    axes = [torch.fft.fftfreq(n, 1 / n, device=u.device) for n in shape]
    squared = torch.stack(torch.meshgrid(*axes, indexing="ij")).square().sum(0)
    magnitude = torch.sqrt(squared).round().long()
    shells = int(magnitude.max()) + 1
    flat = density.flatten(-dim)
    spectrum = torch.zeros(*flat.shape[:-1], shells, dtype=flat.dtype, device=u.device)
    spectrum.index_add_(-1, magnitude.flatten(), flat)
    return torch.arange(shells, device=u.device), spectrum


def enstrophy(vorticity: torch.Tensor) -> torch.Tensor:
    """Returns ``mean(w^2) / 2`` over space for each leading index: ``[B, T]`` from ``[B, T, 1, *S]``.

    Args:
        vorticity: ``[B, T, 1, *S]`` (any leading axes: the mean runs over the axes from 2 on).

    Returns:
        ``[B, T]``.
    """
    return 0.5 * vorticity.flatten(2).square().mean(-1)
