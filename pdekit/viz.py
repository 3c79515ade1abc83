"""Figures of rollouts: fields, error over time, spectra (matplotlib, written to files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from pdekit.rollout.evaluate import energy_spectrum

if TYPE_CHECKING:  # the figures read results of the runs layer below; importing it here would cost every import of viz
    from pdekit.runs.evaluate import RolloutEvaluation
    from pdekit.runs.frontier import FrontierResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, safe in workers and CI
    import matplotlib.pyplot as plt

    return plt


def plot_fields(
    prediction: torch.Tensor,
    reference: torch.Tensor,
    times: list[float],
    path: str | Path,
    member: int = 0,
    columns: int = 4,
    channel: int = 0,
    name: str = "",
) -> Path:
    """Writes reference, prediction and their difference of one channel at ``columns`` times of one member; returns the file.

    ``prediction, reference: [B, T, C, *S]`` with one (line plots) or two (images) space axes.
    """
    plt = _pyplot()
    steps = sorted(set(torch.linspace(0, len(times) - 1, min(columns, len(times))).round().long().tolist()))
    figure, axes = plt.subplots(3, len(steps), figsize=(3 * len(steps), 8), squeeze=False)
    two_d = reference.ndim == 5
    limit = reference[member, :, channel].abs().max().item()
    for column, n in enumerate(steps):
        truth, guess = reference[member, n, channel], prediction[member, n, channel]
        rows = (("solver", truth), ("surrogate", guess), ("difference", guess - truth))
        for row, (label, field) in enumerate(rows):
            ax = axes[row, column]
            if two_d:
                image = ax.imshow(field.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, origin="lower")
                ax.set_xticks([]), ax.set_yticks([])
            else:
                ax.plot(field.numpy())
                ax.set_ylim(-limit * 1.1, limit * 1.1)
            ax.set_title(f"{name + ' ' if name else ''}{label}, t = {times[n]:.3g}", fontsize=9)
    if two_d:
        figure.colorbar(image, ax=axes, shrink=0.6)
    return _save(figure, path)


def plot_error_over_time(curves: dict[str, tuple[list[float], list[float]]], path: str | Path, ylabel: str = "relative L2 error") -> Path:
    """Writes one line per ``name -> (times, errors)`` on a log scale; returns the file."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    for name, (times, errors) in curves.items():
        ax.semilogy(times, errors, label=name)
    ax.set_xlabel("time")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(figure, path)


def plot_spectra(
    prediction: torch.Tensor, reference: torch.Tensor, path: str | Path, step: int = -1, channels: tuple[str, ...] = ()
) -> Path:
    """Writes the energy spectra of every channel of prediction and reference ``[B, T, C, *S]`` at ``step`` (mean over members); returns the
    file."""
    plt = _pyplot()
    dim = reference.ndim - 3
    names = channels or tuple(f"channel {c}" for c in range(reference.shape[2]))
    figure, ax = plt.subplots(figsize=(6, 4))
    for c, name in enumerate(names):
        for label, trajectory, style in (("solver", reference, "-"), ("surrogate", prediction, "--")):
            k, spectrum = energy_spectrum(trajectory[:, step, c], dim)
            ax.loglog(k[1:].numpy(), spectrum.mean(0)[1:].numpy(), style, label=f"{label}{'' if len(names) == 1 else ', ' + name}")
    ax.set_xlabel("wavenumber |k|")
    ax.set_ylabel("E(k)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(figure, path)


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    figure.clf()
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path


def rollout_figures(result: RolloutEvaluation, folder: str | Path) -> list[Path]:
    """Writes the figures of a ``RolloutEvaluation`` (fields, error over time, spectra) into ``folder``; returns the files.

    With several channels, ``fields_<channel>.png`` per channel and one error curve per field.
    """
    folder = Path(folder)
    channels = tuple(result.channels) or ("",)
    single = len(channels) == 1
    fields = [
        plot_fields(
            result.prediction,
            result.reference,
            result.times,
            folder / ("fields.png" if single else f"fields_{name}.png"),
            channel=c,
            name="" if single else name,
        )
        for c, name in enumerate(channels)
    ]
    curves = {"surrogate": (result.times, result.l2_per_time)}
    if len(result.fields_per_time) > 1:
        curves.update({f"surrogate, {name}": (result.times, errors) for name, errors in result.fields_per_time.items()})
    return [
        *fields,
        plot_error_over_time(curves, folder / "error.png"),
        plot_spectra(result.prediction, result.reference, folder / "spectra.png", channels=() if single else channels),
    ]


def plot_frontier(result: FrontierResult, path: str | Path, error: str = "mean_error") -> Path:
    """Writes every route of a ``FrontierResult`` as error against cost (log-log), one marker per kind, the Pareto front drawn; returns the
    file.

    ``error`` is the row attribute on the vertical axis (``"mean_error"`` or ``"error_at_T"``); the
    front is the staircase through the routes with skill (``MEASURES[error].unusable``) that no other
    such route beats on both; a dashed line marks the error of predicting zero. Routes that blew up
    (infinite error) or scored exactly zero cannot sit on a log axis and are listed in the title.
    """
    if error not in ("mean_error", "error_at_T"):
        raise ValueError(f"error must be 'mean_error' or 'error_at_T' (an error axis); got {error!r}")
    plt = _pyplot()
    markers = {"solver": ("o", "tab:blue"), "surrogate": ("s", "tab:orange"), "hybrid": ("^", "tab:green"), "correction": ("D", "tab:red")}
    figure, ax = plt.subplots(figsize=(7, 5))
    shown = [r for r in result.rows if 0 < getattr(r, error) < float("inf") and 0 < r.seconds_per_member_time < float("inf")]
    left_out = [r.name for r in result.rows if r not in shown]
    for kind in dict.fromkeys(r.kind for r in shown):
        rows = [r for r in shown if r.kind == kind]
        marker, colour = markers.get(kind, ("x", "tab:gray"))
        ax.loglog(
            [r.seconds_per_member_time for r in rows], [getattr(r, error) for r in rows], marker, color=colour, linestyle="none", label=kind
        )
    for r in shown:
        ax.annotate(r.name, (r.seconds_per_member_time, getattr(r, error)), textcoords="offset points", xytext=(4, 4), fontsize=7)
    from pdekit.runs.frontier import MEASURES, NO_SKILL, pareto_front

    # The front is drawn through routes with skill only (``ranked``'s rule for the mean error): a cheap route past its
    # correlation time beats nothing.
    front = pareto_front([r for r in shown if not MEASURES[error].why_unusable(r)], error=error)
    low, high = ax.get_ylim()
    if low <= NO_SKILL <= high:  # only where some route comes near it: the line must not squash a plot of small errors
        ax.axhline(NO_SKILL, color="gray", linestyle="--", linewidth=0.8, label="no skill (predicting zero)")
        ax.set_ylim(low, high)
    if front:
        ax.step(
            [r.seconds_per_member_time for r in front],
            [getattr(r, error) for r in front],
            where="post",
            color="black",
            linewidth=1,
            alpha=0.6,
            label="Pareto front",
        )
    ax.set_xlabel("wall seconds per member per time unit (batched, warm)")
    ax.set_ylabel({"mean_error": "relative L2, mean over the horizon", "error_at_T": "relative L2 at T"}.get(error, error))
    title = f"{result.recipe}: errors on {'x'.join(map(str, result.measure_shape))}, {result.device}"
    ax.set_title(title + (f"\nnot shown: {', '.join(left_out)}" if left_out else ""), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(figure, path)
