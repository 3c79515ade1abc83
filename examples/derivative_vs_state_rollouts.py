"""Train the same FNO to predict the next state and to predict du/dt, then roll both out against the solver.

Both see two states; the derivative-mode surrogate fits central differences of the stored snapshots
and is advanced by RK4 (Zhou and Barati Farimani, "Predicting change, not
states", 2024), so it can also step at a dt it never saw: the table rolls it out at the training dt
and at half of it. Data: 1D viscous Burgers from pdekit's solver, stored in Zarr.
For the measured comparison over seeds see benchmarks/rollouts.py.

    python examples/derivative_vs_state_rollouts.py [--members 48] [--epochs 20]
"""

import argparse
from collections.abc import Sequence
from pathlib import Path

from pdekit.data import generate
from pdekit.data.recipes import burgers_1d
from pdekit.rollout import RolloutTraining
from pdekit.runs import DataConfig, ExperimentConfig, ModelConfig, RolloutEvaluation, evaluate_rollout, train
from pdekit.training import TrainerConfig


def main(argv: Sequence[str] | None = None) -> list[tuple[str, str, RolloutEvaluation]]:
    """Trains both surrogates and rolls them out; returns the table's rows: ``(mode, step, rollout evaluation)``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default="example-rollouts")
    args = parser.parse_args(argv)
    out = Path(args.out)
    recipe = burgers_1d().with_overrides(shape=(256,), stored_shape=(128,), members=args.members, batch_size=args.members)
    store = out / "burgers.zarr"
    print(generate(recipe, store, resume=store.exists(), progress=False))
    rows = []
    for mode in ("state", "derivative"):
        config = ExperimentConfig(
            data=DataConfig(store=str(store), input_steps=2, target_steps=1, batch_size=16, validation_fraction=0.25),
            model=ModelConfig("fno", {"width": 32, "modes": 32}),
            trainer=TrainerConfig(epochs=args.epochs, learning_rate=2e-3, progress=False),
            rollout=RolloutTraining(mode=mode, integrator="rk4"),
        )
        run = out / mode
        train(config, run, resume=(run / "checkpoint.pt").exists())
        at_training_dt = evaluate_rollout(run)
        rows.append((mode, "training dt", at_training_dt))
        if mode == "derivative":
            rows.append((mode, "dt / 2", evaluate_rollout(run, dt=at_training_dt.dt / 2)))
    print(f"\n{'surrogate':12} {'step':12} {'mean L2':>8} {'final L2':>9} {'correlation time':>17}")
    for mode, step, result in rows:
        mean = sum(result.l2_per_time) / len(result.l2_per_time)
        print(f"{mode:12} {step:12} {mean:8.4f} {result.l2_per_time[-1]:9.4f} {result.correlation_time:17.3g}")
    return rows


if __name__ == "__main__":
    main()
