"""Values scaled to [-1, 1] by the game's utility bounds, chance nodes as expectations in
alpha-beta, and the search agents' up-front refusals (``check_game``).

Truth comes from outside the engines: pyspiel's own returns, values worked out by hand, and an
expectiminimax written here over raw pyspiel states.
"""

from __future__ import annotations

import zlib

import pyspiel
import pytest

from plyground import agents, games
from plyground.games.errors import PlygroundError, UnsupportedGameError
from plyground.games.information import player_view
from plyground.search import alphabeta
from plyground.search.hooks import HeuristicValue, RolloutValue, ValueEstimator, scaled_returns
from plyground.search.mcts import MCTS


def kuhn(*actions):
    """A Kuhn poker state after ``actions`` (cards 0=J, 1=Q, 2=K are the first two; then 0 pass, 1 bet)."""
    s = games.make("openspiel:kuhn_poker").new_initial_state()
    for a in actions:
        s.apply_action(a)
    return s


# ------------------------------------------------------------------ scaling by hand
def test_terminal_returns_scale_by_the_utility_bounds():
    # Kuhn pays -2..2: a showdown after pass-pass moves the ante (1 chip), after bet-call 2 chips.
    s = kuhn(0, 1, 0, 0)                 # J vs Q, both pass: player 1 wins the ante
    assert s.returns() == [-1.0, 1.0]
    assert scaled_returns(s) == [-0.5, 0.5]
    s = kuhn(2, 0, 1, 1)                 # K vs J, bet, call: player 0 wins 2
    assert scaled_returns(s) == [1.0, -1.0]
    # Leduc pays -13..13: a fold after one raise in the first round loses the ante (1)
    leduc = games.make("openspiel:leduc_poker").new_initial_state()
    for a in (0, 1, 2, 0):               # deal, player 0 raises, player 1 folds
        leduc.apply_action(a)
    assert leduc.is_terminal() and leduc.returns() == [1.0, -1.0]
    assert scaled_returns(leduc) == pytest.approx([1 / 13, -1 / 13])


def test_value_hooks_return_scaled_values_for_the_player_to_move():
    s = kuhn(2, 0, 0, 1)                 # K vs J: pass, bet; player 0 to act
    # every playout from here: call (+2 -> 1.0) or fold (-1 -> -0.5), chosen uniformly
    vals = RolloutValue(200, seed=1).evaluate([s])
    assert -0.5 <= vals[0] <= 1.0 and vals[0] == pytest.approx(0.25, abs=0.2)
    assert HeuristicValue().evaluate([kuhn(0, 1, 0, 0)]) == [-0.5]   # 4 moves done: player 0's return


def test_ismcts_action_values_at_a_decision_that_ends_the_game():
    # Player 0 passed and player 1 bet; player 0 folds (0: loses the ante, -1 -> -0.5) or calls
    # (1: the showdown for 2 chips).  Every simulation ends at once, so the values are exact means.
    for card, call_value in ((2, 1.0), (0, -1.0)):       # a king always wins the call, a jack loses it
        other = 1
        r = MCTS(sims=200, seed=3).search(player_view(kuhn(card, other, 0, 1), 0))
        assert r.action_values[0] == pytest.approx(-0.5)
        assert r.action_values[1] == pytest.approx(call_value)
        assert r.best_action == (1 if card == 2 else 0)
    # a queen: the opponent holds the jack or the king, each with probability 1/2 (sampled), so
    # calling is worth 0 in expectation; with n samples its mean is within 4/sqrt(n) of 0
    r = MCTS(sims=400, seed=3).search(player_view(kuhn(1, 2, 0, 1), 0))
    n = r.visits[1]
    assert n >= 20 and abs(r.action_values[1]) <= 4 / n ** 0.5
    assert r.action_values[0] == pytest.approx(-0.5)


@pytest.mark.parametrize("name", ["openspiel:leduc_poker", "openspiel:universal_poker", "openspiel:kuhn_poker"])
def test_search_values_stay_in_range_in_games_with_large_utilities(name):
    g = games.make(name)
    s = g.new_initial_state()
    for a in (0, 1) if "kuhn" in name else ():
        s.apply_action(a)
    while s.is_chance_node():
        s.apply_action(s.legal_actions()[0])
    for who, searched in (("view", player_view(s, s.current_player())), ("state", s)):
        r = MCTS(sims=300, seed=0).search(searched)
        assert -1.0 <= r.value <= 1.0, (who, r.value)
        assert all(-1.0 <= v <= 1.0 for v in r.action_values.values()), (who, r.action_values)


def test_cribbage_full_state_values_stay_in_range():
    # cribbage pays up to 1149 points either way; a search of the full state (the caller's choice)
    g = games.make("openspiel:cribbage")
    s = g.new_initial_state()
    while s.is_chance_node():
        s.apply_action(s.legal_actions()[0])
    r = MCTS(sims=60, seed=0).search(s)
    assert -1.0 <= r.value <= 1.0
    assert all(-1.0 <= v <= 1.0 for v in r.action_values.values())


# ------------------------------------------------------------------ alpha-beta at chance nodes
def expectiminimax(ps, root: int) -> float:
    """Exact value for ``root`` over raw pyspiel states (returns already in [-1, 1] for pig)."""
    if ps.is_terminal():
        return ps.returns()[root]
    if ps.is_chance_node():
        return sum(p * expectiminimax(ps.child(a), root) for a, p in ps.chance_outcomes())
    vals = [expectiminimax(ps.child(a), root) for a in ps.legal_actions()]
    return max(vals) if ps.current_player() == root else min(vals)


def test_minimax_solves_pig_as_an_expectation():
    game = "pig(winscore=8,horizon=6,diceoutcomes=3)"
    raw = pyspiel.load_game(game).new_initial_state()
    truth = {a: expectiminimax(raw.child(a), 0) for a in raw.legal_actions()}
    r = alphabeta.search(games.make("openspiel:" + game).new_initial_state(), exact=True)
    assert r.exact
    assert r.action_values == pytest.approx(truth, abs=1e-12)
    assert r.value == pytest.approx(max(truth.values()), abs=1e-12)
    assert r.best_action == max(truth, key=truth.get)


class CrcValue(ValueEstimator):
    """A deterministic stand-in leaf value in [-1, 1]; fails if asked about a chance node."""

    def __init__(self) -> None:
        self.asked = 0

    @staticmethod
    def of(state) -> float:
        return (zlib.crc32(str(state).encode()) % 2001) / 1000.0 - 1.0

    def evaluate(self, states):
        out = []
        for s in states:
            assert s.current_player() >= 0, "a value was asked for a chance node"
            self.asked += 1
            out.append(self.of(s))
        return out


def test_minimax_takes_the_dice_expectation_in_backgammon():
    g = games.make("openspiel:backgammon")
    s = g.new_initial_state()
    s.apply_action(s.legal_actions()[3])          # the opening roll
    assert s.current_player() in (0, 1)
    me = s.current_player()
    hook = CrcValue()
    r = alphabeta.search(s, depth=1, value=hook)
    assert hook.asked > 0
    for a, v in r.action_values.items():
        child = s.clone()
        child.apply_action(a)
        assert child.is_chance_node()            # the opponent's roll
        expected = 0.0
        for outcome, p in child.chance_outcomes():
            leaf = child.clone()
            leaf.apply_action(outcome)
            leaf_v = CrcValue.of(leaf)            # for the player to move there: the opponent
            expected += p * (leaf_v if leaf.current_player() == me else -leaf_v)
        assert v == pytest.approx(expected, abs=1e-12)
        assert -1.0 <= v <= 1.0
    assert r.best_action == max(r.action_values, key=r.action_values.get)


def test_minimax_on_pig_with_rollouts_stays_in_range():
    agent = agents.make("minimax:depth=2,value=rollout")
    agent.check_game(games.make("openspiel:pig(winscore=20)"))
    s = games.make("openspiel:pig(winscore=20)").new_initial_state()
    d = agent.act(s)
    assert d.action in s.legal_actions() and -1.0 <= d.value <= 1.0
    assert all(-1.0 <= v <= 1.0 for v in d.search["action_values"].values())


def test_alphabeta_refuses_a_view_and_out_of_range_values():
    v = player_view(kuhn(2, 0), 0)
    with pytest.raises(PlygroundError, match="hidden-information"):
        alphabeta.search(v, depth=2)

    class TooBig(ValueEstimator):
        def evaluate(self, states):
            return [7.0] * len(states)

    with pytest.raises(PlygroundError, match="7.0.*in \\[-1, 1\\]"):
        alphabeta.search(games.make("openspiel:pig(winscore=20)").new_initial_state(), depth=1, value=TooBig())


# ------------------------------------------------------------------ check_game
def test_minimax_refuses_hidden_information_up_front():
    for name in ("openspiel:kuhn_poker", "openspiel:leduc_poker", "openspiel:phantom_ttt"):
        with pytest.raises(UnsupportedGameError) as e:
            agents.make("minimax").check_game(games.make(name))
        msg = str(e.value)
        assert "minimax searches full states" in msg and name in msg and "hidden information" in msg
        assert "use mcts" in msg
    with pytest.raises(UnsupportedGameError, match="3 players"):
        agents.make("minimax").check_game(games.make("openspiel:pig(players=3)"))
    for name in ("openspiel:pig", "openspiel:backgammon", "connect4", "openspiel:chess"):
        agents.make("minimax").check_game(games.make(name))       # accepted


def test_openspiel_mcts_refusals():
    bot = agents.make("openspiel-mcts")
    with pytest.raises(UnsupportedGameError, match="hidden information.*use mcts"):
        bot.check_game(games.make("openspiel:kuhn_poker"))
    with pytest.raises(UnsupportedGameError, match="pays rewards along the way"):
        bot.check_game(games.make("openspiel:2048"))
    for name in ("openspiel:pig", "openspiel:backgammon", "tictactoe", "openspiel:pig(players=3)"):
        bot.check_game(games.make(name))


def test_mcts_accepts_chance_hidden_information_and_n_players():
    from plyground.games.information import samplable
    mcts = agents.make("mcts")
    for name in ("openspiel:kuhn_poker", "openspiel:leduc_poker", "openspiel:pig", "openspiel:backgammon",
                 "openspiel:kuhn_poker(players=3)", "connect4"):
        mcts.check_game(games.make(name))
    g = games.make("openspiel:cribbage")
    why = samplable(g)
    if why is None:
        mcts.check_game(g)
    else:   # refused exactly when its views cannot be sampled, with the reason
        with pytest.raises(UnsupportedGameError, match="views cannot be sampled") as e:
            mcts.check_game(g)
        assert why in str(e.value)
