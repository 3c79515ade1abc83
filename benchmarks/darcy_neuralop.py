"""pdekit's FNO through pdekit's Trainer against neuraloperator's own recipe, on neuraloperator's small Darcy set.

Both sides train the same neuraloperator FNO (modes 8x8, hidden 32, projection ratio 2) for 20 epochs,
batch 32, AdamW lr 8e-3, weight decay 1e-4, cosine schedule over 30 epochs, relative H1 training
loss on outputs normalised by the training set's mean and std. They are tested at 16x16 and,
zero-shot, at 32x32: relative L2 and H1 in physical units, mean over the test samples.

    python benchmarks/darcy_neuralop.py [--seeds 3] [--data ../shared/data/neuraloperator]

Prints one line per seed and side, then medians and the ratio pdekit / neuraloperator (<= 1 is better).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from pdekit.data import EpochSampler, FieldStatistics
from pdekit.models import build_model
from pdekit.training import Trainer, TrainerConfig

EPOCHS, BATCH, LEARNING_RATE, WEIGHT_DECAY, COSINE_EPOCHS = 20, 32, 8e-3, 1e-4, 30


def load(folder: Path, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    # These files are torch.save'd dicts from the neuraloperator repository (a known source), which
    # weights_only=True cannot read because they hold a bool tensor saved by an old pickle protocol.
    data = torch.load(folder / f"{name}.pt", weights_only=False)
    return data["x"].float().unsqueeze(1), data["y"].float().unsqueeze(1)


def train_pdekit(seed, train, tests, output):
    torch.manual_seed(seed)
    model = build_model("fno", 1, 1, dim=2, modes=8, width=32)
    encode = lambda y: output.normalize(y)  # noqa: E731
    loader = DataLoader(TensorDataset(train[0], encode(train[1])), batch_size=BATCH, sampler=EpochSampler(len(train[0]), seed=seed))
    config = TrainerConfig(
        epochs=EPOCHS,
        optimizer="adamw",
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        schedule="cosine",
        schedule_epochs=COSINE_EPOCHS,
        gradient_clip=0,
        loss="h1",
        progress=False,
    )
    trainer = Trainer(model, config, device="cpu", denormalize=output.denormalize)
    started = time.perf_counter()
    trainer.fit(loader)
    seconds = time.perf_counter() - started
    results = {}
    for resolution, (x, y) in tests.items():
        metrics = trainer.evaluate(DataLoader(TensorDataset(x, encode(y)), batch_size=BATCH))
        results[resolution] = (metrics["l2"], metrics["h1"])
    return results, seconds


def train_neuralop(seed, train, tests, output):
    from neuralop.data.datasets.tensor_dataset import TensorDataset as DictDataset
    from neuralop.data.transforms.data_processors import DefaultDataProcessor
    from neuralop.data.transforms.normalizers import UnitGaussianNormalizer
    from neuralop.losses import H1Loss, LpLoss
    from neuralop.models import FNO
    from neuralop.training import Trainer as NeuralopTrainer

    torch.manual_seed(seed)
    model = FNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=32, projection_channel_ratio=2)
    normalizer = UnitGaussianNormalizer(
        mean=torch.tensor(output.mean).view(1, 1, 1), std=torch.tensor(output.std).view(1, 1, 1), dim=[0, 2, 3]
    )
    processor = DefaultDataProcessor(in_normalizer=None, out_normalizer=normalizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=COSINE_EPOCHS)
    l2, h1 = LpLoss(d=2, p=2), H1Loss(d=2)
    loader = DataLoader(DictDataset(*train), batch_size=BATCH, shuffle=True)
    test_loaders = {r: DataLoader(DictDataset(x, y), batch_size=BATCH) for r, (x, y) in tests.items()}
    trainer = NeuralopTrainer(model=model, n_epochs=EPOCHS, device="cpu", data_processor=processor, verbose=False)
    started = time.perf_counter()
    trainer.train(loader, {}, optimizer, scheduler, training_loss=h1, eval_losses={"h1": h1, "l2": l2})
    seconds = time.perf_counter() - started
    results = {}
    for resolution, test_loader in test_loaders.items():
        errors = trainer.evaluate({"h1": h1, "l2": l2}, test_loader, log_prefix="test")
        results[resolution] = (errors["test_l2"], errors["test_h1"])
    return results, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "neuraloperator")
    args = parser.parse_args()
    train = load(args.data, "darcy_train_16")
    tests = {16: load(args.data, "darcy_test_16"), 32: load(args.data, "darcy_test_32")}
    output = FieldStatistics((train[1].mean().item(),), (train[1].std().item(),), space_dims=2)
    runs = {"pdekit": [], "neuraloperator": []}
    for seed in range(args.seeds):
        for side, run in (("pdekit", train_pdekit), ("neuraloperator", train_neuralop)):
            results, seconds = run(seed, train, tests, output)
            runs[side].append((results, seconds))
            print(
                f"seed {seed} {side:15s} L2 16² {results[16][0]:.4f} 32² {results[32][0]:.4f}  H1 16² {results[16][1]:.4f} 32² "
                f"{results[32][1]:.4f}  {seconds:.1f} s",
                flush=True,
            )
    print(f"\nmedians over {args.seeds} seeds (test relative errors; training seconds)")
    median = {}
    for side, side_runs in runs.items():
        median[side] = {
            key: statistics.median(r[resolution][i] for r, _ in side_runs)
            for key, (resolution, i) in {"l2_16": (16, 0), "l2_32": (32, 0), "h1_16": (16, 1), "h1_32": (32, 1)}.items()
        }
        median[side]["seconds"] = statistics.median(s for _, s in side_runs)
        print(f"{side:15s} " + "  ".join(f"{k} {v:.4f}" for k, v in median[side].items()))
    print(
        "ratio pdekit/neuraloperator " + "  ".join(f"{k} {median['pdekit'][k] / median['neuraloperator'][k]:.3f}" for k in median["pdekit"])
    )


if __name__ == "__main__":
    main()
