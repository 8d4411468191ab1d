"""Training data from the arena's records (``build_dataset``) and its on-disk form (``load_arrays``,
``read_manifest``): Parquet plus a manifest, one game per dataset.  See ``datasets.build`` and
``datasets.store``."""

from plyground.datasets.build import build_dataset
from plyground.datasets.store import DatasetError, TrainingArrays, load_arrays, read_manifest

__all__ = ["build_dataset", "load_arrays", "read_manifest", "DatasetError", "TrainingArrays"]
