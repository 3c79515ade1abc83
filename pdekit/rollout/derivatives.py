"""Finite-difference targets ``du/dt`` for surrogates that predict the time derivative.

Every target is called as ``target(states [B, T, C, *S], index, dt) -> du/dt [B, C, *S]``: the
derivative at time position ``index`` of a window of ``T`` equally spaced states ``dt`` apart.
A training window of ``k`` input states and the ``m`` states that follow them is
``states = torch.cat([history, following], dim=1)``, and the derivative at the newest input
state is ``index = k - 1``.

A target of order ``p`` uses ``p + 1`` consecutive states, as centred on ``index`` as the window
allows, so it is exact on polynomials of degree ``p`` in time at every index of any window of at
least ``p + 1`` states:

=============== ===== ========================================= =================================
name            order interior stencil                          ends of the window
=============== ===== ========================================= =================================
``forward``     1     ``(u[n+1] - u[n]) / dt``                  ``(u[n] - u[n-1]) / dt`` at the last state
``central``     2     ``(u[n+1] - u[n-1]) / (2 dt)``            ``(-3u[n] + 4u[n+1] - u[n+2]) / (2 dt)``, mirrored
``richardson``  4     ``(u[n-2] - 8u[n-1] + 8u[n+1] - u[n+2])   ``(-25u[n] + 48u[n+1] - 36u[n+2] + 16u[n+3]
                      / (12 dt)``                               - 3u[n+4]) / (12 dt)`` at the first state, mirrored
=============== ===== ========================================= =================================

States needed before/after ``index``: ``forward`` 0 before and 1 after (1 before at the last state);
``central`` 1 and 1 (0 and 2 at the first state, 2 and 0 at the last); ``richardson`` 2 and 2 in the
interior, otherwise ``index`` before and ``4 - index`` after (with ``index`` counted from that end).

``forward`` and ``central`` at ``index = k - 1`` of a window with one following state are the
targets pdekit's rollout training used before Richardson was added (forward for ``k = 1``, central
for ``k >= 2``); ``RolloutTraining(derivative_target="auto")`` picks the highest order a window holds.

``richardson`` is the default derivative target of Zhou and Barati Farimani, "Predicting change, not
states: an alternate framework for neural PDE surrogates" (CMAME 2025; code
github.com/anthonyzhou-1/temporal_pdes, ``richardson_extrapolation``): the Richardson extrapolation
``(4 D_dt - D_2dt) / 3`` of two central differences, which is the 5-point stencil above, and at the
first two and last two states of a trajectory the one-sided 4th-order 5-point stencil. One deliberate
difference: at the second (and second-to-last) state the authors use that fully one-sided stencil, while
here the off-centre one ``(-3u[n-1] - 10u[n] + 18u[n+1] - 6u[n+2] + u[n+3]) / (12 dt)`` is used; it
is also 4th order, with a four times smaller error constant (``u^(5) dt^4 / 20`` against ``/ 5``),
and it lets a window of exactly 5 states give the derivative at every one of its states.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from numbers import Integral, Real

import torch


@cache
def stencil_weights(offsets: tuple[int, ...]) -> tuple[float, ...]:
    """Returns the weights ``w`` with ``du/dt(t_n) ~ sum_j w_j u(t_n + offsets[j] dt) / dt``, exact to degree ``len(offsets) - 1``.

    They are the derivatives at 0 of the Lagrange basis polynomials on ``offsets``, computed in exact
    rational arithmetic.
    """
    if len(set(offsets)) != len(offsets) or len(offsets) < 2:
        raise ValueError(f"a stencil needs at least two distinct offsets; got {offsets}")
    weights = []
    for j, s_j in enumerate(offsets):
        others = [s for m, s in enumerate(offsets) if m != j]
        # L_j(x) = prod_m (x - s_m) / (s_j - s_m); its derivative at 0 is a sum of products that leave one factor out
        denominator = Fraction(1)
        for s in others:
            denominator *= s_j - s
        derivative = Fraction(0)
        for left_out in range(len(others)):
            term = Fraction(1)
            for m, s in enumerate(others):
                if m != left_out:
                    term *= -s
            derivative += term
        weights.append(float(derivative / denominator))
    return tuple(weights)


def finite_difference(states: torch.Tensor, index: int, dt, points: int) -> torch.Tensor:
    """Returns ``du/dt [B, C, *S]`` at ``index`` of ``states [B, T, C, *S]`` from ``points`` consecutive states.

    The stencil is centred on ``index`` where the window allows and is shifted inward at its ends;
    its order is ``points - 1``. ``dt`` is a positive number or a tensor of shape ``[]`` or ``[B]``.
    """
    if states.ndim < 3:
        raise ValueError(f"states must be [batch, time, channel, *space]; got shape {tuple(states.shape)}")
    steps = states.shape[1]
    if steps < points:
        raise ValueError(f"this derivative target needs a window of at least {points} states; got {steps}")
    if not isinstance(index, Integral) or not -steps <= index < steps:
        raise ValueError(f"index must be in [-{steps}, {steps}) for a window of {steps} states; got {index}")
    if isinstance(dt, Real) and not dt > 0:
        raise ValueError(f"dt must be positive; got {dt}")
    index %= steps
    start = min(max(index - (points - 1) // 2, 0), steps - points)
    weights = stencil_weights(tuple(range(start - index, start - index + points)))
    derivative = sum(w * states[:, start + j] for j, w in enumerate(weights) if w != 0)
    if isinstance(dt, torch.Tensor) and dt.ndim == 1:
        dt = dt.to(states).view(-1, *([1] * (states.ndim - 2)))
    return derivative / dt


@dataclass(frozen=True)
class DerivativeTarget:
    """A named finite-difference ``du/dt``: ``target(states [B, T, C, *S], index, dt) -> [B, C, *S]``.

    Attributes:
        name: its name in ``DERIVATIVE_TARGETS``.
        order: its order of accuracy in ``dt``.
        points: the fewest states a window must hold (``order + 1``).
    """

    name: str
    order: int
    points: int

    def __call__(self, states: torch.Tensor, index: int, dt: float | torch.Tensor) -> torch.Tensor:
        """Returns ``du/dt [B, C, *S]`` at time position ``index`` of ``states [B, T, C, *S]``, ``dt`` apart.

        Args:
            states: ``[B, T, C, *S]``, equally spaced in time.
            index: the time position, in ``[-T, T)``.
            dt: the spacing, a positive number or a tensor ``[]`` or ``[B]``.

        Returns:
            ``[B, C, *S]``.

        Raises:
            ValueError: if the window holds fewer than ``points`` states, or ``index`` or ``dt`` is out of range.
        """
        if states.ndim >= 2 and states.shape[1] < self.points:
            raise ValueError(
                f"derivative target {self.name!r} needs a window of at least {self.points} states "
                f"(input_steps + target_steps); got {states.shape[1]}"
            )
        return finite_difference(states, index, dt, self.points)


DERIVATIVE_TARGETS = {
    "forward": DerivativeTarget("forward", order=1, points=2),
    "central": DerivativeTarget("central", order=2, points=3),
    "richardson": DerivativeTarget("richardson", order=4, points=5),
}
"""The finite-difference targets by name: first, second and fourth order."""


def derivative_target(name: str) -> DerivativeTarget:
    """Returns the derivative target ``name`` (one of ``DERIVATIVE_TARGETS``).

    Args:
        name: ``"forward"``, ``"central"`` or ``"richardson"``.

    Returns:
        The ``DerivativeTarget``, called as ``target(states [B, T, C, *S], index, dt) -> [B, C, *S]``.

    Raises:
        ValueError: if ``name`` is not in ``DERIVATIVE_TARGETS``.
    """
    if name not in DERIVATIVE_TARGETS:
        raise ValueError(f"derivative target must be one of {sorted(DERIVATIVE_TARGETS)}; got {name!r}")
    return DERIVATIVE_TARGETS[name]
