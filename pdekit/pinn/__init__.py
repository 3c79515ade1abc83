"""Physics-informed neural networks with adaptive collocation (R3, causal R3, RAD, RAR-D)."""

from pdekit.pinn.networks import INITIALISATIONS, MLP, FourierFeatures, PeriodicEmbedding
from pdekit.pinn.problems import PROBLEMS, AllenCahnProblem, Convection, Heat2D, Problem, Reaction, ViscousBurgers
from pdekit.pinn.samplers import R3, RAD, RARD, SAMPLERS, CausalR3, Sampler, UniformResampled, make_sampler
from pdekit.pinn.train import (
    CONDITION_LAYOUTS,
    ConditionLayout,
    Ensemble,
    PINNConfig,
    PINNResult,
    plot_population,
    relative_l2_error,
    train_pinn,
    train_pinn_ensemble,
)

__all__ = [
    "AllenCahnProblem",
    "CONDITION_LAYOUTS",
    "ConditionLayout",
    "INITIALISATIONS",
    "CausalR3",
    "Convection",
    "Ensemble",
    "FourierFeatures",
    "Heat2D",
    "MLP",
    "PINNConfig",
    "PINNResult",
    "PROBLEMS",
    "PeriodicEmbedding",
    "Problem",
    "R3",
    "RAD",
    "RARD",
    "Reaction",
    "SAMPLERS",
    "Sampler",
    "UniformResampled",
    "ViscousBurgers",
    "make_sampler",
    "plot_population",
    "relative_l2_error",
    "train_pinn",
    "train_pinn_ensemble",
]
