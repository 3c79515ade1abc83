"""PINN networks: a tanh MLP over space-time, optionally with Fourier features or a periodic embedding of space."""

from __future__ import annotations

import math

import torch
from torch import nn


class PeriodicEmbedding(nn.Module):
    """Maps ``x`` to ``cos(2 pi m x / L), sin(2 pi m x / L)``, ``m = 1 .. harmonics``, for each space axis; time passes through.

    A network of these features is exactly periodic in ``x`` (Dong and Ni, "A method for representing
    periodic functions and enforcing exactly periodic boundary conditions with deep neural networks", JCP 2021).
    ``forward(xt [..., N, d + 1]) -> [..., N, 2 d harmonics + 1]``.

    Args:
        periods: the period ``L`` of each space axis.
        harmonics: the harmonics ``m = 1 .. harmonics`` per axis.
    """

    frequencies: torch.Tensor  # [d, harmonics], a buffer

    def __init__(self, periods: tuple[float, ...], harmonics: int = 1):
        super().__init__()
        frequencies = torch.tensor([[2 * math.pi * m / p for m in range(1, harmonics + 1)] for p in periods])  # [d, harmonics]
        self.register_buffer("frequencies", frequencies)
        self.out_features = 2 * frequencies.numel() + 1

    def forward(self, xt: torch.Tensor) -> torch.Tensor:
        """Returns the features of the points ``xt`` (space, then time).

        Args:
            xt: ``[..., N, d + 1]``.

        Returns:
            ``[..., N, 2 d harmonics + 1]``: the cosines, the sines, then the time.
        """
        phase = (xt[..., :-1, None] * self.frequencies).flatten(-2)
        return torch.cat([torch.cos(phase), torch.sin(phase), xt[..., -1:]], dim=-1)


class FourierFeatures(nn.Module):
    """Maps ``z`` to ``cos(2 pi B z), sin(2 pi B z)`` with a fixed Gaussian ``B [features, in] ~ N(0, scale^2)``.

    Tancik et al., "Fourier features let networks learn high frequency functions in low dimensional
    domains", NeurIPS 2020. ``forward(z [..., N, in]) -> [..., N, 2 features]``.

    Args:
        in_features: the input's features.
        features: the rows of ``B``.
        scale: the standard deviation of ``B``'s entries.
        generator: the random generator ``B`` is drawn with (``None``: torch's global one).
    """

    matrix: torch.Tensor  # [features, in_features], a buffer

    def __init__(self, in_features: int, features: int = 64, scale: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        self.register_buffer("matrix", scale * torch.randn(features, in_features, generator=generator))
        self.out_features = 2 * features

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Returns the Fourier features of ``z``.

        Args:
            z: ``[..., N, in_features]``.

        Returns:
            ``[..., N, 2 features]``: the cosines, then the sines.
        """
        phase = 2 * math.pi * z @ self.matrix.T
        return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


def _xavier_normal(linear: nn.Linear) -> None:
    nn.init.xavier_normal_(linear.weight)
    nn.init.zeros_(linear.bias)


def _linear_default(linear: nn.Linear) -> None:
    """Leaves ``nn.Linear``'s own initialisation: weights and biases uniform in ``±1 / sqrt(fan_in)``."""


INITIALISATIONS = {"xavier_normal": _xavier_normal, "torch_default": _linear_default}
"""The hidden layers' initialisations of ``MLP`` by name (the output layer keeps ``nn.Linear``'s own)."""


class MLP(nn.Module):
    """``u(x, t)``: a tanh multilayer perceptron of ``depth`` hidden layers of ``width`` after optional embeddings.

    ``forward(xt [..., N, d + 1]) -> [..., N, 1]``.

    Args:
        dim: the space axes ``d``.
        width: the hidden layers' width.
        depth: the number of hidden layers.
        periods: the space axes' periods for a ``PeriodicEmbedding`` (``None``: none; the network is
            then not periodic and ``train_pinn`` adds a periodicity loss).
        harmonics: the periodic embedding's harmonics per axis.
        fourier_features: rows of a ``FourierFeatures`` layer after the embedding (0: none).
        fourier_scale: its standard deviation.
        init: the hidden layers' initialisation, one of ``INITIALISATIONS``: ``"xavier_normal"`` (zero
            biases; the usual PINN choice) or ``"torch_default"`` (``nn.Linear``'s uniform
            ``±1 / sqrt(fan_in)`` weights and biases, which the R3 authors' convection runs keep: their
            ``init="default"``). The first layer's weights then spread several times wider on the raw
            coordinates.

    Raises:
        ValueError: naming the option for a count below its minimum, a non-positive ``fourier_scale``
            or an unknown ``init``.
    """

    def __init__(
        self,
        dim: int,
        width: int = 50,
        depth: int = 4,
        *,
        periods: tuple[float, ...] | None = None,
        harmonics: int = 1,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        init: str = "xavier_normal",
    ):
        for option, value, lowest in (
            ("dim", dim, 1),
            ("width", width, 1),
            ("depth", depth, 1),
            ("harmonics", harmonics, 1),
            ("fourier_features", fourier_features, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(f"MLP {option} must be an integer >= {lowest}; got {value!r}")
        if fourier_features and not 0 < fourier_scale < math.inf:
            raise ValueError(f"MLP fourier_scale must be positive and finite; got {fourier_scale!r}")
        if init not in INITIALISATIONS:
            raise ValueError(f"MLP init must be one of {sorted(INITIALISATIONS)}; got {init!r}")
        super().__init__()
        layers: list[nn.Module] = []
        features = dim + 1
        if periods is not None:
            embedding = PeriodicEmbedding(periods, harmonics)
            layers.append(embedding)
            features = embedding.out_features
        if fourier_features:
            fourier = FourierFeatures(features, fourier_features, fourier_scale)
            layers.append(fourier)
            features = fourier.out_features
        for _ in range(depth):
            linear = nn.Linear(features, width)
            INITIALISATIONS[init](linear)
            layers += [linear, nn.Tanh()]
            features = width
        layers.append(nn.Linear(features, 1))
        self.layers = nn.Sequential(*layers)
        self.periodic = periods is not None

    def forward(self, xt: torch.Tensor) -> torch.Tensor:
        """Returns ``u`` at the points ``xt`` (space, then time).

        Args:
            xt: ``[..., N, d + 1]``.

        Returns:
            ``[..., N, 1]``.
        """
        return self.layers(xt)
