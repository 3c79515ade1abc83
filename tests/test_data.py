import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from pdekit.data import (
    ChunkLocalSampler,
    LogUniform,
    Recipe,
    StoreError,
    Windows,
    compute_statistics,
    generate,
    member_seeds,
    sample_parameters,
    validate,
)
from pdekit.data.normalize import FieldStatistics
from pdekit.data.recipes import burgers_1d, heat_2d
from pdekit.grid import Grid, fourier_truncate
from pdekit.solvers import Burgers


def small_burgers(**changes) -> Recipe:
    recipe = burgers_1d().with_overrides(
        shape=(128,), stored_shape=(64,), times=tuple(0.05 * i for i in range(1, 9)), members=10, batch_size=4
    )
    return dataclasses.replace(recipe, **changes)


def _completed_count(store) -> int:
    try:
        return int(np.asarray(zarr.open_group(store, mode="r")["completed"][:]).sum())
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def _arrays(store) -> dict[str, np.ndarray]:
    group = zarr.open_group(store, mode="r")
    return {name: np.asarray(array[...]) for name, array in group.arrays()}


@pytest.fixture(scope="module")
def burgers_store(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("data") / "burgers.zarr"
    generate(small_burgers(), store, device="cpu", progress=False)
    return store


def test_store_opens_with_plain_xarray_and_follows_the_schema(burgers_store):
    script = (
        "import sys, xarray; ds = xarray.open_zarr(sys.argv[1]); assert 'pdekit' not in sys.modules; "
        "v = ds['velocity']; assert v.dims == ('member', 'time', 'x') and v.chunks is not None; "
        "print(v.attrs['units'], v.attrs['long_name'], ds.attrs['pde'], ds.attrs['solver'], ds.attrs['schema_version'], "
        "int(ds.completed.sum()))"
    )
    out = subprocess.run([sys.executable, "-c", script, str(burgers_store)], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.split() == ["1", "velocity", "burgers", "Burgers", "2", "10"]
    ds = xr.open_zarr(burgers_store)
    assert ds.sizes == {"member": 10, "time": 9, "x": 64}
    assert set(ds.data_vars) == {"velocity"}
    assert set(ds.coords) >= {"member", "time", "x", "viscosity", "seed", "completed", "failed", "failure_time"}
    assert ds.completed.dtype == np.int8 and ds.completed.attrs["flag_meanings"] == "incomplete completed"
    assert validate(burgers_store).ok


def test_stored_members_are_the_solver_trajectories_truncated(burgers_store):
    recipe = small_burgers()
    ds = xr.open_zarr(burgers_store)
    member = 5
    solver = Burgers(
        Grid((128,)),
        torch.tensor(ds.viscosity.values[4:8]),
        device="cpu",
        dtype=torch.float64,
        cfl=recipe.cfl,
        initial_field=recipe.initial_field,
    )
    u0 = solver.initial_condition(4, seeds=ds.seed.values[4:8].tolist())
    trajectory = solver.solve(u0, (0.0, *recipe.times), dt=recipe.dt)
    expected = fourier_truncate(trajectory[1, :, 0], (64,)).float().numpy()
    np.testing.assert_array_equal(ds.velocity.values[member], expected)


def test_parameter_sampling_follows_its_design():
    recipe = heat_2d().with_overrides(members=50, sampling="latin_hypercube", seed=3)
    kappa = sample_parameters(recipe)["diffusivity"]
    unit = (np.log(kappa) - np.log(1e-3)) / (np.log(1e-2) - np.log(1e-3))
    # A Latin hypercube puts exactly one point in each of the 50 equal strata.
    assert np.array_equal(np.sort(np.floor(unit * 50).astype(int)), np.arange(50))
    sobol = sample_parameters(recipe.with_overrides(sampling="sobol"))["diffusivity"]
    assert ((sobol >= 1e-3) & (sobol <= 1e-2)).all()
    assert np.array_equal(sample_parameters(recipe)["diffusivity"], kappa)


def test_member_seed_depends_only_on_base_seed_and_index():
    assert np.array_equal(member_seeds(heat_2d().with_overrides(members=20))[:8], member_seeds(heat_2d().with_overrides(members=8)))
    assert len(set(member_seeds(heat_2d()).tolist())) == heat_2d().members


def test_memory_url_store_round_trips():
    store = "memory://pdekit-test/heat.zarr"
    generate(heat_2d().with_overrides(shape=(16, 16), members=3, batch_size=2), store, device="cpu", progress=False)
    windows = Windows(store, input_steps=2, target_steps=3)
    inputs, targets, dt, params = windows[0]
    assert inputs.shape == (2, 1, 16, 16) and targets.shape == (3, 1, 16, 16) and params.shape == (1,)
    assert dt.item() == pytest.approx(0.01)


def test_existing_store_is_not_overwritten_and_resume_needs_the_same_recipe(burgers_store):
    with pytest.raises(FileExistsError, match="resume"):
        generate(small_burgers(), burgers_store, progress=False)
    with pytest.raises(ValueError, match="members: store has 10, asked 12"):
        generate(small_burgers(members=12), burgers_store, resume=True, progress=False)


def test_killed_generation_resumes_to_a_bit_identical_store(tmp_path):
    reference, killed = tmp_path / "reference.zarr", tmp_path / "killed.zarr"
    command = [
        sys.executable,
        "-m",
        "pdekit",
        "generate",
        "burgers_1d",
        "--members",
        "24",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--no-progress",
    ]
    subprocess.run([*command, "--out", str(reference)], check=True, capture_output=True)

    process = subprocess.Popen([*command, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and _completed_count(killed) == 0:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_at_kill = _completed_count(killed)
    assert 0 < done_at_kill < 24, "the kill must land mid-run"

    resumed = subprocess.run([*command, "--out", str(killed), "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _arrays(reference), _arrays(killed)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert b["completed"].all()


def test_dask_cluster_generation_equals_the_single_process_store(tmp_path, burgers_store):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        generate(small_burgers(), tmp_path / "dask.zarr", client=client, device="cpu", progress=False)
    a, b = _arrays(burgers_store), _arrays(tmp_path / "dask.zarr")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_member_that_blows_up_is_marked_failed_never_completed(tmp_path):
    # Without CFL control, a large step blows up the least viscous members only.
    recipe = small_burgers(cfl=None, dt=0.05, parameters={"viscosity": LogUniform(1e-4, 1.0)}, members=8, batch_size=8)
    summary = generate(recipe, tmp_path / "blowup.zarr", device="cpu", progress=False)
    ds = xr.open_zarr(tmp_path / "blowup.zarr")
    failed, completed = ds.failed.values == 1, ds.completed.values == 1
    assert 0 < summary.failed < 8 and summary.completed == 8 - summary.failed
    assert not (failed & completed).any()
    assert np.isfinite(ds.failure_time.values[failed]).all()
    assert ds.viscosity.values[failed].max() < 1e-2 <= ds.viscosity.values[completed].max()
    assert np.isnan(ds.velocity.values[failed]).all()  # nothing of a failed member is visible
    report = validate(tmp_path / "blowup.zarr")
    assert report.ok and any("failed (blew up) members" in note for note in report.notes)


def test_validate_names_what_is_wrong(tmp_path, burgers_store):
    store = tmp_path / "broken.zarr"
    generate(small_burgers(members=4, batch_size=2), store, device="cpu", progress=False)
    group = zarr.open_group(store, mode="r+")
    group["velocity"][1, 3, 5] = np.nan
    group["completed"][3] = False
    report = validate(store)
    assert not report.ok
    assert any("velocity of member 1 at time index 3" in p for p in report.problems)
    assert any("incomplete members [3]" in n for n in report.notes)
    group["x"].attrs["boundary_condition"] = "slippery"
    assert any("boundary_condition 'slippery'" in p for p in validate(store).problems)
    del group["seed"]
    assert any("missing variables: ['seed']" in p for p in validate(store).problems)
    group.attrs["schema_version"] = 99
    assert any("schema_version is 99" in p for p in validate(store).problems)


def test_windows_are_the_stored_slices(burgers_store):
    windows = Windows(burgers_store, input_steps=3, target_steps=2, stride=2)
    ds = xr.open_zarr(burgers_store)
    assert len(windows) == 10 * 3  # starts 0, 2, 4 in 9 times
    inputs, targets, dt, params = windows[7]  # member 2, start 2
    np.testing.assert_array_equal(inputs.numpy(), ds.velocity.values[2, 2:5, None])  # [k, C=1, x]
    np.testing.assert_array_equal(targets.numpy(), ds.velocity.values[2, 5:7, None])
    assert params.item() == pytest.approx(ds.viscosity.values[2]) and dt.item() == pytest.approx(0.05)


def test_chunk_local_sampler_visits_every_window_once_in_member_blocks(burgers_store):
    windows = Windows(burgers_store, input_steps=1, target_steps=1)
    sampler = ChunkLocalSampler(windows, members_per_block=3, seed=1)
    order = list(sampler)
    assert sorted(order) == list(range(len(windows)))
    per_member = len(windows.starts)
    blocks = [order[i : i + 3 * per_member] for i in range(0, len(order), 3 * per_member)]
    assert all(len({i // per_member for i in block}) <= 3 for block in blocks)
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_multi_worker_loader_yields_the_same_batches(burgers_store):
    windows = Windows(burgers_store, input_steps=2, target_steps=1)
    sampler = ChunkLocalSampler(windows, seed=0)
    single = list(torch.utils.data.DataLoader(windows, batch_size=8, sampler=sampler))
    multi = list(torch.utils.data.DataLoader(windows, batch_size=8, sampler=sampler, num_workers=2))
    assert len(single) == len(multi)
    for a, b in zip(single, multi, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)


def test_normalization_statistics_come_from_completed_members(burgers_store, tmp_path):
    stats = compute_statistics(burgers_store)
    values = xr.open_zarr(burgers_store).velocity.values.astype(np.float64)
    assert stats.channels == ("velocity",)
    assert stats.mean[0] == pytest.approx(values.mean(), abs=1e-9) and stats.std[0] == pytest.approx(values.std(), rel=1e-9)
    raw, normalized = Windows(burgers_store)[0][0], Windows(burgers_store, normalize=True)[0][0]
    assert torch.allclose(normalized, (raw - stats.mean[0]) / stats.std[0])


def test_corrupted_chunk_is_reported_with_member_and_time(tmp_path):
    store = tmp_path / "corrupt.zarr"
    generate(small_burgers(members=4, batch_size=2), store, device="cpu", progress=False)
    chunk = next(p for p in (store / "velocity" / "c" / "2").rglob("*") if p.is_file())  # member 2's only chunk
    chunk.write_bytes(b"not a chunk")
    windows = Windows(store, input_steps=1, target_steps=1)
    with pytest.raises(StoreError, match=r"member 2, time indices 0\.\.8"):
        windows[2 * len(windows.starts)]
    with pytest.raises(StoreError, match="schema_version"):
        zarr.open_group(store, mode="r+").attrs["schema_version"] = 0
        Windows(store)


def test_large_members_are_sharded_by_member_and_read_back(tmp_path, monkeypatch):
    import pdekit.data.store

    monkeypatch.setattr(pdekit.data.store, "CHUNK_BYTES", 3 * 64 * 4)  # three time steps per chunk
    store = tmp_path / "sharded.zarr"
    generate(small_burgers(members=4, batch_size=2), store, device="cpu", progress=False)
    array = zarr.open_group(store)["velocity"]
    assert array.chunks == (1, 3, 64) and array.shards == (1, 9, 64)
    inputs, targets, _, _ = Windows(store, input_steps=4, target_steps=2)[3 * 4 + 1]  # member 3, start 1
    np.testing.assert_array_equal(torch.cat([inputs, targets])[:, 0].numpy(), xr.open_zarr(store).velocity.values[3, 1:7])


@pytest.mark.parametrize("script", sorted(p.name for p in (Path(__file__).parents[1] / "datasets").glob("*.py")))
def test_dataset_scripts_document_themselves(script):
    path = Path(__file__).parents[1] / "datasets" / script
    out = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, check=True)
    assert "--out" in out.stdout and "--resume" in out.stdout and "--scheduler" in out.stdout


def test_validate_command_reports_in_words(burgers_store):
    out = subprocess.run([sys.executable, "-m", "pdekit", "validate", str(burgers_store)], capture_output=True, text=True)
    assert out.returncode == 0 and "valid" in out.stdout


def test_store_whose_time_chunks_do_not_divide_its_times_is_created_and_read_back(tmp_path, monkeypatch):
    import pdekit.data.store

    # 128² float32 is 64 KiB a step; at most 16 steps a chunk against 21 stored times (the case that
    # crashed with 1 MiB chunks) makes two chunks of 11 in a shard of 22.
    monkeypatch.setattr(pdekit.data.store, "CHUNK_BYTES", 2**20)
    recipe = heat_2d().with_overrides(shape=(128, 128), members=2, batch_size=2)
    store = tmp_path / "heat128.zarr"
    generate(recipe, store, device="cpu", progress=False)
    array = zarr.open_group(store)["temperature"]
    assert array.shape == (2, 21, 128, 128) and array.chunks == (1, 11, 128, 128) and array.shards == (1, 22, 128, 128)
    assert validate(store).ok
    last = Windows(store, input_steps=19, target_steps=2)[1]
    np.testing.assert_array_equal(last.targets[:, 0].numpy(), xr.open_zarr(store).temperature.values[1, 19:21])


# ----- a store's creation and its one writer, under kills --------------------------------------
# Runs `pdekit generate` (argv[1:]) in this process with a stall injected at STALL_AT: "array<n>" (the
# n-th array of the store's creation), "consolidate" (the creation's last step) or "batch" (the first
# solver batch, with the store created and locked). It creates STALL_READY when it stalls.
STALLED_GENERATE = """
import importlib, os, sys, time, zarr
# pdekit.data.generate is also the function, hence import_module
generation = importlib.import_module("pdekit.data.generate")
store = importlib.import_module("pdekit.data.store")
where, ready = os.environ["STALL_AT"], os.environ["STALL_READY"]
def stall(*args, **kwargs):
    open(ready, "w").close()
    time.sleep(600)
if where.startswith("array"):
    create, calls = zarr.Group.create_array, []
    def create_array(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == int(where[len("array"):]):
            stall()
        return create(self, *args, **kwargs)
    zarr.Group.create_array = create_array
elif where == "consolidate":
    store.consolidate = stall
elif where == "batch":
    generation.run_batch = stall
from pdekit.cli import main
sys.exit(main(sys.argv[1:]))
"""
SMALL_GENERATE = [
    "generate",
    "burgers_1d",
    "--members",
    "4",
    "--batch-size",
    "2",
    "--shape",
    "128",
    "--times",
    "0:0.2:0.05",
    "--device",
    "cpu",
    "--no-progress",
]


def stalled_generate(tmp_path, where: str, out) -> subprocess.Popen:
    """Starts `pdekit generate --out OUT` in a subprocess and returns it once it stalls at ``where``."""
    ready = tmp_path / f"stalled-{where}"
    process = subprocess.Popen(
        [sys.executable, "-c", STALLED_GENERATE, *SMALL_GENERATE, "--out", str(out)],
        env={**os.environ, "STALL_AT": where, "STALL_READY": str(ready)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not ready.exists():
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise AssertionError(f"the stalled generate did not reach {where}: {process.communicate()[1]}")
        time.sleep(0.02)
    return process


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory) -> dict[str, np.ndarray]:
    from pdekit.cli import main

    store = tmp_path_factory.mktemp("reference") / "reference.zarr"
    assert main([*SMALL_GENERATE, "--out", str(store)]) == 0
    return _arrays(store)


def _same_store(store, reference: dict[str, np.ndarray]) -> None:
    arrays = _arrays(store)
    assert arrays.keys() == reference.keys()
    for name in reference:
        np.testing.assert_array_equal(arrays[name], reference[name], err_msg=name)


@pytest.mark.parametrize("moment", ["array1", "array6", "consolidate"])
def test_generate_killed_while_creating_its_store_reruns_and_resumes_to_the_uninterrupted_store(tmp_path, moment, small_reference):
    from pdekit.cli import main

    first, second = tmp_path / "plain", tmp_path / "resumed"
    first.mkdir()
    process = stalled_generate(tmp_path, moment, first / "store.zarr")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    shutil.copytree(first, second)  # the same leftovers, for the second way of going on
    assert main([*SMALL_GENERATE, "--out", str(first / "store.zarr")]) == 0
    assert main([*SMALL_GENERATE, "--out", str(second / "store.zarr"), "--resume"]) == 0
    for directory in (first, second):
        _same_store(directory / "store.zarr", small_reference)
        assert validate(directory / "store.zarr").ok
        assert sorted(p.name for p in directory.iterdir()) == ["store.zarr", "store.zarr.lock"]  # the killed creation's temporary is gone


def test_second_generate_into_a_store_being_generated_is_refused_at_once(tmp_path):
    store = tmp_path / "store.zarr"
    first = stalled_generate(tmp_path, "batch", store)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "pdekit", *SMALL_GENERATE, "--out", str(store), "--resume"], capture_output=True, text=True, timeout=120
        )
        assert first.poll() is None, "the second must not have waited for the first"
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1
    assert f"is in use by pid {first.pid} (generate)" in second.stderr
    assert _completed_count(store) == 0  # the second wrote nothing


@pytest.mark.parametrize(
    "device",
    ["nosuch", "cuda:99", pytest.param("cuda", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA"))],
)
def test_generate_on_a_bad_device_says_so_in_one_line_and_writes_nothing(tmp_path, device):
    with pytest.raises(ValueError, match=f"^device {device!r} is not") as error:
        generate(small_burgers(members=2), tmp_path / "store.zarr", device=device, progress=False)
    assert len(str(error.value).splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_generate_into_a_directory_that_is_not_a_store_says_so_in_one_line(tmp_path, capsys):
    from pdekit.cli import main

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    assert main([*SMALL_GENERATE, "--out", str(tmp_path / "notes")]) == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "holds files but no Zarr store" in message
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["todo.txt"]


def test_file_url_store_is_the_plain_path_store(tmp_path, burgers_store):
    url = f"file://{tmp_path / 'url.zarr'}"
    assert generate(small_burgers(), url, device="cpu", progress=False).completed == 10
    a, b = _arrays(burgers_store), _arrays(tmp_path / "url.zarr")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    with pytest.raises(FileExistsError, match="resume"):
        generate(small_burgers(), url, progress=False)
    assert generate(small_burgers(), url, resume=True, progress=False).completed == 10


def test_stopped_creation_at_a_url_is_redone(tmp_path, monkeypatch):
    store = f"memory://pdekit-test/{tmp_path.name}/stopped.zarr"
    recipe = heat_2d().with_overrides(shape=(16, 16), members=3, batch_size=2)
    create = zarr.Group.create_array

    calls = []

    def fails_on_the_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("connection lost")
        return create(self, *args, **kwargs)

    monkeypatch.setattr(zarr.Group, "create_array", fails_on_the_third)
    with pytest.raises(OSError, match="connection lost"):
        generate(recipe, store, device="cpu", progress=False)
    with pytest.raises(StoreError, match="creation was stopped"):
        Windows(store)
    monkeypatch.setattr(zarr.Group, "create_array", create)
    assert generate(recipe, store, device="cpu", progress=False).completed == 3
    assert validate(store).ok


def test_generate_command_refuses_a_memory_store_in_one_line(capsys):
    from pdekit.cli import main

    assert main([*SMALL_GENERATE, "--out", "memory://pdekit-test/vanishing.zarr"]) == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "would vanish" in message


def test_a_store_missing_a_per_member_variable_is_a_store_error_naming_it(tmp_path):
    store = tmp_path / "store.zarr"
    generate(small_burgers(members=2, batch_size=2), store, device="cpu", progress=False)
    del zarr.open_group(store, mode="r+")["viscosity"]
    with pytest.raises(StoreError, match="no variable 'viscosity'"):
        Windows(store)


def test_statistics_make_their_tensors_once_per_device_and_dtype_and_invert_exactly():
    statistics = FieldStatistics((1.0, -2.0), (2.0, 0.5), space_dims=1)
    x = torch.tensor([[[3.0, 5.0], [-2.0, -1.0]]], dtype=torch.float64)  # [B=1, C=2, S=2]
    z = statistics.normalize(x)
    assert z.tolist() == [[[1.0, 2.0], [0.0, 2.0]]]  # (3 - 1) / 2, (5 - 1) / 2; (-2 + 2) / 0.5, (-1 + 2) / 0.5
    assert torch.equal(statistics.denormalize(z), x)
    first, again = statistics.moments(x), statistics.moments(z)
    assert first[0] is again[0] and first[1] is again[1]  # kept: no new host-to-device copy per call
    assert statistics.moments(x.float())[0].dtype == torch.float32
    assert statistics == FieldStatistics((1.0, -2.0), (2.0, 0.5), space_dims=1)  # the cache takes no part in equality
