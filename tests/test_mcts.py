"""MCTS (numba engine for native games, generic engine for OpenSpiel states), checked against
OpenSpiel's rules, exact minimax computed here, and the solved connect-four positions."""

from __future__ import annotations

import functools
import math

import pyspiel
import pytest

from plyground import games
from plyground.games.errors import IllegalActionError, PlygroundError
from plyground.search.generic_mcts import UnsupportedStateError
from plyground.search.hooks import ActionProposer, HeuristicValue, ValueEstimator
from plyground.search.mcts import MCTS

OS_NAME = {"tictactoe": "tic_tac_toe", "connect4": "connect_four"}


# ---------------------------------------------------------------- independent truth (pyspiel)
def to_pyspiel(game_name: str, history) -> pyspiel.State:
    s = pyspiel.load_game(OS_NAME[game_name]).new_initial_state()
    for a in history:
        s.apply_action(int(a))
    return s


def winning_moves(ps: pyspiel.State) -> set[int]:
    """Moves that end the game at once with a win for the player to move."""
    me = ps.current_player()
    out = set()
    for a in ps.legal_actions():
        c = ps.child(a)
        if c.is_terminal() and c.returns()[me] > 0:
            out.add(a)
    return out


def safe_moves(ps: pyspiel.State) -> set[int]:
    """Moves after which the opponent has no immediate win."""
    return {a for a in ps.legal_actions() if ps.child(a).is_terminal() or not winning_moves(ps.child(a))}


@functools.lru_cache(maxsize=None)
def _negamax(history: tuple[int, ...]) -> int:
    s = to_pyspiel("tictactoe", history)
    if s.is_terminal():
        # value for the player who would move next (the one who did not make the last move)
        return int(s.returns()[len(history) % 2])
    return max(-_negamax(history + (a,)) for a in s.legal_actions())


def minimax(history) -> int:
    """Exact tic-tac-toe value (+1/0/-1) for the player to move after ``history``."""
    return _negamax(tuple(int(a) for a in history))


def tictactoe_positions(plies: int):
    """All non-terminal tic-tac-toe positions after ``plies`` moves (as histories, canonical order)."""
    seen, out = set(), []

    def rec(h):
        s = to_pyspiel("tictactoe", h)
        if s.is_terminal():
            return
        if len(h) == plies:
            key = str(s)
            if key not in seen:
                seen.add(key)
                out.append(tuple(h))
            return
        for a in s.legal_actions():
            rec(h + [a])

    rec([])
    return out


def native(game: str, history) -> "games.native.NativeState":
    s = games.make(game).new_initial_state()
    for a in history:
        s.apply_action(int(a))
    return s


# ---------------------------------------------------------------- tactics
TACTICS = [
    # (game, moves, kind): x to move with a win at once / o threatens to win and x must block
    ("tictactoe", [0, 4, 1, 8], "win"),
    ("tictactoe", [0, 4, 8, 1], "block"),
    ("tictactoe", [4, 0, 2, 6], "block"),
    ("connect4", [0, 0, 1, 1, 2, 2], "win"),
    ("connect4", [0, 1, 0, 2, 6, 3], "block"),
    ("connect4", [3, 6, 3, 6, 0, 6], "block"),
]


def _check_tactic(game, moves, kind, action):
    ps = to_pyspiel(game, moves)
    wins, safe = winning_moves(ps), safe_moves(ps)
    if kind == "win":
        assert wins, "test position must have a winning move"
        assert action in wins
    else:
        assert not wins and safe and len(safe) < len(ps.legal_actions()), "test position must force a block"
        assert action in safe


@pytest.mark.parametrize("game, moves, kind", TACTICS)
@pytest.mark.parametrize("solver", [True, False])
def test_native_mcts_wins_and_blocks(game, moves, kind, solver):
    r = MCTS(sims=3000, c=1.4, solver=solver, seed=3).search(native(game, moves))
    assert r.extra["impl"] == "numba"
    _check_tactic(game, moves, kind, r.best_action)


@pytest.mark.parametrize("game, moves, kind", TACTICS)
def test_native_mcts_tactics_with_heuristic_puct_and_batches(game, moves, kind):
    for eng in (MCTS(sims=3000, variant="puct", c=2.0, value=HeuristicValue(), seed=1),
                MCTS(sims=3000, batch_size=8, seed=2)):
        _check_tactic(game, moves, kind, eng.search(native(game, moves)).best_action)


@pytest.mark.parametrize("game, moves, kind", [t for t in TACTICS if t[0] == "tictactoe"]
                         + [("connect4", [0, 0, 1, 1, 2, 2], "win")])
def test_generic_mcts_wins_and_blocks_on_pyspiel_states(game, moves, kind):
    r = MCTS(sims=1500, seed=4).search(to_pyspiel(game, moves))
    assert r.extra["impl"] == "python"
    _check_tactic(game, moves, kind, r.best_action)


@pytest.mark.parametrize("kwargs", [{}, {"solver": False}, {"batch_size": 8}, {"variant": "puct", "c": 2.0},
                                    {"rollouts": 4, "sims": 6000}])
def test_rollouts_find_the_centre_opening_in_connect4(kwargs):
    # Connect four is solved: the centre column is the only winning first move.
    opts = {"sims": 20000, "seed": 0, **kwargs}
    r = MCTS(**opts).search(games.make("connect4").new_initial_state())
    assert r.best_action == 3 and r.value > 0.0 and r.action_values[3] == max(r.action_values.values())


def test_generic_rollouts_find_the_centre_opening_in_connect4():
    r = MCTS(sims=3000, seed=0).search(pyspiel.load_game("connect_four").new_initial_state())
    assert r.best_action == 3 and r.value > 0.0


# ---------------------------------------------------------------- MCTS-Solver
def _solver_cases():
    cases = {1: [], 0: [], -1: []}
    for h in tictactoe_positions(4) + tictactoe_positions(5):
        v = minimax(h)
        if not winning_moves(to_pyspiel("tictactoe", h)):
            cases[v].append(h)
    # a few of each value, deterministic
    return [(h, v) for v in (1, 0, -1) for h in cases[v][:: max(1, len(cases[v]) // 4)][:4]]


SOLVER_CASES = _solver_cases()


def test_solver_cases_cover_wins_draws_and_losses():
    assert {v for _, v in SOLVER_CASES} == {1, 0, -1}


@pytest.mark.parametrize("history, value", SOLVER_CASES)
@pytest.mark.parametrize("impl", ["numba", "python"])
def test_solver_proves_tictactoe_values_against_minimax(history, value, impl):
    state = native("tictactoe", history) if impl == "numba" else to_pyspiel("tictactoe", history)
    r = MCTS(sims=20000, solver=True, seed=0).search(state)
    assert r.extra["impl"] == impl
    assert r.exact, f"not proven after {r.nodes} simulations"
    assert r.value == value
    assert r.nodes < 20000                      # a proven root stops the search
    # the chosen move keeps the value (a proven win plays a winning move)
    assert -minimax(list(history) + [r.best_action]) == value


def test_solver_plays_the_proven_win_with_tiny_budget():
    for impl_state in (native("tictactoe", [0, 4, 1, 8]), to_pyspiel("tictactoe", [0, 4, 1, 8])):
        r = MCTS(sims=50, solver=True, seed=0).search(impl_state)
        assert r.exact and r.value == 1.0 and r.best_action in winning_moves(to_pyspiel("tictactoe", [0, 4, 1, 8]))


def test_solver_agrees_with_solved_connect4_positions(c4_solved):
    late = [(m, s) for m, s in c4_solved if len(m) == 32]
    proven = 0
    for moves, score in late:
        r = MCTS(sims=20000, solver=True, seed=1).search(games.play_moves(games.make("connect4"), moves))
        if r.exact:
            proven += 1
            assert r.value == (score > 0) - (score < 0), (moves, score, r.value)
            if score > 0:   # a proven win's move must leave the opponent lost
                child = games.play_moves(games.make("connect4"), moves).child(r.best_action)
                rc = MCTS(sims=20000, solver=True, seed=2).search(child) if not child.is_terminal() else None
                assert rc is None or (rc.exact and rc.value == -1.0)
    assert proven >= len(late) * 3 // 4, f"only {proven} of {len(late)} proven"


# ---------------------------------------------------------------- seeds, reuse, budgets
@pytest.mark.parametrize("make_state", [lambda: games.make("connect4").new_initial_state(),
                                        lambda: to_pyspiel("tictactoe", [])])
def test_seeded_search_is_reproducible(make_state):
    a = MCTS(sims=1500, seed=7).search(make_state())
    b = MCTS(sims=1500, seed=7).search(make_state())
    c = MCTS(sims=1500, seed=8).search(make_state())
    assert a.visits == b.visits and a.action_values == b.action_values and a.pv == b.pv
    assert a.visits != c.visits


def test_seeded_sequence_of_searches_is_reproducible_and_reset_restarts_it():
    def game_visits(m):
        s = games.make("connect4").new_initial_state()
        out = []
        for _ in range(3):
            r = m.search(s)
            out.append(r.visits)
            s.apply_action(r.best_action)
        return out

    m = MCTS(sims=800, seed=5)
    first = game_visits(m)
    assert game_visits(MCTS(sims=800, seed=5)) == first
    m.reset()
    assert game_visits(m) == first


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("make_root", [lambda: games.make("connect4").new_initial_state(),
                                       lambda: games.make("openspiel:tic_tac_toe").new_initial_state()])
def test_tree_reuse_keeps_the_subtree_visits(make_root, batch_size):
    m = MCTS(sims=2000, seed=1, batch_size=batch_size)
    s = make_root()
    r1 = m.search(s)
    assert r1.extra["reused_visits"] == 0
    a = r1.best_action
    s.apply_action(a)
    r2 = m.search(s)
    assert r2.extra["reused_visits"] == r1.visits[a] > 0
    assert r2.extra["root_visits"] == r1.visits[a] + r2.nodes
    b = max(r2.visits, key=r2.visits.get)
    s.apply_action(b)
    r3 = m.search(s)
    assert r3.extra["reused_visits"] == r2.visits[b]
    # a state that does not extend the root's history starts afresh
    other = make_root()
    other.apply_action(next(x for x in other.legal_actions() if x != a))
    assert m.search(other).extra["reused_visits"] == 0
    assert MCTS(sims=500, reuse_tree=False, seed=1).search(s).extra["reused_visits"] == 0


def test_tree_grows_when_a_reused_tree_needs_room():
    m = MCTS(sims=500, seed=2, solver=False)
    s = games.make("connect4").new_initial_state()
    r1 = m.search(s)
    m.sims = 20000
    r2 = m.search(s)                      # same root: reused, then far more nodes than allocated
    assert r2.extra["reused_visits"] == 500
    assert r2.nodes == 20000 and r2.extra["capacity"] > r1.extra["capacity"]
    assert r2.extra["root_visits"] == 20500


@pytest.mark.parametrize("make_state", [lambda: games.make("connect4").new_initial_state(),
                                        lambda: games.make("openspiel:tic_tac_toe").new_initial_state()])
def test_budgets_stop_the_search(make_state):
    r = MCTS(sims=777, solver=False, seed=0).search(make_state())
    assert r.nodes == 777 and r.extra["stop_reason"] == "sims" and sum(r.visits.values()) >= 776
    r = MCTS(sims=None, time_limit=0.3, solver=False, seed=0).search(make_state())
    assert r.extra["stop_reason"] == "time" and 0.3 <= r.seconds < 3.0 and r.nodes > 0
    r = MCTS(sims=None, time_limit=0.0, seed=0).search(make_state())     # still searches a little
    assert r.nodes >= 1 and r.best_action in make_state().legal_actions()
    for bs in (1, 8):
        r = MCTS(sims=100000, max_nodes=300, batch_size=bs, solver=False, seed=0).search(make_state())
        assert r.extra["stop_reason"] == "max_nodes" and r.extra["tree_nodes"] <= 300 and r.nodes < 100000
        assert r.best_action in make_state().legal_actions()
    r = MCTS(sims=50, max_nodes=2, seed=0).search(make_state())     # not even the root fits its children
    assert r.best_action in make_state().legal_actions()


# ---------------------------------------------------------------- batched hooks
class CountingValue(ValueEstimator):
    """Player 0 is happy (+1) once it has played ``move``; records the batch sizes it sees."""

    def __init__(self, move: int) -> None:
        self.move = move
        self.batches: list[int] = []

    def evaluate(self, states):
        self.batches.append(len(states))
        out = []
        for s in states:
            h = s.history()
            v0 = 1.0 if self.move in h[0::2] else 0.0
            out.append(v0 if len(h) % 2 == 0 else -v0)
        return out


class OneMoveProposer(ActionProposer):
    """All prior mass on ``move`` when legal (uniform otherwise); records batch sizes."""

    def __init__(self, move: int) -> None:
        self.move = move
        self.batches: list[int] = []

    def propose_batch(self, states):
        self.batches.append(len(states))
        out = []
        for s in states:
            legal = s.legal_actions()
            out.append({a: (1.0 if a == self.move else 0.0) for a in legal} if self.move in legal
                       else {a: 1.0 / len(legal) for a in legal})
        return out


class ZeroValue(ValueEstimator):
    def __init__(self) -> None:
        self.batches: list[int] = []

    def evaluate(self, states):
        self.batches.append(len(states))
        return [0.0] * len(states)


@pytest.mark.parametrize("make_state, move", [(lambda: games.make("connect4").new_initial_state(), 0),
                                              (lambda: games.make("openspiel:connect_four").new_initial_state(), 6)])
def test_batched_hooks_get_full_batches_and_their_priors_steer_puct(make_state, move):
    prop, val = OneMoveProposer(move), ZeroValue()
    r = MCTS(sims=400, variant="puct", c=2.0, batch_size=8, proposer=prop, value=val, seed=0).search(make_state())
    assert prop.batches == val.batches
    assert max(prop.batches) == 8 and all(1 <= b <= 8 for b in prop.batches)
    assert sum(b == 8 for b in prop.batches) >= 0.8 * len(prop.batches)
    assert sum(prop.batches) == r.extra["evaluated_leaves"]
    assert r.best_action == move and r.visits[move] > 0.5 * r.nodes


@pytest.mark.parametrize("make_state, move", [(lambda: games.make("connect4").new_initial_state(), 6),
                                              (lambda: games.make("openspiel:tic_tac_toe").new_initial_state(), 8)])
def test_custom_values_are_backed_up_from_the_right_side(make_state, move):
    val = CountingValue(move)
    r = MCTS(sims=600, batch_size=4, value=val, solver=False, seed=0).search(make_state())
    assert r.best_action == move
    assert max(val.batches) == 4


def test_proposer_prunes_moves_and_bad_hook_answers_are_clear_errors():
    class Only(ActionProposer):
        def __init__(self, moves):
            self.moves = moves

        def propose(self, state):
            legal = [a for a in state.legal_actions() if a in self.moves] or state.legal_actions()
            return {a: 1.0 for a in legal}

    r = MCTS(sims=300, proposer=Only({2, 3}), seed=0).search(games.make("connect4").new_initial_state())
    assert set(r.visits) == {2, 3}

    class Illegal(ActionProposer):
        def propose(self, state):
            return {99: 1.0}

    with pytest.raises(IllegalActionError, match="99"):
        MCTS(sims=50, proposer=Illegal()).search(games.make("connect4").new_initial_state())

    class TooBig(ValueEstimator):
        def evaluate(self, states):
            return [3.0] * len(states)

    with pytest.raises(PlygroundError, match=r"\[-1, 1\]"):
        MCTS(sims=50, value=TooBig()).search(games.make("tictactoe").new_initial_state())


def test_dirichlet_noise_is_seeded_and_changes_the_root_policy():
    s = games.make("connect4").new_initial_state()
    plain = MCTS(sims=1500, variant="puct", c=2.0, seed=3).search(s)
    a = MCTS(sims=1500, variant="puct", c=2.0, dirichlet_alpha=0.3, seed=3).search(s)
    b = MCTS(sims=1500, variant="puct", c=2.0, dirichlet_alpha=0.3, seed=3).search(s)
    assert a.visits == b.visits and a.visits != plain.visits


# ---------------------------------------------------------------- whole games
def _play(game, agents, first: int) -> list[float]:
    s = game.new_initial_state()
    import random
    rng = random.Random(first)
    while not s.is_terminal():
        p = s.current_player()
        who = agents[p]
        a = who.search(s).best_action if who is not None else rng.choice(s.legal_actions())
        s.apply_action(a)
    return s.returns()


def test_mcts_never_loses_to_random_at_tictactoe():
    g = games.make("tictactoe")
    for k in range(6):
        seat = k % 2
        agents = [None, None]
        agents[seat] = MCTS(sims=3000, seed=k)
        assert _play(g, agents, k)[seat] >= 0.0


def test_generic_mcts_plays_whole_openspiel_tictactoe_games():
    g = games.make("openspiel:tic_tac_toe")
    assert _play(g, [MCTS(sims=1500, seed=1), MCTS(sims=1500, seed=2)], 0) == [0.0, 0.0]  # perfect play draws
    for seat in (0, 1):
        agents = [None, None]
        agents[seat] = MCTS(sims=1500, seed=seat)
        assert _play(g, agents, seat)[seat] >= 0.0


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, fragment", [
    ({"variant": "ucb"}, "variant 'ucb' is not one of ('uct', 'puct')"),
    ({"sims": 0}, "sims must be >= 1"),
    ({"sims": None}, "needs a budget"),
    ({"c": -1.0}, "c must be >= 0"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"dirichlet_alpha": 0.0}, "dirichlet_alpha must be > 0"),
    ({"max_nodes": 1}, "max_nodes must be >= 2"),
])
def test_bad_options_are_named(kwargs, fragment):
    with pytest.raises((ValueError, TypeError)) as e:
        MCTS(**kwargs)
    assert fragment in str(e.value)


def test_unsupported_states_raise_clear_errors():
    with pytest.raises(PlygroundError, match="terminal"):
        MCTS(sims=10).search(native("tictactoe", [0, 3, 1, 4, 2]))
    kuhn = pyspiel.load_game("kuhn_poker").new_initial_state()       # a chance node
    with pytest.raises(UnsupportedStateError, match="chance"):
        MCTS(sims=10).search(kuhn)
    three = pyspiel.load_game("kuhn_poker(players=3)").new_initial_state()
    for card in (0, 1, 2):                      # three players: the information-set engine searches it
        three.apply_action(card)
    assert MCTS(sims=10, seed=0).search(three).extra["impl"] == "ismcts"
    rps = pyspiel.load_game("matrix_rps").new_initial_state()        # simultaneous moves
    with pytest.raises(UnsupportedStateError):
        MCTS(sims=10).search(rps)


def test_result_fields_are_consistent():
    r = MCTS(sims=2000, seed=0).search(games.make("connect4").new_initial_state())
    assert r.engine == "mcts" and r.nodes == 2000 and r.depth >= 3 and len(r.pv) >= 3
    assert r.pv[0] == r.best_action == max(r.visits, key=r.visits.get)
    assert sum(r.visits.values()) == 2000 - 1          # the first simulation evaluates the root itself
    assert all(-1.0 <= v <= 1.0 for v in r.action_values.values()) and -1.0 <= r.value <= 1.0
    assert not math.isnan(r.value) and r.to_json()["visits"]
