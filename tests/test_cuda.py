"""The CUDA paths: CPU and CUDA agree, nothing waits on the device per step, AMP, the online thread's stream, rollouts.

Skipped where there is no CUDA device (CI); ``benchmarks/gpu_check.sh`` runs this file on a GPU machine.

Tolerances, as relative L2 distances per member (``||cuda - cpu|| / ||cpu||``):

- float64: 1e-10. cuFFT and pocketfft round differently (about 1e-16 per transform); a few hundred
  steps of these flows amplify that by far less than 1e6.
- float32: 1e-4. On the CPU, float32 trajectories of the same set-ups differ from float64 ones by
  1e-7 to 5e-6 (measured); CUDA's float32 rounds differently but no worse, so 1e-4 leaves a
  20x margin and still fails on any real discrepancy (a wrong mode, a stale buffer, a race).
- Tensors that are copied, not computed (reservoir contents, initial conditions): exact, or
  within one float32 rounding of a float64 value (rtol 1e-6) where the value was computed.

Matrix products and convolutions in float32 are kept out of TF32 in the tests that compare a
network's output with the CPU's, so that float32 means float32 there.
"""

import copy
import threading

import pytest
import torch

from pdekit import Grid
from pdekit.data import LogUniform, Recipe
from pdekit.models import MODELS, build_model
from pdekit.online import Generator, Reservoir, ReservoirClosed, solve_members
from pdekit.rollout import HybridSolver, Stepper, rollout
from pdekit.solvers import AllenCahn, Burgers, GaussianRandomField, Heat, NavierStokes2D, fno_forcing
from pdekit.training import Trainer, TrainerConfig, make_loss

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4}


def relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Returns the largest per-member ``||actual - expected|| / ||expected||`` (both moved to the CPU in float64)."""
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    return ((actual - expected).flatten(1).norm(dim=1) / expected.flatten(1).norm(dim=1)).max().item()


@pytest.fixture
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class synchronisations_forbidden:
    """Within this block, any operation that makes the host wait for the device raises RuntimeError."""

    def __enter__(self):
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")

    def __exit__(self, *exc):
        torch.cuda.set_sync_debug_mode("default")


# ----- solvers --------------------------------------------------------------------------------------
GRID_2D = Grid((64, 48))
SOLVERS = {
    "navier_stokes": lambda device, dtype: NavierStokes2D(
        GRID_2D, torch.tensor([1e-3, 5e-3]), forcing=fno_forcing(GRID_2D), cfl=0.5, device=device, dtype=dtype
    ),
    "heat_field": lambda device, dtype: Heat(  # ETDRK4 with a diffusivity field
        GRID_2D, 0.01 * (1 + 0.5 * torch.rand(1, *GRID_2D.shape, generator=torch.Generator().manual_seed(0))), device=device, dtype=dtype
    ),
    "heat_members": lambda device, dtype: Heat(GRID_2D, torch.tensor([1e-3, 1e-2]), device=device, dtype=dtype),  # exact exponential
    "burgers": lambda device, dtype: Burgers(Grid((256,)), 0.01, cfl=0.5, device=device, dtype=dtype),
    "allen_cahn": lambda device, dtype: AllenCahn(Grid((256,)), device=device, dtype=dtype),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_solver_gives_the_cpu_trajectory_on_cuda(name, dtype):
    cpu, cuda = SOLVERS[name]("cpu", dtype), SOLVERS[name]("cuda", dtype)
    u0 = cpu.initial_condition(2, seeds=[3, 4])
    u0_cuda = cuda.initial_condition(2, seeds=[3, 4])
    assert u0_cuda.is_cuda and torch.equal(u0_cuda.cpu(), u0)  # noise is drawn on the CPU: identical starts
    expected = cpu.solve(u0, [0.5, 1.0], dt=0.01)
    actual = cuda.solve(u0_cuda, [0.5, 1.0], dt=0.01)
    assert actual.is_cuda and actual.dtype == dtype
    error = relative_l2(actual.flatten(1, 2), expected.flatten(1, 2))
    print(f"{name} {str(dtype)[6:]}: CPU vs CUDA relative L2 {error:.2e} (tolerance {TOLERANCE[dtype]:.0e})")
    assert error < TOLERANCE[dtype]


def test_float32_on_cuda_tracks_float64_on_cpu():
    grid = Grid((64, 64))
    reference = NavierStokes2D(grid, 1e-3, forcing=fno_forcing(grid), device="cpu", dtype=torch.float64)
    fast = NavierStokes2D(grid, 1e-3, forcing=fno_forcing(grid), device="cuda", dtype=torch.float32)
    w0 = reference.initial_condition(4, seeds=range(4))
    expected = reference.solve(w0, [1.0, 5.0], dt=1e-2)
    actual = fast.solve(w0.float().cuda(), [1.0, 5.0], dt=1e-2)
    assert relative_l2(actual.flatten(1, 2), expected.flatten(1, 2)) < 1e-4


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_solver_step_never_makes_the_host_wait_for_the_device(name):
    solver = SOLVERS[name]("cuda", torch.float32)
    u = solver.initial_condition(2, seeds=[0, 1])
    u = solver.step(u, 1e-3)  # the first step computes and caches the scheme's coefficients
    with synchronisations_forbidden():
        for _ in range(3):
            u = solver.step(u, 1e-3)
    assert torch.isfinite(u).all()


# ----- the reservoir and the online generator ------------------------------------------------------
def test_device_reservoir_draws_batches_without_making_the_host_wait():
    reservoir = Reservoir(64, "reservoir", watermark=8, device="cuda", seed=0)
    ids = torch.arange(48, dtype=torch.float32, device="cuda")
    reservoir.put(ids[:40, None], ids[:40, None, None].expand(-1, 3, 5) * 2)
    reservoir.sample(4)  # allocates the storage
    reservoir.put(ids[40:, None], ids[40:, None, None].expand(-1, 3, 5) * 2)
    with synchronisations_forbidden():
        drawn, payload = reservoir.sample(16)  # copies the second put in, then gathers
    assert drawn.is_cuda and payload.is_cuda
    assert torch.equal(payload, drawn[:, :, None].expand(-1, 3, 5) * 2)  # each sample's tensors stay together
    everything, _ = reservoir.sample(48)  # all 48 held, drawn without repeats
    assert sorted(everything.ravel().tolist()) == list(range(48))


def small_navier_stokes(**changes) -> Recipe:
    settings = dict(
        name="small_navier_stokes",
        pde="navier_stokes_2d",
        shape=(32, 32),
        times=tuple(0.1 * i for i in range(1, 7)),
        dt=0.05,
        cfl=0.5,
        forcing="fno",
        parameters={"viscosity": LogUniform(1e-3, 1e-2)},
        initial_field=GaussianRandomField(alpha=2.5, tau=7.0),
        members=16,
        batch_size=2,
    )
    return Recipe(**{**settings, **changes})


def stream(recipe: Recipe, device: str, solve=solve_members, draw_hook=lambda: None) -> tuple[torch.Tensor, ...]:
    """Returns every window of ``recipe``'s 16 members, in stream order, as one thread on ``device`` puts them through a small fifo
    reservoir there."""
    reservoir = Reservoir(2 * 2 * 5, "fifo", watermark=1, device=device)  # two batches of windows: the producer keeps solving
    parts = []
    with Generator(recipe, reservoir, input_steps=2, target_steps=1, members=16, device=device, workers=0, solve=solve) as generator:
        while True:
            draw_hook()
            try:
                parts.append(reservoir.sample(5))
            except ReservoirClosed:
                break
    assert generator.error is None and generator.counters.members == 16
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


def test_generator_thread_fills_a_device_reservoir_from_its_own_stream_with_the_cpu_windows():
    recipe = small_navier_stokes()
    seen = []

    def recording(recipe, members, device):
        seen.append((threading.get_ident(), torch.cuda.current_stream(device), torch.device(device)))
        return solve_members(recipe, members, device)

    def late_draws():
        # ~10 ms of work on the trainer's stream before each draw: the reservoir's copies run late
        # while the producer allocates and writes on its own stream, so a copy that reads memory
        # the producer has freed and reused shows up as a wrong window below.
        torch.cuda._sleep(20_000_000)

    actual = stream(recipe, "cuda", recording, late_draws)
    expected = stream(recipe, "cpu")
    assert all(t.is_cuda for t in actual)
    threads, streams, devices = zip(*seen, strict=True)
    assert threading.get_ident() not in threads and all(d.type == "cuda" for d in devices)
    assert all(s != torch.cuda.default_stream() for s in streams)  # solved on a stream of its own
    for a, e in zip(actual, expected, strict=True):  # inputs, targets, dt, params; fifo keeps the stream's order
        torch.testing.assert_close(a.cpu(), e, rtol=1e-6, atol=1e-6 * e.abs().max().item())


# ----- training ------------------------------------------------------------------------------------
def heat_batches(count=128, batch=16, n=64):
    """Batches ``(u(0), u(1))`` of 2D heat (kappa = 0.005) on the device: ``[batch, 1, n, n]`` each, a power-of-two grid for half-precision
    cuFFT."""
    solver = Heat(Grid((n, n)), 0.005, dtype=torch.float64, device="cpu", initial_field=GaussianRandomField(alpha=2.5, tau=5.0))
    u0 = solver.initial_condition(count, seeds=range(count))
    u1 = solver.solve(u0, [1.0], 1.0)[:, 0]
    return [(u0[i : i + batch].float().cuda(), u1[i : i + batch].float().cuda()) for i in range(0, count, batch)]


def epoch_losses(name: str, amp: bool, batches, epochs: int = 8) -> list[float]:
    """Returns the mean training loss of each epoch of model ``name`` (default settings, seed 0), Adam at 3e-3 annealed to 0."""
    torch.manual_seed(0)
    model = build_model(name, 1, 1, dim=2)
    config = TrainerConfig(epochs=epochs, optimizer="adam", learning_rate=3e-3, weight_decay=0, schedule="cosine", amp=amp, progress=False)
    return [record["train_loss"] for record in Trainer(model, config, device="cuda").fit(batches)]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_amp_training_is_finite_and_within_ten_percent_of_float32(name):
    # 64 steps, the same initial weights and batches. The schedule anneals to 0, so both runs end
    # on a slowly moving loss (on the CPU, float32 FNO went 1.01, 0.73, ..., 0.069, 0.055 over the 8 epochs).
    batches = heat_batches()
    full = epoch_losses(name, False, batches)
    mixed = epoch_losses(name, True, batches)
    print(f"{name}: epoch losses float32 {[f'{v:.4f}' for v in full]}, AMP {[f'{v:.4f}' for v in mixed]}, ratio {mixed[-1] / full[-1]:.3f}")
    assert all(torch.isfinite(torch.tensor(mixed)))
    assert full[-1] < 0.5 * full[0]  # it learned, so the comparison is between trained models
    assert abs(mixed[-1] / full[-1] - 1) < 0.1


def test_a_float32_training_step_never_makes_the_host_wait_for_the_device():
    (x, y), *_ = heat_batches(count=16)
    torch.manual_seed(0)
    trainer = Trainer(build_model("fno", 1, 1, dim=2), TrainerConfig(epochs=1, progress=False), device="cuda")
    loss_fn = make_loss("l2", 2)
    trainer.train_step(x, y, None, loss_fn)  # creates the optimiser state, cuFFT plans and cuBLAS handles
    with synchronisations_forbidden():
        loss = trainer.train_step(x, y, None, loss_fn)
    assert loss.is_cuda and torch.isfinite(loss)


# ----- rollouts -------------------------------------------------------------------------------------
def test_rollout_and_hybrid_solver_run_on_the_device_and_agree_with_the_cpu(no_tf32):
    grid = Grid((32, 32))
    torch.manual_seed(0)
    stepper = Stepper(
        build_model("fno", 1, 1, dim=2, modes=8, width=16, layers=2), "derivative", integrator="rk4", derivative_scale=0.1
    ).eval()
    stepper_cuda = copy.deepcopy(stepper).cuda()
    solver = NavierStokes2D(grid, 1e-3, forcing=fno_forcing(grid), cfl=0.5, device="cpu", dtype=torch.float64)
    solver_cuda = NavierStokes2D(grid, 1e-3, forcing=fno_forcing(grid), cfl=0.5, device="cuda", dtype=torch.float64)
    u0 = solver.initial_condition(2, seeds=[0, 1])

    expected = rollout(stepper, u0.float().unsqueeze(1), 5, 0.05)
    actual = rollout(stepper_cuda, u0.float().cuda().unsqueeze(1), 5, 0.05)
    assert actual.is_cuda and actual.shape == (2, 5, 1, 32, 32)
    assert relative_l2(actual.flatten(1), expected.flatten(1)) < TOLERANCE[torch.float32]

    times = [0.05 * (n + 1) for n in range(6)]
    hybrid = HybridSolver(solver, stepper, surrogate_steps=2, numerical_steps=1, numerical_dt=0.01)
    hybrid_cuda = HybridSolver(solver_cuda, stepper_cuda, surrogate_steps=2, numerical_steps=1, numerical_dt=0.01)
    expected = hybrid.solve(u0, times, 0.05)
    actual = hybrid_cuda.solve(u0.cuda(), times, 0.05)
    assert actual.is_cuda and actual.dtype == torch.float64 and hybrid_cuda.steps_taken == 6
    assert relative_l2(actual.flatten(1), expected.flatten(1)) < TOLERANCE[torch.float32]  # the surrogate's float32 dominates


# ----- PINNs ----------------------------------------------------------------------------------------
def test_a_pinn_ensemble_trains_on_cuda_as_on_the_cpu(no_tf32):
    from pdekit.pinn import MLP, Convection, PINNConfig, make_sampler, train_pinn_ensemble

    problem = Convection(beta=5.0)
    config = PINNConfig(iterations=10, initial_points=32, boundary_points=16)
    trained = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        networks = [MLP(1, 16, 2).to(device) for _ in range(3)]
        samplers = [make_sampler("uniform_resampled", problem, 64, seed=seed, device=device) for seed in range(3)]
        train_pinn_ensemble(problem, networks, samplers, config)
        trained[device] = torch.stack([torch.cat([p.flatten() for p in n.parameters()]) for n in networks])
    assert trained["cuda"].is_cuda
    assert relative_l2(trained["cuda"], trained["cpu"]) < TOLERANCE[torch.float32]
