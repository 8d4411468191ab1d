"""Tic-tac-toe kernel: 3x3 bitboards in numba, OpenSpiel's action numbering (cell 0-8, row-major).

State layout (``int64[STATE_LEN]``):
  0 X      cells of player 0 (x, moves first), bit i = cell i
  1 O      cells of player 1 (o)
  2 PLY    moves played
  3 STATUS 0 ongoing, 1 player 0 won, 2 player 1 won, 3 draw
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from plyground.games.native.status import DRAW, ONGOING, WIN0, WIN1, status_return0

NUM_ACTIONS = 9
MAX_PLIES = 9
STATE_LEN = 4
X, O, PLY, STATUS = 0, 1, 2, 3
FULL = (1 << 9) - 1
LINES = np.array([0b000000111, 0b000111000, 0b111000000,   # rows
                  0b001001001, 0b010010010, 0b100100100,   # columns
                  0b100010001, 0b001010100], dtype=np.int64)  # diagonals


@njit(cache=True)
def new_state():
    return np.zeros(STATE_LEN, dtype=np.int64)


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
        if not (occ >> c) & 1:
            out[n] = c
            n += 1
    return n


@njit(cache=True, inline="always")
def play(s, cell):
    """Mark ``cell`` for the player to move (assumed legal); update the status."""
    p = s[PLY] & 1
    completes = (COMPLETE[s[p]] >> cell) & 1  # the mark completes a line (table below)
    s[p] |= np.int64(1) << cell
    s[PLY] += 1
    if completes:
        s[STATUS] = WIN0 if p == 0 else WIN1
    elif s[PLY] == MAX_PLIES:
        s[STATUS] = DRAW


@njit(cache=True, inline="always")
def returns0(s):
    """Player 0's return: +1 win, -1 loss, 0 draw (0 while the game goes on)."""
    return status_return0(s[STATUS])


@njit(cache=True, inline="always")
def hash_key(s):
    """A unique key: a base-3 style packing of both boards."""
    return s[X] | (s[O] << 9)


@njit(cache=True)
def random_playout(s):
    cells = np.empty(9, dtype=np.int64)
    while s[STATUS] == ONGOING:
        n = legal_actions(s, cells)
        play(s, cells[np.random.randint(n)])
    return returns0(s)


def _line_scores() -> np.ndarray:
    """HEUR_SCORE[me | opp << 9]: sum over the lines open to one side of (its marks there)^2,
    mine minus the opponent's (the integer the heuristic squashes), for every pair of 9-bit boards."""
    boards = np.arange(1 << 9, dtype=np.int64)
    pop = np.array([bin(b).count("1") for b in range(1 << 9)], dtype=np.int64)
    score = np.zeros((1 << 9, 1 << 9), dtype=np.int64)  # [opp, me]: flat index me | opp << 9
    for line in LINES:
        marks = pop[boards & line] ** 2
        empty = (boards & line) == 0
        score += np.where(empty[:, None], marks[None, :], 0)  # the opponent is absent: my marks count
        score -= np.where(empty[None, :], marks[:, None], 0)  # I am absent: theirs count
    return score.reshape(-1).astype(np.int8)


HEUR_SCORE = _line_scores()           # |score| <= 72
HEUR_TANH = np.array([math.tanh(v / 8.0) for v in range(-72, 73)], dtype=np.float64)


@njit(cache=True)
def heuristic(s):
    """Value in (-1, 1) for the player to move: lines still open to each side, weighted by stones
    (tanh(score / 8) of the integer line score, both looked up)."""
    if s[STATUS] != ONGOING:
        r = returns0(s)
        return r if (s[PLY] & 1) == 0 else -r
    p = s[PLY] & 1
    return HEUR_TANH[np.int64(HEUR_SCORE[s[p] | (s[1 - p] << 9)]) + 72]


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
    return COMPLETE[b] & ~occ & FULL


LOWEST_CELL = np.array([(b & -b).bit_length() - 1 for b in range(1 << 9)], dtype=np.int64)
# The cells in move-ordering order (centre, corners, edges; ascending within each class).
CELL_ORDER = np.array([4, 0, 2, 6, 8, 1, 3, 5, 7], dtype=np.int64)


@njit(cache=True, inline="always")
def _lowest_cell(cells):
    return LOWEST_CELL[cells]


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
    edges: ``order_scores``' order); return how many.

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
    n = 0
    for i in range(9):  # branch-free: write every cell, advance only past the empty ones
        c = CELL_ORDER[i]  # already in order_scores' order, so sorting them costs little
        out[n] = c
        n += ((occ >> c) & 1) ^ 1
    return n
