"""R3 sampling against fixed and adaptive baselines on PINN failure modes, side by side in one run.

The comparison of Daw et al., "Mitigating propagation failures in physics-informed neural networks
using retain-resample-release (R3) sampling" (ICML 2023): the same tanh MLP (4 hidden layers of 50),
the same population of collocation points and the same Adam iterations (lr 1e-3; initial-condition
weight 100) for every sampler; relative L2 error against the exact (convection) or spectral
(Allen-Cahn) solution on a 256 x 100 grid. Space enters through the raw coordinate (no periodic
embedding, a periodicity loss instead), as in the paper's convection runs, and by default so do the
initial-condition and periodicity losses' points: 512 on the space grid at t = 0 and pairs at 251
equally spaced times (``--conditions grid``; ``uniform``: 256 random each, pdekit's default and
every row measured before 2026-12-03).

    python benchmarks/pinn_r3.py [--problems convection allen_cahn] [--iterations 10000] [--seeds 1] [--ensemble]
        [--init torch_default] [--conditions grid] [--checkpoints DIR]

With ``--checkpoints`` every run saves its state every 1000 iterations and a rerun continues it
(``train_pinn(checkpoint=...)``), so a 100 000-iteration sweep can be split over sessions.
"""

from __future__ import annotations

import argparse
import platform
import statistics
from datetime import date
from pathlib import Path

import torch

from pdekit.pinn import INITIALISATIONS, MLP, AllenCahnProblem, Convection, PINNConfig, make_sampler, train_pinn_ensemble

SAMPLERS = ["uniform_fixed", "uniform_resampled", "rar_d", "rad", "r3", "causal_r3"]
PROBLEMS = {"convection": Convection(beta=50.0), "allen_cahn": AllenCahnProblem()}
CONDITIONS = {  # the authors' (Convection/pinn_model.py: the 512-point x grid at t = 0, the 251 times of t_star) and pdekit's default
    "grid": {"conditions": "grid", "initial_points": 512, "boundary_points": 251},
    "uniform": {"conditions": "uniform", "initial_points": PINNConfig.initial_points, "boundary_points": PINNConfig.boundary_points},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", nargs="*", default=["convection"])
    parser.add_argument("--samplers", nargs="*", default=SAMPLERS)
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=1, help="seeds per sampler")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (split a seed sweep over processes)")
    parser.add_argument(
        "--dense-set",
        choices=["fresh", "fixed"],
        default="fresh",
        help="RAD / RAR-D candidates: fresh at every update (Wu et al.) or one dense set drawn once (the R3 authors' code)",
    )
    parser.add_argument(
        "--init",
        choices=sorted(INITIALISATIONS),
        default="xavier_normal",
        help="the MLP's hidden layers' initialisation (torch_default: as the R3 authors' convection runs)",
    )
    parser.add_argument(
        "--conditions",
        choices=sorted(CONDITIONS),
        default="grid",
        help="the initial and periodicity points: the authors' grids (512 x, 251 t) or 256 random each",
    )
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="train a sampler's seeds side by side as one batched ensemble (train_pinn_ensemble); seconds are then per seed",
    )
    parser.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        help="a directory to checkpoint each run in: a killed or split sweep continues where it stopped",
    )
    args = parser.parse_args()
    # RAD and RAR-D as the R3 paper's authors ran them on convection (README of arkadaw9/r3_sampling_icml2023:
    # --N_s 100000 --k 100 --m 10; sampler_rar.py draws with torch.multinomial(|r|), i.e. k = 1, c = 0). One
    # difference by default: fresh dense candidates at each update; --dense-set fixed scores one set drawn once, as they do.
    dense = {"every": 100, "candidates": 100_000, "k": 1.0, "c": 0.0, "fresh_candidates": args.dense_set == "fresh"}
    settings = {"rar_d": {**dense, "added": 10}, "rad": dense, "uniform_resampled": {"every": 1}}

    def member(problem, sampler_name: str, seed: int):
        """Returns the network and sampler of one seed (the ensemble's member ``seed - first_seed`` alike)."""
        torch.manual_seed(seed)
        network = MLP(problem.dim, 50, 4, init=args.init)
        return network, make_sampler(sampler_name, problem, args.points, seed=seed, **settings.get(sampler_name, {}))

    rows = []
    for problem_name in args.problems:
        problem = PROBLEMS[problem_name]
        for sampler_name in args.samplers:
            seeds = range(args.first_seed, args.first_seed + args.seeds)
            groups = [list(seeds)] if args.ensemble else [[seed] for seed in seeds]  # train_pinn is the one-member case
            results = []
            for group in groups:
                networks, samplers = zip(*(member(problem, sampler_name, seed) for seed in group), strict=True)
                span = f"seed{group[0]}" if len(group) == 1 else f"seeds{group[0]}-{group[-1]}"
                checkpoint = (
                    None
                    if args.checkpoints is None
                    else args.checkpoints / f"{problem_name}-{sampler_name}-{args.init}-{args.conditions}-{span}.pt"
                )
                config = PINNConfig(iterations=args.iterations, seed=group[0], **CONDITIONS[args.conditions])
                results += train_pinn_ensemble(problem, networks, samplers, config, checkpoint=checkpoint)
            errors = [r.relative_l2 for r in results]
            seconds = [r.seconds for r in results] if not args.ensemble else [results[0].seconds / len(results)]
            rows.append((problem_name, sampler_name, statistics.median(errors), statistics.median(seconds)))
            per_seed = ", ".join(f"{e:.4f}" for e in errors)
            spread = f", mean {statistics.mean(errors):.4f} ± {statistics.stdev(errors):.4f}" if len(errors) > 1 else ""
            print(
                f"{problem_name:11s} {sampler_name:18s} relative L2 {rows[-1][2]:.4f}  ({rows[-1][3]:.0f} s); seeds "
                f"{args.first_seed}..: {per_seed}{spread}",
                flush=True,
            )
    print(f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, {date.today()}")
    print(
        f"{args.iterations} Adam iterations, {args.points} points, {args.init} initialisation, {args.conditions} conditions, "
        f"median of {args.seeds} seed(s)"
    )
    print("| problem | sampler | relative L2 | seconds |\n|---|---|---|---|")
    for problem_name, sampler_name, error, seconds in rows:
        print(f"| {problem_name} | {sampler_name} | {error:.4f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
