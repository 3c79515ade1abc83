"""Reading a store's plain chunk files straight into numpy gives zarr's own bits, and only where that is what zarr would do."""

import numpy as np
import pytest
import zarr
from zarr.codecs import ZstdCodec

from pdekit.data import Windows, generate
from pdekit.data.recipes import heat_2d
from pdekit.data.schema import StoreError
from pdekit.data.store import chunk_directory, read_chunk_files, read_members


def array(tmp_path, name="v", *, shape=(3, 7, 4, 4), chunks=(1, 3, 4, 4), **options) -> zarr.Array:
    group = zarr.open_group(tmp_path / "store.zarr", mode="a")
    return group.create_array(name, shape=shape, chunks=chunks, dtype="float32", fill_value=np.nan, **{"compressors": None, **options})


def test_a_generated_store_reads_from_its_chunk_files_the_bits_zarr_reads(tmp_path):
    store = tmp_path / "heat.zarr"
    generate(heat_2d().with_overrides(shape=(16, 16), members=5, batch_size=2), store, device="cpu", progress=False)
    group = zarr.open_group(store, mode="r")
    field = group["temperature"]
    assert chunk_directory(group, field) == store / "temperature"
    assert np.array_equal(read_members(group, 1, 4)[:, :, 0], field[1:4])
    windows = Windows(store, input_steps=2, target_steps=1)
    assert np.array_equal(windows.read_block(0, 5)[:, :, 0], field[:])


def test_time_chunks_a_partial_last_chunk_and_a_missing_chunk_read_as_zarr_reads_them(tmp_path):
    data = array(tmp_path)  # 7 times in chunks of 3: the last chunk holds one time
    data[0] = np.arange(7 * 16, dtype=np.float32).reshape(7, 4, 4)
    data[2, :3] = -1.0  # member 2's later chunks are never written: they hold the fill value
    group = zarr.open_group(tmp_path / "store.zarr", mode="r")
    directory = chunk_directory(group, group["v"])
    assert directory is not None
    assert np.array_equal(read_chunk_files(group["v"], directory, 0, 3), group["v"][:], equal_nan=True)
    for start, stop in ((1, 9), (2, 1), (-2, 3)):  # ranges past the end, empty and from the end: clipped as zarr's slices are
        assert np.array_equal(read_chunk_files(group["v"], directory, start, stop), group["v"][start:stop], equal_nan=True)


@pytest.mark.parametrize(
    "options",
    [{"compressors": ZstdCodec(level=1)}, {"shards": (1, 6, 4, 4)}],
    ids=["compressed", "sharded"],
)
def test_compressed_or_sharded_fields_are_left_to_zarr(tmp_path, options):
    data = array(tmp_path, **options)
    data[:] = 1.0
    group = zarr.open_group(tmp_path / "store.zarr", mode="r")
    assert chunk_directory(group, group["v"]) is None


def test_a_store_in_memory_is_left_to_zarr():
    group = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    data = group.create_array("v", shape=(2, 3), chunks=(1, 3), dtype="float32", compressors=None)
    assert chunk_directory(group, data) is None


def test_a_truncated_chunk_file_is_a_store_error_naming_it(tmp_path):
    data = array(tmp_path)
    data[1] = 2.0
    path = tmp_path / "store.zarr" / "v" / "c" / "1" / "0" / "0" / "0"
    path.write_bytes(path.read_bytes()[:-4])
    group = zarr.open_group(tmp_path / "store.zarr", mode="r")
    directory = chunk_directory(group, group["v"])
    assert directory is not None
    with pytest.raises(StoreError, match="c/1/0/0/0"):
        read_chunk_files(group["v"], directory, 0, 3)
