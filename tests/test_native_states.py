"""The engines' array helpers (``plyground.search.native.states``) against numpy's own indexing.

The alpha-beta engine reaches its frames through a flat view with these helpers; a wrong offset
would shift every frame, so each helper is checked cell by cell against numpy slicing.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from plyground.games.native import connect4, tictactoe
from plyground.search.native.states import load_state, row_view, store_state, store_state_at


@njit
def _load_row(like, arr, row):
    return load_state(like, arr, row)


@njit
def _store_at(arr, off, s):
    store_state_at(arr, off, s)


@njit
def _store_row(arr, row, s):
    store_state(arr, row, s)


@njit
def _view_fill(arr, off, n, start):
    """Fill ``arr[off:off + n]`` through a row_view with start, start + 1, ...; return the view's
    length and its sum as read back through the view."""
    v = row_view(arr, off, n)
    for i in range(v.shape[0]):
        v[i] = start + i
    total = 0
    for i in range(v.shape[0]):
        total += v[i]
    return v.shape[0], total


@pytest.mark.parametrize("kernel", [tictactoe, connect4], ids=["tictactoe", "connect4"])
def test_load_and_store_match_numpy_indexing(kernel):
    rng = np.random.default_rng(7)
    like = kernel.new_state()
    L = kernel.STATE_LEN
    width = 3 * L + 5
    for _ in range(50):
        values = tuple(int(x) for x in rng.integers(0, 2**40, size=L))
        # 2-D: row r, columns 0..L-1
        grid = np.zeros((6, width), dtype=np.int64)
        r = int(rng.integers(0, 6))
        _store_row(grid, r, values)
        expected = np.zeros_like(grid)
        expected[r, :L] = values
        assert np.array_equal(grid, expected)
        assert _load_row(like, grid, r) == values
        # 1-D: an element offset, as the flat view of the same rows
        flat = np.zeros(6 * width, dtype=np.int64)
        off = r * width + int(rng.integers(0, width - L + 1))
        _store_at(flat, off, values)
        expected = np.zeros_like(flat)
        expected[off:off + L] = values
        assert np.array_equal(flat, expected)
        assert _load_row(like, flat, off) == values


def test_row_view_is_the_slice():
    arr = np.zeros(40, dtype=np.int64)
    n, total = _view_fill(arr, 13, 9, 100)
    expected = np.zeros(40, dtype=np.int64)
    expected[13:22] = np.arange(100, 109)
    assert (n, total) == (9, int(expected.sum()))
    assert np.array_equal(arr, expected)  # the view writes into arr[13:22] and nowhere else
