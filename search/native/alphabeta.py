"""Numba alpha-beta (negamax) engines, generic over a native game kernel.

Two searches, each ONE implementation that takes the kernel's jitted functions as arguments
(numba specialises them per game), plus a few-line cached entry wrapper per native game:

- the depth-limited search (``_ab_iterate`` / ``_ab_root`` / ``_ab_search``): iterative
  deepening, negamax alpha-beta with a transposition table, move ordering (TT move, then the
  kernel's ``order_scores``), exact terminal, immediate-win and forced-loss scores, heuristic or
  random-rollout leaves, a triangular principal variation, node and time budgets;
- the exact solver (``_solve_root`` / ``_solve_search``): null-window binary search on the
  distance-to-win score (as Pascal Pons' connect-four solver), non-losing moves only, score
  bounds from the move count, a table holding both bounds and the best move, lazy ordering.

Kernel functions the engines call (beyond the basic interface): ``move_count(s)``,
``immediate_win(s)`` (a winning action or -1) and ``nonlosing_moves(s, out)`` (the moves after
which the opponent cannot win at once; 0 if none).  They, and every kernel function the engines
call, must not allocate: the engines are compiled without numba's reference counting
(``_nrt=False``), which made them 1.4-1.7x faster (array arguments of inlined helpers otherwise
cost atomic increments per node).  The searches are iterative over a frame stack because numba
cannot cache recursion through function arguments.

Everything lives in preallocated int64 arrays the driver (``plyground.search.alphabeta``) owns:

- ``F`` frames, one row per ply: ``[state | moves | order scores | pv length | pv | locals]``;
- ``Wk`` scratch rows (the node being worked on, move and score buffers);
- the tables: the solver's is 1-D and prime-sized (one int64 a slot), the depth-limited
  search's is ``(2**bits, 2)`` (key, packed data; 0 = empty);
- ``ctr`` counters and limits (slots ``NODES`` ... ``TT_SIZE`` below).

Scores are integers from the point of view of the player to move.  The solver uses the
distance-to-win score (``(MAX_PLIES + 1 - n) // 2`` for a win whose stone is played when ``n``
stones are on the board).  The depth-limited search adds ``WIN`` to such scores, so a proven
result dominates any heuristic value, which is scaled to ``(-HEUR_SCALE, HEUR_SCALE)``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from plyground.games.native import connect4 as _c4
from plyground.games.native import tictactoe as _ttt

WIN = 10000          # depth-limited scores: WIN + distance-to-win for a proven win
HEUR_SCALE = 1000    # a heuristic value v in (-1, 1) becomes round(v * (HEUR_SCALE - 1))
INF = 30000          # outside every score; fits the 16-bit packed TT fields

# ctr slots
NODES, NODE_LIMIT, DEADLINE, ABORT, TT_SHIFT, LEAVES, TT_SIZE = 0, 1, 2, 3, 4, 5, 6
CTR_LEN = 8
CLOCK_EVERY = 1023   # read the clock when nodes & CLOCK_EVERY == 0

# leaf modes of the depth-limited search
LEAF_HEURISTIC, LEAF_ROLLOUT = 0, 1

# Solver table: ONE int64 per slot of a prime-sized 1-D table (8 bytes, so twice the slots stay
# in cache): lo + 128 (8 bits) | hi + 128 (8 bits) | move + 1 (8 bits) | key // size + 1 (40 bits).
# The slot is key % size, so slot and quotient identify the key exactly (connect4 keys < 2**49).
_S_UNKNOWN_LO, _S_UNKNOWN_HI = -127, 127

# Depth-limited table data: lo + 32768 (16) | hi + 32768 (16) | depth (8) | move + 1 (8) |
# search generation (15, >= 1; entries of older searches are ignored, so no clearing).
_OFF16 = 32768


def solver_tt_size(bits: int) -> int:
    """The solver table's slot count for ``tt_bits``: the largest prime below ``2**bits``."""
    n = (1 << bits) - 1
    while n > 2:
        if n % 2 and all(n % f for f in range(3, int(n ** 0.5) + 1, 2)):
            return n
        n -= 1
    return 2


def frame_width(kernel) -> int:
    """Columns of one frame row for ``kernel``: state, moves, order scores, pv length, pv."""
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
    """The engines' scratch rows (10 x max(STATE_LEN, NUM_ACTIONS) int64), passed as ``Wk``."""
    return np.zeros((10, max(kernel.STATE_LEN, kernel.NUM_ACTIONS)), dtype=np.int64)


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
def _count_node(ctr):
    """Count a node; return True if a budget ran out (then every frame unwinds at once)."""
    ctr[NODES] += 1
    if ctr[NODE_LIMIT] > 0 and ctr[NODES] > ctr[NODE_LIMIT]:
        ctr[ABORT] = 1
    elif ctr[DEADLINE] > 0 and (ctr[NODES] & CLOCK_EVERY) == 0 and _monotonic_ns() >= ctr[DEADLINE]:
        ctr[ABORT] = 1
    return ctr[ABORT] != 0


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


# ---------------------------------------------------------------- frame scalars
# Per-ply locals of the iterative searches live after the pv in each frame row (offset SC).
# The hot loops never slice F (a view per node costs reference counting): the node being
# worked on is in the small array ``cur``, the kernel writes moves and scores into ``mbuf`` and
# ``sbuf``, and everything is copied element by element to and from the frame rows.
_K, _I, _ALPHA, _BETA, _BEST, _BMOVE, _KEY, _IDX, _ALPHA0, _DEPTH, _SORTED = range(11)
N_SCALARS = 11


@njit(cache=True, inline="always", _nrt=False)
def _load(F, ply, cur, SL):
    for j in range(SL):
        cur[j] = F[ply, j]


@njit(cache=True, inline="always", _nrt=False)
def _save(F, ply, cur, SL):
    for j in range(SL):
        F[ply, j] = cur[j]


@njit(cache=True, inline="always", _nrt=False)
def _descend(play, SL, SC, F, ply, i, child_depth, cur):
    """Child ``i`` of the node at ``ply`` into ``cur`` and row ``ply + 1``, window negated."""
    _load(F, ply, cur, SL)
    play(cur, F[ply, SL + i])
    _save(F, ply + 1, cur, SL)
    F[ply + 1, SC + _ALPHA] = -F[ply, SC + _BETA]
    F[ply + 1, SC + _BETA] = -F[ply, SC + _ALPHA]
    F[ply + 1, SC + _DEPTH] = child_depth


@njit(cache=True, inline="always", _nrt=False)
def _order_moves(order_scores, cur, F, ply, SL, mbuf, sbuf, start, k):
    """Order the frame's moves ``start..k-1`` by the kernel's ``order_scores``, best first."""
    n = k - start
    if n > 1:
        for j in range(n):
            mbuf[j] = F[ply, SL + start + j]
        order_scores(cur, mbuf, n, sbuf)
        _sort_desc(mbuf, sbuf, n)
        for j in range(n):
            F[ply, SL + start + j] = mbuf[j]


@njit(cache=True, inline="always", _nrt=False)
def _put_moves(F, ply, SL, mbuf, k, first):
    """Store ``mbuf[:k]`` as the frame's moves, ``first`` (if >= 0 and present) in front."""
    pos = -1
    for j in range(k):
        F[ply, SL + j] = mbuf[j]
        if mbuf[j] == first:
            pos = j
    if pos > 0:
        F[ply, SL + pos] = F[ply, SL]
        F[ply, SL] = first
    return pos >= 0


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
def _solve_enter(hash_key, nonlosing_moves, order_scores, move_count, SL, NA, MAXP, SC,
                 F, tt, ctr, ply, cur, mbuf, sbuf):
    """Open the node in ``cur`` (also row ``ply``): ``(True, score)`` if decided without
    children, else ``(False, 0)`` with its moves in the frame and its scalars set."""
    alpha = F[ply, SC + _ALPHA]
    beta = F[ply, SC + _BETA]
    key = hash_key(cur)
    size = ctr[TT_SIZE]
    q = key // size
    idx = key - q * size
    tag = (q + 1) << 24
    _prefetch(tt, idx)              # the slot loads while the moves are generated
    n = move_count(cur)
    k = nonlosing_moves(cur, mbuf)
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
    if k > 1 and _put_moves(F, ply, SL, mbuf, k, tt_move):
        F[ply, SC + _SORTED] = 0
    else:
        if k > 1:
            order_scores(cur, mbuf, k, sbuf)
            _sort_desc(mbuf, sbuf, k)
        for j in range(k):
            F[ply, SL + j] = mbuf[j]
        F[ply, SC + _SORTED] = 1
    F[ply, SC + _ALPHA] = alpha
    F[ply, SC + _BETA] = beta
    F[ply, SC + _K] = k
    F[ply, SC + _I] = 0
    F[ply, SC + _KEY] = tag
    F[ply, SC + _IDX] = idx
    F[ply, SC + _BMOVE] = -1
    return False, 0


@njit(cache=True, _nrt=False)
def _solve_search(play, hash_key, nonlosing_moves, order_scores, move_count,
                  SL, NA, MAXP, F, tt, ctr, Wk, root, alpha, beta):
    """Distance-to-win score of ``F[root]`` within ``(alpha, beta)`` (fail-soft bounds outside).

    Iterative negamax over the frame stack (numba cannot cache recursion through function
    arguments).  Assumes the position is not over and its player cannot win at once; the
    engine only plays non-losing moves, so this holds for every child.
    """
    SC = SL + 2 * NA + MAXP + 2
    cur, mbuf, sbuf = Wk[0], Wk[2], Wk[3]
    _load(F, root, cur, SL)
    ply = root
    F[ply, SC + _ALPHA] = alpha
    F[ply, SC + _BETA] = beta
    while True:
        if _count_node(ctr):
            return 0
        decided, v = _solve_enter(hash_key, nonlosing_moves, order_scores, move_count,
                                  SL, NA, MAXP, SC, F, tt, ctr, ply, cur, mbuf, sbuf)
        if not decided:
            _descend(play, SL, SC, F, ply, 0, 0, cur)
            ply += 1
            continue
        while True:                 # hand v up until a node has another child to search
            if ply == root:
                return v
            ply -= 1
            sc = -v
            alpha = F[ply, SC + _ALPHA]
            beta = F[ply, SC + _BETA]
            i = F[ply, SC + _I]
            if sc >= beta:
                _solver_store(tt, F[ply, SC + _IDX], F[ply, SC + _KEY], sc, _S_UNKNOWN_HI,
                              F[ply, SL + i])
                v = sc
                continue
            if sc > alpha:
                F[ply, SC + _ALPHA] = sc
                F[ply, SC + _BMOVE] = F[ply, SL + i]
            i += 1
            if i < F[ply, SC + _K]:
                if F[ply, SC + _SORTED] == 0:
                    _load(F, ply, cur, SL)
                    _order_moves(order_scores, cur, F, ply, SL, mbuf, sbuf, 1, F[ply, SC + _K])
                    F[ply, SC + _SORTED] = 1
                F[ply, SC + _I] = i
                _descend(play, SL, SC, F, ply, i, 0, cur)
                ply += 1
                break
            v = F[ply, SC + _ALPHA]
            _solver_store(tt, F[ply, SC + _IDX], F[ply, SC + _KEY], _S_UNKNOWN_LO, v,
                          F[ply, SC + _BMOVE])


@njit(cache=True, _nrt=False)
def _solve_root(play, hash_key, immediate_win, nonlosing_moves, order_scores, move_count,
                SL, NA, MAXP, F, tt, ctr, Wk, out):
    """Solve ``F[0]`` (not over) by null-window binary search on the score.

    Writes the final ``[lower, upper]`` bounds into ``out[0:2]`` (equal unless a budget ran out)
    and returns the lower bound.
    """
    cur = Wk[4]
    _load(F, 0, cur, SL)
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
        r = _solve_search(play, hash_key, nonlosing_moves, order_scores, move_count,
                          SL, NA, MAXP, F, tt, ctr, Wk, 0, med, med + 1)
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
def _solve_pv(play, is_terminal, hash_key, immediate_win, nonlosing_moves, order_scores,
              move_count, legal_actions, SL, NA, MAXP, F, tt, ctr, Wk, score, pv):
    """Walk a principal variation of the solved ``F[0]`` whose score is ``score``: at each ply the
    first move (in search order) whose child keeps the score.  Returns the PV length."""
    cur, child, moves, order = Wk[4], Wk[5], Wk[6], Wk[7]
    _load(F, 0, cur, SL)
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
            order_scores(cur, moves, k, order)
            _sort_desc(moves, order, k)
            for i in range(k):
                m = moves[i]
                for j in range(SL):
                    child[j] = cur[j]
                play(child, m)
                if is_terminal(child):  # no immediate win here, so this is a draw
                    keeps = score == 0
                else:
                    _save(F, 0, child, SL)
                    r = _solve_search(play, hash_key, nonlosing_moves, order_scores, move_count,
                                      SL, NA, MAXP, F, tt, ctr, Wk, 0, -score, -score + 1)
                    if ctr[ABORT] != 0:
                        return length
                    keeps = r <= -score   # every child scores >= -score; this one is -score
                if keeps:
                    found = m
                    break
        if found < 0:
            break
        play(cur, found)
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
    tt[idx, 0] = key
    tt[idx, 1] = ((lo + _OFF16) | ((hi + _OFF16) << 16) | (np.int64(depth) << 32)
                  | (np.int64(move + 1) << 40) | (np.int64(gen) << 48))


@njit(cache=True, inline="always", _nrt=False)
def _pv_take(F, PVL, ply, m):
    """The PV of ``ply`` becomes ``m`` followed by the PV of ``ply + 1``."""
    cl = F[ply + 1, PVL]
    F[ply, PVL] = cl + 1
    F[ply, PVL + 1] = m
    for j in range(cl):
        F[ply, PVL + 2 + j] = F[ply + 1, PVL + 1 + j]


@njit(cache=True, inline="always", _nrt=False)
def _rollout(legal_actions, play, is_terminal, returns0, s, buf):
    """Uniformly random moves from ``s`` (changed in place) to the end; player 0's return.

    The kernel's ``random_playout`` allocates, which the engine's NRT-free code cannot call."""
    while not is_terminal(s):
        k = legal_actions(s, buf)
        play(s, buf[np.random.randint(k)])
    return returns0(s)


@njit(cache=True, inline="always", _nrt=False)
def _ab_enter(is_terminal, returns0, to_play, hash_key, heuristic, legal_actions, play, order_scores,
              immediate_win, nonlosing_moves, move_count, SL, NA, MAXP, SC, F, tt, ctr, ply,
              leaf_mode, n_roll, gen, cur, mbuf, sbuf, tmp):
    """Open the node in ``cur`` (also row ``ply``): ``(True, score)`` if decided without
    children (over, immediate win, leaf, no safe move, bound or TT cut), else ``(False, 0)``
    with its moves in the frame and its scalars set."""
    PVL = SL + 2 * NA
    F[ply, PVL] = 0
    if is_terminal(cur):
        return True, _terminal_score(returns0, to_play, move_count, MAXP, cur)
    n = move_count(cur)
    w = immediate_win(cur)
    if w >= 0:
        F[ply, PVL] = 1
        F[ply, PVL + 1] = w
        return True, WIN + (MAXP + 1 - n) // 2
    depth = F[ply, SC + _DEPTH]
    if depth <= 0:
        ctr[LEAVES] += 1
        if leaf_mode == LEAF_ROLLOUT:
            total = 0.0
            for _ in range(n_roll):
                for j in range(SL):
                    tmp[j] = cur[j]
                total += _rollout(legal_actions, play, is_terminal, returns0, tmp, mbuf)
            v = total / n_roll
            if to_play(cur) == 1:
                v = -v
        else:
            v = heuristic(cur)
        return True, np.int64(np.round(v * (HEUR_SCALE - 1)))
    k = nonlosing_moves(cur, mbuf)
    if k == 0:                      # every move loses at once: PV = any move, the win
        legal_actions(cur, mbuf)
        for j in range(SL):
            tmp[j] = cur[j]
        play(tmp, mbuf[0])
        F[ply, PVL] = 2
        F[ply, PVL + 1] = mbuf[0]
        F[ply, PVL + 2] = immediate_win(tmp)
        return True, -(WIN + (MAXP - n) // 2)
    if n >= MAXP - 2:
        return True, 0
    alpha = F[ply, SC + _ALPHA]
    beta = F[ply, SC + _BETA]
    lo = -(WIN + (MAXP - 2 - n) // 2)
    if alpha < lo:
        alpha = lo
        if alpha >= beta:
            return True, alpha
    hi = WIN + (MAXP - 1 - n) // 2
    if beta > hi:
        beta = hi
        if alpha >= beta:
            return True, beta
    key = hash_key(cur)
    idx = _tt_index(key, ctr[TT_SHIFT])
    tt_move = -1
    d = tt[idx, 1]
    if d != 0 and tt[idx, 0] == key:
        tlo, thi, tdepth, tmove, tgen = _dl_unpack(d)
        if tgen == gen:
            tt_move = tmove
            if tdepth >= depth:
                if alpha < tlo:
                    alpha = tlo
                    if alpha >= beta:
                        return True, alpha
                if beta > thi:
                    beta = thi
                    if alpha >= beta:
                        return True, beta
    if k > 1:
        order_scores(cur, mbuf, k, sbuf)
        if tt_move >= 0:
            for i in range(k):
                if mbuf[i] == tt_move:
                    sbuf[i] += 1 << 20
        _sort_desc(mbuf, sbuf, k)
    for j in range(k):
        F[ply, SL + j] = mbuf[j]
    F[ply, SC + _ALPHA] = alpha
    F[ply, SC + _BETA] = beta
    F[ply, SC + _ALPHA0] = alpha
    F[ply, SC + _BEST] = -INF
    F[ply, SC + _BMOVE] = mbuf[0]
    F[ply, SC + _K] = k
    F[ply, SC + _I] = 0
    F[ply, SC + _KEY] = key
    F[ply, SC + _IDX] = idx
    return False, 0


@njit(cache=True, _nrt=False)
def _ab_search(legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic,
               order_scores, immediate_win, nonlosing_moves, move_count,
               SL, NA, MAXP, F, tt, ctr, Wk, root, depth, alpha, beta, leaf_mode, n_roll, gen):
    """Depth-limited negamax score of ``F[root]`` (fail-soft), iterative over the frame stack;
    leaves the node's principal variation in its row."""
    SC = SL + 2 * NA + MAXP + 2
    PVL = SL + 2 * NA
    cur, tmp, mbuf, sbuf = Wk[0], Wk[1], Wk[2], Wk[3]
    _load(F, root, cur, SL)
    ply = root
    F[ply, SC + _ALPHA] = alpha
    F[ply, SC + _BETA] = beta
    F[ply, SC + _DEPTH] = depth
    while True:
        if _count_node(ctr):
            return 0
        decided, v = _ab_enter(is_terminal, returns0, to_play, hash_key, heuristic,
                               legal_actions, play, order_scores, immediate_win, nonlosing_moves,
                               move_count, SL, NA, MAXP, SC, F, tt, ctr, ply,
                               leaf_mode, n_roll, gen, cur, mbuf, sbuf, tmp)
        if not decided:
            _descend(play, SL, SC, F, ply, 0, F[ply, SC + _DEPTH] - 1, cur)
            ply += 1
            continue
        while True:                 # hand v up until a node has another child to search
            if ply == root:
                return v
            ply -= 1
            sc = -v
            i = F[ply, SC + _I]
            cut = False
            if sc > F[ply, SC + _BEST]:
                F[ply, SC + _BEST] = sc
                F[ply, SC + _BMOVE] = F[ply, SL + i]
                if sc > F[ply, SC + _ALPHA]:
                    F[ply, SC + _ALPHA] = sc
                    _pv_take(F, PVL, ply, F[ply, SL + i])
                    cut = sc >= F[ply, SC + _BETA]
            i += 1
            if not cut and i < F[ply, SC + _K]:
                F[ply, SC + _I] = i
                _descend(play, SL, SC, F, ply, i, F[ply, SC + _DEPTH] - 1, cur)
                ply += 1
                break
            best = F[ply, SC + _BEST]
            if best >= F[ply, SC + _BETA]:
                lo, hi = best, INF - 1
            elif best <= F[ply, SC + _ALPHA0]:
                lo, hi = -(INF - 1), best
            else:
                lo, hi = best, best
            _dl_store(tt, F[ply, SC + _IDX], F[ply, SC + _KEY], lo, hi, F[ply, SC + _DEPTH],
                      F[ply, SC + _BMOVE], gen)
            v = best


@njit(cache=True, _nrt=False)
def _ab_root(legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic,
             order_scores, immediate_win, nonlosing_moves, move_count,
             SL, NA, MAXP, F, tt, ctr, Wk, depth, leaf_mode, n_roll, gen, all_values, vals, flags):
    """One iteration at ``depth`` from ``F[0]`` (not over), over every legal move.

    ``vals[a]`` gets move ``a``'s score and ``flags[a]`` 1 if exact, 2 if an upper bound (when
    ``all_values`` is False, moves that cannot beat the best get only a bound), 0 if unsearched.
    The PV is left in row 0.  Returns the best move (-1 if aborted before any move finished).
    """
    PVL = SL + 2 * NA
    root, child, moves, scores = Wk[4], Wk[5], Wk[6], Wk[7]
    _load(F, 0, root, SL)
    k = legal_actions(root, moves)
    key = hash_key(root)
    idx = _tt_index(key, ctr[TT_SHIFT])
    tt_move = -1
    d = tt[idx, 1]
    if d != 0 and tt[idx, 0] == key:
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
    F[0, PVL] = 0
    alpha = -INF
    best = -INF
    best_move = -1
    for i in range(k):
        m = moves[i]
        for j in range(SL):
            child[j] = root[j]
        play(child, m)
        _save(F, 1, child, SL)
        b = INF if all_values else -alpha
        sc = -_ab_search(legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic,
                         order_scores, immediate_win, nonlosing_moves, move_count,
                         SL, NA, MAXP, F, tt, ctr, Wk, 1, depth - 1, -INF, b, leaf_mode, n_roll, gen)
        if ctr[ABORT] != 0:
            return best_move
        vals[m] = sc
        flags[m] = 1 if (all_values or sc > alpha) else 2
        if sc > best:
            best = sc
            best_move = m
            _pv_take(F, PVL, 0, m)
        if sc > alpha:
            alpha = sc
    _dl_store(tt, idx, key, best, best, depth, best_move, gen)
    return best_move


@njit(cache=True, _nrt=False)
def _ab_iterate(legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic,
                order_scores, immediate_win, nonlosing_moves, move_count,
                SL, NA, MAXP, F, tt, ctr, Wk, max_depth, remaining, leaf_mode, n_roll, gen,
                all_values, vals, flags, pv, info):
    """Iterative deepening from ``F[0]``: depths 1..``max_depth`` until a budget runs out, a
    score is proven or the tree ends (``remaining`` plies).  The last FINISHED iteration is left
    in ``vals``/``flags``/``pv`` and ``info = [depth, best move, pv length]`` (depth 0: none)."""
    PVL = SL + 2 * NA
    info[0] = 0
    info[1] = -1
    info[2] = 0
    for d in range(1, max_depth + 1):
        best = _ab_root(legal_actions, play, is_terminal, returns0, to_play, hash_key, heuristic,
                        order_scores, immediate_win, nonlosing_moves, move_count,
                        SL, NA, MAXP, F, tt, ctr, Wk, d, leaf_mode, n_roll, gen, all_values,
                        Wk[8], Wk[9])
        if ctr[ABORT] != 0:
            break
        for a in range(NA):
            vals[a] = Wk[8, a]
            flags[a] = Wk[9, a]
        n = F[0, PVL]
        for j in range(n):
            pv[j] = F[0, PVL + 1 + j]
        info[0] = d
        info[1] = best
        info[2] = n
        sc = vals[best]
        if sc >= WIN or sc <= -WIN or d >= remaining:
            break


# ---------------------------------------------------------------- per-game cached entry points
@njit(cache=True)
def tictactoe_ab_iterate(F, tt, ctr, Wk, max_depth, remaining, leaf_mode, n_roll, gen,
                         all_values, vals, flags, pv, info):
    return _ab_iterate(_ttt.legal_actions, _ttt.play, _ttt.is_terminal, _ttt.returns0, _ttt.to_play,
                       _ttt.hash_key, _ttt.heuristic, _ttt.order_scores,
                       _ttt.immediate_win, _ttt.nonlosing_moves, _ttt.move_count,
                       _ttt.STATE_LEN, _ttt.NUM_ACTIONS, _ttt.MAX_PLIES, F, tt, ctr, Wk, max_depth,
                       remaining, leaf_mode, n_roll, gen, all_values, vals, flags, pv, info)


@njit(cache=True)
def tictactoe_solve(F, tt, ctr, Wk, out):
    return _solve_root(_ttt.play, _ttt.hash_key, _ttt.immediate_win, _ttt.nonlosing_moves,
                       _ttt.order_scores, _ttt.move_count, _ttt.STATE_LEN, _ttt.NUM_ACTIONS,
                       _ttt.MAX_PLIES, F, tt, ctr, Wk, out)


@njit(cache=True)
def tictactoe_solve_pv(F, tt, ctr, Wk, score, pv):
    return _solve_pv(_ttt.play, _ttt.is_terminal, _ttt.hash_key, _ttt.immediate_win,
                     _ttt.nonlosing_moves, _ttt.order_scores, _ttt.move_count, _ttt.legal_actions,
                     _ttt.STATE_LEN, _ttt.NUM_ACTIONS, _ttt.MAX_PLIES, F, tt, ctr, Wk, score, pv)


@njit(cache=True)
def connect4_ab_iterate(F, tt, ctr, Wk, max_depth, remaining, leaf_mode, n_roll, gen,
                        all_values, vals, flags, pv, info):
    return _ab_iterate(_c4.legal_actions, _c4.play, _c4.is_terminal, _c4.returns0, _c4.to_play,
                       _c4.hash_key, _c4.heuristic, _c4.order_scores,
                       _c4.immediate_win, _c4.nonlosing_moves, _c4.move_count,
                       _c4.STATE_LEN, _c4.NUM_ACTIONS, _c4.MAX_PLIES, F, tt, ctr, Wk, max_depth,
                       remaining, leaf_mode, n_roll, gen, all_values, vals, flags, pv, info)


@njit(cache=True)
def connect4_solve(F, tt, ctr, Wk, out):
    return _solve_root(_c4.play, _c4.hash_key, _c4.immediate_win, _c4.nonlosing_moves,
                       _c4.order_scores, _c4.move_count, _c4.STATE_LEN, _c4.NUM_ACTIONS,
                       _c4.MAX_PLIES, F, tt, ctr, Wk, out)


@njit(cache=True)
def connect4_solve_pv(F, tt, ctr, Wk, score, pv):
    return _solve_pv(_c4.play, _c4.is_terminal, _c4.hash_key, _c4.immediate_win,
                     _c4.nonlosing_moves, _c4.order_scores, _c4.move_count, _c4.legal_actions,
                     _c4.STATE_LEN, _c4.NUM_ACTIONS, _c4.MAX_PLIES, F, tt, ctr, Wk, score, pv)


# name -> (ab_iterate, solve, solve_pv)
ENTRY_POINTS = {
    "tictactoe": (tictactoe_ab_iterate, tictactoe_solve, tictactoe_solve_pv),
    "connect4": (connect4_ab_iterate, connect4_solve, connect4_solve_pv),
}
