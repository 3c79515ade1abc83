"""Simulation ensembles in Zarr: schema, crash-safe generation, recipes, and streaming into training."""

from pdekit.data.generate import generate, member_seeds, sample_parameters
from pdekit.data.recipes import RECIPES, LogUniform, Recipe, Uniform
from pdekit.data.schema import SCHEMA_VERSION, StoreError, ValidationReport, validate
from pdekit.data.normalize import FieldStatistics, compute_statistics, load_statistics
from pdekit.data.sampling import EpochSampler, shard
from pdekit.data.store import open_store
from pdekit.data.windows import ChunkLocalSampler, Windows

__all__ = [
    "ChunkLocalSampler",
    "EpochSampler",
    "FieldStatistics",
    "Windows",
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
    "validate",
]
