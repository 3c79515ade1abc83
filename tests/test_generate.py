"""The one batch solve with retry after a blow-up, its two callers, the derived seeds and the generation's progress and log."""

import dataclasses
import importlib
import logging

import numpy as np
import pytest
import torch

from pdekit.data import LogUniform, generate, member_seeds, sample_parameters
from pdekit.data.generate import run_batch, solve_batch
from pdekit.data.recipes import burgers_1d
from pdekit.data.store import member_status, open_store, read_members, values
from pdekit.online import solve_members, stream_parameters_and_seeds
from pdekit.online.generator import block_seed

generation = importlib.import_module("pdekit.data.generate")  # the package's `generate` attribute is the function


def unstable_burgers(**changes):
    """Without CFL control a step of 0.05 blows up the least viscous members only (viscosity from 1e-4 to 1)."""
    settings = dict(
        shape=(128,),
        stored_shape=(64,),
        times=(0.05, 0.1, 0.15, 0.2),
        cfl=None,
        dt=0.05,
        parameters={"viscosity": LogUniform(1e-4, 1.0)},
        members=8,
        batch_size=8,
    )
    return dataclasses.replace(burgers_1d(), **{**settings, **changes})  # not with_overrides, which ignores cfl=None


# ----- seeds: pdekit.seeds.derived_seed gives the numbers of the formulas it replaced --------------
@pytest.mark.parametrize("seed", [0, 7, 2**31 + 5])
def test_member_seeds_are_the_former_seed_sequence_formula(seed):
    recipe = burgers_1d().with_overrides(members=5, seed=seed)
    former = [int(np.random.SeedSequence([seed, i]).generate_state(1, np.uint64)[0] >> np.uint64(2)) for i in range(5)]
    assert member_seeds(recipe).tolist() == former


@pytest.mark.parametrize("seed", [0, 7, 2**31 + 5])
def test_stream_block_seeds_are_the_former_formula_and_block_zero_is_the_recipe(seed):
    recipe = burgers_1d().with_overrides(seed=seed)
    assert block_seed(recipe, 0) == seed
    for block in (1, 2, 1000):
        assert block_seed(recipe, block) == int(np.random.SeedSequence([seed, block]).generate_state(1, np.uint32)[0])


@pytest.mark.parametrize("seed", [0, 7, 2**31 + 5])
def test_online_validation_seed_is_the_former_formula(seed):
    from pdekit.runs.online import validation_seed

    recipe = burgers_1d().with_overrides(seed=seed)
    assert validation_seed(recipe) == int(np.random.SeedSequence([seed, 0x7A11D, 0]).generate_state(1, np.uint32)[0])


# ----- solve_batch and its callers ----------------------------------------------------------------
def test_solve_batch_drops_a_blown_up_member_and_solves_the_rest_as_a_batch_without_it():
    recipe = unstable_burgers()
    parameters, seeds = sample_parameters(recipe), member_seeds(recipe)
    solved = solve_batch(recipe, parameters, seeds, "cpu")
    failed = [position for position, _ in solved.failed]
    assert 0 < len(failed) < 8 and sorted(failed + solved.solved) == list(range(8))
    assert all(t in recipe.times for _, t in solved.failed)
    assert parameters["viscosity"][failed].max() < parameters["viscosity"][solved.solved].max()
    assert solved.trajectories.shape == (len(solved.solved), 5, 1, 64) and torch.isfinite(solved.trajectories).all()
    # the survivors are what the solver gives that batch alone (no CFL: the step does not depend on the batch)
    alone = solve_batch(recipe, {"viscosity": parameters["viscosity"][solved.solved]}, seeds[solved.solved], "cpu")
    assert alone.failed == [] and alone.solved == list(range(len(solved.solved)))
    torch.testing.assert_close(alone.trajectories, solved.trajectories, rtol=1e-12, atol=1e-12)


def test_solve_batch_reports_each_output_time_it_reaches():
    recipe = unstable_burgers(parameters={"viscosity": 0.5}, members=2, batch_size=2)
    reached = []
    solved = solve_batch(recipe, sample_parameters(recipe), member_seeds(recipe), "cpu", on_output=reached.append)
    assert solved.failed == [] and reached == [0.0, *recipe.times]


def test_store_and_stream_mark_the_same_members_failed_and_agree_on_the_rest(tmp_path):
    recipe = unstable_burgers()
    summary = generate(recipe, tmp_path / "store.zarr", device="cpu", progress=False)
    group = open_store(tmp_path / "store.zarr")
    completed, failed = member_status(group)
    assert 0 < summary.failed < 8 and summary.completed == 8 - summary.failed
    assert np.isfinite(values(group, "failure_time")[failed]).all() and np.isnan(values(group, "failure_time")[completed]).all()

    streamed = solve_members(recipe, range(8), "cpu")  # block 0 of the stream is the store's members
    assert dict(streamed.failed) == dict(zip(np.flatnonzero(failed).tolist(), values(group, "failure_time")[failed].tolist(), strict=True))
    assert streamed.members == np.flatnonzero(completed).tolist()
    stored = np.stack([read_members(group, m, m + 1)[0] for m in streamed.members])
    np.testing.assert_array_equal(streamed.trajectories.numpy(), stored)
    parameters, _ = stream_parameters_and_seeds(recipe, streamed.members)
    np.testing.assert_array_equal(streamed.parameters[:, 0].numpy(), parameters["viscosity"].astype(np.float32))


def test_run_batch_skips_members_already_completed_or_failed(tmp_path):
    recipe = unstable_burgers()
    generate(recipe, tmp_path / "store.zarr", device="cpu", progress=False)
    again = run_batch(recipe, tmp_path / "store.zarr", 0, "cpu")
    assert (again.completed, again.failed) == (0, 0)


# ----- progress and log ---------------------------------------------------------------------------
class RecordingBar:
    """Stands in for the tqdm bar: an enabled bar that records what generate shows on it."""

    disable = False

    def __init__(self, **options):
        self.options, self.updates, self.postfixes = options, [], []

    def update(self, n):
        self.updates.append(n)

    def set_postfix_str(self, text):
        self.postfixes.append(text)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def test_the_progress_bar_shows_the_simulated_time_within_each_batch(tmp_path, monkeypatch):
    bars = []
    monkeypatch.setattr(generation, "progress_bar", lambda **options: bars.append(RecordingBar(**options)) or bars[-1])
    recipe = unstable_burgers(parameters={"viscosity": 0.5}, members=4, batch_size=2)
    generate(recipe, tmp_path / "store.zarr", device="cpu")
    (bar,) = bars
    assert bar.options["total"] == 4 and bar.options["enabled"] is True and bar.updates == [2, 2]
    assert bar.postfixes == [f"t={t:g}/0.2" for t in (0.0, *recipe.times)] * 2


def test_a_disabled_bar_is_given_no_time_callback(tmp_path, monkeypatch):
    calls = []
    original = generation.run_batch
    monkeypatch.setattr(generation, "run_batch", lambda *args: calls.append(args[-1]) or original(*args))
    generate(
        unstable_burgers(parameters={"viscosity": 0.5}, members=2, batch_size=2), tmp_path / "store.zarr", device="cpu", progress=False
    )
    assert calls == [None]


def test_each_finished_batch_is_logged_with_its_members_and_seconds(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pdekit.data.generate"):
        generate(unstable_burgers(), tmp_path / "store.zarr", device="cpu", progress=False)
    (record,) = [r for r in caplog.records if r.name == "pdekit.data.generate"]
    solved, failed = record.args[2], record.args[3]
    assert record.levelno == logging.INFO and solved + failed == 8 and 0 < failed < 8 and record.args[4] > 0
    assert f"batch 0: {solved} members solved, {failed} failed, in " in record.getMessage()


def test_kolmogorov_flow_at_one_reynolds_number_gives_every_member_its_viscosity():
    from pdekit.data.generate import sample_parameters
    from pdekit.data.recipes import kolmogorov_flow

    recipe = kolmogorov_flow(1000).with_overrides(members=3)
    assert recipe.name == "kolmogorov_flow_re1000" and recipe.ranged_parameters == ()
    assert sample_parameters(recipe)["viscosity"].tolist() == [1e-3] * 3
