"""The Gray-Scott reaction-diffusion system on a periodic grid in 1D, 2D or 3D.

``du/dt = D_u laplacian u - u v^2 + F (1 - u)`` and ``dv/dt = D_v laplacian v + u v^2 - (F + k) v``,
with the feed rate ``F`` and the kill rate ``k`` (P. Gray and S. K. Scott, "Autocatalytic reactions in
the isothermal, continuous stirred tank reactor", Chem. Eng. Sci. 39, 1984; the pattern zoo of
J. E. Pearson, "Complex patterns in a simple system", Science 261, 1993).

This module also holds the initial states and the parameter sets of The Well's
``gray_scott_reaction_diffusion`` dataset (Ohana et al., "The Well: a large-scale collection of
diverse physics simulations for machine learning", NeurIPS 2024 Datasets and Benchmarks), as given
by its dataset card (``datasets/gray_scott_reaction_diffusion/README.md`` in PolymathicAI/the_well)
and its generator (``gen_gs.m``, ``random_gaussians.m`` and ``init_fourier.m`` in
danfortunato/spectral-gray-scott).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import torch

from pdekit.devices import Device
from pdekit.grid import Grid, resize_spectrum
from pdekit.solvers.base import SpectralSolver
from pdekit.solvers.fields import member_generator
from pdekit.solvers.time_stepping import Scheme

# The Well's gray_scott_reaction_diffusion: pattern name -> (feed rate F, kill rate k). Every set
# uses the same diffusivities, domain, grid and times below; 200 trajectories per set, half started
# from ``RandomGaussians`` and half from ``PerturbedSteadyState``.
WELL_PATTERNS = MappingProxyType(
    {
        "gliders": (0.014, 0.054),
        "bubbles": (0.098, 0.057),
        "maze": (0.029, 0.057),
        "worms": (0.058, 0.065),
        "spirals": (0.018, 0.051),
        "spots": (0.030, 0.062),
    }
)
WELL_DIFFUSIVITY_U = 2e-5
WELL_DIFFUSIVITY_V = 1e-5
WELL_LENGTHS = (2.0, 2.0)  # the Grid's (y, x) periods: x, y in [-1, 1]
WELL_SHAPE = (128, 128)
WELL_DT = 1.0  # ETDRK4 step
WELL_OUTPUT_INTERVAL = 10.0
WELL_FINAL_TIME = 10_000.0  # 1001 stored states, t = 0, 10, ..., 10000


def steady_states(feed: float, kill: float) -> tuple[tuple[float, float], ...]:
    """Returns the homogeneous steady states ``(u, v)`` of Gray-Scott, the trivial ``(1, 0)`` first.

    Besides ``(1, 0)`` there are two more when ``A = sqrt(F) / (F + k) > 2``: ``u v = F + k`` and
    ``u (1 - u) = 1 / A^2``, the one with the smaller ``u`` listed second.
    """
    if not (feed > 0 and kill >= 0):
        raise ValueError(f"steady_states needs feed > 0 and kill >= 0; got feed={feed}, kill={kill}")
    a = math.sqrt(feed) / (feed + kill)
    if a <= 2:
        return ((1.0, 0.0),)
    root = math.sqrt(a * a - 4)
    return ((1.0, 0.0), ((a - root) / (2 * a), math.sqrt(feed) * (a + root) / 2), ((a + root) / (2 * a), math.sqrt(feed) * (a - root) / 2))


def _check_range(owner: str, name: str, value: tuple, *, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    ok = isinstance(value, tuple) and len(value) == 2 and all(isinstance(x, kind) and math.isfinite(x) for x in value)
    if not (ok and 0 < value[0] <= value[1]):
        raise ValueError(f"{owner} {name} must be a pair (low, high) of finite numbers with 0 < low <= high; got {value!r}")


@dataclass(frozen=True)
class RandomGaussians:
    """Random clusters of periodic Gaussians: The Well's ``"gaussians"`` initial states of Gray-Scott.

    Each species gets its own sum ``G(x) = sum_j a_j exp(-s_j |x - c_j|^2)`` of ``m`` Gaussians, with
    ``m`` uniform in ``count`` (integers, inclusive), ``a_j`` uniform in ``amplitude``, ``s_j``
    uniform in ``sharpness`` (in 1 / length^2) and the centres ``c_j`` uniform over the domain; then
    ``u = 1 - normalise(G_u)`` and ``v = normalise(G_v)``, where ``normalise`` maps a field's grid
    minimum to 0 and maximum to 1. The defaults are The Well's, for its domain of side 2.

    Each Gaussian is summed over its periodic images, enough of them that the omitted ones weigh
    less than ``exp(-40)`` (The Well's generator sums the 3 x 3 nearest, the same to round-off on its
    domain). The Well normalises the trigonometric interpolant of ``G`` by its continuous extrema
    rather than the grid's; the two differ by the interpolant's overshoot between grid points.

    Args:
        count: the range of the number of Gaussians per species, integers ``0 < low <= high``.
        amplitude: the range of their amplitudes.
        sharpness: the range of their sharpness ``s_j``, in 1 / length^2.

    Raises:
        ValueError: a range is not a pair ``(low, high)`` of finite numbers with ``0 < low <= high``.
    """

    count: tuple[int, int] = (10, 100)
    amplitude: tuple[float, float] = (1.0, 3.0)
    sharpness: tuple[float, float] = (150.0, 300.0)

    def __post_init__(self) -> None:
        _check_range("RandomGaussians", "count", self.count, integer=True)
        _check_range("RandomGaussians", "amplitude", self.amplitude)
        _check_range("RandomGaussians", "sharpness", self.sharpness)

    def __call__(self, grid: Grid, seeds: Sequence[int], dtype: torch.dtype = torch.float32, device: Device | None = None) -> torch.Tensor:
        """Returns one state per seed: ``[len(seeds), 2, *grid.shape]``, ``u`` then ``v``, both in [0, 1].

        Args:
            grid: the periodic grid.
            seeds: one seed per state; a state depends on its seed only.
            dtype: the states' dtype (they are drawn in float64 and then cast).
            device: where the states are put; None is torch's default device.

        Returns:
            ``[len(seeds), 2, *grid.shape]``.
        """
        states = []
        for seed in seeds:
            g = member_generator(seed)
            u = 1 - self._normalised_sum(grid, g)
            v = self._normalised_sum(grid, g)
            states.append(torch.stack([u, v]))
        return torch.stack(states).to(device=device, dtype=dtype)

    def _normalised_sum(self, grid: Grid, g: torch.Generator) -> torch.Tensor:
        m = int(torch.randint(self.count[0], self.count[1] + 1, (1,), generator=g))
        a = self.amplitude[0] + (self.amplitude[1] - self.amplitude[0]) * torch.rand(m, generator=g, dtype=torch.float64)
        s = self.sharpness[0] + (self.sharpness[1] - self.sharpness[0]) * torch.rand(m, generator=g, dtype=torch.float64)
        centres = torch.rand(m, grid.ndim, generator=g, dtype=torch.float64) * torch.tensor(grid.lengths, dtype=torch.float64)
        # A Gaussian is a product over axes, and so is its sum over the periodic images of a box:
        # one [m, n] profile per axis, then a single contraction, instead of m * 3^d full fields.
        profiles = []
        for axis, (x, length) in enumerate(zip(grid.coordinates(torch.float64), grid.lengths, strict=True)):
            images = max(1, math.ceil(math.sqrt(40 / self.sharpness[0]) / length))
            offsets = length * torch.arange(-images, images + 1, dtype=torch.float64)
            distance = x[None, :, None] - centres[:, axis, None, None] - offsets[None, None, :]  # [m, n, images]
            profiles.append(torch.exp(-s[:, None, None] * distance**2).sum(-1))
        letters = string.ascii_lowercase[: grid.ndim]
        field = torch.einsum(",".join(["z", *(f"z{c}" for c in letters)]) + "->" + letters, a, *profiles)
        low, high = field.min(), field.max()
        return (field - low) / (high - low)


@dataclass(frozen=True)
class PerturbedSteadyState:
    """A homogeneous steady state plus smooth uniform noise: The Well's ``"fourier"`` initial states.

    The noise of each species is the trigonometric interpolant of independent uniform values in
    ``[-w, w]`` on a coarse periodic grid of ``points`` per axis (a random Fourier series of
    ``points`` modes per axis), sampled on the solver's grid. The state perturbed is ``(1, 0)``, with
    half-widths ``w_u = w_v = 1/4``, unless ``(feed, kill)`` has non-trivial steady states; then it is
    the one with the smaller ``u`` (second of ``steady_states``), with ``w_u = 0.225 min(u, 1 - u)`` and
    ``w_v = 0.225 min(v, 1 - v)``. This is The Well's rule (``init_fourier.m``: ``0.5 * 0.9 min(.)``
    times noise in ``[-1/2, 1/2]``), which is why the sampler takes the pattern's ``feed`` and
    ``kill``: give it the solver's values (one pair per ensemble). ``v`` may start negative.

    Args:
        feed: the feed rate ``F > 0`` of the solver.
        kill: the kill rate ``k >= 0`` of the solver.
        points: the coarse grid's points per axis, at least 2 and at most the solver grid's.

    Raises:
        ValueError: ``feed``, ``kill`` or ``points`` is out of range.
    """

    feed: float
    kill: float
    points: int = 32

    def __post_init__(self) -> None:
        if not (isinstance(self.feed, (int, float)) and math.isfinite(self.feed) and self.feed > 0):
            raise ValueError(f"PerturbedSteadyState feed must be positive and finite; got {self.feed!r}")
        if not (isinstance(self.kill, (int, float)) and math.isfinite(self.kill) and self.kill >= 0):
            raise ValueError(f"PerturbedSteadyState kill must be non-negative and finite; got {self.kill!r}")
        if not (isinstance(self.points, int) and self.points >= 2):
            raise ValueError(f"PerturbedSteadyState points must be an integer >= 2; got {self.points!r}")

    def mean_and_half_width(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Returns the state perturbed ``(u, v)`` and the half-widths ``(w_u, w_v)`` of its noise at the coarse points.

        Returns:
            ``((u, v), (w_u, w_v))``.
        """
        states = steady_states(self.feed, self.kill)
        if len(states) == 1:
            return states[0], (0.25, 0.25)
        u, v = states[1]
        return (u, v), (0.225 * min(u, 1 - u), 0.225 * min(v, 1 - v))

    def __call__(self, grid: Grid, seeds: Sequence[int], dtype: torch.dtype = torch.float32, device: Device | None = None) -> torch.Tensor:
        """Returns one state per seed: ``[len(seeds), 2, *grid.shape]``, ``u`` then ``v``.

        Args:
            grid: the periodic grid, at least ``points`` per axis.
            seeds: one seed per state; a state depends on its seed only.
            dtype: the states' dtype (they are drawn in float64 and then cast).
            device: where the states are put; None is torch's default device.

        Returns:
            ``[len(seeds), 2, *grid.shape]``.

        Raises:
            ValueError: ``grid`` has fewer than ``points`` points on some axis.
        """
        if any(n < self.points for n in grid.shape):
            raise ValueError(f"PerturbedSteadyState points={self.points} exceeds the grid {grid.shape}: use points <= {min(grid.shape)}")
        (u_mean, v_mean), (w_u, w_v) = self.mean_and_half_width()
        coarse = (self.points,) * grid.ndim
        states = []
        for seed in seeds:
            g = member_generator(seed)
            noise_u = trigonometric_interpolant(torch.rand(coarse, generator=g, dtype=torch.float64) - 0.5, grid.shape)
            noise_v = trigonometric_interpolant(torch.rand(coarse, generator=g, dtype=torch.float64) - 0.5, grid.shape)
            states.append(torch.stack([u_mean + 2 * w_u * noise_u, v_mean + 2 * w_v * noise_v]))
        return torch.stack(states).to(device=device, dtype=dtype)


def _zeros_along(v: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    shape = list(v.shape)
    shape[dim] = size
    return v.new_zeros(shape)


def trigonometric_interpolant(values: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Returns the real trigonometric interpolant of ``values [*coarse]`` sampled on the finer periodic grid ``shape``.

    The Nyquist mode of an even axis is split equally between ``+n/2`` and ``-n/2``, the real,
    symmetric interpolant; it passes through ``values`` at the coarse points.
    """
    coarse = tuple(values.shape)
    if len(coarse) != len(shape) or any(m < n for n, m in zip(coarse, shape, strict=True)):
        raise ValueError(f"trigonometric_interpolant refines {coarse} to a grid at least as fine; got {tuple(shape)}")
    d = len(shape)
    c = torch.fft.rfftn(values, dim=tuple(range(d)))
    for axis, (n, m) in enumerate(zip(coarse, shape, strict=True)):
        if m == n:
            continue
        half = n // 2
        nyquist = [c.narrow(axis, half, 1) / 2] if n % 2 == 0 else []
        if axis == d - 1:
            pieces = [c.narrow(axis, 0, (n + 1) // 2), *nyquist]
            pieces.append(_zeros_along(c, axis, m // 2 + 1 - sum(p.shape[axis] for p in pieces)))
        else:
            positive, negative = c.narrow(axis, 0, (n + 1) // 2), c.narrow(axis, half + 1, n - half - 1)
            gap = _zeros_along(c, axis, m - n - len(nyquist))
            pieces = [positive, *nyquist, gap, *nyquist, negative]
        c = torch.cat(pieces, dim=axis)
    return torch.fft.irfftn(c, s=shape, dim=tuple(range(d))) * (math.prod(shape) / math.prod(coarse))


class GrayScott(SpectralSolver):
    """Batched Gray-Scott reaction-diffusion for two species as channels: ``[batch, 2, *space]`` = ``(u, v)``.

    ``du/dt = D_u laplacian u - u v^2 + F (1 - u)``, ``dv/dt = D_v laplacian v + u v^2 - (F + k) v``.

    Fourier pseudo-spectral in space on a periodic grid (1D, 2D or 3D). The linear part, diagonal
    per species (``-D_u |k|^2 - F`` and ``-D_v |k|^2 - (F + k)``), is integrated exactly by ETDRK4
    (the default; ``"cn-heun"`` and ``"cn-euler"`` also apply); the explicit part is ``-u v^2 + F``
    and ``+u v^2``, with ``u v^2`` computed in physical space.

    The cubic ``u v^2`` is evaluated on the grid itself by default (``dealias=False``), which aliases
    the product's unresolved modes into the resolved ones, as The Well's generator and
    ``AllenCahn`` do. With ``dealias=True`` it is evaluated on a grid of twice the points per axis
    from the modes ``|m_i| < n_i / 2`` of ``u`` and ``v`` and truncated back to those modes: the
    exact Galerkin truncation of the cubic (twice the points is what a cubic needs; a 2/3 mask,
    which makes the quadratic terms of ``NavierStokes2D`` and ``Burgers`` exact, would still alias
    it), at 3 to 5 times the cost of a step in 2D (measured on a CPU). The Nyquist modes of even axes are then left
    out of the reaction (they evolve by the linear part alone). Neither is the more accurate when
    the pattern is under-resolved: in The Well's setting at 128^2, against a 256^2 solution, the
    alias-free run was twice as close at t = 10 and the grid evaluation two to three times as close
    at t = 50 and 100, both with max errors of 1-2% (0.1% at 192^2). Resolve the pattern instead
    (solve on a finer grid and store it Fourier-truncated); the default is the cheaper evaluation.

    The Well's data (see ``WELL_PATTERNS``) were made with Chebfun's ``spin2`` (S. Montanelli and
    N. Bootland, "Solving periodic semilinear stiff PDEs in 1D, 2D and 3D with exponential
    integrators", Math. Comput. Simul. 178, 2020), which evaluates ``u v^2`` on the grid and, with
    ``dealias='on'``, zeroes after every step the coefficients whose modes lie in the top third on
    every axis at once. That filter is deliberately not reproduced: it is not a truncation of the
    equation, and it still lets the cubic alias into the modes it keeps.

    Args:
        grid: the periodic grid; The Well's is ``Grid(WELL_SHAPE, WELL_LENGTHS)``.
        feed: the feed rate ``F >= 0``, a float or a tensor ``[batch]``.
        kill: the kill rate ``k >= 0``, a float or a tensor ``[batch]``.
        diffusivity_u: ``D_u > 0``, a float or a tensor ``[batch]``.
        diffusivity_v: ``D_v > 0``, a float or a tensor ``[batch]``.
        dealias: evaluate the cubic term alias-free on a grid twice as fine (see above).
        scheme: the time-stepping scheme (see ``pdekit.solvers.time_stepping``); ``"exact"`` is
            refused (the system is nonlinear).
        initial_field: the sampler of initial states, ``[batch, 2, *space]``; The Well's random
            Gaussians by default (``PerturbedSteadyState`` is its other kind).
        device: where states live; None is ``default_device()`` (CUDA when present).
        dtype: ``torch.float32`` or ``torch.float64``.

    Raises:
        ValueError: a rate or diffusivity is out of range (naming it and the member), ``dealias`` is
            not a bool, or ``scheme`` is exact.
    """

    channels = 2

    def __init__(
        self,
        grid: Grid,
        feed: float | torch.Tensor = WELL_PATTERNS["spots"][0],
        kill: float | torch.Tensor = WELL_PATTERNS["spots"][1],
        *,
        diffusivity_u: float | torch.Tensor = WELL_DIFFUSIVITY_U,
        diffusivity_v: float | torch.Tensor = WELL_DIFFUSIVITY_V,
        dealias: bool = False,
        scheme: str | Scheme = "etdrk4",
        initial_field: RandomGaussians | PerturbedSteadyState = RandomGaussians(),
        device: Device | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(grid, scheme=scheme, cfl=None, device=device, dtype=dtype, initial_field=initial_field)
        if self.scheme.exact:
            raise ValueError(f"GrayScott is nonlinear: scheme must not be exact; got {self.scheme.name!r}")
        if not isinstance(dealias, bool):
            raise ValueError(f"dealias must be True or False; got {dealias!r}")
        self.feed = self._per_member("feed", feed, allow_zero=True)
        self.kill = self._per_member("kill", kill, allow_zero=True)
        self.diffusivity_u = self._per_member("diffusivity_u", diffusivity_u)
        self.diffusivity_v = self._per_member("diffusivity_v", diffusivity_v)
        self.dealias = dealias
        self._padded_shape = tuple(2 * n for n in grid.shape)
        # F (1 - u) = F - F u: "-F u" is in the linear symbol and the constant F is explicit. In rfft
        # coefficients (unnormalised, as torch's rfftn gives them) a constant c is c * n_points at the mean mode.
        feed_values = self.feed.reshape(-1)
        source = torch.zeros((feed_values.shape[0], 2, *grid.spectral_shape), dtype=self.complex_dtype, device=self.device)
        source[(slice(None), 0) + (0,) * grid.ndim] = (feed_values * math.prod(grid.shape)).to(self.complex_dtype)
        self._source = source

    def linear_symbol(self) -> torch.Tensor:
        """Returns ``(-D_u |k|^2 - F, -D_v |k|^2 - F - k)``: float64, ``[batch or 1, 2, *spectrum]``."""
        k2 = self.grid.wavenumber_squared(device=self.device)
        spectrum = self.grid.spectral_shape
        linear_u = -(self.diffusivity_u * k2 + self.feed)
        linear_v = -(self.diffusivity_v * k2 + self.feed + self.kill)
        linear_u, linear_v = torch.broadcast_tensors(linear_u.reshape(-1, 1, *spectrum), linear_v.reshape(-1, 1, *spectrum))
        return torch.cat([linear_u, linear_v], dim=1)

    def reaction(self, state_hat: torch.Tensor) -> torch.Tensor:
        """Returns ``u v^2`` in rfft space, ``[batch, 1, *spectrum]``, from the state's rfft ``[batch, 2, *spectrum]``.

        Args:
            state_hat: the rfft of states ``(u, v)``: ``[batch, 2, *spectrum]``.

        Returns:
            ``[batch, 1, *spectrum]``; alias-free when the solver was built with ``dealias=True``.
        """
        if not self.dealias:
            u, v = self.to_physical(state_hat).split(1, dim=1)
            return self.to_spectral(u * v.square())
        shape, padded = self.grid.shape, self._padded_shape
        # irfftn divides by the number of points it transforms to; rescale to the field's values.
        fields = torch.fft.irfftn(resize_spectrum(state_hat, shape, padded), s=padded, dim=self.grid.dims)
        u, v = (fields * (math.prod(padded) / math.prod(shape))).split(1, dim=1)
        product = torch.fft.rfftn(u * v.square(), dim=self.grid.dims)
        return resize_spectrum(product, padded, shape) * (math.prod(shape) / math.prod(padded))

    def nonlinear_term(self, state_hat: torch.Tensor) -> torch.Tensor:
        """Returns ``(-u v^2 + F, u v^2)`` in rfft space: ``[batch, 2, *spectrum]``.

        Args:
            state_hat: the rfft of states ``(u, v)``: ``[batch, 2, *spectrum]``.

        Returns:
            ``[batch, 2, *spectrum]``.
        """
        r = self.reaction(state_hat)
        return torch.cat([-r, r], dim=1) + self._source
