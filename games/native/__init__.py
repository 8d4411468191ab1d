"""Native games: numba bitboard kernels behind a thin Python ``State`` with OpenSpiel's names.

A kernel module (``tictactoe``, ``connect4``) is a set of ``@njit(cache=True)`` functions over a
fixed-size ``int64`` array: ``new_state``, ``to_play``, ``is_terminal``, ``legal_actions(s, out)``,
``play(s, a)``, ``returns0``, ``hash_key``, ``random_playout``, ``heuristic`` and ``order_scores``;
for the exact solver ``move_count``, ``immediate_win(s)`` (a winning move or -1) and
``nonlosing_moves(s, out)``; plus the constants ``NUM_ACTIONS``, ``MAX_PLIES`` and ``STATE_LEN``.
The status codes (``status.py``) sit at index 3 of every state.  The engines in
``plyground.search.native`` take those functions as arguments, so one search implementation is
specialised per game by numba.
"""

from plyground.games.native.state import NativeGame, NativeState, NATIVE_GAMES, make_native

__all__ = ["NativeGame", "NativeState", "NATIVE_GAMES", "make_native"]
