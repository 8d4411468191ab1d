"""MCTS in plain Python over any State with OpenSpiel's method names (OpenSpiel adapter states,
raw pyspiel states, PettingZoo twins, native states of games without a numba entry).

The same algorithm and options as the numba engine (``plyground.search.native.mcts``): UCT or
PUCT selection, MCTS-Solver, Dirichlet root noise, tree reuse, node and time budgets, and leaves
evaluated in batches of ``batch_size`` under virtual loss by the hooks (``ActionProposer`` for the
priors, ``ValueEstimator`` for the values).  The tree is struct-of-arrays in Python lists (numpy
scalar access from Python is slower than list access); a node's children are one contiguous
block, created together when the node is evaluated.

Supported: two-player zero-sum perfect-information games whose turns may come in any order (each
node records the player who moved into it).  Terminal returns are scaled to [-1, 1] by the game's
min/max utility, so a proven win is the scaled maximum, 1.  Chance and simultaneous nodes, and
other player counts, raise ``UnsupportedStateError``; ``plyground.search.mcts`` sends chance,
hidden information, general-sum and n-player games to the information-set engine
(``plyground.search.ismcts``) instead.
"""

from __future__ import annotations

import math
import time

from plyground.games.errors import IllegalActionError, PlygroundError
from plyground.search.hooks import CHANCE_PLAYER, game_of, scaler
from plyground.search.result import SearchResult

UNVISITED_Q = 1e12
PROVEN_Q = 1e9
SIMULTANEOUS_PLAYER = -2


class UnsupportedStateError(PlygroundError):
    """A state the MCTS engines cannot search (chance or simultaneous moves, not two players)."""


def game_key(state) -> str:
    game = game_of(state)
    return f"{type(state).__name__}:{game!s}" if game is not None else type(state).__name__


def check_supported(state) -> None:
    """Raise ``UnsupportedStateError`` unless ``state`` is a two-player turn-based decision node."""
    game = game_of(state)
    n = None
    if game is not None and hasattr(game, "num_players"):
        try:
            n = int(game.num_players())
        except Exception:  # noqa: BLE001 - an adapter without the method in its usual form
            n = None
    if n is not None and n != 2:
        raise UnsupportedStateError(f"MCTS supports two-player zero-sum games; {game} has {n} players")
    if not state.is_terminal():
        _check_player(state, int(state.current_player()))


def _check_player(state, p: int) -> None:
    if p == CHANCE_PLAYER:
        raise UnsupportedStateError(f"MCTS does not search chance nodes (state after {_hist(state)} is one); "
                                    "supported: two-player zero-sum turn-based games")
    if p == SIMULTANEOUS_PLAYER:
        raise UnsupportedStateError(f"MCTS does not search simultaneous-move nodes (state after {_hist(state)})")
    if p not in (0, 1):
        raise UnsupportedStateError(f"MCTS supports two players (0 and 1); current_player() returned {p}")


def _hist(state) -> list:
    try:
        return list(state.history())
    except Exception:  # noqa: BLE001
        return []


def _returns(state) -> tuple[float, float]:
    """The two players' returns of a finished zero-sum game, scaled to [-1, 1]."""
    r = [float(v) for v in state.returns()]
    if len(r) != 2:
        raise UnsupportedStateError(f"MCTS supports two-player games; returns() gave {len(r)} values: {r}")
    if abs(r[0] + r[1]) > 1e-9:
        raise UnsupportedStateError(f"MCTS supports zero-sum games; terminal returns are {r}")
    scale = scaler(game_of(state))
    return scale(r[0]), scale(r[1])


def budget_spent(remaining: int, done: int, deadline: float | None, tree_size: int,
                 max_nodes: int | None) -> str | None:
    """Why a search stops before its next batch ("sims", "time", "max_nodes"), or None to go on.
    The clock is read only once a simulation is done, so every search returns at least one."""
    if remaining <= 0:
        return "sims"
    if deadline is not None and done > 0 and time.perf_counter() >= deadline:
        return "time"
    if max_nodes is not None and tree_size >= max_nodes:
        return "max_nodes"
    return None


def check_proposal(game_name: str, legal: list[int], proposal: dict, who: str) -> dict[int, float]:
    """Validate an ActionProposer's answer against the legal actions; returns {action: prior}."""
    if not isinstance(proposal, dict) or not proposal:
        raise PlygroundError(f"{who} returned {proposal!r}; expected a non-empty dict {{action: probability}} "
                             f"over the legal actions {legal}")
    legal_set = set(legal)
    out = {}
    for a, p in proposal.items():
        try:
            ai = int(a)
        except (TypeError, ValueError):
            raise IllegalActionError(game_name, a, legal, f"proposed by {who}") from None
        if ai not in legal_set:
            raise IllegalActionError(game_name, a, legal, f"proposed by {who}")
        pf = float(p)
        if not math.isfinite(pf) or pf < 0.0:
            raise PlygroundError(f"{who} gave action {ai} the prior {p!r}; priors must be finite and >= 0")
        out[ai] = pf
    return out


def check_values(values, n: int, who: str) -> list[float]:
    """Validate a ValueEstimator's answer: ``n`` finite values in [-1, 1]."""
    vals = [float(v) for v in values]
    if len(vals) != n:
        raise PlygroundError(f"{who}.evaluate returned {len(vals)} values for {n} states")
    for v in vals:
        if not math.isfinite(v) or v < -1.0 - 1e-9 or v > 1.0 + 1e-9:
            raise PlygroundError(f"{who}.evaluate returned {v!r}; values must be finite and in [-1, 1]")
    return vals


class GenericMCTS:
    """The plain-Python engine; one instance keeps one tree (for reuse between moves)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._clear()
        self.root_history: list[int] | None = None
        self.key: tuple | None = None
        self.clean_root_priors: list[float] | None = None

    def _clear(self) -> None:
        self.fc: list[int] = [-1]
        self.nch: list[int] = [0]
        self.act: list[int] = [-1]
        self.vis: list[int] = [0]
        self.wsum: list[float] = [0.0]
        self.prior: list[float] = [1.0]
        self.solved: list[float | None] = [None]
        self.partial: list[bool] = [False]
        self.mover: list[int] = [0]
        self.clean_root_priors = None

    # ------------------------------------------------------------ tree reuse
    def _reuse(self, history: list[int], key: tuple, allowed: bool) -> int:
        old = self.root_history
        if not allowed or old is None or key != self.key or len(history) < len(old) or history[:len(old)] != old:
            self._clear()
            return 0
        node = 0
        for a in history[len(old):]:
            f, n = self.fc[node], self.nch[node]
            nxt = next((i for i in range(f, f + n) if self.act[i] == a), None) if f >= 0 else None
            if nxt is None:
                self._clear()
                return 0
            node = nxt
        if node != 0:
            self._reroot(node)
            self.clean_root_priors = None
        elif self.clean_root_priors is not None:      # undo the previous search's root noise
            f = self.fc[0]
            self.prior[f:f + len(self.clean_root_priors)] = self.clean_root_priors
            self.clean_root_priors = None
        return self.vis[0]

    def _reroot(self, r: int) -> None:
        fields = ("fc", "nch", "act", "vis", "wsum", "prior", "solved", "partial", "mover")
        old = {f: getattr(self, f) for f in fields}
        new = {f: [old[f][r]] for f in fields}
        queue = [(r, 0)]
        head = 0
        while head < len(queue):
            o, nn = queue[head]
            head += 1
            f, k = old["fc"][o], old["nch"][o]
            if f < 0:
                new["fc"][nn] = -1
                continue
            base = len(new["fc"])
            new["fc"][nn] = base
            for i in range(k):
                for name in fields:
                    new[name].append(old[name][f + i])
                queue.append((f + i, base + i))
        for name in fields:
            setattr(self, name, new[name])
        self.act[0] = -1

    # ------------------------------------------------------------ the search
    def search(self, cfg, state, seed: int | None, rng) -> SearchResult:
        """One search from ``state`` with the options of ``cfg`` (an ``MCTS``)."""
        from plyground.search.hooks import RolloutValue, UniformProposer

        t0 = time.perf_counter()
        if getattr(state, "is_view", False):
            raise UnsupportedStateError("this MCTS searches full states; a player's view hides information "
                                        "(plyground.search.mcts sends views to the information-set engine)")
        check_supported(state)
        history = [int(a) for a in state.history()]
        proposer = cfg.proposer
        value = cfg.value if cfg.value is not None else RolloutValue(cfg.rollouts, seed=seed)
        use_proposer = proposer is not None and type(proposer) is not UniformProposer
        key = (game_key(state), cfg.variant, bool(cfg.solver), id(proposer) if use_proposer else None, id(cfg.value))
        reused = self._reuse(history, key, cfg.reuse_tree)
        self.root_history, self.key = history, key
        root_player = int(state.current_player())
        if not reused and self.fc[0] < 0:
            self.mover[0] = 1 - root_player     # a fresh root: "moved into" by the other player

        game = game_of(state)
        game_name = getattr(game, "name", None) or str(game)
        max_util = 1.0              # a proven win: the scaled maximum utility
        puct = cfg.variant == "puct"
        c = float(cfg.c)
        vl = float(cfg.virtual_loss)
        sims = cfg.sims
        deadline = None if cfg.time_limit is None else t0 + cfg.time_limit
        noise_pending = puct and cfg.dirichlet_alpha is not None
        done = 0
        batches = 0
        leaves_evaluated = 0
        maxd = 0
        reason = "sims"
        vname = type(value).__name__
        pname = type(proposer).__name__ if proposer is not None else "UniformProposer"

        while True:
            if self.solved[0] is not None and cfg.solver:
                reason = "solved"
                break
            remaining = (sims - done) if sims is not None else 1 << 62
            stop = budget_spent(remaining, done, deadline, len(self.fc), cfg.max_nodes)
            if stop:
                reason = stop
                break
            if noise_pending and self.fc[0] >= 0:
                self._apply_noise(cfg, rng)
                noise_pending = False
            want = min(cfg.batch_size, remaining)
            leaves, n_exact, d = self._select(state, want, remaining, c, puct, cfg.solver, vl, max_util)
            maxd = max(maxd, d)
            done += n_exact
            if leaves:
                states = [s for _, _, s in leaves]
                if use_proposer:
                    proposals = proposer.propose_batch(states)
                    if len(proposals) != len(states):
                        raise PlygroundError(f"{pname}.propose_batch returned {len(proposals)} answers "
                                             f"for {len(states)} states")
                else:
                    proposals = [None] * len(states)
                values = check_values(value.evaluate(states), len(states), vname)
                full = False
                for (node, path, s), prop, v in zip(leaves, proposals, values):
                    legal = [int(a) for a in s.legal_actions()]
                    if prop is not None:
                        prop = check_proposal(game_name, legal, prop, pname)
                    if not full:
                        full = not self._expand(node, s, legal, prop, cfg.max_nodes)
                    p = int(s.current_player())
                    v0 = v if p == 0 else -v
                    self._backup(path, v0, 0, vl)
                batches += 1
                leaves_evaluated += len(leaves)
                done += len(leaves)
                if full:
                    reason = "max_nodes"
                    break
            elif n_exact == 0:
                break  # nothing selectable (cannot happen on a consistent tree); stop cleanly

        return self._result(cfg, state, root_player, t0, done, maxd, reused, reason, batches, leaves_evaluated)

    def _select(self, root_state, want: int, remaining: int, c: float, puct: bool, solver: bool, vl: float,
                max_util: float):
        """Collect up to ``want`` distinct leaves under virtual loss; back terminal ones up at once."""
        fc, act, vis, wsum, solved = self.fc, self.act, self.vis, self.wsum, self.solved
        leaves = []
        pending = set()
        n_exact = 0
        maxd = 0
        while len(leaves) < want and len(leaves) + n_exact < remaining:
            if solver and solved[0] is not None:
                break
            s = root_state.clone()
            node = 0
            path = [0]
            exact = None
            while fc[node] >= 0:
                node = self._select_child(node, c, puct)
                s.apply_action(act[node])
                path.append(node)
                if s.is_terminal():
                    r = _returns(s)
                    exact = r[0]
                    if solver and solved[node] is None:
                        solved[node] = r[self.mover[node]]
                    break
                if solver and solved[node] is not None:
                    exact = solved[node] if self.mover[node] == 0 else -solved[node]
                    break
                _check_player(s, int(s.current_player()))
            maxd = max(maxd, len(path) - 1)
            if exact is not None:
                self._backup(path, exact, 1, 0.0)
                if solver:
                    self._propagate(path, max_util)
                n_exact += 1
                continue
            if node in pending:
                break
            pending.add(node)
            for i in path:                      # virtual loss
                vis[i] += 1
                wsum[i] -= vl
            leaves.append((node, path, s))
        return leaves, n_exact, maxd

    def _select_child(self, node: int, c: float, puct: bool) -> int:
        f, n, N = self.fc[node], self.nch[node], self.vis[node]
        vis, wsum, prior, solved = self.vis, self.wsum, self.prior, self.solved
        if puct:
            k = c * math.sqrt(N)
        else:
            k = c * math.sqrt(math.log(N)) if N > 1 else 0.0
        best, bs = f, -math.inf
        for i in range(f, f + n):
            v = vis[i]
            sv = solved[i]
            if sv is not None:
                q = PROVEN_Q * sv if abs(sv) >= 1.0 else sv
            elif v == 0:
                q = 0.0 if puct else UNVISITED_Q
            else:
                q = wsum[i] / v
            if puct:
                sc = q + k * prior[i] / (1 + v)
            else:
                sc = q + (k / math.sqrt(v) if v > 0 else 0.0)
            if sc > bs:
                bs, best = sc, i
        return best

    def _expand(self, node: int, s, legal: list[int], proposal: dict | None, max_nodes: int | None) -> bool:
        """Children of ``node`` (all at once); False if they do not fit under ``max_nodes``."""
        if proposal is None:
            actions = legal
            priors = [1.0 / len(legal)] * len(legal) if legal else []
        else:
            actions = [a for a in legal if a in proposal]
            total = sum(proposal[a] for a in actions)
            priors = [proposal[a] / total if total > 0 else 1.0 / len(actions) for a in actions]
            if len(actions) < len(legal):
                self.partial[node] = True
        if max_nodes is not None and len(self.fc) + len(actions) > max_nodes:
            return False
        mover = int(s.current_player())
        base = len(self.fc)
        n = len(actions)
        self.fc += [-1] * n
        self.nch += [0] * n
        self.act += actions
        self.vis += [0] * n
        self.wsum += [0.0] * n
        self.prior += priors
        self.solved += [None] * n
        self.partial += [False] * n
        self.mover += [mover] * n
        self.fc[node] = base
        self.nch[node] = n
        return True

    def _backup(self, path: list[int], v0: float, inc: int, vl: float) -> None:
        """Add player 0's value ``v0`` to every node on ``path`` (each from its mover's side)."""
        for i in path:
            self.vis[i] += inc
            self.wsum[i] += (v0 if self.mover[i] == 0 else -v0) + vl

    def _propagate(self, path: list[int], max_util: float) -> None:
        """MCTS-Solver: a child winning for the player to move proves the parent; so do all
        children proven (the best of them)."""
        solved, mover = self.solved, self.mover
        for j in range(len(path) - 1, 0, -1):
            ch, par = path[j], path[j - 1]
            if solved[ch] is None or solved[par] is not None:
                return
            chooser = mover[ch]
            if solved[ch] >= max_util:
                best = solved[ch]
            else:
                if self.partial[par]:
                    return
                f, n = self.fc[par], self.nch[par]
                vals = [solved[i] for i in range(f, f + n)]
                if any(v is None for v in vals):
                    return
                best = max(vals)
            solved[par] = best if mover[par] == chooser else -best

    def _apply_noise(self, cfg, rng) -> None:
        f, n = self.fc[0], self.nch[0]
        clean = self.prior[f:f + n]
        self.clean_root_priors = list(clean)
        eta = rng.dirichlet([cfg.dirichlet_alpha] * n)
        frac = cfg.dirichlet_frac
        self.prior[f:f + n] = [(1 - frac) * p + frac * float(e) for p, e in zip(clean, eta)]

    # ------------------------------------------------------------ the answer
    def _best_child(self, node: int) -> int:
        f, n = self.fc[node], self.nch[node]
        kids = range(f, f + n)
        solved, vis, wsum = self.solved, self.vis, self.wsum
        wins = [i for i in kids if solved[i] is not None and solved[i] >= 1.0]
        if wins:
            return max(wins, key=lambda i: (vis[i], -i))
        alive = [i for i in kids if not (solved[i] is not None and solved[i] <= -1.0)] or list(kids)
        return max(alive, key=lambda i: (vis[i], wsum[i] / vis[i] if vis[i] else -2.0, -i))

    def _result(self, cfg, state, root_player, t0, done, maxd, reused, reason, batches, leaves) -> SearchResult:
        f, n = self.fc[0], self.nch[0]
        visits, values = {}, {}
        for i in range(f, f + n) if f >= 0 else range(0):
            a = self.act[i]
            visits[a] = self.vis[i]
            sv = self.solved[i]
            values[a] = float(sv) if sv is not None else (self.wsum[i] / self.vis[i] if self.vis[i] else 0.0)
        if f >= 0 and n > 0:
            best = self.act[self._best_child(0)]
        else:
            best = int(state.legal_actions()[0])
        pv = []
        node = 0
        while self.fc[node] >= 0 and self.nch[node] > 0:
            node = self._best_child(node)
            if self.vis[node] == 0:
                break
            pv.append(self.act[node])
        root_solved = cfg.solver and self.solved[0] is not None
        sign = 1.0 if self.mover[0] == root_player else -1.0    # root statistics are the mover's
        if root_solved:
            value = sign * self.solved[0]
        elif self.vis[0]:
            value = sign * self.wsum[0] / self.vis[0]
        else:
            value = 0.0
        return SearchResult(
            best_action=int(best), value=float(value), engine="mcts", nodes=done, depth=maxd, pv=pv,
            action_values=values, visits=visits, seconds=time.perf_counter() - t0, exact=bool(root_solved),
            extra={"impl": "python", "variant": cfg.variant, "root_visits": self.vis[0],
                   "reused_visits": reused, "tree_nodes": len(self.fc), "stop_reason": reason,
                   "batches": batches, "evaluated_leaves": leaves},
        )
