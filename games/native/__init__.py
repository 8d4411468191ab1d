"""Native games: numba bitboard kernels behind a thin Python ``State`` with OpenSpiel's names.

A kernel module (``tictactoe``, ``connect4``) is a set of ``@njit(cache=True)`` functions over a
position that is an immutable VALUE, a tuple of ``STATE_LEN`` int64: ``new_state()``,
``play(s, a)`` (returns the next position), ``to_play``, ``is_terminal``, ``legal_actions(s, out)``,
``returns0``, ``hash_key``, ``random_playout``, ``heuristic`` and ``order_scores``; for the exact
solver ``move_count``, ``immediate_win(s)`` (a winning move or -1) and ``nonlosing_moves(s, out)``;
plus the constants ``NUM_ACTIONS``, ``MAX_PLIES``, ``STATE_LEN`` and ``ORDERED_MOVES`` (True if
``nonlosing_moves`` already lists moves in ``order_scores``' order).  Every function that reads a
position also accepts it as an ``int64[STATE_LEN]`` array, which is how ``NativeState.array``
holds it.  The status codes (``status.py``) sit at index 3.  The engines in
``plyground.search.native`` take those functions as arguments, so one search implementation is
specialised per game by numba, and keep positions in registers.
"""

from plyground.games.native.state import NativeGame, NativeState, NATIVE_GAMES, make_native

__all__ = ["NativeGame", "NativeState", "NATIVE_GAMES", "make_native"]
