"""PINN problems: PDE residuals through autograd, initial conditions, and reference solutions.

Points are ``xt [N, d + 1]``: space coordinates then time. Every problem here is periodic in space,
so a network with a periodic embedding of ``x`` satisfies the boundary condition exactly; without
one, ``boundary_pairs`` gives matching points on opposite faces for a periodicity loss.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from pdekit.devices import Device
from pdekit.grid import Grid
from pdekit.solvers import AllenCahn, Burgers

Network = Callable[[torch.Tensor], torch.Tensor]
"""``network(xt [..., N, d + 1]) -> [..., N, 1]``: a module, or an ensemble evaluated as one."""


def gradient(u: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
    """Returns ``du/d(xt) [..., N, d + 1]`` of ``u [..., N]``, keeping the graph for higher derivatives and the loss.

    Leading axes (an ensemble's members) are independent, so the gradient of their sum is each one's own.
    """
    return torch.autograd.grad(u, xt, torch.ones_like(u), create_graph=True)[0]


@dataclass(frozen=True)
class Problem(ABC):
    """A time-dependent PDE on ``space`` (``(lo, hi)`` per axis, periodic) times ``[0, horizon]``.

    Args:
        name: the problem's name in ``PROBLEMS``.
        space: ``(lo, hi)`` per space axis, each finite with ``lo < hi``.
        horizon: the end time ``T`` (positive, finite).

    Raises:
        ValueError: for an empty or infinite interval, a non-finite coefficient, or a non-positive
            ``diffusivity`` or ``viscosity``.
    """

    name: str
    space: tuple[tuple[float, float], ...]
    horizon: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.horizon < math.inf:
            raise ValueError(f"{self.name} horizon must be positive and finite; got {self.horizon!r}")
        for axis, (lo, hi) in enumerate(self.space):
            if not -math.inf < lo < hi < math.inf:
                raise ValueError(f"{self.name} space axis {axis} must be a finite interval (lo, hi) with lo < hi; got {(lo, hi)}")
        for f in fields(self):  # the coefficients of the PDE: beta, rho, diffusivity, ...
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value):
                raise ValueError(f"{self.name} {f.name} must be finite; got {value!r}")
        for name in ("diffusivity", "viscosity"):
            if hasattr(self, name) and not getattr(self, name) > 0:
                raise ValueError(f"{self.name} {name} must be positive; got {getattr(self, name)!r}")

    @property
    def dim(self) -> int:
        """The number of space axes ``d``."""
        return len(self.space)

    @property
    def periods(self) -> tuple[float, ...]:
        """Each space axis's period ``hi - lo``."""
        return tuple(hi - lo for lo, hi in self.space)

    @abstractmethod
    def residual(self, network: Network, xt: torch.Tensor) -> torch.Tensor:
        """Returns the PDE residual at ``xt [..., N, d + 1]`` (which must require grad): ``[..., N]``.

        Args:
            network: ``network(xt [..., N, d + 1]) -> [..., N, 1]`` (leading axes: an ensemble's
                members, each on its own points).
            xt: the points, space then time, with ``requires_grad`` set.

        Returns:
            ``[..., N]``, differentiable in the network's weights.
        """

    @abstractmethod
    def initial(self, x: torch.Tensor) -> torch.Tensor:
        """Returns ``u(x, 0)`` at ``x [..., N, d]``: ``[..., N]``.

        Args:
            x: ``[..., N, d]`` space points.

        Returns:
            ``[..., N]``.
        """

    @abstractmethod
    def reference(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Returns the true solution on the grid ``t [nt] x x [nx]`` (1D) or ``t x y x x`` (2D): ``[nt, *nx]``.

        Args:
            x: ``[nx]``, the points of every space axis.
            t: ``[nt]``, the times.

        Returns:
            ``[nt, *nx]`` (``nx`` once per space axis).
        """

    def uniform(self, n: int, generator: torch.Generator | None = None, device: Device | None = None) -> torch.Tensor:
        """Returns ``n`` points drawn uniformly from the space-time domain: ``[n, d + 1]``.

        Args:
            n: the number of points.
            generator: the random generator (drawn on the CPU, so a seed gives the same points on any device).
            device: where the points go.

        Returns:
            ``[n, d + 1]``, space then time.
        """
        unit = torch.rand(n, self.dim + 1, generator=generator).to(device)
        lows = torch.tensor([lo for lo, _ in self.space] + [0.0], device=device)
        spans = torch.tensor([hi - lo for lo, hi in self.space] + [self.horizon], device=device)
        return lows + spans * unit

    def evaluation_grid(self, points: int = 256, times: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(x, t)``: ``points`` periodic grid points per axis (``[points]``) and ``times`` times in ``[0, horizon]``.

        Args:
            points: grid points ``lo + (hi - lo) j / points`` of the first space axis (shared by every axis).
            times: equally spaced times including 0 and ``horizon``.

        Returns:
            ``(x [points], t [times])`` in float64.
        """
        lo, hi = self.space[0]
        return lo + (hi - lo) * torch.arange(points, dtype=torch.float64) / points, torch.linspace(
            0, self.horizon, times, dtype=torch.float64
        )


def _split(network: Network, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    u = network(xt).squeeze(-1)
    return u, gradient(u, xt)


@dataclass(frozen=True)
class Convection(Problem):
    """``u_t + beta u_x = 0`` on ``[0, 2 pi) x [0, 1]``, ``u(x, 0) = sin x``; exact ``sin(x - beta t)``.

    The failure mode of Krishnapriyan et al. (NeurIPS 2021): plain PINNs fail for ``beta`` above ~10.

    Args:
        beta: the convection speed.
    """

    name: str = "convection"
    space: tuple = ((0.0, 2 * math.pi),)
    beta: float = 50.0

    def residual(self, network, xt):
        _, du = _split(network, xt)
        return du[..., 1] + self.beta * du[..., 0]

    def initial(self, x):
        return torch.sin(x[..., 0])

    def reference(self, x, t):
        return torch.sin(x[None, :] - self.beta * t[:, None])


@dataclass(frozen=True)
class Reaction(Problem):
    """``u_t = rho u (1 - u)`` on ``[0, 2 pi) x [0, 1]``, a Gaussian bump at ``pi``; exact logistic growth per point.

    Args:
        rho: the growth rate.
    """

    name: str = "reaction"
    space: tuple = ((0.0, 2 * math.pi),)
    rho: float = 5.0

    def residual(self, network, xt):
        u, du = _split(network, xt)
        return du[..., 1] - self.rho * u * (1 - u)

    def initial(self, x):
        return torch.exp(-((x[..., 0] - math.pi) ** 2) / (2 * (math.pi / 4) ** 2))

    def reference(self, x, t):
        u0 = self.initial(x[:, None])[None, :]
        growth = torch.exp(self.rho * t[:, None])
        return u0 * growth / (u0 * growth + 1 - u0)


@dataclass(frozen=True)
class AllenCahnProblem(Problem):
    """``u_t = 1e-4 u_xx + 5 (u - u^3)`` on ``[-1, 1) x [0, 1]``, ``u(x, 0) = x^2 cos(pi x)``; reference from ``AllenCahn`` (ETDRK4, 2048
    points).

    Args:
        diffusivity: the coefficient of ``u_xx``.
        reaction: the coefficient of ``u - u^3``.
    """

    name: str = "allen_cahn"
    space: tuple = ((-1.0, 1.0),)
    diffusivity: float = 1e-4
    reaction: float = 5.0

    def residual(self, network, xt):
        u, du = _split(network, xt)
        u_xx = gradient(du[..., 0], xt)[..., 0]
        return du[..., 1] - self.diffusivity * u_xx - self.reaction * (u - u**3)

    def initial(self, x):
        return x[..., 0] ** 2 * torch.cos(math.pi * x[..., 0])

    def reference(self, x, t):
        fine = 2048
        solver = AllenCahn(Grid((fine,), lengths=(2.0,)), self.diffusivity, self.reaction, dtype=torch.float64, device="cpu")
        grid_x = -1.0 + 2.0 * torch.arange(fine, dtype=torch.float64) / fine
        u0 = self.initial(grid_x[:, None]).view(1, 1, fine)
        times = t.tolist()
        trajectory = (
            torch.cat([u0[:, None], solver.solve(u0, [s for s in times if s > 0], 1e-3)], dim=1)
            if times[0] == 0
            else solver.solve(u0, times, 1e-3)
        )
        return _sample_periodic(trajectory[0, :, 0], grid_x, x, 2.0)


@dataclass(frozen=True)
class ViscousBurgers(Problem):
    """``u_t + u u_x = (0.01 / pi) u_xx`` on ``[-1, 1) x [0, 1]``, ``u(x, 0) = -sin(pi x)`` (Raissi et al. 2019).

    The solution stays odd, so ``u(+-1, t) = 0`` holds on the periodic domain. Reference from pdekit's
    ``Burgers`` (ETDRK4, 4096 points): the shock at ``x = 0`` is resolved.

    Args:
        viscosity: the coefficient of ``u_xx``.
    """

    name: str = "burgers"
    space: tuple = ((-1.0, 1.0),)
    viscosity: float = 0.01 / math.pi

    def residual(self, network, xt):
        u, du = _split(network, xt)
        u_xx = gradient(du[..., 0], xt)[..., 0]
        return du[..., 1] + u * du[..., 0] - self.viscosity * u_xx

    def initial(self, x):
        return -torch.sin(math.pi * x[..., 0])

    def reference(self, x, t):
        fine = 4096
        solver = Burgers(Grid((fine,), lengths=(2.0,)), self.viscosity, cfl=0.3, dtype=torch.float64, device="cpu")
        grid_x = -1.0 + 2.0 * torch.arange(fine, dtype=torch.float64) / fine
        u0 = self.initial(grid_x[:, None]).view(1, 1, fine)
        later = solver.solve(u0, [s for s in t.tolist() if s > 0], 1e-3)
        trajectory = torch.cat([u0[:, None], later], dim=1) if t[0] == 0 else later
        return _sample_periodic(trajectory[0, :, 0], grid_x, x, 2.0)


@dataclass(frozen=True)
class Heat2D(Problem):
    """``u_t = kappa (u_xx + u_yy)`` on the unit torus, ``u(x, y, 0) = sin 2 pi x sin 2 pi y``; exact ``exp(-8 pi^2 kappa t)`` decay.

    Args:
        diffusivity: ``kappa``.
    """

    name: str = "heat_2d"
    space: tuple = ((0.0, 1.0), (0.0, 1.0))
    diffusivity: float = 0.01

    def residual(self, network, xt):
        _, du = _split(network, xt)
        u_xx = gradient(du[..., 0], xt)[..., 0]
        u_yy = gradient(du[..., 1], xt)[..., 1]
        return du[..., 2] - self.diffusivity * (u_xx + u_yy)

    def initial(self, x):
        return torch.sin(2 * math.pi * x[..., 0]) * torch.sin(2 * math.pi * x[..., 1])

    def reference(self, x, t):
        decay = torch.exp(-8 * math.pi**2 * self.diffusivity * t)
        shape = torch.sin(2 * math.pi * x)[:, None] * torch.sin(2 * math.pi * x)[None, :]  # [x, y]
        return decay[:, None, None] * shape[None]


def _sample_periodic(values: torch.Tensor, grid_x: torch.Tensor, x: torch.Tensor, period: float) -> torch.Tensor:
    """Returns ``values [nt, n_fine]`` on the periodic fine grid, linearly interpolated at ``x [nx]``: ``[nt, nx]``."""
    spacing = period / values.shape[-1]
    position = torch.remainder(x - grid_x[0], period) / spacing
    left = position.floor().long() % values.shape[-1]
    weight = position - position.floor()
    return (1 - weight) * values[:, left] + weight * values[:, (left + 1) % values.shape[-1]]


PROBLEMS: dict[str, Callable[..., Problem]] = {
    "convection": Convection,
    "reaction": Reaction,
    "allen_cahn": AllenCahnProblem,
    "burgers": ViscousBurgers,
    "heat_2d": Heat2D,
}
"""The problem classes by name, called with their coefficients as keywords (all have defaults): ``PROBLEMS["convection"](beta=30.0)``."""
