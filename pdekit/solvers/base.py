"""The Solver interface, and the pseudo-spectral machinery the solvers share.

Every solver advances a batch of ensemble members at once: states are ``[batch, channel, *space]``
and per-member parameters are floats or tensors of shape ``[batch]``. A spectral solver works in
rfft space between outputs, so a trajectory costs no transforms beyond those of its right-hand
side, and it never synchronises with the device inside a step.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Protocol, runtime_checkable

import torch

from pdekit.devices import Device, default_device, resolve_device  # noqa: F401  (default_device: re-exported)
from pdekit.grid import Grid
from pdekit.solvers.fields import StateSampler, draw_seeds
from pdekit.solvers.time_stepping import Nonlinear, Scheme, make_scheme


class BlowUpError(FloatingPointError):
    """A simulation produced non-finite values. ``members`` lists the batch indices affected.

    Args:
        message: what happened, for the user.
        members: the batch indices of the members that hold NaN or infinity.
        time: the output time at which they were found; NaN where no time applies.
    """

    def __init__(self, message: str, members: list[int], time: float):
        super().__init__(message)
        self.members = members
        self.time = time


@runtime_checkable
class Solver(Protocol):
    """What every pdekit solver (and ``rollout.HybridSolver``) offers.

    ``initial_condition(batch, generator, seeds=...)`` draws states ``[batch, channel, *space]``,
    ``step(u, dt)`` advances them by ``dt``, ``time_derivative(u)`` is ``du/dt`` at ``u``, and
    ``solve(u0, t_out, dt)`` records the trajectory ``[batch, time, channel, *space]`` at ``t_out``.
    Code that drives any solver takes a ``Solver``; ``SpectralSolver.solve`` also takes an
    ``on_output`` callback, which this protocol leaves out so that surrogates need not offer it.
    """

    grid: Grid
    channels: int

    def initial_condition(
        self, batch: int, generator: torch.Generator | None = None, *, seeds: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Returns ``batch`` random initial states ``[batch, channel, *space]``.

        Args:
            batch: the number of states.
            generator: draws the member seeds when ``seeds`` is None.
            seeds: one seed per member; member ``i`` then depends on ``seeds[i]`` alone.

        Returns:
            ``[batch, channel, *space]``.
        """
        ...

    def step(self, u: torch.Tensor, dt: float) -> torch.Tensor:
        """Returns the states one step of ``dt`` after ``u``.

        Args:
            u: states ``[batch, channel, *space]``.
            dt: the step, positive.

        Returns:
            ``[batch, channel, *space]``.
        """
        ...

    def time_derivative(self, u: torch.Tensor) -> torch.Tensor:
        """Returns ``du/dt`` at ``u``.

        Args:
            u: states ``[batch, channel, *space]``.

        Returns:
            ``[batch, channel, *space]``.
        """
        ...

    def solve(self, u0: torch.Tensor, t_out: Sequence[float] | torch.Tensor, dt: float) -> torch.Tensor:
        """Returns the trajectory from ``u0`` at ``t = 0`` recorded at times ``t_out``.

        Args:
            u0: the initial states ``[batch, channel, *space]``.
            t_out: the output times, non-decreasing and ``>= 0``.
            dt: the largest step.

        Returns:
            ``[batch, time, channel, *space]``.
        """
        ...


def checked_parameter(
    name: str, value: float | torch.Tensor, *, allow_zero: bool = False, dtype: torch.dtype = torch.float64, device: Device | None = None
) -> torch.Tensor:
    """Returns ``value`` as a tensor of shape ``[]`` or ``[batch]``, checked to be positive (or non-negative) and finite.

    Raises ValueError naming the parameter and the first offending member otherwise.
    """
    tensor = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
    if tensor.ndim > 1:
        raise ValueError(f"{name} must be a float or a tensor of shape [batch]; got shape {tuple(tensor.shape)}")
    flat = tensor.reshape(-1)
    bad = ~torch.isfinite(flat) | ((flat < 0) if allow_zero else (flat <= 0))
    if bad.any():
        i = int(bad.nonzero()[0])
        where = f" (member {i})" if tensor.ndim == 1 else ""
        expected = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {expected} and finite; got {flat[i].item():g}{where}")
    return tensor.to(device=device, dtype=dtype)


class SpectralSolver(ABC):
    """Base of the pseudo-spectral solvers: ``du/dt = L u + N(u)`` on a periodic grid.

    Subclasses set ``channels`` and the initial-field sampler, and implement ``linear_symbol``
    (the diagonal symbol ``L``, real, float64, broadcastable to ``[batch, channel, *spectrum]``) and
    ``nonlinear_term`` (``N`` in rfft space; linear problems set ``has_nonlinear_term = False``). Advective solvers also implement
    ``max_speed_per_spacing`` to enable CFL control.

    Args:
        grid: the periodic grid.
        scheme: time-stepping scheme name or instance (see ``pdekit.solvers.time_stepping``).
        cfl: if set, ``solve`` shrinks the step so that the CFL number stays at most ``cfl``; the step
            is chosen once per output interval, from the state at its start (one device sync each).
        device: where states live; None is ``default_device()`` (CUDA when present).
        dtype: ``torch.float32`` or ``torch.float64``.
        initial_field: the sampler ``initial_condition`` draws states from.

    Raises:
        ValueError: ``dtype`` is neither float type, ``cfl`` is not positive, or ``scheme`` is unknown.
    """

    channels: int = 1
    has_nonlinear_term: bool = True

    def __init__(
        self,
        grid: Grid,
        *,
        scheme: str | Scheme,
        cfl: float | None,
        device: Device | None,
        dtype: torch.dtype,
        initial_field: StateSampler,
    ):
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{type(self).__name__} dtype must be torch.float32 or torch.float64; got {dtype}")
        if cfl is not None and not cfl > 0:
            raise ValueError(f"cfl must be positive or None; got {cfl}")
        self.grid = grid
        self.scheme = make_scheme(scheme)
        self.cfl = cfl
        self.device = resolve_device(device)
        self.dtype = dtype
        self.initial_field = initial_field
        self.batch_size: int | None = None
        self._cache: tuple[float, tuple[torch.Tensor, ...]] | None = None

    # ----- what subclasses define -------------------------------------------------------------
    @abstractmethod
    def linear_symbol(self) -> torch.Tensor:
        """Returns the diagonal symbol ``L``: real, float64, broadcastable to ``[batch, channel, *spectrum]``.

        Returns:
            ``L``, on the solver's device.
        """

    def nonlinear_term(self, v: torch.Tensor) -> torch.Tensor:
        """Returns ``N(v)`` in rfft space. Linear problems set ``has_nonlinear_term = False``.

        Args:
            v: the state's rfft ``[batch, channel, *spectrum]``.

        Returns:
            ``N(v)``: ``[batch, channel, *spectrum]``.

        Raises:
            TypeError: the problem is linear.
        """
        raise TypeError(f"{type(self).__name__} is linear: it has no nonlinear term")

    @property
    def _nonlinear(self) -> Nonlinear | None:
        return self.nonlinear_term if self.has_nonlinear_term else None

    def max_speed_per_spacing(self, v: torch.Tensor) -> torch.Tensor:
        """Returns ``max_x sum_i |velocity_i| / dx_i`` per member, so that ``CFL = dt * result``.

        Args:
            v: the state's rfft ``[batch, channel, *spectrum]``.

        Returns:
            ``[batch]``.

        Raises:
            TypeError: the problem has no advection.
        """
        raise TypeError(f"{type(self).__name__} has no advection: CFL control does not apply")

    # ----- helpers for subclasses ---------------------------------------------------------------
    def _per_member(self, name: str, value: float | torch.Tensor, *, allow_zero: bool = False) -> torch.Tensor:
        """Returns a checked parameter, viewed as ``[batch, 1, *1]`` or ``[]``, on the solver's device."""
        tensor = checked_parameter(name, value, allow_zero=allow_zero, device=self.device)
        if tensor.ndim == 1:
            self._set_batch(name, tensor.shape[0])
            tensor = tensor.view(-1, *([1] * (1 + self.grid.ndim)))
        return tensor

    def _set_batch(self, name: str, batch: int) -> None:
        if self.batch_size is not None and self.batch_size != batch:
            raise ValueError(f"{name} has {batch} members but another parameter has {self.batch_size}")
        self.batch_size = batch

    @property
    def complex_dtype(self) -> torch.dtype:
        """The dtype of the solver's spectra: complex64 for float32 states, complex128 for float64."""
        return torch.complex64 if self.dtype == torch.float32 else torch.complex128

    def to_spectral(self, u: torch.Tensor) -> torch.Tensor:
        """Returns the rfft of ``u [..., *space]`` over the grid's axes: ``[..., *spectrum]``.

        Args:
            u: fields ``[..., *space]``.

        Returns:
            ``[..., *spectrum]``, complex.
        """
        return torch.fft.rfftn(u, dim=self.grid.dims)

    def to_physical(self, v: torch.Tensor) -> torch.Tensor:
        """Returns the field ``[..., *space]`` whose rfft is ``v [..., *spectrum]``.

        Args:
            v: spectra ``[..., *spectrum]``.

        Returns:
            ``[..., *space]``, real.
        """
        return torch.fft.irfftn(v, s=self.grid.shape, dim=self.grid.dims)

    # ----- the Solver interface -----------------------------------------------------------------
    def initial_condition(
        self, batch: int, generator: torch.Generator | None = None, *, seeds: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Returns ``batch`` random initial states ``[batch, channel, *space]``.

        Member ``i`` is drawn from ``seeds[i]`` when seeds are given (so it is the same in any batch
        split); otherwise per-member seeds are drawn from ``generator``.

        Args:
            batch: the number of states.
            generator: draws the member seeds when ``seeds`` is None; None is torch's global generator.
            seeds: one seed per member.

        Returns:
            ``[batch, channel, *space]`` with the solver's dtype, on its device.

        Raises:
            ValueError: ``seeds`` does not hold ``batch`` seeds.
        """
        if seeds is None:
            seeds = draw_seeds(batch, generator)
        elif len(seeds) != batch:
            raise ValueError(f"initial_condition got {len(seeds)} seeds for a batch of {batch}")
        return self.initial_field(self.grid, seeds, dtype=self.dtype, device=self.device)

    def check_state(self, u: torch.Tensor, name: str = "u") -> None:
        """Raises ValueError if ``u`` is not a state of this solver (shape, dtype, device).

        Args:
            u: the tensor to check, expected ``[batch, channel, *space]``.
            name: what the error message calls it.

        Raises:
            TypeError: ``u`` is not a tensor.
            ValueError: its shape, batch, dtype or device is not the solver's.
        """
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(u).__name__}")
        expected = ("batch", self.channels, *self.grid.shape)
        if u.ndim != 2 + self.grid.ndim or tuple(u.shape[1:]) != expected[1:]:
            raise ValueError(f"{name} has shape {tuple(u.shape)}; {type(self).__name__} expects [batch, channel, *space] = {expected}")
        if self.batch_size is not None and u.shape[0] != self.batch_size:
            raise ValueError(f"{name} has {u.shape[0]} members but the solver's per-member parameters have {self.batch_size}")
        if u.dtype != self.dtype:
            raise ValueError(f"{name} has dtype {u.dtype}; the solver was built for {self.dtype}")
        if u.device != self.device:
            raise ValueError(f"{name} is on {u.device}; the solver was built for {self.device}")

    def check_finite(self, u: torch.Tensor, time: float | None = None, name: str = "u") -> None:
        """Raises BlowUpError naming the members of ``u`` that hold NaN or infinity; syncs with the device once.

        Args:
            u: states ``[batch, ...]``.
            time: the time the message names (and the error carries), if any.
            name: what the message calls ``u``.

        Raises:
            BlowUpError: some member of ``u`` is not finite.
        """
        bad = ~torch.isfinite(u).flatten(1).all(dim=1)
        if bad.any():
            members = bad.nonzero().flatten().tolist()
            when = "" if time is None else f" at t={time:g}"
            raise BlowUpError(f"{name} holds NaN or infinity{when} in members {members}", members, math.nan if time is None else time)

    def _coefficients(self, dt: float) -> tuple[torch.Tensor, ...]:
        # One cached step size: solve() uses the same dt over and over, and recomputing the
        # coefficients (32 complex exponentials per mode for ETDRK4) would cost more than a step.
        if self._cache is not None and math.isclose(self._cache[0], dt, rel_tol=1e-13):
            return self._cache[1]
        coefficients = tuple(c.to(self.dtype) for c in self.scheme.coefficients(self.linear_symbol(), dt))
        self._cache = (dt, coefficients)
        return coefficients

    def step(self, u: torch.Tensor, dt: float) -> torch.Tensor:
        """Returns the state one step of size ``dt`` after ``u``.

        ``u`` is deliberately not checked for NaN or infinity: that
        check reads a result back from the device (one synchronisation), and ``step`` is the inner
        call of user time loops, where a synchronisation per step would stall a GPU's queue of
        kernel launches and cost most on small grids, where a step is a few microseconds of
        kernels. A non-finite member is not hidden by the step: the Fourier transform spreads it
        over the whole field, so that member's output is non-finite everywhere (the other members
        are untouched). Check where you record states (``check_finite``, one synchronisation), as
        ``solve`` does once per output time.

        Args:
            u: states ``[batch, channel, *space]`` with the solver's dtype, on its device.
            dt: the step, positive and finite.

        Returns:
            ``[batch, channel, *space]``.

        Raises:
            ValueError: ``dt`` is not positive and finite, or ``u`` is not a state of this solver.
        """
        self.check_state(u)
        dt = float(dt)
        if not 0 < dt < math.inf:  # false for NaN too
            raise ValueError(f"dt must be positive and finite; got {dt}")
        v = self.scheme.step(self.to_spectral(u), self._coefficients(dt), self._nonlinear)
        return self.to_physical(v)

    def time_derivative(self, u: torch.Tensor) -> torch.Tensor:
        """Returns the semi-discrete right-hand side ``du/dt = L u + N(u)`` at ``u``.

        Checks ``u`` for NaN and infinity (one device synchronisation: ``time_derivative`` serves
        targets and diagnostics, not the time loop).

        Args:
            u: states ``[batch, channel, *space]`` with the solver's dtype, on its device.

        Returns:
            ``du/dt``: ``[batch, channel, *space]``.

        Raises:
            ValueError: ``u`` is not a state of this solver.
            BlowUpError: some member of ``u`` holds NaN or infinity; it names them.
        """
        self.check_state(u)
        self.check_finite(u)
        return self.right_hand_side(u)

    def right_hand_side(self, u: torch.Tensor) -> torch.Tensor:
        """Returns ``du/dt = L u + N(u)`` at the finite states ``u [batch, channel, *space]``, unchecked: no device synchronisation.

        For loops that already know their states are finite (the hybrid solver's residual monitor);
        everything else calls ``time_derivative``.
        """
        v = self.to_spectral(u)
        dv = self.linear_symbol().to(self.dtype) * v
        if self.has_nonlinear_term:
            dv = dv + self.nonlinear_term(v)
        return self.to_physical(dv)

    def cfl_number(self, u: torch.Tensor, dt: float) -> torch.Tensor:
        """Returns the CFL number ``dt * max sum_i |velocity_i| / dx_i`` of each member: ``[batch]``.

        Args:
            u: states ``[batch, channel, *space]``.
            dt: the time step.

        Returns:
            ``[batch]``.

        Raises:
            TypeError: the solver has no advection.
        """
        self.check_state(u)
        return dt * self.max_speed_per_spacing(self.to_spectral(u))

    def solve(
        self,
        u0: torch.Tensor,
        t_out: Sequence[float] | torch.Tensor,
        dt: float,
        *,
        on_output: Callable[[float], None] | None = None,
    ) -> torch.Tensor:
        """Returns the trajectory from ``u0`` at ``t = 0`` recorded at times ``t_out``: ``[batch, time, channel, *space]``.

        Steps of at most ``dt`` land exactly on every output time (each interval is split into equal
        steps); exact-in-time schemes take one step per interval. With ``cfl`` set, the step also keeps
        the CFL number at most ``cfl``.

        Args:
            u0: the initial states, ``[batch, channel, *space]``, with the solver's dtype and device.
            t_out: the output times, non-decreasing and ``>= 0`` (a time ``0`` records ``u0``).
            dt: the largest time step, positive and finite.
            on_output: called with each output time (as given in ``t_out``, in order) once the state at
                that time is recorded and checked finite; for progress reports. It adds no device
                synchronisation beyond the finiteness check ``solve`` makes at every output time.

        Returns:
            The states at the times ``t_out``: ``[batch, time, channel, *space]``.

        Raises:
            ValueError: ``u0`` is not a state of this solver, ``t_out`` is empty, decreasing, negative
                or non-finite, or ``dt`` is not positive and finite.
            BlowUpError: a member became non-finite; it names the members, the interval and the CFL
                number at its start.
        """
        self.check_state(u0, "u0")
        times = [float(t) for t in (t_out.tolist() if isinstance(t_out, torch.Tensor) else t_out)]
        if not times or times[0] < 0 or any(b < a for a, b in pairwise(times)) or not all(map(math.isfinite, times)):
            raise ValueError(f"t_out must be a non-empty, non-decreasing sequence of times >= 0; got {times}")
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"dt must be positive and finite; got {dt}")
        self.check_finite(u0, 0.0, "u0")

        out = torch.empty((u0.shape[0], len(times), *u0.shape[1:]), dtype=self.dtype, device=self.device)
        nonlinear = self._nonlinear
        v = v_initial = self.to_spectral(u0)
        t = 0.0
        for k, t_next in enumerate(times):
            interval = t_next - t
            if interval > 0:
                step_size = self._step_size(v, dt)
                n_steps = 1 if self.scheme.exact else max(1, math.ceil(interval / step_size - 1e-9))
                coefficients = self._coefficients(interval / n_steps)
                v_start = v
                for _ in range(n_steps):
                    v = self.scheme.step(v, coefficients, nonlinear)
            out[:, k] = self.to_physical(v)
            if interval > 0:
                self._check_interval(out[:, k], (v_initial, v_start), t, t_next, interval / n_steps)
            if on_output is not None:
                on_output(t_next)
            t = t_next
        return out

    def _step_size(self, v: torch.Tensor, dt: float) -> float:
        if self.cfl is None:
            return dt
        speed = float(self.max_speed_per_spacing(v).max())
        return dt if speed == 0 else min(dt, self.cfl / speed)

    def _check_interval(self, u: torch.Tensor, v_checkpoints, t0: float, t1: float, dt: float) -> None:
        try:
            self.check_finite(u, t1)
        except BlowUpError as error:
            message = (
                f"{type(self).__name__}: the state became non-finite between t={t0:g} and t={t1:g} in members "
                f"{error.members}, with dt={dt:g} ({self.scheme.name})"
            )
            try:
                initial, start = (float((dt * self.max_speed_per_spacing(v)).max()) for v in v_checkpoints)
                message += (
                    f"; the CFL number was {initial:.3g} at t=0 and {start:.3g} at t={t0:g}:"
                    " use a smaller dt, or pass cfl=0.5 for adaptive steps"
                )
            except TypeError:
                message += ": use a smaller dt"
            raise BlowUpError(message, error.members, t1) from None
