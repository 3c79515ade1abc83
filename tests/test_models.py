"""Operator models: the shared interface, gradients, conditioning, and learning the heat semigroup."""

import pytest
import torch

from pdekit import Grid
from pdekit.models import MODELS, build_model
from pdekit.solvers import GaussianRandomField, Heat

SMALL = {
    "fno": dict(modes=6, width=8, layers=2),
    "tfno": dict(modes=6, width=8, layers=2),
    "ffno": dict(modes=6, width=8, layers=2),
    "galerkin": dict(width=8, heads=2, layers=1, regressor_modes=6),
    "factformer": dict(width=8, heads=2, layers=1),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("space", [(24,), (16, 12)])
def test_model_maps_batch_channels_space_to_out_channels(name, space):
    model = build_model(name, 3, 2, dim=len(space), n_params=1, **SMALL[name])
    out = model(torch.randn(4, 3, *space), torch.rand(4, 1))
    assert out.shape == (4, 2, *space)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_parameter_receives_a_gradient(name):
    model = build_model(name, 2, 1, dim=2, n_params=1, **SMALL[name])
    model(torch.randn(2, 2, 16, 16), torch.rand(2, 1)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameter_conditioning_changes_the_output(name):
    model = build_model(name, 1, 1, dim=1, n_params=1, **SMALL[name])
    x = torch.randn(2, 1, 32)
    assert not torch.allclose(model(x, torch.zeros(2, 1)), model(x, torch.ones(2, 1)))


def test_conditioning_errors_name_the_expected_shape():
    conditioned = build_model("fno", 1, 1, dim=1, n_params=2, **SMALL["fno"])
    with pytest.raises(ValueError, match=r"expected params of shape \(3, 2\), got None"):
        conditioned(torch.randn(3, 1, 16))
    plain = build_model("fno", 1, 1, dim=1, **SMALL["fno"])
    with pytest.raises(ValueError, match="without parameter conditioning"):
        plain(torch.randn(3, 1, 16), torch.ones(3, 1))


def test_build_model_rejects_unknown_names_and_settings():
    with pytest.raises(ValueError, match="unknown model 'unet'"):
        build_model("unet", 1, 1)
    with pytest.raises(ValueError, match=r"has no setting \['depth'\]"):
        build_model("ffno", 1, 1, depth=3)


def test_tfno_is_a_tucker_factorized_fno_with_fewer_parameters():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    fno, tfno = build_model("fno", 1, 1, modes=12, width=32), build_model("tfno", 1, 1, modes=12, width=32, rank=0.1)
    assert count(tfno) < count(fno) / 3


def test_ffno_shared_weights_are_one_set_for_all_layers():
    model = build_model("ffno", 1, 1, dim=2, share_weights=True, layers=4, **{k: v for k, v in SMALL["ffno"].items() if k != "layers"})
    assert len({id(layer.weights[0]) for layer in model.spectral}) == 1


def heat_pairs(points: int, count: int, first_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(u(0), u(1))`` of the 1D heat equation, ``kappa=0.005``, from Gaussian random initial states."""
    solver = Heat(Grid((points,)), 0.005, dtype=torch.float64, device="cpu", initial_field=GaussianRandomField(alpha=2.0, tau=5.0))
    u0 = solver.initial_condition(count, seeds=range(first_seed, first_seed + count))
    return u0.float(), solver.solve(u0, [1.0], 1.0)[:, 0].float()


def relative_l2(prediction: torch.Tensor, target: torch.Tensor) -> float:
    return ((prediction - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)).mean().item()


def fit(model, x, y, steps: int, batch: int) -> None:
    """Adam (lr 3e-3, cosine) on the relative L2 loss over random batches: a plain loop, independent of the Trainer."""
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        chosen = torch.randint(0, len(x), (batch,), generator=generator)
        loss = ((model(x[chosen]) - y[chosen]).flatten(1).norm(dim=1) / y[chosen].flatten(1).norm(dim=1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()


LEARNING = {  # settings and the relative L2 each reaches (measured ~0.002-0.015; bounds leave margin for seeds)
    "fno": (dict(modes=16, width=32), 0.03),
    "tfno": (dict(modes=16, width=32), 0.03),
    "ffno": (dict(modes=16, width=32), 0.03),
    "galerkin": (dict(width=32), 0.03),
    "factformer": (dict(width=32), 0.03),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_learns_the_heat_semigroup_and_keeps_its_error_at_twice_the_resolution(name):
    """Trained at 64 points, tested on unseen members at 64 and at 128 points (discretization invariance)."""
    settings, bound = LEARNING[name]
    x, y = heat_pairs(64, 256, 0)
    model = build_model(name, 1, 1, dim=1, **settings)
    fit(model, x, y, steps=300, batch=32)
    with torch.no_grad():
        error = relative_l2(model(heat_pairs(64, 64, 10_000)[0]), heat_pairs(64, 64, 10_000)[1])
        fine_x, fine_y = heat_pairs(128, 64, 10_000)
        fine_error = relative_l2(model(fine_x), fine_y)
    assert error < bound
    assert fine_error < 2 * bound


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fno", "tfno", "ffno"])
def test_fourier_models_trained_at_32_squared_evaluate_at_64_squared(name):
    """2D heat semigroup: trained at 32², tested at 32² and zero-shot at 64² (measured 0.007-0.021 at 300 steps)."""

    def pairs(n, count, first):
        solver = Heat(Grid((n, n)), 0.005, dtype=torch.float64, device="cpu", initial_field=GaussianRandomField(alpha=2.5, tau=5.0))
        u0 = solver.initial_condition(count, seeds=range(first, first + count))
        return u0.float(), solver.solve(u0, [1.0], 1.0)[:, 0].float()

    x, y = pairs(32, 256, 0)
    model = build_model(name, 1, 1, dim=2, modes=12, width=24)
    fit(model, x, y, steps=300, batch=16)
    with torch.no_grad():
        coarse, fine = pairs(32, 32, 10_000), pairs(64, 32, 10_000)
        assert relative_l2(model(coarse[0]), coarse[1]) < 0.05
        assert relative_l2(model(fine[0]), fine[1]) < 0.1
