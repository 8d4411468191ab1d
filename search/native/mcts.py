"""Numba MCTS for native games: one generic implementation over a game kernel's jitted functions.

The tree lives in preallocated struct-of-arrays (``NativeTree``); a node's children occupy one
contiguous block (``fc[node] .. fc[node] + nch[node] - 1``), all created at once when the node is
expanded.  Per node:

- ``act``      the action that leads to the node from its parent;
- ``vis``      visits, ``wsum`` summed values from the point of view of the player who moved
  INTO the node (the chooser at its parent);
- ``q``, ``x`` the selection terms, kept up to date on every backup so that selection is one
  fused multiply-add per child: ``score = q + k * x`` with ``k`` computed once per node
  (UCT: ``q = W/N``, ``x = 1/sqrt(N)``, ``k = c*sqrt(ln N_parent)``; PUCT: ``x = P/(1+N)``,
  ``k = c*sqrt(N_parent)``).  An unvisited UCT child has ``q = UNVISITED_Q`` (infinite urgency,
  as OpenSpiel), a proven child ``q = +-PROVEN_Q`` (MCTS-Solver);
- ``prior``    the PUCT prior, ``solved`` the proven value (-1/0/+1 for the mover into the node,
  ``UNSOLVED`` otherwise), ``partial`` set when a proposer pruned some legal moves (then a proven
  loss of every child proves nothing).

Entry points, each a few-line cached wrapper per game that passes the kernel functions to the
generic engine (``_run``, ``_select_batch``, ``_backup_batch``): ``<game>_run`` does whole
simulations inside numba (random rollouts or the kernel heuristic at the leaves);
``<game>_select`` / ``<game>_backup`` split a batch around an evaluator in Python (virtual loss).
The driver is ``plyground.search.mcts``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from plyground.games.native import connect4 as _c4
from plyground.games.native import tictactoe as _ttt
from plyground.search.native.states import load_state, store_state

UNSOLVED = 2
UNVISITED_Q = 1e12   # q of an unvisited UCT child: tried before any visited one
PROVEN_Q = 1e9       # |q| of a proven child: a proven loss is never chosen while others remain
TABLE_SIZE = 8192    # lookup tables for 1/sqrt(n), sqrt(ln n) and sqrt(n) below this count
INITIAL_CAP = 1 << 20  # nodes preallocated at most before the tree has to grow (about 50 MB)
MAX_CAP = (1 << 31) - 1  # node indices are int32

# statuses returned by the engines
DONE, NEED_SPACE, ROOT_SOLVED = 0, 1, 2
# leaf evaluation modes
VALUE_GIVEN, VALUE_ROLLOUT, VALUE_HEURISTIC = 0, 1, 2
# meta slots
META_USED, META_MAXDEPTH = 0, 1
META_LEN = 4


def make_tables() -> np.ndarray:
    """Rows: 1/sqrt(n), sqrt(ln n), sqrt(n) for n < TABLE_SIZE (0 where undefined)."""
    n = np.arange(TABLE_SIZE, dtype=np.float64)
    t = np.zeros((3, TABLE_SIZE), dtype=np.float64)
    t[0, 1:] = 1.0 / np.sqrt(n[1:])
    t[1, 1:] = np.sqrt(np.log(n[1:]))
    t[2] = np.sqrt(n)
    return t


class NativeTree:
    """The tree's arrays (struct-of-arrays, preallocated ``capacity`` nodes; root is node 0)."""

    FIELDS = ("fc", "nch", "act", "vis", "wsum", "q", "x", "prior", "solved", "partial")
    DTYPES = (np.int32, np.int32, np.int32, np.int32, np.float64, np.float64, np.float64, np.float64,
              np.int8, np.int8)

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        for name, dt in zip(self.FIELDS, self.DTYPES):
            setattr(self, name, np.empty(self.capacity, dtype=dt))
        self.meta = np.zeros(META_LEN, dtype=np.int64)
        self.init_root()

    def init_root(self) -> None:
        self.fc[0] = -1
        self.nch[0] = 0
        self.act[0] = -1
        self.vis[0] = 0
        self.wsum[0] = 0.0
        self.q[0] = 0.0
        self.x[0] = 0.0
        self.prior[0] = 1.0
        self.solved[0] = UNSOLVED
        self.partial[0] = 0
        self.meta[:] = 0
        self.meta[META_USED] = 1

    @property
    def used(self) -> int:
        return int(self.meta[META_USED])

    def arrays(self) -> tuple:
        return tuple(getattr(self, f) for f in self.FIELDS)

    def grow(self, capacity: int) -> None:
        """Enlarge to ``capacity`` nodes, keeping the used part."""
        used = self.used
        for name in self.FIELDS:
            old = getattr(self, name)
            new = np.empty(capacity, dtype=old.dtype)
            new[:used] = old[:used]
            setattr(self, name, new)
        self.capacity = int(capacity)

    def children(self, node: int = 0) -> range:
        f = int(self.fc[node])
        return range(f, f + int(self.nch[node])) if f >= 0 else range(0)

    def best_child(self, node: int = 0) -> int:
        """The child to play: a proven win (most visited), else the most visited child not proven
        lost (ties: the higher mean value, then the first)."""
        kids = list(self.children(node))
        solved, vis, wsum = self.solved, self.vis, self.wsum
        wins = [i for i in kids if solved[i] == 1]
        if wins:
            return max(wins, key=lambda i: (vis[i], -i))
        alive = [i for i in kids if solved[i] != -1] or kids
        return max(alive, key=lambda i: (vis[i], wsum[i] / vis[i] if vis[i] else -2.0, -i))

    def root_stats(self, solver: bool) -> tuple[dict[int, int], dict[int, float], float, bool]:
        """The root children's visits and values (proven ones exact), the root value for the player
        to move, and whether the solver proved it."""
        visits, values = {}, {}
        for i in self.children(0):
            a = int(self.act[i])
            visits[a] = int(self.vis[i])
            sv = int(self.solved[i])
            values[a] = float(sv) if sv != UNSOLVED else (float(self.wsum[i] / self.vis[i]) if self.vis[i] else 0.0)
        exact = bool(solver) and int(self.solved[0]) != UNSOLVED
        if exact:
            value = -float(self.solved[0])
        elif self.vis[0]:
            value = -float(self.wsum[0] / self.vis[0])
        else:
            value = 0.0
        return visits, values, value, exact

    def reroot(self, new_root: int) -> None:
        """Keep only the subtree under ``new_root``, compacted so that it becomes node 0."""
        new = tuple(np.empty_like(a) for a in self.arrays())
        queue = np.empty(2 * self.used + 2, dtype=np.int64)
        used = _compact(self.arrays(), new, new_root, queue)
        for name, arr in zip(self.FIELDS, new):
            setattr(self, name, arr)
        self.act[0] = -1
        self.meta[META_USED] = used
        self.meta[META_MAXDEPTH] = 0


# ---------------------------------------------------------------- small inlined pieces
@njit(cache=True, inline="always")
def _explore_scale(n, c, puct, tables):
    if puct:
        return c * (tables[2, n] if n < TABLE_SIZE else math.sqrt(n))
    return c * (tables[1, n] if n < TABLE_SIZE else math.sqrt(math.log(n)))


@njit(cache=True, inline="always")
def _select_child(node, fc, nch, q, x, k):
    f = fc[node]
    best = f
    bs = q[f] + k * x[f]
    for i in range(f + 1, f + nch[node]):
        sc = q[i] + k * x[i]
        if sc > bs:
            bs = sc
            best = i
    return best


@njit(cache=True, inline="always")
def _refresh(i, vis, wsum, q, x, prior, solved, puct, tables):
    """Recompute the selection terms of node ``i`` after its statistics changed."""
    n = vis[i]
    sv = solved[i]
    if sv != UNSOLVED:
        q[i] = PROVEN_Q * sv
    elif n > 0:
        q[i] = wsum[i] / n
    else:
        q[i] = 0.0 if puct else UNVISITED_Q
    if puct:
        x[i] = prior[i] / (1.0 + n)
    elif n < TABLE_SIZE:
        x[i] = tables[0, n]
    else:
        x[i] = 1.0 / math.sqrt(n)


@njit(cache=True, inline="always")
def _expand(legal_actions, s, node, used, acts, tree, puct, priors_row, use_priors):
    """Create all children of ``node`` in one block at ``used``; return the new ``used``."""
    fc, nch, act, vis, wsum, q, x, prior, solved, partial = tree
    n = legal_actions(s, acts)
    m = 0
    total = 0.0
    for j in range(n):
        a = acts[j]
        p = 1.0
        if use_priors:
            p = priors_row[a]
            if p < 0.0:          # not proposed: pruned
                continue
        i = used + m
        act[i] = a
        fc[i] = -1
        nch[i] = 0
        vis[i] = 0
        wsum[i] = 0.0
        solved[i] = UNSOLVED
        partial[i] = 0
        prior[i] = p
        total += p
        m += 1
    if m < n:
        partial[node] = 1
    for i in range(used, used + m):
        prior[i] = prior[i] / total if total > 0.0 else 1.0 / m
        q[i] = 0.0 if puct else UNVISITED_Q
        x[i] = prior[i] if puct else 0.0
    fc[node] = used
    nch[node] = m
    return used + m


@njit(cache=True, inline="always")
def _backup(path, d, u, inc, vl, tree, puct, tables):
    """Add ``u`` (for the mover into the leaf ``path[d]``), alternating sign up to the root."""
    fc, nch, act, vis, wsum, q, x, prior, solved, partial = tree
    for j in range(d, -1, -1):
        i = path[j]
        vis[i] += inc
        wsum[i] += u + vl
        _refresh(i, vis, wsum, q, x, prior, solved, puct, tables)
        u = -u


@njit(cache=True)
def _propagate(path, d, tree, puct, tables):
    """MCTS-Solver: push a proof at ``path[d]`` up while parents become proven."""
    fc, nch, act, vis, wsum, q, x, prior, solved, partial = tree
    j = d
    while j > 0:
        ch = path[j]
        par = path[j - 1]
        if solved[ch] == UNSOLVED or solved[par] != UNSOLVED:
            return
        if solved[ch] == 1:          # a winning move for the player at the parent
            solved[par] = -1
        else:
            if partial[par]:
                return
            best = -2
            f = fc[par]
            for i in range(f, f + nch[par]):
                t = solved[i]
                if t == UNSOLVED:
                    return
                if t > best:
                    best = t
            solved[par] = -best
        _refresh(par, vis, wsum, q, x, prior, solved, puct, tables)
        j -= 1


@njit(cache=True, inline="always")
def _descend(play, to_play, is_terminal, returns0, tree, root, path, c, puct, solver, tables):
    """Walk from the root position to an unexpanded, terminal or proven node; return
    (depth, exact?, value for the mover into that node when exact, that node's position)."""
    fc, nch, act, vis, wsum, q, x, prior, solved, partial = tree
    s = root
    node = 0
    d = 0
    path[0] = 0
    while fc[node] >= 0:
        k = _explore_scale(vis[node], c, puct, tables)
        node = _select_child(node, fc, nch, q, x, k)
        mover = to_play(s)
        s = play(s, act[node])
        d += 1
        path[d] = node
        if is_terminal(s):
            r = returns0(s)
            u = r if mover == 0 else -r
            if solver and solved[node] == UNSOLVED:
                solved[node] = np.int8(1 if u > 0 else (-1 if u < 0 else 0))
            return d, True, u, s
        if solver and solved[node] != UNSOLVED:
            return d, True, float(solved[node]), s
    return d, False, 0.0, s


@njit(cache=True, inline="always")
def _leaf_value(to_play, random_playout, heuristic, s, value_mode, rollouts):
    """Value of a non-terminal leaf position ``s`` for the player who moved into it."""
    me = to_play(s)
    if value_mode == VALUE_HEURISTIC:
        return -heuristic(s)
    tot = 0.0
    for _ in range(rollouts):
        tot += random_playout(s)
    v0 = tot / rollouts
    return -v0 if me == 0 else v0


# ---------------------------------------------------------------- the generic engines
@njit(cache=True)
def _run(legal_actions, play, to_play, is_terminal, returns0, random_playout, heuristic,
         tree, meta, root, n_sims, c, puct, solver, value_mode, rollouts, tables, path, dummy_priors):
    """Up to ``n_sims`` whole simulations (select, expand, rollout/heuristic, backup) in numba.

    Returns (simulations done, status); stops early with NEED_SPACE (nothing half done) when a
    node cannot be expanded, or with ROOT_SOLVED.  Nodes are expanded lazily (OpenSpiel's
    scheme): a leaf is evaluated on its first visit and expanded, all children at once, when a
    simulation passes through it again, so the tree holds about one node per simulation.

    The loop body is written out by hand: numba's inlining of helpers taking arrays adds
    reference-count updates (atomic operations) per call, which cost more than the search.
    """
    fc, nch, act, vis, wsum, q, x, prior, solved, partial = tree
    cap = fc.shape[0]
    A = dummy_priors.shape[0]
    acts = np.empty(A, dtype=np.int64)
    isq = tables[0]
    slog = tables[1]
    sq = tables[2]
    used = meta[META_USED]
    maxd = meta[META_MAXDEPTH]
    unvisited_q = 0.0 if puct else UNVISITED_Q
    done = 0
    status = DONE
    while done < n_sims:
        if solver and solved[0] != UNSOLVED:
            status = ROOT_SOLVED
            break
        # ---- selection (with lazy expansion)
        s = root
        node = 0
        d = 0
        path[0] = 0
        exact = False
        u = 0.0
        full = False
        while True:
            f = fc[node]
            if f < 0:
                if vis[node] == 0:
                    break
                n = legal_actions(s, acts)
                if used + n > cap:
                    full = True
                    break
                p = 1.0 / n
                for j in range(n):
                    i = used + j
                    act[i] = acts[j]
                    fc[i] = -1
                    nch[i] = 0
                    vis[i] = 0
                    wsum[i] = 0.0
                    solved[i] = UNSOLVED
                    partial[i] = 0
                    prior[i] = p
                    q[i] = unvisited_q
                    x[i] = p if puct else 0.0
                fc[node] = used
                nch[node] = n
                f = used
                used += n
            nv = vis[node]
            if puct:
                k = c * (sq[nv] if nv < TABLE_SIZE else math.sqrt(nv))
            else:
                k = c * (slog[nv] if nv < TABLE_SIZE else math.sqrt(math.log(nv)))
            node = _select_child(node, fc, nch, q, x, k)
            mover = to_play(s)
            s = play(s, act[node])
            d += 1
            path[d] = node
            if is_terminal(s):
                r = returns0(s)
                u = r if mover == 0 else -r
                exact = True
                if solver and solved[node] == UNSOLVED:
                    solved[node] = np.int8(1 if u > 0 else (-1 if u < 0 else 0))
                break
            if solver and solved[node] != UNSOLVED:
                u = float(solved[node])
                exact = True
                break
        if full:
            status = NEED_SPACE
            break
        if d > maxd:
            maxd = d
        # ---- evaluation
        if not exact:
            me = to_play(s)
            if value_mode == VALUE_HEURISTIC:
                u = -heuristic(s)
            elif value_mode == VALUE_ROLLOUT:
                tot = 0.0
                for _ in range(rollouts):
                    tot += random_playout(s)
                u = tot / rollouts
                if me == 0:
                    u = -u
            else:
                u = 0.0
        # ---- backup
        for j in range(d, -1, -1):
            i = path[j]
            n = vis[i] + 1
            vis[i] = n
            w = wsum[i] + u
            wsum[i] = w
            sv = solved[i]
            if sv != UNSOLVED:
                q[i] = PROVEN_Q * sv
            else:
                q[i] = w / n
            if puct:
                x[i] = prior[i] / (1.0 + n)
            elif n < TABLE_SIZE:
                x[i] = isq[n]
            else:
                x[i] = 1.0 / math.sqrt(n)
            u = -u
        if exact and solver:
            meta[META_USED] = used
            _propagate(path, d, tree, puct, tables)
        done += 1
    meta[META_USED] = used
    meta[META_MAXDEPTH] = maxd
    return done, status


@njit(cache=True)
def _select_batch(play, to_play, is_terminal, returns0, tree, meta, root, max_leaves, max_sims, c, puct,
                  solver, tables, vl, pending, leaf_nodes, leaf_states, leaf_paths, leaf_depth):
    """Select up to ``max_leaves`` distinct unexpanded leaves under virtual loss.

    Terminal and proven leaves met on the way are backed up at once (they count as simulations).
    Stops at the first collision with a pending leaf.  Returns (leaves, exact simulations, status).
    """
    fc, nch, act, vis, wsum, q, x, prior, solved, partial = tree
    n_leaves = 0
    n_exact = 0
    maxd = meta[META_MAXDEPTH]
    status = DONE
    while n_leaves < max_leaves and n_leaves + n_exact < max_sims:
        if solver and solved[0] != UNSOLVED:
            status = ROOT_SOLVED
            break
        path = leaf_paths[n_leaves]
        d, exact, u, s = _descend(play, to_play, is_terminal, returns0, tree, root, path, c, puct, solver,
                                  tables)
        if d > maxd:
            maxd = d
        if exact:
            _backup(path, d, u, 1, 0.0, tree, puct, tables)
            if solver:
                _propagate(path, d, tree, puct, tables)
            n_exact += 1
            continue
        node = path[d]
        if pending[node]:
            break
        pending[node] = 1
        leaf_nodes[n_leaves] = node
        leaf_depth[n_leaves] = d
        store_state(leaf_states, n_leaves, s)
        # virtual loss: every node on the path looks like a loss for its chooser
        for j in range(d + 1):
            i = path[j]
            vis[i] += 1
            wsum[i] -= vl
            _refresh(i, vis, wsum, q, x, prior, solved, puct, tables)
        n_leaves += 1
    meta[META_MAXDEPTH] = maxd
    return n_leaves, n_exact, status


@njit(cache=True)
def _backup_batch(legal_actions, to_play, random_playout, heuristic, like, tree, meta, n_leaves, leaf_nodes,
                  leaf_states, leaf_paths, leaf_depth, priors, use_priors, values, value_mode, rollouts,
                  puct, vl, tables, pending):
    """Expand the selected leaves (priors given or uniform), evaluate them (values given, or
    rollouts / heuristic in numba), undo the virtual loss and back the values up."""
    A = priors.shape[1]
    acts = np.empty(A, dtype=np.int64)
    used = meta[META_USED]
    for b in range(n_leaves):
        node = leaf_nodes[b]
        s = load_state(like, leaf_states, b)
        used = _expand(legal_actions, s, node, used, acts, tree, puct, priors[b], use_priors)
        if value_mode == VALUE_GIVEN:
            u = -values[b]
        else:
            u = _leaf_value(to_play, random_playout, heuristic, s, value_mode, rollouts)
        _backup(leaf_paths[b], leaf_depth[b], u, 0, vl, tree, puct, tables)
        pending[node] = 0
    meta[META_USED] = used
    return used


@njit(cache=True)
def _compact(old, new, r, queue):
    """Copy the subtree under ``r`` of tree ``old`` into ``new`` (breadth first, root at 0)."""
    ofc = old[0]
    nfc = new[0]
    onch = old[1]
    # copy node r to 0
    _copy_node(old, new, r, 0)
    used = 1
    head = 0
    tail = 0
    queue[tail] = r
    queue[tail + 1] = 0
    tail += 2
    while head < tail:
        o = queue[head]
        nn = queue[head + 1]
        head += 2
        f = ofc[o]
        if f < 0:
            nfc[nn] = -1
            continue
        k = onch[o]
        nfc[nn] = used
        for i in range(k):
            _copy_node(old, new, f + i, used + i)
            queue[tail] = f + i
            queue[tail + 1] = used + i
            tail += 2
        used += k
    return used


@njit(cache=True, inline="always")
def _copy_node(old, new, i, j):
    new[0][j] = old[0][i]
    new[1][j] = old[1][i]
    new[2][j] = old[2][i]
    new[3][j] = old[3][i]
    new[4][j] = old[4][i]
    new[5][j] = old[5][i]
    new[6][j] = old[6][i]
    new[7][j] = old[7][i]
    new[8][j] = old[8][i]
    new[9][j] = old[9][i]


@njit(cache=True)
def seed_numba(seed):
    """Seed numba's global RNG (the one the kernels' ``random_playout`` uses)."""
    np.random.seed(seed)


# ---------------------------------------------------------------- per-game cached entry wrappers
# The root arrives as the NativeState's array and becomes a position value here.
@njit(cache=True)
def connect4_run(tree, meta, root, n_sims, c, puct, solver, value_mode, rollouts, tables, path, dummy):
    return _run(_c4.legal_actions, _c4.play, _c4.to_play, _c4.is_terminal, _c4.returns0, _c4.random_playout,
                _c4.heuristic, tree, meta, _c4.as_state(root), n_sims, c, puct, solver, value_mode, rollouts,
                tables, path, dummy)


@njit(cache=True)
def connect4_select(tree, meta, root, max_leaves, max_sims, c, puct, solver, tables, vl, pending,
                    leaf_nodes, leaf_states, leaf_paths, leaf_depth):
    return _select_batch(_c4.play, _c4.to_play, _c4.is_terminal, _c4.returns0, tree, meta, _c4.as_state(root),
                         max_leaves, max_sims, c, puct, solver, tables, vl, pending, leaf_nodes, leaf_states,
                         leaf_paths, leaf_depth)


@njit(cache=True)
def connect4_backup(tree, meta, n_leaves, leaf_nodes, leaf_states, leaf_paths, leaf_depth, priors, use_priors,
                    values, value_mode, rollouts, puct, vl, tables, pending):
    return _backup_batch(_c4.legal_actions, _c4.to_play, _c4.random_playout, _c4.heuristic, _c4.new_state(),
                         tree, meta, n_leaves, leaf_nodes, leaf_states, leaf_paths, leaf_depth, priors, use_priors,
                         values, value_mode, rollouts, puct, vl, tables, pending)


@njit(cache=True)
def tictactoe_run(tree, meta, root, n_sims, c, puct, solver, value_mode, rollouts, tables, path, dummy):
    return _run(_ttt.legal_actions, _ttt.play, _ttt.to_play, _ttt.is_terminal, _ttt.returns0,
                _ttt.random_playout, _ttt.heuristic, tree, meta, _ttt.as_state(root), n_sims, c, puct, solver,
                value_mode, rollouts, tables, path, dummy)


@njit(cache=True)
def tictactoe_select(tree, meta, root, max_leaves, max_sims, c, puct, solver, tables, vl, pending,
                     leaf_nodes, leaf_states, leaf_paths, leaf_depth):
    return _select_batch(_ttt.play, _ttt.to_play, _ttt.is_terminal, _ttt.returns0, tree, meta,
                         _ttt.as_state(root), max_leaves, max_sims, c, puct, solver, tables, vl, pending,
                         leaf_nodes, leaf_states, leaf_paths, leaf_depth)


@njit(cache=True)
def tictactoe_backup(tree, meta, n_leaves, leaf_nodes, leaf_states, leaf_paths, leaf_depth, priors, use_priors,
                     values, value_mode, rollouts, puct, vl, tables, pending):
    return _backup_batch(_ttt.legal_actions, _ttt.to_play, _ttt.random_playout, _ttt.heuristic,
                         _ttt.new_state(), tree, meta, n_leaves, leaf_nodes, leaf_states, leaf_paths, leaf_depth,
                         priors, use_priors, values, value_mode, rollouts, puct, vl, tables, pending)


# game name -> (run, select, backup)
ENTRIES = {
    "connect4": (connect4_run, connect4_select, connect4_backup),
    "tictactoe": (tictactoe_run, tictactoe_select, tictactoe_backup),
}


# ---------------------------------------------------------------- the Python driver
class NativeMCTS:
    """Drives the numba engine for one native game; keeps the tree between searches (reuse)."""

    def __init__(self, game) -> None:
        if game.name not in ENTRIES:
            raise KeyError(game.name)
        self.game = game
        self.kernel = game.kernel
        self.run, self.select, self.backup = ENTRIES[game.name]
        self.tables = make_tables()
        self.reset()

    def reset(self) -> None:
        self.tree: NativeTree | None = None
        self.root_history: list[int] | None = None
        self.key: tuple | None = None
        self.clean_root_priors: np.ndarray | None = None

    # ------------------------------------------------------------ capacity
    def _ensure(self, free: int, max_nodes: int | None) -> bool:
        """Make room for ``free`` more nodes (grow, up to ``max_nodes``); False if impossible."""
        tree = self.tree
        if tree.capacity - tree.used >= free:
            return True
        limit = min(max_nodes, MAX_CAP) if max_nodes is not None else MAX_CAP
        cap = min(max(2 * tree.capacity, tree.used + free), limit)
        if cap - tree.used < free:
            return False
        tree.grow(cap)
        return True

    def _reuse(self, history: list[int], key: tuple, allowed: bool, capacity: int) -> int:
        old = self.root_history
        tree = self.tree
        if (not allowed or tree is None or old is None or key != self.key or len(history) < len(old)
                or history[:len(old)] != old):
            self.tree = NativeTree(capacity)
            self.clean_root_priors = None
            return 0
        node = 0
        for a in history[len(old):]:
            nxt = next((i for i in tree.children(node) if tree.act[i] == a), None)
            if nxt is None:
                self.tree = NativeTree(capacity)
                self.clean_root_priors = None
                return 0
            node = nxt
        if node != 0:
            tree.reroot(node)
            self.clean_root_priors = None
        elif self.clean_root_priors is not None:     # undo the previous search's root noise
            ch = tree.children(0)
            tree.prior[ch.start:ch.stop] = self.clean_root_priors
            tree.x[ch.start:ch.stop] = self.clean_root_priors / (1.0 + tree.vis[ch.start:ch.stop])
            self.clean_root_priors = None
        tree.meta[META_MAXDEPTH] = 0
        return int(tree.vis[0])

    def _apply_noise(self, cfg, rng) -> None:
        tree = self.tree
        ch = tree.children(0)
        clean = tree.prior[ch.start:ch.stop].copy()
        self.clean_root_priors = clean
        eta = rng.dirichlet([cfg.dirichlet_alpha] * len(clean))
        p = (1.0 - cfg.dirichlet_frac) * clean + cfg.dirichlet_frac * eta
        tree.prior[ch.start:ch.stop] = p
        tree.x[ch.start:ch.stop] = p / (1.0 + tree.vis[ch.start:ch.stop])

    # ------------------------------------------------------------ the search
    def search(self, cfg, state, seed: int | None, rng):
        """One search from native ``state`` with the options of ``cfg`` (an ``MCTS``)."""
        import time

        from plyground.search.hooks import HeuristicValue, RolloutValue, UniformProposer

        t0 = time.perf_counter()
        k = self.kernel
        A = k.NUM_ACTIONS
        history = [int(a) for a in state.history()]
        proposer, value = cfg.proposer, cfg.value
        use_proposer = proposer is not None and type(proposer) is not UniformProposer
        if value is None:
            value_mode, rollouts = VALUE_ROLLOUT, int(cfg.rollouts)
        elif type(value) is RolloutValue:
            value_mode, rollouts = VALUE_ROLLOUT, int(value.n)
        elif type(value) is HeuristicValue:
            value_mode, rollouts = VALUE_HEURISTIC, 1
        else:
            value_mode, rollouts = VALUE_GIVEN, 1
        external = use_proposer or value_mode == VALUE_GIVEN or cfg.batch_size > 1
        key = (cfg.variant, bool(cfg.solver), id(proposer) if use_proposer else None, id(cfg.value))
        sims = cfg.sims
        # lazy expansion holds about 1-2 nodes per simulation, eager (batched) expansion about A
        # (capped: a time-limited or huge search grows the arrays by doubling instead)
        est = min((sims if sims is not None else 1 << 16) * (A if external else min(A, 3)), INITIAL_CAP) + 2 * A + 1
        capacity = est if cfg.max_nodes is None else max(1, min(est, cfg.max_nodes))
        reused = self._reuse(history, key, cfg.reuse_tree, capacity)
        self.root_history, self.key = history, key
        if seed is not None:
            seed_numba(seed)

        tree = self.tree
        root = state.array.copy()
        puct = cfg.variant == "puct"
        c = float(cfg.c)
        solver = bool(cfg.solver)
        deadline = None if cfg.time_limit is None else t0 + cfg.time_limit
        noise_pending = puct and cfg.dirichlet_alpha is not None
        path = np.empty(k.MAX_PLIES + 2, dtype=np.int64)
        dummy = np.empty(A, dtype=np.float64)
        done = 0
        batches = 0
        evaluated = 0
        reason = "sims"
        chunk_rate = None  # simulations per second, measured on the first chunk of a timed search

        if external:
            B = int(cfg.batch_size)
            L = k.STATE_LEN
            leaf_nodes = np.empty(B, dtype=np.int64)
            leaf_states = np.empty((B, L), dtype=np.int64)
            leaf_paths = np.empty((B, k.MAX_PLIES + 2), dtype=np.int64)
            leaf_depth = np.empty(B, dtype=np.int64)
            pending = np.zeros(tree.capacity, dtype=np.int8)
            priors = np.full((B, A), -1.0)
            values = np.zeros(B)
            vl = float(cfg.virtual_loss)
            pname = type(proposer).__name__
            vname = type(value).__name__

        while True:
            remaining = (sims - done) if sims is not None else 1 << 62
            if remaining <= 0:
                reason = "sims"
                break
            if solver and tree.solved[0] != UNSOLVED:
                reason = "solved"
                break
            now = time.perf_counter()
            if deadline is not None and now >= deadline and done > 0:   # at least one chunk, however short
                reason = "time"
                break
            if noise_pending and tree.fc[0] >= 0:
                self._apply_noise(cfg, rng)
                noise_pending = False
            if not external:
                chunk = remaining
                if noise_pending:
                    chunk = min(chunk, 2)        # the root is expanded on its second visit
                if deadline is not None:
                    chunk = min(chunk, 64 if chunk_rate is None else max(16, int(chunk_rate * min(0.01, deadline - now))))
                if not self._ensure(A, cfg.max_nodes):
                    reason = "max_nodes"
                    break
                n, status = self.run(tree.arrays(), tree.meta, root, chunk, c, puct, solver, value_mode, rollouts,
                                     self.tables, path, dummy)
                done += n
                if chunk_rate is None and deadline is not None:
                    chunk_rate = n / max(time.perf_counter() - now, 1e-6)
                if status == ROOT_SOLVED:
                    reason = "solved"
                    break
                if status == NEED_SPACE and not self._ensure(A, cfg.max_nodes):
                    reason = "max_nodes"
                    break
                continue
            # ---- batched: select in numba, evaluate in Python (or numba), back up in numba
            want = min(B, remaining)
            if not self._ensure(want * A, cfg.max_nodes):
                want = (tree.capacity - tree.used) // A
                if want <= 0:
                    reason = "max_nodes"
                    break
            if pending.shape[0] != tree.capacity:
                pending = np.zeros(tree.capacity, dtype=np.int8)
            nl, ne, status = self.select(tree.arrays(), tree.meta, root, want, remaining, c, puct, solver,
                                         self.tables, vl, pending, leaf_nodes, leaf_states, leaf_paths, leaf_depth)
            done += ne
            if nl > 0:
                states = None
                if use_proposer or value_mode == VALUE_GIVEN:
                    states = self._leaf_states(state, history, nl, leaf_states, leaf_paths, leaf_depth)
                if use_proposer:
                    self._fill_priors(proposer, pname, states, priors)
                if value_mode == VALUE_GIVEN:
                    from plyground.search.generic_mcts import check_values
                    values[:nl] = check_values(value.evaluate(states), nl, vname)
                self.backup(tree.arrays(), tree.meta, nl, leaf_nodes, leaf_states, leaf_paths, leaf_depth, priors,
                            use_proposer, values, value_mode, rollouts, puct, vl, self.tables, pending)
                done += nl
                batches += 1
                evaluated += nl
            if status == ROOT_SOLVED:
                reason = "solved"
                break
            if nl == 0 and ne == 0:
                break   # nothing selectable: cannot happen on a consistent tree; stop cleanly

        return self._result(cfg, state, t0, done, reused, reason, batches, evaluated)

    def _leaf_states(self, state, history, nl, leaf_states, leaf_paths, leaf_depth) -> list:
        from plyground.games.native.state import NativeState

        act = self.tree.act
        out = []
        for b in range(nl):
            d = int(leaf_depth[b])
            moves = [int(a) for a in act[leaf_paths[b, 1:d + 1]]]
            out.append(NativeState(state.game, leaf_states[b].copy(), history + moves))
        return out

    def _fill_priors(self, proposer, pname, states, priors) -> None:
        from plyground.search.generic_mcts import check_proposal

        proposals = proposer.propose_batch(states)
        if len(proposals) != len(states):
            from plyground.games.errors import PlygroundError
            raise PlygroundError(f"{pname}.propose_batch returned {len(proposals)} answers for {len(states)} states")
        priors[:] = -1.0
        for b, (s, prop) in enumerate(zip(states, proposals)):
            for a, p in check_proposal(self.game.name, s.legal_actions(), prop, pname).items():
                priors[b, a] = p

    # ------------------------------------------------------------ the answer
    def _result(self, cfg, state, t0, done, reused, reason, batches, evaluated):
        import time

        from plyground.search.result import SearchResult

        tree = self.tree
        visits, values, value, root_solved = tree.root_stats(cfg.solver)
        if visits:
            best = int(tree.act[tree.best_child(0)])
        else:
            best = int(state.legal_actions()[0])
        pv = []
        node = 0
        while tree.fc[node] >= 0 and tree.nch[node] > 0:
            node = tree.best_child(node)
            if tree.vis[node] == 0:
                break
            pv.append(int(tree.act[node]))
        return SearchResult(
            best_action=best, value=value, engine="mcts", nodes=int(done), depth=int(tree.meta[META_MAXDEPTH]),
            pv=pv, action_values=values, visits=visits, seconds=time.perf_counter() - t0, exact=bool(root_solved),
            extra={"impl": "numba", "variant": cfg.variant, "root_visits": int(tree.vis[0]),
                   "reused_visits": reused, "tree_nodes": tree.used, "capacity": tree.capacity,
                   "stop_reason": reason, "batches": batches, "evaluated_leaves": evaluated},
        )
