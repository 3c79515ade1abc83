"""Collocation samplers behind one interface: ``points`` now, ``update(residual, iteration)`` to move them.

``residual(points [N, d + 1]) -> [N]`` is the PDE residual (no gradients needed here). Samplers draw
from the problem's space-time domain with their own seeded generator, so a run is reproducible.
``loss_weights(points)`` lets a sampler weight the residual loss (the causal gate does).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from pdekit.devices import Device
from pdekit.pinn.problems import Problem
from pdekit.seeds import PINN_SAMPLER_STREAM, derived_seed

Residual = Callable[[torch.Tensor], torch.Tensor]


class Sampler:
    """Fixed uniform points: drawn once, never moved (the standard PINN); the interface every sampler has.

    ``points [N, d + 1]`` is the current population (space then time).

    Args:
        problem: the PDE whose space-time domain the points fill.
        size: the population's size ``N``.
        seed: the seed of the sampler's own CPU generator, which draws from the stream
            ``derived_seed(seed, PINN_SAMPLER_STREAM, 0)``: independent of ``torch.manual_seed(seed)``'s
            (a network's weights) and of the condition points of ``PINNConfig(seed=seed)``.
        device: where the points live.

    Raises:
        ValueError: if ``size`` is not an integer >= 1.
    """

    name = "uniform_fixed"
    state: tuple[str, ...] = ("points",)  # what changes as it trains, besides its generator

    def __init__(self, problem: Problem, size: int = 1000, *, seed: int = 0, device: Device | None = None):
        _check_at_least(type(self).__name__, size=(size, 1))
        self.problem, self.size, self.device = problem, size, device
        self.generator = torch.Generator().manual_seed(derived_seed(seed, PINN_SAMPLER_STREAM, 0))
        self.points = self.uniform(size)

    def state_dict(self) -> dict:
        """Returns what changes as the sampler trains: its population, its generator's state, and its own (e.g. the causal front)."""
        return {"name": self.name, "generator": self.generator.get_state(), **{name: getattr(self, name) for name in self.state}}

    def load_state_dict(self, state: dict) -> None:
        """Restores a ``state_dict()`` of a sampler of the same kind, built with the same settings.

        Raises:
            ValueError: the state is another sampler's (naming both).
        """
        if state["name"] != self.name:
            raise ValueError(f"the saved sampler is {state['name']!r}; this one is {self.name!r}")
        self.generator.set_state(state["generator"])
        for name in self.state:
            value = state[name]
            setattr(self, name, value.to(self.points.device) if isinstance(value, torch.Tensor) else value)

    def uniform(self, n: int) -> torch.Tensor:
        """Returns ``n`` fresh uniform points from the sampler's generator.

        Args:
            n: the number of points.

        Returns:
            ``[n, d + 1]``, space then time.
        """
        return self.problem.uniform(n, self.generator, self.device)

    def update(self, residual: Residual, iteration: int) -> None:
        """Moves the population after ``iteration`` (a no-op for fixed points).

        Args:
            residual: ``residual(points [M, d + 1]) -> [M]``, the PDE residual of the current network.
            iteration: the iteration just taken, counted from 0.
        """

    def loss_weights(self, points: torch.Tensor) -> torch.Tensor | None:
        """Returns per-point weights of the residual loss, or ``None`` for equal weights.

        Args:
            points: ``[N, d + 1]``.

        Returns:
            ``[N]`` or ``None``.
        """
        return None

    def observe_loss(self, residual_loss: torch.Tensor) -> None:
        """Takes the latest (weighted) residual loss, after ``update``; the causal gate moves on it.

        Args:
            residual_loss: the 0-d residual loss ``mean(w r^2)`` of the iteration just taken.
        """


class UniformResampled(Sampler):
    """A fresh uniform population every ``every`` iterations.

    Args:
        problem: the PDE whose space-time domain the points fill.
        size: the population's size.
        every: iterations between redraws.
        seed: the seed of the sampler's generator.
        device: where the points live.

    Raises:
        ValueError: if ``size`` or ``every`` is not an integer >= 1.
    """

    name = "uniform_resampled"

    def __init__(self, problem: Problem, size: int = 1000, *, every: int = 1, seed: int = 0, device: Device | None = None):
        _check_at_least(type(self).__name__, every=(every, 1))
        super().__init__(problem, size, seed=seed, device=device)
        self.every = every

    def update(self, residual, iteration):
        if (iteration + 1) % self.every == 0:
            self.points = self.uniform(self.size)


def residual_density(values: torch.Tensor, k: float, c: float) -> torch.Tensor:
    """Returns the sampling probabilities ``p ∝ |r|^k / mean(|r|^k) + c`` of Wu et al. (2023)."""
    power = values.abs() ** k
    density = power / power.mean().clamp_min(torch.finfo(power.dtype).tiny) + c
    return density / density.sum()


class RAD(Sampler):
    """Residual-based adaptive distribution: every ``every`` iterations the whole population is redrawn
    from a dense uniform candidate set with ``p ∝ |r|^k / E|r|^k + c``.

    Wu, Zhu, Tan, Kartha and Lu, "A comprehensive study of non-adaptive and residual-based adaptive
    sampling for physics-informed neural networks", CMAME 2023 (defaults ``k = 1, c = 1``).

    Args:
        problem: the PDE whose space-time domain the points fill.
        size: the population's size.
        every: iterations between redraws.
        k: the residual's exponent.
        c: the density's uniform floor.
        candidates: the uniform candidates scored per redraw (at least the points drawn from them).
        fresh_candidates: draw new uniform candidates at every update (Wu et al.); False: score one
            dense set drawn once, as the R3 paper's authors run RAD and RAR-D (``sampler_rar.py`` in
            ``arkadaw9/r3_sampling_icml2023``), so the population only ever holds points of that set.
        seed: the seed of the sampler's generator.
        device: where the points live.

    Raises:
        ValueError: for counts below 1, a negative or non-finite ``k`` or ``c``, or fewer candidates
            than the points an update draws.
    """

    name = "rad"

    def __init__(
        self,
        problem: Problem,
        size: int = 1000,
        *,
        every: int = 1000,
        k: float = 1.0,
        c: float = 1.0,
        candidates: int = 10_000,
        fresh_candidates: bool = True,
        seed: int = 0,
        device: Device | None = None,
    ):
        name = type(self).__name__
        _check_at_least(name, every=(every, 1), candidates=(candidates, 1))
        for option, value in (("k", k), ("c", c)):
            if not 0 <= value < math.inf:
                raise ValueError(f"{name} {option} must be non-negative and finite; got {value!r}")
        super().__init__(problem, size, seed=seed, device=device)
        self.every, self.k, self.c, self.candidates = every, k, c, candidates
        self._dense = None if fresh_candidates else self.uniform(candidates)
        if candidates < self.drawn_per_update():
            raise ValueError(
                f"{name} draws {self.drawn_per_update()} points without replacement from its candidates: candidates must be >= that; got "
                f"{candidates}"
            )

    def drawn_per_update(self) -> int:
        """Returns how many points an update draws from the candidates (RAD: the whole population; RAR-D: ``added``)."""
        return self.size

    def candidate_points(self) -> torch.Tensor:
        """Returns the ``[candidates, d + 1]`` points an update scores: fresh uniform ones, or the one dense set."""
        return self.uniform(self.candidates) if self._dense is None else self._dense

    def update(self, residual, iteration):
        if (iteration + 1) % self.every:
            return
        candidates = self.candidate_points()
        p = residual_density(residual(candidates), self.k, self.c)
        self.points = candidates[torch.multinomial(p.cpu(), self.size, replacement=False, generator=self.generator).to(candidates.device)]


class RARD(RAD):
    """Residual-based adaptive refinement with distribution: every ``every`` iterations, ``added`` points
    drawn from ``p ∝ |r|^k / E|r|^k + c`` over dense candidates join the population (which grows).

    Wu et al., CMAME 2023 (defaults ``k = 2, c = 0``).

    Args:
        problem: the PDE whose space-time domain the points fill.
        size: the initial population's size.
        every: iterations between additions.
        added: the points added per update.
        k: the residual's exponent.
        c: the density's uniform floor.
        candidates: the uniform candidates scored per update (at least ``added``).
        fresh_candidates: as ``RAD``'s.
        seed: the seed of the sampler's generator.
        device: where the points live.

    Raises:
        ValueError: as ``RAD``, and if ``added`` is not an integer >= 1.
    """

    name = "rar_d"

    def __init__(
        self,
        problem: Problem,
        size: int = 1000,
        *,
        every: int = 1000,
        added: int = 100,
        k: float = 2.0,
        c: float = 0.0,
        candidates: int = 10_000,
        fresh_candidates: bool = True,
        seed: int = 0,
        device: Device | None = None,
    ):
        _check_at_least(type(self).__name__, added=(added, 1))
        self.added = added  # before RAD's checks, which compare it with the candidates
        super().__init__(
            problem, size, every=every, k=k, c=c, candidates=candidates, fresh_candidates=fresh_candidates, seed=seed, device=device
        )

    def drawn_per_update(self) -> int:
        return self.added

    def update(self, residual, iteration):
        if (iteration + 1) % self.every:
            return
        candidates = self.candidate_points()
        p = residual_density(residual(candidates), self.k, self.c)
        chosen = candidates[torch.multinomial(p.cpu(), self.added, replacement=False, generator=self.generator).to(candidates.device)]
        self.points = torch.cat([self.points, chosen])


class R3(Sampler):
    """Retain-resample-release: every iteration, keep the points whose residual exceeds the population's
    mean residual and replace the others by uniform draws, at constant population size.

    Daw, Bu, Wang, Perdikaris and Karpatne, "Mitigating propagation failures in physics-informed neural
    networks using retain-resample-release (R3) sampling", ICML 2023. Points accumulate where the
    residual is high and are released once the network has learned them. ``retained`` counts the
    points kept at the last update; the retained points come first in ``points``.

    As in the authors' code (``PINN.loss`` in ``arkadaw9/r3_sampling_icml2023``), ``train_pinn`` scores
    the population with the residual the iteration's loss was taken with, before the optimizer step,
    at no extra cost: the ``residual`` it passes returns that residual for ``points``. The sampler takes
    the residual as a function so that every sampler (RAD scores fresh candidates) shares one interface.

    Args:
        problem: the PDE whose space-time domain the points fill.
        size: the population's (constant) size.
        every: iterations between updates.
        seed: the seed of the sampler's generator.
        device: where the points live.

    Raises:
        ValueError: if ``size`` or ``every`` is not an integer >= 1.
    """

    name = "r3"
    state: tuple[str, ...] = ("points", "retained")

    def __init__(self, problem: Problem, size: int = 1000, *, every: int = 1, seed: int = 0, device: Device | None = None):
        _check_at_least(type(self).__name__, every=(every, 1))
        super().__init__(problem, size, seed=seed, device=device)
        self.every = every
        self.retained = 0

    def scores(self, residual: Residual, points: torch.Tensor) -> torch.Tensor:
        """Returns each point's fitness, ``|r| [N]``: the points above the mean are retained.

        Args:
            residual: ``residual(points [N, d + 1]) -> [N]``.
            points: ``[N, d + 1]``.

        Returns:
            ``[N]``.
        """
        return residual(points).abs()

    def update(self, residual, iteration):
        if (iteration + 1) % self.every:
            return
        score = self.scores(residual, self.points)
        keep = score > score.mean()
        retained = self.points[keep]
        self.retained = len(retained)
        self.points = torch.cat([retained, self.uniform(self.size - len(retained))])


class CausalR3(R3):
    """R3 with a causal gate that opens later times only once the gated residual loss is small.

    Daw et al., ICML 2023 (section on the causal extension of R3), as the authors' code does it
    (``CausalR3Sampler`` and ``PINN.loss_res_evo_sample`` in ``Convection/``; the Allen-Cahn and
    Kuramoto-Sivashinsky copies agree). With the gate

        g(t) = (1 - tanh(alpha (t / T - gamma))) / 2,

    half open at its front ``t = gamma T``:

    - the residual loss is ``L_g = mean((g r)^2)``: ``loss_weights`` returns ``g^2``;
    - R3 retains the points whose causal fitness ``g |r|`` exceeds its population mean and redraws the
      rest uniformly over the whole domain;
    - after every iteration the front moves forward by ``step * min(exp(-tolerance L_g), clip)``.

    The clip bounds the front's speed to ``step * clip`` per iteration (1e-4 with the defaults), and
    that bound is what it moves at whenever ``L_g < ln(1 / clip) / tolerance`` (0.115): from
    ``gamma_0 = -0.5`` the front reaches ``t = T`` after 15 000 iterations at the earliest. The front is
    never capped: past ``gamma = 1`` the gate keeps opening toward ``g = 1`` over the whole domain.
    Defaults are the authors' training defaults for convection and Allen-Cahn: ``alpha = 5`` (the
    gate's steepness), ``initial_gamma = -0.5`` (so at first even ``t = 0`` has weight ``g^2 < 1e-4``
    and the initial and boundary losses alone train the network), ``step = 1e-3``, ``tolerance = 20``,
    ``clip = 0.1``. The front is ``gamma`` here because ``beta``, the paper's letter for it, is the
    convection speed in pdekit.

    ``train_pinn`` calls ``update`` and then ``observe_loss``, as the authors' code does: the fitness
    uses the gate the loss was taken with, and the front then steps on that loss.

    Args:
        problem: the PDE whose space-time domain the points fill.
        size: the population's (constant) size.
        alpha: the gate's steepness.
        initial_gamma: the front's starting position, as a fraction of the horizon.
        step: the front's largest step per iteration, before the clip.
        tolerance: the causal tolerance of ``exp(-tolerance L_g)``.
        clip: the cap on ``exp(-tolerance L_g)``.
        every: iterations between R3 updates.
        seed: the seed of the sampler's generator.
        device: where the points live.

    Raises:
        ValueError: for a non-positive ``alpha``, ``tolerance`` or ``clip``, a negative ``step``, or R3's errors.
    """

    name = "causal_r3"
    state: tuple[str, ...] = ("points", "retained", "gamma")

    def __init__(
        self,
        problem: Problem,
        size: int = 1000,
        *,
        alpha: float = 5.0,
        initial_gamma: float = -0.5,
        step: float = 1e-3,
        tolerance: float = 20.0,
        clip: float = 0.1,
        every: int = 1,
        seed: int = 0,
        device: Device | None = None,
    ):
        for option, value in (("alpha", alpha), ("tolerance", tolerance), ("clip", clip)):
            if not value > 0:
                raise ValueError(f"CausalR3 {option} must be positive, got {value!r}")
        if not step >= 0:
            raise ValueError(f"CausalR3 step must be non-negative, got {step!r}")
        super().__init__(problem, size, every=every, seed=seed, device=device)
        self.alpha, self.gamma, self.step, self.tolerance, self.clip = alpha, initial_gamma, step, tolerance, clip

    def gate(self, t: torch.Tensor) -> torch.Tensor:
        """Returns ``g(t)`` in ``(0, 1)``: near 1 before the front ``gamma T``, near 0 after it.

        Args:
            t: ``[N]`` times.

        Returns:
            ``[N]``.
        """
        return 0.5 * (1 - torch.tanh(self.alpha * (t / self.problem.horizon - self.gamma)))

    def loss_weights(self, points: torch.Tensor) -> torch.Tensor:
        """Returns ``g(t)^2 [N]``, so that the residual loss ``mean(w r^2)`` is the gated ``mean((g r)^2)``.

        Args:
            points: ``[N, d + 1]``.

        Returns:
            ``[N]``, without gradients.
        """
        return self.gate(points[:, -1].detach()).square()

    def scores(self, residual: Residual, points: torch.Tensor) -> torch.Tensor:
        """Returns each point's causal fitness ``g(t) |r|``.

        Args:
            residual: ``residual(points [N, d + 1]) -> [N]``.
            points: ``[N, d + 1]``.

        Returns:
            ``[N]``.
        """
        return self.gate(points[:, -1]) * residual(points).abs()

    def front_step(self, gated_loss: float) -> float:
        """Returns the front's move ``step * min(exp(-tolerance L_g), clip)`` for the gated loss ``L_g``.

        Args:
            gated_loss: ``L_g = mean((g r)^2)``.

        Returns:
            The move, in fractions of the horizon.
        """
        return self.step * min(math.exp(-self.tolerance * gated_loss), self.clip)

    def observe_loss(self, residual_loss: torch.Tensor) -> None:
        """Moves the front on the gated residual loss ``L_g = mean((g r)^2)`` of the latest iteration.

        Args:
            residual_loss: ``L_g``, a 0-d tensor; a non-finite one leaves the front where it is.
        """
        loss = float(residual_loss)
        if math.isfinite(loss):
            self.gamma += self.front_step(loss)


def _check_at_least(sampler: str, **options: tuple[int, int]) -> None:
    """Raises ValueError naming the first ``option=(value, lowest)`` whose value is not an integer >= lowest."""
    for option, (value, lowest) in options.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise ValueError(f"{sampler} {option} must be an integer >= {lowest}; got {value!r}")


SAMPLERS = {cls.name: cls for cls in (Sampler, UniformResampled, RAD, RARD, R3, CausalR3)}
"""The sampler classes by their ``name``."""


def make_sampler(name: str, problem: Problem, size: int = 1000, **settings: Any) -> Sampler:
    """Returns the sampler ``name`` (one of ``SAMPLERS``) over ``problem`` with ``size`` points.

    Args:
        name: ``"uniform_fixed"``, ``"uniform_resampled"``, ``"rad"``, ``"rar_d"``, ``"r3"`` or ``"causal_r3"``.
        problem: the PDE whose space-time domain the points fill.
        size: the population's (initial) size.
        **settings: the sampler's keyword settings (``every``, ``k``, ``seed``, ...).

    Returns:
        The sampler.

    Raises:
        ValueError: if ``name`` is not in ``SAMPLERS``, or a setting is out of range.
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](problem, size, **settings)
