"""Which format a path holds (a pdekit Zarr ensemble, The Well's HDF5, PDEBench's HDF5), h5py on first use, and what both HDF5 exporters
share.

``require_zarr_store`` is what ``pdekit train --data`` calls: it needs no h5py and only looks at
the path, so that HDF5 data is refused with the command that converts it, instead of with a Zarr
error about a missing ``zarr.json``.

Both exporters write each file as ``<file>.partial`` and rename it when it is whole
(``replaced_when_written``), and keep pdekit's per-member arrays (seeds, store indices) as datasets
of a ``pdekit`` group (``write_pdekit_arrays``): an HDF5 attribute lives in its object's header,
which holds at most 64 KiB, about 8 000 int64 values.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# An HDF5 superblock sits at 0 or after a user block of 512 * 2^k bytes.
SIGNATURE_OFFSETS = (0, 512, 1024, 2048, 4096)
HDF5_SUFFIXES = (".h5", ".hdf5")
FORMATS = ("well", "pdebench")
PDEKIT_GROUP = "pdekit"  # pdekit's own per-member arrays in an HDF5 file it wrote
PARTIAL = ".partial"  # not .h5 or .hdf5: a file being written is invisible to hdf5_files and WellDataset's glob


def h5py_module():
    """Returns the ``h5py`` module; ImportError naming the extra to install when it is missing."""
    try:
        import h5py
    except ImportError as error:
        raise ImportError(
            "reading and writing HDF5 needs h5py: pip install 'pdekit[hdf5]' (or 'pdekit[well]' for The Well's loader too)"
        ) from error
    return h5py


def is_hdf5(path) -> bool:
    """Returns whether ``path`` is a file that starts like an HDF5 file."""
    path = Path(path)
    if not path.is_file():
        return False
    with path.open("rb") as file:
        for offset in SIGNATURE_OFFSETS:
            file.seek(offset)
            if file.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
    return False


def hdf5_files(directory) -> list[Path]:
    """Returns the ``*.h5`` and ``*.hdf5`` files directly in ``directory``, sorted by path (the order The Well's loader uses)."""
    directory = Path(directory)
    return sorted((p for p in directory.iterdir() if p.suffix in HDF5_SUFFIXES and p.is_file()), key=str) if directory.is_dir() else []


def hdf5_inside(path) -> list[Path]:
    """Returns the HDF5 files ``path`` stands for: itself, those in it, or those in its ``data/<split>/`` folders (a Well dataset)."""
    path = Path(path)
    if is_hdf5(path):
        return [path]
    if not path.is_dir() or (path / "zarr.json").exists():
        return []
    found = hdf5_files(path)
    if not found and (path / "data").is_dir():
        for split in sorted(p for p in (path / "data").iterdir() if p.is_dir()):
            found += hdf5_files(split)
    return found


def require_zarr_store(store) -> None:
    """Raises ValueError naming ``pdekit import`` when ``store`` is a local path holding HDF5 files instead of a Zarr ensemble.

    Training reads Zarr only (``Windows`` streams whole-member chunks, and the normalisation
    statistics are kept in the store); an HDF5 dataset is converted once, one trajectory at a time.

    Args:
        store: a local path or a URL; URLs are not looked at.

    Raises:
        ValueError: ``store`` is an HDF5 file, a folder of them, or a Well dataset folder.
    """
    if "://" in str(store):
        return
    found = hdf5_inside(store)
    if found:
        raise ValueError(
            f"{store} holds HDF5 data ({found[0].name}{' ...' if len(found) > 1 else ''}), not a Zarr ensemble: convert it once with "
            f"`pdekit import {store} --out STORE.zarr` (streamed, one trajectory at a time; pdekit.io.import_well or import_pdebench) and "
            "train on STORE.zarr"
        )


def detect_format(path) -> str:
    """Returns ``"well"`` or ``"pdebench"`` for the HDF5 data at ``path``, judged by its first file's layout.

    Args:
        path: an HDF5 file, a folder of them, or a Well dataset folder (``data/<split>/``).

    Returns:
        ``"well"`` or ``"pdebench"``.

    Raises:
        ValueError: there is no HDF5 file at ``path``, or its layout is neither format's.
        ImportError: h5py is not installed.
    """
    found = hdf5_inside(path)
    if not found:
        raise ValueError(f"{path}: no HDF5 file there (nor in {Path(path) / 'data'}/<split>/)")
    h5py = h5py_module()
    with h5py.File(found[0], "r") as file:
        if "dimensions" in file and "t0_fields" in file:
            return "well"
        if any(key.endswith("-coordinate") for key in file) or any(
            isinstance(file[key], h5py.Group) and "data" in file[key] for key in file
        ):
            return "pdebench"
    raise ValueError(
        f"{found[0]}: neither The Well's layout (groups dimensions, t0_fields) nor PDEBench's (x-coordinate, or groups holding data)"
    )


@contextmanager
def replaced_when_written(paths: Sequence[Path]) -> Iterator[list[Path]]:
    """Yields a temporary sibling ``<name>.partial`` of each of ``paths`` to write; moves each onto its path when the block ends, removes
    them all when it raises.

    An export stopped by an error leaves nothing behind, so the same export can be run again; one
    killed outright leaves only ``.partial`` files, which the next run overwrites (write them with
    h5py mode ``"w"``). Nothing is renamed before every file is whole, so an export of several
    files is all or nothing unless the renames themselves fail.
    """
    partials = [Path(p).with_name(Path(p).name + PARTIAL) for p in paths]
    try:
        yield partials
    except BaseException:
        for partial in partials:
            partial.unlink(missing_ok=True)
        raise
    for partial, path in zip(partials, paths, strict=True):
        os.replace(partial, path)


def write_pdekit_arrays(file, **arrays: np.ndarray) -> None:
    """Writes each of ``arrays`` (``[member]``) as the dataset ``pdekit/<name>`` of the open h5py ``file``."""
    group = file.require_group(PDEKIT_GROUP)
    for name, values in arrays.items():
        group.create_dataset(name, data=np.asarray(values))


def read_pdekit_array(file, name: str, n: int, where: str) -> np.ndarray | None:
    """Returns pdekit's per-member array ``name`` of the open h5py ``file``, ``[n]``; None if the file has none.

    Read from the dataset ``pdekit/<name>``, else from the file attribute ``pdekit_<name>`` that
    earlier exports wrote (which the 64 KiB object header capped near 8 000 members). ValueError naming
    ``where`` if it does not hold ``n`` values.
    """
    if PDEKIT_GROUP in file and name in file[PDEKIT_GROUP]:
        values = np.asarray(file[PDEKIT_GROUP][name][()])
    elif f"pdekit_{name}" in file.attrs:
        values = np.asarray(file.attrs[f"pdekit_{name}"])
    else:
        return None
    if values.shape != (n,):
        raise ValueError(f"{where}: pdekit/{name} has shape {values.shape}; expected one value per trajectory, ({n},)")
    return values


def attribute_text(value) -> str:
    """Returns an HDF5 attribute as text: h5py gives variable-length strings as ``str`` and fixed-length ones as ``bytes``."""
    return value.decode() if isinstance(value, bytes) else str(value)
