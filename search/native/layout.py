"""The ``ctr`` array of the numba alpha-beta engines (``plyground.search.native.alphabeta``):
the numbers of its slots and the engines' score constants, shared with their Python driver
(``plyground.search.alphabeta``).  Plain Python, no numba: the driver imports these names at
module level, so reading one costs a global lookup, not a module attribute (a tic-tac-toe
search's Python runs about 20 of them per call)."""

WIN = 10000          # depth-limited scores: WIN + distance-to-win for a proven win
INF = 30000          # outside every score; fits the 16-bit packed TT fields

# ctr slots: counters and limits; the depth-limited search's options (MAX_DEPTH 0: to the end
# of the game); its results (DONE_DEPTH 0: no iteration finished, -1: the root is over;
# REMAINING: the plies left at the root; N_OUT, N_BOUNDS, PV_LEN: lengths of the result lists)
NODES, NODE_LIMIT, DEADLINE, ABORT, TT_SHIFT, TT_SIZE = 0, 1, 2, 3, 4, 5
GEN, MAX_DEPTH, REMAINING, LEAF_MODE, N_ROLL, ALL_VALUES = 6, 7, 8, 9, 10, 11
DONE_DEPTH, BEST_MOVE, PV_LEN, N_OUT, N_BOUNDS = 12, 13, 14, 15, 16
CTR_LEN = 18
# After those slots (from OUT = CTR_LEN), ``make_ctr``'s array holds the depth-limited search's
# result lists, so that the driver reads everything with one ``tolist``: the last finished
# iteration's searched moves (ascending; NUM_ACTIONS slots), their scores (NUM_ACTIONS), the moves
# that got only an upper bound (NUM_ACTIONS) and the principal variation (MAX_PLIES + 1).  Their
# values (scores in [-1, 1]) go to the float row ``Wv``.
OUT = CTR_LEN

# leaf modes of the depth-limited search
LEAF_HEURISTIC, LEAF_ROLLOUT = 0, 1
