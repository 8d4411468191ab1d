"""The symmetries a game declares: board transformations that map positions to equivalent positions.

A symmetry ``g`` maps every position to one with the same value and the "same" moves: playing the
transformed moves from the start reaches the transformed position, whose legal moves are the
transformed legal moves.  Datasets use them to multiply training positions (augmentation).

* ``connect4`` and ``openspiel:connect_four`` (any board size): the left-right mirror.
* ``tictactoe`` and ``openspiel:tic_tac_toe``: the seven non-identity elements of the square's
  dihedral group (rotations by 90, 180, 270 degrees; mirrors across the two axes and the two
  diagonals).
* Every other game declares none (``[]``).

A ``Symmetry`` holds two index tables:

* ``action_perm``: the transformed action of ``a`` is ``action_perm[a]``;
* ``obs_perm``: the transformed flat observation is ``flat_obs[obs_perm]``.

>>> from plyground import games
>>> [s.name for s in symmetries(games.make("connect4"))]
['mirror']
>>> len(symmetries(games.make("tictactoe"))), symmetries(games.make("openspiel:hex(board_size=5)"))
(7, [])
>>> m = symmetries(games.make("connect4"))[0]
>>> m.action_perm.tolist()
[6, 5, 4, 3, 2, 1, 0]
>>> m.actions([0, 3, 1])
[6, 3, 5]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = ["Symmetry", "symmetries"]


@dataclass(frozen=True, eq=False)
class Symmetry:
    """One non-identity symmetry of a game; the ``apply_*`` methods take batches (first axis rows)."""

    name: str
    action_perm: np.ndarray   # int64 [A]: action a becomes action_perm[a]
    obs_perm: np.ndarray      # int64 [prod(obs_shape)]: new flat obs = flat_obs[obs_perm]

    @property
    def inverse_action_perm(self) -> np.ndarray:
        """The index table that moves per-action columns: ``new[:, b] = old[:, inverse[b]]``."""
        inv = np.empty_like(self.action_perm)
        inv[self.action_perm] = np.arange(len(self.action_perm))
        return inv

    def apply_obs(self, obs: np.ndarray) -> np.ndarray:
        """Transformed observations: ``obs`` is ``[N, *obs_shape]`` or ``[N, prod(obs_shape)]``
        (one observation without the batch axis also works); the result has the same shape."""
        obs = np.asarray(obs)
        n = self.obs_perm.size
        if obs.size % n:
            raise ValueError(f"observations of {obs.shape} do not hold whole observations of {n} values")
        flat = obs.reshape(-1, n)
        return flat[:, self.obs_perm].reshape(obs.shape)

    def _apply_per_action(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[-1] != self.action_perm.size:
            raise ValueError(f"per-action arrays need a last axis of {self.action_perm.size}; got {x.shape}")
        return x[..., self.inverse_action_perm]

    def apply_legal(self, legal: np.ndarray) -> np.ndarray:
        """Transformed legal masks ``[N, A]``: action ``a`` legal before means ``action_perm[a]`` legal after."""
        return self._apply_per_action(legal)

    def apply_policy(self, policy: np.ndarray) -> np.ndarray:
        """Transformed policies ``[N, A]``: the probability of ``a`` moves to ``action_perm[a]``."""
        return self._apply_per_action(policy)

    def apply_actions(self, actions: np.ndarray) -> np.ndarray:
        """Transformed action numbers (any shape)."""
        return self.action_perm[np.asarray(actions, dtype=np.int64)]

    def actions(self, seq: Sequence[int]) -> list[int]:
        """A move sequence transformed move by move (a list of ints)."""
        return [int(self.action_perm[a]) for a in seq]

    def __repr__(self) -> str:
        return f"Symmetry({self.name!r}, actions={self.action_perm.tolist()})"


def _board_symmetry(name: str, planes: int, rows: int, cols: int,
                    cell_map: Callable[[int, int], tuple[int, int]], actions_are_columns: bool) -> Symmetry:
    """A symmetry of a ``[planes, rows, cols]`` board observation given by where each cell (r, c) goes;
    actions are cells ``r * cols + c`` or, with ``actions_are_columns``, columns ``c``."""
    src = np.empty(planes * rows * cols, dtype=np.int64)  # new flat index -> old flat index
    for r in range(rows):
        for c in range(cols):
            r2, c2 = cell_map(r, c)
            for p in range(planes):
                src[(p * rows + r2) * cols + c2] = (p * rows + r) * cols + c
    if actions_are_columns:
        perm = np.array([cell_map(0, c)[1] for c in range(cols)], dtype=np.int64)
    else:
        perm = np.empty(rows * cols, dtype=np.int64)
        for r in range(rows):
            for c in range(cols):
                r2, c2 = cell_map(r, c)
                perm[r * cols + c] = r2 * cols + c2
    return Symmetry(name, perm, src)


def _connect_four(shape: Sequence[int], num_actions: int) -> list[Symmetry]:
    planes, rows, cols = shape
    if cols != num_actions:
        return []
    return [_board_symmetry("mirror", planes, rows, cols, lambda r, c: (r, cols - 1 - c), True)]


# The square's dihedral group without the identity, as maps of a cell (r, c) on an n x n board.
_SQUARE = (
    ("rot90", lambda n: lambda r, c: (c, n - 1 - r)),
    ("rot180", lambda n: lambda r, c: (n - 1 - r, n - 1 - c)),
    ("rot270", lambda n: lambda r, c: (n - 1 - c, r)),
    ("flip_lr", lambda n: lambda r, c: (r, n - 1 - c)),
    ("flip_ud", lambda n: lambda r, c: (n - 1 - r, c)),
    ("transpose", lambda n: lambda r, c: (c, r)),
    ("anti_transpose", lambda n: lambda r, c: (n - 1 - c, n - 1 - r)),
)


def _tic_tac_toe(shape: Sequence[int], num_actions: int) -> list[Symmetry]:
    planes, rows, cols = shape
    if rows != cols or rows * cols != num_actions:
        return []
    return [_board_symmetry(name, planes, rows, cols, make(rows), False) for name, make in _SQUARE]


# the rules family (native name or OpenSpiel short name) -> the builder of its symmetries
_FAMILIES: dict[str, Callable[[Sequence[int], int], list[Symmetry]]] = {
    "connect4": _connect_four, "connect_four": _connect_four,
    "tictactoe": _tic_tac_toe, "tic_tac_toe": _tic_tac_toe,
}

_CACHE: dict[tuple, list[Symmetry]] = {}


def _family(game) -> str | None:
    """The native name or OpenSpiel short name of ``game``; None for PettingZoo and anything else
    (a PettingZoo env numbers actions its own way, so it declares no symmetries)."""
    ps = getattr(game, "pyspiel_game", None)
    if ps is not None:
        return ps.get_type().short_name
    if getattr(game, "twin_game", None) is not None:
        return None
    if getattr(game, "kernel", None) is not None:
        return getattr(game, "name", None)
    return None


def symmetries(game) -> list[Symmetry]:
    """The non-identity symmetries ``game`` declares (``[]`` for games without any).

    ``game`` is a plyground game object (``games.make(...)``).  Tables are built once per game.
    """
    family = _family(game)
    build = _FAMILIES.get(family) if family else None
    if build is None:
        return []
    try:
        shape = tuple(int(d) for d in game.observation_tensor_shape())
    except Exception:  # noqa: BLE001 - a game without an observation tensor has nothing to transform
        return []
    if len(shape) != 3:
        return []
    key = (family, shape, int(game.num_distinct_actions()))
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = build(shape, key[2])
    return list(found)
