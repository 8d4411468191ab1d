"""Batched network inputs from native state arrays, inside numba: what a network-guided search
hands its evaluator without building a Python state per leaf.

``encode(game_name, states, obs, player, mask)`` fills, for each row of ``states`` (``int64[n,
STATE_LEN]``), the observation (``float32[n, *observation_shape]``, equal to
``NativeState.observation_tensor()``), the player to move and the legal-action mask.

>>> import numpy as np
>>> from plyground import games
>>> s = games.play_moves(games.make("tictactoe"), "4 0")
>>> obs, player, mask = np.empty((1, 3, 3, 3), np.float32), np.empty(1, np.int64), np.empty((1, 9), np.bool_)
>>> encode("tictactoe", s.array[None, :], obs, player, mask)
>>> bool((obs[0] == s.observation_tensor()).all()), int(player[0]), mask[0].nonzero()[0].tolist()
(True, 0, [1, 2, 3, 5, 6, 7, 8])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from plyground.games.native import connect4 as _c4
from plyground.games.native import tictactoe as _ttt


@njit(cache=True, inline="always")
def _encode(observe, to_play, legal_actions, num_actions, states, obs, player, mask):
    acts = np.empty(num_actions, dtype=np.int64)
    for b in range(states.shape[0]):
        s = states[b]
        observe(s, obs[b])
        player[b] = to_play(s)
        for a in range(num_actions):
            mask[b, a] = False
        n = legal_actions(s, acts)
        for j in range(n):
            mask[b, acts[j]] = True


@njit(cache=True)
def connect4_encode(states, obs, player, mask):
    _encode(_c4.observe, _c4.to_play, _c4.legal_actions, _c4.NUM_ACTIONS, states, obs, player, mask)


@njit(cache=True)
def tictactoe_encode(states, obs, player, mask):
    _encode(_ttt.observe, _ttt.to_play, _ttt.legal_actions, _ttt.NUM_ACTIONS, states, obs, player, mask)


ENCODERS = {"connect4": connect4_encode, "tictactoe": tictactoe_encode}


def encode(game_name: str, states: np.ndarray, obs: np.ndarray, player: np.ndarray, mask: np.ndarray) -> None:
    """Fill ``obs``, ``player`` and ``mask`` for the native states in the rows of ``states``."""
    try:
        fn = ENCODERS[game_name]
    except KeyError:
        raise KeyError(f"no native encoder for {game_name!r}; native games: {', '.join(sorted(ENCODERS))}") from None
    fn(states, obs, player, mask)
