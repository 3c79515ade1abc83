"""The cost-accuracy frontier: every route to a trajectory (solver settings, surrogates, hybrids, corrected solvers) run, timed and scored
alike.

A surrogate's speed-up means something only against the cheapest solver setting of equal accuracy
(McGreivy and Hakim, "Weak baselines and reporting biases lead to overoptimism in machine learning
for fluid-related partial differential equations", Nature Machine Intelligence 2024). ``frontier``
therefore runs the recipe's own solver at coarser grids (and time steps), and at the reference
grid unless told not to, next to every trained route, from the same held-out initial states, on
the same device, and reports for each its error and its cost; ``pareto_front`` picks the routes no other route beats on
both, and ``FrontierRow.speedups`` holds each learned route's speed-up over the solver of equal
accuracy, read off the solvers' own cost curve (``_speedup``), by each measure of ``MEASURES``: the
mean relative L2 over the horizon, the relative L2 at its end, and (for chaotic flows, whose errors
saturate) the correlation time.

Where the error is measured: every route's output is brought to one measurement grid (by default
the stored grid of the runs named, else the recipe's stored grid) by Fourier truncation, or by
Fourier interpolation (zero-padding) for a route on a coarser grid, and compared there with the
float64 reference solve Fourier-truncated to that grid, field by field (``relative_l2_per_field``).
A coarse solver thus pays for the modes it cannot hold, as a surrogate on that grid would. Every
route starts from the reference's state at ``start_time`` truncated to its own grid.

How the cost is measured: wall seconds per member per simulated time unit of one batched call over
the whole horizon, in ``torch.inference_mode``, after one warm-up call that is excluded (it pays
for FFT plans, allocator growth, lazily computed coefficients), synchronising the device before
each clock read; the median of ``repeats`` calls. The call is the route's full cost: a surrogate's
includes its normalisation and decoding, a hybrid's its numerical steps, a solver's the observation
of the recorded fields from its state.
"""

from __future__ import annotations

import json
import math
import statistics as stats
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from pdekit.data import open_store
from pdekit.data.fields import PDES
from pdekit.data.generate import member_seeds, sample_parameters
from pdekit.data.normalize import FieldStatistics
from pdekit.data.recipes import SOLVERS, Recipe, differing_settings
from pdekit.data.schema import json_attribute, names
from pdekit.data.store import space_shape, values
from pdekit.data.windows import uniform_step
from pdekit.devices import Device, resolve_device
from pdekit.grid import fourier_resample
from pdekit.rollout import HybridSolver, correlation_time, relative_l2_per_field, rollout
from pdekit.rollout.correction import CorrectedSolver, on_grid
from pdekit.rollout.evaluate import CORRELATION_THRESHOLD
from pdekit.seeds import FRONTIER_STREAM, derived_seed
from pdekit.solvers import BlowUpError
from pdekit.solvers.base import SpectralSolver

# The settings that make two recipes the same physics (resolution, times, members may differ).
PHYSICS = ("pde", "parameters", "forcing", "lengths", "fields")


def synchronize(device: torch.device) -> None:
    """Waits for the device's queued work (CUDA); a no-op on the CPU, whose work is done when the call returns."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(run: Callable[[], torch.Tensor], device: torch.device, repeats: int = 3) -> tuple[torch.Tensor, float, float]:
    """Returns ``(output, median seconds, warm-up seconds)`` of ``run()``: one warm-up call (excluded), then ``repeats`` timed calls.

    Everything runs in ``torch.inference_mode``; the device is synchronised before every clock read.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    with torch.inference_mode():
        synchronize(device)
        started = time.perf_counter()
        output = run()
        synchronize(device)
        warm_up = time.perf_counter() - started
        seconds = []
        for _ in range(repeats):
            synchronize(device)
            started = time.perf_counter()
            output = run()
            synchronize(device)
            seconds.append(time.perf_counter() - started)
    return output, stats.median(seconds), warm_up


class PhysicalStepper(nn.Module):
    """A Stepper trained on normalised states, in physical units: ``denormalize(stepper(normalize(history), dt, params))``.

    What a ``HybridSolver`` needs to put a trained run's surrogate in a solver's loop; the
    normalisation is part of the surrogate's cost.
    """

    def __init__(self, stepper: nn.Module, statistics: FieldStatistics | None):
        super().__init__()
        self.stepper, self.statistics = stepper, statistics
        self.input_steps = getattr(stepper, "input_steps", 1)

    def forward(self, history: torch.Tensor, dt: float, params: torch.Tensor | None = None) -> torch.Tensor:
        if self.statistics is None:
            return self.stepper(history, dt, params)
        return self.statistics.denormalize(self.stepper(self.statistics.normalize(history), dt, params))


@dataclass
class Problem:
    """What every route is given: the recipe, the held-out members' parameters, the reference states and the output times.

    ``reference`` maps an absolute time (rounded to 1e-9) to the float64 reference state
    ``[B, C_state, *reference_shape]``; ``times`` are the output times after ``start_time``.
    """

    recipe: Recipe
    reference_shape: tuple[int, ...]
    parameters: dict[str, torch.Tensor]
    reference: dict[float, torch.Tensor]
    start_time: float
    times: list[float]
    interval: float
    device: torch.device
    dtype: torch.dtype

    @property
    def members(self) -> int:
        return next(iter(self.reference.values())).shape[0]

    def state(self, time: float) -> torch.Tensor:
        """Returns the reference state at absolute ``time``: ``[B, C_state, *reference_shape]`` (float64)."""
        key = round(time, 9)
        if key not in self.reference:
            raise ValueError(f"the reference holds no state at t={time:g}; it has {sorted(self.reference)[:8]}...")
        return self.reference[key]

    def initial_state(self, shape: Sequence[int], dtype: torch.dtype | None = None) -> torch.Tensor:
        """Returns the solver state at ``start_time`` on the grid ``shape``: ``[B, C_state, *shape]``."""
        return fourier_resample(self.state(self.start_time), shape).to(dtype or self.dtype)

    def fields(self, states: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """Returns the recipe's recorded fields of solver ``states [B, T, C_state, *shape]``: ``[B, T, C, *shape]``."""
        return PDES[self.recipe.pde].observe(self.recipe.field_names, states, on_grid(self.recipe, shape).grid)

    def initial_history(self, shape: Sequence[int], steps: int, dt: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Returns the recorded fields at ``start_time - (steps - 1) dt, ..., start_time`` on ``shape``: ``[B, steps, C, *shape]``.

        Observed on the reference grid, then truncated: what a store holds.
        """
        states = torch.stack([self.state(self.start_time - (steps - 1 - j) * dt) for j in range(steps)], dim=1)
        return fourier_resample(self.fields(states, self.reference_shape), shape).to(dtype)

    def params(self, parameter_names: Sequence[str]) -> torch.Tensor:
        """Returns the members' parameters as a model sees them: ``[B, P]`` float32 in ``parameter_names`` order."""
        missing = [n for n in parameter_names if n not in self.parameters]
        if missing:
            raise ValueError(f"a route expects parameters {missing} that recipe {self.recipe.name!r} does not set")
        if not parameter_names:
            return torch.zeros(self.members, 0, device=self.device)
        return torch.stack([self.parameters[n] for n in parameter_names], dim=-1).to(device=self.device, dtype=torch.float32)

    def solver(self, shape: Sequence[int], *, cfl: float | None = None, dtype: torch.dtype | None = None) -> SpectralSolver:
        """Returns the recipe's solver on ``shape`` for the members' (float64) parameters, with CFL limit ``cfl``."""
        recipe = replace(on_grid(self.recipe, shape), cfl=cfl)
        common = dict(device=self.device, dtype=dtype or self.dtype, initial_field=recipe.initial_field)
        return SOLVERS[recipe.pde](recipe, {n: v.to(self.device) for n, v in self.parameters.items()}, common)


class Route(Protocol):
    """One way to a trajectory: ``prepare(problem)`` returns the call that is timed, which returns the recorded fields ``[B, T, C,
    *shape]``."""

    name: str
    kind: str
    shape: tuple[int, ...]

    def prepare(self, problem: Problem) -> Callable[[], torch.Tensor]: ...


@dataclass
class SolverRoute:
    """The recipe's solver on ``shape``, with steps of at most ``dt`` kept under the CFL number ``cfl`` (None: fixed steps)."""

    name: str
    shape: tuple[int, ...]
    dt: float
    cfl: float | None
    kind: str = "solver"

    def prepare(self, problem: Problem) -> Callable[[], torch.Tensor]:
        solver = problem.solver(self.shape, cfl=self.cfl)
        u0 = problem.initial_state(self.shape)
        return lambda: problem.fields(solver.solve(u0, problem.times, self.dt), self.shape)


def _check_interval(route: str, interval: float, dt: float) -> int:
    ratio = round(interval / dt)
    if ratio < 1 or abs(ratio * dt - interval) > 1e-9 * interval:
        raise ValueError(f"route {route!r} steps dt={dt:g}, which does not divide the output interval {interval:g}")
    return ratio


def _check_physics(route: str, stored: dict, recipe: Recipe) -> None:
    ignore = tuple(k for k in recipe.to_attrs() if k not in PHYSICS)
    different = differing_settings(stored, recipe, ignore=ignore)
    if different:
        details = ", ".join(f"{k}: {stored.get(k)!r} against {recipe.to_attrs()[k]!r}" for k in different)
        raise ValueError(f"route {route!r} was trained on other physics than recipe {recipe.name!r} ({details})")


@dataclass
class SurrogateRoute:
    """A trained Stepper rolled out on its stored grid: ``steps`` of ``dt`` per output interval, normalised in and decoded out.

    ``stepper`` works in the units of ``statistics`` (None: physical); ``parameter_names`` orders
    its ``params`` columns; ``stored_recipe`` (a store's recipe attribute), when given, is checked to
    be the frontier recipe's physics.
    """

    name: str
    stepper: nn.Module
    shape: tuple[int, ...]
    dt: float
    statistics: FieldStatistics | None = None
    parameter_names: tuple[str, ...] = ()
    stored_recipe: dict | None = None
    kind: str = "surrogate"

    def prepare(self, problem: Problem) -> Callable[[], torch.Tensor]:
        if self.stored_recipe is not None:
            _check_physics(self.name, self.stored_recipe, problem.recipe)
        ratio = _check_interval(self.name, problem.interval, self.dt)
        k = getattr(self.stepper, "input_steps", 1)
        history = problem.initial_history(self.shape, k, self.dt)
        params = problem.params(self.parameter_names)
        steps = ratio * len(problem.times)
        statistics = self.statistics

        def run() -> torch.Tensor:
            start = history if statistics is None else statistics.normalize(history)
            states = rollout(self.stepper, start, steps, self.dt, params)[:, ratio - 1 :: ratio]
            return states if statistics is None else statistics.denormalize(states)

        return run


@dataclass
class HybridRoute:
    """``HybridSolver``: ``surrogate_steps`` steps of a trained surrogate, then ``numerical_steps`` of the recipe's solver, on the
    surrogate's grid."""

    name: str
    surrogate: SurrogateRoute
    surrogate_steps: int = 3
    numerical_steps: int = 1
    kind: str = "hybrid"

    @property
    def shape(self) -> tuple[int, ...]:
        return self.surrogate.shape

    def prepare(self, problem: Problem) -> Callable[[], torch.Tensor]:
        s = self.surrogate
        if s.stored_recipe is not None:
            _check_physics(self.name, s.stored_recipe, problem.recipe)
        if tuple(problem.recipe.field_names) != tuple(PDES[problem.recipe.pde].default_fields):
            raise ValueError(
                f"route {self.name!r}: a hybrid needs the recorded fields to be the solver's state; recipe {problem.recipe.name!r} "
                f"records {list(problem.recipe.field_names)}"
            )
        _check_interval(self.name, problem.interval, s.dt)
        solver = problem.solver(self.shape, cfl=problem.recipe.cfl)
        hybrid = HybridSolver(
            solver,
            PhysicalStepper(s.stepper, s.statistics),
            surrogate_steps=self.surrogate_steps,
            numerical_steps=self.numerical_steps,
            params=problem.params(s.parameter_names),
            numerical_dt=problem.recipe.dt,
        )
        u0 = problem.initial_state(self.shape)
        return lambda: hybrid.solve(u0, problem.times, s.dt)


@dataclass
class CorrectionRoute:
    """A ``CorrectedSolver`` (coarse solver step + learned correction) solving on its own grid."""

    name: str
    corrected: CorrectedSolver
    parameter_names: tuple[str, ...] = ()
    stored_recipe: dict | None = None
    kind: str = "correction"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.corrected.grid.shape)

    def prepare(self, problem: Problem) -> Callable[[], torch.Tensor]:
        if self.stored_recipe is not None:
            _check_physics(self.name, self.stored_recipe, problem.recipe)
        _check_interval(self.name, problem.interval, self.corrected.dt)
        corrected = self.corrected.with_params(problem.params(self.parameter_names))
        u0 = problem.initial_state(self.shape, corrected.dtype).to(corrected.device)
        return lambda: corrected.solve(u0, problem.times, corrected.dt)


def route_from_run(run_dir: str | Path, device: Device | None = None, name: str | None = None) -> SurrogateRoute | CorrectionRoute:
    """Returns the route of a trained run directory: a ``CorrectionRoute`` when ``load_run`` gives a ``CorrectedSolver``, else a
    ``SurrogateRoute``."""
    from pdekit.runs.integrity import trained_statistics
    from pdekit.runs.train import load_run

    config, stepper = load_run(run_dir, device)
    group = open_store(config.data.store)
    stored_recipe = json_attribute(group.attrs, "recipe")
    parameter_names = tuple(names(group.attrs, "parameter_names"))
    label = name or Path(run_dir).name
    if isinstance(stepper, CorrectedSolver):
        return CorrectionRoute(label, stepper, parameter_names, stored_recipe)
    dt = uniform_step(values(group, "time"), str(config.data.store))
    return SurrogateRoute(
        label, stepper, tuple(space_shape(group)), dt, trained_statistics(run_dir, config), parameter_names, stored_recipe
    )


def hybrid_from_run(
    run_dir: str | Path, surrogate_steps: int = 3, numerical_steps: int = 1, device: Device | None = None, name: str | None = None
) -> HybridRoute:
    """Returns the ``HybridRoute`` of a trained surrogate run: ``surrogate_steps`` of it, then ``numerical_steps`` of the solver,
    repeated."""
    surrogate = route_from_run(run_dir, device)
    if not isinstance(surrogate, SurrogateRoute):
        raise ValueError(f"{run_dir}: a hybrid needs a surrogate run, not a corrected solver")
    label = name or f"{Path(run_dir).name} + solver ({surrogate_steps}:{numerical_steps})"
    return HybridRoute(label, surrogate, surrogate_steps, numerical_steps)


@dataclass(frozen=True)
class Speedup:
    """A route's speed-up by one measure (``MEASURES``): the estimate, its bounds and the solvers bracketing it, or why there is none.

    ``estimate``: the cost of the solver of equal measure, interpolated between the two measured
    solver settings that bracket the route, over the route's cost; ``bounds``: those two settings'
    costs over it; ``baseline``: their names; ``note``: why there is no estimate ("" when there is one).
    """

    estimate: float | None = None
    bounds: tuple[float, float] | None = None
    baseline: str = ""
    note: str = ""


@dataclass(frozen=True)
class FrontierRow:
    """One route's figures: errors on the measurement grid (mean over members), correlation time and cost.

    ``error_at_T``: relative L2 at the last output time; ``mean_error``: averaged over the outputs;
    ``correlation_time``: time (not steps) until a field's correlation with the reference drops
    below the result's ``correlation_threshold``, mean over members, the least over fields (a member
    that never drops counts the whole horizon); ``correlation_censored``: some member of that field never dropped, so the time is a
    lower bound only; ``skill_lost_at``: the first output time (after the start) at which the
    relative L2 reaches ``NO_SKILL``, None if it never does; ``seconds_per_member_time``: wall
    seconds per member per simulated time unit (batched, warm); ``warm_up_seconds``: the excluded
    first call; ``speedups``: measure name (``MEASURES``) -> ``Speedup``, set by ``ranked`` for
    learned routes; ``on_front``: has skill over the whole horizon and is not beaten on both mean
    error and cost by another such route; ``note``: how the route failed, if it did (a blow-up).
    """

    name: str
    kind: str
    grid: tuple[int, ...]
    error_at_T: float
    mean_error: float
    correlation_time: float
    seconds_per_member_time: float
    warm_up_seconds: float
    correlation_censored: bool = False
    skill_lost_at: float | None = None
    speedups: dict[str, Speedup] = field(default_factory=dict)
    on_front: bool = False
    note: str = ""


def pareto_front(rows: Sequence, error: str | Callable = "mean_error", cost: str = "seconds_per_member_time") -> list:
    """Returns the rows that no other row dominates (error and cost both no larger, one smaller), by increasing cost.

    ``error``: an attribute name, or a function of the row (lower is better). Rows with a
    non-finite error or cost (a route that blew up) are never on the front.
    """
    value = error if callable(error) else (lambda r: getattr(r, error))
    points = [(r, value(r), getattr(r, cost)) for r in rows]
    finite = [(r, e, c) for r, e, c in points if math.isfinite(e) and math.isfinite(c)]
    front = [(r, e, c) for r, e, c in finite if not any(e2 <= e and c2 <= c and (e2 < e or c2 < c) for _, e2, c2 in finite)]
    return [r for r, _, _ in sorted(front, key=lambda p: (p[2], p[1]))]


@dataclass
class FrontierResult:
    """Every route's row, the per-time error curves and the setting they were measured in."""

    recipe: str
    reference_shape: tuple[int, ...]
    measure_shape: tuple[int, ...]
    start_time: float
    horizon: float
    times: list[float]
    members: int
    device: str
    dtype: str
    repeats: int
    rows: list[FrontierRow]
    errors: dict[str, list[float]] = field(default_factory=dict)
    correlation_threshold: float = CORRELATION_THRESHOLD

    def front(self) -> list[FrontierRow]:
        return [r for r in self.rows if r.on_front]

    def table(self) -> str:
        """Returns the rows as a Markdown table, the setting in a line above it.

        A speed-up cell holds the estimate, its bounds and the bracketing solvers, or why there is
        none ("no skill": a relative L2 at or above that of predicting zero).
        """
        head = (
            f"{self.recipe}: reference {'x'.join(map(str, self.reference_shape))} (float64), {self.members} held-out members, "
            f"t = {self.start_time:g} .. {self.start_time + self.horizon:g}; errors on {'x'.join(map(str, self.measure_shape))}; "
            f"{self.device}, {self.dtype}, medians of {self.repeats} warm calls; correlation time: above {self.correlation_threshold:g}\n\n"
            "| route | kind | grid | rel. L2 at T | mean rel. L2 | corr. time | no skill from (t - start) | s / member / time unit | "
            "speed-up vs solver of equal mean rel. L2 (bounds; solvers) | same, of equal L2 at T | same, of equal corr. time | on front |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        )
        lines = []
        for r in self.rows:
            cells = []
            for m in MEASURES:
                s = r.speedups.get(m, Speedup())
                if s.estimate is not None and s.bounds is not None:
                    cells.append(f"{s.estimate:.2f}x ({s.bounds[0]:.2f}-{s.bounds[1]:.2f}; {s.baseline.replace('solver ', '')})")
                else:
                    cells.append(s.note or "-")
            lost = "-" if r.skill_lost_at is None else f"{r.skill_lost_at:g}"
            correlated = f"{'>= ' if r.correlation_censored else ''}{r.correlation_time:.3g}"
            lines.append(
                f"| {r.name}{' (' + r.note + ')' if r.note else ''} | {r.kind} | {'x'.join(map(str, r.grid))} | {r.error_at_T:.3g} | "
                f"{r.mean_error:.3g} | {correlated} | {lost} | {r.seconds_per_member_time:.3g} | {' | '.join(cells)} | "
                f"{'yes' if r.on_front else ''} |"
            )
        return head + "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, folder: str | Path) -> list[Path]:
        """Writes ``frontier.json`` (everything) and ``frontier.md`` (the table) into ``folder``; returns the files."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "frontier.json").write_text(json.dumps(self.to_dict(), indent=1))
        (folder / "frontier.md").write_text(self.table() + "\n")
        return [folder / "frontier.json", folder / "frontier.md"]


NO_SKILL = 1.0  # the relative L2 of predicting zero: a route (or solver) this far off has no skill left to compare


def _log(value: float) -> float:
    return math.log(value) if value > 0 else -math.inf


@dataclass(frozen=True)
class Measure:
    """A figure speed-ups are read by: ``value`` (lower is better), and the scale in which log cost is linear in it between grids.

    ``why_unusable(row)`` says why a row cannot be compared by it ("" when it can);
    ``censored(row)``: the row's value is only a bound (a solver correlated to the end of the
    horizon), so such a solver may only be the upper bracket, and the estimate then takes the
    cautious end instead of interpolating towards it.
    """

    value: Callable[[FrontierRow], float]
    scale: Callable[[float], float]
    why_unusable: Callable[[FrontierRow], str]
    censored: Callable[[FrontierRow], bool] = lambda row: False


def _without_skill(error: float) -> str:
    return f"no skill (relative L2 >= {NO_SKILL:g})" if error >= NO_SKILL else ""


def _mean_error_unusable(row: FrontierRow) -> str:
    if row.skill_lost_at is not None and row.mean_error < NO_SKILL:  # a mean over times with skill and without calls noise accuracy
        return f"no skill from t = start + {row.skill_lost_at:g}"
    return _without_skill(row.mean_error)


def _correlation_unusable(row: FrontierRow) -> str:
    if row.correlation_censored:
        return "correlated to the end of the horizon"
    return "decorrelated at the first output" if row.correlation_time <= 0 else ""


MEASURES: dict[str, Measure] = {
    # Errors: solver error falls about as a power of its cost between neighbouring grids, so log cost is linear in log error.
    "mean_error": Measure(lambda r: r.mean_error, _log, _mean_error_unusable),
    "error_at_T": Measure(lambda r: r.error_at_T, _log, lambda r: _without_skill(r.error_at_T)),
    # Chaotic flows, whose errors saturate: how long a route stays correlated with the truth, a measure like Kochkov et al.'s
    # (PNAS 2021, above correlation 0.95; pdekit's default is PDE-Refiner's 0.8, ``frontier(correlation_threshold=)``), whose
    # duration grows about linearly in log resolution: log cost is linear in it.
    "correlation_time": Measure(
        lambda r: -r.correlation_time, lambda v: v, _correlation_unusable, censored=lambda r: r.correlation_censored
    ),
}


def _speedup(row: FrontierRow, rows: Sequence[FrontierRow], name: str) -> Speedup:
    """Returns ``row``'s speed-up over the solver of equal measure ``name`` (a ``MEASURES`` key), read off the solvers' cost curve.

    The solver rows measured form a cost curve; the route lies between two of its Pareto points, the
    dearest solver less accurate than the route (cost ``c_lo``) and the cheapest at least as
    accurate (``c_hi``). The solver of equal accuracy costs between the two, so the speed-up lies in
    ``[c_lo / c, c_hi / c]``; the estimate interpolates log cost linearly in the measure's
    ``scale`` between them. Quoting ``c_hi / c`` alone, as earlier pdekit did, credits a route that
    merely equals the 64² solver with the cost of the 128² one.

    A row the measure cannot compare (``Measure.why_unusable``: an error at or above ``NO_SKILL``,
    the error of predicting zero, reached by a chaotic flow after its correlation time; a mean over
    a horizon during which skill was lost; a correlation time that is only a bound, or zero) gets no
    speed-up, and such a solver is no baseline, except that a solver whose correlation time is a
    bound may be the upper bracket (its true time is longer still): ranking one decorrelated route
    against another would call noise a speed-up.
    """
    measure = MEASURES[name]
    value = measure.value(row)
    if row.kind == "solver" or not (math.isfinite(row.mean_error) and math.isfinite(value)):
        return Speedup()
    if why := measure.why_unusable(row):
        return Speedup(note=why)
    usable = [
        r for r in rows if r.kind == "solver" and math.isfinite(measure.value(r)) and (not measure.why_unusable(r) or measure.censored(r))
    ]
    solvers = [(s, measure.value(s), s.seconds_per_member_time) for s in pareto_front(usable, error=measure.value)]
    if not solvers or value > solvers[0][1]:
        # No solver setting tried is as inaccurate: a coarser one might be cheaper still, so no speed-up is claimed.
        return Speedup(note="less accurate than every solver with skill")
    as_accurate = [p for p in solvers if p[1] <= value]
    if not as_accurate:
        return Speedup(note="more accurate than every solver tried")
    upper, v_hi, c_hi = as_accurate[0]  # the front runs by increasing cost and falling value
    cost = row.seconds_per_member_time
    if v_hi == value:
        return Speedup(c_hi / cost, (c_hi / cost,) * 2, upper.name)
    lower, v_lo, c_lo = [p for p in solvers if p[1] > value][-1]
    if measure.censored(lower):
        return Speedup(note="bracketed by solvers correlated to the end of the horizon: a longer horizon would tell")
    s_lo, s_hi = measure.scale(v_lo), measure.scale(v_hi)
    if math.isfinite(s_hi) and not measure.censored(upper):
        fraction = (measure.scale(value) - s_lo) / (s_hi - s_lo)
        estimate = math.exp(math.log(c_lo) + fraction * (math.log(c_hi) - math.log(c_lo)))
    else:  # an exact solver (zero error) or one whose value is a bound: no curve to follow, so the cautious end
        estimate = c_lo
    return Speedup(estimate / cost, (c_lo / cost, c_hi / cost), f"{lower.name} .. {upper.name}")


def ranked(rows: Sequence[FrontierRow]) -> list[FrontierRow]:
    """Returns ``rows`` (as measured) with their speed-ups by every measure of ``MEASURES`` and the front.

    The front (``on_front``) is by mean error and cost, among the rows with skill over the whole
    horizon: a cheap route past its correlation time beats nothing.
    """
    skilled = [r for r in rows if not _mean_error_unusable(r)]
    front = {id(r) for r in pareto_front(skilled)}
    return [
        replace(r, speedups={m: _speedup(r, rows, m) for m in MEASURES} if r.kind != "solver" else {}, on_front=id(r) in front)
        for r in rows
    ]


def frontier_seed(recipe: Recipe) -> int:
    """Returns the seed of the frontier's held-out members: independent of the recipe's store and of ``pdekit online``'s validation
    members."""
    return derived_seed(recipe.seed, FRONTIER_STREAM, 1)


def _shape(value, ndim: int, what: str) -> tuple[int, ...]:
    shape = (int(value),) * ndim if isinstance(value, int) else tuple(int(n) for n in value)
    if len(shape) != ndim or min(shape) < 2:
        raise ValueError(f"{what} must have {ndim} sizes >= 2; got {value}")
    return shape


def _reference(
    recipe: Recipe, shape: tuple[int, ...], members: int, seed: int, needed: list[float], device: torch.device
) -> tuple[dict, dict]:
    """Returns (parameters name -> [B] float64, reference states time -> [B, C, *shape]) of the held-out members."""
    held_out = replace(recipe, members=members, seed=seed)
    parameters = {n: torch.as_tensor(v, dtype=torch.float64) for n, v in sample_parameters(held_out).items()}
    reference_recipe = on_grid(recipe, shape)
    common = dict(device=device, dtype=torch.float64, initial_field=recipe.initial_field)
    solver = SOLVERS[recipe.pde](reference_recipe, {n: v.to(device) for n, v in parameters.items()}, common)
    u0 = solver.initial_condition(members, seeds=[int(s) for s in member_seeds(held_out)])
    times = sorted(set(needed))
    trajectory = solver.solve(u0, times, recipe.dt)
    return parameters, {t: trajectory[:, j] for j, t in enumerate(times)}


def frontier(
    recipe: Recipe,
    reference_shape: Sequence[int],
    horizon: float,
    *,
    coarse_shapes: Sequence[Sequence[int]],
    dts: Sequence[float | None] | None = None,
    cfls: Sequence[float | None] | None = None,
    runs: Sequence[str | Path | Route] = (),
    members: int = 8,
    device: Device | None = None,
    start_time: float = 0.0,
    interval: float | None = None,
    measure_shape: Sequence[int] | None = None,
    dtype: torch.dtype = torch.float32,
    repeats: int = 3,
    seed: int | None = None,
    correlation_threshold: float = CORRELATION_THRESHOLD,
    reference_route: bool = True,
    progress: Callable[[str], None] | None = None,
) -> FrontierResult:
    """Returns every route's error and cost against one float64 reference solve of ``members`` held-out members.

    Routes: the recipe's solver at ``reference_shape`` (unless ``reference_route`` is False) and at
    every ``coarse_shapes`` grid, for every largest step in ``dts`` (None: the recipe's ``dt``) and CFL limit in ``cfls`` (None: the
    recipe's; 0: none, fixed steps), in ``dtype``; then every entry of ``runs``, a run directory (a surrogate, or a
    corrected solver once ``load_run`` returns one) or a ``Route`` (``HybridRoute``, ...).
    The reference is solved once, from ``t = 0`` at ``reference_shape`` in float64; every route
    starts from its state at ``start_time`` (e.g. past a spin-up), truncated to the route's grid,
    and is compared at ``start_time + interval, ..., start_time + horizon`` (``interval``: the
    recipe's output step). Errors are measured on ``measure_shape`` (default: the runs' stored grid,
    else the recipe's), as the module docstring says. ``correlation_threshold``: the correlation below
    which a route counts as decorrelated, in (-1, 1). ``reference_route``: also time the solver on
    ``reference_shape`` in ``dtype``; False leaves out the dearest row (half of a run at a 512²
    reference). It brackets only a route more accurate than every coarser grid, and may push a
    slow, inaccurate route off the front. A route that blows up gets a row with infinite
    errors and a note, and stays off the front. ``progress`` is called with each route's name.
    """
    ndim = len(recipe.shape)
    reference_shape = _shape(reference_shape, ndim, "reference_shape")
    shapes = [_shape(s, ndim, "coarse_shapes") for s in coarse_shapes]
    device = resolve_device(device)
    interval = float(interval or uniform_step((0.0, *recipe.times), f"recipe {recipe.name!r}"))
    outputs = round(horizon / interval)
    if outputs < 1 or abs(outputs * interval - horizon) > 1e-9 * horizon:
        raise ValueError(f"horizon must be a positive multiple of the output interval {interval:g}; got {horizon}")
    if start_time < 0:
        raise ValueError(f"start_time must be >= 0; got {start_time}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    if not reference_route and not shapes:
        raise ValueError("reference_route=False leaves no solver to compare with: give coarse_shapes")
    if not -1.0 < correlation_threshold < 1.0:
        raise ValueError(f"correlation_threshold must be between -1 and 1 (exclusive); got {correlation_threshold}")
    for name, given, lowest in (("dts", dts or [], "positive"), ("cfls", cfls or [], "non-negative")):
        if not all(v is None or (math.isfinite(v) and (v > 0 if lowest == "positive" else v >= 0)) for v in given):
            raise ValueError(f"{name} must be {lowest} and finite (cfl 0: fixed steps); got {list(given)}")
    settings = [(dt or recipe.dt, recipe.cfl if cfl is None else cfl or None) for dt in (dts or [None]) for cfl in (cfls or [None])]
    routes: list = [
        SolverRoute(f"solver {'x'.join(map(str, shape))}" + (f", dt {dt:g}, cfl {cfl}" if len(settings) > 1 else ""), shape, dt, cfl)
        for shape in dict.fromkeys([reference_shape, *shapes] if reference_route else shapes)
        for dt, cfl in settings
    ]
    learned = [route_from_run(r, device) if isinstance(r, (str, Path)) else r for r in runs]
    if measure_shape is None:
        grids = {tuple(r.shape) for r in learned}
        if len(grids) > 1:
            raise ValueError(f"the runs' grids differ ({sorted(grids)}); pass measure_shape to say where errors are measured")
        measure_shape = grids.pop() if grids else tuple(min(s, n) for s, n in zip(recipe.stored_grid.shape, reference_shape, strict=True))
    measure_shape = _shape(measure_shape, ndim, "measure_shape")
    if any(m > n for m, n in zip(measure_shape, reference_shape, strict=True)):
        raise ValueError(f"measure_shape {measure_shape} must not exceed reference_shape {reference_shape}")
    routes += learned

    times = [interval * (j + 1) for j in range(outputs)]
    needed = [round(start_time + t, 9) for t in times] + [round(start_time, 9)]
    for route in learned:
        inner = getattr(route, "surrogate", route)
        if isinstance(inner, SurrogateRoute):
            k = getattr(inner.stepper, "input_steps", 1)
            earliest = start_time - (k - 1) * inner.dt
            if earliest < -1e-9:
                raise ValueError(
                    f"route {route.name!r} needs {k} input states, from t={earliest:g}: raise start_time to at least {(k - 1) * inner.dt:g}"
                )
            needed += [round(start_time - j * inner.dt, 9) for j in range(k)]
    parameters, reference = _reference(recipe, reference_shape, members, frontier_seed(recipe) if seed is None else seed, needed, device)
    problem = Problem(recipe, reference_shape, parameters, reference, start_time, times, interval, device, dtype)

    truth = problem.fields(torch.stack([problem.state(start_time + t) for t in times], dim=1), reference_shape)
    truth = fourier_resample(truth, measure_shape)
    channels = [(n, len(PDES[recipe.pde].field(n).channels(ndim))) for n in recipe.field_names]
    rows, curves = [], {}
    for route in routes:
        if progress is not None:
            progress(route.name)
        note = ""
        try:
            run = route.prepare(problem)
            output, seconds, warm_up = time_call(run, device, repeats)
            prediction = fourier_resample(output.to(torch.float64), measure_shape)
        except BlowUpError as error:
            note, prediction, seconds, warm_up = f"blew up: {error}".split(";")[0], None, math.inf, math.inf
        if prediction is not None and not torch.isfinite(prediction).all():
            note, prediction = "non-finite output", None
        if prediction is None:
            rows.append(
                FrontierRow(
                    route.name, route.kind, tuple(route.shape), math.inf, math.inf, 0.0, seconds / (members * horizon), warm_up, note=note
                )
            )
            continue
        per_field = relative_l2_per_field(prediction, truth, channels)  # {name: [B, T]}
        per_time = torch.stack(list(per_field.values())).mean(0).mean(0)  # [T]: mean over fields, then members
        correlation, first = [], 0
        for _, n in channels:
            steps = correlation_time(prediction[:, :, first : first + n], truth[:, :, first : first + n], correlation_threshold)
            correlation.append((steps.double().mean().item() * interval, bool((steps == outputs).any())))
            first += n
        curves[route.name] = per_time.tolist()
        lost = [t for t, e in zip(times, curves[route.name], strict=True) if e >= NO_SKILL]
        rows.append(
            FrontierRow(
                route.name,
                route.kind,
                tuple(route.shape),
                per_time[-1].item(),
                per_time.mean().item(),
                min(correlation)[0],
                seconds / (members * horizon),
                warm_up,
                correlation_censored=min(correlation)[1],
                skill_lost_at=lost[0] if lost else None,
            )
        )

    finished = ranked(rows)
    return FrontierResult(
        recipe.name,
        reference_shape,
        measure_shape,
        start_time,
        horizon,
        times,
        members,
        str(device),
        str(dtype).replace("torch.", ""),
        repeats,
        finished,
        curves,
        correlation_threshold=correlation_threshold,
    )
