"""An online training run: a generator streams simulations into a reservoir that the Trainer draws from; no dataset on disk."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from pdekit.data import RECIPES, Recipe, generate, open_store
from pdekit.data.recipes import differing_settings
from pdekit.data.schema import json_attribute
from pdekit.data.store import channel_names, space_shape
from pdekit.online import POLICIES, Generator, GeneratorCounters, Reservoir
from pdekit.online.lockstep import Lockstep
from pdekit.online.stream import ReservoirBatches
from pdekit.runs.config import ExperimentConfig
from pdekit.runs.data import validation_members, windows
from pdekit.runs.integrity import Resumption, check_store, lock_run, store_address
from pdekit.runs.train import build_trainer, resumption, training_statistics
from pdekit.seeds import ONLINE_VALIDATION_STREAM, RESERVOIR_STREAM, derived_seed
from pdekit.training.checkpoint import data_state_files, data_state_path, load_checkpoint
from pdekit.training.distributed import Process, init_from_environment
from pdekit.training.trainer import Trainer

VALIDATION_STORE = "validation.zarr"

log = logging.getLogger(__name__)


def online_recipe(config: ExperimentConfig) -> Recipe:
    """Returns the recipe ``config.online`` streams (with its ``batch_size`` override)."""
    name = config.online.recipe
    if name not in RECIPES:
        raise ValueError(f"online.recipe {name!r} is not a recipe; choose one of {sorted(RECIPES)}")
    return RECIPES[name]().with_overrides(batch_size=config.online.batch_size)


def validation_seed(recipe: Recipe) -> int:
    """Returns the seed of the validation members ``pdekit online`` generates: independent of every block of the stream."""
    return derived_seed(recipe.seed, ONLINE_VALIDATION_STREAM, 0)


def reservoir_seed(seed: int, rank: int) -> int:
    """Returns the seed of rank ``rank``'s reservoir: the run's own on rank 0 (as in one process), a derived one on each other rank."""
    return seed if rank == 0 else derived_seed(seed, RESERVOIR_STREAM, rank)


def saved_stream(run_dir: Path, resumed: Resumption | None, process: Process) -> dict | None:
    """Returns this rank's stream state saved with the checkpoint a resume continues (``ReservoirBatches.state_dict``), None for a new run.

    A run directory of an earlier pdekit has none: the reservoir is then refilled and the stream
    restarts after the members the checkpoint had used (a warning says so).

    Raises:
        ValueError: the run was trained on another number of processes (its shares of the stream
            and its reservoirs are per rank).
    """
    if resumed is None:
        return None
    epoch = int(resumed.checkpoint["epoch"])
    path = data_state_path(run_dir, epoch, process.rank)
    ranks = sum(1 for saved_epoch, _, _ in data_state_files(run_dir) if saved_epoch == epoch)
    if ranks and ranks != process.replicas:
        raise ValueError(
            f"{run_dir} was trained online by {ranks} processes; resume it with as many (torchrun --nproc-per-node {ranks}), "
            f"not {process.replicas}: each holds its own reservoir and share of the stream"
        )
    if not path.exists():
        log.warning("%s holds no reservoir state (an earlier pdekit's run): the reservoir is refilled from the stream", run_dir)
        return None
    return load_checkpoint(path, required=("reservoir", "replicas"))


def prepare_validation(
    config: ExperimentConfig,
    recipe: Recipe,
    run_dir: Path,
    progress: bool,
    process: Process | None = None,
    lockstep: Lockstep | None = None,
) -> tuple[ExperimentConfig, list[int]]:
    """Returns the config with ``data.store`` set to the validation store (its ``store_address``), and the stream members to leave out.

    A given ``online.validation_store`` is held out as offline training holds it out; if it was
    generated from the streamed recipe, its held-out members are left out of the stream, so the
    online run never trains on them. Otherwise ``online.validation_members`` members are generated
    once into ``run_dir/validation.zarr`` (finished, not redone, on resume), by the main process
    while the others wait in ``lockstep`` (whose group waits long enough for a heavy recipe).
    """
    process = process or Process()
    store = config.online.validation_store
    if store is None:
        store = str(run_dir / VALIDATION_STORE)
        if process.is_main:
            held_out_recipe = recipe.with_overrides(members=config.online.validation_members, seed=validation_seed(recipe))
            generate(held_out_recipe, store, resume=True, progress=progress)
        if lockstep is not None:
            lockstep.wait_for_all()
    config = config.with_overrides(data={"store": store_address(store)})
    held_out = validation_members(config)
    group = open_store(store)
    channels, shape = channel_names(group), space_shape(group)
    if (channels, shape) != (recipe.channel_names, recipe.stored_grid.shape):
        raise ValueError(
            f"{store}: holds channels {list(channels)} on {shape}; the recipe {recipe.name} streams {list(recipe.channel_names)} on "
            f"{recipe.stored_grid.shape}"
        )
    same_members = not differing_settings(
        json_attribute(group.attrs, "recipe", {}), recipe, ignore=("batch_size",)
    )  # the batch size changes no member's seed or parameters (only its last bits)
    return config, held_out if same_members and config.online.validation_store is not None else []


def train_online(
    config: ExperimentConfig, run_dir: str | Path, *, resume: bool = False, device=None, client=None, recipe: Recipe | None = None
) -> Trainer:
    """Trains ``config.model`` on ``config.online.recipe``'s simulations as they are solved; returns the finished Trainer.

    The same Trainer, checkpoints, metrics and ``config.toml`` as ``pdekit train``; every epoch's
    metrics also hold the stream's figures (``waiting_fraction``, unique samples drawn, reuse,
    members solved). ``pdekit evaluate`` and ``pdekit rollout`` work on the run as on an offline one.
    ``client`` is a ``distributed.Client`` (otherwise one is opened to ``online.scheduler`` when set).
    ``recipe`` streams a Recipe of your own instead of the catalogue's ``online.recipe``. As ``train``:
    the run directory is locked while it trains, and a resume is checked (settings, model,
    validation store) before anything is written.

    **Resume.** After every epoch each process saves its reservoir (samples held, draw counts,
    counters, random state) and the stream position beside the checkpoint
    (``run_dir/data_state``). A resumed run restores them and its Generator continues with the
    next window of the stream, so it starts with the reservoir and counters it had at the
    checkpoint, no window offered twice or skipped. What follows is bit-identical to the
    uninterrupted run, with the same solver device and thread count (the windows' bits depend on
    both), where it does not depend on timing: under ``fifo`` every batch (the oldest
    windows) whenever the reservoir holds one; under ``firo`` and ``reservoir`` the draws depend on
    which windows the producers had delivered at each draw, which is timing, resumed or not.

    **DDP** (under ``torchrun``): each process trains from its own reservoir on its device, fed by
    its own Generator with the share ``(rank, replicas)`` of the stream (disjoint: every member is
    solved and trained by one rank), its own producers (``online.workers`` processes per rank, or
    tasks on the dask cluster, which every rank submits to), and the ranks agree before each batch
    (``pdekit.online.lockstep``): a rank waits for a slower one, and all end an epoch when one rank's
    share of a finite stream is spent. The validation store is made by rank 0 while the others
    wait; ``online.tee`` is refused (one store, written from one process).

    **End of stream.** With ``online.members`` the reservoir drains once every member is in (each
    window left is drawn once more) and training ends then, before ``trainer.epochs`` if the stream
    runs out first.

    Args:
        config: the run's settings; its ``online`` section says what to stream and how.
        run_dir: the run directory.
        resume: continue the run in ``run_dir`` from its last checkpoint.
        device: the training device; None: CUDA when present.
        client: a ``distributed.Client`` whose workers solve; None: ``online.scheduler``'s, or local producers.
        recipe: stream this recipe instead of ``online.recipe``.

    Returns:
        The Trainer after its last epoch.

    Raises:
        ValueError: no recipe to stream, an unknown ``online.recipe``, ``online.tee`` under DDP, an
            unreachable ``online.scheduler``, a validation store of other channels or grid, a
            refused resume, or a resume on another number of processes.
        LockedError: another process is using ``run_dir``.
    """
    if recipe is not None:
        config = config.with_overrides(online={"recipe": recipe.name})
    elif config.online.recipe is None:
        raise ValueError("online.recipe is not set: name the recipe to stream (pdekit online --recipe NAME)")
    process = init_from_environment()
    if process.distributed and config.online.tee is not None:
        raise ValueError(
            f"online.tee={config.online.tee!r} writes one store from one process; under torchrun leave it out "
            "(pdekit generate writes the same members)"
        )
    run_dir = Path(run_dir)
    with lock_run(run_dir, "pdekit online", process):
        resumed = resumption(config, run_dir, resume)  # before the validation store is generated: a refused resume writes nothing
        if resumed is not None:
            config = resumed.config
        stream_state = saved_stream(run_dir, resumed, process)
        torch.manual_seed(config.seed)
        recipe = recipe or online_recipe(config)
        lockstep = Lockstep(process.replicas)
        config, exclude = prepare_validation(config, recipe, run_dir, config.trainer.progress, process, lockstep)
        if resumed is not None and resumed.data is not None:
            check_store(run_dir, resumed.data, config.data.store)
            held_out = resumed.data.validation_members
        else:
            held_out = validation_members(config)
        # The stream has no store: its statistics are those of the validation members (a new run's).
        statistics = training_statistics(config, resumed, held_out)
        validation = windows(config.data, held_out, statistics)
        config, trainer = build_trainer(
            config,
            validation,
            run_dir,
            statistics=statistics,
            process=process,
            resume=resume,
            device=device,
            split=(None, held_out),
            resumed=resumed,
        )
        history = resumed.checkpoint["history"] if resumed is not None else []
        start_member = history[-1].get("next_member", 0) if history else 0
        online = config.online
        min_seen = 0 if POLICIES[online.policy].uses_each_once else online.min_seen  # fifo and firo use every window exactly once anyway
        reservoir = Reservoir(
            online.capacity,
            online.policy,
            min_seen=min_seen,
            watermark=online.watermark,
            device=trainer.device,
            seed=reservoir_seed(config.seed, process.rank),
        )
        if stream_state is not None:
            reservoir.load_state_dict(stream_state["reservoir"])
        own_client = None
        try:
            if client is None and online.scheduler is not None:
                from distributed import Client

                try:
                    client = own_client = Client(online.scheduler, timeout="20s")
                except OSError as error:  # unreachable or refused
                    raise ValueError(f"online.scheduler {online.scheduler!r}: cannot reach a dask scheduler there ({error})") from error
            generator = Generator(
                recipe,
                reservoir,
                input_steps=config.data.input_steps,
                target_steps=config.data.target_steps,
                stride=config.data.stride,
                statistics=statistics,
                start_member=start_member,
                members=online.members,
                exclude=exclude,
                device=trainer.device if online.solver_device is None else online.solver_device,
                workers=online.workers,
                client=client,
                tee=online.tee,
                share=(process.rank, process.replicas) if process.distributed else None,
                resume_at=reservoir.position,
            )
            if stream_state is not None and "generator" in stream_state:
                generator.counters = GeneratorCounters(**stream_state["generator"])
            if process.distributed and online.members is not None and resumed is None:
                # a finite stream split over the ranks must give each rank a batch, or it ends before training starts
                shares = [int(n) for (n,) in lockstep.gather([float(sum(1 for _ in generator.batches()))])]
                if min(shares) == 0:
                    raise ValueError(
                        f"online.members={online.members}: the stream's solver batches of {recipe.batch_size} members, dealt over "
                        f"{process.replicas} processes, leave {shares.count(0)} of them none (batches per rank {shares}); raise "
                        "online.members, lower the recipe's batch_size, or start fewer processes (torchrun --nproc-per-node)"
                    )
            with generator:
                batches = ReservoirBatches(reservoir, config.data.batch_size, online.steps_per_epoch, generator, lockstep)
                trainer.fit(batches, DataLoader(validation, batch_size=config.data.batch_size), resume=resume)
        finally:
            if own_client is not None:
                own_client.close()
        return trainer
