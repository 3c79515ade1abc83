"""The factorized-attention transformer (FactFormer): axial kernel integrals computed from 1D sub-functions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pdekit.models.conditioning import append_parameters

ROPE_BASE = 10_000.0
"""RoFormer's base: feature pair ``i`` of a width-``d`` vector turns at the frequency ``theta_i = ROPE_BASE^(-2i/d)``."""
ROPE_POSITION_SCALE = 64.0
"""Positions are multiplied by this before the RoFormer rotation (the authors' ``min_freq = 1/64``)."""
GROUP_NORM_EPS = 1e-8


@dataclass(frozen=True)
class FactFormerConfig:
    """Settings of ``FactFormer``; the defaults are sized for CPU tests. The paper's Kolmogorov-flow
    (2D Navier-Stokes, 128²) model is ``width=128, heads=8, dim_head=64, kernel_multiplier=2, layers=4,
    domain_length=2*pi, fourier_feature_scale=8``; its 3D models use ``kernel_multiplier=3``. The default
    positions (``domain_length=1, fourier_feature_scale=1``) are those of the authors' unit-square Darcy runs.

    Args:
        width: the channels between blocks, a multiple of 8 (the output head's groups).
        heads: the kernel's heads.
        dim_head: each head's value width.
        kernel_multiplier: queries and keys have ``dim_head * kernel_multiplier`` features, an even
            number (RoPE rotates pairs).
        layers: the blocks.
        domain_length: the length of every axis in the units of the positions that RoPE and the
            Fourier features see (points at ``domain_length * j / n``).
        fourier_feature_scale: the standard deviation of the Gaussian Fourier features' frequencies.
    """

    width: int = 32
    heads: int = 4
    dim_head: int = 16
    kernel_multiplier: int = 2
    layers: int = 3
    domain_length: float = 1.0
    fourier_feature_scale: float = 1.0


def rotary_frequencies(d: int) -> torch.Tensor:
    """Returns RoFormer's frequencies ``theta_i = ROPE_BASE^(-2i/d)``, ``i = 0 .. d/2 - 1``: ``[d // 2]``."""
    return ROPE_BASE ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)


def rotary_embedding(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Returns ``x [..., n, d]`` with feature pair ``(2i, 2i+1)`` of point ``j`` rotated by ``ROPE_POSITION_SCALE * t_j * theta_i``.

    Rotary position embedding (Su et al., "RoFormer", 2021) at positions ``t = positions [n]``; the
    product of two rotated vectors then depends on the positions only through ``t_j - t_k``.
    """
    n, d = x.shape[-2:]
    if d % 2:
        raise ValueError(f"rotary embedding rotates feature pairs: the feature width must be even; got {d}")
    dtype = torch.promote_types(x.dtype, torch.float32)  # angles reach hundreds of radians: not in half precision
    angle = ROPE_POSITION_SCALE * positions.to(dtype)[:, None] * rotary_frequencies(d).to(positions.device, dtype)  # [n, d/2]
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)
    first, second = x[..., 0::2], x[..., 1::2]
    return torch.stack([first * cos - second * sin, first * sin + second * cos], dim=-1).flatten(-2)


def integrate_along_axes(v: torch.Tensor, kernels: list[torch.Tensor]) -> torch.Tensor:
    """Returns ``v [B, h, *S, c]`` with each axis ``a`` contracted with its kernel ``kernels[a] [B, h, n_a, n_a]``.

    ``out[.., i_1, .., i_d, :] = sum_j K_1[i_1, j_1] .. K_d[i_d, j_d] v[.., j_1, .., j_d, :]``: the kernel
    integral of the factorized kernel ``K_1 x .. x K_d``, at cost ``O(N sum_a n_a)`` for ``N`` points.
    """
    b, h, *space, _ = v.shape
    for axis, kernel in enumerate(kernels):
        n = space[axis]
        moved = v.movedim(2 + axis, -2)  # [B, h, *other axes, n_a, c]
        v = (kernel.view(b, h, *([1] * (len(space) - 1)), n, n) @ moved).movedim(-2, 2 + axis)
    return v


class SubfunctionProjection(nn.Module):
    """Returns the 1D sub-function of ``u`` along one axis: a linear map, the mean over the other axes, then LayerNorm and a GEGLU MLP.

    ``forward(u [B, *S, width], axis) -> [B, n_axis, width]``. The linear map has no bias, so it
    commutes with the mean: the mean is taken first, which costs ``O(N width)`` instead of ``O(N width^2)``.
    """

    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, width, bias=False)
        self.norm = nn.LayerNorm(width)
        self.gated = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, u: torch.Tensor, axis: int) -> torch.Tensor:
        others = tuple(1 + a for a in range(u.ndim - 2) if a != axis)
        s = self.linear(u.mean(dim=others) if others else u)
        value, gate = self.gated(self.norm(s)).chunk(2, dim=-1)
        return self.out(F.gelu(value) * gate)


class AxialKernel(nn.Module):
    """Returns the kernel of one axis, ``K = R(q) R(k)^T`` with ``q, k`` linear maps of a 1D sub-function and ``R`` the rotary embedding.

    No softmax, no LayerNorm on ``q`` and ``k`` and no quadrature weight ``1/n``: the GroupNorm that
    follows the kernel integral in ``FactorizedAttention`` removes the kernel's growth with ``n``.
    ``scale`` is a constant factor (the authors' ``1/sqrt(qk_width)`` for wide kernels).

    ``forward(s [B, n, width], positions [n]) -> [B, heads, n, n]``.
    """

    def __init__(self, width: int, heads: int, qk_width: int, scale: float = 1.0):
        super().__init__()
        self.heads, self.scale = heads, scale
        self.to_q = nn.Linear(width, heads * qk_width, bias=False)
        self.to_k = nn.Linear(width, heads * qk_width, bias=False)
        # the authors' initialisation: a near-zero kernel at the start of training
        nn.init.xavier_uniform_(self.to_q.weight, gain=0.02)
        nn.init.xavier_uniform_(self.to_k.weight, gain=0.02)

    def forward(self, s: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        q = self.to_q(s).unflatten(-1, (self.heads, -1)).transpose(1, 2)  # [B, h, n, qk_width]
        k = self.to_k(s).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        return rotary_embedding(q, positions) @ rotary_embedding(k, positions).transpose(-2, -1) * self.scale


class FactorizedAttention(nn.Module):
    """Returns the factorized kernel attention of ``z``: ``MLP(GroupNorm(K_1 .. K_d V(LN z)))``.

    The pre-LayerNorm'd input gives the value ``V`` (a linear map) and, through a shared linear map
    and one ``SubfunctionProjection`` per axis, the 1D sub-functions each ``AxialKernel`` is computed
    from. The kernel integral is normalized per head over the whole domain (GroupNorm, no affine),
    then mapped back to ``width`` by a two-layer GELU MLP.

    ``forward(z [B, *S, width], positions: d tensors [n_a]) -> [B, *S, width]``.
    """

    def __init__(self, width: int, dim: int, heads: int, dim_head: int, kernel_multiplier: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(width)
        self.to_value = nn.Linear(width, heads * dim_head, bias=False)
        self.to_input = nn.Linear(width, width, bias=False)
        self.projections = nn.ModuleList([SubfunctionProjection(width) for _ in range(dim)])
        qk_width = dim_head * kernel_multiplier
        scale = 1 / math.sqrt(qk_width) if kernel_multiplier > 4 else 1.0  # the authors' rule
        self.kernels = nn.ModuleList([AxialKernel(width, heads, qk_width, scale) for _ in range(dim)])
        self.out = nn.Sequential(nn.Linear(heads * dim_head, width, bias=False), nn.GELU(), nn.Linear(width, width, bias=False))

    def forward(self, z: torch.Tensor, positions: list[torch.Tensor]) -> torch.Tensor:
        u = self.norm(z)
        v = self.to_value(u).unflatten(-1, (self.heads, -1)).movedim(-2, 1)  # [B, h, *S, dim_head]
        u = self.to_input(u)
        kernels = [
            kernel(projection(u, axis), positions[axis])
            for axis, (projection, kernel) in enumerate(zip(self.projections, self.kernels, strict=True))
        ]
        v = integrate_along_axes(v, kernels)
        domain = tuple(range(2, v.ndim))  # each head's points and channels together
        v = (v - v.mean(dim=domain, keepdim=True)) / torch.sqrt(v.var(dim=domain, unbiased=False, keepdim=True) + GROUP_NORM_EPS)
        return self.out(v.movedim(1, -2).flatten(-2))


class GaussianFourierFeatures(nn.Module):
    """Returns ``[sin 2 pi x B, cos 2 pi x B]`` of points ``x [..., dim]`` for a fixed ``B [dim, width/2] ~ N(0, scale^2)``: ``[...,
    width]``.

    Tancik et al., "Fourier features let networks learn high frequency functions in low dimensional
    domains", NeurIPS 2020. ``B`` is drawn once and saved with the weights (a buffer).
    """

    frequencies: torch.Tensor  # [dim, width // 2], a buffer

    def __init__(self, dim: int, width: int, scale: float):
        super().__init__()
        self.register_buffer("frequencies", torch.randn(dim, width // 2) * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phase = 2 * torch.pi * x.to(self.frequencies.dtype) @ self.frequencies
        return torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)


class FactFormer(nn.Module):
    """Factorized Transformer (Z. Li, D. Shu and A. Barati Farimani, "Scalable transformer for PDE surrogate
    modeling", NeurIPS 2023; authors' code github.com/BaratiLab/FactFormer).

    A pointwise lift of the input and PDE parameters; ``layers`` blocks
    ``z <- z + Linear(GaussianFourierFeatures(x)); z <- z + FactorizedAttention(z)``; the paper's
    Navier-Stokes decoder with one latent step: ``l = Linear(z)``, ``l <- l + MLP(LN(l))``, then
    GroupNorm and a three-layer pointwise GELU network. Points are at ``x_a = domain_length * j / n_a``
    on every axis, for the Fourier features and the rotary embedding alike, so one model runs at any
    resolution: the sub-functions are averages, and the kernel integral's growth with ``n`` is
    removed by the GroupNorm after it. That holds once the grid resolves the positional
    frequencies: RoPE's fastest pair turns ``64 domain_length / (2 pi)`` times across an axis, about 10
    times for ``domain_length=1`` and 64 times for the paper's ``2 pi`` (which it ran at 128-256 points).
    At the authors' initialisation (query and key weights of gain 0.02, GroupNorm epsilon 1e-8) the
    kernel integral starts small, so the blocks start close to the identity.

    ``forward(x [B, in_channels, *S], params [B, n_params] | None) -> [B, out_channels, *S]``.

    Deliberate differences from the authors' code:

    - PDE parameters enter as constant input channels (pdekit's conditioning convention); the paper has none.
    - Positions are ``domain_length * j / n``, a periodic grid's points, the same at every resolution;
      the authors use ``linspace(0, L, n)``, whose last point duplicates the first on a periodic axis.
    - The GroupNorm uses the biased variance (the authors' code, the unbiased one), so that it does not
      change with the number of points.
    - RoPE rotates the feature pairs ``(2i, 2i+1)`` as in RoFormer; the authors pair ``i`` with ``i + d/2``,
      the same family of maps up to a fixed permutation of the learned ``q, k`` features.
    - One latent step of the paper's latent marching, its learned step embedding being the bias of
      the latent lift: pdekit's rollouts (``pdekit.rollout``) step the model instead.
    - The same block for 1, 2 and 3 (or more) axes; the authors write 2D and 3D blocks separately,
      and the 1D case is their block with no other axes to average over.

    Args:
        in_channels: the input's channels ``C_in``.
        out_channels: the output's channels ``C_out``.
        dim: the space axes (1 or more).
        n_params: the PDE parameters per member appended as channels (0: none).
        config: the settings.

    Raises:
        ValueError: naming the setting for a ``dim`` below 1, a ``width`` that is not a positive
            multiple of 8, a non-positive count, an odd query width or a non-positive ``domain_length``.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, n_params: int = 0, config: FactFormerConfig = FactFormerConfig()):
        super().__init__()
        width = config.width
        if dim < 1:
            raise ValueError(f"FactFormer dim must be at least 1; got {dim}")
        if width < 8 or width % 8:
            raise ValueError(f"FactFormer width must be a positive multiple of 8 (the output head's groups); got {width}")
        if config.heads < 1 or config.dim_head < 1 or config.kernel_multiplier < 1 or config.layers < 1:
            raise ValueError(f"FactFormer heads, dim_head, kernel_multiplier and layers must be positive; got {config}")
        if config.dim_head * config.kernel_multiplier % 2:
            raise ValueError(
                f"FactFormer dim_head * kernel_multiplier must be even (RoPE rotates pairs); got {config.dim_head} * "
                f"{config.kernel_multiplier}"
            )
        if not config.domain_length > 0:
            raise ValueError(f"FactFormer domain_length must be positive; got {config.domain_length}")
        self.dim, self.n_params, self.domain_length = dim, n_params, config.domain_length
        latent = 2 * width
        self.lift = nn.Linear(in_channels + n_params, width)
        self.position_features = nn.ModuleList(
            [
                nn.Sequential(GaussianFourierFeatures(dim, width, config.fourier_feature_scale), nn.Linear(width, width))
                for _ in range(config.layers)
            ]
        )
        self.blocks = nn.ModuleList(
            [FactorizedAttention(width, dim, config.heads, config.dim_head, config.kernel_multiplier) for _ in range(config.layers)]
        )
        self.expand = nn.Linear(width, latent)
        self.propagate = nn.Sequential(nn.LayerNorm(latent), nn.Linear(latent, width), nn.GELU(), nn.Linear(width, latent))
        self.head = nn.Sequential(
            nn.GroupNorm(16, latent),
            nn.Conv1d(latent, width, 1, groups=8, bias=False),
            nn.GELU(),
            nn.Conv1d(width, width // 2, 1, bias=False),
            nn.GELU(),
            nn.Conv1d(width // 2, out_channels, 1),
        )

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the operator's output ``[B, out_channels, *S]``.

        Args:
            x: ``[B, in_channels, *S]`` with ``dim`` space axes.
            params: ``[B, n_params]``, or ``None`` for a model without parameters.

        Returns:
            ``[B, out_channels, *S]``.

        Raises:
            ValueError: if ``x`` has another number of space axes, or ``params`` another shape.
        """
        b, _, *space = x.shape
        if len(space) != self.dim:
            raise ValueError(
                f"this FactFormer was built for dim={self.dim}: expected input [B, C, {', '.join('n' * self.dim)}], got {tuple(x.shape)}"
            )
        dtype = torch.promote_types(x.dtype, torch.float32)
        positions = [self.domain_length * torch.arange(n, device=x.device, dtype=dtype) / n for n in space]
        points = torch.stack(torch.meshgrid(*positions, indexing="ij"), dim=-1)  # [*S, dim]
        z = self.lift(append_parameters(x, params, self.n_params).movedim(1, -1))  # [B, *S, width]
        for features, block in zip(self.position_features, self.blocks, strict=True):
            z = z + features(points)
            z = z + block(z, positions)
        latent = self.expand(z)
        latent = latent + self.propagate(latent)
        return self.head(latent.movedim(-1, 1).flatten(2)).view(b, -1, *space)
