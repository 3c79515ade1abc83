"""A short FNO training on one device, from a Zarr ensemble and from the online generator: samples/s, waiting, peak memory.

Part of the GPU check (``benchmarks/gpu_check.sh``); ``--device cpu --tiny`` is its dry run. The
problem: 2D Navier-Stokes on the unit torus (FNO forcing, viscosity log-uniform in [1e-3, 1e-2],
64² under a CFL limit, vorticity every 0.5 time units to t = 10), one state in and the next out,
the default FNO (12 modes, width 32, 4 layers), batch 32, Adam.

- ``zarr``: ``pdekit.data.generate`` writes ``--members`` members on the device, then
  ``pdekit.runs.train`` trains from the store (``Windows`` streamed chunk by chunk, pinned
  batches on CUDA) with ``--workers`` loader processes. Waiting: the data path alone (the same
  ``Windows``, ``ChunkLocalSampler`` and ``DataLoader``, batches moved to the device) is timed over
  one pass, and its time per sample divided by training's. With ``workers=0`` the training loop
  blocks for exactly those reads, so this is the fraction of its time spent waiting for data;
  with workers, whose reads overlap training, only the data path's own rate is reported.
- ``online``: ``pdekit.runs.train_online`` streams the same recipe from a ``Generator`` (one
  thread on the device, on its own CUDA stream) into a ``Reservoir`` on the device (Melissa's
  rule, ``min_seen=1``); waiting is the reservoir's time waiting for data over the epoch's time,
  as the Trainer records it. The first epoch includes filling the reservoir to its watermark.

Peak memory is ``torch.cuda.max_memory_allocated`` over each part.

    python benchmarks/gpu_training.py --device cuda
    python benchmarks/gpu_training.py --device cpu --tiny     # the dry run: plumbing only
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from pdekit.data import ChunkLocalSampler, LogUniform, Recipe, Windows, generate
from pdekit.runs import ExperimentConfig, train, train_online
from pdekit.solvers import GaussianRandomField


def recipe(tiny: bool, members: int) -> Recipe:
    """Returns the benchmark's Navier-Stokes recipe (``tiny``: 16², to t = 1, for the dry run)."""
    n, t_end, every = (16, 1.0, 0.25) if tiny else (64, 10.0, 0.5)
    return Recipe(
        name="gpu_training_navier_stokes",
        pde="navier_stokes_2d",
        shape=(n, n),
        times=tuple(every * i for i in range(1, round(t_end / every) + 1)),
        dt=0.05,
        cfl=0.5,
        forcing="fno",
        parameters={"viscosity": LogUniform(1e-3, 1e-2)},
        initial_field=GaussianRandomField(alpha=2.5, tau=7.0),
        sampling="sobol",
        members=members,
        batch_size=4 if tiny else 16,
    )


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> float | None:
    """Returns the peak allocated device memory since the last ``reset_peak`` in GiB (None on the CPU)."""
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def data_seconds(store: Path, batch_size: int, workers: int, device: torch.device) -> tuple[float, int]:
    """Returns (seconds, samples) of one pass of the training data path alone, every batch moved to ``device``."""
    windows = Windows(store, 1, 1)
    loader = DataLoader(
        windows, batch_size=batch_size, sampler=ChunkLocalSampler(windows), num_workers=workers, pin_memory=device.type == "cuda"
    )
    started, samples = time.perf_counter(), 0
    for batch in loader:
        moved = [t.to(device, non_blocking=True) for t in batch if isinstance(t, torch.Tensor)]
        samples += len(moved[0])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started, samples


def steady(history: list[dict], key: str) -> float:
    """Returns the median of ``key`` over the epochs after the first (the first holds start-up costs), or the only epoch's."""
    values = [h[key] for h in history[1:]] or [history[0][key]]
    return statistics.median(values)


def zarr_run(folder: Path, args, device: torch.device) -> list[dict]:
    store = folder / "navier_stokes.zarr"
    reset_peak(device)
    started = time.perf_counter()
    generate(recipe(args.tiny, args.members), store, device=device, progress=False)
    generation = time.perf_counter() - started
    memory = f", {peak_memory(device):.2f} GiB peak" if device.type == "cuda" else ""
    print(f"zarr: generated {args.members} members on {device} in {generation:.1f} s{memory}", flush=True)
    rows = []
    for workers in args.workers:
        reset_peak(device)
        config = ExperimentConfig.from_dict(
            {
                "data": {"store": str(store), "batch_size": args.batch_size, "workers": workers},
                "model": {"name": "fno"},
                "trainer": {"epochs": args.epochs, "progress": False},
            }
        )
        history = train(config, folder / f"zarr_run_w{workers}", device=device).history
        seconds, samples = data_seconds(store, args.batch_size, workers, device)
        rate = steady(history, "samples_per_second")
        rows.append(
            {
                "run": f"zarr, workers={workers}",
                "samples_per_second": rate,
                # the data path's seconds per sample over training's: the waiting when the loop itself reads (workers=0)
                "waiting": min(1.0, seconds / samples * rate) if workers == 0 else None,
                "waiting_first": None,
                "validation_l2": history[-1].get("validation_l2"),
                "peak_gib": peak_memory(device),
                "epochs": len(history),
                "extra": f"data path alone {samples / seconds:.0f} samples/s",
            }
        )
        print(
            f"zarr, workers={workers}: " + ", ".join(f"epoch {h['epoch']} {h['samples_per_second']:.0f} samples/s" for h in history),
            flush=True,
        )
    return rows


def online_run(folder: Path, args, device: torch.device) -> dict:
    streamed = recipe(args.tiny, args.members)
    reset_peak(device)
    config = ExperimentConfig.from_dict(
        {
            "data": {"batch_size": args.batch_size},
            "model": {"name": "fno"},
            "trainer": {"epochs": args.online_epochs, "progress": False},
            "online": {
                "capacity": args.capacity,
                "watermark": args.watermark,
                "steps_per_epoch": args.steps_per_epoch,
                "validation_members": streamed.batch_size,
                "solver_device": str(device),
            },
        }
    )
    started = time.perf_counter()
    history = train_online(config, folder / "online_run", device=device, recipe=streamed).history
    seconds = time.perf_counter() - started
    print(
        "online: "
        + ", ".join(
            f"epoch {h['epoch']} {h['samples_per_second']:.0f} samples/s waiting {100 * h['waiting_fraction']:.1f}%" for h in history
        )
        + f"; {history[-1]['members_solved']} members solved in {seconds:.1f} s",
        flush=True,
    )
    return {
        "run": (f"online, solver thread on {device}" if device.type == "cuda" else "online, solver in 1 CPU process"),
        "samples_per_second": steady(history, "samples_per_second"),
        "waiting": steady(history, "waiting_fraction"),
        "waiting_first": history[0]["waiting_fraction"],
        "validation_l2": history[-1].get("validation_l2"),
        "peak_gib": peak_memory(device),
        "epochs": len(history),
        "extra": f"{history[-1]['members_solved']} members solved, {history[-1]['unique_samples_drawn']} unique windows drawn",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="16² and a few steps: the CPU dry run of the plumbing")
    parser.add_argument("--parts", default="zarr,online", help="comma-separated: zarr, online")
    parser.add_argument("--members", type=int, default=None, help="offline ensemble size (default 64; 8 with --tiny)")
    parser.add_argument("--epochs", type=int, default=None, help="Zarr training epochs (default 6; 2 with --tiny)")
    parser.add_argument("--workers", default="0,2", help="comma-separated DataLoader worker counts for the Zarr runs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--online-epochs", type=int, default=None, help="online epochs (default 4; 2 with --tiny)")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="online steps per epoch (default 500; 5 with --tiny)")
    parser.add_argument("--capacity", type=int, default=4096)
    parser.add_argument("--watermark", type=int, default=None, help="windows before training starts (default: one solver batch)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    parts = set(args.parts.split(","))
    if not parts <= {"zarr", "online"}:
        parser.error(f"--parts takes zarr and/or online; got {args.parts!r}")
    args.workers = [int(w) for w in args.workers.split(",")] if "zarr" in parts else []
    args.members = args.members or (8 if args.tiny else 64)
    args.epochs = args.epochs or (2 if args.tiny else 6)
    args.online_epochs = args.online_epochs or (2 if args.tiny else 4)
    args.steps_per_epoch = args.steps_per_epoch or (5 if args.tiny else 500)
    if args.tiny:
        args.batch_size, args.capacity = min(args.batch_size, 8), min(args.capacity, 256)
    one_batch = recipe(args.tiny, args.members)
    args.watermark = args.watermark or min(args.capacity, one_batch.batch_size * len(one_batch.times))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# gpu_training on {device} ({name}), torch {torch.__version__}, {one_batch.shape[0]}², batch {args.batch_size}", flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if "zarr" in parts:
            rows += zarr_run(Path(folder), args, device)
        if "online" in parts:
            rows.append(online_run(Path(folder), args, device))

    print("\n| run | samples/s (median, epochs 2+) | waiting (epochs 2+) | waiting, epoch 1 | validation L2 | peak memory | notes |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        first = f"{100 * r['waiting_first']:.1f}%" if r["waiting_first"] is not None else "n/a"
        waiting = f"{100 * r['waiting']:.1f}%" if r["waiting"] is not None else "n/a"
        l2 = f"{r['validation_l2']:.4f}" if r["validation_l2"] is not None else "n/a"
        memory = f"{r['peak_gib']:.2f} GiB" if r["peak_gib"] is not None else "n/a"
        print(f"| {r['run']} | {r['samples_per_second']:.0f} | {waiting} | {first} | {l2} | {memory} | {r['extra']} |")
    print("targets: online waiting < 5% (epochs 2+). zarr, workers=0: the data path's time per sample over training's (see the docstring).")


if __name__ == "__main__":
    main()
