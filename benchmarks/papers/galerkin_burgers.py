"""The Galerkin transformer's Burgers row (Cao, NeurIPS 2021), on the Burgers data of ``fno_burgers.py``: n = 2048, 100 epochs.

The authors' ``examples/ex1_burgers.py`` with ``config.yml``'s ``ex1_burgers`` (scaomath/galerkin-transformer):
width 96, 4 encoder layers of one head, feed-forward width 192, a spectral regressor of width 48
with 16 modes and 2 layers; Xavier gain 1e-2 plus 1e-2 on the diagonal of ``W^Q, W^K, W^V``; Adam with
``OneCycleLR(max_lr=1e-3, pct_start=0.2, div_factor=1e4, final_div_factor=1e4)`` stepped per batch,
gradients clipped at norm 0.999, 100 epochs; their loss ``WeightedL2Loss(regularizer=True, gamma=0.1)``
(``pdekit.training.losses.galerkin_h1``); 1024 training and 100 test pairs. Batch 4 for the Galerkin
type (their README's command for it at n = 2048), 8 for the Fourier type (their default run).

The gain is 1e-2 for both types: ``config.yml`` gives the Fourier type 1e-3, but ``ex1_burgers.py``
overwrites it with its ``--xavier-init`` default, 1e-2, so their default run has 1e-2 (pdekit's
``GalerkinConfig`` keeps 1e-3 for the Fourier type, the README's explicit commands' value).

Published: their README gives "about 1e-3" after 100 epochs ("about 7e-4" after 500) for the default,
Fourier-type run at n = 2048; the stored outputs of their ``eval/ex1_burgers_eval.ipynb`` give 1.123e-3
for a Fourier-type model at n = 2048 and 1.017e-3 for a Galerkin-type model trained and evaluated at
n = 8192. No Galerkin-type figure at n = 2048 is published; the script sets the 8192 one beside it.

The data are those of ``fno_burgers.py``, solved at 2048 points, where the refinement check of that
script holds (the authors subsample the FNO authors' 8192-point set by 4 to the same grid): by
default (``--data published``) the setting of the published ``burgers_data_R10.mat`` that these
figures were measured on; ``--data generator`` is the harder setting of the FNO authors' generator
script as written, on which the rows before 2026-12-03 were measured.

    python benchmarks/papers/galerkin_burgers.py --run runs/galerkin_burgers          # resumable
    python benchmarks/papers/galerkin_burgers.py --epochs 1 --train 16 --test 8 --run /tmp/g   # a smoke run
    python benchmarks/papers/galerkin_burgers.py --device cuda [--attention fourier]           # on a GPU (gpu_check.sh's *_burgers parts)
    python benchmarks/papers/galerkin_burgers.py --run DIR --evaluate      # scores DIR's checkpoint, training nothing
                                                          # (give the run's --train, --test, --seed, --data, --attention, --points)
    python benchmarks/papers/galerkin_burgers.py --points 512 --epochs 25 --run DIR   # the short setting of RESULTS' comparisons
    python benchmarks/papers/galerkin_burgers.py --attention-dropout 0 --run DIR       # without the authors' attention dropout

The figure is the test relative L2 on ``--points`` (2048 by default), the grid the model trains on:
512 is every 4th point of the data, 8192 the data spectrally interpolated (exact to the solve's accuracy).
Zero-shot figures on the other two grids are printed beside it; the paper trains a model at each
resolution, so those are not its rows.

A Galerkin-type epoch (256 steps of batch 4) took 80-180 s on one thread of the 2-core CPUs measured
(the machines differ 2x) and a median 52 s on two (2026-12-03: 100 epochs in 87 min); a Fourier-type
step costs about 3.4x a Galerkin-type one at the same batch (its attention is quadratic in n); at n = 512 a
Fourier-type epoch (128 steps of batch 8) took a median 56 s on one thread (2026-12-06: 100 epochs in 94 min).
``--run`` resumes a run epoch by epoch, from a run directory that must outlive the machine; it records ``--attention``,
``--points``, ``--attention-dropout`` and ``--batch-size`` and refuses to resume or ``--evaluate`` with others.

The authors' code drops half of every attention matrix's entries at every forward pass, in training and evaluation alike;
here ``--attention-dropout 0.5`` (the default) drops them in training only (``GalerkinAttention`` says why). Without it a
100-epoch run diverged at the peak of the one-cycle rate; with it the same seed reached 1.38e-3 (``benchmarks/RESULTS.md``).
The model's own default (``GalerkinConfig.attention_dropout``) is 0.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from fno_burgers import (
    DATA,
    DATA_SETTINGS,
    POINTS,
    add_data_argument,
    burgers_pairs,
    checkpointed,
    other_runs_data,
    placement,
    relative_l2,
)  # the same data setting, in this folder
from torch.utils.data import DataLoader, TensorDataset

from pdekit.allocator import retain_freed_memory_unless_disabled
from pdekit.arguments import device_type
from pdekit.atomic import atomic_file
from pdekit.cli import command_logging
from pdekit.grid import fourier_resample
from pdekit.models import build_model
from pdekit.training import Trainer, TrainerConfig

# The stored outputs of the authors' eval/ex1_burgers_eval.ipynb (their trained models, epochs not stated there; the README
# gives "about 1e-3" after 100 epochs for the default, Fourier-type run). No Galerkin-type figure at n = 2048 is published.
PUBLISHED = {
    "fourier": (1.123e-3, "scaomath/galerkin-transformer, eval/ex1_burgers_eval.ipynb: Fourier type, n = 2048"),
    "galerkin": (1.017e-3, "scaomath/galerkin-transformer, eval/ex1_burgers_eval.ipynb: Galerkin type, trained and evaluated at n = 8192"),
}
GRIDS = (512, 2048, 8192)  # the paper's resolutions: --points trains on one, the others are scored zero-shot
SETTINGS = "settings.json"  # in a run directory: the options the data check does not cover (--attention, --points, ...)
CHUNK = 4  # test pairs per forward pass: the Fourier type's n x n attention at 8192 points is 268 MB a pair


def galerkin(attention: str, attention_dropout: float = 0.0) -> torch.nn.Module:
    """Returns the authors' Burgers model (``config.yml``, ``ex1_burgers``, with ``ex1_burgers.py``'s Xavier gain 1e-2) with
    ``attention`` ``"galerkin"`` or ``"fourier"`` and ``attention_dropout`` on the attention matrix in training."""
    return build_model(
        "galerkin",
        1,
        1,
        dim=1,
        width=96,
        heads=1,
        layers=4,
        attention=attention,
        regressor_width=48,
        regressor_modes=16,
        xavier_gain=1e-2,
        attention_dropout=attention_dropout,
    )


def on_grid(u: torch.Tensor, n: int) -> torch.Tensor:
    """Returns the data ``u [..., POINTS]`` on ``n`` points as float32: every ``POINTS // n``-th value on a coarser grid, spectrally
    interpolated on a finer one."""
    return (fourier_resample(u, (n,)) if n > POINTS else u[..., :: POINTS // n]).float()


def report(model: torch.nn.Module, u0: torch.Tensor, u1: torch.Tensor, train: int, points: int, attention: str, label: str) -> None:
    """Prints the test relative L2 of ``model`` on members ``train ..`` at ``points``, the grid it trained on, beside the published
    figure for ``attention``, and zero-shot on the other ``GRIDS``."""
    model.eval()
    grids = (points, *(n for n in GRIDS if n != points))
    errors = {n: relative_l2(model, on_grid(u0[train:], n), on_grid(u1[train:], n), CHUNK) for n in grids}
    published, source = PUBLISHED[attention]
    print(
        f"{label}, {train} training pairs: test relative L2 {errors[points]:.2e} at n={points}; published {published:.3e} ({source}): "
        f"{errors[points] / published:.2f}x; zero-shot " + ", ".join(f"{error:.2e} at n={n}" for n, error in errors.items() if n != points)
    )


def settings_conflict(run: Path | None, given: dict[str, object], record: bool = True) -> str | None:
    """Returns why ``run`` was made with other ``given`` options (``{"attention": ..., "points": ...}``, by their option names
    without dashes) than its ``settings.json`` records, or ``None``; with ``record``, a run without the file gets it (atomically)."""
    if run is None:
        return None
    path = run / SETTINGS
    if not path.exists():
        if not record:
            return None
        with atomic_file(path) as file:
            json.dump(given, file)
        return None
    try:
        recorded = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"{path} cannot be read as the run's settings ({error}): mend or remove it, or give another --run"
    if not isinstance(recorded, dict):
        kind = type(recorded).__name__
        return f"{path} should hold a JSON object of the run's settings; got a {kind}: mend or remove it, or give another --run"
    differ = [name for name, value in given.items() if name in recorded and recorded[name] != value]
    if not differ:
        return None
    options = " ".join(f"--{name.replace('_', '-')} {recorded[name]}" for name in differ)
    return f"{run} holds a run made with {options}: give that, or another --run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attention", choices=("galerkin", "fourier"), default="galerkin")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--train", type=int, default=1024)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    add_data_argument(parser)
    parser.add_argument("--points", type=int, choices=GRIDS, default=POINTS, help="the grid the model trains on (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 4 for the Galerkin type, 8 for the Fourier type")
    parser.add_argument(
        "--attention-dropout",
        type=float,
        default=0.5,
        help="dropout rate on the attention matrix in training (the authors' 0.5, which they also apply in evaluation; "
        "runs before 2026-12-04: 0; default: %(default)s)",
    )
    parser.add_argument("--run", help="a run directory for the data, the Trainer's metrics and checkpoints (resumable)")
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="score the checkpoint in --run on its cached data (the run's --attention, --train, --test, --seed) and train nothing",
    )
    parser.add_argument("--device", type=device_type, default="cpu", help="where the data are solved and the model trains, e.g. cuda")
    args = parser.parse_args()
    if not 0.0 <= args.attention_dropout < 1.0:
        parser.error(f"--attention-dropout must be in [0, 1); got {args.attention_dropout}")
    if args.evaluate and not args.run:
        parser.error("--evaluate needs --run DIR: the run directory whose checkpoint is scored")
    retain_freed_memory_unless_disabled()  # as the pdekit command does: training page-faults its tensors back in otherwise

    run = Path(args.run) if args.run else None
    data = DATA_SETTINGS[args.data]
    batch_size = args.batch_size or (4 if args.attention == "galerkin" else 8)
    run_settings = {"attention": args.attention, "points": args.points, "attention_dropout": args.attention_dropout}
    if args.evaluate:
        if (problem := settings_conflict(run, run_settings, record=False)) is not None:
            parser.error(problem)
        model = galerkin(args.attention)
        try:
            epochs, u0, u1 = checkpointed(run, model, args.train, args.test, args.seed, data)
        except (FileNotFoundError, ValueError) as error:
            parser.error(f"--evaluate: {error}")
        label = f"{args.attention} transformer, checkpoint after {epochs} epochs in {run}"
        report(model, u0, u1, args.train, args.points, args.attention, label)
        return
    if run is not None:
        run.mkdir(parents=True, exist_ok=True)
    if (problem := other_runs_data(run, args.train + args.test, args.seed, data)) is not None:
        parser.error(problem)
    if (problem := settings_conflict(run, {**run_settings, "batch_size": batch_size})) is not None:
        parser.error(problem)
    started = time.perf_counter()
    u0, u1 = burgers_pairs(args.train + args.test, args.seed, run / DATA if run else None, data, device=args.device)
    print(f"data ({args.data}: {data.source}): {len(u0)} pairs at {POINTS} points ({time.perf_counter() - started:.0f} s)", flush=True)
    x, y = on_grid(u0, args.points), on_grid(u1, args.points)
    train = DataLoader(
        TensorDataset(x[: args.train], y[: args.train]),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    torch.manual_seed(args.seed)
    model = galerkin(args.attention, args.attention_dropout)
    config = TrainerConfig(
        epochs=args.epochs,
        optimizer="adam",
        learning_rate=1e-3,
        weight_decay=0.0,
        schedule="one_cycle",
        one_cycle_warmup=0.2,
        one_cycle_div=1e4,
        one_cycle_final_div=1e4,
        gradient_clip=0.999,
        loss="galerkin_h1",
        progress=False,
    )
    trainer = Trainer(model, config, device=args.device, run_dir=run)
    started = time.perf_counter()
    with command_logging(0):  # a line per epoch (loss, seconds), so a run cut short still says how far and how fast it got
        try:
            trainer.fit(train, resume=run is not None and (run / "checkpoint.pt").exists())
        except ValueError as error:  # the Trainer's refusal to resume (another model or schedule)
            parser.error(str(error))
    seconds = time.perf_counter() - started
    label = (
        f"{args.attention} transformer, attention dropout {args.attention_dropout}, batch {batch_size}, {trainer.epoch} epochs "
        f"({seconds:.0f} s this call on {placement(args.device)})"
    )
    report(model, u0, u1, args.train, args.points, args.attention, label)


if __name__ == "__main__":
    main()
