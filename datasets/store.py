"""A dataset directory on disk: ``manifest.json`` + ``data.parquet`` (one game, one row per position).

Columns (one row per merged position; the shapes are in the manifest):

* ``obs``        list<float32>  the flattened observation tensor (``manifest["obs_shape"]``)
* ``player``     int8           the player to move; the targets are from this player's view
* ``legal``      list<bool>     the legal mask, length ``num_actions``
* ``policy``     list<float32>  the policy target, 0 on illegal actions, sums to 1
* ``outcome``    float32        the game's final return for the mover, scaled to [-1, 1]
* ``root_value`` float32        the recorded search's root value for the mover (NaN if none)
* ``count``      int32          recorded positions merged into this row
* ``position``   string         the move sequence reaching it (space-separated action numbers)

The file is plain Parquet (pyarrow): Hugging Face ``datasets.load_dataset("parquet",
data_files=...)``, polars and DuckDB read it as it is.  ``load_arrays`` turns it into numpy arrays
for training without a Python loop over rows (each list column is flattened once and reshaped).
The manifest's ``content_hash`` is the sha256 of the Parquet file's bytes; ``load_arrays`` checks
it unless told not to.

>>> import tempfile, numpy as np
>>> d = tempfile.mkdtemp()
>>> obs = np.zeros((2, 3, 1, 2), np.float32); legal = np.ones((2, 2), bool)
>>> policy = np.full((2, 2), 0.5, np.float32)
>>> m = write_dataset(d, obs=obs, player=np.array([0, 1]), legal=legal, policy=policy,
...                   outcome=np.array([1.0, -1.0]), root_value=np.array([0.5, np.nan]),
...                   count=np.array([1, 2]), position=["0", "0 1"], manifest={"game": "demo"})
>>> arrays = load_arrays(d)
>>> arrays.obs.shape, arrays.player.tolist(), arrays.count.tolist(), len(arrays)
((2, 3, 1, 2), [0, 1], [1, 2], 2)
>>> read_manifest(d)["rows"], read_manifest(d)["obs_shape"]
(2, [3, 1, 2])
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from plyground.games.errors import PlygroundError

__all__ = ["DatasetError", "TrainingArrays", "write_dataset", "load_arrays", "read_manifest", "file_sha256",
           "FORMAT", "VERSION", "DATA_FILE", "MANIFEST_FILE", "COLUMNS"]

FORMAT = "plyground-dataset"
VERSION = 1
DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"
COLUMNS = ("obs", "player", "legal", "policy", "outcome", "root_value", "count", "position")
# Parquet row groups of this many rows: readers (DuckDB, polars, HF datasets) stream them one at a time.
ROW_GROUP_ROWS = 65536


class DatasetError(PlygroundError):
    """A dataset that cannot be built, written or read; the message names the directory and the field."""


@dataclass
class TrainingArrays:
    """A dataset as numpy arrays (``N`` rows, ``A`` actions), ready for ``torch.from_numpy``."""

    obs: np.ndarray         # float32 [N, *obs_shape]
    player: np.ndarray      # int64 [N]
    legal: np.ndarray       # bool [N, A]
    policy: np.ndarray      # float32 [N, A]
    outcome: np.ndarray     # float32 [N]
    root_value: np.ndarray  # float32 [N] (NaN where no search value was recorded)
    count: np.ndarray       # int32 [N]

    def __len__(self) -> int:
        return int(self.player.shape[0])

    def take(self, index: np.ndarray | Sequence[int]) -> "TrainingArrays":
        """The rows at ``index`` (an index array or a boolean mask), e.g. a held-out split."""
        idx = np.asarray(index)
        return TrainingArrays(*(getattr(self, f)[idx] for f in
                                ("obs", "player", "legal", "policy", "outcome", "root_value", "count")))


def file_sha256(path: str | Path) -> str:
    """The sha256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _list_array(values: np.ndarray, width: int, pa_type):
    """A pyarrow ``list<...>`` column of ``len(values) // width`` rows of ``width`` values each."""
    import pyarrow as pa
    n = values.size // width if width else 0
    if values.size > np.iinfo(np.int32).max:
        raise DatasetError(f"{values.size} values are too many for one Parquet list column; build smaller datasets")
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32) if width else np.zeros(n + 1, np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1), type=pa_type))


def write_dataset(out_dir: str | Path, *, obs: np.ndarray, player: np.ndarray, legal: np.ndarray,
                  policy: np.ndarray, outcome: np.ndarray, root_value: np.ndarray, count: np.ndarray,
                  position: Sequence[str], manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``DIR/data.parquet`` and ``DIR/manifest.json`` (created; files replaced atomically).

    ``obs`` is ``[N, *obs_shape]``; ``legal`` and ``policy`` are ``[N, A]``; the other columns are
    ``[N]``.  ``manifest`` holds the caller's fields (game, sources, filters, policy, ...); this adds
    ``format``, ``version``, ``obs_shape``, ``num_actions``, ``rows`` and ``content_hash`` (the
    sha256 of data.parquet) and returns the manifest written.  The manifest is written last, so a
    directory with a manifest is complete.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    obs = np.ascontiguousarray(obs, dtype=np.float32)
    n = obs.shape[0] if obs.ndim else 0
    if obs.ndim < 2:
        raise DatasetError(f"{out}: obs must be [rows, *obs_shape]; got shape {obs.shape}")
    legal = np.ascontiguousarray(legal, dtype=bool)
    policy = np.ascontiguousarray(policy, dtype=np.float32)
    if legal.ndim != 2 or policy.shape != legal.shape or legal.shape[0] != n:
        raise DatasetError(f"{out}: legal and policy must both be [{n}, num_actions]; got {legal.shape} and {policy.shape}")
    cols = {"player": np.asarray(player), "outcome": np.asarray(outcome), "root_value": np.asarray(root_value),
            "count": np.asarray(count)}
    for name, arr in cols.items():
        if arr.shape != (n,):
            raise DatasetError(f"{out}: {name} must have shape ({n},); got {arr.shape}")
    if len(position) != n:
        raise DatasetError(f"{out}: position must have {n} entries; got {len(position)}")
    obs_shape = [int(d) for d in obs.shape[1:]]
    width, num_actions = int(np.prod(obs_shape)), int(legal.shape[1])
    table = pa.table({
        "obs": _list_array(obs, width, pa.float32()),
        "player": pa.array(cols["player"].astype(np.int8)),
        "legal": _list_array(legal, num_actions, pa.bool_()),
        "policy": _list_array(policy, num_actions, pa.float32()),
        "outcome": pa.array(cols["outcome"].astype(np.float32)),
        "root_value": pa.array(cols["root_value"].astype(np.float32)),
        "count": pa.array(cols["count"].astype(np.int32)),
        "position": pa.array(list(position), type=pa.string()),
    })
    out.mkdir(parents=True, exist_ok=True)
    data, tmp = out / DATA_FILE, out / (DATA_FILE + ".tmp")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS)
    os.replace(tmp, data)
    full = {"format": FORMAT, "version": VERSION}
    full.update(manifest)
    full.update({"obs_shape": obs_shape, "num_actions": num_actions, "rows": n, "content_hash": file_sha256(data)})
    mtmp = out / (MANIFEST_FILE + ".tmp")
    mtmp.write_text(json.dumps(full, indent=1) + "\n")
    os.replace(mtmp, out / MANIFEST_FILE)
    return full


def read_manifest(dataset_dir: str | Path) -> dict[str, Any]:
    """The manifest of a dataset directory, checked for its format and version."""
    d = Path(dataset_dir)
    path = d / MANIFEST_FILE
    if not d.exists():
        raise DatasetError(f"no dataset directory at {str(d)!r}")
    if not path.is_file():
        raise DatasetError(f"{str(d)!r} is not a dataset directory: it has no {MANIFEST_FILE} "
                           "(build one with 'plyground datasets build')")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{str(path)!r} is not readable JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{str(path)!r} is not a plyground dataset manifest (format {FORMAT!r} expected)")
    if manifest.get("version") != VERSION:
        raise DatasetError(f"{str(path)!r} has dataset version {manifest.get('version')!r}; this plyground reads "
                           f"version {VERSION}")
    for key in ("obs_shape", "num_actions", "rows"):
        if key not in manifest:
            raise DatasetError(f"{str(path)!r} lacks {key!r}")
    return manifest


def _flat(table, name: str, dtype, width: int, d: Path) -> np.ndarray:
    """A list column flattened into ``[rows, width]`` (one C-level pass; no Python per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    col = table.column(name)
    lengths = pc.list_value_length(col)
    n = len(col)
    if n and (col.null_count or pc.min(lengths).as_py() != width or pc.max(lengths).as_py() != width):
        raise DatasetError(f"{str(d)!r}: column {name!r} must hold lists of {width} values in every row")
    values = pa.chunked_array([c.flatten() for c in col.chunks], type=col.type.value_type) if col.num_chunks \
        else pa.chunked_array([], type=col.type.value_type)
    arr = values.to_numpy() if values.null_count == 0 else None
    if arr is None:
        raise DatasetError(f"{str(d)!r}: column {name!r} has missing values")
    return np.require(arr, dtype, ["C", "W"]).reshape(n, width)  # writable: torch.from_numpy takes it as is


def load_arrays(dataset_dir: str | Path, verify: bool = True) -> TrainingArrays:
    """The dataset at ``dataset_dir`` as numpy arrays (see ``TrainingArrays``).

    ``verify`` checks data.parquet against the manifest's ``content_hash`` first.  Errors
    (``DatasetError``) name the directory and the bad field.
    """
    import pyarrow.parquet as pq

    d = Path(dataset_dir)
    manifest = read_manifest(d)
    data = d / DATA_FILE
    if not data.is_file():
        raise DatasetError(f"{str(d)!r} has a manifest but no {DATA_FILE}")
    if verify and manifest.get("content_hash") and file_sha256(data) != manifest["content_hash"]:
        raise DatasetError(f"{str(data)!r} does not match its manifest's content_hash (changed or damaged "
                           "since it was written)")
    try:
        table = pq.read_table(data)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
        raise DatasetError(f"{str(data)!r} is not readable Parquet: {e}") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DatasetError(f"{str(data)!r} lacks the columns {missing}")
    n = table.num_rows
    if n != manifest["rows"]:
        raise DatasetError(f"{str(d)!r}: data.parquet has {n} rows; the manifest says {manifest['rows']}")
    obs_shape = [int(x) for x in manifest["obs_shape"]]
    width, na = int(np.prod(obs_shape)), int(manifest["num_actions"])

    def scalar(name: str, dtype) -> np.ndarray:
        col = table.column(name)
        if col.null_count:
            raise DatasetError(f"{str(d)!r}: column {name!r} has missing values")
        return np.require(col.to_numpy(), dtype, ["C", "W"])

    return TrainingArrays(
        obs=_flat(table, "obs", np.float32, width, d).reshape([n] + obs_shape),
        player=scalar("player", np.int64),
        legal=_flat(table, "legal", bool, na, d),
        policy=_flat(table, "policy", np.float32, na, d),
        outcome=scalar("outcome", np.float32),
        root_value=scalar("root_value", np.float32),
        count=scalar("count", np.int32),
    )
