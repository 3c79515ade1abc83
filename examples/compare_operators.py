"""Train the five neural operators on the same Navier-Stokes ensemble and compare them in one table.

Every model sees the same windows (2 states in, the next out), optimiser, epochs and held-out members;
the table gives its size, seconds per epoch, one-step error and the error of a rollout over the
held-out trajectories. For the measured comparison at a fixed budget see benchmarks/operators_ns.py.

    python examples/compare_operators.py [--members 24] [--epochs 4] [--models fno tfno ffno galerkin factformer]
"""

import argparse
from collections.abc import Sequence
from pathlib import Path

from pdekit.data import generate
from pdekit.data.recipes import fno_navier_stokes
from pdekit.runs import DataConfig, ExperimentConfig, ModelConfig, evaluate, evaluate_rollout, train
from pdekit.training import TrainerConfig

MODELS = ["fno", "tfno", "ffno", "galerkin", "factformer"]
SETTINGS = {"fno": {"width": 24}, "tfno": {"width": 24}, "ffno": {"width": 24}, "galerkin": {"width": 32}, "factformer": {"width": 32}}


def main(argv: Sequence[str] | None = None) -> list[tuple[str, int, float, float, float]]:
    """Runs the comparison; returns its table's rows: ``(model, weights, seconds per epoch, one-step L2, rollout L2 at the horizon)``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--horizon", type=float, default=5.0)
    parser.add_argument("--models", nargs="*", default=MODELS, choices=MODELS)
    parser.add_argument("--out", default="example-operators")
    args = parser.parse_args(argv)
    out = Path(args.out)
    # The FNO paper's flow at nu = 1e-3, solved directly at 64² (it matches the 256² solve there).
    recipe = fno_navier_stokes(1e-3).with_overrides(
        shape=(64, 64),
        stored_shape=(64, 64),
        times=tuple(0.5 * n for n in range(1, round(args.horizon / 0.5) + 1)),
        members=args.members,
        batch_size=args.members,
    )
    store = out / "ns.zarr"
    print(generate(recipe, store, resume=store.exists(), progress=False))
    rows = []
    for name in args.models:
        config = ExperimentConfig(
            data=DataConfig(store=str(store), input_steps=2, target_steps=1, batch_size=8, validation_fraction=0.25),
            model=ModelConfig(name, SETTINGS[name]),
            trainer=TrainerConfig(epochs=args.epochs, learning_rate=2e-3, progress=False),
        )
        run = out / name
        trainer = train(config, run, resume=(run / "checkpoint.pt").exists())
        weights = sum(p.numel() for p in trainer.model.parameters())
        seconds = sum(r["seconds"] for r in trainer.history) / len(trainer.history)
        rolled = evaluate_rollout(run)
        rows.append((name, weights, seconds, evaluate(run).l2, rolled.l2_per_time[-1]))
    print(f"\n{'model':12} {'weights':>9} {'s/epoch':>8} {'one-step L2':>12} {'rollout L2 at t=' + format(args.horizon, 'g'):>20}")
    for name, weights, seconds, one_step, final in rows:
        print(f"{name:12} {weights:9,d} {seconds:8.1f} {one_step:12.4f} {final:20.4f}")
    return rows


if __name__ == "__main__":
    main()
