"""Inputs of the operator models: per-member PDE parameters and grid coordinates as extra channels."""

from __future__ import annotations

import torch


def append_parameters(x: torch.Tensor, params: torch.Tensor | None, n_params: int) -> torch.Tensor:
    """Returns ``x [B, C, *S]`` with ``params [B, n_params]`` appended as constant channels: ``[B, C + n_params, *S]``."""
    if n_params == 0:
        if params is not None and params.numel() > 0:
            raise ValueError(
                f"this model was built without parameter conditioning (n_params=0) but got params of shape {tuple(params.shape)}"
            )
        return x
    if params is None or params.shape != (x.shape[0], n_params):
        got = None if params is None else tuple(params.shape)
        raise ValueError(
            f"this model is conditioned on {n_params} parameters: expected params of shape ({x.shape[0]}, {n_params}), got {got}"
        )
    constant = params.to(x.dtype).view(*params.shape, *([1] * (x.ndim - 2))).expand(-1, -1, *x.shape[2:])
    return torch.cat([x, constant], dim=1)


def append_coordinates(x: torch.Tensor) -> torch.Tensor:
    """Returns ``x [B, C, *S]`` with the cell coordinates in ``[0, 1)`` of every axis appended: ``[B, C + d, *S]``.

    Coordinates are those of a periodic grid (``j / n``), so the same point has the same coordinate
    at every resolution.
    """
    d = x.ndim - 2
    axes = [torch.arange(n, device=x.device, dtype=x.dtype) / n for n in x.shape[2:]]
    grids = torch.meshgrid(*axes, indexing="ij") if d > 1 else axes
    return torch.cat([x, *(g.expand(x.shape[0], 1, *x.shape[2:]) for g in grids)], dim=1)
