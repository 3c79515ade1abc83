"""pdekit.io.coarsen: a store coarsened after the fact equals the store generated at the coarse grid."""

import numpy as np
import pytest
import xarray as xr

from pdekit.data import generate
from pdekit.data.recipes import fno_navier_stokes
from pdekit.data.schema import json_attribute
from pdekit.data.store import open_store
from pdekit.io.coarsen import coarsen_store
from pdekit.rollout.correction import CorrectionObjective


def ns(stored):
    return fno_navier_stokes(1e-4).with_overrides(shape=(32, 32), stored_shape=stored, times=(0.5, 1.0), members=3, batch_size=3)


@pytest.fixture(scope="module")
def fine(tmp_path_factory):
    path = tmp_path_factory.mktemp("fine") / "fine.zarr"
    generate(ns((16, 16)), path, device="cpu", progress=False)
    return path


def test_coarsened_store_equals_the_store_generated_at_the_coarse_grid(fine, tmp_path):
    direct = tmp_path / "direct.zarr"
    generate(ns((8, 8)), direct, device="cpu", progress=False)
    coarsen_store(fine, tmp_path / "coarse.zarr", 8)
    a, b = xr.open_zarr(tmp_path / "coarse.zarr"), xr.open_zarr(direct)
    assert a.vorticity.shape == b.vorticity.shape == (3, 3, 8, 8)
    np.testing.assert_allclose(a.vorticity.values, b.vorticity.values, rtol=0, atol=1e-5 * float(abs(b.vorticity).max()))
    for name in ("x", "y", "seed", "viscosity", "completed"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert json_attribute(open_store(tmp_path / "coarse.zarr").attrs, "recipe")["stored_shape"] == [8, 8]


def test_a_correction_on_a_coarsened_store_steps_the_coarse_grids_solver(fine, tmp_path):
    coarsen_store(fine, tmp_path / "coarse.zarr", (8, 8))
    objective = CorrectionObjective.from_store(tmp_path / "coarse.zarr", statistics=None)
    assert objective.solvers.grid.shape == (8, 8)


@pytest.mark.parametrize("shape, message", [((32, 32), "up to the store's"), ((8,), "must have 2 sizes"), (1, "from 2")])
def test_a_shape_that_does_not_coarsen_is_refused_by_value(fine, tmp_path, shape, message):
    with pytest.raises(ValueError, match=message):
        coarsen_store(fine, tmp_path / "bad.zarr", shape)
    assert not (tmp_path / "bad.zarr").exists()


def test_a_store_with_walls_is_refused_naming_them(tmp_path):
    from pdekit.data import Field, Layout, create_store
    from pdekit.data.store import write_member
    from pdekit.grid import Grid

    layout = Layout(
        fields=(Field("u", "a scalar"),),
        grid=Grid((8, 8), (1.0, 1.0)),
        times=(0.0,),
        members=1,
        parameters=(),
        attributes={"pde": "test", "solver": "none", "scheme": "none", "title": "walled", "recipe": {"name": "walled"}},
        boundary_conditions=("wall", "periodic"),
    )
    write_member(create_store(tmp_path / "walled.zarr", layout, {}, np.array([0])), 0, np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"needs periodic axes; the store has \{'x': 'wall'\}"):
        coarsen_store(tmp_path / "walled.zarr", tmp_path / "coarse.zarr", 4)
