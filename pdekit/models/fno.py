"""Fourier neural operators from neuraloperator, adapted to pdekit's interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from neuralop.models import FNO
from torch import nn

from pdekit.models.conditioning import append_parameters


@dataclass(frozen=True)
class FNOConfig:
    """Settings of ``FourierNeuralOperator``; ``factorization="tucker"`` gives the tensorized FNO.

    Args:
        modes: Fourier modes kept along each axis.
        width: hidden channels.
        layers: Fourier layers.
        factorization: the spectral weight's tensor factorisation (``None``: dense; ``"tucker"``: TFNO).
        rank: the factorisation's rank, as a fraction of the dense weight's parameters.
    """

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

    Args:
        in_channels: the input's channels ``C_in``.
        out_channels: the output's channels ``C_out``.
        dim: the space axes.
        n_params: the PDE parameters per member appended as channels (0: none).
        config: the settings.
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

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        """Returns the module's state dict without neuraloperator's ``_metadata`` entry.

        Args:
            *args: as for ``nn.Module.state_dict``.
            **kwargs: as for ``nn.Module.state_dict``.

        Returns:
            The state dict, loadable with ``weights_only=True``.
        """
        state = super().state_dict(*args, **kwargs)
        # neuraloperator adds its constructor's arguments (functions among them) under "_metadata":
        # they would not load with weights_only=True, and pdekit saves its own model spec.
        state.pop("_metadata", None)
        return state

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the operator's output ``[B, out_channels, *S]``.

        Args:
            x: ``[B, in_channels, *S]`` on a periodic grid with ``dim`` space axes.
            params: ``[B, n_params]``, or ``None`` for a model without parameters.

        Returns:
            ``[B, out_channels, *S]``.

        Raises:
            ValueError: if ``params`` does not have the shape the model was built for.
        """
        return self.network(append_parameters(x, params, self.n_params))
