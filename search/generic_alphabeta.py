"""Alpha-beta over any State with OpenSpiel's method names, in plain Python, honouring the hooks.

The engine behind ``plyground.search.alphabeta.search`` for OpenSpiel/PettingZoo states and for
any search that uses a custom hook.  It has the numba engine's options (depth, node and time
budgets, exact solving, a transposition table, iterative deepening, per-action values, a
principal variation) and adds the three hooks:

- ``ActionProposer``: at the root player's nodes, only the ``proposer_k`` most likely actions of
  the proposer's distribution are searched (all of them if ``proposer_k`` is None), most likely
  first;
- ``OpponentModel``: at the other player's nodes, ``mode="full"`` searches every reply,
  ``"topk"`` the ``k`` most likely, ``"expectation"`` makes an expectimax node weighting the
  replies by the model's probabilities;
- ``ValueEstimator``: non-terminal states at the depth limit, evaluated in one batch per node.

Values are minimax values from the ROOT player's point of view (so games where a player moves
twice need no special casing).  Chance nodes are expectation nodes (expectiminimax, Michie 1966;
Ballard 1983): each outcome weighted by its probability, and they do not count as a ply of
``depth``, so the engine never asks a ValueEstimator about a chance node.

Returns are scaled to [-1, 1] by the game's min/max utility (``games.traits``).  A finished game
whose scaled return is the maximum (minimum) scores ``WIN + d`` (``-(WIN + d)``), where ``d`` is
the distance-to-win score ``(max_game_length + 1 - n) // 2`` of the move played with ``n`` moves
done: a proven win beats any estimate, sooner wins beat later ones, and ``d`` is the
connect-four convention of ``shared/data/README.md``.  Any other finished game scores its scaled
return (a draw 0; a backgammon single win 1/3).  Leaf values from the ValueEstimator must be in
[-1, 1] (a value outside is an error, not clipped).

Only perfect-information states are searched: the transposition key is ``str(state)``, the whole
state, and a ``PlayerView`` (what a player of a hidden-information game sees) is refused.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from plyground.games.errors import PlygroundError
from plyground.search.generic_mcts import check_values
from plyground.search.hooks import ActionProposer, OpponentModel, ValueEstimator, game_of, scaler
from plyground.search.result import SearchResult

WIN = 1.0e6          # a proven result's score is sign * (WIN + distance-to-win score)
_INF = math.inf
_CHANCE = -1         # OpenSpiel's PlayerId.CHANCE
_EXACT, _LOWER, _UPPER = 0, 1, 2
_UNLIMITED = 1 << 30
_LEAF_CHUNK = 256    # leaves per ValueEstimator call at one node (the clock is read between calls)


class _Abort(Exception):
    """A node or time budget ran out; the driver falls back to the last finished iteration."""


def default_key(state) -> Any:
    """Transposition-table key: exact for native states; for others the move count, the player
    to move and ``str(state)`` (OpenSpiel's full rendering of a perfect-information state: the
    engine searches nothing else, so the key holds nothing a player could not see)."""
    arr = getattr(state, "array", None)
    if arr is not None:
        return arr.tobytes()
    return (len(state.history()), state.current_player(), str(state))


def _max_game_length(state) -> int:
    game = getattr(state, "game", None)
    if game is None and hasattr(state, "get_game"):
        game = state.get_game()
    if game is not None and hasattr(game, "max_game_length"):
        try:
            return int(game.max_game_length())
        except Exception:  # noqa: BLE001 - a game without a bound still searches
            pass
    return 1 << 20


def _proven(score: float) -> bool:
    return abs(score) >= WIN


def score_to_value(score: float) -> float:
    """A search score as a value in [-1, 1] (proven wins and losses are exactly +1 and -1; other
    scores are already scaled values)."""
    if _proven(score):
        return 1.0 if score > 0 else -1.0
    return float(score) + 0.0  # + 0.0: no negative zero


def distance_score(score: float) -> int:
    """The distance-to-win score of a proven score (0 for a draw)."""
    if not _proven(score):
        return 0
    d = int(round(abs(score) - WIN))
    return d if score > 0 else -d


class GenericAlphaBeta:
    """One search over any State; ``run(state)`` returns a ``SearchResult``.  See module doc."""

    engine_name = "alphabeta-generic"

    def __init__(self, *, depth: int | None = None, max_nodes: int | None = None,
                 time_limit: float | None = None, exact: bool = False,
                 proposer: ActionProposer | None = None, proposer_k: int | None = None,
                 opponent: OpponentModel | None = None, value: ValueEstimator | None = None,
                 tt_bits: int = 22, all_values: bool = True,
                 key: Callable[[Any], Any] | None = None, iterative: bool = True) -> None:
        self.depth = depth
        self.max_nodes = max_nodes
        self.time_limit = time_limit
        self.exact = exact
        self.proposer = proposer
        self.proposer_k = proposer_k
        self.opponent = opponent
        self.value = value
        self.tt_cap = 1 << tt_bits
        self.all_values = all_values
        self.key = key or default_key
        self.iterative = iterative  # False: only the last depth (no shallower iterations)

    # ------------------------------------------------------------------ driver
    def run(self, state) -> SearchResult:
        """Iterative deepening from ``state`` (not over) until the depth, a proof or a budget."""
        t0 = time.perf_counter()
        if getattr(state, "is_view", False):
            raise PlygroundError("alpha-beta searches full states; a player's view of a hidden-information "
                                 "game cannot be searched (use MCTS, which searches information sets)")
        if state.is_terminal():
            raise PlygroundError("cannot search a finished game: the state is terminal")
        self.root_player = state.current_player()
        if self.root_player < 0:
            raise PlygroundError(f"cannot search from a chance or simultaneous node "
                                 f"(current_player() = {self.root_player})")
        self.max_len = _max_game_length(state)
        self.scale = scaler(game_of(state))
        self.deadline = t0 + self.time_limit if self.time_limit else None
        self.nodes = 0
        self.ticks = 0
        self.max_ply = 0
        self.leaf_evals = 0
        self.pruned = False
        self.tt: dict[Any, tuple[int, float, float, int | None]] = {}
        self.dist_cache: dict[Any, list[tuple[int, float]]] = {}
        self.value_cache: dict[Any, float] = {}
        self.hook_calls = {"propose": 0, "predict": 0, "evaluate": 0, "states_evaluated": 0}

        if self.exact:
            schedule = [_UNLIMITED]  # no depth limit: the leaves are finished games
        else:
            first = self.depth if (not self.iterative and self.depth is not None) else 1
            schedule = range(first, (self.depth if self.depth is not None else _UNLIMITED) + 1)
        last = None
        for d in schedule:
            self.leaf_evals = 0
            try:
                it = self._root_iteration(state, d)
            except _Abort:
                break
            last = it + (d, self.leaf_evals)
            if _proven(it[1]) or self.leaf_evals == 0:
                break  # a proof, or the whole tree fitted inside the depth
        seconds = time.perf_counter() - t0
        full_width = self._full_width()
        if last is None:
            return self._fallback(state, seconds)
        best, score, values, kinds, d, leaves = last
        exact = full_width and (_proven(score) or leaves == 0)
        pv = self._pv(state, best)
        extra: dict[str, Any] = {"action_scores": {a: (distance_score(v) if _proven(v) else v)
                                                   for a, v in values.items()},
                                 "hook_calls": dict(self.hook_calls)}
        bounds = [a for a, k in kinds.items() if k == _UPPER]
        if bounds:
            extra["upper_bound_actions"] = bounds
        if not full_width:
            extra["pruned_by_hooks"] = self.pruned
        return SearchResult(
            best_action=int(best), value=score_to_value(score), engine=self.engine_name,
            nodes=self.nodes, depth=self.max_ply if d >= _UNLIMITED else d,
            pv=pv, action_values={a: score_to_value(v) for a, v in values.items()},
            seconds=seconds, exact=bool(exact),
            score=distance_score(score) if exact else None, extra=extra)

    def _full_width(self) -> bool:
        """True if the hooks searched the plain minimax tree (so a proof is a real proof)."""
        from plyground.search.hooks import UniformProposer
        prop_ok = self.proposer is None or (isinstance(self.proposer, UniformProposer)
                                            and self.proposer_k is None)
        opp_ok = self.opponent is None or (self.opponent.mode == "full")
        return prop_ok and opp_ok and not self.pruned

    def _fallback(self, state, seconds: float) -> SearchResult:
        """No iteration finished: the first action in the node's order, flagged as such."""
        try:
            moves = self._moves(state, state.current_player())
            best = moves[0][0]
        except _Abort:
            best = state.legal_actions()[0]
        return SearchResult(best_action=int(best), value=0.0, engine=self.engine_name,
                            nodes=self.nodes, depth=0, pv=[int(best)], seconds=seconds,
                            extra={"budget_exhausted": True, "hook_calls": dict(self.hook_calls)})

    # ------------------------------------------------------------------ budgets
    def _tick(self) -> None:
        self.nodes += 1
        self.ticks += 1
        if self.max_nodes is not None and self.nodes > self.max_nodes:
            raise _Abort
        if self.deadline is not None and (self.ticks & 7) == 0 and time.perf_counter() > self.deadline:
            raise _Abort

    def _check_clock(self) -> None:
        """The time budget inside one wide node (a chance node can have thousands of outcomes)."""
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise _Abort

    # ------------------------------------------------------------------ hooks
    def _moves(self, state, player: int) -> list[tuple[int, float]]:
        """The (action, weight) pairs to search at this node, in search order."""
        legal = list(state.legal_actions())
        if player == _CHANCE:
            return [(int(a), float(p)) for a, p in state.chance_outcomes()]
        if player == self.root_player:
            hook, k, mode = self.proposer, self.proposer_k, "full"
        else:
            hook = self.opponent
            mode = hook.mode if hook is not None else "full"
            k = hook.k if (hook is not None and mode == "topk") else None
        if hook is None:
            moves = [(a, 1.0 / len(legal)) for a in legal]
        else:
            key = self.key(state)
            dist = self.dist_cache.get(key)
            if dist is None:
                if isinstance(hook, ActionProposer):
                    raw = hook.propose(state)
                    self.hook_calls["propose"] += 1
                else:
                    raw = hook.predict(state)
                    self.hook_calls["predict"] += 1
                legal_set = set(legal)
                dist = sorted(((int(a), float(p)) for a, p in raw.items() if int(a) in legal_set),
                              key=lambda ap: -ap[1])
                if not dist:  # a hook that names no legal action: fall back to all, uniformly
                    dist = [(a, 1.0 / len(legal)) for a in legal]
                self.dist_cache[key] = dist
            moves = dist
            if k is not None and len(moves) > k:
                moves = moves[:k]
            if len(moves) < len(legal):
                self.pruned = True
        return moves

    def _leaf_values(self, states: list) -> list[float]:
        """Root-player values of non-terminal leaf player nodes, one batched hook call for the misses."""
        self.leaf_evals += len(states)
        keys = [self.key(s) for s in states]
        missing = [i for i, k in enumerate(keys) if k not in self.value_cache]
        for lo in range(0, len(missing), _LEAF_CHUNK):   # the clock is read between chunks
            if lo:
                self._check_clock()
            part = missing[lo:lo + _LEAF_CHUNK]
            if self.value is None:
                vals = [0.0] * len(part)
            else:
                vals = check_values(self.value.evaluate([states[i] for i in part]), len(part),
                                    type(self.value).__name__)
                self.hook_calls["evaluate"] += 1
                self.hook_calls["states_evaluated"] += len(part)
            for i, v in zip(part, vals):
                self.value_cache[keys[i]] = v
        out = []
        for s, k in zip(states, keys):
            v = self.value_cache[k]  # for the player to move in s (never a chance node)
            out.append(v if s.current_player() == self.root_player else -v)
        return out

    def _terminal_score(self, child) -> float:
        """Root-player score of a finished game: its scaled return, a win or loss at the extreme
        utility a proven ``+-(WIN + d)`` (sooner wins scoring higher)."""
        v = self.scale(child.returns()[self.root_player])
        if -1.0 < v < 1.0:
            return v + 0.0
        n = len(child.history()) - 1  # moves done when the last move was played
        d = max(1, (self.max_len + 1 - n) // 2)
        return (WIN + d) if v > 0 else -(WIN + d)

    # ------------------------------------------------------------------ search
    def _root_iteration(self, state, depth: int):
        """Search every root move at ``depth``; returns (best, score, values, kinds)."""
        self._tick()
        player = state.current_player()
        moves = self._ordered(state, player, self._moves(state, player))
        values: dict[int, float] = {}
        kinds: dict[int, int] = {}
        best, best_score = moves[0][0], -_INF
        alpha = -_INF
        for a, _w in moves:
            child = state.clone()
            child.apply_action(a)
            if child.is_terminal():
                self.nodes += 1
                sc = self._terminal_score(child)
            elif depth <= 1 and child.current_player() != _CHANCE:
                self.nodes += 1
                sc = self._leaf_values([child])[0]
            else:
                lo = -_INF if self.all_values else alpha
                sc = self._minimax(child, depth - 1, lo, _INF, 1)
            values[a] = sc
            kinds[a] = _EXACT if (self.all_values or sc > alpha) else _UPPER
            if sc > best_score:
                best, best_score = a, sc
            alpha = max(alpha, sc)
        self._store(state, depth, best_score, best_score, best)
        return best, best_score, values, kinds

    def _ordered(self, state, player: int, moves: list[tuple[int, float]]):
        entry = self.tt.get(self.key(state))
        if entry is not None and entry[3] is not None:
            tm = entry[3]
            for i, (a, _w) in enumerate(moves):
                if a == tm:
                    return [moves[i]] + moves[:i] + moves[i + 1:]
        return moves

    def _store(self, state, depth: int, lo: float, hi: float, move) -> None:
        key = self.key(state)
        if key not in self.tt and len(self.tt) >= self.tt_cap:
            return  # full: keep what we have (the table is per search)
        self.tt[key] = (depth, lo, hi, move)

    def _minimax(self, state, depth: int, alpha: float, beta: float, ply: int) -> float:
        """Root-player value of the non-terminal ``state`` searched ``depth`` player plies deep (a
        chance node takes no ply: its outcomes are searched at its own ``depth``, which may be 0)."""
        self._tick()
        if ply > self.max_ply:
            self.max_ply = ply
        key = self.key(state)
        entry = self.tt.get(key)
        if entry is not None and entry[0] >= depth:
            _d, lo, hi, _m = entry
            if lo >= beta:
                return lo
            if hi <= alpha:
                return hi
            if lo == hi:
                return lo
            alpha, beta = max(alpha, lo), min(beta, hi)
        player = state.current_player()
        moves = self._ordered(state, player, self._moves(state, player))
        chance = player == _CHANCE
        expect = chance or (player != self.root_player and self.opponent is not None
                            and self.opponent.mode == "expectation")
        maximise = player == self.root_player
        child_depth = depth if chance else depth - 1
        # children: finished games first (exact and free: the generic immediate-win check)
        children = []
        for i, (a, w) in enumerate(moves):
            if (i & 63) == 63:
                self._check_clock()
            c = state.clone()
            c.apply_action(a)
            children.append((a, w, c))
        scores: dict[int, float] = {}
        for a, _w, c in children:
            if c.is_terminal():
                self.nodes += 1
                scores[a] = self._terminal_score(c)
        if child_depth <= 0:   # the children that are player nodes are leaves; chance nodes are expanded
            rest = [(a, c) for a, _w, c in children if a not in scores and c.current_player() != _CHANCE]
            if rest:
                self.nodes += len(rest)
                for (a, _c), v in zip(rest, self._leaf_values([c for _a, c in rest])):
                    scores[a] = v
        if expect:
            total_w = sum(w for _a, w, _c in children) or 1.0
            child_scores = []
            for a, w, c in children:
                sc = scores.get(a)
                if sc is None:
                    sc = self._minimax(c, child_depth, -_INF, _INF, ply + 1)
                child_scores.append((w, sc))
            if all(_proven(sc) and sc > 0 for _w, sc in child_scores) or all(
                    _proven(sc) and sc < 0 for _w, sc in child_scores):
                v = sum(w * sc for w, sc in child_scores) / total_w  # still proven
            else:  # a mixture is an estimate: average in value units
                v = sum(w * score_to_value(sc) for w, sc in child_scores) / total_w
            self._store(state, depth, v, v, None)
            return v
        alpha0, beta0 = alpha, beta
        best = -_INF if maximise else _INF
        best_move = None
        # proven terminal results may cut at once
        order = [x for x in children if x[0] in scores] + [x for x in children if x[0] not in scores]
        for a, _w, c in order:
            sc = scores.get(a)
            if sc is None:
                sc = self._minimax(c, child_depth, alpha, beta, ply + 1)
            if maximise:
                if sc > best:
                    best, best_move = sc, a
                alpha = max(alpha, sc)
            else:
                if sc < best:
                    best, best_move = sc, a
                beta = min(beta, sc)
            if alpha >= beta:
                break
        if best <= alpha0:
            self._store(state, depth, -_INF, best, best_move)
        elif best >= beta0:
            self._store(state, depth, best, _INF, best_move)
        else:
            self._store(state, depth, best, best, best_move)
        return best

    def _pv(self, state, best: int) -> list[int]:
        """The best root move, then the table's best moves while they are legal."""
        pv = [int(best)]
        s = state.clone()
        s.apply_action(best)
        seen = set()
        while not s.is_terminal() and len(pv) < 256:
            key = self.key(s)
            entry = self.tt.get(key)
            if entry is None or entry[3] is None or key in seen:
                break
            seen.add(key)
            m = entry[3]
            if m not in s.legal_actions():
                break
            pv.append(int(m))
            s.apply_action(m)
        return pv
