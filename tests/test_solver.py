"""The exact solver against independent truth: the shared solved connect-four positions (scores
from Pascal Pons' solver), the rules (a principal variation really ends the game as the score
says) and OpenSpiel's own alpha-beta on tic-tac-toe."""

from __future__ import annotations

import pytest

from plyground import games
from conftest import random_positions
from plyground.search.alphabeta import search, solve

C4 = games.make("connect4")
TTT = games.make("tictactoe")


def c4_state(moves: str):
    return games.play_moves(C4, moves)


def _by_stones(rows, *stones, limit=None):
    out = [(m, s) for m, s in rows if len(m) in stones]
    return out if limit is None else out[:limit]


# ---------------------------------------------------------------- scores of the shared positions
@pytest.mark.parametrize("stones", [16, 20, 24, 28, 32])
def test_solver_scores_match_shared_data(c4_solved, stones):
    rows = _by_stones(c4_solved, stones)
    assert len(rows) == 40
    wrong = [(m, s, solve(c4_state(m), all_values=False).score) for m, s in rows]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert not wrong, f"{len(wrong)} wrong scores at {stones} stones: {wrong[:5]}"


def test_solver_scores_sample_at_12_stones(c4_solved):
    for m, s in _by_stones(c4_solved, 12, limit=4):
        r = solve(c4_state(m), all_values=False)
        assert r.exact and r.score == s, (m, s, r.score)
        assert r.value == (0.0 if s == 0 else (1.0 if s > 0 else -1.0))


@pytest.mark.slow
def test_solver_scores_match_every_shared_position(c4_solved):
    wrong = []
    for m, s in c4_solved:
        r = solve(c4_state(m), all_values=False)
        if r.score != s:
            wrong.append((m, s, r.score))
    assert len(c4_solved) == 280
    assert not wrong, wrong[:10]


# ---------------------------------------------------------------- best moves, action scores, PV
@pytest.mark.parametrize("stones", [20, 28])
def test_best_move_keeps_the_score(c4_solved, stones):
    """The child after the best move has score -score; every action score is -score(child)."""
    for m, s in _by_stones(c4_solved, stones, limit=6):
        state = c4_state(m)
        r = solve(state)
        assert r.score == s
        assert r.best_action in state.legal_actions()
        assert max(r.extra["action_scores"].values()) == s
        assert r.extra["action_scores"][r.best_action] == s
        for a, sa in r.extra["action_scores"].items():
            child = state.child(a)
            if child.is_terminal():
                continue  # no immediate wins in the file; a full board is a draw
            assert solve(child, all_values=False).score == -sa, (m, a)
        child = state.child(r.best_action)
        assert solve(child, all_values=False).score == -s


@pytest.mark.parametrize("stones", [24, 32])
def test_principal_variation_ends_as_the_score_says(c4_solved, stones):
    """Playing the PV with the real rules reaches the end: the winner and the moment of the
    winning stone match the distance-to-win score (|score| = (43 - n) // 2)."""
    for m, s in _by_stones(c4_solved, stones, limit=5):
        state = c4_state(m)
        n0 = len(m)
        me = state.current_player()
        r = solve(state, all_values=False)
        for a in r.pv:
            state.apply_action(a)
        assert state.is_terminal(), (m, r.pv)
        ret = state.returns()[me]
        if s == 0:
            assert ret == 0 and len(r.pv) == 42 - n0
        else:
            assert ret == (1.0 if s > 0 else -1.0)
            n_win = n0 + len(r.pv) - 1  # stones on the board when the winning stone was played
            assert (43 - n_win) // 2 == abs(s), (m, s, r.pv)


def _forced_block_position(min_stones: int, seed: int):
    """A random position (fixed seed) where the player to move cannot win at once and the
    opponent threatens to win at exactly one playable cell."""
    import random
    rng = random.Random(seed)
    while True:
        s = C4.new_initial_state()
        while not s.is_terminal() and len(s.history()) < min_stones:
            s.apply_action(rng.choice(s.legal_actions()))
        if s.is_terminal():
            continue
        moves = s.legal_actions()
        if any(s.child(a).is_terminal() for a in moves):
            continue  # the player to move could win (or end the game) at once
        threats = []
        for a in moves:
            # the opponent's immediate wins if we play elsewhere: try each reply after each move
            c = s.child(a)
            threats.append(any(c.child(b).returns()[c.current_player()] > 0 for b in c.legal_actions()))
        if sum(not t for t in threats) == 1 and len(moves) > 2:
            return s, moves[threats.index(False)]


def test_immediate_win_scores_connect4():
    # x has three in column 1 and plays the fourth: 6 stones on the board -> (43 - 6) // 2
    r = solve(c4_state("121212"), all_values=False)
    assert (r.best_action, r.score, r.value, r.exact) == (0, 18, 1.0, True)
    assert r.pv == [0]
    # a late position where only one move does not lose at once: every other move lets the
    # opponent win with n + 1 stones on the board
    state, block = _forced_block_position(30, seed=3)
    n = len(state.history())
    r = solve(state)
    assert r.best_action == block
    for a, sc in r.extra["action_scores"].items():
        if a != block:
            assert sc == -((43 - (n + 1)) // 2), (state.history(), a, sc)


# ---------------------------------------------------------------- tic-tac-toe
def test_tictactoe_empty_board_is_a_draw():
    r = solve(TTT.new_initial_state())
    assert r.exact and r.score == 0 and r.value == 0.0
    assert set(r.extra["action_scores"].values()) == {0}  # every first move draws
    s = TTT.new_initial_state()
    for a in r.pv:
        s.apply_action(a)
    assert s.is_terminal() and s.returns() == [0.0, 0.0]


def test_tictactoe_hand_checked_positions():
    # x: 0, 1; o: 3, 4; x to move wins at once with cell 2: 4 marks placed -> (10 - 4) // 2 = 3
    r = solve(games.play_moves(TTT, "0 3 1 4"))
    assert (r.best_action, r.score) == (2, 3)
    # x: centre, o: corner 0, x: corner 8; o must take a corner (2 or 6), an edge loses
    r = solve(games.play_moves(TTT, "4 0 8"))
    assert r.score == 0
    scores = r.extra["action_scores"]
    assert scores[2] == 0 and scores[6] == 0
    assert all(scores[e] < 0 for e in (1, 3, 5, 7))
    # x: 0, 2, 4 threatens cells 1, 6 and 8; o (3, 5) cannot block them all: x completes a line
    # with 6 marks on the board -> o's score is -(10 - 6) // 2
    r = solve(games.play_moves(TTT, "0 3 2 5 4"))
    assert (r.score, r.value) == (-2, -1.0)


def _openspiel_value(moves: list[int]) -> float:
    import pyspiel
    from open_spiel.python.algorithms import minimax
    game = pyspiel.load_game("tic_tac_toe")
    state = game.new_initial_state()
    for a in moves:
        state.apply_action(a)
    value, _ = minimax.alpha_beta_search(game, state=state,
                                         maximizing_player_id=state.current_player())
    return value


def test_openspiel_alpha_beta_agrees_on_tictactoe():
    """OpenSpiel's own alpha-beta is the independent oracle for the game value."""
    for state in random_positions(TTT, 25, (0, 7), seed=7):
        expected = _openspiel_value(state.history())
        r = solve(state)
        assert r.value == expected, (state.history(), r.score, expected)
        d = search(state, depth=9)
        assert d.exact and d.value == expected


def test_solver_table_growth_keeps_scores_exact(c4_solved, monkeypatch):
    """Force the table to start tiny and grow (moving its entries) several times per solve."""
    from plyground.search import alphabeta
    monkeypatch.setattr(alphabeta, "GROW_FACTOR", 1)
    monkeypatch.setattr(alphabeta, "_solver_start_bits", lambda remaining, max_bits: 10)
    alphabeta.clear_tables()
    grown = 0
    try:
        for m, s in _by_stones(c4_solved, 16, limit=10):
            r = solve(c4_state(m), all_values=False, tt_bits=20)
            assert r.score == s, m
            grown += r.extra["tt_bits"] > 10
    finally:
        alphabeta.clear_tables()
    assert grown >= 5  # most of these solves outgrew a 1021-slot table
