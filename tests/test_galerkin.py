"""Galerkin and Fourier transformers (Cao, NeurIPS 2021): the attention formulas, the initialisation, the regressor."""

import math

import pytest
import torch

from pdekit import Grid
from pdekit.models import build_model, model_from_spec
from pdekit.models.attention import GalerkinAttention
from pdekit.models.galerkin import SpectralConvolution, SpectralRegressor
from pdekit.solvers import GaussianRandomField, Heat


def layer_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps) * scale + shift`` over the last axis, the biased variance as in LayerNorm."""
    mean = x.mean(-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(variance + eps) * scale + shift


def attention_by_hand(
    layer: GalerkinAttention, z: torch.Tensor, coordinates: torch.Tensor, kept: torch.Tensor | None = None
) -> torch.Tensor:
    """The paper's formula, head by head, from the layer's weights with plain tensor algebra; with ``kept`` (0/1 of the
    attention matrices' shape ``[B, heads, ...]``), the matrices' inverted dropout at ``layer.dropout``."""
    n, heads, dh = z.shape[1], layer.heads, layer.head_width
    outputs = []
    for i in range(heads):
        cols = slice(i * dh, (i + 1) * dh)
        q, k, v = (z @ lin.weight.T[:, cols] + lin.bias[cols] for lin in (layer.query, layer.key, layer.value))
        if layer.kind == "galerkin":
            k = layer_norm(k, layer.norms["key"].weight[i], layer.norms["key"].bias[i])
            v = layer_norm(v, layer.norms["value"].weight[i], layer.norms["value"].bias[i])
        else:
            q = layer_norm(q, layer.norms["query"].weight[i], layer.norms["query"].bias[i])
            k = layer_norm(k, layer.norms["key"].weight[i], layer.norms["key"].bias[i])
        q, k, v = (torch.cat([coordinates.expand(z.shape[0], -1, -1), t], dim=-1) for t in (q, k, v))
        drop = (lambda matrix: matrix) if kept is None else (lambda matrix: matrix * kept[:, i] / (1 - layer.dropout))  # noqa: B023
        if layer.kind == "galerkin":
            outputs.append(q @ drop(k.transpose(1, 2) @ v / n))  # Q (K^T V) / n
        else:
            outputs.append(drop(q @ k.transpose(1, 2) / (n * math.sqrt(dh + coordinates.shape[-1]))) @ v)  # (Q K^T) V / (n sqrt(d))
    return torch.cat(outputs, dim=-1) @ layer.out.weight.T + layer.out.bias


@pytest.mark.parametrize("kind", ["galerkin", "fourier"])
@pytest.mark.parametrize("dim", [1, 2])
def test_attention_is_the_papers_formula_with_coordinates_in_every_head(kind, dim):
    layer = GalerkinAttention(width=6, heads=2, kind=kind, dim=dim).double()
    with torch.no_grad():  # generic weights, so that every term (norm scales and shifts, biases) matters
        for parameter in layer.parameters():
            parameter.normal_()
    z = torch.randn(2, 5, 6, dtype=torch.float64)
    coordinates = torch.rand(1, 5, dim, dtype=torch.float64)
    assert layer.out.in_features == 6 + 2 * dim
    torch.testing.assert_close(layer(z, coordinates), attention_by_hand(layer, z, coordinates), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["galerkin", "fourier"])
def test_attention_dropout_drops_entries_of_each_heads_attention_matrix_in_training_and_nothing_in_evaluation(kind, monkeypatch):
    layer = GalerkinAttention(width=4, heads=2, kind=kind, dim=1, dropout=0.25).double()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.normal_()
    z, coordinates = torch.randn(2, 5, 4, dtype=torch.float64), torch.rand(1, 5, 1, dtype=torch.float64)
    layer.eval()
    torch.testing.assert_close(layer(z, coordinates), attention_by_hand(layer, z, coordinates), rtol=1e-10, atol=1e-12)

    masks = []  # a fixed mask in place of the random one, so that the formula is pinned whatever the generator draws

    def dropout(matrix, p, training):
        assert (p, training) == (0.25, True)
        masks.append((torch.arange(matrix.numel()).reshape(matrix.shape) % 3 != 0).to(matrix.dtype))
        return matrix * masks[-1] / (1 - p)

    monkeypatch.setattr(torch.nn.functional, "dropout", dropout)
    layer.train()
    trained = layer(z, coordinates)
    (kept,) = masks
    assert kept.shape == ((2, 2, 3, 3) if kind == "galerkin" else (2, 2, 5, 5))  # [B, heads, d, d] or [B, heads, n, n]
    torch.testing.assert_close(trained, attention_by_hand(layer, z, coordinates, kept), rtol=1e-10, atol=1e-12)


def test_attention_dropout_outside_0_to_1_is_refused_by_name():
    with pytest.raises(ValueError, match="attention_dropout must be in \\[0, 1\\); got 1.0"):
        build_model("galerkin", 1, 1, dim=1, attention_dropout=1.0)


def test_galerkin_attention_is_a_quadrature_that_agrees_across_resolutions():
    """``K^T V / n`` is the trapezoidal rule for an integral: at 2n points, the output at the shared points barely moves."""
    layer = GalerkinAttention(width=4, heads=1, kind="galerkin", dim=1).double()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.normal_()

    def output(n):
        x = (torch.arange(n, dtype=torch.float64) / n)[None, :, None]
        z = torch.cat([torch.sin(2 * torch.pi * x), torch.cos(2 * torch.pi * x), torch.sin(4 * torch.pi * x), 1 + 0 * x], dim=-1)
        return layer(z, x)

    coarse, fine = output(64), output(128)[:, ::2]
    assert (coarse - fine).norm() / fine.norm() < 0.01  # measured 0.002: first order, from the non-periodic coordinate


@pytest.mark.parametrize("kind, gain", [("galerkin", 1e-2), ("fourier", 1e-3)])
def test_projections_start_as_xavier_uniform_of_the_authors_gain_plus_a_diagonal(kind, gain):
    width = 64
    model = build_model("galerkin", 1, 1, dim=1, width=width, layers=1, attention=kind)
    bound = gain * math.sqrt(6 / (2 * width))  # Xavier uniform on a square [width, width] matrix
    for projection in (model.attention[0].query, model.attention[0].key, model.attention[0].value):
        draw = projection.weight.detach() - 1e-2 * torch.eye(width)
        assert draw.abs().max() <= bound * (1 + 1e-6)
        assert draw.abs().max() > 0.9 * bound  # 4096 draws of U(-a, a) all under 0.9 a: probability 0.9^4096
        assert draw.std().item() == pytest.approx(gain / math.sqrt(width), rel=0.05)
        assert torch.count_nonzero(projection.bias) == 0


def test_xavier_gain_and_diagonal_weight_are_settings():
    diagonal_only = build_model("galerkin", 1, 1, dim=1, width=16, layers=1, xavier_gain=0.0, diagonal_weight=0.3)
    torch.testing.assert_close(diagonal_only.attention[0].key.weight.detach(), 0.3 * torch.eye(16), rtol=0, atol=0)
    drawn_only = build_model("galerkin", 1, 1, dim=1, width=16, layers=1, xavier_gain=0.5, diagonal_weight=0.0)
    weight = drawn_only.attention[0].value.weight.detach()
    assert weight.abs().max() <= 0.5 * math.sqrt(6 / 32) * (1 + 1e-6)
    assert weight.std().item() == pytest.approx(0.5 / 4, rel=0.15)  # 256 draws: the sample std is within ~3%


@pytest.mark.parametrize("dim, std", [(1, 1 / (6 * 10 * math.sqrt(8 * 16))), (2, 1 / (6 * 10 * 8))])
def test_spectral_weights_start_at_the_authors_xavier_normal_scale(dim, std):
    """Xavier-normal of gain 1/(in out) in 1D and sqrt(in + out)/(in out) in 2D, on [in, out, *modes, 2]."""
    conv = SpectralConvolution(6, 10, modes=8, dim=dim)
    draws = torch.cat([w.detach().flatten() for w in conv.weights])
    assert draws.std().item() == pytest.approx(std, rel=0.05)


def test_encoder_block_is_residual_attention_then_residual_relu_feed_forward_with_no_norm_around_them():
    model = build_model("galerkin", 2, 1, dim=1, n_params=1, width=8, heads=2, layers=1, regressor_modes=4).double()
    x, params = torch.randn(3, 2, 12, dtype=torch.float64), torch.rand(3, 1, dtype=torch.float64)
    coordinates = (torch.arange(12, dtype=torch.float64) / 12)[None, :, None]
    features = torch.cat([x.transpose(1, 2), params[:, None, :].expand(-1, 12, -1), coordinates.expand(3, -1, -1)], dim=-1)
    z = features @ model.lift.weight.T + model.lift.bias  # the lift sees u, the parameters and the coordinates
    z = z + model.attention[0](z, coordinates)
    first, _, second = model.feed_forward[0]
    z = z + torch.relu(z @ first.weight.T + first.bias) @ second.weight.T + second.bias
    torch.testing.assert_close(model(x, params), model.regressor(z.transpose(1, 2)), rtol=1e-10, atol=1e-12)


def test_regressor_is_silu_of_a_pointwise_linear_plus_a_spectral_convolution_then_an_mlp():
    regressor = SpectralRegressor(in_channels=3, width=4, out_channels=2, modes=3, layers=2, dim=1).double()
    with torch.no_grad():
        for weight in regressor.spectral.parameters():
            weight.normal_()  # the authors' initial spectral weights are tiny; make the spectral path visible
    z = torch.randn(2, 3, 16, dtype=torch.float64)

    def spectral_by_hand(conv, u):  # unnormalised rfft/irfft here: the product of the two scalings is the same 1/n
        weight = torch.view_as_complex(conv.weights[0])  # [in, out, modes]
        spectrum = torch.fft.rfft(u)
        mixed = torch.zeros(u.shape[0], weight.shape[1], spectrum.shape[-1], dtype=spectrum.dtype)
        mixed[..., :3] = torch.einsum("bik,iok->bok", spectrum[..., :3], weight)
        return torch.fft.irfft(mixed, n=u.shape[-1])

    def pointwise(linear, u):
        return torch.einsum("oi,bin->bon", linear.weight, u) + linear.bias[:, None]

    u = z
    for linear, conv in zip(regressor.linear, regressor.spectral, strict=True):
        u = torch.nn.functional.silu(pointwise(linear, u) + spectral_by_hand(conv, u))
    first, _, second = regressor.project
    expected = pointwise(second, torch.nn.functional.silu(pointwise(first, u)))
    torch.testing.assert_close(regressor(z), expected, rtol=1e-10, atol=1e-12)


def plane_wave(n: int, k0: int, k1: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(cos, sin)`` of ``2 pi (k0 x0 + k1 x1)`` on an ``n x n`` periodic grid, as ``[1, 1, n, n]``."""
    x = torch.arange(n, dtype=torch.float64) / n
    phase = 2 * torch.pi * (k0 * x[:, None] + k1 * x[None, :])
    return torch.cos(phase)[None, None], torch.sin(phase)[None, None]


@pytest.mark.parametrize("n", [6, 16])
def test_2d_spectral_convolution_multiplies_each_kept_mode_by_its_own_weight(n):
    """``cos(k.x) -> Re(w_k) cos(k.x) - Im(w_k) sin(k.x)``; ``k0 >= 0`` and ``k0 < 0`` have separate weights, and a
    6-point grid (which keeps |k0| <= 3 of the 4 modes) gives a mode the same weight as a 16-point grid."""
    conv = SpectralConvolution(1, 1, modes=4, dim=2).double()
    with torch.no_grad():
        for weight in conv.weights:
            weight.normal_()
    positive, negative = (torch.view_as_complex(w)[0, 0] for w in conv.weights)  # [modes, modes]; negative[j] is k0 = j - 4
    for (k0, k1), w in [
        ((1, 2), positive[1, 2]),
        ((0, 1), positive[0, 1]),
        ((-1, 1), negative[3, 1]),
        ((-2, 2), negative[2, 2]),
        ((-3, 1), negative[1, 1]),
    ]:
        cos, sin = plane_wave(n, k0, k1)
        torch.testing.assert_close(conv(cos), w.real * cos - w.imag * sin, rtol=1e-10, atol=1e-12)


def test_2d_spectral_convolution_drops_the_modes_it_does_not_keep():
    conv = SpectralConvolution(1, 1, modes=4, dim=2).double()
    for k0, k1 in [(1, 4), (4, 1), (-5, 2)]:  # kept: -4 <= k0 < 4 and 0 <= k1 < 4, the FNO layout
        assert conv(plane_wave(16, k0, k1)[0]).abs().max() < 1e-12


def test_fourier_variant_and_settings_survive_the_spec():
    model = build_model("galerkin", 2, 1, dim=2, width=8, heads=2, layers=1, attention="fourier", regressor_width=6, regressor_modes=3)
    rebuilt = model_from_spec(model.spec)
    assert rebuilt.attention[0].kind == "fourier" and set(rebuilt.attention[0].norms) == {"query", "key"}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_bad_settings_name_the_option():
    with pytest.raises(ValueError, match="attention must be 'galerkin' or 'fourier'; got 'softmax'"):
        build_model("galerkin", 1, 1, dim=1, attention="softmax")
    with pytest.raises(ValueError, match="heads must be a positive divisor of width 32; got 3"):
        build_model("galerkin", 1, 1, dim=1, heads=3)
    with pytest.raises(ValueError, match="dim 1 or 2; got 3"):
        build_model("galerkin", 1, 1, dim=3)
    with pytest.raises(ValueError, match="this model is 1D"):
        build_model("galerkin", 1, 1, dim=1)(torch.randn(2, 1, 8, 8))


@pytest.mark.slow
def test_fourier_transformer_learns_the_heat_semigroup():
    """1D heat, kappa=0.005, t=1, 64 points, 300 Adam steps (measured 0.006-0.011 relative L2 over two seeds)."""

    def pairs(count, first):
        solver = Heat(Grid((64,)), 0.005, dtype=torch.float64, device="cpu", initial_field=GaussianRandomField(alpha=2.0, tau=5.0))
        u0 = solver.initial_condition(count, seeds=range(first, first + count))
        return u0.float(), solver.solve(u0, [1.0], 1.0)[:, 0].float()

    def relative_l2(prediction, target):
        return ((prediction - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)).mean()

    x, y = pairs(256, 0)
    model = build_model("galerkin", 1, 1, dim=1, width=32, attention="fourier")
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 300)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        chosen = torch.randint(0, len(x), (32,), generator=generator)
        loss = relative_l2(model(x[chosen]), y[chosen])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        test_x, test_y = pairs(64, 10_000)
        assert relative_l2(model(test_x), test_y) < 0.03
