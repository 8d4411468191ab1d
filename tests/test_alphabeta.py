"""alpha-beta search: the numba and generic engines agree, budgets stop cleanly, the hooks
change the search as documented, bad input is refused with clear errors."""

from __future__ import annotations

import time

import pytest

from plyground import games
from plyground.games.errors import PlygroundError
from conftest import random_positions
from plyground.search.alphabeta import search, solve
from plyground.search.hooks import (
    ActionProposer, FullWidthOpponent, HeuristicValue, OpponentModel, RolloutValue,
    UniformProposer, ValueEstimator,
)

C4 = games.make("connect4")
TTT = games.make("tictactoe")


def _openspiel_twin(state, name: str):
    twin = games.make(name).new_initial_state()
    for a in state.history():
        twin.apply_action(a)
    return twin


# ---------------------------------------------------------------- dispatch
def test_dispatch_numba_for_native_generic_otherwise():
    s = games.play_moves(C4, "44")
    assert search(s, depth=2).engine == "alphabeta-numba"
    assert search(s, depth=2, value=RolloutValue(2)).engine == "alphabeta-numba"
    assert search(s, depth=2, proposer=UniformProposer(),
                  opponent=FullWidthOpponent("full")).engine == "alphabeta-numba"
    assert solve(games.play_moves(TTT, "4")).engine == "alphabeta-numba-solver"

    class Zero(ValueEstimator):
        def evaluate(self, states):
            return [0.0] * len(states)

    assert search(s, depth=2, value=Zero()).engine == "alphabeta-generic"
    assert search(s, depth=2, opponent=FullWidthOpponent("topk", k=2)).engine == "alphabeta-generic"
    assert search(_openspiel_twin(s, "openspiel:connect_four"), depth=2).engine == "alphabeta-generic"
    assert search(s, depth=2, engine="generic").engine == "alphabeta-generic"


# ---------------------------------------------------------------- engines agree
def test_numba_and_generic_agree_on_tictactoe():
    for s in random_positions(TTT, 12, (0, 6), seed=11):
        native = solve(s)
        generic = search(s, exact=True, engine="generic")
        spiel = search(_openspiel_twin(s, "openspiel:tic_tac_toe"), exact=True)
        assert native.exact and generic.exact and spiel.exact
        assert native.score == generic.score == spiel.score, s.history()
        assert native.extra["action_scores"] == generic.extra["action_scores"] == spiel.extra["action_scores"]


@pytest.mark.parametrize("stones", [28, 32])
def test_numba_and_generic_agree_on_late_connect4(c4_solved, stones):
    for moves, score in [(m, s) for m, s in c4_solved if len(m) == stones][:8]:
        s = games.play_moves(C4, moves)
        spiel = search(_openspiel_twin(s, "openspiel:connect_four"), exact=True, all_values=False)
        native = solve(s, all_values=False)
        assert spiel.score == native.score == score, moves
        assert spiel.value == native.value


def test_depth_limited_engines_agree_on_proven_results():
    """At a depth that reaches every end, both engines prove the same result and best score."""
    for s in random_positions(TTT, 8, (2, 6), seed=5):
        a = search(s, depth=9)
        b = search(s, depth=9, engine="generic")
        assert a.exact and b.exact and a.score == b.score and a.value == b.value, s.history()


# ---------------------------------------------------------------- depth-limited search
def test_depth_limited_result_is_consistent():
    s = games.play_moves(C4, "4453")
    r = search(s, depth=6)
    legal = s.legal_actions()
    assert r.depth == 6 and not r.exact and r.score is None
    assert r.best_action in legal and set(r.action_values) == set(legal)
    assert -1.0 <= r.value <= 1.0
    assert r.value == max(r.action_values.values()) == r.action_values[r.best_action]
    assert r.pv and r.pv[0] == r.best_action
    t = s.clone()
    for a in r.pv:  # the principal variation is a legal line
        assert a in t.legal_actions()
        t.apply_action(a)
    assert r.nodes > 0 and r.seconds > 0


def test_forced_win_is_found_and_proven_within_the_depth():
    # x: columns 3 and 4 on the bottom row, o: two stones in column 1.  x plays column 5: an open
    # three (columns 2 and 6 both free) that o cannot block twice; x's winning stone is played
    # with 6 stones on the board -> score (43 - 6) // 2
    s = games.play_moves(C4, "4131")
    r = search(s, depth=3)
    assert (r.exact, r.value, r.best_action, r.score) == (True, 1.0, 4, 18)
    assert len(r.pv) == 3 and solve(s, all_values=False).score == 18


def _sign(x) -> int:
    return (x > 0) - (x < 0)


def test_every_root_move_gets_its_solved_value_at_full_depth():
    """The depth-limited search's per-move results (moves, scores, values, bounds) against the
    exact solver's score of every move.  When the iterations reach every end (a proven win stops
    them sooner: then only the best move's value is proven), each move's value is its solved
    result, or with all_values=False at least an upper bound of it."""
    bounded = complete = 0
    for s in random_positions(TTT, 16, (0, 5), seed=3):
        truth = solve(s).extra["action_scores"]
        assert set(truth) == set(s.legal_actions())
        for all_values in (True, False):
            r = search(s, depth=9, all_values=all_values)
            assert set(r.action_values) == set(r.extra["action_scores"]) == set(truth), s.history()
            assert r.exact and r.value == _sign(truth[r.best_action]) == max(map(_sign, truth.values()))
            bounds = r.extra.get("upper_bound_actions", [])
            assert bounds == sorted(bounds) and set(bounds) <= set(truth) - {r.best_action}
            if all_values:
                assert not bounds
            if r.depth < len(truth):  # stopped on a proven win before the last ply
                continue
            complete += all_values
            bounded += len(bounds)
            for a, score in truth.items():
                if a in bounds:
                    assert r.action_values[a] >= _sign(score), (s.history(), a)
                else:
                    assert r.action_values[a] == _sign(score), (s.history(), a)
                    assert _sign(r.extra["action_scores"][a]) == _sign(score), (s.history(), a)
    assert complete >= 5 and bounded > 0  # both paths were exercised


def test_all_values_false_gives_bounds_for_worse_moves():
    s = games.play_moves(C4, "4453")
    full = search(s, depth=5)
    fast = search(s, depth=5, all_values=False)
    assert fast.best_action == full.best_action and fast.value == full.value
    for a in fast.extra.get("upper_bound_actions", []):
        assert fast.action_values[a] >= full.action_values[a]  # an upper bound of the true value


def test_rollout_leaves_run_in_numba():
    s = games.play_moves(TTT, "4")
    r = search(s, depth=1, value=RolloutValue(200))
    assert r.extra["leaf"] == "rollout" and r.engine == "alphabeta-numba"
    # o's corner replies are the known safe ones; random play scores them better than edges
    corners = [r.action_values[a] for a in (0, 2, 6, 8)]
    edges = [r.action_values[a] for a in (1, 3, 5, 7)]
    assert sum(corners) / 4 > sum(edges) / 4


# ---------------------------------------------------------------- budgets
@pytest.mark.parametrize("engine", ["native", "generic"])
def test_node_budget_stops_and_returns_a_legal_move(engine):
    s = games.play_moves(C4, "44")
    for n in (1, 10, 500):
        r = search(s, max_nodes=n, engine=engine)
        assert r.best_action in s.legal_actions()
        assert r.nodes <= n + 64  # the generic engine counts a node's batch of leaves at once
    r = search(s, max_nodes=500, engine=engine)
    assert 1 <= r.depth < 42


@pytest.mark.parametrize("engine", ["native", "generic"])
def test_time_budget_stops_and_returns_a_legal_move(engine):
    s = games.play_moves(C4, "44")
    search(s, depth=1, engine=engine)  # code loaded
    t = time.perf_counter()
    r = search(s, time_limit=0.1, engine=engine)
    elapsed = time.perf_counter() - t
    assert r.best_action in s.legal_actions()
    assert elapsed < 0.6 and r.depth >= 1


def test_exact_with_budget_falls_back_to_a_legal_estimate():
    s = games.play_moves(C4, "44")  # far too early to solve in a tenth of a second
    r = search(s, exact=True, time_limit=0.1)
    assert not r.exact and r.best_action in s.legal_actions()
    assert r.extra["budget_exhausted"] and r.depth >= 1
    lo, hi = r.extra["score_bounds"]
    assert lo <= hi


def test_no_budget_given_uses_the_default_time_limit():
    from plyground.search import alphabeta
    s = games.play_moves(C4, "4")
    t = time.perf_counter()
    r = search(s)
    assert time.perf_counter() - t < alphabeta.DEFAULT_TIME_LIMIT + 0.5
    assert r.best_action in s.legal_actions()


# ---------------------------------------------------------------- hooks (generic engine)
class CountingValue(ValueEstimator):
    """Heuristic leaf values, recording the size of every batch it is given."""

    def __init__(self):
        self.batches = []

    def evaluate(self, states):
        self.batches.append(len(states))
        return HeuristicValue().evaluate(states)


def test_value_estimator_is_called_in_batches():
    v = CountingValue()
    s = games.play_moves(C4, "4453")
    r = search(s, depth=3, value=v)
    assert r.engine == "alphabeta-generic" and r.best_action in s.legal_actions()
    assert max(v.batches) > 1  # one call per node for its children at the depth limit
    assert r.extra["hook_calls"]["states_evaluated"] == sum(v.batches)


def _minimax(state, depth: int, me: int) -> float:
    """Independent oracle: plain minimax (no pruning, no table) with the heuristic at the depth
    limit and the exact result at the end of the game, from player ``me``'s point of view."""
    if state.is_terminal():
        return state.returns()[me]
    if depth == 0:
        v = HeuristicValue().evaluate([state])[0]
        return v if state.current_player() == me else -v
    vals = [_minimax(state.child(a), depth - 1, me) for a in state.legal_actions()]
    return max(vals) if state.current_player() == me else min(vals)


@pytest.mark.parametrize("moves", ["4453", "44433", "1234567"])
def test_generic_alpha_beta_equals_plain_minimax(moves):
    """Pruning, the table and move ordering must not change the minimax value."""
    s = games.play_moves(C4, moves)
    me = s.current_player()
    r = search(s, depth=3, value=CountingValue())
    assert r.engine == "alphabeta-generic"
    for a in s.legal_actions():
        assert r.action_values[a] == pytest.approx(_minimax(s.child(a), 2, me), abs=1e-12), a


class FixedProposer(ActionProposer):
    def __init__(self, prefs):
        self.prefs = prefs

    def propose(self, state):
        legal = state.legal_actions()
        w = {a: self.prefs.get(a, 0.01) for a in legal}
        z = sum(w.values())
        return {a: p / z for a, p in w.items()}


def test_proposer_top_k_limits_the_root_moves():
    s = games.play_moves(C4, "44")
    r = search(s, depth=3, proposer=FixedProposer({0: 5.0, 6: 4.0}), proposer_k=2)
    assert set(r.action_values) == {0, 6}
    assert r.best_action in (0, 6) and not r.exact


class UniformOpponent(OpponentModel):
    def predict(self, state):
        legal = state.legal_actions()
        return {a: 1.0 / len(legal) for a in legal}


def _expectimax(state, me: int) -> float:
    """Independent oracle: max at my nodes, uniform average at the opponent's, exact ends."""
    if state.is_terminal():
        return state.returns()[me]
    vals = [_expectimax(state.child(a), me) for a in state.legal_actions()]
    return max(vals) if state.current_player() == me else sum(vals) / len(vals)


def test_expectation_opponent_is_an_expectimax_node():
    s = games.play_moves(TTT, "4 0 8 2")  # 4 marks: a small tree
    me = s.current_player()
    r = search(s, exact=True, opponent=UniformOpponent(mode="expectation"))
    assert not r.exact  # not the minimax value
    expected = {a: _expectimax(s.child(a), me) for a in s.legal_actions()}
    for a, v in expected.items():
        # proven terminal outcomes score +-1 whatever their distance; averages stay in between
        assert r.action_values[a] == pytest.approx(v, abs=1e-9), a
    assert r.value == pytest.approx(max(expected.values()))


def test_topk_opponent_prunes_replies():
    s = games.play_moves(TTT, "4")
    full = search(s, exact=True, engine="generic")
    top1 = search(s, exact=True, opponent=FixedOpponent({1: 9.0, 3: 8.0, 5: 7.0, 7: 6.0}, "topk", 1))
    assert top1.extra["pruned_by_hooks"] and not top1.exact
    # x only ever meets o's favourite (an edge): x does at least as well as against perfect play
    assert top1.value >= full.value


class FixedOpponent(OpponentModel):
    def __init__(self, prefs, mode, k=3):
        super().__init__(mode=mode, k=k)
        self.prefs = prefs

    def predict(self, state):
        legal = state.legal_actions()
        w = {a: self.prefs.get(a, 0.01) for a in legal}
        z = sum(w.values())
        return {a: p / z for a, p in w.items()}


def test_hook_answers_are_cached_within_a_search():
    class CountingProposer(UniformProposer):
        calls = 0

        def propose(self, state):
            CountingProposer.calls += 1
            return super().propose(state)

    s = games.play_moves(C4, "4453")
    r = search(s, depth=4, proposer=CountingProposer(), proposer_k=7)
    # iterative deepening revisits positions; each is proposed for once
    assert CountingProposer.calls == r.extra["hook_calls"]["propose"]
    assert CountingProposer.calls < r.nodes


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, word", [
    ({"depth": 0}, "depth"), ({"depth": 2.5}, "depth"), ({"max_nodes": 0}, "max_nodes"),
    ({"time_limit": -1}, "time_limit"), ({"tt_bits": 5}, "tt_bits"),
    ({"exact": True, "depth": 3}, "depth"), ({"proposer_k": 0}, "proposer_k"),
    ({"engine": "fast"}, "engine"), ({"value": lambda s: 0.0}, "ValueEstimator"),
])
def test_bad_options_are_refused_with_clear_errors(kwargs, word):
    with pytest.raises(PlygroundError, match=word):
        search(games.play_moves(TTT, "4"), **kwargs)


@pytest.mark.parametrize("options", [{"depth": 2}, {"max_nodes": 50}, {"exact": True},
                                     {"depth": 2, "engine": "generic"}])
@pytest.mark.parametrize("game, moves", [(TTT, "0 3 1 4 2"), (C4, "1212121")])
def test_terminal_state_is_refused(game, moves, options):
    s = games.play_moves(game, moves)
    assert s.is_terminal()
    with pytest.raises(PlygroundError, match=r"terminal \(returns \[1\.0, -1\.0\]\)"):
        search(s, **options)


def test_native_engine_refuses_llm_style_hooks():
    with pytest.raises(PlygroundError, match="native"):
        search(games.play_moves(TTT, "4"), depth=2, value=CountingValue(), engine="native")
