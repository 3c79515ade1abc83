"""Derivative targets: exactness on polynomials, measured convergence orders, the authors' stencils, window checks."""

import math

import numpy as np
import pytest
import torch

from pdekit.rollout.derivatives import DERIVATIVE_TARGETS, derivative_target

NAMES = sorted(DERIVATIVE_TARGETS)


def polynomial_window(degree: int, steps: int, dt: float, t0: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(states [2, steps, 2, 3], du/dt [2, steps, 2, 3])`` of a random polynomial in time of ``degree`` at every point."""
    generator = torch.Generator().manual_seed(degree)
    coefficients = torch.randn(degree + 1, 2, 1, 2, 3, generator=generator, dtype=torch.float64)
    t = (t0 + dt * torch.arange(steps, dtype=torch.float64)).view(1, -1, 1, 1)
    u = sum(c * t**p for p, c in enumerate(coefficients))
    du = sum((p * c * t ** (p - 1) for p, c in enumerate(coefficients) if p > 0), torch.zeros_like(u))
    return u, du


@pytest.mark.parametrize("name", NAMES)
def test_each_target_is_exact_on_polynomials_up_to_its_order_at_every_index(name):
    target = DERIVATIVE_TARGETS[name]
    for steps in (target.points, target.points + 3):
        for degree in range(target.order + 1):
            u, du = polynomial_window(degree, steps, dt=0.1)
            for index in range(steps):
                torch.testing.assert_close(target(u, index, 0.1), du[:, index], rtol=1e-9, atol=1e-9)
        u, du = polynomial_window(target.order + 1, steps, dt=0.1)  # one degree more is no longer exact
        assert max((target(u, i, 0.1) - du[:, i]).abs().max().item() for i in range(steps)) > 1e-6


def sine_error(name: str, position: str, dt: float, at: float = 1.0) -> float:
    """Returns the error of ``d sin/dt`` at time ``at``, placed at ``position`` of a window of ``points + 4`` states."""
    target = DERIVATIVE_TARGETS[name]
    steps = target.points + 4
    index = {"first": 0, "second": 1, "interior": steps // 2, "second_to_last": steps - 2, "last": steps - 1}[position]
    t = at + dt * (torch.arange(steps, dtype=torch.float64) - index)
    states = torch.sin(t).view(1, steps, 1, 1)
    return abs(target(states, index, dt).item() - math.cos(at))


@pytest.mark.parametrize("position", ["first", "second", "interior", "second_to_last", "last"])
@pytest.mark.parametrize("name", NAMES)
def test_measured_convergence_order_on_a_sine_is_the_declared_order(name, position):
    steps = np.array([0.1, 0.05, 0.025, 0.0125])
    errors = np.array([sine_error(name, position, dt) for dt in steps])
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - DERIVATIVE_TARGETS[name].order) < 0.2, f"{name} at the {position} state: slope {slope:.3f}"


def random_window(steps: int) -> torch.Tensor:
    return torch.randn(3, steps, 2, 5, 4, generator=torch.Generator().manual_seed(steps), dtype=torch.float64)


def test_richardson_interior_is_the_extrapolation_of_two_central_differences():
    u, dt, n = random_window(7), 0.05, 3
    fine = (u[:, n + 1] - u[:, n - 1]) / (2 * dt)
    coarse = (u[:, n + 2] - u[:, n - 2]) / (4 * dt)
    torch.testing.assert_close(derivative_target("richardson")(u, n, dt), (4 * fine - coarse) / 3, rtol=1e-10, atol=1e-12)


def test_richardson_ends_are_the_one_sided_fourth_order_stencils():
    u, dt = random_window(6), 0.05
    first = (-25 * u[:, 0] + 48 * u[:, 1] - 36 * u[:, 2] + 16 * u[:, 3] - 3 * u[:, 4]) / (12 * dt)
    last = (25 * u[:, 5] - 48 * u[:, 4] + 36 * u[:, 3] - 16 * u[:, 2] + 3 * u[:, 1]) / (12 * dt)
    second = (-3 * u[:, 0] - 10 * u[:, 1] + 18 * u[:, 2] - 6 * u[:, 3] + u[:, 4]) / (12 * dt)
    richardson = derivative_target("richardson")
    torch.testing.assert_close(richardson(u, 0, dt), first, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(richardson(u, -1, dt), last, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(richardson(u, 1, dt), second, rtol=1e-10, atol=1e-12)


def test_forward_and_central_are_the_targets_of_one_following_state():
    """``k`` input states and one following state, derivative at the newest input (index ``k - 1``)."""
    u, dt = random_window(3), 0.1
    torch.testing.assert_close(derivative_target("forward")(u[:, :2], 0, dt), (u[:, 1] - u[:, 0]) / dt)
    torch.testing.assert_close(derivative_target("central")(u, 1, dt), (u[:, 2] - u[:, 0]) / (2 * dt))
    torch.testing.assert_close(derivative_target("forward")(u[:, :2], 1, dt), (u[:, 1] - u[:, 0]) / dt)  # backward at the end
    torch.testing.assert_close(derivative_target("central")(u, 0, dt), (-3 * u[:, 0] + 4 * u[:, 1] - u[:, 2]) / (2 * dt))


def test_a_time_step_per_member_scales_each_member():
    u, dt = random_window(5), torch.tensor([0.1, 0.2, 0.4], dtype=torch.float64)
    together = derivative_target("richardson")(u, 2, dt)
    for b in range(3):
        torch.testing.assert_close(together[b], derivative_target("richardson")(u[b : b + 1], 2, dt[b].item())[0])


@pytest.mark.parametrize("name, points", [("forward", 2), ("central", 3), ("richardson", 5)])
def test_too_short_a_window_raises_naming_the_states_needed(name, points):
    with pytest.raises(ValueError, match=rf"'{name}' needs a window of at least {points} states .* got {points - 1}"):
        derivative_target(name)(random_window(points - 1), 0, 0.1)


def test_bad_index_dt_and_name_raise():
    richardson = derivative_target("richardson")
    with pytest.raises(ValueError, match=r"index must be in \[-5, 5\)"):
        richardson(random_window(5), 5, 0.1)
    with pytest.raises(ValueError, match="dt must be positive"):
        richardson(random_window(5), 2, 0.0)
    with pytest.raises(ValueError, match=r"one of \['central', 'forward', 'richardson'\]; got 'backward'"):
        derivative_target("backward")
