"""Numba alpha-beta (negamax) engines, generic over a native game kernel.

Two searches, each ONE implementation that takes the kernel's jitted functions as arguments
(numba specialises them per game), plus a few-line cached entry wrapper per native game:

- the depth-limited search (``_ab_iterate`` / ``_ab_root`` / ``_ab_search`` / ``_ab_run``):
  iterative deepening, negamax alpha-beta with a transposition table, move ordering (TT move,
  then the kernel's ``order_scores``), exact terminal, immediate-win and forced-loss scores,
  heuristic or random-rollout leaves, a triangular principal variation, node and time budgets;
- the exact solver (``_solve_root`` / ``_solve_search`` / ``_solve_run``): null-window binary
  search on the distance-to-win score (as Pascal Pons' connect-four solver), non-losing moves
  only, score bounds from the move count, a table holding both bounds and the best move, lazy
  ordering.

Kernel functions the engines call (beyond the basic interface): ``move_count(s)``,
``immediate_win(s)`` (a winning action or -1), ``nonlosing_moves(s, out)`` (the moves after
which the opponent cannot win at once; 0 if none) and ``heuristic_score(s)`` (the heuristic as
an integer, see ``plyground.games.native.status``); and the constant ``ORDERED_MOVES`` (True if
``nonlosing_moves`` already lists the moves in ``order_scores``' order, so the engines only
bring a remembered best move to the front instead of sorting).  Positions are immutable values
(``play(s, a)`` returns the child; see ``plyground.games.native``): the node being searched
lives in registers, and a frame row keeps a position only while its children are searched.
Every kernel function the engines call must not allocate: the engines are compiled without
numba's reference counting (``_nrt=False``).

Speed notes (measured on tic-tac-toe's ~4,100-node solve; 36 -> 13 ns a node in all):
positions as values (36 -> 27 ns); the kernels' sizes reach the engines as compile-time
literals (module-level names in the entry wrappers, below), so frame offsets fold; the hot
loops (``_ab_run``, ``_solve_run``) never call the clock: they pause every
``CLOCK_EVERY + 1`` nodes (or at the node limit) and return to a small driver that reads the
clock and resumes them, because a call to the clock inside the loop kept LLVM from holding the
loop's values in registers; an ``ORDERED_MOVES`` kernel is never sorted; a frontier node (its
children are leaves) enters its children in a plain loop instead of a frame each, and the
root's moves run in the same hot loop (same nodes, order and cut-offs either way), keeping its
locals in registers; leaf scores are integer table lookups (``heuristic_score``, no floating
point: 4%); below the root's children no node looks for an immediate win (4%); table slots
are prefetched only for tables too big to stay in cache.  The depth-limited search reaches its
frames and table through flat 1-D views (made by its entry wrappers) with unsigned indices: a
2-D ``F[ply, col]`` costs a multiply by the row length, read at run time, plus numba's
negative-index wraparound; ``F[_ix(ply, W, col)]``, with ``W`` a compile-time literal, costs
neither (12% faster, as are the kernels' unsigned table lookups, another 6%); a node's depth is
the iteration's depth less its ply, so frames do not store it (1%).  The searches are iterative
over a frame stack because numba cannot cache recursion through function arguments.

Everything lives in preallocated int64 arrays the driver (``plyground.search.alphabeta``) owns:

- ``F`` frames, one row per ply: ``[state | moves | (spare) | pv length | pv | locals]``;
  row 0 holds the root position when a solver entry point is called (the depth-limited entry
  takes the root as an array argument; below its root it works on ``F``'s flat view);
- ``Wk`` scratch rows (move and score buffers);
- the tables: the solver's is 1-D and prime-sized (one int64 a slot), the depth-limited
  search's is ``(2**bits, 2)`` (key, packed data; 0 = empty), used through its flat view;
- ``ctr`` counters, limits, the depth-limited search's options and results (slots in
  ``plyground.search.native.layout``; ``make_ctr``).

Nodes are counted as OpenSpiel's ``alpha_beta_search`` counts its calls: every position the
search enters, the root of each iteration included, whether it ends up a leaf, a terminal, a
table cut or an expanded node.  Moves ruled out without entering the child (an immediate win
found by ``immediate_win``, moves ``nonlosing_moves`` drops) are not nodes.

Scores are integers from the point of view of the player to move.  The solver uses the
distance-to-win score (``(MAX_PLIES + 1 - n) // 2`` for a win whose stone is played when ``n``
stones are on the board).  The depth-limited search adds ``WIN`` to such scores, so a proven
result dominates any heuristic value: a leaf's score is the kernel's ``heuristic_score`` (the
heuristic times ``HEURISTIC_SCALE``, 999, rounded; looked up without floating point) or the
rollouts' mean times ``HEURISTIC_SCALE``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from plyground.games.native import connect4 as _c4
from plyground.games.native import tictactoe as _ttt
from plyground.games.native.status import HEURISTIC_SCALE
from plyground.search.native.layout import (  # noqa: F401 (the engines' ctr layout, re-exported)
    ABORT, ALL_VALUES, BEST_MOVE, CTR_LEN, DEADLINE, DONE_DEPTH, GEN, INF, LEAF_HEURISTIC,
    LEAF_ROLLOUT, LEAF_MODE, MAX_DEPTH, N_BOUNDS, N_OUT, N_ROLL, NODE_LIMIT, NODES, OUT, PV_LEN,
    REMAINING, TT_SHIFT, TT_SIZE, WIN,
)
from plyground.search.native.states import load_state, row_view, store_state, store_state_at

# Wk rows: scratch buffers
W_RBUF, W_SBUF, W_MOVES, W_SCORES, W_VALS, W_FLAGS = range(6)
CLOCK_EVERY = 1023   # the deadline is checked every CLOCK_EVERY + 1 nodes
PREFETCH_BITS = 16   # prefetch depth-limited table slots only for tables bigger than 2**16 slots
                     # (a smaller one stays in cache, and the prefetch then costs more than it saves)
_NEVER = np.int64(1) << 62

# Solver table: ONE int64 per slot of a prime-sized 1-D table (8 bytes, so twice the slots stay
# in cache): lo + 128 (8 bits) | hi + 128 (8 bits) | move + 1 (8 bits) | key // size + 1 (40 bits).
# The slot is key % size, so slot and quotient identify the key exactly (connect4 keys < 2**49).
_S_UNKNOWN_LO, _S_UNKNOWN_HI = -127, 127

# Depth-limited table data: lo + 32768 (16) | hi + 32768 (16) | depth (8) | move + 1 (8) |
# search generation (15, >= 1; entries of older searches are ignored, so no clearing).
_OFF16 = 32768

# Per-ply locals of the iterative searches live after the pv in each frame row (offset SC).
_K, _I, _ALPHA, _BETA, _BEST, _BMOVE, _KEY, _IDX, _ALPHA0, _SORTED = range(10)
N_SCALARS = 10


def solver_tt_size(bits: int) -> int:
    """The solver table's slot count for ``tt_bits``: the largest prime below ``2**bits``."""
    n = (1 << bits) - 1
    while n > 2:
        if n % 2 and all(n % f for f in range(3, int(n ** 0.5) + 1, 2)):
            return n
        n -= 1
    return 2


def frame_width(kernel) -> int:
    """Columns of one frame row for ``kernel``: state, moves, spare, pv length, pv, locals."""
    return kernel.STATE_LEN + 2 * kernel.NUM_ACTIONS + kernel.MAX_PLIES + 2 + N_SCALARS


def make_solver_tt(bits: int) -> np.ndarray:
    """A zeroed solver table (1-D int64, ``solver_tt_size(bits)`` slots); put its size in ``ctr[TT_SIZE]``."""
    return np.zeros(solver_tt_size(bits), dtype=np.int64)


@njit(cache=True)
def solver_tt_migrate(src, dst):
    """Copy every entry of one solver table into another of a different size (an entry's key is
    rebuilt exactly from its slot and quotient, then re-slotted)."""
    ps = src.shape[0]
    pd = dst.shape[0]
    for i in range(ps):
        d = src[i]
        if d != 0:
            key = ((d >> 24) - 1) * ps + i
            q = key // pd
            dst[key - q * pd] = (d & 0xFFFFFF) | ((q + 1) << 24)


def make_work(kernel) -> np.ndarray:
    """The engines' scratch rows (``W_*``), passed as ``Wk``."""
    return np.zeros((6, max(kernel.STATE_LEN, kernel.NUM_ACTIONS)), dtype=np.int64)


def make_ctr(kernel) -> np.ndarray:
    """The counters, options and results array (``ctr``) for ``kernel``'s searches."""
    return np.zeros(CTR_LEN + 3 * kernel.NUM_ACTIONS + kernel.MAX_PLIES + 1, dtype=np.int64)


def make_values(kernel) -> np.ndarray:
    """The depth-limited search's float result row (``Wv``: the searched moves' values)."""
    return np.zeros(kernel.NUM_ACTIONS, dtype=np.float64)


def make_depth_tt(bits: int) -> np.ndarray:
    """A zeroed depth-limited table (``2**bits`` x 2 int64); put ``64 - bits`` in ``ctr[TT_SHIFT]``."""
    return np.zeros((1 << bits, 2), dtype=np.int64)


# ---------------------------------------------------------------- a monotonic clock inside numba
@intrinsic
def _monotonic_ns(typingctx):
    """clock_gettime(CLOCK_MONOTONIC) in nanoseconds (numba has no time module)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        i64, i32 = ir.IntType(64), ir.IntType(32)
        ts_t = ir.LiteralStructType([i64, i64])
        fn = builder.module.globals.get("clock_gettime")
        if fn is None:
            fn = ir.Function(builder.module, ir.FunctionType(i32, [i32, ts_t.as_pointer()]),
                             name="clock_gettime")
        ts = builder.alloca(ts_t)
        builder.call(fn, [ir.Constant(i32, 1), ts])  # 1 = CLOCK_MONOTONIC on Linux
        zero = ir.Constant(i32, 0)
        sec = builder.load(builder.gep(ts, [zero, zero]))
        nsec = builder.load(builder.gep(ts, [zero, ir.Constant(i32, 1)]))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)

    return sig, codegen


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hint the CPU to load the cache line of ``arr[idx]`` (row ``idx`` if 2-D) ahead of use."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        row_stride = builder.extract_value(ary.strides, 0)
        base = builder.ptrtoint(ary.data, ir.IntType(64))
        addr = builder.add(base, builder.mul(args[1], row_stride))
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic("llvm.prefetch", fnty=ir.FunctionType(
            ir.VoidType(), [i8p, i32, i32, i32]))
        builder.call(fn, [builder.inttoptr(addr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def now_ns():
    """The clock the engines check their deadline against (CLOCK_MONOTONIC, ns)."""
    return _monotonic_ns()


# ---------------------------------------------------------------- shared small pieces
@njit(cache=True, inline="always", _nrt=False)
def _budget_pause(ctr, nodes):
    """At a pause of a hot loop (``nodes`` counted so far): True if the node budget or the
    deadline ran out (``ctr[ABORT]`` set), else the node count of the next pause."""
    limit = ctr[NODE_LIMIT]
    deadline = ctr[DEADLINE]
    if limit > 0 and nodes >= limit:
        ctr[ABORT] = 1
        return True, nodes
    if deadline > 0 and nodes > 0 and (nodes & CLOCK_EVERY) == 0 and _monotonic_ns() >= deadline:
        ctr[ABORT] = 1
        return True, nodes
    nxt = limit if limit > 0 else _NEVER
    if deadline > 0:
        nxt = min(nxt, (nodes | CLOCK_EVERY) + 1)
    return False, nxt


@njit(cache=True, inline="always", _nrt=False)
def _tt_index(key, shift):
    return np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(shift))


@njit(cache=True, inline="always", _nrt=False)
def _sort_desc(moves, scores, k):
    """Insertion sort of ``moves[:k]`` by ``scores[:k]``, highest first (stable)."""
    for i in range(1, k):
        m = moves[i]
        v = scores[i]
        j = i - 1
        while j >= 0 and scores[j] < v:
            moves[j + 1] = moves[j]
            scores[j + 1] = scores[j]
            j -= 1
        moves[j + 1] = m
        scores[j + 1] = v


@njit(cache=True, inline="always", _nrt=False)
def _find(moves, k, m):
    """The index of ``m`` in ``moves[:k]``, or -1."""
    for j in range(k):
        if moves[j] == m:
            return j
    return -1


@njit(cache=True, inline="always", _nrt=False)
def _rotate_front(moves, pos):
    """Bring ``moves[pos]`` to the front, keeping the order of the others."""
    m = moves[pos]
    for j in range(pos, 0, -1):
        moves[j] = moves[j - 1]
    moves[0] = m


# ---------------------------------------------------------------- exact solver
@njit(cache=True, inline="always", _nrt=False)
def _solver_store(tt, idx, tag, lo, hi, move):
    """Merge a bound into the slot (keeping the other bound of the same position).

    ``tag`` is the key's quotient + 1, already shifted to bit 24."""
    d = tt[idx]
    if d != 0 and (d & ~np.int64(0xFFFFFF)) == tag:
        olo = (d & 0xFF) - 128
        ohi = ((d >> 8) & 0xFF) - 128
        if olo > lo:
            lo = olo
        if ohi < hi:
            hi = ohi
        if move < 0:
            move = ((d >> 16) & 0xFF) - 1
    tt[idx] = (lo + 128) | ((hi + 128) << 8) | ((move + 1) << 16) | tag


@njit(cache=True, inline="always", _nrt=False)
def _solve_enter(hash_key, nonlosing_moves, order_scores, move_count, ordered, SL, NA, MAXP, SC,
                 F, tt, size, ply, cur, alpha, beta, sbuf):
    """Open the node ``cur`` at row ``ply`` with window (alpha, beta): ``(True, score)`` if
    decided without children, else ``(False, 0)`` with its position, moves and locals in the row."""
    key = hash_key(cur)
    q = key // size
    idx = key - q * size
    tag = (q + 1) << 24
    _prefetch(tt, idx)              # the slot loads while the moves are generated
    n = move_count(cur)
    moves = F[ply, SL:SL + NA]
    k = nonlosing_moves(cur, moves)
    if k == 0:                      # the opponent wins with the next stone
        return True, -((MAXP - n) // 2)
    if n >= MAXP - 2:               # nobody can win any more
        return True, 0
    lo = -((MAXP - 2 - n) // 2)     # the opponent cannot win with the next stone
    if alpha < lo:
        alpha = lo
        if alpha >= beta:
            return True, alpha
    hi = (MAXP - 1 - n) // 2        # we cannot win with this stone
    if beta > hi:
        beta = hi
        if alpha >= beta:
            return True, beta
    tt_move = -1
    d = tt[idx]
    if d != 0 and (d & ~np.int64(0xFFFFFF)) == tag:
        tlo = (d & 0xFF) - 128
        thi = ((d >> 8) & 0xFF) - 128
        tt_move = ((d >> 16) & 0xFF) - 1
        if alpha < tlo:
            alpha = tlo
            if alpha >= beta:
                return True, alpha
        if beta > thi:
            beta = thi
            if alpha >= beta:
                return True, beta
    # Lazy ordering: a remembered best move goes first alone; the rest is ordered only if it
    # does not cut (most null-window nodes cut on it).
    pos = _find(moves, k, tt_move) if k > 1 and tt_move >= 0 else -1
    if pos >= 0:
        if ordered:                 # the rest stays in order
            _rotate_front(moves, pos)
        else:
            moves[pos] = moves[0]
            moves[0] = tt_move
        F[ply, SC + _SORTED] = ordered
    else:
        if k > 1 and not ordered:
            order_scores(cur, moves, k, sbuf)
            _sort_desc(moves, sbuf, k)
        F[ply, SC + _SORTED] = 1
    store_state(F, ply, cur)
    F[ply, SC + _ALPHA] = alpha
    F[ply, SC + _BETA] = beta
    F[ply, SC + _K] = k
    F[ply, SC + _I] = 0
    F[ply, SC + _KEY] = tag
    F[ply, SC + _IDX] = idx
    F[ply, SC + _BMOVE] = -1
    return False, 0


@njit(cache=True, _nrt=False)
def _solve_run(play, hash_key, nonlosing_moves, order_scores, move_count, ordered,
               SL, NA, MAXP, F, tt, size, sbuf, root, ply, cur, alpha, beta, nodes, pause):
    """The solver's hot loop, from entering ``cur`` at row ``ply`` with window (alpha, beta).

    Returns ``(done, score, ply, cur, alpha, beta, nodes)``: done with the score of row
    ``root``, or paused (``nodes == pause``) just before entering the node it hands back."""
    SC = SL + 2 * NA + MAXP + 2
    while True:
        if nodes >= pause:
            return False, 0, ply, cur, alpha, beta, nodes
        nodes += 1
        decided, v = _solve_enter(hash_key, nonlosing_moves, order_scores, move_count, ordered,
                                  SL, NA, MAXP, SC, F, tt, size, ply, cur, alpha, beta, sbuf)
        if not decided:
            alpha, beta = -F[ply, SC + _BETA], -F[ply, SC + _ALPHA]
            cur = play(cur, F[ply, SL])
            ply += 1
            continue
        while True:                 # hand v up until a node has another child to search
            if ply == root:
                return True, v, ply, cur, alpha, beta, nodes
            ply -= 1
            sc = -v
            a = F[ply, SC + _ALPHA]
            b = F[ply, SC + _BETA]
            i = F[ply, SC + _I]
            if sc >= b:
                _solver_store(tt, F[ply, SC + _IDX], F[ply, SC + _KEY], sc, _S_UNKNOWN_HI,
                              F[ply, SL + i])
                v = sc
                continue
            if sc > a:
                a = sc
                F[ply, SC + _ALPHA] = sc
                F[ply, SC + _BMOVE] = F[ply, SL + i]
            i += 1
            k = F[ply, SC + _K]
            if i < k:
                parent = load_state(cur, F, ply)
                if F[ply, SC + _SORTED] == 0:
                    rest = F[ply, SL + 1:SL + k]
                    order_scores(parent, rest, k - 1, sbuf)
                    _sort_desc(rest, sbuf, k - 1)
                    F[ply, SC + _SORTED] = 1
                F[ply, SC + _I] = i
                alpha, beta = -b, -a
                cur = play(parent, F[ply, SL + i])
                ply += 1
                break
            v = a
            _solver_store(tt, F[ply, SC + _IDX], F[ply, SC + _KEY], _S_UNKNOWN_LO, v,
                          F[ply, SC + _BMOVE])


@njit(cache=True, _nrt=False)
def _solve_search(play, hash_key, nonlosing_moves, order_scores, move_count, ordered,
                  SL, NA, MAXP, F, tt, ctr, Wk, root, cur, alpha, beta):
    """Distance-to-win score of the position ``cur`` (searched from frame row ``root``) within
    ``(alpha, beta)`` (fail-soft bounds outside); 0 with ``ctr[ABORT]`` set if a budget ran out.

    Iterative negamax over the frame stack (numba cannot cache recursion through function
    arguments).  Assumes the position is not over and its player cannot win at once; the
    engine only plays non-losing moves, so this holds for every child.
    """
    nodes = ctr[NODES]
    ply = np.int64(root)
    while True:
        stop, pause = _budget_pause(ctr, nodes)
        if stop:
            ctr[NODES] = nodes
            return 0
        done, v, ply, cur, alpha, beta, nodes = _solve_run(
            play, hash_key, nonlosing_moves, order_scores, move_count, ordered, SL, NA, MAXP,
            F, tt, ctr[TT_SIZE], Wk[W_SBUF], root, ply, cur, alpha, beta, nodes, pause)
        if done:
            ctr[NODES] = nodes
            return v


@njit(cache=True, _nrt=False)
def _solve_root(new_state, play, hash_key, immediate_win, nonlosing_moves, order_scores,
                move_count, ordered, SL, NA, MAXP, F, tt, ctr, Wk, out):
    """Solve the position in ``F[0]`` (not over) by null-window binary search on the score.

    Writes the final ``[lower, upper]`` bounds into ``out[0:2]`` (equal unless a budget ran out)
    and returns the lower bound.
    """
    cur = load_state(new_state(), F, 0)
    n = move_count(cur)
    if immediate_win(cur) >= 0:
        out[0] = out[1] = (MAXP + 1 - n) // 2
        return out[0]
    lo = -((MAXP - n) // 2)
    hi = (MAXP + 1 - n) // 2
    while lo < hi:
        med = lo + (hi - lo) // 2
        # probe near 0 first: most positions are close to a draw (C-style halving toward 0)
        half_lo = -((-lo) // 2) if lo < 0 else lo // 2
        half_hi = -((-hi) // 2) if hi < 0 else hi // 2
        if med <= 0 and half_lo < med:
            med = half_lo
        elif med >= 0 and half_hi > med:
            med = half_hi
        r = _solve_search(play, hash_key, nonlosing_moves, order_scores, move_count, ordered,
                          SL, NA, MAXP, F, tt, ctr, Wk, 0, cur, med, med + 1)
        if ctr[ABORT] != 0:
            break
        if r <= med:
            hi = r
        else:
            lo = r
    out[0] = lo
    out[1] = hi
    return lo


@njit(cache=True, _nrt=False)
def _solve_pv(new_state, play, is_terminal, hash_key, immediate_win, nonlosing_moves, order_scores,
              move_count, legal_actions, ordered, SL, NA, MAXP, F, tt, ctr, Wk, score, pv):
    """Walk a principal variation of the solved ``F[0]`` whose score is ``score``: at each ply the
    first move (in search order) whose child keeps the score.  Returns the PV length."""
    moves, order = Wk[W_MOVES], Wk[W_SCORES]
    cur = load_state(new_state(), F, 0)
    length = 0
    while not is_terminal(cur) and length < pv.shape[0]:
        w = immediate_win(cur)
        if w >= 0:
            pv[length] = w
            length += 1
            break
        k = nonlosing_moves(cur, moves)
        found = -1
        if k == 0:                  # every move loses at once: any move, then the win follows
            legal_actions(cur, moves)
            found = moves[0]
        elif k == 1:
            found = moves[0]
        else:
            if not ordered:
                order_scores(cur, moves, k, order)
                _sort_desc(moves, order, k)
            for i in range(k):
                m = moves[i]
                child = play(cur, m)
                if is_terminal(child):  # no immediate win here, so this is a draw
                    keeps = score == 0
                else:
                    r = _solve_search(play, hash_key, nonlosing_moves, order_scores, move_count,
                                      ordered, SL, NA, MAXP, F, tt, ctr, Wk, 0, child, -score,
                                      -score + 1)
                    if ctr[ABORT] != 0:
                        return length
                    keeps = r <= -score   # every child scores >= -score; this one is -score
                if keeps:
                    found = m
                    break
        if found < 0:
            break
        cur = play(cur, found)
        pv[length] = found
        length += 1
        score = -score
    return length


# ---------------------------------------------------------------- depth-limited search
@njit(cache=True, inline="always", _nrt=False)
def _terminal_score(returns0, to_play, move_count, MAXP, s):
    """Score of a finished game for its player 'to move' (the loser if someone won)."""
    r = returns0(s)
    if r == 0.0:
        return 0
    v = r if to_play(s) == 0 else -r
    dist = WIN + (MAXP + 2 - move_count(s)) // 2
    return dist if v > 0 else -dist


@njit(cache=True, inline="always", _nrt=False)
def _dl_unpack(d):
    lo = (d & 0xFFFF) - _OFF16
    hi = ((d >> 16) & 0xFFFF) - _OFF16
    depth = (d >> 32) & 0xFF
    move = ((d >> 40) & 0xFF) - 1
    gen = (d >> 48) & 0x7FFF
    return lo, hi, depth, move, gen


@njit(cache=True, inline="always", _nrt=False)
def _dl_store(tt, idx, key, lo, hi, depth, move, gen):
    tt[np.uint64(2 * idx)] = key
    tt[np.uint64(2 * idx + 1)] = ((lo + _OFF16) | ((hi + _OFF16) << 16) | (np.int64(depth) << 32)
                                  | (np.int64(move + 1) << 40) | (np.int64(gen) << 48))


@njit(cache=True, inline="always", _nrt=False)
def _ix(row, W, col):
    """The index of ``F[row, col]`` in the flat view of the frames (rows of ``W`` columns, a
    compile-time literal), unsigned: numba then emits no negative-index wraparound code."""
    return np.uint64(row * W + col)


@njit(cache=True, inline="always", _nrt=False)
def _pv_take(F, PVL, ply, m, W):
    """The PV of ``ply`` becomes ``m`` followed by the PV of ``ply + 1``."""
    cl = F[_ix(ply + 1, W, PVL)]
    F[_ix(ply, W, PVL)] = cl + 1
    F[_ix(ply, W, PVL + 1)] = m
    for j in range(cl):
        F[_ix(ply, W, PVL + 2 + j)] = F[_ix(ply + 1, W, PVL + 1 + j)]


@njit(cache=True, inline="always", _nrt=False)
def _rollout(legal_actions, play, is_terminal, returns0, s, buf):
    """Uniformly random moves from ``s`` to the end; player 0's return.

    The kernel's ``random_playout`` may allocate, which the engine's NRT-free code cannot call."""
    while not is_terminal(s):
        k = legal_actions(s, buf)
        s = play(s, buf[np.random.randint(k)])
    return returns0(s)


@njit(cache=True, inline="always", _nrt=False)
def _ab_leaf(is_terminal, returns0, to_play, heuristic_score, legal_actions, play, immediate_win, move_count,
             MAXP, cur, leaf_mode, n_roll, rbuf, may_win):
    """Score of a depth-0 node ``cur`` and the move its principal variation starts with (-1 for
    none): the game's result if over, a win if it has an immediate win (looked for only if
    ``may_win``, see ``_ab_enter``), else the leaf value."""
    if is_terminal(cur):
        return _terminal_score(returns0, to_play, move_count, MAXP, cur), -1
    w = immediate_win(cur) if may_win else -1
    if w >= 0:
        return WIN + (MAXP + 1 - move_count(cur)) // 2, w
    if leaf_mode == LEAF_ROLLOUT:
        total = 0.0
        for _ in range(n_roll):
            total += _rollout(legal_actions, play, is_terminal, returns0, cur, rbuf)
        v = total / n_roll
        if to_play(cur) == 1:
            v = -v
        return np.int64(np.rint(v * HEURISTIC_SCALE)), -1
    return heuristic_score(cur), -1


@njit(cache=True, inline="always", _nrt=False)
def _ab_enter(is_terminal, returns0, to_play, hash_key, heuristic_score, legal_actions, play, order_scores,
              immediate_win, nonlosing_moves, move_count, ordered, SL, NA, MAXP, SC, F, tt, shift,
              ply, cur, depth, alpha, beta, leaf_mode, n_roll, gen, sbuf, rbuf):
    """Open the node ``cur`` at row ``ply``: ``(True, score, ...)`` if decided without children
    (over, immediate win, leaf, no safe move, bound or TT cut), else ``(False, 0, k, alpha,
    beta, key, idx)``: its ``k`` moves in the row, in search order, its narrowed window and its
    table key and slot (the caller keeps them in registers or pushes a frame, ``_ab_push``)."""
    PVL = SL + 2 * NA
    W = SC + N_SCALARS
    if depth <= 0:
        v, w = _ab_leaf(is_terminal, returns0, to_play, heuristic_score, legal_actions, play,
                        immediate_win, move_count, MAXP, cur, leaf_mode, n_roll, rbuf, ply < 2)
        F[_ix(ply, W, PVL)] = 0 if w < 0 else 1
        F[_ix(ply, W, PVL + 1)] = w
        return True, v, 0, 0, 0, 0, 0
    F[_ix(ply, W, PVL)] = 0
    if is_terminal(cur):
        return True, _terminal_score(returns0, to_play, move_count, MAXP, cur), 0, 0, 0, 0, 0
    key = hash_key(cur)
    idx = _tt_index(key, shift)
    if shift < 64 - PREFETCH_BITS:
        _prefetch(tt, 2 * idx)      # a big table: the slot loads while the moves are generated
    n = move_count(cur)
    # Below the root's children (ply >= 2) every node was reached by one of its parent's
    # ``nonlosing_moves``, after which, by that function's contract, the player to move has no
    # immediate win: it is looked for only at ply 1 (the root's moves are all legal moves).  The
    # exact solver relies on the same contract.  Same nodes, about 4% faster tic-tac-toe searches.
    w = immediate_win(cur) if ply < 2 else -1
    if w >= 0:
        F[_ix(ply, W, PVL)] = 1
        F[_ix(ply, W, PVL + 1)] = w
        return True, WIN + (MAXP + 1 - n) // 2, 0, 0, 0, 0, 0
    moves = row_view(F, ply * W + SL, NA)
    k = nonlosing_moves(cur, moves)
    if k == 0:                      # every move loses at once: PV = any move, the win
        legal_actions(cur, rbuf)
        F[_ix(ply, W, PVL)] = 2
        F[_ix(ply, W, PVL + 1)] = rbuf[0]
        F[_ix(ply, W, PVL + 2)] = immediate_win(play(cur, rbuf[0]))
        return True, -(WIN + (MAXP - n) // 2), 0, 0, 0, 0, 0
    if n >= MAXP - 2:
        return True, 0, 0, 0, 0, 0, 0
    lo = -(WIN + (MAXP - 2 - n) // 2)
    if alpha < lo:
        alpha = lo
        if alpha >= beta:
            return True, alpha, 0, 0, 0, 0, 0
    hi = WIN + (MAXP - 1 - n) // 2
    if beta > hi:
        beta = hi
        if alpha >= beta:
            return True, beta, 0, 0, 0, 0, 0
    tt_move = -1
    d = tt[np.uint64(2 * idx + 1)]
    if d != 0 and tt[np.uint64(2 * idx)] == key:
        tlo, thi, tdepth, tmove, tgen = _dl_unpack(d)
        if tgen == gen:
            tt_move = tmove
            if tdepth >= depth:
                if alpha < tlo:
                    alpha = tlo
                    if alpha >= beta:
                        return True, alpha, 0, 0, 0, 0, 0
                if beta > thi:
                    beta = thi
                    if alpha >= beta:
                        return True, beta, 0, 0, 0, 0, 0
    if k > 1:
        if ordered:
            # The remembered best move swaps places with the first.  Rotating it to the front
            # (keeping the others in order) searched 0.6% fewer nodes on tic-tac-toe but took 2%
            # longer.
            pos = _find(moves, k, tt_move) if tt_move >= 0 else -1
            if pos > 0:
                moves[pos] = moves[0]
                moves[0] = tt_move
        else:
            order_scores(cur, moves, k, sbuf)
            if tt_move >= 0:
                for i in range(k):
                    if moves[i] == tt_move:
                        sbuf[i] += 1 << 20
            _sort_desc(moves, sbuf, k)
    return False, 0, k, alpha, beta, key, idx


@njit(cache=True, inline="always", _nrt=False)
def _ab_push(F, SL, SC, ply, cur, k, alpha, beta, key, idx):
    """Row ``ply`` becomes the frame of the opened node ``cur`` (its moves are already there),
    whose children are searched through the frame stack; returns its first move."""
    W = SC + N_SCALARS
    m = F[_ix(ply, W, SL)]
    store_state_at(F, ply * W, cur)
    F[_ix(ply, W, SC + _ALPHA)] = alpha
    F[_ix(ply, W, SC + _BETA)] = beta
    F[_ix(ply, W, SC + _ALPHA0)] = alpha
    F[_ix(ply, W, SC + _BEST)] = -INF
    F[_ix(ply, W, SC + _BMOVE)] = m
    F[_ix(ply, W, SC + _K)] = k
    F[_ix(ply, W, SC + _I)] = 0
    F[_ix(ply, W, SC + _KEY)] = key
    F[_ix(ply, W, SC + _IDX)] = idx
    return m


@njit(cache=True, inline="always", _nrt=False)
def _ab_store(tt, idx, key, best, alpha0, beta, depth, move, gen):
    """A searched node's result in the table: a lower bound (``best >= beta``), an upper bound
    (``best <= alpha0``, the window's alpha on entry) or exact."""
    if best >= beta:
        lo, hi = best, INF - 1
    elif best <= alpha0:
        lo, hi = -(INF - 1), best
    else:
        lo, hi = best, best
    _dl_store(tt, idx, key, lo, hi, depth, move, gen)


@njit(cache=True, inline="always", _nrt=False)
def _ab_close(F, tt, SC, ply, best, beta, depth, gen):
    """The node of frame ``ply`` is searched to ``depth``: store its result in the table."""
    W = SC + N_SCALARS
    _ab_store(tt, F[_ix(ply, W, SC + _IDX)], F[_ix(ply, W, SC + _KEY)], best,
              F[_ix(ply, W, SC + _ALPHA0)], beta, depth, F[_ix(ply, W, SC + _BMOVE)], gen)


@njit(cache=True, _nrt=False)
def _ab_run(legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic_score, order_scores,
            immediate_win, nonlosing_moves, move_count, ordered, SL, NA, MAXP, F, tt, ctr, Wk,
            root, ply, cur, depth, alpha, beta, nodes, pause):
    """The depth-limited search's hot loop, from entering ``cur`` at row ``ply``.  ``F`` and
    ``tt`` are the flat (1-D) views of the frames and the table.

    Returns ``(done, score, ply, cur, depth, alpha, beta, nodes)``: done with the score of row
    ``root``, or paused (``nodes == pause``) just before entering the node it hands back."""
    SC = SL + 2 * NA + MAXP + 2
    PVL = SL + 2 * NA
    W = SC + N_SCALARS
    shift, gen, leaf_mode, n_roll = ctr[TT_SHIFT], ctr[GEN], ctr[LEAF_MODE], ctr[N_ROLL]
    all_values = ctr[ALL_VALUES] != 0
    sbuf, rbuf = Wk[W_SBUF], Wk[W_RBUF]
    D = depth + ply                 # every node's depth is D - its ply (no extensions)
    while True:
        if nodes >= pause:
            return False, 0, ply, cur, depth, alpha, beta, nodes
        nodes += 1
        decided, v, k, a, b, key, idx = _ab_enter(
            is_terminal, returns0, to_play, hash_key, heuristic_score, legal_actions, play,
            order_scores, immediate_win, nonlosing_moves, move_count, ordered, SL, NA, MAXP, SC, F,
            tt, shift, ply, cur, depth, alpha, beta, leaf_mode, n_roll, gen, sbuf, rbuf)
        if not decided:
            if depth > 1 or nodes + k > pause:
                m = _ab_push(F, SL, SC, ply, cur, k, a, b, key, idx)
                alpha, beta = -b, -a
                depth -= 1
                cur = play(cur, m)
                ply += 1
                continue
            # A frontier node (its children are leaves), with room in the budget for all of them:
            # its children are entered and counted here, in the same order with the same cut-offs
            # as through the frame stack, with its locals in registers (no frame: 2% faster).
            alpha = a
            best = -INF
            bm = F[_ix(ply, W, SL)]
            for i in range(k):
                m = F[_ix(ply, W, SL + i)]
                nodes += 1
                v, w = _ab_leaf(is_terminal, returns0, to_play, heuristic_score, legal_actions, play,
                                immediate_win, move_count, MAXP, play(cur, m), leaf_mode, n_roll, rbuf,
                                False)      # (a child of a frontier node: ply >= 2)
                sc = -v
                if sc > best:
                    best = sc
                    bm = m
                    if sc > alpha:
                        alpha = sc
                        F[_ix(ply, W, PVL)] = 1 if w < 0 else 2
                        F[_ix(ply, W, PVL + 1)] = m
                        F[_ix(ply, W, PVL + 2)] = w
                        if sc >= b:
                            break
            _ab_store(tt, idx, key, best, a, b, 1, bm, gen)
            v = best
        while True:                 # hand v up until a node has another child to search
            if ply == root:
                return True, v, ply, cur, depth, alpha, beta, nodes
            ply -= 1
            sc = -v
            i = F[_ix(ply, W, SC + _I)]
            a = F[_ix(ply, W, SC + _ALPHA)]
            b = F[_ix(ply, W, SC + _BETA)]
            best = F[_ix(ply, W, SC + _BEST)]
            if ply == 0:            # the root: every move's score (an upper bound if it cannot
                m = F[_ix(0, W, SL + i)]    # be best and only best moves are wanted)
                Wk[W_VALS, m] = sc
                Wk[W_FLAGS, m] = 1 if (all_values or sc > a) else 2
            cut = False
            if sc > best:
                best = sc
                F[_ix(ply, W, SC + _BEST)] = sc
                F[_ix(ply, W, SC + _BMOVE)] = F[_ix(ply, W, SL + i)]
                if sc > a:
                    a = sc
                    F[_ix(ply, W, SC + _ALPHA)] = sc
                    _pv_take(F, PVL, ply, F[_ix(ply, W, SL + i)], W)
                    cut = sc >= b
            i += 1
            if not cut and i < F[_ix(ply, W, SC + _K)]:
                F[_ix(ply, W, SC + _I)] = i
                alpha, beta = -b, -a
                if ply == 0 and all_values:
                    beta = INF      # every root move gets the full window
                depth = D - ply - 1
                cur = play(load_state(cur, F, ply * W), F[_ix(ply, W, SL + i)])
                ply += 1
                break
            _ab_close(F, tt, SC, ply, best, b, D - ply, gen)
            v = best


@njit(cache=True, _nrt=False)
def _ab_search(legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic_score,
               order_scores, immediate_win, nonlosing_moves, move_count, ordered,
               SL, NA, MAXP, F, tt, ctr, Wk, root, ply, cur, depth, alpha, beta):
    """Depth-limited negamax (fail-soft), entering the position ``cur`` at frame row ``ply``,
    until the node of row ``root`` (``root == ply``, or an expanded node whose locals are in its
    row) is searched; returns its score and leaves its principal variation in its row.  0 with
    ``ctr[ABORT]`` set if a budget ran out."""
    nodes = ctr[NODES]
    ply = np.int64(ply)
    while True:
        stop, pause = _budget_pause(ctr, nodes)
        if stop:
            ctr[NODES] = nodes
            return 0
        done, v, ply, cur, depth, alpha, beta, nodes = _ab_run(
            legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic_score, order_scores,
            immediate_win, nonlosing_moves, move_count, ordered, SL, NA, MAXP, F, tt, ctr, Wk,
            root, ply, cur, depth, alpha, beta, nodes, pause)
        if done:
            ctr[NODES] = nodes
            return v


@njit(cache=True, _nrt=False)
def _ab_root(new_state, legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic_score,
             order_scores, immediate_win, nonlosing_moves, move_count, ordered,
             SL, NA, MAXP, F, Ff, tt, ctr, Wk, depth):
    """One iteration at ``depth`` from the position in ``F[0]`` (not over), over every legal move.

    ``Wk[W_VALS, a]`` gets move ``a``'s score and ``Wk[W_FLAGS, a]`` 1 if exact, 2 if an upper
    bound (when ``ctr[ALL_VALUES]`` is 0, moves that cannot beat the best get only a bound), 0 if
    unsearched.  The PV is left in row 0.  Returns the best move (-1 if aborted before any move
    finished).  ``Ff`` is ``F``'s flat view and ``tt`` the table's (the hot loop's arrays).
    """
    PVL = SL + 2 * NA
    SC = PVL + MAXP + 2
    moves, scores, flags = Wk[W_MOVES], Wk[W_SCORES], Wk[W_FLAGS]
    gen = ctr[GEN]
    root = load_state(new_state(), F, 0)
    ctr[NODES] += 1                 # the root is a node too
    k = legal_actions(root, moves)
    key = hash_key(root)
    idx = _tt_index(key, ctr[TT_SHIFT])
    tt_move = -1
    d = tt[np.uint64(2 * idx + 1)]
    if d != 0 and tt[np.uint64(2 * idx)] == key:
        tlo, thi, tdepth, tmove, tgen = _dl_unpack(d)
        if tgen == gen:
            tt_move = tmove
    order_scores(root, moves, k, scores)
    for i in range(k):
        if moves[i] == tt_move:
            scores[i] += 1 << 20
    _sort_desc(moves, scores, k)
    for i in range(NA):
        flags[i] = 0
    # Row 0 becomes an expanded node (its children are searched in the hot loop like any other;
    # ``_ab_run`` records the root's per-move scores and, with ALL_VALUES, gives every root move
    # the full window).
    store_state(F, 0, root)
    for i in range(k):
        F[0, SL + i] = moves[i]
    F[0, PVL] = 0
    F[0, SC + _ALPHA] = -INF
    F[0, SC + _BETA] = INF
    F[0, SC + _ALPHA0] = -INF
    F[0, SC + _BEST] = -INF
    F[0, SC + _BMOVE] = moves[0]
    F[0, SC + _K] = k
    F[0, SC + _I] = 0
    F[0, SC + _KEY] = key
    F[0, SC + _IDX] = idx
    _ab_search(legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic_score,
               order_scores, immediate_win, nonlosing_moves, move_count, ordered,
               SL, NA, MAXP, Ff, tt, ctr, Wk, 0, 1, play(root, moves[0]), depth - 1, -INF, INF)
    return F[0, SC + _BMOVE] if ctr[ABORT] == 0 else -1


@njit(cache=True, _nrt=False)
def _ab_iterate(new_state, legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic_score,
                order_scores, immediate_win, nonlosing_moves, move_count, ordered,
                SL, NA, MAXP, root, F, Ff, tt, ctr, Wk, Wv):
    """Iterative deepening from the position in the array ``root``: depths 1, 2, ... up to
    ``ctr[MAX_DEPTH]`` (0: to the end of the game) until a budget runs out, a score is proven or
    the tree ends.  The counters and results in ``ctr`` are reset here.  The last FINISHED
    iteration is left in ``ctr[DONE_DEPTH]`` (0: none finished; -1: the root is over and nothing
    was searched), ``ctr[BEST_MOVE]``, ``ctr[PV_LEN]``, ``ctr[N_OUT]``, ``ctr[N_BOUNDS]``, the
    result lists from ``ctr[OUT]`` on and ``Wv``; ``ctr[REMAINING]`` gets the plies left at the
    root.  ``ctr`` comes from ``make_ctr``; ``Ff`` and ``tt`` are the flat views of the frames
    ``F`` and of the table (see ``_ab_run``)."""
    PVL = SL + 2 * NA
    scale = HEURISTIC_SCALE
    ctr[NODES] = 0
    ctr[ABORT] = 0
    ctr[DONE_DEPTH] = 0
    ctr[BEST_MOVE] = -1
    ctr[PV_LEN] = 0
    ctr[N_OUT] = 0
    ctr[N_BOUNDS] = 0
    pos = load_state(new_state(), root, 0)
    if is_terminal(pos):
        ctr[DONE_DEPTH] = -1
        return
    remaining = MAXP - move_count(pos)
    ctr[REMAINING] = remaining
    max_depth = ctr[MAX_DEPTH]
    if max_depth <= 0 or max_depth > remaining:
        max_depth = remaining
    store_state(F, 0, pos)
    for d in range(1, max_depth + 1):
        best = _ab_root(new_state, legal_actions, play, is_terminal, returns0, to_play, hash_key,
                        heuristic_score, order_scores, immediate_win, nonlosing_moves, move_count,
                        ordered, SL, NA, MAXP, F, Ff, tt, ctr, Wk, d)
        if ctr[ABORT] != 0:
            break
        n_out = 0
        n_bounds = 0
        for a in range(NA):         # the searched moves, ascending, with scores and values
            f = Wk[W_FLAGS, a]
            if f != 0:
                v = Wk[W_VALS, a]
                ctr[OUT + n_out] = a
                ctr[OUT + NA + n_out] = v
                # a proven win/loss is +-1; a heuristic score (|v| < WIN) scales into (-1, 1)
                Wv[n_out] = v / scale if -WIN < v < WIN else (1.0 if v > 0 else -1.0)
                n_out += 1
                if f == 2:
                    ctr[OUT + 2 * NA + n_bounds] = a
                    n_bounds += 1
        n = F[0, PVL]
        for j in range(n):
            ctr[OUT + 3 * NA + j] = F[0, PVL + 1 + j]
        ctr[DONE_DEPTH] = d
        ctr[BEST_MOVE] = best
        ctr[PV_LEN] = n
        ctr[N_OUT] = n_out
        ctr[N_BOUNDS] = n_bounds
        sc = Wk[W_VALS, best]
        if sc >= WIN or sc <= -WIN or d >= remaining:
            break


# ---------------------------------------------------------------- per-game cached entry points
# The kernels' constants as module-level names: numba types a global int as a compile-time
# literal (a module's attribute is a plain int64), so the engines' offsets fold.
_TTT_SL, _TTT_NA, _TTT_MAXP, _TTT_ORD = (_ttt.STATE_LEN, _ttt.NUM_ACTIONS, _ttt.MAX_PLIES,
                                         _ttt.ORDERED_MOVES)
_C4_SL, _C4_NA, _C4_MAXP, _C4_ORD = _c4.STATE_LEN, _c4.NUM_ACTIONS, _c4.MAX_PLIES, _c4.ORDERED_MOVES


@njit(cache=True)
def tictactoe_ab_iterate(root, F, tt, ctr, Wk, Wv):
    return _ab_iterate(_ttt.new_state, _ttt.legal_actions, _ttt.play, _ttt.is_terminal, _ttt.returns0,
                       _ttt.to_play, _ttt.hash_key, _ttt.heuristic_score, _ttt.order_scores,
                       _ttt.immediate_win, _ttt.nonlosing_moves, _ttt.move_count, _TTT_ORD,
                       _TTT_SL, _TTT_NA, _TTT_MAXP, root, F, F.reshape(F.size), tt.reshape(tt.size),
                       ctr, Wk, Wv)


@njit(cache=True)
def tictactoe_solve(F, tt, ctr, Wk, out):
    return _solve_root(_ttt.new_state, _ttt.play, _ttt.hash_key, _ttt.immediate_win,
                       _ttt.nonlosing_moves, _ttt.order_scores, _ttt.move_count, _TTT_ORD,
                       _TTT_SL, _TTT_NA, _TTT_MAXP, F, tt, ctr, Wk, out)


@njit(cache=True)
def tictactoe_solve_pv(F, tt, ctr, Wk, score, pv):
    return _solve_pv(_ttt.new_state, _ttt.play, _ttt.is_terminal, _ttt.hash_key, _ttt.immediate_win,
                     _ttt.nonlosing_moves, _ttt.order_scores, _ttt.move_count, _ttt.legal_actions,
                     _TTT_ORD, _TTT_SL, _TTT_NA, _TTT_MAXP, F, tt, ctr, Wk, score, pv)


@njit(cache=True)
def connect4_ab_iterate(root, F, tt, ctr, Wk, Wv):
    return _ab_iterate(_c4.new_state, _c4.legal_actions, _c4.play, _c4.is_terminal, _c4.returns0,
                       _c4.to_play, _c4.hash_key, _c4.heuristic_score, _c4.order_scores,
                       _c4.immediate_win, _c4.nonlosing_moves, _c4.move_count, _C4_ORD,
                       _C4_SL, _C4_NA, _C4_MAXP, root, F, F.reshape(F.size), tt.reshape(tt.size),
                       ctr, Wk, Wv)


@njit(cache=True)
def connect4_solve(F, tt, ctr, Wk, out):
    return _solve_root(_c4.new_state, _c4.play, _c4.hash_key, _c4.immediate_win,
                       _c4.nonlosing_moves, _c4.order_scores, _c4.move_count, _C4_ORD,
                       _C4_SL, _C4_NA, _C4_MAXP, F, tt, ctr, Wk, out)


@njit(cache=True)
def connect4_solve_pv(F, tt, ctr, Wk, score, pv):
    return _solve_pv(_c4.new_state, _c4.play, _c4.is_terminal, _c4.hash_key, _c4.immediate_win,
                     _c4.nonlosing_moves, _c4.order_scores, _c4.move_count, _c4.legal_actions,
                     _C4_ORD, _C4_SL, _C4_NA, _C4_MAXP, F, tt, ctr, Wk, score, pv)


# name -> (ab_iterate, solve, solve_pv)
ENTRY_POINTS = {
    "tictactoe": (tictactoe_ab_iterate, tictactoe_solve, tictactoe_solve_pv),
    "connect4": (connect4_ab_iterate, connect4_solve, connect4_solve_pv),
}
