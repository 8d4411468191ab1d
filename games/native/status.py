"""The game-status codes every native kernel keeps in its state array, and their returns; the
scale of the kernels' integer heuristic scores."""

from numba import njit

ONGOING, WIN0, WIN1, DRAW = 0, 1, 2, 3
# A kernel's ``heuristic_score(s)`` is ``round(heuristic(s) * HEURISTIC_SCALE)`` (an int64 in
# [-HEURISTIC_SCALE, HEURISTIC_SCALE]): the depth-limited alpha-beta's leaf score.
HEURISTIC_SCALE = 999


@njit(cache=True, inline="always")
def status_return0(status):
    """Player 0's return for a status code: +1 won, -1 lost, 0 drawn or still going."""
    if status == WIN0:
        return 1.0
    if status == WIN1:
        return -1.0
    return 0.0
