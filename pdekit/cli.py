"""The ``pdekit`` command.

Bad input is a one-line message on standard error, ``pdekit <command>: <message>``, and exit code
2: the options' argparse types catch what they can (``positive_int``, ``device_type``, ...), and
``main`` turns the ValueError, StoreError, missing-file or LockedError a handler lets escape into that line
(``PDEKIT_TRACEBACK=1`` shows the traceback instead). Other exceptions are bugs and keep theirs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import cast

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from tqdm.contrib.logging import logging_redirect_tqdm

import pdekit
from pdekit.allocator import retain_freed_memory_unless_disabled
from pdekit.arguments import (
    device_type,
    finite_float,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    writable_directory,
)
from pdekit.atomic import write_atomically
from pdekit.data import PDES, RECIPES, generate, validate
from pdekit.data.lock import LockedError
from pdekit.frontier_cli import add_frontier_parser
from pdekit.io.cli import add_export_parser, add_import_parser
from pdekit.models import MODELS
from pdekit.online.reservoir import POLICIES
from pdekit.rollout.integrators import INTEGRATORS
from pdekit.rollout.objectives import MODES
from pdekit.training.losses import LOSSES


def parse_times(text: str) -> tuple[float, ...]:
    """Returns the output times of ``--times``: ``0:STOP:STEP`` (the stored times 0, STEP, ..., STOP) or a comma list of positive times."""
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if start != 0 or not (step > 0 and stop >= step):
                raise ValueError
            count = round(stop / step)
            if abs(count * step - stop) > 1e-9 * stop:
                raise ValueError
            return tuple(step * n for n in range(1, count + 1))
        times = tuple(float(t) for t in text.split(","))
        if min(times) <= 0 or list(times) != sorted(times):
            raise ValueError
        return times
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected 0:STOP:STEP with STOP a multiple of STEP > 0 (t = 0 is always stored), or increasing positive times t1,t2,...; got "
            f"{text!r}"
        ) from None


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default, unless the option has none, counts (``-v``) or its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == [] or action.default == argparse.SUPPRESS
        if unset or isinstance(action, argparse._CountAction) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class StandardErrorHandler(logging.StreamHandler):
    """A logging handler writing to whatever ``sys.stderr`` is at the time of each record (pytest swaps it between tests)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


@contextlib.contextmanager
def command_logging(verbosity: int) -> Iterator[None]:
    """Sends pdekit's log records to standard error, one line each, while the block runs, then puts logging and warnings back.

    ``verbosity`` -1 (``-q``): errors only, and Python warnings silenced; 0 (the default): progress lines
    (a batch generated, an epoch trained, a frontier route) and warnings; 1 or more (``-v``): debugging
    detail too. Lines and a progress bar on the same terminal do not overwrite each other.
    """
    log = logging.getLogger("pdekit")
    saved = log.handlers[:], log.level
    handler = StandardErrorHandler()
    handler.setFormatter(logging.Formatter("pdekit: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.ERROR if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG)
    try:
        with warnings.catch_warnings(), logging_redirect_tqdm(loggers=[log]):
            if verbosity < 0:
                warnings.simplefilter("ignore")
            yield
    finally:
        log.handlers[:], log.level = saved


def add_verbosity_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Adds ``-q/--quiet`` and ``-v/--verbose`` (repeatable) to ``parser``, into ``<prefix>quiet`` and ``<prefix>verbose``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", dest=f"{prefix}quiet", help="errors only: no progress bar, no warnings")
    group.add_argument("-v", "--verbose", action="count", default=0, dest=f"{prefix}verbose", help="debugging detail on standard error")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on standard error, ``pdekit <command>: <message>``, exit code 2 (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}\n")


# What a handler raises for bad input (StoreError is a ValueError) or for a run or store another
# process holds (LockedError); main() reports these in one line, anything else is a bug.
# OSError covers what the user's environment refuses (a read-only disk, an unreachable --scheduler, a missing filesystem backend).
USER_ERRORS = (ValueError, OSError, ImportError, LockedError)


def reported(command: str, handler, *args) -> int:
    """Returns ``handler(*args)``, or 2 after printing ``pdekit <command>: <message>`` (one line) for a ``USER_ERRORS`` exception."""
    try:
        return handler(*args)
    except USER_ERRORS as error:
        if os.environ.get("PDEKIT_TRACEBACK"):
            raise
        print(f"pdekit {command}: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


def add_generate_arguments(parser: argparse.ArgumentParser, recipe: str | None = None) -> None:
    """Adds the options of ``pdekit generate`` (and of the scripts in ``datasets/``) to ``parser``."""
    from pdekit.data import PDES
    from pdekit.solvers.gray_scott import WELL_PATTERNS

    if recipe is None:
        parser.add_argument("recipe", choices=sorted(RECIPES), help="the ensemble recipe (see docs/recipes.md)")
    parser.add_argument("--out", required=True, help="the Zarr store: a directory or any fsspec URL")
    parser.add_argument("--members", type=positive_int, help="ensemble size (default: the recipe's)")
    parser.add_argument("--batch-size", type=positive_int, help="members per solver call (default: the recipe's)")
    parser.add_argument("--seed", type=int, help="base seed of parameters and initial conditions (default: the recipe's)")
    parser.add_argument(
        "--shape", type=positive_int, nargs="+", metavar="N", help="the solver's grid, e.g. --shape 64 64 (default: the recipe's)"
    )
    parser.add_argument(
        "--stored-shape",
        type=positive_int,
        nargs="+",
        metavar="N",
        help="the stored grid, Fourier-truncated (default: the recipe's, capped at --shape)",
    )
    parser.add_argument("--times", type=parse_times, help="output times: 0:STOP:STEP (e.g. 0:10:0.5) or t1,t2,... (default: the recipe's)")
    parser.add_argument("--dt", type=positive_float, help="the solver's largest time step (default: the recipe's)")
    fields = sorted({name for pde in PDES.values() for name in pde.fields})
    parser.add_argument(
        "--fields",
        nargs="+",
        choices=fields,
        help="fields to record, in channel order, e.g. --fields vorticity velocity (default: the PDE's)",
    )
    parser.add_argument("--resume", action="store_true", help="finish an interrupted generation into --out")
    parser.add_argument("--scheduler", help="address of a dask.distributed scheduler to run the batches on")
    parser.add_argument("--device", type=device_type, help="torch device of the solver (default: CUDA when present)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    if recipe in (None, "fno_navier_stokes"):
        parser.add_argument("--viscosity", type=positive_float, help="fno_navier_stokes only: 1e-3 (default), 1e-4 or 1e-5")
    if recipe in (None, "kolmogorov_flow"):
        parser.add_argument(
            "--reynolds",
            type=positive_float,
            nargs="+",
            metavar="RE",
            help="kolmogorov_flow only: one Reynolds number for every member, or LOW HIGH for a log-uniform range (default 100 1000)",
        )
    if recipe in (None, "gray_scott"):
        parser.add_argument(
            "--pattern", choices=sorted(WELL_PATTERNS), help="gray_scott only: The Well's feed and kill rates (default gliders)"
        )


def recipe_from_arguments(args: argparse.Namespace, name: str):
    """Returns the recipe ``name`` with the options' overrides; ValueError naming the option that does not apply or fit."""
    from pdekit.data.recipes import RECIPE_OPTIONS, named_recipe

    recipe = named_recipe(name, **{option: getattr(args, option, None) for option in RECIPE_OPTIONS})
    shape = tuple(args.shape) if args.shape else None
    stored = tuple(args.stored_shape) if args.stored_shape else None
    if shape and not stored:
        stored = (
            tuple(min(s, n) for s, n in zip(recipe.stored_shape or recipe.shape, shape, strict=True))
            if len(shape) == len(recipe.shape)
            else shape
        )
    for option, value in (("--shape", shape), ("--stored-shape", stored)):
        if value is not None and len(value) != len(recipe.shape):
            raise ValueError(f"{option} needs {len(recipe.shape)} sizes for {name}; got {list(value)}")
    return recipe.with_overrides(
        members=args.members,
        batch_size=args.batch_size,
        seed=args.seed,
        shape=shape,
        stored_shape=stored,
        times=args.times,
        dt=args.dt,
        fields=tuple(args.fields) if args.fields else None,
    )


def run_generate(args: argparse.Namespace, recipe_name: str | None = None) -> int:
    """``pdekit generate`` (and the scripts in ``datasets/``, which call it without ``main``: it reports its own errors)."""
    return reported("generate", _generate, args, recipe_name or args.recipe)


def _generate(args: argparse.Namespace, name: str) -> int:
    if args.out.startswith("memory://"):
        raise ValueError(
            f"--out {args.out}: a memory:// store lives in this process only and would vanish when it exits; give a directory or a "
            "persistent URL (file://, s3://, ...)"
        )
    recipe = recipe_from_arguments(args, name)
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    try:
        summary = generate(recipe, args.out, resume=args.resume, client=client, device=args.device, progress=not args.no_progress)
    finally:
        if client is not None:
            client.close()
    print(summary)
    return 0 if summary.failed == 0 else 1


def parse_assignment(text: str) -> tuple[list[str], object]:
    """Returns ``(["trainer", "epochs"], 5)`` for ``"trainer.epochs=5"``; the value is read as TOML, else as a string."""
    key, separator, value = text.partition("=")
    if not separator or "." not in key:
        raise ValueError(f"--set takes SECTION.KEY=VALUE (e.g. trainer.epochs=5 or model.width=64); got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.split("."), parsed


def experiment_from_arguments(args: argparse.Namespace):
    """Returns the ExperimentConfig of ``pdekit train``: the file's (or defaults), then the options, then ``--set``."""
    from pdekit.runs import ExperimentConfig, load_config

    config = load_config(args.config) if args.config else ExperimentConfig()
    settings = dict(config.model.settings)
    for assignment in args.set or []:
        (section, *rest), value = parse_assignment(assignment)
        if section == "model" and rest != ["name"]:
            settings[".".join(rest[1:] if rest[0] == "settings" and len(rest) > 1 else rest)] = value  # model.KEY or model.settings.KEY
            continue
        try:
            config = config.with_overrides(**{section: {".".join(rest): value}})
        except ValueError as error:
            raise ValueError(f"--set {assignment}: {error}") from None
    if getattr(args, "recipe", None) is not None:  # pdekit online
        config = config.with_overrides(
            online={
                "recipe": args.recipe,
                "policy": args.policy,
                "capacity": args.capacity,
                "min_seen": args.min_seen,
                "watermark": args.watermark,
                "steps_per_epoch": args.steps_per_epoch,
                "members": args.members,
                "workers": args.workers,
                "scheduler": args.scheduler,
                "validation_store": args.validation,
                "validation_members": args.validation_members,
                "tee": args.tee,
                "solver_device": args.solver_device,
            }
        )
    config = config.with_overrides(
        data={
            "store": getattr(args, "data", None),
            "batch_size": args.batch_size,
            "input_steps": args.input_steps,
            "target_steps": args.target_steps,
        },
        model={"name": args.model, "settings": settings},
        trainer={
            "epochs": args.epochs,
            "learning_rate": args.learning_rate,
            "loss": args.loss,
            "progress": False if args.no_progress else None,
        },
        rollout={
            "mode": args.mode,
            "integrator": args.integrator,
            "teacher_forcing_epochs": args.teacher_forcing_epochs,
            "noise": args.noise,
        },
        seed=args.seed,
    )
    # --unroll and --pushforward mean the same in every mode; a correction keeps them in its own section
    section = "correction" if config.rollout.mode == "correction" else "rollout"
    return config.with_overrides(**{section: {"unroll": args.unroll, "pushforward": True if args.pushforward else None}})


def fit_from_arguments(fit, args: argparse.Namespace):
    """Returns ``(config, trainer)`` of ``fit(config, out, resume=, device=)`` on the arguments' config."""
    config = experiment_from_arguments(args)
    return config, fit(config, args.out, resume=args.resume, device=args.device)


def run_train(args: argparse.Namespace) -> int:
    from pdekit.runs import train

    config, trainer = fit_from_arguments(train, args)
    last = trainer.history[-1] if trainer.history else {}
    if not trainer.process.is_main:  # under torchrun, one report
        return 0
    print(
        f"trained {config.model.name} for {trainer.epoch} epochs into {args.out}: validation relative L2 "
        f"{last.get('validation_l2', float('nan')):.4g}"
    )
    return 0


def run_online(args: argparse.Namespace) -> int:
    from pdekit.runs.online import train_online

    config, trainer = fit_from_arguments(train_online, args)
    last = trainer.history[-1] if trainer.history else {}
    if not trainer.process.is_main:  # under torchrun, one report
        return 0
    ended = f" (the stream of {config.online.members} members ended them)" if trainer.epoch < config.trainer.epochs else ""
    print(
        f"trained {config.model.name} online on {config.online.recipe} for {trainer.epoch} epochs{ended} into {args.out}: "
        f"validation relative L2 {last.get('validation_l2', float('nan')):.4g}, {last.get('members_solved', 0)} members solved, "
        f"{last.get('unique_samples_drawn', 0)} unique samples drawn, waiting {100 * last.get('waiting_fraction', 0):.1f}% of the last "
        "epoch"
    )
    return 0


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the options ``pdekit train`` and ``pdekit online`` share: model, trainer, rollout training, overrides."""
    parser.add_argument("--model", choices=sorted(MODELS), help="the operator (model.name)")
    parser.add_argument("--config", help="a TOML or YAML configuration file")
    parser.add_argument("--out", required=True, help="the run directory")
    parser.add_argument("--epochs", type=positive_int, help="training epochs (trainer.epochs; default 20)")
    parser.add_argument("--batch-size", type=positive_int, help="windows per batch (data.batch_size; default 16)")
    parser.add_argument(
        "--learning-rate", type=positive_float, help="the optimiser's initial learning rate (trainer.learning_rate; default 1e-3)"
    )
    parser.add_argument("--input-steps", type=positive_int, help="states in (the FNO paper's Navier-Stokes setting uses 10)")
    parser.add_argument("--target-steps", type=positive_int, help="states out")
    parser.add_argument("--loss", choices=sorted(LOSSES), help="training loss (default l2)")
    parser.add_argument("--seed", type=int, help="seed of the weights, the batch order and the noise (seed; default 0)")
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="predict the next state, du/dt, or a correction of a coarse solver step (rollout.mode; correction: the [correction] section)",
    )
    parser.add_argument("--integrator", choices=sorted(INTEGRATORS), help="derivative mode's integrator")
    parser.add_argument(
        "--unroll",
        type=positive_int,
        help="steps rolled out per window in training (needs --target-steps >= it; rollout.unroll, correction.unroll in correction mode)",
    )
    parser.add_argument(
        "--pushforward", action="store_true", help="gradients through the last unrolled step only (rollout. or correction.pushforward)"
    )
    parser.add_argument(
        "--teacher-forcing-epochs", type=non_negative_int, help="curriculum from teacher forcing to autoregression over these epochs"
    )
    parser.add_argument("--noise", type=non_negative_float, help="std of Gaussian noise on the input states (normalised units)")
    parser.add_argument(
        "--set", action="append", metavar="SECTION.KEY=VALUE", help="any other setting, e.g. trainer.weight_decay=0 or model.width=64"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--device", type=device_type, help="torch device (default: CUDA when present)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_evaluate(args: argparse.Namespace) -> int:
    from pdekit.runs import evaluate

    if args.plots:
        writable_directory(args.plots, "--plots")
    result = evaluate(args.run, args.data, device=args.device)
    print(result)
    if args.plots:
        args.dt, args.steps, args.start_time = None, None, None
        return run_rollout(args)
    return 0


def run_rollout(args: argparse.Namespace) -> int:
    from pdekit.runs import evaluate_rollout

    if args.plots:
        writable_directory(args.plots, "--plots")
    start_time = 0.0 if args.start_time is None else args.start_time
    result = evaluate_rollout(args.run, args.data, dt=args.dt, steps=args.steps, start_time=start_time, device=args.device)
    print(result)
    if args.plots:
        from pdekit.viz import rollout_figures

        for path in rollout_figures(result, args.plots):
            print(f"wrote {path}")
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    from pdekit.data import upgrade_store

    upgraded = upgrade_store(args.store)
    print(f"{args.store}: {'upgraded to' if upgraded else 'already'} schema version 2")
    report = validate(args.store)
    print(report)
    return 0 if report.ok else 1


def run_info(args: argparse.Namespace) -> int:
    """Prints what a store, a run directory or a checkpoint holds."""
    path = Path(args.path)
    if "://" not in args.path and not path.exists():
        raise FileNotFoundError(f"{args.path}: no such file or directory")
    checkpoint = path / "checkpoint.pt" if path.is_dir() and (path / "checkpoint.pt").exists() else path if path.suffix == ".pt" else None
    if checkpoint is None:
        report = validate(args.path)
        if report.problems and not (path / "zarr.json").exists():
            raise ValueError(f"{args.path} is neither a Zarr ensemble, a run directory nor a checkpoint")
        import zarr

        from pdekit.data import StoreError, open_store
        from pdekit.data.schema import json_attribute, names
        from pdekit.data.store import member_status, store_fields

        try:
            group = open_store(args.path)
        except StoreError:
            if "schema_version" not in zarr.open_group(args.path, mode="r").attrs:
                raise ValueError(f"{args.path} is a Zarr group but not a pdekit ensemble (it has no schema_version attribute)") from None
            raise
        completed, failed = member_status(group)
        attrs = dict(group.attrs)
        print(f"ensemble {args.path}: {attrs.get('pde')} ({attrs.get('solver')}, scheme {attrs.get('scheme')})")
        print(f"  {int(completed.sum())} of {len(completed)} members completed, {int(failed.sum())} failed")
        for name in store_fields(group):
            field = cast(zarr.Array, group[name])
            print(f"  {name}{tuple(getattr(field.metadata, 'dimension_names', None) or ())} {field.shape} {field.dtype}")
        print(f"  parameters {names(attrs, 'parameter_names')}; recipe {json_attribute(attrs, 'recipe', {}).get('name')}")
        print(f"  {report}")
        return 0 if report.ok else 1
    from pdekit.training import load_checkpoint

    state = load_checkpoint(checkpoint)
    parameters = sum(t.numel() for t in state.get("model", {}).values() if hasattr(t, "numel"))
    print(f"checkpoint {checkpoint}: model {state.get('model_spec')}")
    print(f"  {parameters:,} weights; {state.get('epoch')} epochs done")
    if state.get("history"):
        print(f"  last epoch: {state['history'][-1]}")
    return 0


def run_pinn(args: argparse.Namespace) -> int:
    import json
    import statistics

    import torch

    from pdekit.pinn import MLP, PROBLEMS, PINNConfig, make_sampler, plot_population, train_pinn_ensemble

    if args.beta is not None and args.problem != "convection":
        raise ValueError(f"--beta applies to the convection problem, not {args.problem}")
    problem = PROBLEMS[args.problem](**({} if args.beta is None else {"beta": args.beta}))
    out = writable_directory(args.out, "--out")  # before training: a bad path must not lose a finished run
    seeds = range(args.seed, args.seed + args.seeds)
    if not (-(2**63) <= seeds[0] and seeds[-1] < 2**63):  # torch's seeds are 64-bit
        raise ValueError(f"--seed and --seeds: every seed must lie in [-2**63, 2**63); got {seeds[0]}..{seeds[-1]}")
    networks, samplers = [], []
    for seed in seeds:  # seed s trains as `pdekit pinn --seed s` would: its weights, points and sampler
        torch.manual_seed(seed)
        networks.append(MLP(problem.dim, args.width, args.depth, periods=problem.periods if args.periodic else None, init=args.init))
        samplers.append(make_sampler(args.sampler, problem, args.points, seed=seed))
    config = PINNConfig(
        iterations=args.iterations,
        learning_rate=args.learning_rate,
        lbfgs_iterations=args.lbfgs,
        conditions=args.conditions,
        population_every=max(1, args.iterations // 8),
        progress=not args.no_progress,
        seed=args.seed,
    )
    try:
        results = train_pinn_ensemble(problem, networks, samplers, config, failure_dir=out)
    except FloatingPointError as error:
        print(f"pdekit pinn: {error}", file=sys.stderr)
        return 1
    record = {
        "problem": args.problem,
        "sampler": args.sampler,
        "conditions": args.conditions,
        "relative_l2": results[0].relative_l2,
        "seconds": results[0].seconds,
        "history": results[0].history,
    }
    if len(results) > 1:
        errors = [r.relative_l2 for r in results]
        record |= {
            "seeds": list(seeds),
            "relative_l2_per_seed": errors,
            "relative_l2_mean": statistics.mean(errors),
            "relative_l2_std": statistics.stdev(errors),
            "history_per_seed": [r.history for r in results],
        }
    write_atomically(out / "pinn.json", json.dumps(record, indent=1))
    figure = plot_population(results[0], problem, out / "population.png")
    if len(results) == 1:
        summary = f"relative L2 {results[0].relative_l2:.4g}"
    else:
        per_seed = ", ".join(f"{e:.4g}" for e in record["relative_l2_per_seed"])
        spread = f"{record['relative_l2_mean']:.4g} ± {record['relative_l2_std']:.2g}"
        summary = f"relative L2 {spread} over seeds {seeds[0]}..{seeds[-1]} ({per_seed})"
    print(
        f"{problem.name} with {samplers[0].name}: {summary} after {args.iterations} iterations "
        f"({results[0].seconds:.0f} s); wrote {out / 'pinn.json'} and {figure} (seed {args.seed})"
    )
    return 0


def run_quickstart_command(args: argparse.Namespace) -> int:
    from pdekit.quickstart import QuickstartConfig, run_quickstart

    given = {"members": args.members, "epochs": args.epochs, "horizon": args.horizon, "fields": tuple(args.fields) if args.fields else None}
    config = QuickstartConfig(**{k: v for k, v in given.items() if v is not None})  # checks the sizes before anything runs
    run_quickstart(args.out, config, device=args.device, progress=not args.no_progress)
    return 0


def run_validate(args: argparse.Namespace) -> int:
    report = validate(args.store)
    print(report)
    return 0 if report.ok else 1


def add_generate_parser(commands) -> argparse.ArgumentParser:
    """Adds ``pdekit generate`` to ``commands`` and returns its parser."""
    parser = commands.add_parser(
        "generate",
        help="simulate an ensemble into a Zarr store",
        description="Simulate an ensemble into a Zarr store, crash-safe and resumable.",
    )
    add_generate_arguments(parser)
    parser.set_defaults(func=run_generate)
    return parser


def add_validate_parser(commands) -> argparse.ArgumentParser:
    """Adds ``pdekit validate`` to ``commands`` and returns its parser."""
    parser = commands.add_parser(
        "validate", help="check a Zarr ensemble against the schema", description="Check a Zarr ensemble against pdekit's schema."
    )
    parser.add_argument("store", help="the Zarr store: a directory or any fsspec URL")
    parser.set_defaults(func=run_validate)
    return parser


def add_upgrade_parser(commands) -> argparse.ArgumentParser:
    """Adds ``pdekit upgrade`` to ``commands`` and returns its parser."""
    parser = commands.add_parser(
        "upgrade",
        help="rewrite an older pdekit store as the current schema, in place",
        description="Rewrite a schema-version-1 store's metadata and flags as version 2 in place (the field data is not touched); "
        "safe to run again after an interruption.",
    )
    parser.add_argument("store", help="the Zarr store: a directory or any fsspec URL")
    parser.set_defaults(func=run_upgrade)
    return parser


def add_train_parser(commands) -> argparse.ArgumentParser:
    """Adds ``pdekit train`` to ``commands`` and returns its parser."""
    parser = commands.add_parser(
        "train",
        help="train a neural operator on a Zarr ensemble",
        description="Train a neural operator on windows of a Zarr ensemble. Settings come from --config (TOML or YAML, "
        "sections [data], [model], [trainer]), then the options below, then --set. The resolved configuration is "
        "written to OUT/config.toml; checkpoints and metrics.jsonl go to OUT. Run under torchrun for DDP.",
    )
    parser.add_argument("--data", help="the Zarr ensemble (data.store)")
    add_training_arguments(parser)
    parser.set_defaults(func=run_train)
    return parser


def add_online_parser(commands) -> argparse.ArgumentParser:
    """Adds ``pdekit online`` to ``commands`` and returns its parser."""
    parser = commands.add_parser(
        "online",
        help="train while a solver streams new simulations (no dataset on disk)",
        description="Train a neural operator online: the recipe's solver runs beside the trainer (a thread on the GPU, "
        "CPU worker processes, or dask workers) and streams windows into a reservoir on the training device, which the "
        "Trainer draws batches from. Same run directory, checkpoints, metrics and --config/--set as pdekit train "
        "(section [online] holds the options below); pdekit evaluate and rollout work on the run. Under torchrun every "
        "rank trains from its own reservoir, fed by its own share of the stream (docs/scaling.md).",
    )
    parser.add_argument("--recipe", required=True, choices=sorted(RECIPES), help="the simulations to stream (online.recipe)")
    add_training_arguments(parser)
    parser.add_argument("--policy", choices=POLICIES, help="reservoir policy (default reservoir)")
    parser.add_argument("--capacity", type=positive_int, help="windows the reservoir holds (default 2048)")
    parser.add_argument(
        "--min-seen",
        type=non_negative_int,
        help="evict only windows drawn at least this often (Melissa's rule, default 1; 0: Algorithm R; reservoir policy only)",
    )
    parser.add_argument("--watermark", type=positive_int, help="windows held before training starts (default: half the capacity)")
    parser.add_argument("--steps-per-epoch", type=positive_int, help="batches per epoch (default 100)")
    parser.add_argument(
        "--members",
        type=positive_int,
        help="stop the stream after this many members; the reservoir then drains and training ends (default: no end)",
    )
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        help="CPU processes solving (0: one thread of the training process; "
        "default: a thread on a GPU solver device, one process on the CPU)",
    )
    parser.add_argument("--scheduler", help="address of a dask.distributed scheduler whose workers solve")
    parser.add_argument("--solver-device", type=device_type, help="device of the solver thread (default: the training device)")
    parser.add_argument("--validation", help="Zarr store to validate on (its last data.validation_fraction, as pdekit train does)")
    parser.add_argument(
        "--validation-members", type=positive_int, help="without --validation: members generated once for validation (default 16)"
    )
    parser.add_argument("--tee", help="also write every streamed member into this new Zarr store (needs --members)")
    parser.set_defaults(func=run_online)
    return parser


def add_evaluate_parser(commands) -> argparse.ArgumentParser:
    """Adds ``pdekit evaluate`` to ``commands`` and returns its parser."""
    parser = commands.add_parser(
        "evaluate",
        help="test errors of a trained run per output time",
        description="Relative L2 errors of a run's model per target time, on its validation members or on another store.",
    )
    parser.add_argument("run", help="the run directory written by pdekit train")
    parser.add_argument("--data", help="a test store (default: the run's validation members)")
    parser.add_argument("--device", type=device_type, help="torch device (default: CUDA when present)")
    parser.add_argument("--plots", metavar="DIR", help="also roll out the test members and write figures (fields, error, spectra) to DIR")
    parser.set_defaults(func=run_evaluate)
    return parser


def add_rollout_parser(commands) -> argparse.ArgumentParser:
    """Adds ``pdekit rollout`` to ``commands`` and returns its parser."""
    parser = commands.add_parser(
        "rollout",
        help="roll a trained surrogate out against stored trajectories",
        description="Roll the run's surrogate out from each test member's first states to the end of its stored trajectory: "
        "relative L2 per time, correlation time, optional figures.",
    )
    parser.add_argument("run", help="the run directory written by pdekit train")
    parser.add_argument("--data", help="a test store (default: the run's validation members)")
    parser.add_argument("--dt", type=positive_float, help="rollout step (derivative mode: the stored step divided by an integer)")
    parser.add_argument("--steps", type=positive_int, help="stored steps to roll out (default: the whole trajectory)")
    parser.add_argument(
        "--start-time", type=non_negative_float, help="start from the stored states at this time (default 0), e.g. after a spin-up"
    )
    parser.add_argument("--plots", metavar="DIR", help="write figures (fields, error over time, spectra) to DIR")
    parser.add_argument("--device", type=device_type, help="torch device (default: CUDA when present)")
    parser.set_defaults(func=run_rollout)
    return parser


def add_info_parser(commands) -> argparse.ArgumentParser:
    """Adds ``pdekit info`` to ``commands`` and returns its parser."""
    parser = commands.add_parser(
        "info",
        help="what a store, run directory or checkpoint holds",
        description="Summarise a Zarr ensemble, a run directory or a checkpoint.",
    )
    parser.add_argument("path", help="a Zarr store or a run directory")
    parser.set_defaults(func=run_info)
    return parser


def add_quickstart_parser(commands) -> argparse.ArgumentParser:
    """Adds ``pdekit quickstart`` to ``commands`` and returns its parser."""
    parser = commands.add_parser(
        "quickstart",
        help="the whole loop on a small Navier-Stokes problem",
        description="Generate a small Navier-Stokes ensemble into a Zarr store, train an FNO on it, roll it out against the "
        "solver, print a results table and write figures. A few minutes on 2 CPU cores; re-running continues where it stopped.",
    )
    parser.add_argument("--out", default="pdekit-quickstart", help="folder for the store, the run and the figures (default: %(default)s)")
    parser.add_argument("--members", type=int, help="ensemble size (default 40)")
    parser.add_argument("--epochs", type=int, help="training epochs (default 8)")
    parser.add_argument("--horizon", type=float, help="simulated time (default 10)")
    parser.add_argument(
        "--fields",
        nargs="+",
        choices=sorted(PDES["navier_stokes_2d"].fields),
        help="fields to learn (default vorticity; vorticity velocity: three channels)",
    )
    parser.add_argument("--device", type=device_type, help="torch device (default: CUDA when present)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_quickstart_command)
    return parser


def add_pinn_parser(commands) -> argparse.ArgumentParser:
    """Adds ``pdekit pinn`` to ``commands`` and returns its parser."""
    parser = commands.add_parser(
        "pinn",
        help="train a PINN with R3 or another collocation sampler",
        description="Train a physics-informed network on a 1D/2D benchmark problem; prints the relative L2 error against the "
        "exact or spectral reference and writes the loss history and a figure of the collocation points over training.",
    )
    from pdekit.pinn import CONDITION_LAYOUTS, INITIALISATIONS, PROBLEMS
    from pdekit.pinn.samplers import SAMPLERS

    parser.add_argument("problem", choices=sorted(PROBLEMS), help="the benchmark problem")
    parser.add_argument("--sampler", default="r3", choices=sorted(SAMPLERS), help="collocation sampler (default: %(default)s)")
    parser.add_argument("--points", type=positive_int, default=1000, help="collocation population")
    parser.add_argument("--iterations", type=positive_int, default=5000, help="Adam iterations")
    parser.add_argument("--learning-rate", type=positive_float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--lbfgs", type=non_negative_int, default=0, help="L-BFGS iterations after Adam")
    parser.add_argument("--beta", type=finite_float, help="convection speed (convection only; default 50)")
    parser.add_argument("--width", type=positive_int, default=50, help="hidden units per layer")
    parser.add_argument("--depth", type=positive_int, default=4, help="hidden layers")
    parser.add_argument("--periodic", action="store_true", help="embed x periodically (exact periodic boundary)")
    parser.add_argument(
        "--init",
        default="xavier_normal",
        choices=sorted(INITIALISATIONS),
        help="hidden layers' initialisation (torch_default: as the R3 authors' convection runs; default: %(default)s)",
    )
    parser.add_argument(
        "--conditions",
        default="uniform",
        choices=sorted(CONDITION_LAYOUTS),
        help="initial-condition and periodicity points: random, or on grids as in the R3 authors' convection runs (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the collocation points")
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=1,
        help="train seeds --seed, --seed + 1, ... side by side as one batched ensemble; reports mean ± std (default: 1)",
    )
    parser.add_argument("--out", default="pinn-run", help="folder for pinn.json and population.png (checked before training)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_pinn)
    return parser


SUBCOMMANDS = (
    add_generate_parser,
    add_validate_parser,
    add_upgrade_parser,
    add_train_parser,
    add_online_parser,
    add_evaluate_parser,
    add_rollout_parser,
    add_info_parser,
    add_quickstart_parser,
    add_pinn_parser,
    add_export_parser,
    add_import_parser,
    add_frontier_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """Returns the ``pdekit`` parser: one subparser per command, each built by its own ``add_*_parser`` and dispatching through its ``func``
    default."""
    parser = Parser(prog="pdekit", description="Neural surrogates of PDEs: data, training, evaluation.", formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {pdekit.__version__}")
    add_verbosity_arguments(parser, prefix="command_")  # pdekit -q CMD as well as pdekit CMD -q
    commands = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        command = add(commands)
        command.formatter_class = HelpFormatter
        add_verbosity_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs ``pdekit ARGV``; returns the exit code (2 with a one-line message for bad input: see the module's docstring).

    The command keeps freed host memory for reuse (``pdekit.allocator``; ``PDEKIT_RETAIN_FREED_MEMORY=0`` turns it off).
    """
    retain_freed_memory_unless_disabled()
    args = build_parser().parse_args(argv)
    quiet = args.quiet or args.command_quiet
    if quiet and hasattr(args, "no_progress"):
        args.no_progress = True
    with command_logging(-1 if quiet else args.verbose + args.command_verbose):
        return reported(args.command, args.func, args)


if __name__ == "__main__":
    sys.exit(main())
