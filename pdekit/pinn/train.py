"""Training a PINN: Adam then optional L-BFGS, with a collocation sampler moving the points."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from pdekit.devices import Device
from pdekit.pinn.problems import Problem
from pdekit.pinn.samplers import Sampler
from pdekit.progress import progress_bar
from pdekit.rollout.evaluate import relative_error
from pdekit.seeds import PINN_CONDITIONS_STREAM, derived_seed


@dataclass(frozen=True)
class ConditionLayout:
    """Where the initial-condition and periodicity losses are taken: ``initial(problem, n, generator, device) -> x [M, d]``
    and ``boundary(problem, n, axis, generator, device) -> xt [M, d + 1]``, the points of the faces of space axis ``axis``
    (that coordinate is then set to either face)."""

    initial: Callable[[Problem, int, torch.Generator, Device | None], torch.Tensor]
    boundary: Callable[[Problem, int, int, torch.Generator, Device | None], torch.Tensor]


def _grid(axes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Returns the tensor-product points of ``axes`` (``[n_k]`` each): ``[prod n_k, len(axes)]``."""
    return torch.stack([m.flatten() for m in torch.meshgrid(*axes, indexing="ij")], dim=1)


def _space_axis(lo: float, hi: float, n: int, device: Device | None) -> torch.Tensor:
    """Returns ``n`` periodic grid points ``lo + (hi - lo) j / n`` (the right end is the left one)."""
    return lo + (hi - lo) * torch.arange(n, device=device) / n


def _per_axis(n: int, axes: int) -> int:
    return max(1, round(n ** (1 / axes)))


def _grid_initial(problem: Problem, n: int, generator: torch.Generator, device: Device | None) -> torch.Tensor:
    per = _per_axis(n, problem.dim)
    return _grid([_space_axis(lo, hi, per, device) for lo, hi in problem.space])


def _grid_boundary(problem: Problem, n: int, axis: int, generator: torch.Generator, device: Device | None) -> torch.Tensor:
    per = _per_axis(n, problem.dim)  # d axes vary on a face: the d - 1 other space axes and time
    axes = [_space_axis(lo, hi, per, device) for lo, hi in problem.space] + [torch.linspace(0, problem.horizon, per, device=device)]
    axes[axis] = axes[axis][:1]  # the face's own coordinate, set to either face by the caller
    return _grid(axes)


CONDITION_LAYOUTS = {
    "uniform": ConditionLayout(
        initial=lambda problem, n, generator, device: problem.uniform(n, generator, device)[:, :-1],
        boundary=lambda problem, n, axis, generator, device: problem.uniform(n, generator, device),
    ),
    "grid": ConditionLayout(initial=_grid_initial, boundary=_grid_boundary),
}
"""The layouts of ``PINNConfig.conditions`` by name."""


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
        initial_points: points of the initial-condition loss, drawn once.
        boundary_points: point pairs per space axis of the periodicity loss (unused by a periodic network).
        conditions: how those points are laid out, one of ``CONDITION_LAYOUTS``: ``"uniform"`` (random
            draws) or ``"grid"`` (the R3 authors' convection set-up: the initial points on the periodic
            space grid, the boundary pairs at equally spaced times from 0 to the horizon; in ``d``
            space dimensions ``round(n ** (1 / d))`` points per axis).
        initial_weight: the initial-condition loss's weight.
        boundary_weight: the periodicity loss's weight.
        log_every: iterations between history records (the last one is always recorded).
        population_every: iterations between snapshots of the collocation points (0: none).
        progress: a progress bar over the iterations (also off when standard error is not a terminal
            or under ``TQDM_DISABLE``).
        seed: the seed of the initial and boundary points (member ``m`` of an ensemble draws them from
            ``derived_seed(seed + m, PINN_CONDITIONS_STREAM, 0)``, a stream of their own).

    Raises:
        ValueError: naming the setting (``PINNConfig.<name>``) for a count below its minimum or a
            negative, zero or non-finite number where it is not allowed, or an unknown ``conditions``.
    """

    iterations: int = 5000
    learning_rate: float = 1e-3
    decay_rate: float = 0.9
    decay_steps: int = 5000
    lbfgs_iterations: int = 0
    initial_points: int = 256
    boundary_points: int = 256
    conditions: str = "uniform"
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
        if self.conditions not in CONDITION_LAYOUTS:
            raise ValueError(f"PINNConfig.conditions must be one of {sorted(CONDITION_LAYOUTS)}; got {self.conditions!r}")
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
        ValueError: ``checkpoint`` holds another sampler's run or an ensemble's, or ``checkpoint_every < 1``.
    """
    (result,) = train_pinn_ensemble(
        problem, [network], [sampler], config, failure_dir=failure_dir, checkpoint=checkpoint, checkpoint_every=checkpoint_every
    )
    return result


def train_pinn_ensemble(
    problem: Problem,
    networks: Sequence[nn.Module],
    samplers: Sequence[Sampler],
    config: PINNConfig = PINNConfig(),
    *,
    failure_dir: str | Path = ".",
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1000,
) -> list[PINNResult]:
    """Trains ``E`` independent PINNs side by side as one batched ensemble; returns one result per member.

    Member ``e`` is the run ``train_pinn(problem, networks[e], samplers[e], replace(config,
    seed=config.seed + e))`` would make, up to floating-point rounding: its own initial and boundary
    points, its own sampler, its own Adam state (Adam acts element by element, so one optimizer over
    the stacked parameters is ``E`` optimizers). The members are independent, except that one
    member's non-finite residual stops them all. Several
    networks have their parameters stacked along a leading axis and run through ``torch.func.vmap``
    of ``functional_call``: one batched kernel per layer for all members. That is meant for a GPU,
    where one small MLP alone leaves the device idle between kernel launches (not yet measured:
    ``benchmarks/gpu_check.sh``, part ``pinn``); on a CPU the work is compute-bound and ``E`` members
    cost about ``E`` runs (``benchmarks/pinn_ensemble.py``: 0.90-1.08x). R3's and causal R3's updates score every member's population with
    the residual its loss was just taken with; RAD's and RAR-D's candidates are scored member by member.

    The networks must share one architecture and the samplers one population size at every
    iteration (the same sampler with the same settings, seeded differently). Checkpoints, failure
    handling and L-BFGS as in ``train_pinn``; L-BFGS runs member by member, since its line search would
    couple the members through their summed loss.

    Args:
        problem: the PDE.
        networks: ``E`` networks ``network(xt [N, d + 1]) -> [N, 1]`` of one architecture, on one
            device, trained in place.
        samplers: ``E`` samplers, one per network.
        config: the settings; member ``e`` draws its initial and boundary points with seed ``config.seed + e``.
        failure_dir: where the points of a non-finite residual are saved.
        checkpoint: the file to save to and continue from; None: none.
        checkpoint_every: Adam iterations between saves.

    Returns:
        ``E`` ``PINNResult``; their ``seconds`` is the ensemble's.

    Raises:
        FloatingPointError: if a member's residual is not finite at some collocation point (its
            points go to ``failure_dir/pinn_nonfinite_<iteration>_member<e>.pt``).
        ValueError: no members, unequal numbers of networks and samplers, networks of different
            architectures, samplers of different kinds, populations of different sizes, a
            ``checkpoint`` of another run, or ``checkpoint_every < 1``.
    """
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1; got {checkpoint_every}")
    if not networks or len(networks) != len(samplers):
        raise ValueError(
            f"train_pinn_ensemble needs one sampler per network (at least one); got {len(networks)} networks, {len(samplers)} samplers"
        )
    kinds = sorted({type(s).__name__ for s in samplers})
    if len(kinds) > 1:
        raise ValueError(f"the ensemble's samplers must be of one kind (seeds of one setting); got {kinds}")
    model = Ensemble(networks)
    device = model.device
    members = len(networks)
    periodic = getattr(networks[0], "periodic", False)
    conditions = [condition_points(problem, config, member, periodic, device) for member in range(members)]
    initial_points, u0 = (torch.stack([c[i] for c in conditions]) for i in (0, 1))  # [E, M, d + 1], [E, M]
    left = right = None
    if not periodic:
        left, right = (torch.stack([c[i] for c in conditions]) for i in (2, 3))
    results = [PINNResult() for _ in range(members)]
    started = time.perf_counter()

    def populations(chosen: slice) -> torch.Tensor:
        sizes = {len(s.points) for s in samplers}
        if len(sizes) > 1:
            raise ValueError(f"the ensemble's populations must have one size; got sizes {[len(s.points) for s in samplers]}")
        return torch.stack([s.points.detach() for s in samplers[chosen]])  # [E', N, d + 1]

    def losses(net: Ensemble, chosen: slice, iteration: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns each chosen member's loss and residual loss, ``[E']`` each, and the residual at its population ``[E', N]``."""
        points = populations(chosen).requires_grad_(True)
        r = problem.residual(net, points)  # [E', N]
        if not torch.isfinite(r).all():
            member = chosen.start + int((~torch.isfinite(r)).any(1).nonzero()[0])
            bad = points[member - chosen.start][~torch.isfinite(r[member - chosen.start])].detach().cpu()
            suffix = "" if members == 1 else f"_member{member}"
            path = Path(failure_dir) / f"pinn_nonfinite_{iteration}{suffix}.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"iteration": iteration, "member": member, "points": bad}, path)
            which = f" (ensemble member {member})" if members > 1 else ""
            raise FloatingPointError(
                f"the PDE residual of {problem.name} is not finite at iteration {iteration}{which} at {len(bad)} points (saved to {path})"
            )
        weights = [samplers[m].loss_weights(points[i]) for i, m in enumerate(range(members)[chosen])]
        squared = r.square() if weights[0] is None else r.square() * torch.stack(weights)  # type: ignore[arg-type]
        residual_loss = squared.mean(dim=1)
        loss = residual_loss + config.initial_weight * (net(initial_points[chosen]).squeeze(-1) - u0[chosen]).square().mean(dim=1)
        if left is not None and right is not None:
            loss = loss + config.boundary_weight * (net(left[chosen]) - net(right[chosen])).square().mean(dim=(1, 2))
        return loss, residual_loss, r

    populations(slice(0, 1))  # unequal sizes fail here, not iterations later
    residuals = _PopulationResiduals(problem, model, samplers)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.decay_steps, gamma=config.decay_rate)
    if checkpoint is not None:  # here, not at the top: pdekit.training loads neuraloperator, which PINNs need not
        from pdekit.training.checkpoint import load_checkpoint, save_checkpoint
    first, seconds_before = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        saved = _saved_run(load_checkpoint(checkpoint, device, required=("iteration", "optimizer", "schedule", "seconds")))
        if len(saved["samplers"]) != members:
            raise ValueError(f"{checkpoint} holds an ensemble of {len(saved['samplers'])} members; this one has {members}")
        for sampler, state in zip(samplers, saved["samplers"], strict=True):
            sampler.load_state_dict(state)
        model.load_state_dicts(saved["networks"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        first, seconds_before = int(saved["iteration"]), float(saved["seconds"])
        for result, history, snapshots in zip(results, saved["histories"], saved["populations"], strict=True):
            result.history, result.populations = list(history), list(snapshots)

    def save(next_iteration: int) -> None:
        state = {
            "iteration": next_iteration,
            "networks": model.state_dicts(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "samplers": [s.state_dict() for s in samplers],
            "histories": [r.history for r in results],
            "populations": [r.populations for r in results],
            "seconds": seconds_before + time.perf_counter() - started,
        }
        save_checkpoint(checkpoint, state)  # type: ignore[arg-type]  # only called with a checkpoint

    everyone = slice(0, members)
    label = samplers[0].name + (f", {members} members" if members > 1 else "")
    try:
        for iteration in progress_bar(range(first, config.iterations), enabled=config.progress, desc=f"PINN {problem.name} ({label})"):
            loss, residual_loss, r = losses(model, everyone, iteration)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()  # each member's parameters get its own loss's gradient
            optimizer.step()
            schedule.step()
            residuals.remember(r.detach())  # the populations are scored with the loss's residual, before the step
            member_losses = residual_loss.detach().cpu()  # one copy to the host, not one per member
            for member, sampler in enumerate(samplers):
                sampler.update(residuals.of(member), iteration)
                sampler.observe_loss(member_losses[member])
            if config.population_every and iteration % config.population_every == 0:
                for result, sampler in zip(results, samplers, strict=True):
                    result.populations.append((iteration, sampler.points.detach().cpu().clone()))
            if iteration % config.log_every == 0 or iteration == config.iterations - 1:
                for result, sampler, total, residual in zip(results, samplers, loss.tolist(), member_losses.tolist(), strict=True):
                    record = {"iteration": iteration, "loss": total, "residual_loss": residual, "points": len(sampler.points)}
                    if hasattr(sampler, "gamma"):
                        record["gamma"] = sampler.gamma
                    result.history.append(record)
            if checkpoint is not None and ((iteration + 1) % checkpoint_every == 0 or iteration == config.iterations - 1):
                save(iteration + 1)
    finally:  # an interrupted run leaves its networks at their latest weights, as one network does
        model.write_back()
    if config.lbfgs_iterations:
        for member, network in enumerate(networks):
            single = Ensemble([network])
            lbfgs = torch.optim.LBFGS(single.parameters(), max_iter=config.lbfgs_iterations, line_search_fn="strong_wolfe")
            chosen = slice(member, member + 1)

            def closure(single=single, lbfgs=lbfgs, chosen=chosen):
                lbfgs.zero_grad(set_to_none=True)
                loss, *_ = losses(single, chosen, config.iterations)
                loss.sum().backward()
                return loss.sum()

            lbfgs.step(closure)
    seconds = seconds_before + time.perf_counter() - started
    for result, network in zip(results, networks, strict=True):
        result.relative_l2 = relative_l2_error(problem, network)
        result.seconds = seconds
    return results


class Ensemble:
    """``E`` networks of one architecture evaluated as one: ``ensemble(xt [E, N, d + 1]) -> [E, N, 1]``.

    One network is called directly. Several have their parameters and buffers stacked along a
    leading axis (``torch.func.stack_module_state``) and run through ``torch.func.vmap`` of
    ``functional_call``; ``parameters()`` are then the stacked tensors, and ``write_back`` copies them
    into the networks.

    Args:
        networks: the members, on one device.

    Raises:
        ValueError: if the networks do not share one architecture: class, train/eval mode, ``periodic``,
            and every parameter's and buffer's name, shape, dtype and device.
    """

    def __init__(self, networks: Sequence[nn.Module]):
        self.networks = list(networks)

        def layout(network: nn.Module) -> tuple:
            tensors = tuple((name, value.shape, value.dtype, value.device) for name, value in network.state_dict().items())
            return type(network), network.training, getattr(network, "periodic", False), tensors

        if any(layout(n) != layout(self.networks[0]) for n in self.networks):
            raise ValueError(
                "the ensemble's networks must share one architecture: the same class, mode, parameter names, shapes, dtypes and device"
            )
        self.device = next(self.networks[0].parameters()).device
        if len(self.networks) == 1:
            self._parameters: list[torch.Tensor] = list(self.networks[0].parameters())
            return
        self._stacked, self._buffers = torch.func.stack_module_state(self.networks)
        self._parameters = list(self._stacked.values())
        skeleton = copy.deepcopy(self.networks[0]).to("meta")

        def member(parameters: dict, buffers: dict, xt: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(skeleton, (parameters, buffers), (xt,))

        self._batched = torch.func.vmap(member)
        self._member = member

    def parameters(self) -> list[torch.Tensor]:
        """Returns the tensors an optimizer trains: the network's own, or the stacked ones."""
        return self._parameters

    def __call__(self, xt: torch.Tensor) -> torch.Tensor:
        """Returns every member's ``u`` at its own points: ``xt [E, N, d + 1] -> [E, N, 1]``."""
        if len(self.networks) == 1:
            return self.networks[0](xt[0]).unsqueeze(0)
        return self._batched(self._stacked, self._buffers, xt)

    def member(self, index: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """Returns member ``index`` alone as a network ``xt [N, d + 1] -> [N, 1]`` (its current, stacked weights)."""
        if len(self.networks) == 1:
            return self.networks[0]
        parameters = {name: value[index] for name, value in self._stacked.items()}
        buffers = {name: value[index] for name, value in self._buffers.items()}
        return lambda xt: self._member(parameters, buffers, xt)

    def write_back(self) -> None:
        """Copies the stacked weights into each member's network (a no-op for one network)."""
        if len(self.networks) == 1:
            return
        with torch.no_grad():
            for index, network in enumerate(self.networks):
                for name, parameter in network.named_parameters():
                    parameter.copy_(self._stacked[name][index])
                for name, buffer in network.named_buffers():
                    buffer.copy_(self._buffers[name][index])

    def state_dicts(self) -> list[dict]:
        """Returns each member's ``state_dict()``, with the current weights."""
        self.write_back()
        return [network.state_dict() for network in self.networks]

    def load_state_dicts(self, states: Sequence[dict]) -> None:
        """Loads each member's ``state_dict()`` into its network and the stacked weights."""
        for network, state in zip(self.networks, states, strict=True):
            network.load_state_dict(state)
        if len(self.networks) == 1:
            return
        with torch.no_grad():
            for name, value in {**self._stacked, **self._buffers}.items():
                value.copy_(torch.stack([state[name] for state in states]))


class _PopulationResiduals:
    """The residual functions the samplers' updates call, member by member, after an optimizer step.

    A sampler that scores its own population (R3 and causal R3, every iteration) gets the residual the
    iteration's loss was taken with, at no further cost: the population is scored with the weights
    before the step, as in the R3 authors' code (``PINN.loss`` in ``arkadaw9/r3_sampling_icml2023``).
    Any other points (RAD's candidates, or a population the sampler replaced) are scored by that
    member's network as it is now, after the step. ``remember(r)`` after every step, with the loss's
    residual ``[E, N]`` at the populations.
    """

    def __init__(self, problem: Problem, model: Ensemble, samplers: Sequence[Sampler]):
        self.problem, self.model, self.samplers = problem, model, samplers
        self._scored: list[torch.Tensor] = []  # the population tensors the loss was taken at, member by member
        self._values: torch.Tensor | None = None  # [E, N]

    def remember(self, values: torch.Tensor) -> None:
        self._scored, self._values = [s.points for s in self.samplers], values

    def of(self, member: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """Returns ``residual(points [M, d + 1]) -> [M]`` of member ``member``'s network."""

        def residual(points: torch.Tensor) -> torch.Tensor:
            if self._values is not None and points is self._scored[member]:
                return self._values[member]
            return self.problem.residual(self.model.member(member), points.detach().requires_grad_(True)).detach()

        return residual


def _saved_run(saved: dict) -> dict:
    """Returns a checkpoint in the ensemble layout; a single run's checkpoint of an earlier pdekit (before ensembles) becomes one member.

    Raises:
        ValueError: if it is neither layout (another program's checkpoint).
    """
    if "networks" not in saved and "network" not in saved:
        raise ValueError(f"not a pdekit PINN checkpoint: it holds {sorted(map(str, saved))[:12]}, without the networks")
    if "network" in saved:
        return {
            **saved,
            "networks": [saved["network"]],
            "samplers": [saved["sampler"]],
            "histories": [saved["history"]],
            "populations": [saved["populations"]],
        }
    return saved


def condition_points(
    problem: Problem, config: PINNConfig, member: int = 0, periodic: bool = False, device: Device | None = None
) -> tuple[torch.Tensor, ...]:
    """Returns member ``member``'s initial points ``[M, d + 1]`` (at t = 0), their values ``u0 [M]`` and, unless the network is
    ``periodic`` by construction, matching points ``left, right`` on opposite faces of every space axis for the periodicity loss.

    They are laid out by ``CONDITION_LAYOUTS[config.conditions]``; random ones come from the stream
    ``derived_seed(config.seed + member, PINN_CONDITIONS_STREAM, 0)``: seeded with the integer that also seeds
    ``torch.manual_seed`` and the sampler (the usual one-seed call), they once repeated the collocation points and
    correlated with the first layer's weights.
    """
    generator = torch.Generator().manual_seed(derived_seed(config.seed + member, PINN_CONDITIONS_STREAM, 0))
    layout = CONDITION_LAYOUTS[config.conditions]
    x0 = layout.initial(problem, config.initial_points, generator, device)
    initial = (torch.cat([x0, torch.zeros(len(x0), 1, device=x0.device)], dim=1), problem.initial(x0))
    if periodic:
        return initial
    lefts, rights = [], []
    for axis, (lo, hi) in enumerate(problem.space):
        points = layout.boundary(problem, config.boundary_points, axis, generator, device)
        left, right = points.clone(), points.clone()
        left[:, axis], right[:, axis] = lo, hi
        lefts.append(left)
        rights.append(right)
    return initial + (torch.cat(lefts), torch.cat(rights))


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
