"""Tic-tac-toe kernel: 3x3 bitboards in numba, OpenSpiel's action numbering (cell 0-8, row-major).

A state is an immutable value, a tuple of four int64 (``STATE_LEN``); a NativeState keeps it in an
``int64[4]`` array, which every reading function also accepts:
  0 X      cells of player 0 (x, moves first), bit i = cell i
  1 O      cells of player 1 (o)
  2 PLY    moves played
  3 STATUS 0 ongoing, 1 player 0 won, 2 player 1 won, 3 draw
``play(s, cell)`` returns the next state; nothing is modified in place.

The lookup tables are indexed with ``np.uint64``: for a signed index numba adds negative-index
wraparound code to every lookup (the alpha-beta search is 6% faster without it).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from plyground.games.native.status import DRAW, HEURISTIC_SCALE, ONGOING, WIN0, WIN1, status_return0

NUM_ACTIONS = 9
MAX_PLIES = 9
STATE_LEN = 4
# nonlosing_moves lists the moves in order_scores' order (best first): the engines need not sort
ORDERED_MOVES = True
X, O, PLY, STATUS = 0, 1, 2, 3
FULL = (1 << 9) - 1
LINES = np.array([0b000000111, 0b000111000, 0b111000000,   # rows
                  0b001001001, 0b010010010, 0b100100100,   # columns
                  0b100010001, 0b001010100], dtype=np.int64)  # diagonals


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
def has_line(b):
    for i in range(8):
        if (b & LINES[i]) == LINES[i]:
            return True
    return False


@njit(cache=True)
def legal_actions(s, out):
    """Write the empty cells in ascending order into ``out``; return how many (0 if over)."""
    if s[STATUS] != ONGOING:
        return 0
    occ = s[X] | s[O]
    n = 0
    for c in range(9):
        out[n] = c
        n += ((occ >> c) & 1) ^ 1
    return n


@njit(cache=True, inline="always")
def play(s, cell):
    """The state after the player to move marks ``cell`` (assumed legal)."""
    p = s[PLY] & 1
    bit = np.int64(1) << cell
    completes = (COMPLETE[np.uint64(s[p])] >> cell) & 1  # the mark completes a line (table below)
    ply = s[PLY] + 1
    if completes:
        status = np.int64(WIN0) if p == 0 else np.int64(WIN1)
    elif ply == MAX_PLIES:
        status = np.int64(DRAW)
    else:
        status = np.int64(ONGOING)
    return (s[X] | (bit & (p - 1)), s[O] | (bit & -p), ply, status)  # the mover's board gains the bit


@njit(cache=True, inline="always")
def returns0(s):
    """Player 0's return: +1 win, -1 loss, 0 draw (0 while the game goes on)."""
    return status_return0(s[STATUS])


@njit(cache=True, inline="always")
def hash_key(s):
    """A unique key: both boards packed."""
    return s[X] | (s[O] << 9)


@njit(cache=True)
def random_playout(s):
    """Uniformly random moves from ``s`` to the end; player 0's return."""
    t = as_state(s)
    while t[STATUS] == ONGOING:
        free = FULL & ~(t[X] | t[O])
        r = np.random.randint(9 - t[PLY])  # the r-th empty cell, ascending
        while r:
            free &= free - 1
            r -= 1
        t = play(t, _lowest_cell(free))
    return returns0(t)


# BASE3[b]: the 9-bit board b as a base-3 number with digit 1 on its cells (2 * BASE3[b] puts 2s)
_BITS = (np.arange(1 << 9, dtype=np.int64)[:, None] >> np.arange(9)) & 1   # [board, cell]
BASE3 = _BITS @ (3 ** np.arange(9, dtype=np.int64))


def _line_scores() -> np.ndarray:
    """HEUR3[BASE3[me] + 2 * BASE3[opp]]: over the lines open to one side, the sum of (its marks
    there)^2, mine minus the opponent's (the integer the heuristic squashes), for every position
    (3**9 = 19,683 int8: small enough to stay in cache)."""
    digits = (np.arange(3 ** 9, dtype=np.int64)[:, None] // 3 ** np.arange(9)) % 3
    bits = np.int64(1) << np.arange(9, dtype=np.int64)
    me = (digits == 1) @ bits
    opp = (digits == 2) @ bits
    pop = _BITS.sum(axis=1)
    score = np.zeros(3 ** 9, dtype=np.int64)
    for line in LINES:
        score += np.where(opp & line == 0, pop[me & line] ** 2, 0)   # the opponent is absent
        score -= np.where(me & line == 0, pop[opp & line] ** 2, 0)   # I am absent
    return score.astype(np.int8)


HEUR3 = _line_scores()                # |score| <= 72
HEUR_TANH = np.array([math.tanh(v / 8.0) for v in range(-72, 73)], dtype=np.float64)
# heuristic_score of every ongoing position by the same index as HEUR3, its value looked up in
# advance (int16, 39 KiB): one lookup fewer at each leaf of the alpha-beta search (about 1%).
HEUR_SCORE3 = np.rint(HEUR_TANH[HEUR3.astype(np.int64) + 72] * HEURISTIC_SCALE).astype(np.int16)


@njit(cache=True, inline="always")
def _line_index(s):
    """The index of an ongoing position in HEUR3 and HEUR_SCORE3, for the player to move."""
    p = s[PLY] & 1
    return BASE3[np.uint64(s[p])] + 2 * BASE3[np.uint64(s[1 - p])]


@njit(cache=True)
def heuristic(s):
    """Value in (-1, 1) for the player to move: lines still open to each side, weighted by stones
    (tanh(score / 8) of the integer line score, both looked up)."""
    if s[STATUS] != ONGOING:
        r = returns0(s)
        return r if (s[PLY] & 1) == 0 else -r
    return HEUR_TANH[np.int64(HEUR3[np.uint64(_line_index(s))]) + 72]


@njit(cache=True)
def heuristic_score(s):
    """``round(heuristic(s) * HEURISTIC_SCALE)``, looked up without floating point (the
    depth-limited alpha-beta's leaf score: 4% faster tic-tac-toe searches than converting)."""
    if s[STATUS] != ONGOING:
        r = np.int64(returns0(s)) * HEURISTIC_SCALE
        return r if (s[PLY] & 1) == 0 else -r
    return np.int64(HEUR_SCORE3[np.uint64(_line_index(s))])


@njit(cache=True, inline="always")
def order_scores(s, actions, n, out):
    """Move-ordering scores: centre, then corners, then edges."""
    for i in range(n):  # 2 bits a cell: centre 2, corners 1, edges 0
        out[i] = (0b01_00_01_00_10_00_01_00_01 >> (2 * actions[i])) & 3


# ---------------------------------------------------------------- solver helpers (alpha-beta engine)
def _completions() -> np.ndarray:
    """COMPLETE[b]: the cells that give the marks ``b`` (9-bit mask) a line (occupied or not)."""
    table = np.zeros(1 << 9, dtype=np.int64)
    for b in range(1 << 9):
        for line in LINES:
            rest = int(line) & ~b
            if rest and not rest & (rest - 1):
                table[b] |= rest
    return table


COMPLETE = _completions()


@njit(cache=True, inline="always")
def move_count(s):
    """Marks on the board (plies played)."""
    return s[PLY]


@njit(cache=True, inline="always")
def winning_cells(b, occ):
    """Empty cells (bitmask) that would complete a line for the marks ``b``; ``occ`` = all marks."""
    return COMPLETE[np.uint64(b)] & ~occ & FULL


LOWEST_CELL = np.array([(b & -b).bit_length() - 1 for b in range(1 << 9)], dtype=np.int64)
# The cells in move-ordering order (centre, corners, edges; ascending within each class).
CELL_ORDER = np.array([4, 0, 2, 6, 8, 1, 3, 5, 7], dtype=np.int64)


def _empty_in_order() -> np.ndarray:
    """EMPTY_IN_ORDER[occ]: the empty cells of the board whose marks are ``occ`` (9-bit mask), in
    CELL_ORDER, packed 4 bits a cell from the lowest bits up (512 int64: 4 KiB)."""
    table = np.zeros(1 << 9, dtype=np.int64)
    for occ in range(1 << 9):
        empty = [int(c) for c in CELL_ORDER if not (occ >> int(c)) & 1]
        table[occ] = sum(c << (4 * i) for i, c in enumerate(empty))
    return table


EMPTY_IN_ORDER = _empty_in_order()


@njit(cache=True, inline="always")
def _lowest_cell(cells):
    return LOWEST_CELL[np.uint64(cells)]


@njit(cache=True)
def immediate_win(s):
    """A cell where the player to move completes a line at once, or -1 (also -1 if the game is over)."""
    if s[STATUS] != ONGOING:
        return -1
    p = s[PLY] & 1
    w = winning_cells(s[p], s[X] | s[O])
    if w == 0:
        return -1
    return _lowest_cell(w)


@njit(cache=True)
def nonlosing_moves(s, out):
    """Write the cells after which the opponent cannot win at once into ``out`` (centre, corners,
    edges: ``order_scores``' order); return how many.  All NUM_ACTIONS slots of ``out`` are written.

    Assumes the player to move has no immediate win.  0 means the opponent has two threats.
    """
    p = s[PLY] & 1
    occ = s[X] | s[O]
    threats = winning_cells(s[1 - p], occ)
    if threats:
        if threats & (threats - 1):
            return 0
        out[0] = _lowest_cell(threats)
        return 1
    # The empty cells, in order, from one lookup: nine independent stores of 4-bit fields (the
    # last 9 - n are cells of no meaning).  A loop appending each empty cell took 3.5% longer
    # tic-tac-toe searches: its stores wait on each other through the count.
    packed = EMPTY_IN_ORDER[np.uint64(occ)]
    for i in range(9):
        out[i] = (packed >> (4 * i)) & 15
    return 9 - s[PLY]


@njit(cache=True)
def observe(s, out):
    """Write OpenSpiel's observation of ``s`` into ``out`` (float32 ``[3, 3, 3]``): planes empty, o,
    x, each row-major.  ``NativeState.observation_tensor`` equals it; this is the allocation-free
    form batched network evaluation uses."""
    for i in range(9):
        r = i // 3
        c = i % 3
        xo = (s[X] >> i) & 1
        oo = (s[O] >> i) & 1
        out[0, r, c] = 1.0 if (xo == 0 and oo == 0) else 0.0
        out[1, r, c] = 1.0 if oo else 0.0
        out[2, r, c] = 1.0 if xo else 0.0
