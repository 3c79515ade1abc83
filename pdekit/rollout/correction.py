"""Learned correction of a coarse solver: a coarse numerical step followed by a neural correction, trained with the solver in the loop.

A step of the corrected solver over the output interval ``dt`` is

    v = S(u)                        the coarse pdekit solver over dt (its own, CFL-limited, steps)
    u_next = v + scale * std * N((v - mean) / std, params)

with ``N`` any pdekit model and ``mean``, ``std`` the store's per-channel statistics. In normalised
units ``z = (v - mean) / std`` this is ``z + scale * N(z)``: the network sees and corrects states in
the units it is trained in, while the solver always sees physical ones.

This is the "solver-in-the-loop" (SOL) correction of Um, Brand, Fei, Holl and Thuerey,
"Solver-in-the-Loop: Learning from Differentiable Physics to Interact with Iterative PDE-Solvers",
NeurIPS 2020 (code github.com/tum-pbs/Solver-in-the-Loop): the correction is added to the coarse
solver's output, and training unrolls ``n`` corrected steps from a reference state with gradients
through every solver step, against the reference downsampled to the coarse grid, the loss averaged
over the ``n`` steps. Kochkov et al., "Machine learning-accelerated computational fluid dynamics",
PNAS 2021, train their learned-correction baseline the same way. Deliberate differences:

- the reference is Fourier-truncated to the coarse grid (``pdekit.grid.fourier_truncate``, how every
  pdekit store is written), not averaged onto a staggered grid: pdekit's solvers are spectral;
- the network's input is shifted by the mean as well as divided by the standard deviation (the
  authors divide only), because pdekit's stores are normalised that way and the Trainer's
  windows arrive so;
- ``scale`` multiplies the network's output (the authors have none). A correction is a small
  fraction of the state; ``CorrectionObjective.defect_scale`` measures the size of the coarse step's
  one-step defect in normalised units, so that an untrained network's O(1) output is a correction of
  the right size rather than one that swamps the solver from the first step.
- ``pushforward`` (Brandstetter, Worrall and Welling, ICLR 2022) optionally keeps gradients on the
  last unrolled step only, as ``RolloutObjective`` does; the authors' SOL keeps them on every step
  (the default here).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import zarr
from torch import nn

from pdekit.data.fields import PDES, channel_names
from pdekit.data.normalize import FieldStatistics
from pdekit.data.recipes import SOLVERS, Recipe, Uniform
from pdekit.data.schema import json_attribute, names
from pdekit.data.store import open_store, space_shape
from pdekit.data.windows import uniform_step
from pdekit.devices import Device, resolve_device
from pdekit.solvers import GaussianRandomField, PerturbedSteadyState, RandomFourierModes, RandomGaussians
from pdekit.solvers.base import SpectralSolver

INITIAL_FIELDS = {cls.__name__: cls for cls in (GaussianRandomField, RandomFourierModes, RandomGaussians, PerturbedSteadyState)}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _tuples(value):
    """Returns ``value`` with JSON lists turned back into tuples, recursively."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def recipe_from_attrs(attrs: dict) -> Recipe:
    """Returns the ``Recipe`` whose ``to_attrs()`` is ``attrs`` (a store's ``recipe`` attribute, decoded).

    Raises ValueError naming any key that ``Recipe`` does not have, or an unknown initial field.
    """
    known = {f.name for f in fields(Recipe)}
    unknown = set(attrs) - known
    if unknown:
        raise ValueError(f"the store's recipe has settings {sorted(unknown)} that this pdekit's Recipe does not know")
    values = {k: _tuples(v) for k, v in attrs.items() if k not in ("parameters", "initial_field")}
    values["parameters"] = {k: Uniform(**v) if isinstance(v, dict) else v for k, v in attrs.get("parameters", {}).items()}
    if "initial_field" in attrs:
        spec = dict(attrs["initial_field"])
        kind = spec.pop("type", None)
        if kind not in INITIAL_FIELDS:
            raise ValueError(f"the store's recipe has initial field {kind!r}; expected one of {sorted(INITIAL_FIELDS)}")
        values["initial_field"] = INITIAL_FIELDS[kind](**{k: _tuples(v) for k, v in spec.items()})
    return Recipe(**values)


def on_grid(recipe: Recipe, shape: Sequence[int]) -> Recipe:
    """Returns ``recipe`` solved (and stored) on the grid ``shape``: the same physics at another resolution."""
    shape = tuple(int(n) for n in shape)
    if len(shape) != len(recipe.shape):
        raise ValueError(f"shape must have {len(recipe.shape)} sizes for recipe {recipe.name!r}; got {list(shape)}")
    return replace(recipe, shape=shape, stored_shape=None)


class MemberSolvers:
    """Builds ``recipe``'s solver on the grid ``shape`` for a batch's per-member parameters ``params [B, P]``.

    ``params`` columns are in ``parameter_names`` order (a store's, which ``Windows`` follows).
    Parameters the recipe holds constant are taken from the recipe, exactly, not from the float32
    ``params``; when every member of a batch shares its values the solver is built with scalars and
    serves any batch size. The last solver built is reused while the values repeat (constant
    recipes build one solver for a whole training run).
    """

    def __init__(
        self,
        recipe: Recipe,
        parameter_names: Sequence[str] | None = None,
        *,
        shape: Sequence[int] | None = None,
        dtype: torch.dtype = torch.float32,
        device: Device | None = None,
    ):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
        self.recipe = on_grid(recipe, shape or recipe.stored_grid.shape)
        self.parameter_names = tuple(recipe.parameter_names if parameter_names is None else parameter_names)
        missing = set(recipe.parameter_names) - set(self.parameter_names)
        if missing:
            raise ValueError(f"parameter_names {list(self.parameter_names)} lack the recipe's parameters {sorted(missing)}")
        self.dtype, self.device = dtype, resolve_device(device)
        self._last: tuple[tuple, SpectralSolver] | None = None

    @property
    def grid(self):
        return self.recipe.grid

    @property
    def channels(self) -> int:
        """Returns the solver state's channels: those of the PDE's default fields, which are its state."""
        pde = PDES[self.recipe.pde]
        return len(channel_names(pde, pde.default_fields, self.grid.ndim))

    def values(self, params: torch.Tensor | None) -> dict[str, list[float]]:
        """Returns every recipe parameter's per-member values (constants from the recipe), name -> list."""
        batch = None if params is None else params.shape[0]
        if params is not None and params.shape[-1] != len(self.parameter_names):
            raise ValueError(f"params have {params.shape[-1]} columns; expected one per parameter {list(self.parameter_names)}")
        varies = any(isinstance(self.recipe.parameters[name], Uniform) for name in self.recipe.parameter_names)
        # one read-back per batch, and only when some parameter is not the recipe's constant
        columns = None if params is None or not varies else params.detach().double().cpu().T.tolist()
        result = {}
        for name in self.recipe.parameter_names:
            value = self.recipe.parameters[name]
            if not isinstance(value, Uniform):
                result[name] = [float(value)] * (batch or 1)
            elif columns is None:
                raise ValueError(f"parameter {name!r} varies per member ({value}); pass the members' params")
            else:
                result[name] = columns[self.parameter_names.index(name)]
        return result

    def __call__(self, params: torch.Tensor | None = None) -> SpectralSolver:
        """Returns the solver for the members' ``params [B, P]`` (or the recipe's constants when None)."""
        values = self.values(params)
        shared = all(len(set(v)) == 1 for v in values.values())
        key = tuple((n, v[0]) if shared else (n, tuple(v)) for n, v in values.items())
        if self._last is None or self._last[0] != key:
            parameters = {n: torch.tensor(v[0] if shared else v, dtype=torch.float64) for n, v in values.items()}
            common = dict(device=self.device, dtype=self.dtype, initial_field=self.recipe.initial_field)
            self._last = (key, SOLVERS[self.recipe.pde](self.recipe, parameters, common))
        return self._last[1]


def _solve_over(solver: SpectralSolver, u: torch.Tensor, dt: float, solver_dt: float) -> torch.Tensor:
    """Returns ``u`` advanced by ``dt`` with the solver's steps of at most ``solver_dt``, differentiably."""
    with warnings.catch_warnings():
        # The CFL step is read from the state with float(); that choice carries no gradient and needs
        # none, but torch warns when the state requires grad.
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
        return solver.solve(u, [dt], solver_dt)[:, 0]


class CorrectedSolver(nn.Module):
    """A coarse solver step over ``dt`` followed by a learned correction; has the Solver and the Stepper interfaces.

    ``solvers`` is a ``MemberSolvers`` (the solver is built for each batch's parameters) or one
    solver. A step is ``v = solver.solve(u, [dt], solver_dt)``, then
    ``v + scale * std * model((v - mean) / std, params)`` (module docstring); gradients flow through
    both, so the same object is trained (``CorrectionObjective``) and used.

    Two interfaces, in two units:

    - the Solver's, in physical units: ``step(u, dt)``, ``solve(u0, t_out, dt)`` (``t_out``
      multiples of ``dt``), ``time_derivative(u)`` (the coarse solver's, uncorrected) and
      ``initial_condition`` act on states ``[B, C, *S]`` in the solver's dtype, for the members'
      ``params`` given at construction (``with_params``). Code that drives a solver drives this,
      ``HybridSolver`` included (as its ``solver``: surrogate steps, then corrected coarse steps).
    - a trained run's Stepper's, in the run's units: ``forward(history [B, 1, C, *S], dt, params)
      -> [B, C, *S]`` takes and returns states normalised by ``statistics`` (physical without),
      in ``history``'s dtype, as every Stepper that ``load_run`` returns does; so ``rollout``,
      ``pdekit evaluate`` and ``pdekit rollout`` treat a correction run as any other run.

    ``dt`` must be the interval it was trained on, as for a state-mode Stepper. ``solver_dt`` is the
    coarse solver's largest step within it (default: the ``MemberSolvers`` recipe's ``dt``, else
    ``dt``); the solver's CFL limit, if it has one, shortens it further.
    """

    input_steps = 1

    def __init__(
        self,
        solvers: MemberSolvers | SpectralSolver,
        model: nn.Module,
        *,
        dt: float,
        solver_dt: float | None = None,
        statistics: FieldStatistics | None = None,
        scale: float = 1.0,
        params: torch.Tensor | None = None,
    ):
        super().__init__()
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"dt must be positive and finite; got {dt}")
        if not scale > 0:
            raise ValueError(f"scale must be positive; got {scale}")
        if solver_dt is not None and not (solver_dt > 0 and math.isfinite(solver_dt)):
            raise ValueError(f"solver_dt must be positive and finite (or None: the recipe's dt); got {solver_dt}")
        self.solvers, self.model, self.dt, self.scale = solvers, model, float(dt), float(scale)
        if solver_dt is None:
            recipe = getattr(solvers, "recipe", None)
            solver_dt = recipe.dt if recipe is not None else dt
        self.solver_dt = float(solver_dt)
        self.statistics, self.params = statistics, params
        self._own_solver: SpectralSolver | None = None  # the solver for self.params, built once (reading params costs a host copy)

    def with_params(self, params: torch.Tensor | None) -> CorrectedSolver:
        """Returns this corrected solver (same network, solver and settings) for members with ``params [B, P]``."""
        return CorrectedSolver(
            self.solvers, self.model, dt=self.dt, solver_dt=self.solver_dt, statistics=self.statistics, scale=self.scale, params=params
        )

    def solver(self, params: torch.Tensor | None = None) -> SpectralSolver:
        """Returns the coarse solver for ``params`` (default: those given at construction)."""
        if not isinstance(self.solvers, MemberSolvers):
            return self.solvers
        if params is not None and params is not self.params:
            return self.solvers(params)
        if self._own_solver is None:  # an unroll's steps share their members: one solver, one host copy
            self._own_solver = self.solvers(self.params)
        return self._own_solver

    def _check_dt(self, dt: float) -> None:
        if not math.isclose(dt, self.dt, rel_tol=1e-6):
            raise ValueError(f"a CorrectedSolver steps dt={self.dt} (the interval it was trained on); got dt={dt}")

    def correction(self, v: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
        """Returns the corrected state ``v + scale * std * N(z)``, ``z = (v - mean) / std``, for the solver's output ``v [B, C, *S]``."""
        network_dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), v.dtype)
        z = v if self.statistics is None else self.statistics.normalize(v)
        update = self.scale * self.model(z.to(network_dtype), params).to(v.dtype)
        if self.statistics is not None:
            update = update * self.statistics.moments(v)[1]
        return v + update

    def coarse_step(self, u: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the uncorrected coarse solver's state ``dt`` after the physical state ``u [B, C, *S]``, in the solver's dtype
        (differentiable)."""
        solver = self.solver(params)
        return _solve_over(solver, u.to(device=solver.device, dtype=solver.dtype), self.dt, self.solver_dt)

    def corrected_step(self, u: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the corrected state ``dt`` after the physical state ``u [B, C, *S]``, in the solver's dtype (differentiable)."""
        params = self.params if params is None else params
        return self.correction(self.coarse_step(u, params), params)

    # ----- the Stepper interface ---------------------------------------------------------------
    def forward(self, history: torch.Tensor, dt: float, params: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the corrected state ``dt`` after ``history [B, 1, C, *S]``, both normalised by ``statistics`` (the run's units)."""
        if history.ndim < 3 or history.shape[1] != 1:
            raise ValueError(f"history must be [batch, 1 state, channel, *space]; got shape {tuple(history.shape)}")
        self._check_dt(dt)
        u = history[:, 0] if self.statistics is None else self.statistics.denormalize(history[:, 0])
        v = self.corrected_step(u, params)
        return (v if self.statistics is None else self.statistics.normalize(v)).to(history.dtype)

    # ----- the Solver interface ----------------------------------------------------------------
    # grid, channels, device and dtype are known without building a solver (which ranged parameters need params for)
    @property
    def grid(self):
        return self.solvers.grid

    @property
    def channels(self) -> int:
        return self.solvers.channels

    @property
    def device(self) -> torch.device:
        return self.solvers.device

    @property
    def dtype(self) -> torch.dtype:
        return self.solvers.dtype

    def initial_condition(
        self, batch: int, generator: torch.Generator | None = None, *, seeds: Sequence[int] | None = None
    ) -> torch.Tensor:
        return self.solver().initial_condition(batch, generator, seeds=seeds)

    def time_derivative(self, u: torch.Tensor) -> torch.Tensor:
        """Returns the coarse solver's semi-discrete ``du/dt`` at ``u`` (the correction acts per interval, it has no rate)."""
        return self.solver().time_derivative(u)

    def step(self, u: torch.Tensor, dt: float) -> torch.Tensor:
        """Returns the corrected state ``dt`` (the trained interval) after ``u``."""
        self._check_dt(dt)
        return self.corrected_step(u)

    def solve(self, u0: torch.Tensor, t_out: Sequence[float] | torch.Tensor, dt: float) -> torch.Tensor:
        """Returns the corrected trajectory at ``t_out`` (multiples of ``dt``, from ``t = 0``): ``[B, T, C, *S]``."""
        self._check_dt(dt)
        times = torch.as_tensor(t_out, dtype=torch.float64).reshape(-1).tolist()
        indices = [round(t / dt) for t in times]
        if (
            not times
            or any(abs(n * dt - t) > 1e-9 * max(1.0, abs(t)) for n, t in zip(indices, times, strict=True))
            or indices != sorted(indices)
            or indices[0] < 0
        ):
            raise ValueError(f"CorrectedSolver.solve needs non-decreasing output times on multiples of dt={dt}; got {times[:5]}...")
        solver = self.solver()
        u = u0.to(solver.dtype)
        out = torch.empty(u0.shape[0], len(indices), *u0.shape[1:], dtype=solver.dtype, device=u0.device)
        n = 0
        for j, target in enumerate(indices):
            while n < target:
                u = self.corrected_step(u)
                n += 1
            out[:, j] = u
        return out


@dataclass(frozen=True)
class CorrectionTraining:
    """How a coarse-solver correction is trained (a run's ``[correction]`` settings).

    A ``config.toml`` of an earlier pdekit version holds ``solver_dt = 0.0`` or ``scale = 0.0`` for
    "from the data"; they read as None.

    Args:
        unroll: corrected steps rolled out per window, gradients through every solver step; the
            window's ``target_steps`` must be at least this. The loss is the mean over the steps.
        pushforward: gradients through the last step only (the earlier ones run without them).
        solver_dt: the coarse solver's largest step, positive (its CFL limit holds); None: the store
            recipe's ``dt``.
        scale: the factor on the network's output, positive; None: ``CorrectionObjective.defect_scale``
            of the training data when a run starts (``pdekit.runs.train``; 1 where nothing resolves it).
        solver_dtype: ``"float32"`` or ``"float64"`` for the coarse solver.

    Raises:
        ValueError: naming the setting (``correction.<name>``) for an ``unroll`` below 1, a
            non-positive or non-finite ``solver_dt`` or ``scale``, or an unknown ``solver_dtype``.
    """

    unroll: int = 4
    pushforward: bool = False
    solver_dt: float | None = None
    scale: float | None = None
    solver_dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("solver_dt", "scale"):
            if getattr(self, name) == 0:  # config.toml files of earlier pdekit versions wrote 0.0 for "from the data"
                object.__setattr__(self, name, None)
        if self.unroll < 1:
            raise ValueError(f"correction.unroll must be >= 1; got {self.unroll}")
        for name in ("solver_dt", "scale"):
            value = getattr(self, name)
            if value is not None and not 0 < value < float("inf"):  # false for NaN too
                raise ValueError(f"correction.{name} must be positive and finite (or left out: from the data); got {value}")
        if self.solver_dtype not in DTYPES:
            raise ValueError(f"correction.solver_dtype must be one of {sorted(DTYPES)}; got {self.solver_dtype!r}")


class CorrectionObjective:
    """The Trainer objective of a ``CorrectedSolver`` on normalised windows ``inputs [B, 1, C, *S]``, ``targets [B, m, C, *S]``.

    The Trainer hands over windows normalised by the store's ``statistics`` (as ``Windows`` yields
    them). The objective turns the first state back into physical units, unrolls ``unroll``
    corrected steps (the solver sees physical states, the network normalised ones) and compares
    each, normalised again, with the stored state: ``loss_fn(normalize(u_j), targets[:, j])``.
    ``prediction`` gives one corrected step and the truth, both normalised, as the Trainer's
    ``denormalize`` expects. Without statistics (a store trained unnormalised) the windows are physical.
    """

    def __init__(
        self,
        solvers: MemberSolvers | SpectralSolver,
        training: CorrectionTraining = CorrectionTraining(),
        *,
        dt: float,
        statistics: FieldStatistics | None,
    ):
        self.solvers, self.training, self.dt, self.statistics = solvers, training, float(dt), statistics
        self.scale = 1.0 if training.scale is None else training.scale

    @classmethod
    def from_store(
        cls, store, training: CorrectionTraining = CorrectionTraining(), *, statistics: FieldStatistics | None, device: Device | None = None
    ) -> CorrectionObjective:
        """Returns the objective for windows of ``store``: its recipe's solver on its stored grid, its parameters' order and step.

        Raises ValueError unless the store records exactly the solver's state (the PDE's default
        fields): a correction adds to the solver's state, channel by channel.
        """
        group = open_store(store)
        attrs = json_attribute(group.attrs, "recipe")
        if attrs is None:
            raise ValueError(f"{store}: the store has no recipe attribute; a correction needs the solver that made it")
        recipe = recipe_from_attrs(attrs)
        default = PDES[recipe.pde].default_fields
        if tuple(recipe.field_names) != tuple(default):
            raise ValueError(
                f"{store}: records fields {list(recipe.field_names)}; a solver correction needs the solver's state {list(default)}"
            )
        times = group["time"]
        if not isinstance(times, zarr.Array):
            raise ValueError(f"{store}: the store's time is a group, not an array of times")
        dt = uniform_step(np.asarray(times[:]), str(store))
        solvers = MemberSolvers(
            recipe, names(group.attrs, "parameter_names"), shape=space_shape(group), dtype=DTYPES[training.solver_dtype], device=device
        )
        return cls(solvers, training, dt=dt, statistics=statistics)

    @staticmethod
    def space_dims(inputs: torch.Tensor) -> int:
        """Returns the number of spatial axes of a batch of windows ``[B, k, C, *S]``."""
        return inputs.ndim - 3

    def corrected_solver(self, network: nn.Module, params: torch.Tensor | None = None) -> CorrectedSolver:
        """Returns the ``CorrectedSolver`` of ``network`` with this objective's solver, interval, statistics and scale."""
        return CorrectedSolver(
            self.solvers,
            network,
            dt=self.dt,
            solver_dt=self.training.solver_dt,
            statistics=self.statistics,
            scale=self.scale,
            params=params,
        )

    def _physical(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.statistics is None else self.statistics.denormalize(x)

    def _normalised(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.statistics is None else self.statistics.normalize(x)

    def _check(self, inputs: torch.Tensor, targets: torch.Tensor, steps: int) -> None:
        if inputs.ndim < 4 or inputs.shape[1] != 1 or targets.shape[2:] != inputs.shape[2:]:
            raise ValueError(
                "correction training needs windows inputs [B, 1, C, *S] (data.input_steps = 1) and targets [B, m, C, *S]; got "
                f"{tuple(inputs.shape)} and {tuple(targets.shape)}"
            )
        if targets.shape[1] < steps:
            raise ValueError(f"correction.unroll={steps} needs windows of at least that many target steps; got {targets.shape[1]}")

    def loss(self, network: nn.Module, inputs, targets, params, loss_fn, epoch: int) -> torch.Tensor:
        t = self.training
        self._check(inputs, targets, t.unroll)
        corrected = self.corrected_solver(network, params)
        u = self._physical(inputs[:, 0])
        losses = []
        for j in range(t.unroll):
            with_gradient = not t.pushforward or j == t.unroll - 1
            with torch.set_grad_enabled(with_gradient and torch.is_grad_enabled()):
                u = corrected.corrected_step(u)
            if with_gradient:
                losses.append(loss_fn(self._normalised(u).to(targets.dtype), targets[:, j]))
        return torch.stack(losses).mean()

    def prediction(self, model: nn.Module, inputs, targets, params) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(inputs, targets, 1)
        u = self.corrected_solver(model, params).corrected_step(self._physical(inputs[:, 0]))
        return self._normalised(u).to(targets.dtype), targets[:, 0]

    def with_scale(self, scale: float) -> CorrectionObjective:
        """Returns this objective with the network's output scale set to ``scale`` (e.g. ``scale_from(windows)``)."""
        return CorrectionObjective(self.solvers, replace(self.training, scale=float(scale)), dt=self.dt, statistics=self.statistics)

    def scale_from(self, windows, windows_used: int = 256) -> float:
        """Returns ``defect_scale`` over up to ``windows_used`` evenly spread windows of ``windows`` (a ``Windows`` of training members)."""
        indices = sorted(set(np.linspace(0, len(windows) - 1, min(windows_used, len(windows))).round().astype(int).tolist()))
        items = windows.__getitems__(indices)
        return self.defect_scale(*(torch.stack([getattr(w, name) for w in items]) for name in ("inputs", "targets", "params")))

    @torch.no_grad()
    def defect_scale(self, inputs: torch.Tensor, targets: torch.Tensor, params: torch.Tensor | None) -> float:
        """Returns the standard deviation of the coarse step's defect ``target - S(u)`` in normalised units over the windows given.

        ``inputs [N, 1, C, *S]``, ``targets [N, m, C, *S]`` normalised, ``params [N, P]``: a sample of
        training windows. It is the ``scale`` that makes an untrained network's correction the size
        of the error it is to remove.
        """
        self._check(inputs, targets, 1)
        v = self.corrected_solver(nn.Identity(), params).coarse_step(self._physical(inputs[:, 0]))
        scale = (targets[:, 0].double() - self._normalised(v).double()).std().item()
        if not scale > 0:
            raise ValueError("the coarse solver reproduces the stored states exactly: there is no correction to learn")
        return scale
