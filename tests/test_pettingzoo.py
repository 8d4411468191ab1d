"""PettingZoo both ways: native games as AEC envs (api_test), and classic envs refereeing our State.

A refereed ``PettingZooState`` checks itself every ply (player, legal set via the env's
action_mask, board, and at the end terminality and returns) and raises ``TwinMismatchError`` on
any disagreement, so playing full games through it *is* the agreement test.  The tests below also
show that the check catches a wrong action mapping, and pin the mappings against PettingZoo's own
code (chess_utils) and against the env's board.
"""

from __future__ import annotations

import inspect
import random
import warnings

import chess
import numpy as np
import pytest
from pettingzoo.classic.go import go as go_env
from pettingzoo.classic.chess import chess_utils
from pettingzoo.test import api_test

from plyground import games
from plyground.games import IllegalActionError, PlygroundError, UnknownGameError
from plyground.games import pettingzoo_game as pzg
from plyground.games.pettingzoo_game import PETTINGZOO_TWINS, TwinMismatchError

CLASSIC = ["classic/connect_four_v3", "classic/tictactoe_v3", "classic/chess_v6", "classic/go_v5"]


# ====================================================================== native games as envs
@pytest.mark.parametrize("name", ["tictactoe", "connect4"])
def test_make_env_passes_pettingzoo_api_test(name):
    env = games.make_env(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # api_test warns that dict observations are not arrays
        api_test(env, num_cycles=300, verbose_progress=False)


@pytest.mark.parametrize("name", ["tictactoe", "connect4"])
def test_env_games_agree_with_the_native_state(name):
    env = games.make_env(name)
    game = games.make(name)
    rng = random.Random(1)
    for _ in range(30):
        env.reset(seed=0)
        state = game.new_initial_state()
        for agent in env.agent_iter():
            obs, reward, terminated, truncated, _ = env.last()
            p = env.possible_agents.index(agent)
            assert np.array_equal(obs["observation"], state.observation_tensor(p))
            assert obs["observation"].dtype == np.float32 and obs["action_mask"].dtype == np.int8
            if terminated:
                assert reward == state.returns()[p]
                env.step(None)
                continue
            assert p == state.current_player()
            assert np.flatnonzero(obs["action_mask"]).tolist() == state.legal_actions()
            a = rng.choice(state.legal_actions())
            env.step(a)
            state.apply_action(a)
        assert state.is_terminal() and not env.agents


def test_env_render_modes_and_errors():
    env = games.make_env("connect4", render_mode="ansi")
    env.reset()
    env.step(3)
    assert env.render() == str(games.play_moves(games.make("connect4"), "4"))
    quiet = games.make_env("tictactoe")
    quiet.reset()
    assert quiet.render() is None
    with pytest.raises(ValueError, match="render_mode 'rgb_array'"):
        games.make_env("tictactoe", render_mode="rgb_array")
    with pytest.raises(UnknownGameError) as err:
        games.make_env("chess")
    assert err.value.allowed == ["connect4", "tictactoe"]
    env.reset()
    env.step(0)
    with pytest.raises(IllegalActionError) as err:
        env.step(9)
    assert err.value.game == "connect4" and err.value.legal == list(range(7))


def test_env_human_render_prints_the_board(capsys):
    env = games.make_env("tictactoe", render_mode="human")
    env.reset()
    env.step(4)
    assert capsys.readouterr().out.strip() == "...\n.x.\n..."


# ====================================================================== classic envs as referees
def _play_random(state, rng: random.Random, max_plies: int | None = None) -> int:
    plies = 0
    while not state.is_terminal() and (max_plies is None or plies < max_plies):
        state.apply_action(rng.choice(state.legal_actions()))
        plies += 1
    return plies


@pytest.mark.parametrize("env_id, n_games", [("classic/connect_four_v3", 40), ("classic/tictactoe_v3", 60)])
def test_small_classic_games_to_the_end_with_the_twin_agreeing(env_id, n_games):
    game = games.make("pettingzoo:" + env_id)
    rng = random.Random(4)
    results = set()
    for _ in range(n_games):
        state = game.new_initial_state()
        _play_random(state, rng)  # TwinMismatchError on any disagreement
        assert state.returns() == [float(state.env.rewards[a]) for a in state.env.possible_agents]
        twin_returns = state.twin.returns()
        assert state.returns() == twin_returns  # same player order for these twins
        results.add(tuple(state.returns()))
    assert {(1.0, -1.0), (-1.0, 1.0)} <= results


@pytest.mark.parametrize("seed, ending", [(3, "checkmate"), (2, "fifty-move claim"), (4, "threefold claim")])
def test_chess_random_games_to_the_end(seed, ending):
    """Seeds chosen so that the referee's three kinds of ending all occur (found by playing them)."""
    game = games.make("pettingzoo:classic/chess_v6")
    state = game.new_initial_state()
    _play_random(state, random.Random(seed))
    board = state.env.unwrapped.board  # the referee's python-chess board
    if ending == "checkmate":
        assert board.is_checkmate() and state.twin.is_terminal()
        # chess_v6 counts white (player_0) first, OpenSpiel counts black (player 0) first.
        assert state.returns() == state.twin.returns()[::-1] and sorted(state.returns()) == [-1.0, 1.0]
    else:
        claim = board.can_claim_fifty_moves() if ending.startswith("fifty") else board.can_claim_threefold_repetition()
        assert claim and state.returns() == [0.0, 0.0]
        assert not state.twin.is_terminal()  # OpenSpiel alone would play on: the referee's rule ended it


def test_go_defaults_match_the_twin():
    params = inspect.signature(go_env.raw_env.__init__).parameters
    twin = games.make(PETTINGZOO_TWINS["classic/go_v5"]).pyspiel_game.get_parameters()
    assert twin["board_size"] == params["board_size"].default == 19
    assert twin["komi"] == params["komi"].default == 7.5
    assert twin["max_game_length"] >= 10 * 19 * 19  # go_v5 has no move limit


def test_go_19x19_random_game_to_the_end():
    game = games.make("pettingzoo:classic/go_v5")
    state = game.new_initial_state()
    plies = _play_random(state, random.Random(0))
    assert state.is_terminal() and plies > 361 and sorted(state.returns()) == [-1.0, 1.0]
    assert state.history()[-2:] == [361, 361]  # two passes end it


def test_go_9x9_random_games_and_coordinates():
    game = games.make("pettingzoo:classic/go_v5", board_size=9)
    assert game.name == "pettingzoo:classic/go_v5(board_size=9)" and game.num_distinct_actions() == 82
    rng = random.Random(8)
    for _ in range(5):
        _play_random(game.new_initial_state(), rng)
    state = game.new_initial_state()
    a = state.string_to_action("c7")  # column c, row 7 from the bottom = row 2 from the top
    assert a == 2 * 9 + 2
    state.apply_action(a)
    assert state.env.unwrapped._go.board[2, 2] == 1  # black stone where go_v5 puts action 20
    assert state.action_to_string(0, a) == "B c7"
    assert state.string_to_action("pass") == 81


def test_go_tie_is_a_white_win_as_the_referee_scores_it():
    game = games.make("pettingzoo:classic/go_v5", board_size=5, komi=0)
    state = game.new_initial_state()
    state.apply_action(25)  # pass
    state.apply_action(25)
    assert state.twin.returns() == [0.0, 0.0]  # OpenSpiel: an empty board with no komi is a tie
    assert state.returns() == [-1.0, 1.0]  # go_v5: white wins ties
    detached = game.new_initial_state(referee=False)
    detached.apply_action(25)
    detached.apply_action(25)
    assert detached.returns() == [-1.0, 1.0]


def test_go_boards_of_different_sizes_play_side_by_side():
    # go_v5 keeps the board size in module globals; each live state restores its own before a step.
    small = games.make("pettingzoo:classic/go_v5", board_size=9).new_initial_state()
    big = games.make("pettingzoo:classic/go_v5").new_initial_state()
    rng = random.Random(3)
    for _ in range(60):
        for state in (small, big):
            if not state.is_terminal():
                state.apply_action(rng.choice(state.legal_actions()[:-1] or [state.legal_actions()[-1]]))
    assert len(small.history()) == len(big.history()) == 60


# ---------------------------------------------------------------------- mappings
def test_chess_encoding_matches_pettingzoos_own_for_promotions_and_castling():
    fens = [
        "r3k2r/1P4P1/8/8/8/8/1p4p1/R3K2R w KQkq - 0 1",  # under-promotions, captures, castling
        "r3k2r/1P4P1/8/8/8/8/1p4p1/R3K2R b KQkq - 0 1",
        "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1",
    ]
    for fen in fens:
        board = chess.Board(fen)
        ours = {pzg.chess_move_to_action(m.uci(), board.turn == chess.WHITE) for m in board.legal_moves}
        assert ours == set(chess_utils.legal_moves(board)), fen
        for m in board.legal_moves:
            a = pzg.chess_move_to_action(m.uci(), board.turn == chess.WHITE)
            back = pzg.chess_action_to_move(a, board.turn == chess.WHITE)
            assert back == m.uci().rstrip("q"), (fen, m.uci())


def test_chess_players_follow_the_env_and_notation():
    state = games.make("pettingzoo:classic/chess_v6").new_initial_state()
    assert state.current_player() == 0  # player_0 is white; OpenSpiel calls white player 1
    assert state.twin.current_player() == 1
    for san in ("f3", "e5", "g4"):
        state.apply_action(state.string_to_action(san))
    mate = state.string_to_action("d8h4")  # coordinate notation works too
    assert state.action_to_string(mate) == "Qh4#"
    state.apply_action(mate)
    assert state.is_terminal() and state.returns() == [-1.0, 1.0] and state.current_player() == -4


def test_a_wrong_action_mapping_is_caught_by_the_board_check(monkeypatch):
    # Transposing tic-tac-toe is a symmetry, so legal sets alone would never notice it.
    monkeypatch.setattr(pzg._TicTacToeRules, "to_twin", lambda self, a: a)
    monkeypatch.setattr(pzg._TicTacToeRules, "to_env", lambda self, t: t)
    state = games.make("pettingzoo:classic/tictactoe_v3").new_initial_state()
    with pytest.raises(TwinMismatchError, match="squares"):
        state.apply_action(1)


def test_a_wrong_go_flip_is_caught(monkeypatch):
    monkeypatch.setattr(pzg._GoRules, "to_twin", lambda self, a: a)
    monkeypatch.setattr(pzg._GoRules, "to_env", lambda self, t: t)
    state = games.make("pettingzoo:classic/go_v5", board_size=9).new_initial_state()
    with pytest.raises(TwinMismatchError, match="stones differ"):
        state.apply_action(0)


def test_a_missing_referee_rule_is_caught(monkeypatch):
    monkeypatch.setattr(pzg._ChessRules, "referee_result", lambda self, twin, extra: None)
    state = games.make("pettingzoo:classic/chess_v6").new_initial_state()
    moves = ["Nf3", "Nf6", "Ng1", "Ng8", "Nf3", "Nf6", "Ng1"]  # now Ng8 would repeat a third time
    with pytest.raises(TwinMismatchError, match="env terminal=True, twin terminal=False"):
        for san in moves:
            state.apply_action(state.string_to_action(san))


# ---------------------------------------------------------------------- clones, detached states
def test_threefold_claim_ends_live_and_detached_states_at_the_same_ply():
    game = games.make("pettingzoo:classic/chess_v6")
    live, detached = game.new_initial_state(), game.new_initial_state(referee=False)
    for san in ["Nf3", "Nf6", "Ng1", "Ng8", "Nf3", "Nf6", "Ng1"]:
        for s in (live, detached):
            assert not s.is_terminal()
            s.apply_action(s.string_to_action(san))
    assert live.is_terminal() and detached.is_terminal() and not detached.twin.is_terminal()
    assert live.returns() == detached.returns() == [0.0, 0.0]


@pytest.mark.parametrize("env_id", CLASSIC)
def test_clone_is_detached_and_independent(env_id):
    params = {"board_size": 9} if env_id.endswith("go_v5") else {}
    game = games.make("pettingzoo:" + env_id, **params)
    rng = random.Random(6)
    state = game.new_initial_state()
    _play_random(state, rng, max_plies=3)
    before = (state.history(), str(state), state.legal_actions(), state.env_observation()["action_mask"].copy())
    clone = state.clone()
    assert clone.env is None and not clone.refereed
    assert clone.history() == state.history() and clone.legal_actions() == state.legal_actions()
    _play_random(clone, rng)  # to the end, on the twin alone
    assert clone.is_terminal()
    after = (state.history(), str(state), state.legal_actions(), state.env_observation()["action_mask"])
    assert after[:3] == before[:3] and np.array_equal(after[3], before[3])
    # The original (with its env) plays on; a refereed clone replays the history on a fresh env.
    state.apply_action(state.legal_actions()[0])
    again = state.refereed_clone()
    assert again.env is not state.env and again.history() == state.history() and str(again) == str(state)


def test_detached_and_refereed_play_agree_on_a_whole_game():
    game = games.make("pettingzoo:classic/connect_four_v3")
    live, detached = game.new_initial_state(), game.new_initial_state(referee=False)
    rng = random.Random(2)
    while not live.is_terminal():
        assert detached.legal_actions() == live.legal_actions()
        assert detached.current_player() == live.current_player()
        a = rng.choice(live.legal_actions())
        live.apply_action(a)
        detached.apply_action(a)
    assert detached.is_terminal() and detached.returns() == live.returns()


# ---------------------------------------------------------------------- errors, serialization
def test_pettingzoo_errors():
    with pytest.raises(UnknownGameError) as err:
        games.make("pettingzoo:classic/hanabi_v5")
    assert "pettingzoo:classic/chess_v6" in err.value.allowed
    with pytest.raises(PlygroundError, match=r"no parameter\(s\) \['board_size'\]"):
        games.make("pettingzoo:classic/chess_v6", board_size=9)
    state = games.make("pettingzoo:classic/connect_four_v3").new_initial_state()
    for _ in range(6):
        state.apply_action(0)
    with pytest.raises(IllegalActionError) as err:
        state.apply_action(0)
    assert err.value.game == "pettingzoo:classic/connect_four_v3" and err.value.legal == [1, 2, 3, 4, 5, 6]
    assert state.env.unwrapped.board[0] != 0 and state.history() == [0] * 6
    with pytest.raises(IllegalActionError, match="not an integer"):
        state.apply_action(1.5)
    with pytest.raises(IllegalActionError) as err:
        state.string_to_action("1")  # column 1 is full
    assert err.value.legal == ["2", "3", "4", "5", "6", "7"]


def test_short_names_and_serialization():
    assert games.make("pettingzoo:connect_four_v3") == games.make("pettingzoo:classic/connect_four_v3")
    game = games.make("pettingzoo:classic/tictactoe_v3")
    state = game.new_initial_state()
    _play_random(state, random.Random(9), max_plies=4)
    back = game.deserialize_state(state.serialize())
    assert back.refereed and back.history() == state.history() and str(back) == str(state)
    with pytest.raises(PlygroundError, match="illegal"):
        game.deserialize_state("4\n4\n")
    assert all("pettingzoo:" + n in games.list_games() for n in CLASSIC)


@pytest.mark.slow
@pytest.mark.parametrize("env_id, n_games", [("classic/chess_v6", 20), ("classic/go_v5", 5)])
def test_many_refereed_games_to_the_end(env_id, n_games):
    """The long version of the agreement test (about a minute): the twin must agree every ply."""
    game = games.make("pettingzoo:" + env_id)
    rng = random.Random(1234)
    for _ in range(n_games):
        state = game.new_initial_state()
        _play_random(state, rng)
        assert state.is_terminal() and sum(state.returns()) == 0.0
