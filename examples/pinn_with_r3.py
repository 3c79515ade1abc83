"""Train PINNs on 1D convection with fixed uniform points and with R3 sampling, and plot where R3's points go.

python examples/pinn_with_r3.py [--beta 20] [--iterations 3000] [--out example-pinn]
"""

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from pdekit.pinn import MLP, Convection, PINNConfig, make_sampler, plot_population, train_pinn


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Trains both PINNs; returns each sampler's relative L2 against the exact solution."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beta", type=float, default=20.0)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--out", default="example-pinn")
    args = parser.parse_args(argv)
    problem = Convection(beta=args.beta)
    errors = {}
    for name in ("uniform_fixed", "r3"):
        torch.manual_seed(0)
        config = PINNConfig(iterations=args.iterations, population_every=max(1, args.iterations // 4))
        result = train_pinn(problem, MLP(1, 50, 4), make_sampler(name, problem, 1000), config)
        figure = plot_population(result, problem, Path(args.out) / f"population_{name}.png")
        print(f"{name:14s} relative L2 {result.relative_l2:.4f} ({result.seconds:.0f} s); points over training: {figure}")
        errors[name] = result.relative_l2
    return errors


if __name__ == "__main__":
    main()
