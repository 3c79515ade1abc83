"""F-FNO (Tran et al., ICLR 2023): the separable spectral layer, the residual, the decoder's input, weight norm."""

import pytest
import torch
from torch.nn.utils import parametrize

from pdekit.models import build_model, model_from_spec
from pdekit.models.conditioning import append_coordinates
from pdekit.models.ffno import FactorizedSpectralConv, FFNOConfig


def hand_spectral_conv(z: torch.Tensor, weights: list[torch.Tensor], modes: int) -> torch.Tensor:
    """``sum_d irfft_d(W_d . rfft_d(z))`` written out per axis and per mode with explicit loops."""
    out = torch.zeros_like(z)
    for axis, weight in enumerate(weights):
        dim = 2 + axis
        n = z.shape[dim]
        spectrum = torch.fft.rfft(z, dim=dim, norm="ortho")
        mixed = torch.zeros_like(spectrum)
        w = torch.view_as_complex(weight.contiguous())  # [in, out, modes]
        for k in range(min(modes, n // 2 + 1)):
            coefficient = spectrum.select(dim, k)  # [B, in, ...]
            for o in range(w.shape[1]):
                mixed.select(dim, k)[:, o] = sum(w[i, o, k] * coefficient[:, i] for i in range(w.shape[0]))
        out = out + torch.fft.irfft(mixed, n=n, dim=dim, norm="ortho")
    return out


@pytest.mark.parametrize("space, modes", [((9,), 3), ((8, 6), 3), ((6, 5), 4)])
def test_factorized_spectral_layer_is_the_sum_of_per_axis_rfft_multiply_irfft(space, modes):
    layer = FactorizedSpectralConv(width=3, modes=modes, dim=len(space), gain=1.0).double()
    z = torch.randn(2, 3, *space, dtype=torch.float64)
    expected = hand_spectral_conv(z, list(layer.weights), modes)
    torch.testing.assert_close(layer(z), expected, rtol=1e-10, atol=1e-12)


def test_factorized_spectral_layer_keeps_only_the_lowest_modes_of_each_axis():
    layer = FactorizedSpectralConv(width=2, modes=2, dim=2).double()
    x = torch.arange(16, dtype=torch.float64) * 2 * torch.pi / 16
    high = torch.cos(5 * x)[:, None] * torch.cos(6 * x)[None, :]  # mode 5 along y, 6 along x: both above 2
    assert layer(high.expand(1, 2, 16, 16)).abs().max() < 1e-12


def one_layer_by_hand(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(Q(b_1), Q(z_1))`` of a one-layer model, composed from its parts with plain tensor algebra."""

    def linear(layer, z):  # a weight-normed pointwise layer: weight = g * v / ||v|| per output channel
        v, g = layer.parametrizations.weight.original1, layer.parametrizations.weight.original0
        weight = (g * v / v.flatten(1).norm(dim=1).view(-1, 1, 1)).squeeze(-1)
        return torch.einsum("oi,bi...->bo...", weight, z) + layer.bias.view(1, -1, *([1] * (z.ndim - 2)))

    z0 = linear(model.lift, append_coordinates(x))
    hidden = torch.relu(linear(model.feed_forward[0][0], model.spectral[0](z0)))
    update = linear(model.feed_forward[0][3], hidden)
    decode = lambda z: linear(model.decoder[1], linear(model.decoder[0], z))  # noqa: E731
    return decode(update), decode(z0 + update)


def test_decoder_reads_the_last_layers_update_not_the_hidden_state():
    model = build_model("ffno", 2, 1, dim=2, modes=3, width=4, layers=1, decoder_width=5).double().eval()
    x = torch.randn(2, 2, 8, 6, dtype=torch.float64)
    from_update, from_state = one_layer_by_hand(model, x)
    torch.testing.assert_close(model(x), from_update, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(model(x), from_state, atol=1e-3)


def test_layers_add_their_update_to_the_hidden_state():
    """With two layers, the second layer's input is ``z_0 + b_1``: zeroing layer 1's last bias and weight leaves ``z_0``."""
    model = build_model("ffno", 1, 1, dim=1, modes=3, width=4, layers=2, share_weights=False).double().eval()
    x = torch.randn(3, 1, 16, dtype=torch.float64)
    with torch.no_grad():
        last = model.feed_forward[0][3]
        last.parametrizations.weight.original0.zero_()
        last.bias.zero_()
        z0 = model._pointwise(model.lift, append_coordinates(x))
        b2 = model._pointwise(model.feed_forward[1], model.spectral[1](z0))
        torch.testing.assert_close(model(x), model._pointwise(model.decoder, b2), rtol=1e-10, atol=1e-12)


def test_every_pointwise_layer_is_weight_normed_and_invariant_to_the_scale_of_its_direction():
    model = build_model("ffno", 1, 1, dim=1, modes=3, width=4, layers=2).double().eval()
    linear = [model.lift, *model.decoder] + [layer for ff in model.feed_forward for layer in ff if isinstance(layer, torch.nn.Conv1d)]
    assert len(linear) == 1 + 2 + 2 * 2
    assert all(parametrize.is_parametrized(layer, "weight") for layer in linear)
    x = torch.randn(2, 1, 16, dtype=torch.float64)
    before = model(x)
    with torch.no_grad():
        for layer in linear:
            layer.parametrizations.weight.original1.mul_(7.0)  # v -> 7 v leaves g v / ||v|| unchanged
    torch.testing.assert_close(model(x), before, rtol=1e-10, atol=1e-12)


def test_weight_norm_can_be_switched_off():
    model = build_model("ffno", 1, 1, dim=1, modes=3, width=4, layers=1, weight_norm=False)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())


def test_unshared_layers_have_their_own_fourier_weights_and_shared_is_the_default():
    assert FFNOConfig().share_weights
    unshared = build_model("ffno", 1, 1, dim=2, modes=3, width=4, layers=3, share_weights=False)
    assert len({id(layer.weights[0]) for layer in unshared.spectral}) == 3
    assert len({id(w) for w in unshared.spectral[0].weights}) == 2  # one weight per axis


def test_fourier_weights_start_with_the_xavier_normal_spread_of_the_gain():
    width, modes, gain = 32, 16, 0.1
    model = build_model("ffno", 1, 1, dim=2, modes=modes, width=width, layers=1, fourier_gain=gain)
    weight = model.spectral[0].weights[0]
    expected = gain * (2 / (2 * width * modes * 2)) ** 0.5  # fan_in = fan_out = width * modes * 2
    assert weight.std().item() == pytest.approx(expected, rel=0.05)


def test_dropout_acts_in_training_only():
    model = build_model("ffno", 1, 1, dim=1, modes=3, width=8, layers=1, dropout=0.5, input_dropout=0.5)
    x = torch.randn(2, 1, 16)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.allclose(model(x), model(x))


def test_a_weight_normed_model_rebuilt_from_its_spec_loads_its_weights():
    model = build_model("ffno", 2, 1, dim=2, n_params=1, modes=3, width=4, layers=2)
    rebuilt = model_from_spec(model.spec)
    rebuilt.load_state_dict(model.state_dict())
    x, params = torch.randn(2, 2, 8, 6), torch.rand(2, 1)
    torch.testing.assert_close(rebuilt(x, params), model(x, params))
    assert rebuilt.spectral[0].weights[0] is rebuilt.spectral[1].weights[0]  # still shared after loading


def test_bad_settings_name_the_option():
    with pytest.raises(ValueError, match="dropout"):
        FFNOConfig(dropout=1.0)
    with pytest.raises(ValueError, match="modes"):
        FFNOConfig(modes=0)
