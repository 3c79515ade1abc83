"""Training a PINN: Adam then optional L-BFGS, with a collocation sampler moving the points."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from pdekit.atomic import atomic_file
from pdekit.pinn.problems import Problem
from pdekit.pinn.samplers import Sampler
from pdekit.progress import progress_bar
from pdekit.rollout.evaluate import relative_error


@dataclass(frozen=True)
class PINNConfig:
    """Settings of ``train_pinn``; the loss is ``mean(w r^2) + initial_weight mean((u(x, 0) - u_0)^2)``
    (+ ``boundary_weight`` times a periodicity loss when the network is not periodic by construction).

    The weights 100 on the initial condition follow the R3 paper's convection runs, and so does the
    Adam learning rate's decay: times ``decay_rate`` every ``decay_steps`` iterations.

    Args:
        iterations: Adam iterations.
        learning_rate: Adam's initial learning rate.
        decay_rate: the learning rate's factor every ``decay_steps`` iterations.
        decay_steps: iterations between decays.
        lbfgs_iterations: L-BFGS iterations (strong Wolfe line search) after Adam (0: none).
        initial_points: uniform points of the initial-condition loss, drawn once.
        boundary_points: point pairs per space axis of the periodicity loss (unused by a periodic network).
        initial_weight: the initial-condition loss's weight.
        boundary_weight: the periodicity loss's weight.
        log_every: iterations between history records (the last one is always recorded).
        population_every: iterations between snapshots of the collocation points (0: none).
        progress: a progress bar over the iterations (also off when standard error is not a terminal
            or under ``TQDM_DISABLE``).
        seed: the seed of the initial and boundary points.

    Raises:
        ValueError: naming the setting (``PINNConfig.<name>``) for a count below its minimum or a
            negative, zero or non-finite number where it is not allowed.
    """

    iterations: int = 5000
    learning_rate: float = 1e-3
    decay_rate: float = 0.9
    decay_steps: int = 5000
    lbfgs_iterations: int = 0
    initial_points: int = 256
    boundary_points: int = 256
    initial_weight: float = 100.0
    boundary_weight: float = 100.0
    log_every: int = 100
    population_every: int = 0
    progress: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        lowest = {
            "iterations": 0,
            "lbfgs_iterations": 0,
            "population_every": 0,
            "decay_steps": 1,
            "initial_points": 1,
            "boundary_points": 1,
            "log_every": 1,
        }
        for name, low in lowest.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"PINNConfig.{name} must be an integer >= {low}; got {value!r}")
        for name in ("learning_rate", "initial_weight", "boundary_weight"):
            if not 0 <= getattr(self, name) < math.inf:  # false for NaN too
                raise ValueError(f"PINNConfig.{name} must be non-negative and finite; got {getattr(self, name)!r}")
        if not 0 < self.decay_rate < math.inf:
            raise ValueError(f"PINNConfig.decay_rate must be positive and finite; got {self.decay_rate!r}")


@dataclass
class PINNResult:
    """What a PINN run produced: the loss history, snapshots of the collocation population, the final error.

    Attributes:
        history: one dict per logged iteration: ``iteration``, ``loss``, ``residual_loss``, ``points``
            (and the causal gate's ``gamma``).
        populations: ``(iteration, points [N, d + 1])`` snapshots (``PINNConfig.population_every``).
        relative_l2: ``relative_l2_error`` after training.
        seconds: the training's wall-clock time.
    """

    history: list[dict] = field(default_factory=list)
    populations: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    relative_l2: float = math.nan
    seconds: float = 0.0


def relative_l2_error(problem: Problem, network: nn.Module, points: int = 256, times: int = 100) -> float:
    """Returns ``||u_net - u_ref|| / ||u_ref||`` on the problem's evaluation grid.

    One norm over the whole space-time grid (``pdekit.rollout.relative_error``): a zero reference
    gives the absolute error ``||u_net||``, not NaN.

    Args:
        problem: the PDE, with its reference solution.
        network: ``network(xt [N, d + 1]) -> [N, 1]``.
        points: grid points per space axis.
        times: times in ``[0, horizon]``.

    Returns:
        The relative L2 error.
    """
    x, t = problem.evaluation_grid(points, times)
    reference = problem.reference(x, t)  # [nt, *nx]
    axes = [x] * problem.dim + [t]
    mesh = torch.meshgrid(*axes, indexing="ij")  # each [nx, (ny,) nt]
    xt = torch.stack([m.flatten() for m in mesh], dim=1)
    parameter = next(network.parameters())
    with torch.no_grad():
        u = network(xt.to(parameter)).view(*mesh[0].shape).double().cpu()
    u = u.movedim(-1, 0)  # time first, like the reference
    return relative_error(u, reference, start_dim=0).item()


def train_pinn(
    problem: Problem,
    network: nn.Module,
    sampler: Sampler,
    config: PINNConfig = PINNConfig(),
    *,
    failure_dir: str | Path = ".",
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1000,
) -> PINNResult:
    """Trains ``network`` on ``problem`` with collocation points from ``sampler``; returns the history and final error.

    A residual that turns NaN or infinite stops training with ``FloatingPointError`` naming the
    iteration; the offending points are saved to ``failure_dir/pinn_nonfinite_<iteration>.pt``.

    With ``checkpoint``, the Adam phase is saved there (atomically) every ``checkpoint_every``
    iterations and at its end: the network, Adam's and the schedule's states, the sampler's
    (``Sampler.state_dict``), the history so far. If the file exists, training continues from it,
    so a long run can be split into parts (call again with the same arguments, or more
    ``iterations``); on the same device and thread count the parts end with the uninterrupted run's
    weights, bit for bit. The L-BFGS phase is not checkpointed.

    Args:
        problem: the PDE.
        network: ``network(xt [N, d + 1]) -> [N, 1]``, trained in place on its own device.
        sampler: the collocation points, moved after every iteration.
        config: the settings.
        failure_dir: where the points of a non-finite residual are saved.
        checkpoint: the file to save to and continue from; None: none.
        checkpoint_every: Adam iterations between saves.

    Returns:
        The ``PINNResult``.

    Raises:
        FloatingPointError: if the residual is not finite at some collocation point.
        ValueError: ``checkpoint`` holds another sampler's run, or ``checkpoint_every < 1``.
    """
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1; got {checkpoint_every}")
    device = next(network.parameters()).device
    generator = torch.Generator().manual_seed(config.seed)
    x0 = problem.uniform(config.initial_points, generator, device)[:, :-1]
    u0 = problem.initial(x0)
    initial_points = torch.cat([x0, torch.zeros(len(x0), 1, device=device)], dim=1)
    boundary = None if getattr(network, "periodic", False) else _periodic_pairs(problem, config.boundary_points, generator, device)
    result = PINNResult()
    started = time.perf_counter()

    def residual_values(points: torch.Tensor) -> torch.Tensor:
        points = points.detach().requires_grad_(True)
        return problem.residual(network, points).detach()

    def losses(iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        points = sampler.points.detach().requires_grad_(True)
        r = problem.residual(network, points)
        if not torch.isfinite(r).all():
            bad = points[~torch.isfinite(r)].detach().cpu()
            path = Path(failure_dir) / f"pinn_nonfinite_{iteration}.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"iteration": iteration, "points": bad}, path)
            raise FloatingPointError(
                f"the PDE residual of {problem.name} is not finite at iteration {iteration} at {len(bad)} points (saved to {path})"
            )
        weights = sampler.loss_weights(points)
        residual_loss = (r.square() * weights).mean() if weights is not None else r.square().mean()
        loss = residual_loss + config.initial_weight * (network(initial_points).squeeze(-1) - u0).square().mean()
        if boundary is not None:
            left, right = boundary
            loss = loss + config.boundary_weight * (network(left) - network(right)).square().mean()
        return loss, residual_loss

    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.decay_steps, gamma=config.decay_rate)
    first, seconds_before = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        sampler.load_state_dict(saved["sampler"])
        network.load_state_dict(saved["network"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        first, seconds_before = int(saved["iteration"]), float(saved["seconds"])
        result.history, result.populations = list(saved["history"]), list(saved["populations"])

    def save(next_iteration: int) -> None:
        state = {
            "iteration": next_iteration,
            "network": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "sampler": sampler.state_dict(),
            "history": result.history,
            "populations": result.populations,
            "seconds": seconds_before + time.perf_counter() - started,
        }
        with atomic_file(checkpoint, "wb") as file:  # type: ignore[arg-type]  # only called with a checkpoint
            torch.save(state, file)

    iterations = range(first, config.iterations)
    for iteration in progress_bar(iterations, enabled=config.progress, desc=f"PINN {problem.name} ({sampler.name})"):
        loss, residual_loss = losses(iteration)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        sampler.observe_loss(residual_loss.detach())
        sampler.update(residual_values, iteration)
        if config.population_every and iteration % config.population_every == 0:
            result.populations.append((iteration, sampler.points.detach().cpu().clone()))
        if iteration % config.log_every == 0 or iteration == config.iterations - 1:
            record = {"iteration": iteration, "loss": loss.item(), "residual_loss": residual_loss.item(), "points": len(sampler.points)}
            if hasattr(sampler, "gamma"):
                record["gamma"] = sampler.gamma
            result.history.append(record)
        if checkpoint is not None and ((iteration + 1) % checkpoint_every == 0 or iteration == config.iterations - 1):
            save(iteration + 1)
    if config.lbfgs_iterations:
        lbfgs = torch.optim.LBFGS(network.parameters(), max_iter=config.lbfgs_iterations, line_search_fn="strong_wolfe")

        def closure():
            lbfgs.zero_grad(set_to_none=True)
            loss, _ = losses(config.iterations)
            loss.backward()
            return loss

        lbfgs.step(closure)
    result.relative_l2 = relative_l2_error(problem, network)
    result.seconds = seconds_before + time.perf_counter() - started
    return result


def _periodic_pairs(problem: Problem, n: int, generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns matching points on opposite faces of every space axis, for the periodicity loss."""
    lefts, rights = [], []
    for axis, (lo, hi) in enumerate(problem.space):
        points = problem.uniform(n, generator, device)
        left, right = points.clone(), points.clone()
        left[:, axis], right[:, axis] = lo, hi
        lefts.append(left)
        rights.append(right)
    return torch.cat(lefts), torch.cat(rights)


def plot_population(result: PINNResult, problem: Problem, path: str | Path, columns: int = 4) -> Path:
    """Writes scatter plots of the collocation points (x, t) at ``columns`` snapshots; returns the file.

    Args:
        result: a run with population snapshots.
        problem: its PDE (for the axes' ranges).
        path: the image file (its format from the suffix).
        columns: the number of snapshots shown, evenly spread.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: if ``result`` has no population snapshots.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not result.populations:
        raise ValueError("no population snapshots: train with PINNConfig(population_every=...)")
    picks = [
        result.populations[round(i)] for i in torch.linspace(0, len(result.populations) - 1, min(columns, len(result.populations))).tolist()
    ]
    figure, axes = plt.subplots(1, len(picks), figsize=(3.2 * len(picks), 3), squeeze=False)
    for ax, (iteration, points) in zip(axes[0], picks, strict=True):
        ax.scatter(points[:, -1], points[:, 0], s=1)
        ax.set_xlim(0, problem.horizon)
        ax.set_ylim(*problem.space[0])
        ax.set_xlabel("t")
        ax.set_ylabel("x")
        ax.set_title(f"iteration {iteration}", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path
