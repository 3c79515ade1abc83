"""Seeds of a PINN one after another against the same seeds as one batched ensemble (``train_pinn_ensemble``).

The R3 table's setting (convection beta = 50, tanh MLP 4 x 50, 1000 points, R3 sampler): ``--members``
seeds trained ``--iterations`` Adam steps each, once as separate ``train_pinn`` runs and once as one
``train_pinn_ensemble``, interleaved ``--repeats`` times; prints the medians, the ensemble's
speed-up, and the largest difference of the members' final relative L2 from the separate runs'.

    python benchmarks/pinn_ensemble.py [--members 3] [--iterations 300] [--repeats 3] [--device cuda]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date

import torch

from pdekit.pinn import MLP, Convection, PINNConfig, make_sampler, train_pinn, train_pinn_ensemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sampler", default="r3")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    problem = Convection(beta=50.0)
    config = PINNConfig(iterations=args.iterations)

    def members():
        networks, samplers = [], []
        for seed in range(args.members):
            torch.manual_seed(seed)
            networks.append(MLP(problem.dim, 50, 4).to(args.device))
            samplers.append(make_sampler(args.sampler, problem, 1000, seed=seed, device=args.device))
        return networks, samplers

    def synchronize() -> None:
        if torch.device(args.device).type == "cuda":
            torch.cuda.synchronize()

    warm_up = PINNConfig(iterations=2)  # first calls pay for kernels' and allocators' set-up: untimed
    networks, samplers = members()
    train_pinn(problem, networks[0], samplers[0], warm_up)
    train_pinn_ensemble(problem, *members(), warm_up)
    separate, together, differences = [], [], []
    for _ in range(args.repeats):
        networks, samplers = members()
        synchronize()
        started = time.perf_counter()
        alone = [
            train_pinn(problem, n, s, PINNConfig(iterations=args.iterations, seed=seed)).relative_l2
            for seed, (n, s) in enumerate(zip(networks, samplers, strict=True))
        ]
        synchronize()
        separate.append(time.perf_counter() - started)
        networks, samplers = members()
        synchronize()
        started = time.perf_counter()
        batched = [r.relative_l2 for r in train_pinn_ensemble(problem, networks, samplers, config)]
        synchronize()
        together.append(time.perf_counter() - started)
        differences.append(max(abs(a - b) for a, b in zip(alone, batched, strict=True)))
    name = torch.cuda.get_device_name() if torch.device(args.device).type == "cuda" else platform.processor() or platform.machine()
    print(f"{name}, {torch.get_num_threads()} threads, torch {torch.__version__}, {date.today()}")
    print(f"{args.members} seeds x {args.iterations} iterations of {args.sampler} on convection beta = 50, medians of {args.repeats}")
    print("| side | seconds | iterations/s per seed |\n|---|---|---|")
    for label, times in (("seeds one after another (train_pinn)", separate), ("one ensemble (train_pinn_ensemble)", together)):
        seconds = statistics.median(times)
        print(f"| {label} | {seconds:.2f} | {args.members * args.iterations / seconds:.0f} |")
    print(f"ensemble speed-up: {statistics.median(separate) / statistics.median(together):.2f}x")
    print(f"largest |relative L2 (ensemble) - relative L2 (alone)| over members: {max(differences):.2e}")


if __name__ == "__main__":
    main()
