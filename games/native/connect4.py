"""Connect four kernel: 7x6 bitboards in numba, OpenSpiel's action numbering (column 0-6).

A state is an immutable value, a tuple of four int64 (``STATE_LEN``); a NativeState keeps it in an
``int64[4]`` array, which every reading function also accepts:
  0 CUR   stones of the player to move (bitboard)
  1 MASK  all stones
  2 PLY   stones played
  3 STATUS 0 ongoing, 1 player 0 won, 2 player 1 won, 3 draw
``play(s, col)`` returns the next state; nothing is modified in place.

Bitboard: column c holds bits c*7 .. c*7+5 (bottom to top); bit c*7+6 is a sentinel row that
keeps shifts from wrapping between columns (Pascal Pons' layout).  Player 0 moves first.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from plyground.games.native.status import DRAW, HEURISTIC_SCALE, ONGOING, WIN0, WIN1, status_return0

WIDTH = 7
HEIGHT = 6
H1 = HEIGHT + 1
NUM_ACTIONS = WIDTH
MAX_PLIES = WIDTH * HEIGHT
STATE_LEN = 4
# nonlosing_moves lists the moves in order_scores' order (best first): the engines need not sort
ORDERED_MOVES = False
CUR, MASK, PLY, STATUS = 0, 1, 2, 3

BOTTOM = np.int64(sum(1 << (c * H1) for c in range(WIDTH)))
BOARD = np.int64(BOTTOM * ((1 << HEIGHT) - 1))
# Centre-first column order: the usual move ordering for connect four.
CENTRE_ORDER = np.array([3, 2, 4, 1, 5, 0, 6], dtype=np.int64)


@njit(cache=True, inline="always")
def bottom_bit(col):
    return np.int64(1) << (col * H1)


@njit(cache=True, inline="always")
def top_bit(col):
    return np.int64(1) << (HEIGHT - 1 + col * H1)


@njit(cache=True, inline="always")
def column_bits(col):
    return ((np.int64(1) << HEIGHT) - 1) << (col * H1)


@njit(cache=True, inline="always")
def has_four(p):
    """True if bitboard ``p`` holds four in a row."""
    m = p & (p >> H1)  # horizontal
    if m & (m >> (2 * H1)):
        return True
    m = p & (p >> HEIGHT)  # diagonal \
    if m & (m >> (2 * HEIGHT)):
        return True
    m = p & (p >> (H1 + 1))  # diagonal /
    if m & (m >> (2 * (H1 + 1))):
        return True
    m = p & (p >> 1)  # vertical
    if m & (m >> 2):
        return True
    return False


@njit(cache=True, inline="always")
def winning_cells(p, mask):
    """Empty cells (bitboard, any height) that would give ``p`` four in a row."""
    # vertical
    r = (p << 1) & (p << 2) & (p << 3)
    # horizontal and the two diagonals
    for d in (H1, HEIGHT, H1 + 1):
        q = (p << d) & (p << (2 * d))
        r |= q & (p << (3 * d))
        r |= q & (p >> d)
        q = (p >> d) & (p >> (2 * d))
        r |= q & (p << d)
        r |= q & (p >> (3 * d))
    return r & (BOARD ^ mask)


@njit(cache=True)
def new_state():
    z = np.int64(0)
    return (z, z, z, z)


@njit(cache=True, inline="always")
def as_state(s):
    """The state value of ``s`` (a state or an ``int64[4]`` array)."""
    return (np.int64(s[0]), np.int64(s[1]), np.int64(s[2]), np.int64(s[3]))


@njit(cache=True, inline="always")
def to_play(s):
    return s[PLY] & 1


@njit(cache=True, inline="always")
def is_terminal(s):
    return s[STATUS] != ONGOING


@njit(cache=True, inline="always")
def can_play(s, col):
    return (s[MASK] & top_bit(col)) == 0


@njit(cache=True)
def legal_actions(s, out):
    """Write the legal columns in ascending order into ``out``; return how many (0 if over)."""
    if s[STATUS] != ONGOING:
        return 0
    n = 0
    for c in range(WIDTH):
        if (s[MASK] & top_bit(c)) == 0:
            out[n] = c
            n += 1
    return n


@njit(cache=True, inline="always")
def play(s, col):
    """The state after the player to move drops a stone in ``col`` (assumed legal)."""
    new_mask = s[MASK] | (s[MASK] + bottom_bit(col))
    mover = s[CUR] | (new_mask ^ s[MASK])  # the mover's stones including the new one
    ply = s[PLY] + 1
    if has_four(mover):
        status = np.int64(WIN0) if (ply & 1) == 1 else np.int64(WIN1)
    elif ply == MAX_PLIES:
        status = np.int64(DRAW)
    else:
        status = np.int64(ONGOING)
    return (mover ^ new_mask, new_mask, ply, status)  # the opponent becomes the player to move


@njit(cache=True, inline="always")
def returns0(s):
    """Player 0's return: +1 win, -1 loss, 0 draw (0 while the game goes on)."""
    return status_return0(s[STATUS])


@njit(cache=True, inline="always")
def hash_key(s):
    """A unique key of the position (Pons: cur + mask); the player to move is implied."""
    return s[CUR] + s[MASK]


@njit(cache=True)
def random_playout(s):
    """Uniformly random moves from ``s`` to the end; player 0's return.

    Rejection sampling: a uniformly drawn column is redrawn while it is full, which is uniform
    over the open columns and allocates nothing."""
    t = as_state(s)
    while t[STATUS] == ONGOING:
        c = np.random.randint(WIDTH)
        while t[MASK] & top_bit(c):
            c = np.random.randint(WIDTH)
        t = play(t, c)
    return returns0(t)


@njit(cache=True, inline="always")
def _popcount(x):
    n = 0
    while x:
        n += 1
        x &= x - 1
    return n


@njit(cache=True, inline="always")
def _heuristic_quarters(s):
    """The heuristic's raw score in quarters (an ongoing game): 4 per open winning cell, mine
    minus the opponent's, plus 1 per stone in the centre column, mine minus the opponent's."""
    me = s[CUR]
    opp = s[CUR] ^ s[MASK]
    centre = column_bits(3)
    return (4 * (_popcount(winning_cells(me, s[MASK])) - _popcount(winning_cells(opp, s[MASK])))
            + _popcount(me & centre) - _popcount(opp & centre))


# heuristic_score's values, by quarters + _Q_MAX (|quarters| <= 4 * 42 + 6)
_Q_MAX = 4 * WIDTH * HEIGHT + HEIGHT
HEUR_INT = np.rint(np.tanh(np.arange(-_Q_MAX, _Q_MAX + 1) / 16.0) * HEURISTIC_SCALE).astype(np.int64)


@njit(cache=True)
def heuristic(s):
    """A cheap value in (-1, 1) for the player to move: open winning cells and centre-column
    stones, mine minus the opponent's (tanh of a quarter of the score, a stone 1/4 of a cell)."""
    if s[STATUS] != ONGOING:
        r = returns0(s)
        return r if (s[PLY] & 1) == 0 else -r
    return np.tanh(_heuristic_quarters(s) / 16.0)


@njit(cache=True)
def heuristic_score(s):
    """``round(heuristic(s) * HEURISTIC_SCALE)``, looked up without floating point (the
    depth-limited alpha-beta's leaf score)."""
    if s[STATUS] != ONGOING:
        r = np.int64(returns0(s)) * HEURISTIC_SCALE
        return r if (s[PLY] & 1) == 0 else -r
    return HEUR_INT[_heuristic_quarters(s) + _Q_MAX]


@njit(cache=True)
def order_scores(s, actions, n, out):
    """Move-ordering scores for the first ``n`` of ``actions`` (higher = try first)."""
    me = s[CUR]
    for i in range(n):
        c = actions[i]
        new_mask = s[MASK] | (s[MASK] + bottom_bit(c))
        mover = me | (new_mask ^ s[MASK])
        cells = winning_cells(mover, new_mask)
        k = 0
        while cells:
            k += 1
            cells &= cells - 1
        out[i] = k * 8 + (3 - abs(3 - c))


# ---------------------------------------------------------------- solver helpers (alpha-beta engine)
@njit(cache=True, inline="always")
def move_count(s):
    """Stones on the board (plies played)."""
    return s[PLY]


@njit(cache=True, inline="always")
def _lowest_column(cells):
    """The column of the lowest set bit of a non-empty bitboard."""
    low = cells & -cells
    for c in range(WIDTH):
        if low & column_bits(c):
            return c
    return -1


@njit(cache=True)
def immediate_win(s):
    """A column where the player to move wins at once, or -1 (also -1 if the game is over)."""
    if s[STATUS] != ONGOING:
        return -1
    w = winning_cells(s[CUR], s[MASK]) & ((s[MASK] + BOTTOM) & BOARD)
    if w == 0:
        return -1
    return _lowest_column(w)


@njit(cache=True)
def nonlosing_moves(s, out):
    """Write the columns after which the opponent cannot win at once into ``out``; return how many.

    Assumes the player to move has no immediate win (check ``immediate_win`` first).  0 means
    every move loses on the next ply (the opponent has two threats, or must be blocked twice).
    """
    possible = (s[MASK] + BOTTOM) & BOARD
    opp_win = winning_cells(s[CUR] ^ s[MASK], s[MASK])
    forced = possible & opp_win
    if forced:
        if forced & (forced - 1):
            return 0
        possible = forced
    possible &= ~(opp_win >> 1)  # never play just below an opponent's winning cell
    n = 0
    for c in range(WIDTH):  # branch-free: write every column, advance only past the playable ones
        out[n] = c
        n += (possible & column_bits(c)) != 0
    return n


@njit(cache=True)
def observe(s, out):
    """Write OpenSpiel's observation of ``s`` into ``out`` (float32 ``[3, HEIGHT, WIDTH]``): planes
    x (player 0), o (player 1), empty; rows bottom to top.  ``NativeState.observation_tensor``
    equals it; this is the allocation-free form batched network evaluation uses."""
    mine = s[CUR]
    occupied = s[MASK]
    x = mine if (s[PLY] & 1) == 0 else occupied & ~mine
    for c in range(WIDTH):
        for r in range(HEIGHT):
            bit = np.int64(1) << (c * H1 + r)
            if occupied & bit:
                if x & bit:
                    out[0, r, c] = 1.0
                    out[1, r, c] = 0.0
                else:
                    out[0, r, c] = 0.0
                    out[1, r, c] = 1.0
                out[2, r, c] = 0.0
            else:
                out[0, r, c] = 0.0
                out[1, r, c] = 0.0
                out[2, r, c] = 1.0
