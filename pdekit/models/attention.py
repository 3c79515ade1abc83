"""Softmax-free attention over the points of a discretized function: the Galerkin and Fourier types."""

from __future__ import annotations

import math

import torch
from torch import nn

KINDS = ("galerkin", "fourier")
# The authors' recommended Xavier gains for W^Q, W^K, W^V (examples/README.md of their code).
XAVIER_GAIN = {"galerkin": 1e-2, "fourier": 1e-3}
# The two factors that meet in a matrix product get the layer normalization.
NORMALIZED = {"galerkin": ("key", "value"), "fourier": ("query", "key")}


class HeadwiseLayerNorm(nn.Module):
    """Layer normalization of every head's features, each head with its own scale and shift.

    The same as one ``nn.LayerNorm(features)`` per head, computed in one call.
    ``forward(x [B, heads, n, features]) -> [B, heads, n, features]``.
    """

    def __init__(self, heads: int, features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(heads, features))
        self.bias = nn.Parameter(torch.zeros(heads, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normalized = nn.functional.layer_norm(x, x.shape[-1:], eps=self.eps)
        return normalized * self.weight[:, None] + self.bias[:, None]


class GalerkinAttention(nn.Module):
    """Returns the Galerkin- or Fourier-type attention of S. Cao, "Choose a transformer: Fourier or
    Galerkin", NeurIPS 2021 (arXiv:2105.14995), per head ``i``:

    - Galerkin type: ``Z_i = Q_i (LN(K_i)^T LN(V_i)) / n``, cost ``O(n d^2)``: a learned
      Petrov-Galerkin projection, the ``1/n`` making ``K^T V / n`` a quadrature of an integral, so
      it means the same at every resolution;
    - Fourier type: ``Z_i = (LN(Q_i) LN(K_i)^T) V_i / (n sqrt(d_i))``, cost ``O(n^2 d)``: a kernel
      integral with a learned kernel.

    ``Q_i, K_i, V_i`` are head ``i``'s slice of ``z W^Q, z W^K, z W^V``, each with the point
    coordinates concatenated in front (``[x, Q_i]``, ``d_i = width / heads + dim`` columns), so
    every head sees the positions. ``LN`` is a layer normalization with one scale and shift per
    head, applied before the coordinates are concatenated. The heads' outputs (``d_i`` columns
    each) are concatenated and mapped back to ``width`` by a linear layer. ``W^Q, W^K, W^V`` start
    as a Xavier-uniform draw of gain ``xavier_gain`` plus ``diagonal_weight`` times the identity,
    biases zero.

    These are the authors' code's choices (``libs/layers.py``: ``SimpleAttention``,
    ``linear_attention``, ``attention``): the ``1/sqrt(d_i)`` of the Fourier type is theirs (the
    paper writes only ``1/n``), with ``d_i`` counted after the coordinates are concatenated.
    ``dropout`` is the rate of an inverted dropout on the attention matrix (``K_i^T V_i / n``,
    Galerkin type; ``Q_i K_i^T / (n sqrt(d_i))``, Fourier type), in training only. The authors'
    code always applies it, at ``F.dropout``'s default rate 0.5 and with ``training=True``, whatever
    their configured dropout (0 in their Burgers and Darcy settings), so also when it evaluates.
    Deliberately different: the rate is an option, 0 by default, and off in evaluation. The
    attention is linear in that matrix, so the evaluated layer is the mean of the trained one
    over the dropout masks, and a trained model is a deterministic operator. On the Burgers
    setting, a rate of 0.5 let a 100-epoch one-cycle run through its peak learning rate where
    the same seed without it diverged (``benchmarks/RESULTS.md``).

    ``forward(z [B, n, width], coordinates [B or 1, n, dim]) -> [B, n, width]``.
    """

    def __init__(
        self,
        width: int,
        heads: int = 1,
        kind: str = "galerkin",
        dim: int = 1,
        xavier_gain: float | None = None,
        diagonal_weight: float = 1e-2,
        eps: float = 1e-5,
        dropout: float = 0.0,
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"attention must be 'galerkin' or 'fourier'; got {kind!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"attention_dropout must be in [0, 1); got {dropout}")
        self.dropout = dropout
        if heads < 1 or width % heads:
            raise ValueError(f"heads must be a positive divisor of width {width}; got {heads}")
        self.heads, self.kind, self.dim = heads, kind, dim
        self.head_width = width // heads
        self.xavier_gain = XAVIER_GAIN[kind] if xavier_gain is None else xavier_gain
        self.diagonal_weight = diagonal_weight
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))
        self.norms = nn.ModuleDict({name: HeadwiseLayerNorm(heads, self.head_width, eps) for name in NORMALIZED[kind]})
        self.out = nn.Linear(width + heads * dim, width)
        self.reset_projections()

    def reset_projections(self) -> None:
        """Draws ``W^Q, W^K, W^V`` as Xavier-uniform (gain ``xavier_gain``) plus ``diagonal_weight * I``; zero biases."""
        with torch.no_grad():
            for layer in (self.query, self.key, self.value):
                nn.init.xavier_uniform_(layer.weight, gain=self.xavier_gain)
                layer.weight += self.diagonal_weight * torch.eye(*layer.weight.shape, dtype=layer.weight.dtype)
                layer.bias.zero_()

    def forward(self, z: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
        b, n, width = z.shape
        if coordinates.shape[-2:] != (n, self.dim):
            raise ValueError(f"coordinates must have shape [B or 1, {n}, {self.dim}]; got {tuple(coordinates.shape)}")
        projected = {
            name: layer(z).view(b, n, self.heads, self.head_width).transpose(1, 2)  # [B, h, n, dh]
            for name, layer in (("query", self.query), ("key", self.key), ("value", self.value))
        }
        for name, norm in self.norms.items():
            projected[name] = norm(projected[name])
        position = coordinates.to(z.dtype).unsqueeze(1).expand(b, self.heads, n, self.dim)
        q, k, v = (torch.cat([position, projected[name]], dim=-1) for name in ("query", "key", "value"))
        if self.kind == "galerkin":
            attended = q @ self._drop(k.transpose(-2, -1) @ v / n)
        else:
            attended = self._drop(q @ k.transpose(-2, -1) / (n * math.sqrt(q.shape[-1]))) @ v
        return self.out(attended.transpose(1, 2).reshape(b, n, -1))

    def _drop(self, matrix: torch.Tensor) -> torch.Tensor:
        return nn.functional.dropout(matrix, self.dropout, self.training) if self.dropout else matrix
