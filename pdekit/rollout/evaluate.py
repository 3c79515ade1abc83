"""Long-rollout metrics against a reference trajectory: error and correlation per step, spectra, enstrophy.

Trajectories are ``[B, T, C, *S]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def relative_l2_per_step(prediction: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Returns the relative L2 error at each step, mean over members: ``[T]``."""
    difference = (prediction - reference).flatten(2).norm(dim=-1)
    return (difference / reference.flatten(2).norm(dim=-1)).mean(0)


def relative_l2_per_field(prediction: torch.Tensor, reference: torch.Tensor, fields: Sequence[tuple[str, int]]) -> dict[str, torch.Tensor]:
    """Returns each field's relative L2 error per member and step, ``{name: [B, T]}``, from ``[B, T, C, *S]``.

    ``fields`` lists ``(name, channels)`` in channel order; a vector field's error is that of the
    whole vector (all its components in one norm), and no two fields share a norm, so fields of
    different units never mix. A zero reference counts as the error's norm itself, not infinity.
    """
    if sum(n for _, n in fields) != prediction.shape[2]:
        raise ValueError(f"fields {list(fields)} cover {sum(n for _, n in fields)} channels; the trajectories have {prediction.shape[2]}")
    errors, first = {}, 0
    for name, channels in fields:
        p, r = prediction[:, :, first : first + channels], reference[:, :, first : first + channels]
        difference, norm = (p - r).flatten(2).norm(dim=-1), r.flatten(2).norm(dim=-1)
        errors[name] = torch.where(norm > 0, difference / torch.where(norm > 0, norm, 1.0), difference)
        first += channels
    return errors


def correlation_per_step(prediction: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Returns the Pearson correlation of prediction and reference over all points of each member and step: ``[B, T]``."""
    p = prediction.flatten(2) - prediction.flatten(2).mean(-1, keepdim=True)
    r = reference.flatten(2) - reference.flatten(2).mean(-1, keepdim=True)
    return (p * r).sum(-1) / (p.norm(dim=-1) * r.norm(dim=-1)).clamp_min(torch.finfo(p.dtype).tiny)


def correlation_time(prediction: torch.Tensor, reference: torch.Tensor, threshold: float = 0.8) -> torch.Tensor:
    """Returns, per member, the number of steps before the correlation first drops below ``threshold``: ``[B]``.

    The measure of "Stable long rollouts" in PDE-Refiner (Lippe et al., NeurIPS 2023); a member that
    never drops below it scores the full length ``T``.
    """
    below = correlation_per_step(prediction, reference) < threshold  # [B, T]
    steps = prediction.shape[1]
    first = torch.where(below.any(1), below.float().argmax(1), torch.full_like(below[:, 0], steps, dtype=torch.long))
    return first


def energy_spectrum(u: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(k, E(k))``: the energy ``|u_hat|^2 / 2`` summed over shells of integer wavenumber magnitude.

    ``u: [..., *S]`` on a periodic grid whose last ``dim`` axes are space; ``E`` keeps the leading axes.
    """
    shape = u.shape[-dim:]
    coefficients = torch.fft.fftn(u, dim=tuple(range(-dim, 0)), norm="forward")
    density = 0.5 * coefficients.abs().square()
    axes = [torch.fft.fftfreq(n, 1 / n, device=u.device) for n in shape]
    magnitude = torch.sqrt(sum(g.square() for g in torch.meshgrid(*axes, indexing="ij"))).round().long()
    shells = int(magnitude.max()) + 1
    flat = density.flatten(-dim)
    spectrum = torch.zeros(*flat.shape[:-1], shells, dtype=flat.dtype, device=u.device)
    spectrum.index_add_(-1, magnitude.flatten(), flat)
    return torch.arange(shells, device=u.device), spectrum


def enstrophy(vorticity: torch.Tensor) -> torch.Tensor:
    """Returns ``mean(w^2) / 2`` over space for each leading index: ``[B, T]`` from ``[B, T, 1, *S]``."""
    return 0.5 * vorticity.flatten(2).square().mean(-1)
