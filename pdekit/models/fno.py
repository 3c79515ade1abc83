"""Fourier neural operators from neuraloperator, adapted to pdekit's interface."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from neuralop.models import FNO
from torch import nn

from pdekit.models.conditioning import append_parameters


@dataclass(frozen=True)
class FNOConfig:
    """Settings of ``FourierNeuralOperator``; ``factorization="tucker"`` gives the tensorized FNO."""

    modes: int = 12
    width: int = 32
    layers: int = 4
    factorization: str | None = None
    rank: float = 0.5


class FourierNeuralOperator(nn.Module):
    """The Fourier neural operator (Li et al., "Fourier neural operator for parametric partial
    differential equations", ICLR 2021), and with a Tucker-factorized spectral weight the tensorized
    FNO (Kossaifi et al., "Multi-grid tensorized Fourier neural operator for high-resolution PDEs",
    TMLR 2024): neuraloperator's ``FNO``, with PDE parameters appended as input channels.

    ``forward(x [B, in_channels, *S], params [B, n_params] | None) -> [B, out_channels, *S]``.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, n_params: int = 0, config: FNOConfig = FNOConfig()):
        super().__init__()
        self.n_params = n_params
        self.network = FNO(
            n_modes=(config.modes,) * dim,
            in_channels=in_channels + n_params,
            out_channels=out_channels,
            hidden_channels=config.width,
            n_layers=config.layers,
            factorization=config.factorization,
            rank=config.rank if config.factorization else 1.0,
        )

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        # neuraloperator adds its constructor's arguments (functions among them) under "_metadata":
        # they would not load with weights_only=True, and pdekit saves its own model spec.
        state.pop("_metadata", None)
        return state

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        return self.network(append_parameters(x, params, self.n_params))
