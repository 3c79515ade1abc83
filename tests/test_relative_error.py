"""pdekit's one relative L2 error, and the zero-reference guard seen through every public caller."""

import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from pdekit.pinn import Problem, relative_l2_error
from pdekit.rollout import relative_error, relative_l2_per_field, relative_l2_per_step
from pdekit.training import Trainer, TrainerConfig, relative_l2_per_sample
from pdekit.training.distributed import Process


def test_relative_error_is_the_norm_ratio_over_the_axes_from_start_dim():
    reference = torch.tensor([[3.0, 4.0], [0.0, 2.0]])  # norms 5 and 2
    prediction = reference + torch.tensor([[0.0, 1.0], [2.0, 0.0]])  # error norms 1 and 2
    assert relative_error(prediction, reference, start_dim=1).tolist() == pytest.approx([0.2, 1.0])
    assert relative_error(prediction, reference, start_dim=0).item() == pytest.approx(math.sqrt(5) / math.sqrt(29))


def test_a_zero_reference_counts_the_absolute_error_and_a_zero_prediction_of_it_scores_zero():
    reference = torch.zeros(2, 3)
    prediction = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0]])
    assert relative_error(prediction, reference, start_dim=1).tolist() == [0.0, 5.0]


def test_relative_error_refuses_shapes_that_differ():
    with pytest.raises(ValueError, match=r"same shape; got \(2, 3\) and \(3,\)"):
        relative_error(torch.zeros(2, 3), torch.zeros(3), start_dim=1)


def test_per_sample_error_of_a_zero_target_is_finite_where_a_clamped_norm_overflowed_float32():
    # 10 / finfo(float32).tiny = 8.5e38 is beyond float32's largest number: the former clamp gave inf.
    target = torch.zeros(2, 1, 4)
    prediction = torch.stack([torch.zeros(1, 4), torch.full((1, 4), 5.0)])  # error norms 0 and 10
    assert relative_l2_per_sample(prediction, target).flatten().tolist() == [0.0, 10.0]


def test_per_step_error_of_a_zero_reference_step_is_its_absolute_error_not_nan():
    reference = torch.ones(2, 3, 1, 4)
    reference[:, 1] = 0.0  # a state that has decayed to zero
    prediction = reference.clone()
    prediction[:, 1] = 0.5  # error norm 0.5 * sqrt(4) = 1 at step 1
    assert relative_l2_per_step(prediction, reference).tolist() == pytest.approx([0.0, 1.0, 0.0])


def test_per_field_error_of_a_zero_field_is_its_absolute_error():
    reference = torch.zeros(1, 1, 2, 4)
    reference[:, :, 1] = 2.0  # field "v" is nonzero, field "u" is zero
    prediction = reference + 0.5
    errors = relative_l2_per_field(prediction, reference, [("u", 1), ("v", 1)])
    assert errors["u"].item() == pytest.approx(1.0)  # ||0.5|| over 4 points
    assert errors["v"].item() == pytest.approx(0.25)  # 1 / ||2|| = 1 / 4


@dataclass(frozen=True)
class Rest(Problem):
    """``u_t = 0`` with ``u = 0``: a reference that is zero everywhere."""

    name: str = "rest"
    space: tuple = ((0.0, 1.0),)

    def residual(self, network, xt):
        return torch.zeros(len(xt))

    def initial(self, x):
        return torch.zeros(len(x))

    def reference(self, x, t):
        return torch.zeros(len(t), len(x), dtype=torch.float64)


def constant_network(value: float) -> nn.Module:
    network = nn.Linear(2, 1)
    nn.init.zeros_(network.weight)
    nn.init.constant_(network.bias, value)
    return network


def test_pinn_error_against_a_zero_reference_is_the_network_norm_on_the_grid():
    error = relative_l2_error(Rest(), constant_network(0.5), points=8, times=5)
    assert error == pytest.approx(0.5 * math.sqrt(8 * 5))


class PlusOne(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, x, params=None):
        return x + 1 + self.weight


def test_trainer_validation_of_zero_targets_is_finite():
    trainer = Trainer(PlusOne(), TrainerConfig(epochs=1, progress=False), device="cpu", process=Process())
    zeros = torch.zeros(3, 2, 4)
    metrics = trainer.evaluate([(zeros, zeros)])
    assert metrics["l2_per_channel"] == pytest.approx([2.0, 2.0])  # ||1|| over 4 points, each channel
    assert math.isfinite(metrics["h1"])
