"""Simulation ensembles in Zarr: schema, crash-safe generation, recipes, and streaming into training."""

from pdekit.data.fields import PDES, Field, Parameter
from pdekit.data.generate import generate, member_seeds, sample_parameters
from pdekit.data.normalize import FieldStatistics, compute_statistics, load_statistics
from pdekit.data.recipes import RECIPES, LogUniform, Recipe, Uniform
from pdekit.data.sampling import EpochSampler, shard
from pdekit.data.schema import SCHEMA_VERSION, StoreError, ValidationReport, validate
from pdekit.data.store import Layout, create_store, open_store, upgrade_store
from pdekit.data.windows import ChunkLocalSampler, Window, Windows

__all__ = [
    "ChunkLocalSampler",
    "EpochSampler",
    "Field",
    "FieldStatistics",
    "Layout",
    "PDES",
    "Parameter",
    "Window",
    "Windows",
    "create_store",
    "compute_statistics",
    "load_statistics",
    "LogUniform",
    "RECIPES",
    "Recipe",
    "SCHEMA_VERSION",
    "StoreError",
    "Uniform",
    "ValidationReport",
    "generate",
    "member_seeds",
    "open_store",
    "sample_parameters",
    "shard",
    "upgrade_store",
    "validate",
]
