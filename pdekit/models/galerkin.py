"""The Galerkin transformer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from neuralop.layers.spectral_convolution import SpectralConv
from torch import nn

from pdekit.models.attention import GalerkinAttention
from pdekit.models.conditioning import append_coordinates, append_parameters


@dataclass(frozen=True)
class GalerkinConfig:
    """Settings of ``GalerkinTransformer``; ``attention="fourier"`` selects the Fourier-type attention."""

    width: int = 32
    heads: int = 4
    layers: int = 3
    attention: str = "galerkin"
    regressor_modes: int = 12
    regressor_layers: int = 2


class GalerkinTransformer(nn.Module):
    """Galerkin transformer (S. Cao, "Choose a transformer: Fourier or Galerkin", NeurIPS 2021).

    A pointwise lift of the input, grid coordinates and PDE parameters; ``layers`` encoder blocks
    ``z <- z + attention(z); z <- z + FFN(z)`` with softmax-free Galerkin attention; then the paper's
    spectral regressor (Fourier layers ``z <- act(z + SpectralConv(z))``) and a pointwise projection.

    ``forward(x [B, in_channels, *S], params [B, n_params] | None) -> [B, out_channels, *S]``.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, n_params: int = 0, config: GalerkinConfig = GalerkinConfig()):
        super().__init__()
        self.n_params = n_params
        width = config.width
        self.lift = nn.Linear(in_channels + n_params + dim, width)
        self.attention = nn.ModuleList([GalerkinAttention(width, config.heads, config.attention) for _ in range(config.layers)])
        self.feed_forward = nn.ModuleList(
            [nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width)) for _ in range(config.layers)]
        )
        self.regressor = nn.ModuleList([SpectralConv(width, width, (config.regressor_modes,) * dim) for _ in range(config.regressor_layers)])
        self.project = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, out_channels))

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        space = x.shape[2:]
        z = self.lift(append_coordinates(append_parameters(x, params, self.n_params)).flatten(2).transpose(1, 2))  # [B, n, width]
        for attention, feed_forward in zip(self.attention, self.feed_forward):
            z = z + attention(z)
            z = z + feed_forward(z)
        z = z.transpose(1, 2).reshape(x.shape[0], -1, *space)
        for spectral in self.regressor:
            z = nn.functional.gelu(z + spectral(z))
        return self.project(z.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(x.shape[0], -1, *space)
