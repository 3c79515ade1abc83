"""The factorized Fourier neural operator (F-FNO)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pdekit.models.conditioning import append_coordinates, append_parameters


@dataclass(frozen=True)
class FFNOConfig:
    """Settings of ``FactorizedFNO``; ``share_weights`` uses one set of Fourier weights in every layer."""

    modes: int = 12
    width: int = 32
    layers: int = 4
    share_weights: bool = False
    expansion: int = 4


class FactorizedSpectralConv(nn.Module):
    """Returns ``sum_d IFFT_d(W_d . FFT_d(z))``: a separable spectral convolution, one 1D transform per axis.

    Each axis keeps its lowest ``modes`` Fourier modes and mixes channels with its own complex
    weights ``[modes, width, width]``; the cost grows with the sum, not the product, of the modes.
    """

    def __init__(self, width: int, modes: int, dim: int):
        super().__init__()
        self.modes = modes
        scale = 1 / width
        self.weights = nn.ParameterList([nn.Parameter(scale * torch.randn(modes, width, width, 2)) for _ in range(dim)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(z)
        for axis, weight in enumerate(self.weights):
            dim = 2 + axis
            n = z.shape[dim]
            modes = min(self.modes, n // 2 + 1)
            spectrum = torch.fft.rfft(z, dim=dim, norm="ortho").movedim(dim, -1)[..., :modes]  # [B, C, ..., modes]
            mixed = torch.einsum("bc...m,mcd->bd...m", spectrum, torch.view_as_complex(weight[:modes]))
            full = torch.zeros(*mixed.shape[:-1], n // 2 + 1, dtype=mixed.dtype, device=mixed.device)
            full[..., :modes] = mixed
            out = out + torch.fft.irfft(full, n=n, dim=-1, norm="ortho").movedim(-1, dim)
        return out


class FactorizedFNO(nn.Module):
    """Factorized Fourier neural operator (Tran, Mathews, Xie and Ong, "Factorized Fourier neural
    operators", ICLR 2023).

    Each layer applies the separable spectral convolution ``K`` and then a two-layer feed-forward
    network inside the residual: ``z <- z + W_2 act(W_1 K(z))``, the paper's improved residual that
    lets it train deep stacks. Grid coordinates and PDE parameters enter as input channels.

    ``forward(x [B, in_channels, *S], params [B, n_params] | None) -> [B, out_channels, *S]``.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, n_params: int = 0, config: FFNOConfig = FFNOConfig()):
        super().__init__()
        self.n_params = n_params
        width = config.width
        self.lift = nn.Conv1d(in_channels + n_params + dim, width, 1)
        shared = FactorizedSpectralConv(width, config.modes, dim) if config.share_weights else None
        self.spectral = nn.ModuleList([shared or FactorizedSpectralConv(width, config.modes, dim) for _ in range(config.layers)])
        self.feed_forward = nn.ModuleList(
            [nn.Sequential(nn.Conv1d(width, config.expansion * width, 1), nn.GELU(), nn.Conv1d(config.expansion * width, width, 1)) for _ in range(config.layers)]
        )
        self.project = nn.Sequential(nn.Conv1d(width, 2 * width, 1), nn.GELU(), nn.Conv1d(2 * width, out_channels, 1))

    @staticmethod
    def _pointwise(layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return layer(z.flatten(2)).view(z.shape[0], -1, *z.shape[2:])

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        z = self._pointwise(self.lift, append_coordinates(append_parameters(x, params, self.n_params)))
        for spectral, feed_forward in zip(self.spectral, self.feed_forward):
            z = z + self._pointwise(feed_forward, spectral(z))
        return self._pointwise(self.project, z)
