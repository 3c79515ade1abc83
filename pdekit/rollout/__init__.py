"""Rollouts: surrogate steppers (state or time derivative), long-rollout metrics, and the hybrid solver."""

from pdekit.rollout.derivatives import DERIVATIVE_TARGETS, derivative_target
from pdekit.rollout.evaluate import (
    correlation_per_step,
    correlation_time,
    energy_spectrum,
    enstrophy,
    relative_error,
    relative_l2_per_field,
    relative_l2_per_step,
)
from pdekit.rollout.hybrid import HybridSolver, energy_drift, pde_residual
from pdekit.rollout.integrators import INTEGRATORS, Integrator, integrate, make_integrator
from pdekit.rollout.objectives import RolloutObjective, RolloutTraining
from pdekit.rollout.steppers import STEPPER_MODES, Stepper, make_stepper_mode, rollout

__all__ = [
    "DERIVATIVE_TARGETS",
    "HybridSolver",
    "INTEGRATORS",
    "Integrator",
    "RolloutObjective",
    "RolloutTraining",
    "STEPPER_MODES",
    "Stepper",
    "correlation_per_step",
    "derivative_target",
    "correlation_time",
    "energy_drift",
    "energy_spectrum",
    "enstrophy",
    "integrate",
    "make_integrator",
    "make_stepper_mode",
    "pde_residual",
    "relative_error",
    "relative_l2_per_field",
    "relative_l2_per_step",
    "rollout",
]
