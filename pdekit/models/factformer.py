"""The factorized-attention transformer (FactFormer)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pdekit.models.conditioning import append_coordinates, append_parameters


@dataclass(frozen=True)
class FactFormerConfig:
    """Settings of ``FactFormer``."""

    width: int = 32
    heads: int = 4
    layers: int = 3


def rotate_by_position(x: torch.Tensor) -> torch.Tensor:
    """Returns ``x [..., n, d]`` with feature pairs rotated by ``2 pi m t_i`` at positions ``t_i = i / n``, ``m = 1 .. d/2``.

    Rotary position encoding (Su et al., "RoFormer", 2021) with integer frequencies: on a periodic
    axis, ``rotate(q)_i . rotate(k)_j`` then depends on ``t_i - t_j`` through ``cos 2 pi m (t_i - t_j)``
    terms, the same at every resolution.
    """
    n, d = x.shape[-2], x.shape[-1]
    angle = 2 * torch.pi * torch.arange(n, device=x.device, dtype=x.dtype)[:, None] / n * torch.arange(1, d // 2 + 1, device=x.device, dtype=x.dtype)
    cos, sin = torch.cos(angle), torch.sin(angle)
    first, second = x[..., 0::2], x[..., 1::2]
    return torch.stack([first * cos - second * sin, first * sin + second * cos], dim=-1).flatten(-2)


class AxialKernelIntegral(nn.Module):
    """Returns ``A_1 ... A_d V(z)``: a kernel integral factorized into one ``n_a x n_a`` kernel per axis.

    Each axis' kernel is ``R(LN(q_a)) R(LN(k_a))^T / n_a`` (softmax-free, so a quadrature; ``R`` the
    rotary position encoding), with ``q_a, k_a`` computed from a 1D sub-function of the input: a
    learnable pointwise map of ``z`` averaged over all the other axes. Cost ``O(n sum_a n_a)`` instead of ``O(n^2)``.

    ``forward(z [B, width, *S]) -> [B, width, *S]``.
    """

    def __init__(self, width: int, dim: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be divisible by heads {heads}")
        self.heads, self.dim = heads, dim
        self.value = nn.Conv1d(width, width, 1)
        self.to_subfunction = nn.ModuleList([nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width)) for _ in range(dim)])
        self.query_key = nn.ModuleList([nn.Linear(width, 2 * width) for _ in range(dim)])
        self.norm_q = nn.ModuleList([nn.LayerNorm(width // heads) for _ in range(dim)])
        self.norm_k = nn.ModuleList([nn.LayerNorm(width // heads) for _ in range(dim)])
        self.out = nn.Conv1d(width, width, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, width, *space = z.shape
        h, dh = self.heads, width // self.heads
        points = z.flatten(2).transpose(1, 2).view(b, *space, width)  # [B, *S, width]
        v = self.value(z.flatten(2)).view(b, h, dh, *space)
        letters = "ijk"[: self.dim]  # one subscript per spatial axis; "z" is the one contracted
        for axis in range(self.dim):
            others = tuple(1 + a for a in range(self.dim) if a != axis)
            subfunction = self.to_subfunction[axis](points).mean(dim=others) if others else self.to_subfunction[axis](points)  # [B, n_a, width]
            q, k = self.query_key[axis](subfunction).view(b, space[axis], 2, h, dh).permute(2, 0, 3, 1, 4)  # [B, h, n_a, dh]
            q, k = rotate_by_position(self.norm_q[axis](q)), rotate_by_position(self.norm_k[axis](k))
            kernel = q @ k.transpose(-2, -1) / space[axis]  # [B, h, n_a, n_a]
            source = letters.replace(letters[axis], "z")
            v = torch.einsum(f"bh{letters[axis]}z,bhe{source}->bhe{letters}", kernel, v)
        return self.out(v.reshape(b, width, -1)).view(b, width, *space)


class FactFormer(nn.Module):
    """Factorized-attention transformer (Li, Shu and Barati Farimani, "Scalable transformer for PDE
    surrogate modeling", NeurIPS 2023).

    A pointwise lift of the input, grid coordinates and PDE parameters; ``layers`` blocks
    ``z <- z + AxialKernelIntegral(z); z <- z + FFN(z)``; a pointwise projection. As in the paper,
    ``q, k`` carry rotary position encodings (here with integer frequencies, for periodic axes).

    ``forward(x [B, in_channels, *S], params [B, n_params] | None) -> [B, out_channels, *S]``.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, n_params: int = 0, config: FactFormerConfig = FactFormerConfig()):
        super().__init__()
        self.n_params = n_params
        width = config.width
        self.lift = nn.Conv1d(in_channels + n_params + dim, width, 1)
        self.attention = nn.ModuleList([AxialKernelIntegral(width, dim, config.heads) for _ in range(config.layers)])
        self.feed_forward = nn.ModuleList(
            [nn.Sequential(nn.Conv1d(width, 2 * width, 1), nn.GELU(), nn.Conv1d(2 * width, width, 1)) for _ in range(config.layers)]
        )
        self.project = nn.Sequential(nn.Conv1d(width, 2 * width, 1), nn.GELU(), nn.Conv1d(2 * width, out_channels, 1))

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        space = x.shape[2:]
        z = self.lift(append_coordinates(append_parameters(x, params, self.n_params)).flatten(2)).view(x.shape[0], -1, *space)
        for attention, feed_forward in zip(self.attention, self.feed_forward):
            z = z + attention(z)
            z = z + feed_forward(z.flatten(2)).view_as(z)
        return self.project(z.flatten(2)).view(x.shape[0], -1, *space)
