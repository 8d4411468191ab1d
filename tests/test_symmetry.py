"""Game symmetries checked against the rules: the transformed move sequence of a random game is legal,
reaches the transformed observation and has the transformed legal set, at every ply."""

from __future__ import annotations

import numpy as np
import pytest

from plyground import games
from plyground.games.symmetry import Symmetry, symmetries


def _random_game(game, rng) -> list[int]:
    state = game.new_initial_state()
    seq = []
    while not state.is_terminal():
        a = int(rng.choice(state.legal_actions()))
        seq.append(a)
        state.apply_action(a)
    return seq


def _mask(state, num_actions: int) -> np.ndarray:
    m = np.zeros(num_actions, dtype=bool)
    m[state.legal_actions()] = True
    return m


def _check_against_rules(game, sym: Symmetry, seq: list[int]) -> None:
    """Replay ``seq`` and its transform side by side; at every ply compare observation, legal set,
    the terminal flag and (at the end) the returns."""
    a_state, b_state = game.new_initial_state(), game.new_initial_state()
    na = game.num_distinct_actions()
    moves = sym.actions(seq)
    for ply in range(len(seq) + 1):
        obs_a = np.asarray(a_state.observation_tensor(), dtype=np.float32)
        obs_b = np.asarray(b_state.observation_tensor(), dtype=np.float32)
        assert np.array_equal(sym.apply_obs(obs_a[None])[0], obs_b), (sym.name, seq[:ply])
        # the flat form gives the same answer
        assert np.array_equal(sym.apply_obs(obs_a.reshape(1, -1))[0], obs_b.reshape(-1))
        legal_a, legal_b = _mask(a_state, na), _mask(b_state, na)
        assert np.array_equal(sym.apply_legal(legal_a[None])[0], legal_b), (sym.name, seq[:ply])
        assert a_state.is_terminal() == b_state.is_terminal()
        assert a_state.current_player() == b_state.current_player()
        if ply == len(seq):
            break
        assert moves[ply] in b_state.legal_actions()  # the mirror of a legal sequence is legal
        a_state.apply_action(seq[ply])
        b_state.apply_action(moves[ply])
    assert list(a_state.returns()) == list(b_state.returns())


@pytest.mark.parametrize("name", ["connect4", "openspiel:connect_four"])
def test_connect_four_mirror_follows_the_rules(name):
    game = games.make(name)
    syms = symmetries(game)
    assert [s.name for s in syms] == ["mirror"]
    rng = np.random.default_rng(7)
    for _ in range(25 if name == "connect4" else 10):
        _check_against_rules(game, syms[0], _random_game(game, rng))


@pytest.mark.parametrize("name", ["tictactoe", "openspiel:tic_tac_toe"])
def test_tictactoe_dihedral_group_follows_the_rules(name):
    game = games.make(name)
    syms = symmetries(game)
    assert len(syms) == 7
    rng = np.random.default_rng(11)
    for _ in range(6):
        seq = _random_game(game, rng)
        for sym in syms:
            _check_against_rules(game, sym, seq)


def test_tictactoe_group_is_the_eight_distinct_boards():
    """From a position with no symmetry of its own, the identity and the 7 transforms reach 8
    different positions (so no element is the identity or a duplicate)."""
    game = games.make("tictactoe")
    seq = [0, 1, 5]  # x(0,0) o(0,1) x(1,2): no symmetry fixes it
    s = game.new_initial_state()
    for a in seq:
        s.apply_action(a)
    boards = {str(s)}
    for sym in symmetries(game):
        s = game.new_initial_state()
        for a in sym.actions(seq):
            s.apply_action(a)
        boards.add(str(s))
    assert len(boards) == 8


def test_policy_and_batch_application():
    """A policy's probability follows its action; batches transform row by row."""
    sym = symmetries(games.make("connect4"))[0]
    policy = np.array([[0.5, 0.25, 0.25, 0, 0, 0, 0], [0, 0, 0, 1.0, 0, 0, 0]], dtype=np.float32)
    out = sym.apply_policy(policy)
    for row in range(2):
        for a in range(7):
            assert out[row, sym.action_perm[a]] == policy[row, a]
    assert sym.apply_actions(np.array([[0, 6], [3, 2]])).tolist() == [[6, 0], [3, 4]]


@pytest.mark.parametrize("name", ["openspiel:hex(board_size=3)", "openspiel:breakthrough",
                                  "pettingzoo:classic/connect_four_v3", "openspiel:kuhn_poker"])
def test_other_games_declare_none(name):
    assert symmetries(games.make(name)) == []
