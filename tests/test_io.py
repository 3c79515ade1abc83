"""pdekit.io: Zarr ensembles to and from The Well's and PDEBench's HDF5, checked with The Well's own WellDataset."""

import numpy as np
import pytest
import torch
import yaml

import pdekit.io.pdebench
import pdekit.io.well
from pdekit.cli import main
from pdekit.data import Field, Layout, Parameter, create_store, generate, open_store, validate
from pdekit.data.recipes import fno_navier_stokes, heat_2d
from pdekit.data.store import channel_names, mark_failed, read_members, store_fields, write_member
from pdekit.grid import Grid
from pdekit.io import export_pdebench, export_well, import_pdebench, import_well, require_zarr_store
from pdekit.io.ensemble import Ensemble, decimal_float64, member_trajectories, write_ensemble

h5py = pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def heat(tmp_path_factory):
    path = tmp_path_factory.mktemp("heat") / "heat.zarr"
    generate(
        heat_2d().with_overrides(shape=(16, 16), times=(0.01, 0.02, 0.03), members=3, batch_size=3), path, device="cpu", progress=False
    )
    return path


@pytest.fixture(scope="module")
def navier_stokes(tmp_path_factory):
    path = tmp_path_factory.mktemp("ns") / "ns.zarr"
    recipe = fno_navier_stokes().with_overrides(
        shape=(16, 16), stored_shape=(16, 16), times=(0.5, 1.0, 1.5), members=2, batch_size=2, fields=("vorticity", "velocity")
    )
    generate(recipe, path, device="cpu", progress=False)
    return path


@pytest.fixture(scope="module")
def walled(tmp_path_factory):
    """A 6 x 8 store (y, x) with a wall in x, open in y, and member 1 failed: only members 0 and 2 are complete."""
    path = tmp_path_factory.mktemp("walled") / "walled.zarr"
    layout = Layout(
        fields=(Field("u", "a scalar"),),
        grid=Grid((6, 8), (3.0, 4.0)),
        times=(0.0, 0.5, 1.0),
        members=3,
        parameters=(Parameter("k", "a rate", "1/s"),),
        attributes={"pde": "test", "solver": "none", "scheme": "none", "title": "walled", "recipe": {"name": "walled"}},
        boundary_conditions=("wall", "open"),
    )
    group = create_store(path, layout, {"k": np.array([1.0, 2.0, 3.0])}, np.array([5, 6, 7]))
    rng = np.random.default_rng(0)
    for member in (0, 2):
        write_member(group, member, (3 + rng.normal(size=(3, 1, 6, 8))).astype(np.float32))  # a mean far from 0 tells std from rms
    mark_failed(group, 1, 0.5)
    return path


def assert_same_ensemble(original, copy, members=None):
    """Asserts that ``copy`` holds ``original``'s members (all completed ones, or ``members``) bit for bit."""
    a, b = open_store(original), open_store(copy)
    members = np.flatnonzero(a["completed"][:]) if members is None else np.asarray(members)
    assert np.array_equal(read_members(a, 0, a["completed"].shape[0])[members], read_members(b, 0, b["completed"].shape[0]))
    assert store_fields(a) == store_fields(b) and channel_names(a) == channel_names(b)
    for name in ["time", "x", "y"]:
        assert np.array_equal(a[name][:], b[name][:]) and a[name].dtype == b[name].dtype
    for axis in ["x", "y"]:
        assert a[axis].attrs["boundary_condition"] == b[axis].attrs["boundary_condition"]
    assert a.attrs["parameter_names"] == b.attrs["parameter_names"]
    for name in [*a.attrs["parameter_names"].split(), "seed"]:
        assert np.array_equal(a[name][:][members], b[name][:])
    for key in ["pde", "solver", "scheme", "title", "recipe"]:
        assert a.attrs[key] == b.attrs[key]
    assert validate(copy).ok


def well_dataset(directory, **options):
    """Returns The Well's own loader on the training split of ``directory``: one input step, one output step."""
    the_well = pytest.importorskip("the_well.data")
    return the_well.WellDataset(
        path=str(directory),
        well_split_name="train",
        normalization_path=str(directory / "stats.yaml"),
        n_steps_input=1,
        n_steps_output=1,
        **options,
    )


@pytest.mark.parametrize("name", ["heat", "navier_stokes"])
def test_store_to_well_to_store_is_bit_exact(name, request, tmp_path):
    store = request.getfixturevalue(name)
    export_well(store, tmp_path / "well")
    import_well(tmp_path / "well", tmp_path / "back.zarr")
    assert_same_ensemble(store, tmp_path / "back.zarr")


def test_only_completed_members_are_exported_and_walls_stay_walls(walled, tmp_path):
    export_well(walled, tmp_path / "well")
    with h5py.File(tmp_path / "well" / "data" / "train" / "walled.hdf5") as file:
        assert (
            file.attrs["n_trajectories"] == 2
            and file["pdekit/members"][:].tolist() == [0, 2]
            and file["pdekit/seeds"][:].tolist() == [5, 7]
        )
        assert {k: file["boundary_conditions"][k].attrs["bc_type"] for k in file["boundary_conditions"]} == {
            "x_wall": "WALL",
            "y_open": "OPEN",
        }
        assert file["t0_fields"]["u"].shape == (2, 3, 8, 6)  # The Well lays space out x, y
    sample = well_dataset(tmp_path / "well")[0]
    assert sample["boundary_conditions"].tolist() == [[0, 0], [1, 1]]  # The Well's codes: WALL 0, OPEN 1 (x, then y)
    statistics = yaml.safe_load((tmp_path / "well" / "stats.yaml").read_text())
    values = read_members(open_store(walled), 0, 3)[[0, 2]].astype(np.float64)
    steps = np.diff(values, axis=1)
    assert np.allclose([statistics[k]["u"] for k in ("mean", "std", "rms")], [values.mean(), values.std(), np.sqrt((values**2).mean())])
    assert np.allclose(
        [statistics[k]["u"] for k in ("mean_delta", "std_delta", "rms_delta")], [steps.mean(), steps.std(), np.sqrt((steps**2).mean())]
    )
    import_well(tmp_path / "well", tmp_path / "back.zarr")
    assert_same_ensemble(walled, tmp_path / "back.zarr", members=[0, 2])


def test_well_dataset_yields_batches_equal_to_the_store(navier_stokes, tmp_path):
    export_well(navier_stokes, tmp_path / "well")
    group = open_store(navier_stokes)
    stored = read_members(group, 0, 2)  # [member, time, channel (vorticity, velocity_x, velocity_y), y, x]
    as_well = stored.transpose(0, 1, 4, 3, 2)  # The Well's sample layout: [member, time, x, y, channel]
    dataset = well_dataset(tmp_path / "well")
    assert dataset.metadata.field_names == {0: ["vorticity"], 1: ["velocity_x", "velocity_y"], 2: []}
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=len(dataset))))
    windows = [(m, t) for m in range(2) for t in range(3)]  # WellDataset's order: trajectory-major, one window per start
    assert len(dataset) == len(windows)
    for i, (m, t) in enumerate(windows):
        assert np.array_equal(batch["input_fields"][i].numpy(), as_well[m, t : t + 1])
        assert np.array_equal(batch["output_fields"][i].numpy(), as_well[m, t + 1 : t + 2])
        assert batch["constant_scalars"][i].tolist() == [group["viscosity"][m]]
    assert np.array_equal(batch["space_grid"][0].numpy(), np.stack(np.meshgrid(group["x"][:], group["y"][:], indexing="ij"), -1))
    # stats.yaml: WellDataset's z-score uses the store's per-channel mean and std over members, times and points
    normalised = well_dataset(
        tmp_path / "well", use_normalization=True, normalization_type=pytest.importorskip("the_well.data.normalization").ZScoreNormalization
    )[4]["input_fields"].numpy()
    moments = as_well.astype(np.float64).reshape(-1, 3)
    assert np.allclose(normalised, (as_well[1, 1:2] - moments.mean(0)) / moments.std(0), atol=1e-5)


def write_well_file(path, reynolds, trajectories=2, *, bc_high="WALL", extra=False):
    """Writes a file as The Well lays one out (docs/data_format.md), on a 16 x 12 (x, y) grid of float32 coordinates.

    tracer[b, t, i, j] = x_i + 10 y_j + 100 t + 1000 b, so a swapped axis shows; velocity = (sin x, cos y) * (1 + t).
    """
    x = ((np.arange(16) + 0.5) / 8).astype(np.float32)  # cell centres on [0, 2)
    y = np.linspace(-1, 1, 12, endpoint=False, dtype=np.float32)
    t = (np.arange(6) * 0.1).astype(np.float32)
    b, tt, xx, yy = np.meshgrid(np.arange(trajectories), t, x, y, indexing="ij")
    tracer = (xx + 10 * yy + 100 * tt + 1000 * b + np.sin(3 * xx) * np.cos(2 * yy) * (1 + b)).astype(np.float32)
    velocity = np.stack([np.sin(np.pi * xx) * (1 + tt + b), np.cos(np.pi * yy) * (1 - tt)], -1).astype(np.float32)
    strings = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.attrs.update(
            {
                "dataset_name": "shear_test",
                "grid_type": "cartesian",
                "n_spatial_dims": 2,
                "n_trajectories": trajectories,
                "Reynolds": reynolds,
            }
        )
        f.attrs["simulation_parameters"] = np.array(["Reynolds"], dtype=strings)
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = np.array(["x", "y"], dtype=strings)
        for name, values, time_varying in (("time", t, True), ("x", x, False), ("y", y, False)):
            dims.create_dataset(name, data=values).attrs.update({"sample_varying": False, "time_varying": time_varying})
        bcs = f.create_group("boundary_conditions")
        ends = {"x_periodic": ("x", "PERIODIC", [0, -1])}
        ends.update(
            {"y_wall": ("y", "WALL", [0, -1])} if bc_high == "WALL" else {"y_wall": ("y", "WALL", [0]), "y_open": ("y", bc_high, [-1])}
        )
        for name, (axis, kind, where) in ends.items():
            group = bcs.create_group(name)
            group.attrs.update(
                {
                    "associated_dims": np.array([axis], dtype=strings),
                    "associated_fields": np.array([], dtype=strings),
                    "bc_type": kind,
                    "sample_varying": False,
                    "time_varying": False,
                }
            )
            mask = np.zeros(len(x if axis == "x" else y), dtype=bool)
            mask[where] = True
            group.create_dataset("mask", data=mask)
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = np.array(["Reynolds", *(["energy"] if extra else [])], dtype=strings)
        scalars.create_dataset("Reynolds", data=np.float32(reynolds)).attrs.update({"sample_varying": False, "time_varying": False})
        for order, fields in enumerate([{"tracer": tracer}, {"velocity": velocity}, {}]):
            group = f.create_group(f"t{order}_fields")
            group.attrs["field_names"] = np.array(
                list(fields) + ({0: ["obstacle"], 1: [], 2: ["stress"]}[order] if extra else []), dtype=strings
            )
            for name, values in fields.items():
                group.create_dataset(name, data=values).attrs.update(
                    {"dim_varying": [True, True], "sample_varying": True, "time_varying": True}
                )
        if extra:
            f["t0_fields"].create_dataset("obstacle", data=np.ones((trajectories, 16, 12), np.float32)).attrs.update(
                {"dim_varying": [True, True], "sample_varying": True, "time_varying": False}
            )
            f["t2_fields"].create_dataset("stress", data=np.ones((trajectories, 6, 16, 12, 2, 2), np.float32)).attrs.update(
                {"dim_varying": [True, True], "sample_varying": True, "time_varying": True}
            )
            f["scalars"].create_dataset("energy", data=np.ones(6, np.float32)).attrs.update({"sample_varying": False, "time_varying": True})
    return tracer, velocity, x, y, t


def test_a_file_laid_out_as_the_well_imports_validates_and_trains(tmp_path):
    from pdekit.runs import DataConfig, ExperimentConfig, ModelConfig, train
    from pdekit.training import TrainerConfig

    folder = tmp_path / "shear_test" / "data" / "train"
    folder.mkdir(parents=True)
    tracer, velocity, x, y, t = write_well_file(folder / "shear_Reynolds_1e4.hdf5", 1e4)
    write_well_file(folder / "shear_Reynolds_5e4.hdf5", 5e4)
    group = import_well(tmp_path / "shear_test", tmp_path / "shear.zarr")
    assert validate(tmp_path / "shear.zarr").ok
    assert group["tracer"].shape == (4, 6, 12, 16) and group["velocity"].shape == (4, 6, 2, 12, 16)
    assert np.array_equal(group["tracer"][:2], tracer.transpose(0, 1, 3, 2))  # [b, t, x, y] -> [member, time, y, x]
    assert np.array_equal(group["velocity"][:2], velocity.transpose(0, 1, 4, 3, 2))  # [b, t, x, y, c] -> [member, time, c, y, x]
    assert group["time"][:].tolist() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]  # float32 0.1 read as the decimal 0.1
    assert np.array_equal(group["x"][:], decimal_float64(x)) and group["y"][0] == -1.0
    assert group["Reynolds"][:].tolist() == [1e4, 1e4, 5e4, 5e4]  # one value per file, files in sorted order
    assert (group["x"].attrs["boundary_condition"], group["y"].attrs["boundary_condition"]) == ("periodic", "wall")
    config = ExperimentConfig(
        data=DataConfig(store=str(tmp_path / "shear.zarr"), batch_size=2),
        model=ModelConfig("fno", {"modes": 4, "width": 8}),
        trainer=TrainerConfig(epochs=1, progress=False),
    )
    trainer = train(config, tmp_path / "run")
    assert trainer.epoch == 1 and np.isfinite(trainer.history[-1]["validation_l2"])


def test_what_a_store_cannot_hold_is_refused_by_name_unless_excluded(tmp_path):
    write_well_file(tmp_path / "extra.hdf5", 1e4, extra=True)
    with pytest.raises(ValueError, match=r"obstacle \(constant in time\).*energy \(a time-varying scalar\)") as error:
        import_well(tmp_path / "extra.hdf5", tmp_path / "refused.zarr")
    assert "stress (a rank-2 tensor field)" in str(error.value) and "exclude" in str(error.value)
    with pytest.raises(ValueError, match="no file holds"):
        import_well(tmp_path / "extra.hdf5", tmp_path / "typo.zarr", exclude=["obstacle", "stress", "energy", "pressure"])
    group = import_well(tmp_path / "extra.hdf5", tmp_path / "kept.zarr", exclude=["obstacle", "stress", "energy"])
    assert store_fields(group) == ["tracer", "velocity"] and group.attrs["parameter_names"] == "Reynolds"


def test_a_boundary_whose_ends_differ_is_refused(tmp_path):
    write_well_file(tmp_path / "mixed.hdf5", 1e4, bc_high="OPEN")
    with pytest.raises(ValueError, match="axis y is wall at one end and open at the other"):
        import_well(tmp_path / "mixed.hdf5", tmp_path / "mixed.zarr")


@pytest.mark.parametrize(("name", "layout"), [("heat", "multi"), ("navier_stokes", "single")])
def test_store_to_pdebench_to_store_is_bit_exact(name, layout, request, tmp_path):
    store = request.getfixturevalue(name)
    export_pdebench(store, tmp_path / "data.h5", layout=layout)
    with h5py.File(tmp_path / "data.h5") as file:
        if layout == "multi":  # per-sample groups, data [t, x, y, c], each sample's parameters in its config
            assert sorted(file) == ["0000", "0001", "0002"] and file["0001"]["data"].shape == (4, 16, 16, 1)
            assert yaml.safe_load(file["0001"].attrs["config"])["diffusivity"] == open_store(store)["diffusivity"][1]
        else:  # one dataset per variable [sample, t, x, y], PDEBench's names for velocity, t-coordinate one longer
            assert sorted(file) == ["Vx", "Vy", "pdekit", "t-coordinate", "vorticity", "x-coordinate", "y-coordinate"]
            assert file["t-coordinate"].shape == (5,) and file.attrs["viscosity"] == 1e-3
    import_pdebench(tmp_path / "data.h5", tmp_path / "back.zarr")
    assert_same_ensemble(store, tmp_path / "back.zarr")


def test_single_file_layout_refuses_varying_parameters_unless_asked(heat, tmp_path):
    with pytest.raises(ValueError, match=r"parameters \['diffusivity'\] differ between members.*by_parameters=True.*drop_parameters=True"):
        export_pdebench(heat, tmp_path / "heat.hdf5", layout="single")
    diffusivity = open_store(heat)["diffusivity"][:]
    files = export_pdebench(heat, tmp_path / "heat.hdf5", layout="single", by_parameters=True)
    assert len(files) == 3
    for path in files:
        store = tmp_path / f"{path.stem}.zarr"
        import_pdebench(path, store)
        member = int(np.flatnonzero(diffusivity == open_store(store)["diffusivity"][0])[0])
        assert f"diffusivity{float(diffusivity[member])!r}" in path.name
        assert np.array_equal(read_members(open_store(store), 0, 1)[0], read_members(open_store(heat), member, member + 1)[0])
    (path,) = export_pdebench(heat, tmp_path / "dropped.hdf5", layout="single", drop_parameters=True)
    with h5py.File(path) as file:
        assert "diffusivity" not in file.attrs and list(file) == ["pdekit", "t-coordinate", "tensor", "x-coordinate", "y-coordinate"]
    assert import_pdebench(path, tmp_path / "dropped.zarr").attrs["parameter_names"] == ""


def test_pdebench_files_as_pdebench_writes_them_import_with_x_first_axes(tmp_path):
    x = ((np.arange(8) + 0.5) / 8).astype(np.float32)  # PDEBench's cell centres
    y = ((np.arange(6) + 0.5) / 6).astype(np.float32)
    b, tt, xx, yy = np.meshgrid(np.arange(2), np.arange(3), x, y, indexing="ij")
    density = (1 + xx + 10 * yy + 100 * tt + 1000 * b).astype(np.float32)  # [sample, t, x, y]
    cfd = tmp_path / "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_8_Train.hdf5"
    with h5py.File(cfd, "w") as f:
        for name, values in {
            "density": density,
            "pressure": 2 * density,
            "Vx": np.sin(xx).astype(np.float32),
            "Vy": np.cos(yy).astype(np.float32),
        }.items():
            f.create_dataset(name, data=values)
        f.create_dataset("t-coordinate", data=(np.arange(4) * 0.05).astype(np.float32))  # one more entry than steps, as PDEBench's
        f.create_dataset("x-coordinate", data=x)
        f.create_dataset("y-coordinate", data=y)
        f.attrs.update({"eta": 0.01, "zeta": 0.01, "M": 0.1})
    group = import_pdebench(cfd, tmp_path / "cfd.zarr")
    assert store_fields(group) == ["density", "pressure", "velocity"] and channel_names(group)[2:] == ("velocity_x", "velocity_y")
    assert np.array_equal(group["density"][:], density.transpose(0, 1, 3, 2))
    assert np.array_equal(group["velocity"][:, :, 0], np.sin(xx).astype(np.float32).transpose(0, 1, 3, 2))
    assert group["time"][:].tolist() == [0.0, 0.05, 0.1] and group["x"].attrs["boundary_condition"] == "periodic"
    assert [group[p][0] for p in ("eta", "zeta", "M")] == [0.01, 0.01, 0.1]
    swe = tmp_path / "2D_rdb_NA_NA.h5"  # per-sample groups, as PDEBench's radial dam break
    with h5py.File(swe, "w") as f:
        for i in range(2):
            f.create_dataset(f"000{i}/data", data=density[i, ..., None])  # [t, x, y, 1]
            for axis, values in (("x", x), ("y", y), ("t", np.arange(3) * np.float32(0.05))):
                f.create_dataset(f"000{i}/grid/{axis}", data=values)
            f[f"000{i}"].attrs["config"] = yaml.safe_dump({"seed": 10 + i, "sim": {"dam_radius": 0.5 + i, "gravity": 1.0}, "name": "rdb"})
    with pytest.raises(ValueError, match="pass boundary_conditions"):
        import_pdebench(swe, tmp_path / "refused.zarr")
    group = import_pdebench(swe, tmp_path / "swe.zarr", boundary_conditions=("open", "wall"))
    assert np.array_equal(group["data"][:], density.transpose(0, 1, 3, 2)) and group["seed"][:].tolist() == [10, 11]
    assert group["sim_dam_radius"][:].tolist() == [0.5, 1.5] and group["y"].attrs["boundary_condition"] == "wall"


def command(argv):
    return main(argv)


def test_cli_exits_2_with_one_line_on_a_missing_file_and_0_on_a_round_trip(navier_stokes, tmp_path, capsys):
    assert command(["import", str(tmp_path / "missing.hdf5"), "--out", str(tmp_path / "x.zarr")]) == 2
    assert command(["export", str(tmp_path / "missing.zarr"), "--format", "well", "--out", str(tmp_path / "w")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all("missing" in line and line.startswith("pdekit ") for line in lines)
    assert command(["export", str(navier_stokes), "--format", "well", "--out", str(tmp_path / "w")]) == 0
    assert command(["export", str(navier_stokes), "--format", "well", "--out", str(tmp_path / "w")]) == 2  # never overwrites
    assert command(["import", str(tmp_path / "w"), "--out", str(tmp_path / "back.zarr")]) == 0
    assert_same_ensemble(navier_stokes, tmp_path / "back.zarr")


def test_training_on_hdf5_data_names_pdekit_import(navier_stokes, tmp_path):
    export_well(navier_stokes, tmp_path / "well")
    for path in (tmp_path / "well", tmp_path / "well" / "data" / "train", next((tmp_path / "well" / "data" / "train").iterdir())):
        with pytest.raises(ValueError, match="not a Zarr ensemble: convert it once with `pdekit import"):
            require_zarr_store(path)
    require_zarr_store(navier_stokes)
    require_zarr_store(tmp_path / "not yet written.zarr")  # a store still to be created is not HDF5 either


def many_members(n=10_000, *, varying=True):
    """Returns an ensemble of ``n`` members on a 2 x 2 grid and 2 times (seeds, parameters ``k``, varying unless not ``varying``, and ``c``,
    shared), and its trajectories ``[n, time, 1, y, x]``.

    ``n`` seeds as int64 are 80 kB: more than an HDF5 object header (64 KiB) holds as an attribute.
    """
    ensemble = Ensemble(
        fields=(Field("u", "a scalar"),),
        times=np.array([0.0, 0.5]),
        coordinates={"x": np.array([0.0, 0.5]), "y": np.array([0.0, 0.5])},
        boundary_conditions={"x": "periodic", "y": "wall"},
        parameters=(Parameter("k", "a rate", "1/s"), Parameter("c", "a speed", "m/s")),
        values={"k": np.arange(n) * 0.5 if varying else np.full(n, 0.5), "c": np.full(n, 2.0)},
        seeds=np.arange(n, dtype=np.int64) + 7,
        attributes={"pde": "test", "solver": "none", "scheme": "none", "title": "many", "recipe": {"name": "many"}},
        members=np.arange(n),
    )
    return ensemble, np.random.default_rng(0).normal(size=(n, 2, 1, 2, 2)).astype(np.float32)


def assert_same_description(original: Ensemble, copy: Ensemble, parameters=("k", "c")):
    assert [f.name for f in copy.fields] == [f.name for f in original.fields] and [p.name for p in copy.parameters] == list(parameters)
    assert np.array_equal(copy.times, original.times) and all(
        np.array_equal(copy.coordinates[a], original.coordinates[a]) for a in ("x", "y")
    )
    assert copy.boundary_conditions == original.boundary_conditions and copy.attributes == original.attributes
    assert np.array_equal(copy.seeds, original.seeds) and all(np.array_equal(copy.values[p], original.values[p]) for p in parameters)


def test_ten_thousand_members_fit_both_formats_and_come_back_bit_exact(monkeypatch, tmp_path):
    """The HDF5 side at PDEBench's 10 000 samples; the Zarr side is replaced by the ensemble in memory
    (test_ten_thousand_members_round_trip_through_zarr does it for real)."""
    ensemble, data = many_members()
    imported = []
    for module in (pdekit.io.well, pdekit.io.pdebench):
        monkeypatch.setattr(module, "read_ensemble", lambda store: ensemble)
        monkeypatch.setattr(module, "member_trajectories", lambda store, e: iter(data[e.members]))
        monkeypatch.setattr(
            module, "write_ensemble", lambda store, e, trajectories, where: imported.append((e, np.stack(list(trajectories))))
        )
    export_well("many.zarr", tmp_path / "well")
    with h5py.File(tmp_path / "well" / "data" / "train" / "many.hdf5") as file:
        assert np.array_equal(file["pdekit/seeds"][:], ensemble.seeds) and np.array_equal(file["pdekit/members"][:], ensemble.members)
        assert (
            "k" not in file.attrs and file.attrs["c"] == 2.0 and file["scalars/k"].attrs["sample_varying"]
        )  # a varying parameter lives in scalars/ only
    import_well(tmp_path / "well", "back.zarr")
    export_pdebench("many.zarr", tmp_path / "many.h5", layout="single", drop_parameters=True)
    import_pdebench(tmp_path / "many.h5", "back.zarr")
    (well, from_well), (pdebench, from_pdebench) = imported
    assert_same_description(ensemble, well)
    assert_same_description(ensemble, pdebench, parameters=("c",))
    assert np.array_equal(from_well, data) and np.array_equal(from_pdebench, data)


@pytest.mark.slow
def test_ten_thousand_members_round_trip_through_zarr(tmp_path):
    """A 10 000-member store to both formats and back (about 2 minutes on 2 busy cores: a store keeps one chunk per member and per flag)."""
    ensemble, data = many_members(varying=False)  # PDEBench's single layout keeps a parameter that all members share
    write_ensemble(tmp_path / "many.zarr", ensemble, iter(data), "test")
    export_well(tmp_path / "many.zarr", tmp_path / "well")
    import_well(tmp_path / "well", tmp_path / "from_well.zarr")
    assert_same_ensemble(tmp_path / "many.zarr", tmp_path / "from_well.zarr")
    export_pdebench(tmp_path / "many.zarr", tmp_path / "many.h5", layout="single")
    import_pdebench(tmp_path / "many.h5", tmp_path / "from_pdebench.zarr")
    assert_same_ensemble(tmp_path / "many.zarr", tmp_path / "from_pdebench.zarr")


def test_seeds_written_as_a_file_attribute_by_earlier_exports_still_import(walled, tmp_path):
    export_well(walled, tmp_path / "well")
    with h5py.File(tmp_path / "well" / "data" / "train" / "walled.hdf5", "r+") as file:
        file.attrs["pdekit_seeds"] = file["pdekit/seeds"][:]  # the layout before per-member arrays became datasets
        del file["pdekit"]
    assert import_well(tmp_path / "well", tmp_path / "back.zarr")["seed"][:].tolist() == [5, 7]


def killed_after(count):
    """Returns a ``member_trajectories`` that raises once ``count`` trajectories have been yielded, over all its calls: an export stopped
    half-way."""
    yielded = 0

    def trajectories(store, ensemble):
        nonlocal yielded
        for trajectory in member_trajectories(store, ensemble):
            if yielded == count:
                raise RuntimeError("killed")
            yielded += 1
            yield trajectory

    return trajectories


def test_an_export_stopped_half_way_leaves_no_file_and_can_be_run_again(walled, tmp_path, monkeypatch):
    well = tmp_path / "well" / "data" / "train" / "walled.hdf5"
    pdebench = [tmp_path / "walled_k1.0.h5", tmp_path / "walled_k3.0.h5"]  # one file per value of k
    monkeypatch.setattr(pdekit.io.well, "member_trajectories", killed_after(1))  # the first of 2 members written
    monkeypatch.setattr(pdekit.io.pdebench, "member_trajectories", killed_after(1))  # the first of 2 files written
    with pytest.raises(RuntimeError, match="killed"):
        export_well(walled, tmp_path / "well")
    with pytest.raises(RuntimeError, match="killed"):
        export_pdebench(walled, tmp_path / "walled.h5", layout="single", by_parameters=True)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []
    monkeypatch.undo()
    well.with_name("walled.hdf5.partial").write_bytes(b"what a killed process left")  # overwritten, not an obstacle
    export_well(walled, tmp_path / "well")
    assert export_pdebench(walled, tmp_path / "walled.h5", layout="single", by_parameters=True) == pdebench
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["stats.yaml", "walled.hdf5", *(p.name for p in pdebench)]
    import_well(tmp_path / "well", tmp_path / "back.zarr")
    assert_same_ensemble(walled, tmp_path / "back.zarr", members=[0, 2])
