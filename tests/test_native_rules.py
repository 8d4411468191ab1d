"""The oracle test: our numba-native rules against OpenSpiel's, ply by ply, over many random games.

For tic-tac-toe and connect four, 1,000 seeded random games each: at every ply our state and
pyspiel's agree on the legal actions, the player to move, the terminal flag, the returns, the
printed board, the observation tensors and the serialization.  Plus notation
round-trips and the typed errors on bad input.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pyspiel
import pytest

from conftest import random_positions
from plyground import games
from plyground.games import IllegalActionError, PlygroundError

PAIRS = [("tictactoe", "tic_tac_toe"), ("connect4", "connect_four")]
N_GAMES = 1000


def _assert_same(ours, theirs, shape, where: str, players=None) -> None:
    assert ours.current_player() == theirs.current_player(), where
    assert ours.is_terminal() == theirs.is_terminal(), where
    assert ours.legal_actions() == list(theirs.legal_actions()), where
    assert ours.returns() == list(theirs.returns()), where
    assert str(ours) == str(theirs), where
    assert ours.serialize() == theirs.serialize(), where
    if players is None:  # the player to move's view every ply; both views at the start and the end
        players = (max(theirs.current_player(), 0),)
    for p in players:
        expected = np.asarray(theirs.observation_tensor(p), dtype=np.float32).reshape(shape)
        got = ours.observation_tensor(p)
        assert got.shape == tuple(shape), where
        assert np.array_equal(got, expected), f"{where}, observation of player {p}"


@pytest.mark.parametrize("name, os_name", PAIRS)
def test_random_games_agree_with_openspiel_every_ply(name, os_name):
    game = games.make(name)
    os_game = pyspiel.load_game(os_name)
    shape = os_game.observation_tensor_shape()
    assert game.num_distinct_actions() == os_game.num_distinct_actions()
    assert game.max_game_length() == os_game.max_game_length()
    assert game.observation_tensor_shape() == list(shape)
    rng = random.Random(20240611)
    outcomes = {1.0: 0, -1.0: 0, 0.0: 0}
    plies = 0
    for g in range(N_GAMES):
        ours, theirs = game.new_initial_state(), os_game.new_initial_state()
        _assert_same(ours, theirs, shape, f"{name} game {g} start", players=(0, 1))
        while not theirs.is_terminal():
            a = rng.choice(theirs.legal_actions())
            ours.apply_action(a)
            theirs.apply_action(a)
            plies += 1
            _assert_same(ours, theirs, shape, f"{name} game {g} after {ours.history()}")
        _assert_same(ours, theirs, shape, f"{name} game {g} end", players=(0, 1))
        assert ours.history() == list(theirs.history())
        outcomes[ours.returns()[0]] += 1
    # Random play must have exercised wins for both sides (and, for tic-tac-toe, draws).
    assert outcomes[1.0] > 100 and outcomes[-1.0] > 100, outcomes
    if name == "tictactoe":
        assert outcomes[0.0] > 50, outcomes
    assert plies > N_GAMES * 5


@pytest.mark.parametrize("name, os_name", PAIRS)
def test_deserialize_round_trip_matches_openspiel(name, os_name):
    game = games.make(name)
    os_game = pyspiel.load_game(os_name)
    rng = random.Random(7)
    for _ in range(50):
        state = game.new_initial_state()
        for _ in range(rng.randrange(0, game.max_game_length())):
            if state.is_terminal():
                break
            state.apply_action(rng.choice(state.legal_actions()))
        text = state.serialize()
        back = game.deserialize_state(text)
        assert back.history() == state.history() and str(back) == str(state)
        assert str(os_game.deserialize_state(text)) == str(state)


def test_tictactoe_notation_is_openspiels_and_round_trips():
    game, os_game = games.make("tictactoe"), pyspiel.load_game("tic_tac_toe")
    rng = random.Random(3)
    for _ in range(100):
        ours, theirs = game.new_initial_state(), os_game.new_initial_state()
        while not ours.is_terminal():
            p = ours.current_player()
            for a in ours.legal_actions():
                text = ours.action_to_string(a)
                assert text == theirs.action_to_string(p, a)
                assert ours.string_to_action(text) == a
                assert ours.action_to_string(p, a) == text
            a = rng.choice(ours.legal_actions())
            ours.apply_action(a)
            theirs.apply_action(a)
    # Other accepted spellings of the centre cell.
    state = game.new_initial_state()
    for text in ("(1,1)", "1,1", " x(1, 1) ", "4"):
        assert state.string_to_action(text) == 4


def test_connect4_notation_round_trips():
    game = games.make("connect4")
    state = game.new_initial_state()
    for a in range(7):
        assert state.action_to_string(a) == str(a + 1)
        assert state.string_to_action(str(a + 1)) == a
    assert games.play_moves(game, "4453").history() == [3, 3, 4, 2]


def _fill_column(state, col: int) -> None:
    """Fill ``col``: six stones of alternating colours, so no vertical four ends the game."""
    for _ in range(6):
        state.apply_action(col)


@pytest.mark.parametrize("name", ["tictactoe", "connect4"])
@pytest.mark.parametrize("bad", [-1, "max", 100, 2.5, "3", None, np.float64(1.0)])
def test_out_of_range_or_non_integer_actions_raise_and_change_nothing(name, bad):
    state = games.make(name).new_initial_state()
    state.apply_action(0)
    if bad == "max":
        bad = state.game.num_distinct_actions()
    before = state.serialize()
    with pytest.raises(IllegalActionError) as err:
        state.apply_action(bad)
    assert err.value.game == name
    assert err.value.legal == state.legal_actions()
    assert repr(bad) in str(err.value)
    assert state.serialize() == before


def test_numpy_integer_actions_are_accepted():
    state = games.make("connect4").new_initial_state()
    state.apply_action(np.int64(3))
    state.apply_action(np.int32(3))
    assert state.history() == [3, 3]


def test_occupied_cell_full_column_and_finished_game_raise():
    ttt = games.make("tictactoe").new_initial_state()
    ttt.apply_action(4)
    with pytest.raises(IllegalActionError) as err:
        ttt.apply_action(4)
    assert 4 not in err.value.legal and "tictactoe" in str(err.value)

    c4 = games.make("connect4").new_initial_state()
    _fill_column(c4, 0)
    assert 0 not in c4.legal_actions()
    with pytest.raises(IllegalActionError) as err:
        c4.apply_action(0)
    assert err.value.legal == [1, 2, 3, 4, 5, 6]

    won = games.play_moves(games.make("tictactoe"), "0 3 1 4 2")  # x: top row
    assert won.is_terminal() and won.returns() == [1.0, -1.0] and won.current_player() == -4
    with pytest.raises(IllegalActionError) as err:
        won.apply_action(5)
    assert err.value.legal == [] and "over" in str(err.value)


@pytest.mark.parametrize("name, bad_text", [
    ("tictactoe", ""), ("tictactoe", "(3,3)"), ("tictactoe", "middle"), ("tictactoe", "9"),
    ("connect4", ""), ("connect4", "0"), ("connect4", "8"), ("connect4", "four"), ("connect4", "44"),
])
def test_unparseable_strings_raise_with_legal_moves_in_notation(name, bad_text):
    state = games.make(name).new_initial_state()
    with pytest.raises(IllegalActionError) as err:
        state.string_to_action(bad_text)
    assert err.value.legal == [state.action_to_string(a) for a in state.legal_actions()]


def test_string_of_an_occupied_cell_is_rejected():
    state = games.make("tictactoe").new_initial_state()
    state.apply_action(4)
    with pytest.raises(IllegalActionError) as err:
        state.string_to_action("(1,1)")
    assert "o(1,1)" not in err.value.legal and len(err.value.legal) == 8


def test_deserialize_rejects_garbage_and_illegal_histories():
    game = games.make("connect4")
    with pytest.raises(PlygroundError, match="not an action number"):
        game.deserialize_state("3\nx\n")
    with pytest.raises(IllegalActionError):
        game.deserialize_state("\n".join(["0"] * 7))


# ---------------------------------------------------------------- the kernels' value interface
@pytest.mark.parametrize("name, os_name", PAIRS)
def test_kernel_positions_are_values_play_returns_the_child(name, os_name):
    """``play(s, a)`` returns the next position and leaves ``s`` alone, for the tuple form the
    engines use and the array form a NativeState holds; both agree with pyspiel's next state."""
    game = games.make(name)
    k = game.kernel
    os_game = pyspiel.load_game(os_name)
    rng = random.Random(11)
    for _ in range(100):
        state, theirs = game.new_initial_state(), os_game.new_initial_state()
        s = k.new_state()
        assert isinstance(s, tuple) and len(s) == k.STATE_LEN
        while not theirs.is_terminal():
            a = rng.choice(theirs.legal_actions())
            before_s, before_array = s, state.array.copy()
            child = k.play(s, a)
            from_array = k.play(state.array, a)
            assert s == before_s and np.array_equal(state.array, before_array)
            assert child == from_array
            state.apply_action(a)
            theirs.apply_action(a)
            s = child
            assert s == tuple(state.array) == k.as_state(state.array)
            assert bool(k.is_terminal(s)) == theirs.is_terminal()
            if not theirs.is_terminal():
                assert k.to_play(s) == theirs.current_player()
        assert k.returns0(s) == theirs.returns()[0]


@pytest.mark.parametrize("name", ["tictactoe", "connect4"])
def test_nonlosing_moves_and_the_ordered_moves_claim(name):
    """``nonlosing_moves`` lists exactly the legal moves after which the opponent cannot win at
    once (checked by playing every reply); and a kernel that sets ``ORDERED_MOVES`` lists them in
    ``order_scores``' order, best first (the engines then skip sorting)."""
    game = games.make(name)
    k = game.kernel
    out = np.zeros(k.NUM_ACTIONS, dtype=np.int64)
    scores = np.zeros(k.NUM_ACTIONS, dtype=np.int64)
    checked = 0
    for state in random_positions(game, 300, (0, k.MAX_PLIES - 1), seed=5):
        s = k.as_state(state.array)
        if k.immediate_win(s) >= 0:
            continue  # nonlosing_moves assumes no immediate win
        n = k.nonlosing_moves(s, out)
        safe = []
        for a in state.legal_actions():
            child = state.child(a)
            if not any(child.child(b).is_terminal() and child.child(b).returns()[child.current_player()] > 0
                       for b in child.legal_actions()):
                safe.append(a)
        assert sorted(out[:n].tolist()) == safe, state.history()  # none safe: n == 0
        if k.ORDERED_MOVES and n > 1:
            k.order_scores(s, out, n, scores)
            assert all(scores[i] >= scores[i + 1] for i in range(n - 1)), state.history()
        checked += 1
    assert checked > 100


def _grid_from_history(name, history):
    """The board as {(row, col): player} replayed from the moves (row 0 = bottom for connect4)."""
    grid, heights = {}, [0] * 7
    for i, a in enumerate(history):
        if name == "tictactoe":
            grid[divmod(a, 3)] = i % 2
        else:
            grid[(heights[a], a)] = i % 2
            heights[a] += 1
    return grid


def _oracle_heuristic(name, history):
    """The documented heuristics, recomputed from a plain grid for the player to move."""
    grid = _grid_from_history(name, history)
    me = len(history) % 2
    if name == "tictactoe":
        lines = [[(r, c) for c in range(3)] for r in range(3)] + [[(r, c) for r in range(3)] for c in range(3)]
        lines += [[(0, 0), (1, 1), (2, 2)], [(0, 2), (1, 1), (2, 0)]]
        score = 0
        for line in lines:
            marks = [grid.get(cell) for cell in line]
            if 1 - me not in marks:
                score += marks.count(me) ** 2
            if me not in marks:
                score -= marks.count(1 - me) ** 2
        return math.tanh(score / 8.0)
    # connect4: empty cells (any height) that would complete four for a side, 1 each; stones in the
    # centre column, 1/4 each; mine minus the opponent's
    def completes(cell, p):
        r, c = cell
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            for start in range(-3, 1):
                cells = [(r + (start + i) * dr, c + (start + i) * dc) for i in range(4)]
                if all(0 <= rr < 6 and 0 <= cc < 7 for rr, cc in cells) and all(
                        x == cell or grid.get(x) == p for x in cells):
                    return True
        return False
    empty = [(r, c) for r in range(6) for c in range(7) if (r, c) not in grid]
    score = sum(completes(e, me) for e in empty) - sum(completes(e, 1 - me) for e in empty)
    score += 0.25 * (sum(grid.get((r, 3)) == me for r in range(6))
                     - sum(grid.get((r, 3)) == 1 - me for r in range(6)))
    return math.tanh(score / 4.0)


@pytest.mark.parametrize("name", ["tictactoe", "connect4"])
def test_heuristic_and_its_integer_score_match_a_grid_oracle(name):
    """The kernel's ``heuristic`` equals the documented formula recomputed from a plain grid, and
    ``heuristic_score`` (the alpha-beta's leaf score, a table lookup) is exactly
    ``round(heuristic * HEURISTIC_SCALE)``, on ongoing and finished positions."""
    from plyground.games.native.status import HEURISTIC_SCALE
    game = games.make(name)
    k = game.kernel
    rng = random.Random(11)
    seen, finished = set(), 0
    for _ in range(600):
        state = game.new_initial_state()
        for _ in range(rng.randrange(k.MAX_PLIES + 1)):
            if state.is_terminal():
                break
            state.apply_action(rng.choice(state.legal_actions()))
        h = float(k.heuristic(state.array))
        if state.is_terminal():
            finished += 1
            expected = state.returns()[len(state.history()) % 2]
        else:
            expected = _oracle_heuristic(name, state.history())
        assert h == pytest.approx(expected, abs=1e-12), state.history()
        assert int(k.heuristic_score(state.array)) == round(h * HEURISTIC_SCALE), state.history()
        seen.add(round(h * HEURISTIC_SCALE))
    assert finished > 20 and len(seen) > 15   # the sample covers finished games and many values
