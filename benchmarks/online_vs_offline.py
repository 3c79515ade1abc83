"""Online against offline training at equal wall time: an FNO on parametric 2D heat.

The problem: heat on the unit torus, 64², diffusivity log-uniform in [1e-3, 1e-2] per member, Gaussian
random initial fields, states every 0.25 time units up to t = 5 (the exact solver of pdekit). The
surrogate maps one state and the diffusivity to the next state (windows of 1 -> 1), FNO with 12 modes,
width 32, 4 layers, Adam at a constant learning rate 1e-3, batch 16, relative L2 loss.

- offline: ``pdekit generate`` writes ``--members`` members to a Zarr store (its time is reported, not
  counted in the budget); the Trainer streams the training split from the store for ``--budget`` seconds.
- online: the same recipe is solved while training runs (``pdekit.online.Generator``: one solver process
  on the CPU by default, ``--workers`` processes, or ``--workers 0`` a thread of the training process), windows go into a ``Reservoir``
  (policy ``reservoir``, capacity
  ``--capacity``, evicting only windows drawn at least ``--min-seen`` times), and the Trainer draws its batches from there for the same
  ``--budget`` seconds. The
  stream's first members are the store's members; the store's held-out members are left out of it.

Both are validated on the same held-out members of the store (the last 10%), in physical units.

    python benchmarks/online_vs_offline.py [--members 128] [--budget 150] [--repeats 3]

``--ranks R`` (R > 1) runs both sides as R-process DDP jobs under ``torch.distributed.run`` (gloo on
the CPU), launched by this script: offline, every rank reads its share of the store's windows
(``ChunkLocalSampler``); online, every rank owns a reservoir fed by its own share of the stream
(``Generator(share=...)``) from ``--workers`` solver processes of its own, and the ranks take each
batch in lockstep (``pdekit.online.lockstep``). Batch and capacity are per rank. It prints per side
samples/s per rank, the waiting fractions (for one's own reservoir, and for the other ranks), the
distinct windows trained on (all ranks) and the validation error, at equal wall time.

Prints per side: training samples/s, unique samples seen, validation relative L2 (median of the repeats,
seeds 0..repeats-1), the online trainer's time waiting on the reservoir, and the ratios online / offline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from pdekit.data import ChunkLocalSampler, LogUniform, Recipe, Windows, compute_statistics, generate
from pdekit.models import build_model
from pdekit.online import Generator, Reservoir, ReservoirBatches
from pdekit.online.lockstep import Lockstep
from pdekit.runs import split_members
from pdekit.runs.online import reservoir_seed
from pdekit.solvers import GaussianRandomField
from pdekit.training import Process, Trainer, TrainerConfig, init_from_environment

BATCH, STEPS_PER_EPOCH = 16, 25


def recipe(members: int) -> Recipe:
    return Recipe(
        name="heat_2d_online_benchmark",
        pde="heat",
        shape=(64, 64),
        times=tuple(0.25 * i for i in range(1, 21)),
        dt=0.25,
        parameters={"diffusivity": LogUniform(1e-3, 1e-2)},
        initial_field=GaussianRandomField(alpha=2.0, tau=3.0),
        sampling="sobol",
        members=members,
        batch_size=16,
    )


class Batches:
    """``steps`` batches per pass, cycling through a DataLoader's epochs (so offline epochs match the online ones in length)."""

    def __init__(self, loader: DataLoader, steps: int):
        self.loader, self.steps, self.epoch, self.drawn = loader, steps, 0, 0
        self._iterator = iter(())

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            batch = next(self._iterator, None)
            if batch is None:
                self.loader.sampler.set_epoch(self.epoch)
                self.epoch += 1
                self._iterator = iter(self.loader)
                batch = next(self._iterator)
            self.drawn += len(batch[0])
            yield batch


def train_for(trainer: Trainer, batches, budget: float) -> tuple[float, int]:
    """Trains epoch after epoch until ``budget`` seconds have passed; returns (seconds, samples of this process).

    Under DDP rank 0's clock decides, so every rank runs the same number of epochs.
    """
    started = time.perf_counter()
    while True:
        going = torch.tensor([time.perf_counter() - started < budget])
        if trainer.process.distributed:
            dist.broadcast(going, 0)
        if not bool(going):
            break
        trainer.config = replace(trainer.config, epochs=trainer.epoch + 1)
        trainer.fit(batches)
    return time.perf_counter() - started, trainer.epoch * STEPS_PER_EPOCH * BATCH


def make_trainer(seed: int, statistics, process: Process) -> Trainer:
    torch.manual_seed(seed)
    model = build_model("fno", 1, 1, dim=2, n_params=1, modes=12, width=32, layers=4)
    config = TrainerConfig(epochs=1, optimizer="adam", weight_decay=0, schedule="constant", gradient_clip=0, progress=False)
    return Trainer(model, config, device="cpu", denormalize=statistics.denormalize, process=process)


def run(
    store: Path,
    held_out_windows: Windows,
    training_members: list[int],
    held_out: list[int],
    statistics,
    seed: int,
    budget: float,
    capacity: int,
    workers: int | None,
    min_seen: int,
    process: Process | None = None,
) -> dict:
    process = process or Process()
    validation = DataLoader(held_out_windows, batch_size=BATCH)
    lockstep = Lockstep(process.replicas)
    results = {}

    training = Windows(store, 1, 1, members=training_members, normalize=statistics)
    trainer = make_trainer(seed, statistics, process)
    sampler = ChunkLocalSampler(training, seed=seed, rank=process.rank, replicas=process.replicas)
    offline = Batches(DataLoader(training, batch_size=BATCH, sampler=sampler), STEPS_PER_EPOCH)
    seconds, samples = train_for(trainer, offline, budget)
    drawn = sum(lockstep.gather([float(offline.drawn)])[i][0] for i in range(process.replicas))
    results["offline"] = {
        "samples_per_second": samples / seconds,  # per rank
        "unique": min(drawn, len(training)),
        "l2": trainer.evaluate(validation)["l2"],
        "waiting": 0.0,
        "peer_waiting": 0.0,
    }

    trainer = make_trainer(seed, statistics, process)
    reservoir = Reservoir(capacity, "reservoir", min_seen=min_seen, watermark=capacity // 4, seed=reservoir_seed(seed, process.rank))
    share = (process.rank, process.replicas) if process.distributed else None
    with Generator(
        recipe(len(training_members) + len(held_out)),
        reservoir,
        statistics=statistics,
        exclude=held_out,
        device="cpu",
        workers=workers,
        share=share,
    ) as generator:
        batches = ReservoirBatches(reservoir, BATCH, STEPS_PER_EPOCH, generator, lockstep)  # filling to the watermark counts in the budget
        seconds, samples = train_for(trainer, batches, budget)
        mine = [
            reservoir.counters.waiting_seconds,
            lockstep.peer_waiting_seconds,
            reservoir.counters.unique_drawn,
            generator.counters.members,
        ]
    every = lockstep.gather([float(v) for v in mine])
    results["online"] = {
        "samples_per_second": samples / seconds,
        "unique": sum(rank[2] for rank in every),
        "l2": trainer.evaluate(validation)["l2"],
        "waiting": sum(rank[0] for rank in every) / len(every) / seconds,  # the mean over ranks
        "peer_waiting": sum(rank[1] for rank in every) / len(every) / seconds,
        "members": sum(rank[3] for rank in every),
    }
    return results


def report(runs: list[dict], args: argparse.Namespace, threads: int) -> None:
    def median(side: str, key: str) -> float:
        return statistics.median(r[side][key] for r in runs)

    ranks = f"{args.ranks} DDP ranks (gloo), " if args.ranks > 1 else ""
    print(
        f"\n{platform.processor() or platform.machine()}, {ranks}{threads} threads per process, {date.today()}, "
        f"budget {args.budget:g} s per side, medians of {args.repeats}"
    )
    print(f"{'':8} {'samples/s per rank':>18} {'unique samples':>15} {'validation L2':>14} {'waiting':>8} {'for peers':>10}")
    for side in ("offline", "online"):
        print(
            f"{side:8} {median(side, 'samples_per_second'):18.1f} {median(side, 'unique'):15.0f} {median(side, 'l2'):14.4f} "
            f"{100 * median(side, 'waiting'):7.1f}% {100 * median(side, 'peer_waiting'):9.1f}%"
        )
    print(
        f"online / offline: throughput {median('online', 'samples_per_second') / median('offline', 'samples_per_second'):.2f}x, "
        f"unique samples {median('online', 'unique') / median('offline', 'unique'):.1f}x, "
        f"validation error {median('online', 'l2') / median('offline', 'l2'):.2f}x; members solved online {median('online', 'members'):.0f}"
    )


def experiment(store: Path, args: argparse.Namespace, process: Process) -> list[dict]:
    """Runs every seed on ``store``, in this process or as one rank of a DDP job; returns each seed's results."""
    statistics_ = compute_statistics(store)
    training_members, held_out = split_members(store, 0.1)
    held_out_windows = Windows(store, 1, 1, members=held_out, normalize=statistics_)
    if process.is_main:
        print(f"offline store: {args.members} members ({len(training_members)} train, {len(held_out)} held out)", flush=True)
    runs = []
    for seed in range(args.repeats):
        settings = (args.budget, args.capacity, args.workers, args.min_seen)
        result = run(store, held_out_windows, training_members, held_out, statistics_, seed, *settings, process=process)
        runs.append(result)
        if process.is_main:
            print(
                f"seed {seed}: " + "; ".join(f"{side} {', '.join(f'{k} {v:.4g}' for k, v in r.items())}" for side, r in result.items()),
                flush=True,
            )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=128, help="offline ensemble size (its last 10%% are held out)")
    parser.add_argument("--budget", type=float, default=150.0, help="training seconds per side")
    parser.add_argument("--capacity", type=int, default=2048, help="reservoir capacity (windows, per rank)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="online solver processes per rank (0: a thread in the training process; default: 1 on the CPU)",
    )
    parser.add_argument("--min-seen", type=int, default=1, help="Melissa's eviction rule (0: Algorithm R)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ranks", type=int, default=1, help="DDP training processes (launched with torch.distributed.run)")
    parser.add_argument("--store", type=Path, default=None, help=argparse.SUPPRESS)  # the launcher's store, for the ranks
    args = parser.parse_args()

    process = init_from_environment()
    if process.distributed:  # a rank of the job launched below
        runs = experiment(args.store, args, process)
        if process.is_main:
            print("RESULTS " + json.dumps(runs), flush=True)
        return

    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "heat.zarr"
        started = time.perf_counter()
        generate(recipe(args.members), store, device="cpu", progress=False)
        print(f"offline store generated in {time.perf_counter() - started:.1f} s", flush=True)
        if args.ranks == 1:
            runs = experiment(store, args, process)
        else:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.ranks}", __file__]
            command += [*sys.argv[1:], "--store", str(store)]
            threads = os.environ.get("OMP_NUM_THREADS", "1")
            output = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": threads}, check=True, stdout=subprocess.PIPE, text=True)
            lines = output.stdout.splitlines()
            print("\n".join(line for line in lines if not line.startswith("RESULTS ")))
            runs = json.loads(next(line for line in lines if line.startswith("RESULTS "))[len("RESULTS ") :])
    report(runs, args, int(os.environ.get("OMP_NUM_THREADS", "1")) if args.ranks > 1 else torch.get_num_threads())


if __name__ == "__main__":
    main()
