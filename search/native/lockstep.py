"""PUCT over many native game trees in lockstep, one evaluator call for the leaves of all of them.

AlphaZero-style search (Silver et al. 2018) whose leaf evaluator is expensive and batched (a
network): each step selects up to ``leaves_per_tree`` leaves in every unfinished tree (numba,
virtual loss, the same ``<game>_select`` / ``<game>_backup`` entries as ``search.mcts``), hands all of
them to ``evaluate`` in one call, and backs the answers up tree by tree.  One tree is an agent's
move search (``neural-mcts``); many trees are self-play games advancing together, so one network
call serves every game.

``evaluate(states)`` takes the leaves' state arrays (``int64[n, STATE_LEN]``) and returns
``(priors, values)``: ``float64[n, A]`` priors over the game's actions (entries of illegal actions
are ignored; a negative entry prunes a legal action) and ``float64[n]`` values in [-1, 1] for the
player to move at each leaf.  Terminal leaves are scored by the rules, never asked.

>>> import numpy as np
>>> from plyground import games
>>> g = games.make("tictactoe")
>>> uniform = lambda s: (np.ones((len(s), 9)), np.zeros(len(s)))
>>> root = games.play_moves(g, "0 4 1 8").array       # x: 0 1, o: 4 8; x completes the top row
>>> LockstepPUCT(g, uniform, sims=200, seed=1).search([root])[0].best_action
2
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from plyground.search.native.mcts import ENTRIES, META_MAXDEPTH, ROOT_SOLVED, NativeTree, make_tables, seed_numba

Evaluator = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]


@dataclass
class TreeResult:
    """One tree's answer: root visits and values per action (the root mover's view), the most
    visited action, the root value, whether the root was proven."""

    best_action: int
    visits: dict[int, int]
    action_values: dict[int, float]
    value: float
    exact: bool
    sims: int
    depth: int
    extra: dict = field(default_factory=dict)

    def visit_array(self, num_actions: int) -> np.ndarray:
        v = np.zeros(num_actions)
        for a, n in self.visits.items():
            v[a] = n
        return v


class LockstepPUCT:
    """PUCT on native states with a batched evaluator; ``search(roots)`` searches every root.

    ``sims`` simulations per tree; ``c`` the PUCT constant; ``leaves_per_tree`` leaves selected per
    tree per evaluator call (under virtual loss ``virtual_loss``); ``dirichlet_alpha`` /
    ``dirichlet_frac`` root noise (self-play exploration; None: none); ``solver``: MCTS-Solver
    (proven wins and losses propagate; a proven root stops its tree).
    """

    def __init__(self, game, evaluate: Evaluator, *, sims: int = 200, c: float = 1.5, leaves_per_tree: int = 8,
                 virtual_loss: float = 1.0, dirichlet_alpha: float | None = None, dirichlet_frac: float = 0.25,
                 solver: bool = True, seed: int | None = None) -> None:
        if game.name not in ENTRIES:
            raise KeyError(f"no native MCTS for {game.name!r}; native games: {', '.join(sorted(ENTRIES))}")
        for name, v, lo in (("sims", sims, 1), ("leaves_per_tree", leaves_per_tree, 1)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise ValueError(f"LockstepPUCT {name} must be an integer >= {lo}; got {v!r}")
        if not 0.0 <= dirichlet_frac <= 1.0:
            raise ValueError(f"LockstepPUCT dirichlet_frac must be in [0, 1]; got {dirichlet_frac!r}")
        self.game = game
        self.kernel = game.kernel
        self.evaluate = evaluate
        self.sims, self.c, self.leaves = int(sims), float(c), int(leaves_per_tree)
        self.vl = float(virtual_loss)
        self.alpha, self.frac = dirichlet_alpha, float(dirichlet_frac)
        self.solver = bool(solver)
        self.rng = np.random.default_rng(seed)
        if seed is not None:
            seed_numba(int(seed) & 0x7FFFFFFF)
        _, self.select, self.backup = ENTRIES[game.name]
        self.tables = make_tables()
        self.evaluations = 0      # leaves sent to the evaluator, over all searches
        self.eval_seconds = 0.0   # time inside the evaluator

    def search(self, roots: list[np.ndarray]) -> list[TreeResult]:
        """Search from every root (native state arrays, none terminal); one result per root."""
        k = self.kernel
        A, L, D = k.NUM_ACTIONS, k.STATE_LEN, k.MAX_PLIES + 2
        G, B = len(roots), self.leaves
        if G == 0:
            return []
        sims = self.sims
        cap = sims * A + 2 * A + 1   # eager expansion: at most A children per simulation
        trees = [NativeTree(cap) for _ in range(G)]
        pending = [np.zeros(cap, dtype=np.int8) for _ in range(G)]
        root_arrs = [np.ascontiguousarray(r, dtype=np.int64) for r in roots]
        leaf_nodes = np.empty(G * B, dtype=np.int64)
        leaf_states = np.empty((G * B, L), dtype=np.int64)
        leaf_paths = np.empty((G * B, D), dtype=np.int64)
        leaf_depth = np.empty(G * B, dtype=np.int64)
        done = np.zeros(G, dtype=np.int64)
        finished = np.zeros(G, dtype=bool)
        noised = np.zeros(G, dtype=bool) if self.alpha is not None else np.ones(G, dtype=bool)
        t0 = time.perf_counter()
        while not finished.all():
            spans = []
            off = 0
            for g in np.flatnonzero(~finished):
                tree = trees[g]
                remaining = sims - int(done[g])
                want = min(B, remaining) if noised[g] else 1   # the root alone first, then its noise
                sl = slice(off, off + want)
                nl, ne, status = self.select(tree.arrays(), tree.meta, root_arrs[g], want, remaining, self.c, True,
                                             self.solver, self.tables, self.vl, pending[g], leaf_nodes[sl],
                                             leaf_states[sl], leaf_paths[sl], leaf_depth[sl])
                done[g] += ne
                if nl:
                    spans.append((g, off, nl))
                    off += nl
                if status == ROOT_SOLVED or (nl == 0 and (ne == 0 or done[g] >= sims)):
                    finished[g] = True
            if off:
                te = time.perf_counter()
                priors, values = self.evaluate(leaf_states[:off])
                self.eval_seconds += time.perf_counter() - te
                self.evaluations += off
                priors = np.ascontiguousarray(priors, dtype=np.float64)
                values = np.ascontiguousarray(values, dtype=np.float64)
                for g, o, nl in spans:
                    tree = trees[g]
                    sl = slice(o, o + nl)
                    self.backup(tree.arrays(), tree.meta, nl, leaf_nodes[sl], leaf_states[sl], leaf_paths[sl],
                                leaf_depth[sl], priors[sl], True, values[sl], 0, 1, True, self.vl, self.tables,
                                pending[g])
                    done[g] += nl
                    if not noised[g] and tree.fc[0] >= 0:
                        self._noise(tree)
                        noised[g] = True
                    if done[g] >= sims:
                        finished[g] = True
        seconds = time.perf_counter() - t0
        return [self._result(t, int(done[g]), seconds) for g, t in enumerate(trees)]

    def _noise(self, tree: NativeTree) -> None:
        ch = tree.children(0)
        if len(ch) == 0:
            return
        clean = tree.prior[ch.start:ch.stop]
        p = (1.0 - self.frac) * clean + self.frac * self.rng.dirichlet([self.alpha] * len(clean))
        tree.prior[ch.start:ch.stop] = p
        tree.x[ch.start:ch.stop] = p / (1.0 + tree.vis[ch.start:ch.stop])

    def _result(self, tree: NativeTree, sims: int, seconds: float) -> TreeResult:
        visits, values, value, exact = tree.root_stats(self.solver)
        best = int(tree.act[tree.best_child(0)]) if visits else -1
        return TreeResult(best_action=best, visits=visits, action_values=values, value=value, exact=exact, sims=sims,
                          depth=int(tree.meta[META_MAXDEPTH]), extra={"tree_nodes": tree.used, "seconds": seconds})
