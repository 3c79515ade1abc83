"""Linear-cost attention over the points of a discretized function, shared by the transformer operators."""

from __future__ import annotations

import torch
from torch import nn


class GalerkinAttention(nn.Module):
    """Softmax-free attention ``Q (LN(K)^T LN(V)) / n`` (Galerkin type) or ``(LN(Q) LN(K)^T) V / n`` (Fourier type).

    S. Cao, "Choose a transformer: Fourier or Galerkin", NeurIPS 2021. The Galerkin type costs
    ``O(n d^2)``: it is a learned Petrov-Galerkin projection, and the ``1/n`` scaling makes it a
    quadrature of an integral, consistent across resolutions.

    ``forward(z [B, n, width]) -> [B, n, width]``.
    """

    def __init__(self, width: int, heads: int = 4, kind: str = "galerkin"):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be divisible by heads {heads}")
        if kind not in ("galerkin", "fourier"):
            raise ValueError(f"attention kind must be 'galerkin' or 'fourier'; got {kind!r}")
        self.heads, self.kind = heads, kind
        head_width = width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.norm_a = nn.LayerNorm(head_width)
        self.norm_b = nn.LayerNorm(head_width)
        self.out = nn.Linear(width, width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, n, width = z.shape
        q, k, v = self.qkv(z).view(b, n, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)  # each [B, h, n, dh]
        if self.kind == "galerkin":
            attended = q @ (self.norm_a(k).transpose(-2, -1) @ self.norm_b(v)) / n
        else:
            attended = (self.norm_a(q) @ self.norm_b(k).transpose(-2, -1)) @ v / n
        return self.out(attended.transpose(1, 2).reshape(b, n, width))
