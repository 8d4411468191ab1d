"""``openspiel:<game>`` against raw pyspiel: random games agree every ply; typed errors; serialization."""

from __future__ import annotations

import random

import numpy as np
import pyspiel
import pytest

from plyground import games
from plyground.games import IllegalActionError, PlygroundError, UnknownGameError
from plyground.games.openspiel_game import OpenSpielGame, UnsupportedGameError


def _sample(state, rng: random.Random) -> int:
    if state.is_chance_node():
        outcomes, probs = zip(*state.chance_outcomes())
        return rng.choices(outcomes, probs)[0]
    return rng.choice(state.legal_actions())


def _assert_same(ours, raw, where: str) -> None:
    assert ours.current_player() == raw.current_player(), where
    assert ours.is_terminal() == raw.is_terminal(), where
    assert ours.is_chance_node() == raw.is_chance_node(), where
    assert ours.legal_actions() == list(raw.legal_actions()), where
    assert ours.chance_outcomes() == (list(raw.chance_outcomes()) if raw.is_chance_node() else []), where
    assert ours.returns() == list(raw.returns()), where
    assert ours.history() == list(raw.history()), where
    assert str(ours) == str(raw), where
    assert ours.serialize() == raw.serialize(), where
    p = max(raw.current_player(), 0)
    assert np.array_equal(ours.observation_tensor().ravel(), np.asarray(raw.observation_tensor(p), np.float32)), where


@pytest.mark.parametrize("game_string, n_games", [
    ("chess", 3), ("hex(board_size=5)", 100), ("pig", 10), ("backgammon", 3), ("connect_four", 50),
])
def test_random_games_agree_with_raw_pyspiel(game_string, n_games):
    game = games.make("openspiel:" + game_string)
    raw_game = pyspiel.load_game(game_string)
    assert game.num_players() == raw_game.num_players()
    assert game.num_distinct_actions() == raw_game.num_distinct_actions()
    assert game.max_game_length() == raw_game.max_game_length()
    assert game.observation_tensor_shape() == list(raw_game.observation_tensor_shape())
    rng = random.Random(11)
    chance_nodes = 0
    for g in range(n_games):
        ours, raw = game.new_initial_state(), raw_game.new_initial_state()
        while True:
            _assert_same(ours, raw, f"{game_string} game {g} after {raw.history()}")
            if raw.is_terminal():
                break
            chance_nodes += raw.is_chance_node()
            a = _sample(ours, rng)
            ours.apply_action(a)
            raw.apply_action(a)
        assert sum(ours.returns()) == pytest.approx(sum(raw.returns()))
    if game.has_chance():
        assert chance_nodes > 0


@pytest.mark.parametrize("game_string", ["chess", "hex(board_size=5)", "go(board_size=5)", "tic_tac_toe", "pig"])
def test_notation_round_trips_for_every_legal_move(game_string):
    game = games.make("openspiel:" + game_string)
    state = game.new_initial_state()
    rng = random.Random(5)
    for _ in range(30):
        if state.is_terminal():
            break
        p = state.current_player()
        for a in state.legal_actions():
            text = state.action_to_string(a)
            assert text == state.pyspiel_state.action_to_string(p, a)
            assert state.action_to_string(p, a) == text
            if not state.is_chance_node():
                assert state.string_to_action(text) == a
        state.apply_action(_sample(state, rng))


def test_chess_accepts_san_and_coordinate_notation():
    state = games.make("openspiel:chess").new_initial_state()
    e4 = state.string_to_action("e4")
    assert state.string_to_action("e2e4") == e4 == state.string_to_action("E2E4")
    state.apply_action(e4)
    assert state.string_to_action("Nf6") == state.string_to_action("g8f6")
    promo = games.make("openspiel:chess").new_initial_state("8/4P3/8/8/8/k7/8/7K w - - 0 1")
    assert promo.action_to_string(promo.string_to_action("e7e8n")) == "e8=N"
    assert promo.action_to_string(promo.string_to_action("e8=Q")) == "e8=Q"


def test_go_moves_without_the_colour_label():
    state = games.make("openspiel:go(board_size=9)").new_initial_state()
    assert state.string_to_action("d4") == state.string_to_action("B d4") == state.pyspiel_state.string_to_action("B d4")
    assert state.action_to_string(state.string_to_action("pass")) == "B PASS"


def test_names_params_and_equality():
    a = OpenSpielGame.load("hex(board_size=5)")
    b = games.make("openspiel:hex", board_size=5)
    assert a.name == b.name == "openspiel:hex(board_size=5)" and a == b
    assert games.make("openspiel:chess").name == "openspiel:chess"
    go = games.make("openspiel:go(board_size=9)", komi=6.5)
    assert go.pyspiel_game.get_parameters()["komi"] == 6.5 and go.pyspiel_game.get_parameters()["board_size"] == 9
    assert go.num_distinct_actions() == 82


def test_illegal_actions_raise_typed_errors_and_change_nothing():
    state = games.make("openspiel:chess").new_initial_state()
    before = state.serialize()
    for bad in (0, -1, 4674, 10**9):
        with pytest.raises(IllegalActionError) as err:
            state.apply_action(bad)
        assert err.value.game == "openspiel:chess"
        assert err.value.action == bad
        assert err.value.legal == state.legal_actions() and len(err.value.legal) == 20
        assert "Nf3" in str(err.value)  # the legal moves in notation too
    for bad in (2.5, "e4", None):
        with pytest.raises(IllegalActionError, match="not an integer"):
            state.apply_action(bad)
    assert state.serialize() == before and state.history() == []


def test_chance_node_and_terminal_errors():
    state = games.make("openspiel:pig").new_initial_state()
    state.apply_action(0)  # roll
    assert state.is_chance_node() and state.current_player() == -1
    assert [a for a, _ in state.chance_outcomes()] == state.legal_actions() == list(range(6))
    assert sum(p for _, p in state.chance_outcomes()) == pytest.approx(1.0)
    with pytest.raises(IllegalActionError, match="chance node"):
        state.apply_action(6)

    ttt = games.make("openspiel:tic_tac_toe").new_initial_state()
    for a in (0, 3, 1, 4, 2):
        ttt.apply_action(a)
    assert ttt.is_terminal() and ttt.current_player() == -4 and ttt.returns() == [1.0, -1.0]
    with pytest.raises(IllegalActionError, match="over") as err:
        ttt.apply_action(5)
    assert err.value.legal == []


def test_unparseable_strings_list_the_legal_moves_and_print_nothing(capfd):
    state = games.make("openspiel:chess").new_initial_state()
    for text in ("Ke2", "e5", "zz", "", "e2e5"):
        with pytest.raises(IllegalActionError) as err:
            state.string_to_action(text)
        assert "Nf3" in err.value.legal and len(err.value.legal) == 20
    out, errout = capfd.readouterr()
    assert "OpenSpiel exception" not in out + errout  # pyspiel's own stderr chatter is silenced


def test_out_of_range_action_to_string_is_a_typed_error():
    state = games.make("openspiel:hex(board_size=5)").new_initial_state()
    with pytest.raises(IllegalActionError, match="out of the action range"):
        state.action_to_string(25)
    with pytest.raises(IllegalActionError):
        state.action_to_string(0, -1)


def test_unknown_games_and_bad_parameters():
    with pytest.raises(UnknownGameError) as err:
        games.make("openspiel:chesss")
    assert "did you mean openspiel:chess" in str(err.value) and "openspiel:hex" in err.value.allowed
    with pytest.raises(PlygroundError, match=r"no parameter\(s\) \['colour'\]; allowed: \['board_size'"):
        games.make("openspiel:go", colour="black")
    with pytest.raises(PlygroundError, match="board_size"):
        games.make("openspiel:hex(board_size=big)")
    with pytest.raises(PlygroundError, match="missing"):
        games.make("openspiel:hex(board_size=5")


@pytest.mark.parametrize("name, fragment", [
    ("matrix_rps", "simultaneous-move"), ("goofspiel", "simultaneous-move"), ("mfg_crowd_modelling", "mean_field"),
])
def test_simultaneous_and_mean_field_games_are_rejected(name, fragment):
    with pytest.raises(UnsupportedGameError, match=fragment):
        games.make("openspiel:" + name)


def test_simultaneous_game_plays_through_openspiels_turn_based_wrapper():
    game = games.make("openspiel:turn_based_simultaneous_game(game=matrix_rps())")
    state = game.new_initial_state()
    state.apply_action(0)  # rock, hidden until the other player moves
    state.apply_action(1)  # paper
    assert state.is_terminal() and state.returns() == [-1.0, 1.0]


@pytest.mark.parametrize("game_string", ["chess", "pig", "backgammon", "hex(board_size=5)"])
def test_serialize_deserialize_round_trip(game_string):
    game = games.make("openspiel:" + game_string)
    rng = random.Random(2)
    for _ in range(5):
        state = game.new_initial_state()
        for _ in range(rng.randrange(1, 60)):
            if state.is_terminal():
                break
            state.apply_action(_sample(state, rng))
        back = game.deserialize_state(state.serialize())
        assert back.history() == state.history()
        assert str(back) == str(state) and back.current_player() == state.current_player()
        raw = game.pyspiel_game.deserialize_state(state.serialize())
        assert str(raw) == str(back)


def test_deserialize_rejects_illegal_histories_without_crashing():
    game = games.make("openspiel:chess")
    with pytest.raises(PlygroundError, match="illegal"):
        game.deserialize_state("0\n")  # not a legal first move: OpenSpiel itself would not check
    with pytest.raises(PlygroundError):
        game.deserialize_state("not a state")


def test_clone_is_independent_and_pyspiel_bots_can_use_the_state():
    game = games.make("openspiel:tic_tac_toe")
    state = game.new_initial_state()
    clone = state.clone()
    clone.apply_action(4)
    assert state.history() == [] and clone.history() == [4]
    bot = pyspiel.MCTSBot(game.pyspiel_game, pyspiel.RandomRolloutEvaluator(1, 0), 2.0, 100, 1000, False, 0, False)
    action = bot.step(clone.pyspiel_state)
    assert action in clone.legal_actions()
    wrapped = game.wrap_state(clone.pyspiel_state.child(action))
    assert wrapped.history() == [4, action]
