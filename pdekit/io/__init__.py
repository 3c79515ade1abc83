"""Interoperability: pdekit Zarr ensembles to and from The Well's and PDEBench's HDF5 layouts (``pdekit export`` / ``pdekit import``).

h5py is imported on first use (``pip install 'pdekit[hdf5]'``; ``'pdekit[well]'`` adds The Well's own
loader). See ``docs/interop.md`` for the field-by-field mapping and what each format refuses.
"""

from pdekit.io.formats import detect_format, require_zarr_store
from pdekit.io.pdebench import export_pdebench, import_pdebench
from pdekit.io.well import export_well, import_well, well_statistics

__all__ = ["detect_format", "export_pdebench", "export_well", "import_pdebench", "import_well", "require_zarr_store", "well_statistics"]
