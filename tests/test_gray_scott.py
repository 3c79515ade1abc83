import math
from itertools import pairwise

import pytest
import torch

from pdekit import Grid
from pdekit.grid import fourier_truncate
from pdekit.solvers import GrayScott, PerturbedSteadyState, RandomGaussians
from pdekit.solvers.fields import member_generator
from pdekit.solvers.gray_scott import WELL_LENGTHS, WELL_PATTERNS, WELL_SHAPE, steady_states
from pdekit.solvers.time_stepping import SCHEMES

F64 = dict(dtype=torch.float64, device="cpu")
SHAPES = [((24,), (2.0,)), ((16, 12), (1.0, 2.0)), ((8, 6, 10), (1.0, 1.5, 2.0))]


def _uniform(grid: Grid, u: float, v: float, batch: int = 1) -> torch.Tensor:
    return torch.tensor([u, v], dtype=torch.float64).view(1, 2, *[1] * grid.ndim).repeat(batch, 1, *grid.shape)


@pytest.mark.parametrize("dealias", [True, False])
@pytest.mark.parametrize("shape, lengths", SHAPES)
def test_homogeneous_state_stays_steady_to_round_off(shape, lengths, dealias):
    grid = Grid(shape, lengths)
    solver = GrayScott(grid, torch.tensor([0.014, 0.098], **F64), torch.tensor([0.054, 0.057], **F64), dealias=dealias, **F64)
    trajectory = solver.solve(_uniform(grid, 1.0, 0.0, batch=2), [10.0, 200.0], dt=1.0)
    assert (trajectory[:, :, 0] - 1).abs().max() < 1e-13
    assert trajectory[:, :, 1].abs().max() < 1e-13


@pytest.mark.parametrize("pattern", ["bubbles", "worms"])
def test_steady_states_are_zeros_of_the_right_hand_side(pattern):
    feed, kill = WELL_PATTERNS[pattern]
    states = steady_states(feed, kill)
    assert len(states) == (3 if pattern == "bubbles" else 1)  # sqrt(F) / (F + k) > 2 only for bubbles
    grid = Grid((8, 8))
    solver = GrayScott(grid, feed, kill, **F64)
    for u, v in states:
        assert solver.time_derivative(_uniform(grid, u, v)).abs().max() < 1e-15


@pytest.mark.parametrize("shape, lengths", SHAPES)
def test_mode_of_u_relaxes_to_one_at_the_exact_rate_without_v(shape, lengths):
    # With v = 0 the reaction vanishes identically: du/dt = D_u laplacian u + F (1 - u), v stays 0.
    grid = Grid(shape, lengths)
    feed, diffusivity_u = torch.tensor([0.02, 0.06], **F64), torch.tensor([1e-3, 4e-3], **F64)
    solver = GrayScott(grid, feed, 0.05, diffusivity_u=diffusivity_u, **F64)
    modes = (1, 2, -1)[: grid.ndim]
    phase = sum(2 * math.pi * m * x / length for m, x, length in zip(modes, grid.mesh(), grid.lengths, strict=True))
    wavenumber_squared = sum((2 * math.pi * m / length) ** 2 for m, length in zip(modes, grid.lengths, strict=True))
    amplitude = 0.3
    u0 = _uniform(grid, 1.0, 0.0, batch=2)
    u0[:, 0] += amplitude * torch.cos(phase + 0.4)
    times = [0.5, 3.0, 10.0]
    trajectory = solver.solve(u0, times, dt=0.5)
    assert trajectory[:, :, 1].abs().max() == 0
    for i, t in enumerate(times):
        decay = torch.exp(-(diffusivity_u * wavenumber_squared + feed) * t).view(2, *[1] * grid.ndim)
        expected = 1 + amplitude * decay * torch.cos(phase + 0.4)
        assert (trajectory[:, i, 0] - expected).abs().max() < 1e-13


def test_time_derivative_is_the_pointwise_right_hand_side():
    # Low modes only, so that u v^2 is resolved on the grid and both evaluations are exact.
    grid = Grid((32, 24), (2.0, 1.0))
    y, x = grid.mesh()
    u = 0.7 + 0.2 * torch.cos(2 * math.pi * x) * torch.sin(math.pi * y)
    v = 0.3 * torch.sin(2 * math.pi * x) + 0.1 * torch.cos(2 * math.pi * y)
    feed, kill, d_u, d_v = 0.03, 0.06, 2e-3, 1e-3
    laplacian_u = -(4 * math.pi**2 + math.pi**2) * (u - 0.7)
    laplacian_v = -4 * math.pi**2 * v
    expected = torch.stack([d_u * laplacian_u - u * v**2 + feed * (1 - u), d_v * laplacian_v + u * v**2 - (feed + kill) * v])
    for dealias in (True, False):
        solver = GrayScott(grid, feed, kill, diffusivity_u=d_u, diffusivity_v=d_v, dealias=dealias, **F64)
        assert (solver.time_derivative(torch.stack([u, v])[None])[0] - expected).abs().max() < 1e-14


def _band_limited(grid: Grid, fine: Grid, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns a random field with every mode ``|m_i| < n_i / 2`` of ``grid``, on ``grid`` and on ``fine``."""
    span = [torch.arange(-((n - 1) // 2), (n - 1) // 2 + 1) for n in grid.shape]
    modes = torch.cartesian_prod(*span).view(-1, grid.ndim).to(torch.float64)
    a, b = torch.randn(2, modes.shape[0], generator=generator, dtype=torch.float64)

    def evaluate(g: Grid) -> torch.Tensor:
        phase = sum(
            2 * math.pi * modes[:, i, None] * x.reshape(1, -1) / length
            for i, (x, length) in enumerate(zip(g.mesh(), g.lengths, strict=True))
        )
        return (a[:, None] * torch.cos(phase) + b[:, None] * torch.sin(phase)).sum(0).view(g.shape)

    return evaluate(grid), evaluate(fine)


@pytest.mark.parametrize("shape", [(16,), (12, 9), (4, 6, 5)])
def test_dealiased_reaction_is_the_exact_truncation_of_the_cubic(shape):
    # On four times the points the cubic of the band-limited fields is alias-free: its truncation
    # to the grid's modes is the exact Galerkin term the solver should reproduce.
    grid, fine = Grid(shape), Grid(tuple(4 * n for n in shape))
    g = member_generator(3)
    (u, u_fine), (v, v_fine) = _band_limited(grid, fine, g), _band_limited(grid, fine, g)
    expected = fourier_truncate(u_fine * v_fine**2, shape)
    state = torch.stack([u, v])[None]
    scale = expected.abs().max()
    dealiased = GrayScott(grid, dealias=True, **F64)
    assert (dealiased.to_physical(dealiased.reaction(dealiased.to_spectral(state)))[0, 0] - expected).abs().max() < 1e-13 * scale
    aliased = GrayScott(grid, **F64)
    assert (aliased.to_physical(aliased.reaction(aliased.to_spectral(state)))[0, 0] - expected).abs().max() > 1e-2 * scale


def _nonlinear_run() -> tuple[Grid, torch.Tensor, dict]:
    grid = Grid((32, 32))
    y, x = grid.mesh()
    u0 = 1 - 0.5 * torch.exp(-8 * (torch.sin(math.pi * x) ** 2 + torch.sin(math.pi * y) ** 2))
    v0 = 0.25 + 0.25 * torch.cos(2 * math.pi * x) * torch.sin(2 * math.pi * y)
    return grid, torch.stack([u0, v0])[None], dict(feed=0.04, kill=0.06, diffusivity_u=2e-3, diffusivity_v=1e-3, **F64)


@pytest.mark.parametrize("scheme", [name for name, scheme in SCHEMES.items() if not scheme.exact])
def test_temporal_convergence_order_matches_the_scheme(scheme):
    grid, w0, settings = _nonlinear_run()
    t = 20.0
    reference = GrayScott(grid, **settings).solve(w0, [t], dt=t / 1024)
    assert (reference - w0).abs().max() > 0.5  # the reaction reshapes the state: a nonlinear run
    solver = GrayScott(grid, scheme=scheme, **settings)
    # A first-order scheme's error shrinks slowly: smaller steps to be in its asymptotic range.
    steps = (16, 32, 64) if solver.scheme.order > 1 else (64, 128, 256)
    errors = [(solver.solve(w0, [t], dt=t / n) - reference).abs().max().item() for n in steps]
    orders = [math.log2(a / b) for a, b in pairwise(errors)]
    assert all(abs(p - solver.scheme.order) < 0.3 for p in orders), (errors, orders)


def test_per_member_parameters_equal_separate_runs():
    grid = Grid((24, 24), WELL_LENGTHS)
    feed, kill = torch.tensor([0.029, 0.058], **F64), torch.tensor([0.057, 0.065], **F64)
    d_v = torch.tensor([1e-5, 2e-5], **F64)
    batched = GrayScott(grid, feed, kill, diffusivity_v=d_v, **F64)
    w0 = batched.initial_condition(2, seeds=[1, 2])
    together = batched.solve(w0, [20.0, 40.0], dt=2.0)
    for i in range(2):
        alone = GrayScott(grid, feed[i].item(), kill[i].item(), diffusivity_v=d_v[i].item(), **F64)
        assert torch.allclose(together[i : i + 1], alone.solve(w0[i : i + 1], [20.0, 40.0], dt=2.0), rtol=0, atol=1e-13)


@pytest.mark.parametrize("sampler", [RandomGaussians(), PerturbedSteadyState(*WELL_PATTERNS["bubbles"], points=8)])
def test_initial_member_is_the_same_in_any_batch_split(sampler):
    grid = Grid((16, 24), WELL_LENGTHS)
    solver = GrayScott(grid, *WELL_PATTERNS["bubbles"], initial_field=sampler, **F64)
    seeds = [11, 12, 13]
    together = solver.initial_condition(3, seeds=seeds)
    assert together.shape == (3, 2, 16, 24)
    assert (together[0] - together[1]).abs().max() > 0.1  # distinct seeds, distinct states
    for split in ([0], [1, 2], [2]):
        part = solver.initial_condition(len(split), seeds=[seeds[i] for i in split])
        torch.testing.assert_close(part, together[split], rtol=0, atol=1e-15)
    single = GrayScott(grid, initial_field=sampler, dtype=torch.float32, device="cpu").initial_condition(1, seeds=[12])
    torch.testing.assert_close(single, together[1:2].float(), rtol=0, atol=0)  # drawn in float64, then cast


def test_random_gaussians_are_normalised_periodic_and_smooth():
    grid = Grid(WELL_SHAPE, WELL_LENGTHS)
    state = RandomGaussians()(grid, [0, 1, 2], dtype=torch.float64)
    extrema = torch.stack([state.amin(dim=(-2, -1)), state.amax(dim=(-2, -1))])
    assert torch.equal(extrema, torch.tensor([0.0, 1.0], dtype=torch.float64).view(2, 1, 1).expand(2, 3, 2))
    assert (state[:, 0].flatten(1).median(1).values > 0.5).all() and (state[:, 1].flatten(1).median(1).values < 0.5).all()
    # A Gaussian cut at the boundary would leave a jump (high modes ~1e-3 of the peak); summed over
    # its periodic images it is smooth, and the spectrum falls to round-off at |m| >= 56.
    spectrum = torch.fft.rfft2(state).abs()
    ky, kx = grid.mode_numbers()
    high = (ky.abs() >= 56) | (kx >= 56)
    assert ((spectrum * high).amax(dim=(-2, -1)) < 1e-11 * spectrum.amax(dim=(-2, -1))).all()


@pytest.mark.parametrize("pattern", ["bubbles", "spots"])
def test_perturbed_steady_state_interpolates_uniform_noise_about_the_well_state(pattern):
    sampler = PerturbedSteadyState(*WELL_PATTERNS[pattern], points=8)
    (u_mean, v_mean), (w_u, w_v) = sampler.mean_and_half_width()
    if pattern == "bubbles":
        assert (u_mean, v_mean) == steady_states(*WELL_PATTERNS[pattern])[1]
        assert (w_u, w_v) == (0.225 * u_mean, 0.225 * v_mean)
    else:
        assert (u_mean, v_mean, w_u, w_v) == (1.0, 0.0, 0.25, 0.25)
    grid = Grid((32, 24))
    state = sampler(grid, [5], dtype=torch.float64)[0]
    g = member_generator(5)
    noise = torch.stack([torch.rand(8, 8, generator=g, dtype=torch.float64) - 0.5 for _ in range(2)])
    coarse = state[:, ::4, ::3]
    expected = torch.stack([u_mean + 2 * w_u * noise[0], v_mean + 2 * w_v * noise[1]])
    assert (coarse - expected).abs().max() < 1e-14
    # Band-limited to the coarse grid's modes: nothing beyond |m| = 4 on either axis.
    spectrum = torch.fft.rfft2(state).abs()
    ky, kx = grid.mode_numbers()
    assert (spectrum * ((ky.abs() > 4) | (kx > 4))).max() < 1e-12 * spectrum.max()


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda g: GrayScott(g, -0.01, 0.06, device="cpu"), r"feed must be non-negative and finite; got -0\.01"),
        (
            lambda g: GrayScott(g, 0.03, torch.tensor([0.06, -1.0]), device="cpu"),
            r"kill must be non-negative and finite; got -1 \(member 1\)",
        ),
        (lambda g: GrayScott(g, diffusivity_u=0.0, device="cpu"), "diffusivity_u must be positive and finite; got 0"),
        (lambda g: GrayScott(g, diffusivity_v=math.nan, device="cpu"), "diffusivity_v must be positive and finite; got nan"),
        (lambda g: GrayScott(g, torch.ones(2, 2) * 0.03, device="cpu"), r"feed must be a float or a tensor of shape \[batch\]"),
        (
            lambda g: GrayScott(g, torch.tensor([0.03, 0.04]), torch.tensor([0.06] * 3), device="cpu"),
            "kill has 3 members but another parameter has 2",
        ),
        (lambda g: GrayScott(g, scheme="exact", device="cpu"), "GrayScott is nonlinear: scheme must not be exact"),
        (lambda g: GrayScott(g, dealias="2/3", device="cpu"), "dealias must be True or False"),
        (lambda g: RandomGaussians(count=(0, 5)), r"RandomGaussians count must be a pair \(low, high\)"),
        (lambda g: RandomGaussians(sharpness=(300.0, 150.0)), r"RandomGaussians sharpness must be a pair"),
        (lambda g: PerturbedSteadyState(-0.1, 0.06), "PerturbedSteadyState feed must be positive"),
        (lambda g: PerturbedSteadyState(0.03, 0.06, points=16)(g, [0]), "points=16 exceeds the grid"),
    ],
)
def test_bad_parameters_raise_one_line_value_errors(build, message):
    with pytest.raises(ValueError, match=message) as error:
        build(Grid((8, 8)))
    assert "\n" not in str(error.value)


def test_state_of_the_wrong_shape_is_refused():
    solver = GrayScott(Grid((8, 8)), **F64)
    with pytest.raises(
        ValueError, match=r"u has shape \(1, 1, 8, 8\); GrayScott expects \[batch, channel, \*space\] = \('batch', 2, 8, 8\)"
    ):
        solver.step(torch.ones(1, 1, 8, 8, dtype=torch.float64), 1.0)
    with pytest.raises(ValueError, match=r"u0 has shape \(1, 2, 8\)"):
        solver.solve(torch.ones(1, 2, 8, dtype=torch.float64), [1.0], dt=1.0)
