"""Training throughput: pdekit's Trainer streaming windows from Zarr against neuraloperator's Trainer on in-memory tensors.

The data: a pdekit heat_2d ensemble (64², 21 stored times, a diffusivity per member), cut into windows
of 10 input states and 1 target, the FNO paper's Navier-Stokes setting. Both sides train the same
neuraloperator FNO (modes 12, hidden 32, 4 layers; 11 input channels: 10 states and the diffusivity)
with Adam and relative L2, batch 32:

- neuraloperator: ``neuralop.training.Trainer`` over a ``TensorDataset`` already in memory (the fastest
  data path there is, its usual set-up);
- pdekit: ``pdekit.training.Trainer`` over ``Windows`` streamed from the Zarr store by ``ChunkLocalSampler``
  batches (the store is never loaded whole), in the same process (``workers=0``) and with one loader worker.

    python benchmarks/train_throughput.py [--members 64] [--epochs 2] [--repeats 3]

Prints samples/s per side (median of the repeats) and the ratio pdekit / neuraloperator (target >= 1).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from pdekit.data import ChunkLocalSampler, Windows, generate
from pdekit.data.recipes import heat_2d
from pdekit.models import build_model
from pdekit.training import Trainer, TrainerConfig

INPUT_STEPS, BATCH = 10, 32


def pdekit_rate(store: Path, epochs: int, workers: int) -> float:
    windows = Windows(store, INPUT_STEPS, 1)
    loader = DataLoader(windows, batch_size=BATCH, sampler=ChunkLocalSampler(windows), num_workers=workers, persistent_workers=workers > 0)
    torch.manual_seed(0)
    model = build_model("fno", INPUT_STEPS, 1, dim=2, n_params=1, modes=12, width=32)
    trainer = Trainer(model, TrainerConfig(epochs=epochs, optimizer="adam", weight_decay=0, gradient_clip=0, progress=False), device="cpu")
    started = time.perf_counter()
    trainer.fit(loader)
    return epochs * len(windows) / (time.perf_counter() - started)


def neuralop_rate(store: Path, epochs: int) -> float:
    from neuralop.data.datasets.tensor_dataset import TensorDataset
    from neuralop.losses import LpLoss
    from neuralop.models import FNO
    from neuralop.training import Trainer as NeuralopTrainer

    windows = Windows(store, INPUT_STEPS, 1)
    items = windows.__getitems__(range(len(windows)))  # the whole set in memory, as neuraloperator expects
    x = torch.stack([torch.cat([i.flatten(0, 1), p.view(-1, 1, 1).expand(-1, *i.shape[2:])]) for i, _, _, p in items])  # [k*C + P, *S]
    y = torch.stack([t.flatten(0, 1) for _, t, _, _ in items])
    torch.manual_seed(0)
    model = FNO(n_modes=(12, 12), in_channels=INPUT_STEPS + 1, out_channels=1, hidden_channels=32, n_layers=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    trainer = NeuralopTrainer(model=model, n_epochs=epochs, device="cpu", verbose=False)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    loss = LpLoss(d=2, p=2)
    started = time.perf_counter()
    trainer.train(loader, {}, optimizer, scheduler, training_loss=loss, eval_losses={"l2": loss})
    return epochs * len(x) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "heat.zarr"
        generate(heat_2d().with_overrides(members=args.members), store, device="cpu", progress=False)
        rates = {"neuraloperator (memory)": [], "pdekit (Zarr, workers=0)": [], "pdekit (Zarr, workers=1)": []}
        for repeat in range(args.repeats):
            rates["neuraloperator (memory)"].append(neuralop_rate(store, args.epochs))
            rates["pdekit (Zarr, workers=0)"].append(pdekit_rate(store, args.epochs, 0))
            rates["pdekit (Zarr, workers=1)"].append(pdekit_rate(store, args.epochs, 1))
            print(f"repeat {repeat}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()), flush=True)
    median = {k: statistics.median(v) for k, v in rates.items()}
    baseline = median["neuraloperator (memory)"]
    print(f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, {date.today()}")
    print(f"{args.members} members x 11 windows, batch {BATCH}, {args.epochs} epochs, median of {args.repeats}")
    for name, rate in median.items():
        print(f"{name:28s} {rate:8.1f} samples/s   ratio to neuraloperator {rate / baseline:.3f}")


if __name__ == "__main__":
    main()
