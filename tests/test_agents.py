"""Agents: spec parsing and errors, Decisions, and games played to the end on every game family."""

from __future__ import annotations

import io
import json

import pytest

from plyground import agents, games
from plyground.agents import AgentSpecError
from plyground.arena.match import play_game


def test_spec_string_and_table_give_the_same_agent():
    a = agents.make("mcts:sims=200,c=2.5,seed=3")
    b = agents.make({"name": "mcts", "sims": 200, "c": 2.5, "seed": 3})
    assert a.params == b.params
    assert a.params["sims"] == 200 and a.params["c"] == 2.5
    assert a.spec == "mcts:c=2.5,seed=3,sims=200"


@pytest.mark.parametrize("spec, fragment", [
    ("nosuch", "allowed: " + ", ".join(sorted(agents.AGENTS))),  # every registered agent, sorted
    ("mcts:simz=10", "no parameter 'simz'"),
    ("mcts:sims=ten", "sims='ten' is not a valid int"),
    ("mcts:sims=0", "below the minimum"),
    ("mcts:variant=foo", "choose one of ['uct', 'puct']"),
    ("mcts:dirichlet=0.3", "UCT has none"),
    ("minimax:depth", "is not key=value"),
    ("minimax:depth=2,depth=3", "given twice"),
    ({"sims": 3}, "needs a 'name' field"),
])
def test_bad_specs_name_the_value_and_what_is_allowed(spec, fragment):
    with pytest.raises(AgentSpecError) as e:
        agents.make(spec)
    assert fragment in str(e.value)


def test_random_agent_is_reproducible_per_seed():
    g = games.make("connect4")
    r1 = play_game(g, [agents.make("random:seed=5"), agents.make("random:seed=6")], seed=1)
    r2 = play_game(g, [agents.make("random:seed=5"), agents.make("random:seed=6")], seed=1)
    r3 = play_game(g, [agents.make("random:seed=5"), agents.make("random:seed=6")], seed=2)
    assert [m.action for m in r1.moves] == [m.action for m in r2.moves]
    assert [m.action for m in r1.moves] != [m.action for m in r3.moves]


def _immediate_win_position():
    # x has three in the bottom row (columns 1-3) and is to move: column 4 wins at once.
    return games.play_moves(games.make("connect4"), "112233")


@pytest.mark.parametrize("spec", ["minimax:depth=4", "mcts:sims=400,seed=1", "openspiel-mcts:sims=2000,seed=1"])
def test_search_agents_take_an_immediate_win(spec):
    state = _immediate_win_position()
    d = agents.make(spec).act(state)
    after = state.child(d.action)
    assert after.is_terminal() and after.returns() == [1.0, -1.0]
    json.dumps(d.to_json())  # the arena records it
    assert d.think_time >= 0


def test_minimax_decision_carries_search_statistics():
    d = agents.make("minimax:depth=5").act(games.play_moves(games.make("connect4"), "4453"))
    s = d.search
    assert s["nodes"] > 0 and s["depth"] == 5 and s["pv"][0] == d.action
    assert set(s["action_values"]) == {str(a) for a in range(7)}


def test_mcts_decision_carries_visits():
    d = agents.make("mcts:sims=300,seed=0").act(games.make("tictactoe").new_initial_state())
    assert sum(d.search["visits"].values()) >= 299
    assert d.search["best_action"] == d.action


class _Raises(agents.Agent):
    name = "raises"

    def act(self, state, clock=None):
        raise RuntimeError("boom")


class _Illegal(agents.Agent):
    name = "illegal"

    def act(self, state, clock=None):
        return agents.Decision(action=999)


@pytest.mark.parametrize("bad, reason", [(_Raises, "agent_error"), (_Illegal, "illegal_move")])
def test_a_broken_agent_forfeits(bad, reason):
    g = games.make("tictactoe")
    res = play_game(g, [agents.make("random:seed=1"), bad()], seed=0)
    assert res.termination == reason
    assert res.returns == [1.0, -1.0]


@pytest.mark.parametrize("game", ["pettingzoo:classic/connect_four_v3", "openspiel:connect_four"])
@pytest.mark.parametrize("a, b", [("mcts:sims=200,seed=1", "minimax:depth=3"),
                                  ("minimax:depth=3", "mcts:sims=200,seed=2")])
def test_adapted_games_play_to_the_end_with_search_agents(game, a, b):
    g = games.make(game)
    res = play_game(g, [agents.make(a), agents.make(b)], seed=0)
    assert res.termination == "normal"
    assert sorted(res.returns) in ([-1.0, 1.0], [0.0, 0.0])
    # Replaying the recorded moves with OpenSpiel's rules reaches the same result.
    import pyspiel
    ps = pyspiel.load_game("connect_four").new_initial_state()
    for m in res.moves:
        ps.apply_action(m.action)
    assert ps.is_terminal() and list(ps.returns()) == res.returns


def test_human_agent_reads_moves_and_reasks_on_bad_input():
    out = io.StringIO()
    human = agents.AGENTS["human"](stdin=io.StringIO("9\nfoo\n4\n"), stdout=out)
    d = human.act(games.make("connect4").new_initial_state())
    assert d.action == 3
    assert out.getvalue().count("illegal action") == 2


@pytest.mark.parametrize("spec", ["openspiel-mcts:sims=3000,seed=1", "mcts:sims=2000,seed=1", "minimax:depth=3"])
def test_agents_answer_in_the_pettingzoo_envs_own_action_numbers(spec):
    # tictactoe_v3 numbers cells column by column, unlike its native twin (and OpenSpiel).
    # Env moves 0, 1, 3, 4: x on (0,0) and (0,1), o on (1,0) and (1,1); x wins at (0,2) = env 6.
    state = games.make("pettingzoo:classic/tictactoe_v3").new_initial_state()
    for a in (0, 1, 3, 4):
        state.apply_action(a)
    d = agents.make(spec).act(state)
    assert d.action == 6
    assert state.child(d.action).returns() == [1.0, -1.0]


def test_minimax_without_a_clock_stops_at_its_unclocked_limit(monkeypatch):
    """Depth 6 from chess's start takes hours in the plain-Python engine; with no time and no clock
    the agent stops at UNCLOCKED_SECONDS with the deepest iteration it finished."""
    from plyground.agents import search_agents
    monkeypatch.setattr(search_agents, "UNCLOCKED_SECONDS", 0.5)
    state = games.make("openspiel:chess").new_initial_state()
    d = agents.make("minimax:depth=6").act(state)
    assert d.think_time < 3.0 and d.action in state.legal_actions()
    assert 1 <= d.search["depth"] < 6
