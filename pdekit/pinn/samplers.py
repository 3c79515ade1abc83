"""Collocation samplers behind one interface: ``points`` now, ``update(residual, iteration)`` to move them.

``residual(points [N, d + 1]) -> [N]`` is the PDE residual (no gradients needed here). Samplers draw
from the problem's space-time domain with their own seeded generator, so a run is reproducible.
``loss_weights(points)`` lets a sampler weight the residual loss (the causal gate does).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from pdekit.pinn.problems import Problem

Residual = Callable[[torch.Tensor], torch.Tensor]


class Sampler:
    """Fixed uniform points: drawn once, never moved (the standard PINN)."""

    name = "uniform_fixed"

    def __init__(self, problem: Problem, size: int = 1000, *, seed: int = 0, device=None):
        _check_at_least(type(self).__name__, size=(size, 1))
        self.problem, self.size, self.device = problem, size, device
        self.generator = torch.Generator().manual_seed(seed)
        self.points = self.uniform(size)

    def uniform(self, n: int) -> torch.Tensor:
        return self.problem.uniform(n, self.generator, self.device)

    def update(self, residual: Residual, iteration: int) -> None:
        """Moves the population after ``iteration`` (a no-op for fixed points)."""

    def loss_weights(self, points: torch.Tensor) -> torch.Tensor | None:
        """Returns per-point weights of the residual loss, or ``None`` for equal weights."""
        return None

    def observe_loss(self, residual_loss: torch.Tensor) -> None:
        """Takes the latest (weighted) residual loss; the causal gate moves on it."""


class UniformResampled(Sampler):
    """A fresh uniform population every ``every`` iterations."""

    name = "uniform_resampled"

    def __init__(self, problem: Problem, size: int = 1000, *, every: int = 1, seed: int = 0, device=None):
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
        seed: int = 0,
        device=None,
    ):
        name = type(self).__name__
        _check_at_least(name, every=(every, 1), candidates=(candidates, 1))
        for option, value in (("k", k), ("c", c)):
            if not 0 <= value < math.inf:
                raise ValueError(f"{name} {option} must be non-negative and finite; got {value!r}")
        super().__init__(problem, size, seed=seed, device=device)
        self.every, self.k, self.c, self.candidates = every, k, c, candidates
        if candidates < self.drawn_per_update():
            raise ValueError(
                f"{name} draws {self.drawn_per_update()} points without replacement from its candidates: candidates must be >= that; got "
                f"{candidates}"
            )

    def drawn_per_update(self) -> int:
        """Returns how many points an update draws from the candidates (the whole population)."""
        return self.size

    def update(self, residual, iteration):
        if (iteration + 1) % self.every:
            return
        candidates = self.uniform(self.candidates)
        p = residual_density(residual(candidates), self.k, self.c)
        self.points = candidates[torch.multinomial(p.cpu(), self.size, replacement=False, generator=self.generator).to(candidates.device)]


class RARD(RAD):
    """Residual-based adaptive refinement with distribution: every ``every`` iterations, ``added`` points
    drawn from ``p ∝ |r|^k / E|r|^k + c`` over dense candidates join the population (which grows).

    Wu et al., CMAME 2023 (defaults ``k = 2, c = 0``).
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
        seed: int = 0,
        device=None,
    ):
        _check_at_least(type(self).__name__, added=(added, 1))
        self.added = added  # before RAD's checks, which compare it with the candidates
        super().__init__(problem, size, every=every, k=k, c=c, candidates=candidates, seed=seed, device=device)

    def drawn_per_update(self) -> int:
        return self.added

    def update(self, residual, iteration):
        if (iteration + 1) % self.every:
            return
        candidates = self.uniform(self.candidates)
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

    Deliberate difference: ``train_pinn`` calls ``update`` after the optimizer step, so the population
    is scored with the network that has just taken it (one residual evaluation more per iteration);
    the authors' code scores it with the residual of the loss that took the step. The sampler takes
    the residual as a function so that every sampler (RAD scores fresh candidates) shares one interface.
    """

    name = "r3"

    def __init__(self, problem: Problem, size: int = 1000, *, every: int = 1, seed: int = 0, device=None):
        _check_at_least(type(self).__name__, every=(every, 1))
        super().__init__(problem, size, seed=seed, device=device)
        self.every = every
        self.retained = 0

    def scores(self, residual: Residual, points: torch.Tensor) -> torch.Tensor:
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

    Deliberate difference (besides R3's, see there): the front takes its step in ``observe_loss``,
    before ``update`` scores the population, so the fitness uses the gate after this iteration's step
    (at most ``step * clip`` further on) where the authors' code uses the gate before it.
    """

    name = "causal_r3"

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
        device=None,
    ):
        for option, value in (("alpha", alpha), ("tolerance", tolerance), ("clip", clip)):
            if not value > 0:
                raise ValueError(f"CausalR3 {option} must be positive, got {value!r}")
        if not step >= 0:
            raise ValueError(f"CausalR3 step must be non-negative, got {step!r}")
        super().__init__(problem, size, every=every, seed=seed, device=device)
        self.alpha, self.gamma, self.step, self.tolerance, self.clip = alpha, initial_gamma, step, tolerance, clip

    def gate(self, t: torch.Tensor) -> torch.Tensor:
        """Returns ``g(t)`` in ``(0, 1)``: near 1 before the front ``gamma T``, near 0 after it; ``t: [N]``."""
        return 0.5 * (1 - torch.tanh(self.alpha * (t / self.problem.horizon - self.gamma)))

    def loss_weights(self, points):
        """Returns ``g(t)^2 [N]``, so that the residual loss ``mean(w r^2)`` is the gated ``mean((g r)^2)``."""
        return self.gate(points[:, -1].detach()).square()

    def scores(self, residual, points):
        return self.gate(points[:, -1]) * residual(points).abs()

    def front_step(self, gated_loss: float) -> float:
        """Returns the front's move ``step * min(exp(-tolerance L_g), clip)`` for the gated loss ``L_g``."""
        return self.step * min(math.exp(-self.tolerance * gated_loss), self.clip)

    def observe_loss(self, residual_loss: torch.Tensor) -> None:
        """Moves the front on the gated residual loss ``L_g = mean((g r)^2)`` of the latest iteration."""
        loss = float(residual_loss)
        if math.isfinite(loss):
            self.gamma += self.front_step(loss)


def _check_at_least(sampler: str, **options: tuple[int, int]) -> None:
    """Raises ValueError naming the first ``option=(value, lowest)`` whose value is not an integer >= lowest."""
    for option, (value, lowest) in options.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise ValueError(f"{sampler} {option} must be an integer >= {lowest}; got {value!r}")


SAMPLERS = {cls.name: cls for cls in (Sampler, UniformResampled, RAD, RARD, R3, CausalR3)}


def make_sampler(name: str, problem: Problem, size: int = 1000, **settings) -> Sampler:
    """Returns the sampler ``name`` (one of ``SAMPLERS``) over ``problem`` with ``size`` points."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](problem, size, **settings)
