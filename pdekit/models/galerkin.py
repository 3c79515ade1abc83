"""The Galerkin transformer and its Fourier-type variant."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn

from pdekit.models.attention import GalerkinAttention
from pdekit.models.conditioning import append_coordinates, append_parameters


@dataclass(frozen=True)
class GalerkinConfig:
    """Settings of ``GalerkinTransformer``; ``attention="fourier"`` selects the Fourier-type attention.

    ``xavier_gain=None`` is the authors' gain for the chosen attention (1e-2 Galerkin, 1e-3
    Fourier, as their ``config.yml`` and README commands give it; their ``ex1_burgers.py`` run
    without arguments overrides it with its ``--xavier-init`` default, 1e-2, for both types, which
    ``benchmarks/papers/galerkin_burgers.py`` follows); ``regressor_width=None`` is ``width // 2``
    (their Burgers setting, 48 for 96).

    Args:
        width: the channels of the encoder.
        heads: attention heads (a divisor of ``width``).
        layers: encoder blocks.
        attention: ``"galerkin"`` or ``"fourier"``.
        regressor_width: the spectral regressor's channels (``None``: ``width // 2``).
        regressor_modes: the Fourier modes each regressor layer keeps per axis.
        regressor_layers: the regressor's Fourier layers.
        xavier_gain: the Xavier-uniform gain of ``W^Q, W^K, W^V`` (``None``: the authors' for ``attention``).
        diagonal_weight: the multiple of the identity added to ``W^Q, W^K, W^V`` at initialisation.
        attention_dropout: the dropout rate on every layer's attention matrix in training (the
            authors' code: 0.5, always on; see ``GalerkinAttention``).
    """

    width: int = 32
    heads: int = 1
    layers: int = 4
    attention: str = "galerkin"
    regressor_width: int | None = None
    regressor_modes: int = 12
    regressor_layers: int = 2
    xavier_gain: float | None = None
    diagonal_weight: float = 1e-2
    attention_dropout: float = 0.0


class SpectralConvolution(nn.Module):
    """Returns ``IFFT(R . FFT(z))`` keeping the lowest ``modes`` Fourier modes of every axis.

    In 1D the modes ``0 .. modes-1`` of the real FFT; in 2D the block ``-modes <= k_0 < modes``
    (its non-negative and negative halves with their own weights) by ``0 <= k_1 < modes``, as in the
    FNO code the authors re-implemented. A grid too coarse for ``modes`` keeps the modes it has,
    each with the weight it has on a finer grid.

    ``forward(z [B, in_channels, *S]) -> [B, out_channels, *S]``.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int, dim: int):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"the spectral regressor is defined for dim 1 or 2; got {dim}")
        if modes < 1:
            raise ValueError(f"regressor_modes must be a positive integer; got {modes}")
        self.modes, self.dim = modes, dim
        # One weight block per sign pattern of the axes before the last (rfft) axis.
        self.signs = list(itertools.product((1, -1), repeat=dim - 1))
        self.weights = nn.ParameterList([nn.Parameter(torch.empty(in_channels, out_channels, *(modes,) * dim, 2)) for _ in self.signs])
        # The authors' Xavier-normal gains: 1/(in*out) in 1D, sqrt(in+out)/(in*out) in 2D.
        gain = 1 / (in_channels * out_channels) * ((in_channels + out_channels) ** 0.5 if dim == 2 else 1.0)
        for weight in self.weights:
            nn.init.xavier_normal_(weight, gain=gain)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        space = z.shape[2:]
        if len(space) != self.dim:
            raise ValueError(
                f"this spectral convolution is {self.dim}D: expected z of shape [B, C, *S] with {self.dim} space axes; got {tuple(z.shape)}"
            )
        axes = tuple(range(2, z.ndim))
        # In the weights' precision: under autocast z may be half, which cuFFT takes only at power-of-2 sizes.
        spectrum = torch.fft.rfftn(z.to(self.weights[0].dtype), dim=axes, norm="ortho")
        kept = [min(self.modes, n // 2) for n in space[:-1]] + [min(self.modes, space[-1] // 2 + 1)]
        out = torch.zeros(z.shape[0], self.weights[0].shape[1], *spectrum.shape[2:], dtype=spectrum.dtype, device=z.device)
        for signs, weight in zip(self.signs, self.weights, strict=True):
            grid = [slice(0, m) if s > 0 else slice(-m, None) for s, m in zip(signs, kept[:-1], strict=True)] + [slice(0, kept[-1])]
            # weight index j of a negative half is the frequency j - modes, on every grid.
            own = [slice(0, m) if s > 0 else slice(self.modes - m, None) for s, m in zip(signs, kept[:-1], strict=True)] + [
                slice(0, kept[-1])
            ]
            # the index tuples are built first: mypy reads x[(a, *b)] as Python 3.11's x[a, *b]
            own_index, grid_index = (slice(None), slice(None), *own), (slice(None), slice(None), *grid)
            block = torch.view_as_complex(weight)[own_index]
            out[grid_index] = torch.einsum("bi...,io...->bo...", spectrum[grid_index], block)
        return torch.fft.irfftn(out, s=space, dim=axes, norm="ortho")


class SpectralRegressor(nn.Module):
    """Returns the authors' spectral decoder: ``layers`` Fourier layers ``z <- SiLU(W z + b + K z)``
    (``K`` a ``SpectralConvolution``, the first layer mapping ``in_channels`` to ``width``), then a
    pointwise ``Linear(width, width) -> SiLU -> Linear(width, out_channels)``.

    ``forward(z [B, in_channels, *S]) -> [B, out_channels, *S]``.
    """

    def __init__(self, in_channels: int, width: int, out_channels: int, modes: int, layers: int, dim: int):
        super().__init__()
        if layers < 1:
            raise ValueError(f"regressor_layers must be a positive integer; got {layers}")
        widths = [in_channels] + [width] * layers
        self.linear = nn.ModuleList([nn.Linear(a, b) for a, b in pairwise(widths)])
        self.spectral = nn.ModuleList([SpectralConvolution(a, b, modes, dim) for a, b in pairwise(widths)])
        self.project = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, out_channels))

    @staticmethod
    def _pointwise(layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return layer(z.movedim(1, -1)).movedim(-1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for linear, spectral in zip(self.linear, self.spectral, strict=True):
            z = nn.functional.silu(self._pointwise(linear, z) + spectral(z))
        return self._pointwise(self.project, z)


class GalerkinTransformer(nn.Module):
    """Galerkin transformer (S. Cao, "Choose a transformer: Fourier or Galerkin", NeurIPS 2021,
    arXiv:2105.14995); with ``attention="fourier"`` the paper's Fourier transformer.

    A pointwise linear lift of the input, the PDE parameters and the grid coordinates to ``width``
    channels; ``layers`` encoder blocks ``z <- z + Attn(z, x); z <- z + FFN(z)`` with the
    softmax-free attention of ``GalerkinAttention`` (coordinates ``x`` concatenated to every head's
    ``Q, K, V``; layer normalization inside the attention only, none around the block, the
    paper's scheme that lets the scale of the data pass through) and
    ``FFN = Linear(width, 2 width) -> ReLU -> Linear(2 width, width)``; then the
    ``SpectralRegressor`` (``regressor_layers`` layers ``SiLU(W z + b + K z)`` of width
    ``regressor_width`` keeping ``regressor_modes`` modes, and a pointwise MLP). This is the
    authors' ``SimpleTransformer`` with ``decoder_type="ifft"`` (``libs/model.py``) and in 2D
    their ``FourierTransformer2DLite``.

    The paper's Burgers model (``config.yml``, ``ex1_burgers``; examples/README.md) is
    ``width=96, heads=1, layers=4, regressor_width=48, regressor_modes=16, regressor_layers=2``,
    Xavier gain 1e-3 (Fourier type) or 1e-2 (Galerkin type) and diagonal 1e-2, trained at
    n = 2048 or 8192 points. The defaults here are CPU-sized: ``width=32, heads=1, layers=4,
    regressor_width=16, regressor_modes=12``.

    Deliberately different from the authors' code: no dropout by default, and the attention
    dropout (``attention_dropout``) in training only (see ``GalerkinAttention``; their configured
    Burgers dropouts are 0, their attention dropout 0.5 always on); PDE parameters enter as constant input channels (the paper has
    none); coordinates are ``j / n`` of a periodic grid (``append_coordinates``), the same point
    having the same coordinate at every resolution, rather than their ``linspace(0, 1, n)``; the
    lift sees the coordinates in 1D as well as in 2D (the authors' 1D model lifts ``u`` alone,
    their 2D model ``u`` and the coordinates); the modes a grid cannot hold are dropped rather
    than an error. Their Darcy model's CNN down- and up-sampling around the encoder is not part
    of this operator.

    ``forward(x [B, in_channels, *S], params [B, n_params] | None) -> [B, out_channels, *S]``.

    Args:
        in_channels: the input's channels ``C_in``.
        out_channels: the output's channels ``C_out``.
        dim: the space axes (1 or 2).
        n_params: the PDE parameters per member appended as channels (0: none).
        config: the settings.

    Raises:
        ValueError: if ``dim`` is not 1 or 2, or a setting is out of range.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, n_params: int = 0, config: GalerkinConfig = GalerkinConfig()):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"the Galerkin transformer is defined here for dim 1 or 2; got {dim}")
        self.n_params, self.dim = n_params, dim
        width = config.width
        regressor_width = width // 2 if config.regressor_width is None else config.regressor_width
        self.lift = nn.Linear(in_channels + n_params + dim, width)
        self.attention = nn.ModuleList(
            [
                GalerkinAttention(
                    width, config.heads, config.attention, dim, config.xavier_gain, config.diagonal_weight, dropout=config.attention_dropout
                )
                for _ in range(config.layers)
            ]
        )
        self.feed_forward = nn.ModuleList(
            [nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, width)) for _ in range(config.layers)]
        )
        self.regressor = SpectralRegressor(width, regressor_width, out_channels, config.regressor_modes, config.regressor_layers, dim)

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the operator's output ``[B, out_channels, *S]``.

        Args:
            x: ``[B, in_channels, *S]`` on a periodic grid.
            params: ``[B, n_params]``, or ``None`` for a model without parameters.

        Returns:
            ``[B, out_channels, *S]``.

        Raises:
            ValueError: if ``x`` has another number of space axes, or ``params`` another shape.
        """
        if x.ndim != 2 + self.dim:
            raise ValueError(f"this model is {self.dim}D: expected x of shape [B, C, *S] with {self.dim} space axes; got {tuple(x.shape)}")
        b, space = x.shape[0], x.shape[2:]
        features = append_coordinates(append_parameters(x, params, self.n_params)).flatten(2).transpose(1, 2)  # [B, n, C+P+d]
        coordinates = features[..., -self.dim :]
        z = self.lift(features)
        for attention, feed_forward in zip(self.attention, self.feed_forward, strict=True):
            z = z + attention(z, coordinates)
            z = z + feed_forward(z)
        return self.regressor(z.transpose(1, 2).reshape(b, -1, *space))
