"""Rollouts: integrator orders, steppers against the solver, the hybrid solver, rollout metrics."""

import math

import pytest
import torch
from torch import nn

from pdekit import Grid
from pdekit.rollout import (
    INTEGRATORS,
    STEPPER_MODES,
    HybridSolver,
    RolloutObjective,
    RolloutTraining,
    Stepper,
    correlation_time,
    energy_drift,
    energy_spectrum,
    integrate,
    make_integrator,
    make_stepper_mode,
    pde_residual,
    relative_l2_per_step,
    rollout,
)
from pdekit.rollout.objectives import MODES
from pdekit.solvers import Burgers, GaussianRandomField, Heat


class ExactDerivative(nn.Module):
    """A 'model' that returns the solver's exact du/dt: ``[B, C, *S] -> [B, C, *S]``."""

    def __init__(self, solver):
        super().__init__()
        self.solver = solver

    def forward(self, x, params=None):
        return self.solver.time_derivative(x)


@pytest.mark.parametrize("integrator", sorted(INTEGRATORS))
def test_integrator_has_its_declared_order_on_a_linear_ode(integrator):
    rate = torch.tensor([-1.0, -0.3], dtype=torch.float64)
    exact = torch.exp(rate)
    errors = [
        (integrate(lambda u: rate * u, torch.ones(2, dtype=torch.float64), 1.0, integrator, substeps=n) - exact).abs().max().item()
        for n in (16, 32)
    ]
    assert math.log2(errors[0] / errors[1]) == pytest.approx(INTEGRATORS[integrator].order, abs=0.1)


def test_the_integrators_are_euler_heun_and_rk4_of_orders_one_two_and_four():
    assert {name: integrator.order for name, integrator in INTEGRATORS.items()} == {"euler": 1, "heun": 2, "rk4": 4}


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Stepper(nn.Identity(), "states"), r"^Stepper mode must be one of \['derivative', 'state'\]; got 'states'$"),
        (lambda: Stepper(nn.Identity(), integrator="rk5"), r"^integrator must be one of \['euler', 'heun', 'rk4'\]; got 'rk5'$"),
        (lambda: RolloutTraining(mode="states"), r"^rollout.mode must be one of \['state', 'derivative', 'correction'\]; got 'states'$"),
        (lambda: RolloutTraining(integrator="rk5"), r"^rollout.integrator must be one of \['euler', 'heun', 'rk4'\]; got 'rk5'$"),
        (lambda: integrate(lambda u: u, torch.ones(1), 1.0, "rk5"), r"^integrator must be one of"),
        (lambda: Stepper(nn.Identity(), substeps=0), r"^Stepper substeps must be >= 1; got 0$"),
    ],
)
def test_unknown_modes_and_integrators_are_one_line_errors_naming_the_option_and_the_choices(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_rollout_modes_are_the_stepper_modes_and_correction():
    assert MODES == (*STEPPER_MODES, "correction") and set(STEPPER_MODES) == {"state", "derivative"}
    assert make_stepper_mode("state") is STEPPER_MODES["state"] and make_integrator("heun") is INTEGRATORS["heun"]


class Negate(nn.Module):
    def forward(self, x, params=None):
        return -x


def test_derivative_scale_not_set_is_none_and_an_earlier_files_zero_reads_as_none():
    from pdekit.runs import ExperimentConfig

    assert RolloutTraining().derivative_scale is None
    earlier = ExperimentConfig.from_dict({"rollout": {"mode": "derivative", "derivative_scale": 0.0}}).rollout
    assert earlier == RolloutTraining(mode="derivative")
    # unresolved (a bare objective, not a run), the targets are not rescaled, as before
    assert RolloutObjective(earlier, input_steps=1, dt=0.1).scale == 1.0 and earlier.stepper(Negate(), 0.1, 1).derivative_scale == 1.0
    given = RolloutTraining(mode="derivative", derivative_scale=0.5)
    assert RolloutObjective(given, input_steps=1, dt=0.1).scale == 0.5 and given.stepper(Negate(), 0.1, 1).derivative_scale == 0.5
    with pytest.raises(
        ValueError, match=r"^rollout.derivative_scale must be positive and finite \(or left out: from the data\); got -1.0$"
    ):
        RolloutTraining(derivative_scale=-1.0)


def test_a_state_mode_stepper_has_no_time_derivative_and_a_derivative_one_scales_its_model():
    u = torch.arange(4.0).view(1, 1, 1, 4)
    with pytest.raises(ValueError, match="no time derivative"):
        Stepper(Negate(), "state", training_dt=0.1).time_derivative(u)
    assert torch.equal(Stepper(Negate(), "derivative", derivative_scale=0.5).time_derivative(u), -0.5 * u[:, 0])
    assert torch.equal(Stepper(Negate(), "state", training_dt=0.1)(u, 0.1), -u[:, 0])  # state mode: the model's output itself


def heat_solver():
    return Heat(Grid((32,)), 0.002, dtype=torch.float64, device="cpu", initial_field=GaussianRandomField(alpha=2.0, tau=5.0))


def test_derivative_stepper_on_the_exact_time_derivative_reproduces_the_solver():
    solver = heat_solver()
    u0 = solver.initial_condition(3, seeds=[0, 1, 2])
    reference = solver.solve(u0, [0.5 * (n + 1) for n in range(4)], 0.5)
    errors = []
    for substeps in (8, 16):
        stepper = Stepper(ExactDerivative(solver), "derivative", integrator="rk4", substeps=substeps)
        errors.append(relative_l2_per_step(rollout(stepper, u0.unsqueeze(1), 4, 0.5), reference).max().item())
    assert errors[1] < 1e-5
    assert errors[0] / errors[1] > 12  # fourth order: 16x per halving


def test_state_stepper_refuses_a_step_it_was_not_trained_on():
    stepper = Stepper(nn.Identity(), "state", training_dt=0.1)
    with pytest.raises(ValueError, match="steps dt=0.1 .* got dt=0.05"):
        stepper(torch.zeros(1, 1, 1, 8), 0.05)


def test_rollout_shape_and_history_window():
    class MeanOfHistory(nn.Module):
        def forward(self, x, params=None):  # x: [B, k*C, S]
            return x.mean(1, keepdim=True)

    stepper = Stepper(MeanOfHistory(), "state", training_dt=1.0, input_steps=2)
    history = torch.stack([torch.zeros(2, 1, 8), torch.ones(2, 1, 8)], dim=1)
    states = rollout(stepper, history, 3, 1.0)
    assert states.shape == (2, 3, 1, 8)
    assert states[0, :, 0, 0].tolist() == [0.5, 0.75, 0.625]


def test_hybrid_with_every_step_numerical_is_the_solver_exactly():
    solver = Burgers(Grid((64,)), 0.05, dtype=torch.float64, device="cpu", initial_field=GaussianRandomField(alpha=2.0, tau=5.0, sigma=5.0))
    u0 = solver.initial_condition(2, seeds=[0, 1])
    hybrid = HybridSolver(solver, Stepper(ExactDerivative(solver)), surrogate_steps=0, numerical_steps=1)
    assert torch.equal(hybrid.solve(u0, [0.1, 0.2], 0.01), solver.solve(u0, [0.1, 0.2], 0.01))
    assert torch.equal(hybrid.step(u0, 0.01), solver.step(u0, 0.01))
    # with its own inner step, every numerical step (and so the whole solve) runs at that step, not at dt
    fine = HybridSolver(solver, Stepper(ExactDerivative(solver)), surrogate_steps=0, numerical_steps=1, numerical_dt=0.0025)
    assert torch.equal(fine.solve(u0, [0.1, 0.2], 0.01), solver.solve(u0, [0.1, 0.2], 0.0025))
    assert torch.equal(fine.step(u0, 0.01), solver.solve(u0, [0.01], 0.0025)[:, 0])


def test_hybrid_alternates_surrogate_and_numerical_steps_and_tracks_the_solver():
    solver = heat_solver()
    u0 = solver.initial_condition(2, seeds=[0, 1])
    hybrid = HybridSolver(solver, Stepper(ExactDerivative(solver), substeps=16), surrogate_steps=3, numerical_steps=1)
    times = [0.5 * (n + 1) for n in range(8)]
    error = relative_l2_per_step(hybrid.solve(u0, times, 0.5), solver.solve(u0, times, 0.5))
    assert error.max() < 1e-5 and hybrid.steps_taken == 8


def test_hybrid_falls_back_to_the_solver_for_members_the_monitor_rejects():
    solver = heat_solver()
    u0 = solver.initial_condition(2, seeds=[0, 1])

    class Explodes(nn.Module):
        def forward(self, x, params=None):
            return 100 * x * torch.tensor([0.0, 1.0], dtype=x.dtype).view(2, 1, 1)  # member 0 fine (du/dt=0), member 1 not

    hybrid = HybridSolver(
        solver, Stepper(Explodes(), integrator="euler"), surrogate_steps=1, numerical_steps=0, monitor=energy_drift, threshold=0.5
    )
    u1 = hybrid.step(u0, 0.1)
    assert hybrid.fallbacks == 1
    assert torch.equal(u1[1], solver.step(u0, 0.1)[1]) and torch.equal(u1[0], u0[0])


def test_hybrid_rejects_a_non_finite_proposal_before_the_pde_residual_scores_it():
    solver = heat_solver()
    u0 = solver.initial_condition(2, seeds=[0, 1])

    class NaNForOne(nn.Module):
        def forward(self, x, params=None):
            return torch.zeros_like(x) / torch.tensor([1.0, 0.0], dtype=x.dtype).view(2, 1, 1)  # member 1: 0/0

    hybrid = HybridSolver(
        solver, Stepper(NaNForOne(), integrator="euler"), surrogate_steps=1, numerical_steps=0, monitor=pde_residual(solver), threshold=1e9
    )
    u1 = hybrid.step(u0, 0.1)
    assert hybrid.fallbacks == 1 and torch.isfinite(u1).all()
    assert torch.equal(u1[1], solver.step(u0, 0.1)[1])


def test_pde_residual_is_small_for_the_solver_step_and_large_for_a_wrong_one():
    solver = heat_solver()
    u0 = solver.initial_condition(1, seeds=[0])
    residual = pde_residual(solver)
    assert residual(u0, solver.step(u0, 0.01), 0.01).item() < 1e-2  # the trapezoidal rule's own error
    assert residual(u0, 1.1 * u0, 0.01).item() > 1


def test_correlation_time_counts_steps_until_correlation_drops_below_threshold():
    torch.manual_seed(0)
    reference = torch.randn(2, 10, 1, 256)
    noise = torch.randn(2, 10, 1, 256) * torch.arange(10).view(1, 10, 1, 1) * 0.3  # correlation 1/sqrt(1 + (0.3 n)^2)
    steps = correlation_time(reference + noise, reference, threshold=0.8)
    assert steps.tolist() == [3, 3]  # n = 2 gives 0.86, n = 3 gives 0.74


def test_energy_spectrum_puts_a_single_mode_in_its_shell_and_sums_to_the_energy():
    x = torch.arange(64) / 64
    u = torch.sin(2 * torch.pi * 3 * x)[None, None, None, :] * torch.cos(2 * torch.pi * 4 * x)[None, None, :, None]  # [1, 1, 64, 64]
    k, spectrum = energy_spectrum(u, dim=2)
    assert spectrum[0, 0].sum().item() == pytest.approx(0.5 * u.square().mean().item(), rel=1e-5)
    assert spectrum[0, 0, 5].item() == pytest.approx(spectrum[0, 0].sum().item(), rel=1e-5)  # |(3, 4)| = 5


def test_automatic_derivative_target_is_the_highest_order_the_window_holds():
    t = torch.arange(6, dtype=torch.float64).mul(0.1).view(1, 6, 1, 1)
    u = t**4  # du/dt = 4 t^3
    auto = RolloutTraining(mode="derivative")
    assert auto.derivative(u[:, 1:2], u[:, 2:3], 0.1).item() == pytest.approx(0.1**4 * 15 / 0.1)  # 2 states: forward
    assert auto.derivative(u[:, :2], u[:, 2:3], 0.1).item() == pytest.approx((0.2**4 - 0.0) / 0.2)  # 3: central
    assert auto.derivative(u[:, :3], u[:, 3:5], 0.1).item() == pytest.approx(4 * 0.2**3)  # 5: richardson, exact on quartics
    assert RolloutTraining(derivative_target="central").derivative(u[:, :3], u[:, 3:5], 0.1).item() == pytest.approx(
        (0.3**4 - 0.1**4) / 0.2
    )
    with pytest.raises(ValueError, match="derivative target must be one of"):
        RolloutTraining(derivative_target="spline")


def test_input_noise_does_not_reach_the_derivative_target():
    u = torch.linspace(0, 1, 3).view(1, 3, 1, 1).expand(1, 3, 1, 8).contiguous()  # du/dt = 0.5 per step of 1
    objective = RolloutObjective(RolloutTraining(mode="derivative", noise=10.0), input_steps=2, dt=1.0)
    zero = nn.Conv1d(2, 1, 1, bias=False)
    nn.init.zeros_(zero.weight)
    loss = objective.loss(lambda x, p: zero(x), u[:, :2], u[:, 2:], None, squared_error, epoch=0)
    assert loss.item() == pytest.approx(0.25)  # (0 - 0.5)^2: the target saw the clean states


class Scale(nn.Module):
    """``x -> a x`` with one learnable number: easy to differentiate by hand."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.9))

    def forward(self, x, params=None):
        return self.a * x


def squared_error(prediction, target):
    return (prediction - target).square().mean()


def test_pushforward_passes_gradients_through_the_last_step_only():
    u0, truth = torch.ones(1, 1, 1, 4), torch.ones(1, 2, 1, 4)  # inputs [B, k, C, S], two target steps
    objective = RolloutObjective(RolloutTraining(unroll=2, pushforward=True), input_steps=1, dt=1.0)
    model = Scale()
    objective.loss(model, u0, truth, None, squared_error, epoch=0).backward()
    # loss = (a * stop(a) * 1 - 1)^2, so d/da = 2 (a^2 - 1) a, not 2 (a^2 - 1) 2a
    assert model.a.grad.item() == pytest.approx(2 * (0.81 - 1) * 0.9)


def test_teacher_forcing_feeds_the_true_state_at_the_start_of_the_curriculum():
    u0, truth = torch.ones(1, 1, 1, 4), torch.stack([2 * torch.ones(1, 1, 4), 3 * torch.ones(1, 1, 4)], dim=1)  # [B, k, C, S], [B, m, C, S]
    forced = RolloutObjective(RolloutTraining(unroll=2, teacher_forcing_epochs=10), input_steps=1, dt=1.0)
    free = RolloutObjective(RolloutTraining(unroll=2), input_steps=1, dt=1.0)
    model = Scale()
    expected_forced = 0.5 * ((0.9 - 2) ** 2 + (0.9 * 2 - 3) ** 2)
    expected_free = 0.5 * ((0.9 - 2) ** 2 + (0.81 - 3) ** 2)
    assert forced.loss(model, u0, truth, None, squared_error, epoch=0).item() == pytest.approx(expected_forced)
    assert forced.loss(model, u0, truth, None, squared_error, epoch=10).item() == pytest.approx(expected_free)
    assert free.loss(model, u0, truth, None, squared_error, epoch=0).item() == pytest.approx(expected_free)
