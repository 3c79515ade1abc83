"""The factorized Fourier neural operator (F-FNO) of Tran, Mathews, Xie and Ong (ICLR 2023)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from pdekit.models.conditioning import append_coordinates, append_parameters


@dataclass(frozen=True)
class FFNOConfig:
    """Settings of ``FactorizedFNO``; the defaults other than the size (``modes``, ``width``, ``layers``)
    are those of the authors' Navier-Stokes runs (fourierflow ``experiments/torus_li/markov``).

    Args:
        modes: Fourier modes kept along each axis.
        width: hidden channels.
        layers: operator layers.
        share_weights: one set of Fourier weights for every layer (the authors' Navier-Stokes setting;
            ``False`` is their "no sharing" ablation). The feed-forward networks are never shared.
        expansion: hidden width of each feed-forward network, in multiples of ``width`` (their ``factor``).
        fourier_gain: gain of the Xavier-normal initialisation of the Fourier weights.
        weight_norm: weight normalisation (Salimans and Kingma, 2016) of every pointwise linear layer:
            the lift, the feed-forward networks and the decoder.
        dropout: the rate after each feed-forward linear layer.
        input_dropout: the rate after the lift.
        decoder_width: hidden width of the decoder's two linear layers.

    Raises:
        ValueError: if a size is below 1 or a dropout rate outside ``[0, 1)``.
    """

    modes: int = 12
    width: int = 32
    layers: int = 4
    share_weights: bool = True
    expansion: int = 4
    fourier_gain: float = 0.1
    weight_norm: bool = True
    dropout: float = 0.0
    input_dropout: float = 0.0
    decoder_width: int = 128

    def __post_init__(self) -> None:
        if self.modes < 1 or self.width < 1 or self.layers < 1 or self.expansion < 1 or self.decoder_width < 1:
            raise ValueError(f"FFNOConfig needs modes, width, layers, expansion and decoder_width >= 1; got {self}")
        if not (0 <= self.dropout < 1 and 0 <= self.input_dropout < 1):
            raise ValueError(f"FFNOConfig.dropout and input_dropout must be in [0, 1); got {self.dropout}, {self.input_dropout}")


def fourier_weights(width: int, modes: int, dim: int, gain: float) -> nn.ParameterList:
    """Returns one complex channel mixing ``[width_in, width_out, modes]`` per axis, stored as real pairs ``[..., 2]``."""
    weights = nn.ParameterList()
    for _ in range(dim):
        weight = nn.Parameter(torch.empty(width, width, modes, 2))
        nn.init.xavier_normal_(weight, gain=gain)
        weights.append(weight)
    return weights


class FactorizedSpectralConv(nn.Module):
    """Returns ``K(z) = sum_d IFFT_d(W_d . FFT_d(z))``: the separable spectral convolution, one 1D transform per axis.

    ``z: [batch, width, *space]``. Along axis ``d`` the lowest ``modes`` modes of the real FFT
    (orthonormal) are mixed over channels by the complex weights ``W_d [width_in, width_out, modes]``
    and the rest are set to zero; the ``dim`` results are summed in physical space. The cost grows
    with the sum, not the product, of the modes. ``weights`` are this layer's own (one per axis)
    unless a shared list is passed in.
    """

    def __init__(self, width: int, modes: int, dim: int, gain: float = 1.0, weights: nn.ParameterList | None = None):
        super().__init__()
        self.modes = modes
        self.weights = weights if weights is not None else fourier_weights(width, modes, dim, gain)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # Transforms run in the weights' precision: under autocast z may be float16, and cuFFT takes
        # half precision only for power-of-two sizes (and loses accuracy in the spectral sums).
        dtype = z.dtype
        z = z.to(self.weights[0].dtype)
        out = torch.zeros_like(z)
        for axis, weight in enumerate(self.weights):
            dim = 2 + axis
            n = z.shape[dim]
            modes = min(self.modes, n // 2 + 1)
            spectrum = torch.fft.rfft(z, dim=dim, norm="ortho").movedim(dim, -1)[..., :modes]  # [B, C, ..., modes]
            mixed = torch.einsum("bi...m,iom->bo...m", spectrum, torch.view_as_complex(weight[:, :, :modes]))
            full = torch.zeros(*mixed.shape[:-1], n // 2 + 1, dtype=mixed.dtype, device=mixed.device)
            full[..., :modes] = mixed
            out = out + torch.fft.irfft(full, n=n, dim=-1, norm="ortho").movedim(-1, dim)
        return out.to(dtype)


def pointwise(channels_in: int, channels_out: int, normalized: bool) -> nn.Conv1d:
    """Returns a linear map over channels applied at every point (``[B, C_in, N] -> [B, C_out, N]``), weight-normed if asked."""
    layer = nn.Conv1d(channels_in, channels_out, 1)
    return weight_norm(layer) if normalized else layer


class FeedForward(nn.Sequential):
    """Returns ``W_2 relu(W_1 z + b_1) + b_2`` at every point, with dropout after each linear layer: ``[B, width, N]``."""

    def __init__(self, width: int, expansion: int, dropout: float, normalized: bool):
        hidden = expansion * width
        super().__init__(
            pointwise(width, hidden, normalized),
            nn.Dropout(dropout),
            nn.ReLU(),
            pointwise(hidden, width, normalized),
            nn.Dropout(dropout),
        )


class FactorizedFNO(nn.Module):
    """Factorized Fourier neural operator (Tran, Mathews, Xie and Ong, "Factorized Fourier neural
    operators", ICLR 2023), as the authors' code builds it (github.com/alasdairtran/fourierflow,
    ``FNOFactorized2DBlock``), in any number of dimensions.

    ``forward(x [B, in_channels, *S], params [B, n_params] | None) -> [B, out_channels, *S]``:

    - lift: grid coordinates and PDE parameters are appended as channels, then ``z_0 = P(x)``
      (a pointwise linear layer) followed by ``input_dropout``;
    - layer ``l = 1..L``: ``b_l = FF_l(K_l(z_{l-1}))`` and ``z_l = z_{l-1} + b_l``, where ``K_l`` is the
      separable spectral convolution and ``FF_l`` the two-layer feed-forward network: the paper's
      improved residual, which carries ``z`` past the nonlinearity and lets deep stacks train;
    - decoder: ``u = Q(b_L)``, two pointwise linear layers (``width -> decoder_width -> out_channels``)
      applied to the last layer's update ``b_L``, not to the hidden state ``z_L``.

    The activations are those of the authors' code: ``FF_l`` has a ReLU between its two layers and
    none after the second, and ``Q`` has none between its two layers (so it is linear in ``b_L``).

    With ``weight_norm`` (default) every pointwise layer is weight-normed. With ``share_weights``
    (default) all layers use one set of Fourier weights; the feed-forward networks are per layer.

    The Markov setting of the paper (one state in, the next state out, Gaussian noise on the
    inputs during training) needs no option here; in a run's configuration it is::

        [data]
        input_steps = 1        # the Markov assumption: only the current state is fed
        target_steps = 1
        normalize = true       # the noise is in normalised units, as in the authors' code
        [rollout]
        mode = "state"         # predict u(t + dt) itself (the authors' default; not the difference)
        unroll = 1             # one-step (teacher-forced) training on every consecutive pair
        noise = 0.01           # the authors' noise_std: N(0, 0.01^2) added to the inputs in training only
        [trainer]
        loss = "l2"            # relative L2, the authors' training loss
        optimizer = "adamw"    # their AdamW with cosine decay (their 500-step linear warm-up
        learning_rate = 2.5e-3 # has no counterpart in the Trainer)
        weight_decay = 1e-4
        schedule = "cosine"

    Deliberate differences from the authors' code, each with its reason:

    - Coordinates are the periodic grid's ``j / n`` (``conditioning.append_coordinates``), not
      ``linspace(0, 1)`` including the end point, so a point keeps its coordinate at every
      resolution; and they are appended after the input noise, so they are never perturbed
      (the authors' noise also perturbs their normalised coordinates).
    - ``fourier_gain`` applies to per-layer weights too; the authors' code applies its ``gain``
      only to shared weights and initialises unshared ones with gain 1 (set ``fourier_gain=1.0``
      with ``share_weights=False`` to reproduce their "no sharing" ablation).
    - The "fork" variant (a decoder output from every layer, summed), which the authors' code keeps
      behind ``use_fork`` and uses in one ablation only, is not offered.

    Args:
        in_channels: the input's channels ``C_in``.
        out_channels: the output's channels ``C_out``.
        dim: the space axes.
        n_params: the PDE parameters per member appended as channels (0: none).
        config: the settings.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, n_params: int = 0, config: FFNOConfig = FFNOConfig()):
        super().__init__()
        self.n_params = n_params
        width, normalized = config.width, config.weight_norm
        self.lift = pointwise(in_channels + n_params + dim, width, normalized)
        self.input_dropout = nn.Dropout(config.input_dropout)
        shared = fourier_weights(width, config.modes, dim, config.fourier_gain) if config.share_weights else None
        self.spectral = nn.ModuleList(
            [FactorizedSpectralConv(width, config.modes, dim, config.fourier_gain, weights=shared) for _ in range(config.layers)]
        )
        self.feed_forward = nn.ModuleList([FeedForward(width, config.expansion, config.dropout, normalized) for _ in range(config.layers)])
        self.decoder = nn.Sequential(
            pointwise(width, config.decoder_width, normalized), pointwise(config.decoder_width, out_channels, normalized)
        )

    @staticmethod
    def _pointwise(layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return layer(z.flatten(2)).view(z.shape[0], -1, *z.shape[2:])

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
        z = self.input_dropout(self._pointwise(self.lift, append_coordinates(append_parameters(x, params, self.n_params))))
        for spectral, feed_forward in zip(self.spectral, self.feed_forward, strict=True):
            update = self._pointwise(feed_forward, spectral(z))
            z = z + update
        return self._pointwise(self.decoder, update)
