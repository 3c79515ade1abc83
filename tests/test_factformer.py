"""FactFormer's defining formulas on tiny inputs computed by hand, and its shape and resolution behaviour."""

import pytest
import torch
from torch.nn import functional as F

from pdekit.models import build_model, model_from_spec
from pdekit.models.factformer import AxialKernel, FactorizedAttention, SubfunctionProjection, integrate_along_axes, rotary_embedding


def rotate(pair: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Returns the 2-vectors ``pair [..., n, 2]`` turned by ``angle [n]`` radians."""
    cos, sin = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    return torch.cat([pair[..., :1] * cos - pair[..., 1:] * sin, pair[..., :1] * sin + pair[..., 1:] * cos], dim=-1)


def test_rotary_embedding_turns_feature_pair_i_at_the_roformer_frequency():
    d, t = 6, torch.tensor([0.0, 0.013, 0.4])
    x = torch.randn(3, d)
    theta = [1.0, 10_000 ** (-2 / 6), 10_000 ** (-4 / 6)]  # theta_i = 10000^(-2i/d)
    expected = torch.cat([rotate(x[:, 2 * i : 2 * i + 2], 64 * t * theta[i]) for i in range(3)], dim=-1)
    assert torch.allclose(rotary_embedding(x, t), expected, atol=1e-6)


def test_rotary_products_depend_on_positions_only_through_their_difference():
    q, k, t = torch.randn(5, 8), torch.randn(5, 8), torch.rand(5)
    products = rotary_embedding(q, t) @ rotary_embedding(k, t).T
    assert torch.allclose(rotary_embedding(q, t + 0.37) @ rotary_embedding(k, t + 0.37).T, products, atol=1e-4)


def test_axial_kernel_is_the_rotated_query_key_product_without_layernorm_or_one_over_n():
    kernel = AxialKernel(width=3, heads=2, qk_width=2)
    wq, wk = torch.randn(4, 3), torch.randn(4, 3)
    with torch.no_grad():
        kernel.to_q.weight.copy_(wq)
        kernel.to_k.weight.copy_(wk)
    s, t = torch.randn(1, 3, 3) * 3, torch.tensor([0.0, 0.01, 0.03])
    for head in range(2):
        q, k = s[0] @ wq[2 * head : 2 * head + 2].T, s[0] @ wk[2 * head : 2 * head + 2].T  # [n, 2]: one pair, theta_0 = 1
        expected = rotate(q, 64 * t) @ rotate(k, 64 * t).T
        assert torch.allclose(kernel(s, t)[0, head], expected, atol=1e-5)


def test_subfunction_is_a_linear_map_then_the_mean_over_the_other_axes_then_layernorm_and_a_geglu_mlp():
    projection = SubfunctionProjection(2)
    u = torch.randn(1, 2, 3, 2) * 2  # [B, n_x, n_y, width]
    with torch.no_grad():
        for p in projection.parameters():
            p.copy_(torch.randn_like(p))
    w, g, gb, o, ob = projection.linear.weight, projection.gated.weight, projection.gated.bias, projection.out.weight, projection.out.bias
    gain, shift = projection.norm.weight, projection.norm.bias
    for axis, other in ((0, 2), (1, 1)):
        s = (u @ w.T).mean(dim=other)  # [1, n_axis, 2]
        s = (s - s.mean(-1, keepdim=True)) / torch.sqrt(s.var(-1, unbiased=False, keepdim=True) + 1e-5) * gain + shift
        hidden = s @ g.T + gb
        expected = (F.gelu(hidden[..., :2]) * hidden[..., 2:]) @ o.T + ob
        assert torch.allclose(projection(u, axis), expected, atol=1e-5)


@pytest.mark.parametrize("space", [(5,), (3, 4), (3, 4, 2)])
def test_axis_integrals_contract_each_axis_with_its_own_kernel(space):
    v = torch.randn(2, 3, *space, 2)
    kernels = [torch.randn(2, 3, n, n) for n in space]
    subscripts = {1: "zhia,zhae->zhie", 2: "zhia,zhjb,zhabe->zhije", 3: "zhia,zhjb,zhkc,zhabce->zhijke"}[len(space)]
    assert torch.allclose(integrate_along_axes(v, kernels), torch.einsum(subscripts, *kernels, v), atol=1e-4)


def test_attention_block_output_does_not_change_with_a_constant_factor_on_the_kernels():
    """The GroupNorm after the kernel integral is what makes a 1/n quadrature weight unnecessary."""
    block = FactorizedAttention(width=8, dim=2, heads=2, dim_head=4, kernel_multiplier=2)
    with torch.no_grad():
        for kernel in block.kernels:
            kernel.to_q.weight.normal_()
            kernel.to_k.weight.normal_()
    z, positions = torch.randn(2, 6, 5, 8), [torch.arange(6) / 6, torch.arange(5) / 5]
    before = block(z, positions)
    with torch.no_grad():
        block.kernels[0].to_q.weight.mul_(7.0)
        block.kernels[1].to_k.weight.mul_(0.2)
    after = block(z, positions)
    assert torch.allclose(after, before, atol=1e-4)
    assert not torch.allclose(block(z.flip(1), positions), before, atol=1e-2)


def with_active_kernels(model):
    """Returns ``model`` with unit-variance query and key weights: at the authors' initialisation (gain 0.02)
    the kernel integral is far below the GroupNorm's epsilon and the attention blocks add almost nothing."""
    with torch.no_grad():
        for block in model.blocks:
            for kernel in block.kernels:
                kernel.to_q.weight.normal_()
                kernel.to_k.weight.normal_()
    return model


def test_grids_may_be_non_square_or_3d_and_batch_members_do_not_interact():
    for space in [(12, 8), (6, 5, 4)]:
        model = with_active_kernels(build_model("factformer", 2, 3, dim=len(space), n_params=1, width=8, heads=2, dim_head=4, layers=1))
        x, params = torch.randn(3, 2, *space), torch.rand(3, 1)
        out = model(x, params)
        assert out.shape == (3, 3, *space)
        assert torch.allclose(model(x[1:2], params[1:2]), out[1:2], rtol=1e-4, atol=1e-4)


def test_untrained_model_gives_the_same_function_at_twice_the_resolution():
    model = with_active_kernels(build_model("factformer", 1, 1, dim=2, width=16, heads=2, layers=2))

    def field(n):
        t = torch.arange(n) / n
        return (torch.sin(2 * torch.pi * t)[:, None] * torch.cos(2 * torch.pi * t) + torch.sin(4 * torch.pi * t)).view(1, 1, n, n)

    with torch.no_grad():
        coarse, fine = model(field(32)), model(field(64))[..., ::2, ::2]
    assert ((fine - coarse).norm() / coarse.norm()).item() < 0.01  # measured 0.0016


def test_model_rebuilt_from_its_spec_and_weights_computes_the_same_function():
    """The Gaussian Fourier feature matrix is drawn at random: it must travel with the weights."""
    model = build_model("factformer", 1, 1, dim=1, width=8, heads=2, layers=1)
    rebuilt = model_from_spec(model.spec)
    x = torch.randn(2, 1, 16)
    assert not torch.allclose(rebuilt(x), model(x))
    rebuilt.load_state_dict(model.state_dict())
    assert torch.allclose(rebuilt(x), model(x))


def test_bad_settings_and_inputs_raise_a_value_error_naming_them():
    with pytest.raises(ValueError, match=r"width must be a positive multiple of 8 .*; got 12"):
        build_model("factformer", 1, 1, width=12)
    with pytest.raises(ValueError, match="dim_head \\* kernel_multiplier must be even"):
        build_model("factformer", 1, 1, dim_head=3, kernel_multiplier=1)
    with pytest.raises(ValueError, match="built for dim=2"):
        build_model("factformer", 1, 1, dim=2, width=8)(torch.randn(1, 1, 16))
