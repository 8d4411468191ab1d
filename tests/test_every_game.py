"""Every listed game is played honestly to the end or refused before play, by every search agent.

For each game name and agent: the game loads for two seats and the agent's ``check_game`` accepts
it, and then a game against ``random`` ends by the rules (or at the ply cap) with no forfeit; or the
game or the agent refuses it up front with a ``PlygroundError`` whose message names the reason.  Any
other exception, and any forfeit (timeout, agent_error, illegal_move), fails.

One game of each kind (native, PettingZoo, chance, hidden information sampled both ways, unsamplable,
simultaneous, one and three players, a game file needed, mean-field) is checked against what each
agent must do with it; every name ``plyground games`` lists is checked to be played or refused (about
half a minute in all, at these small budgets and a 30-ply cap).
"""

from __future__ import annotations

import pytest

from plyground import agents, games
from plyground.arena.match import MAX_PLIES, NORMAL, play_game
from plyground.games.errors import PlygroundError, UnsupportedGameError

AGENTS = ("random", "minimax:depth=1", "mcts:sims=8,seed=3")
MAX = 30

KINDS = {
    "tictactoe": "native",
    "pettingzoo:classic/tictactoe_v3": "PettingZoo, refereed by the env",
    "openspiel:pig": "chance (dice)",
    "openspiel:kuhn_poker": "hidden cards, resample_from_infostate",
    "openspiel:liars_dice": "hidden dice, the replay sampler",
    "openspiel:phantom_ttt": "hidden opponent moves, the replay sampler",
    "openspiel:battleship": "hidden information no sampler handles",
    "openspiel:goofspiel": "simultaneous moves",
    "openspiel:blackjack": "one player",
    "openspiel:kuhn_poker(players=3)": "three players",
    "openspiel:nfg_game": "a game file needed",
    "openspiel:mfg_crowd_modelling": "mean-field dynamics",
}


def outcome(name: str, spec: str) -> tuple[str, str]:
    """("refused", reason) or ("played", termination) for one game of ``spec`` against random."""
    try:
        game = games.make(name)
        if game.num_players() != 2:
            raise UnsupportedGameError(f"{name} has {game.num_players()} players; a match seats two")
        agent = agents.make(spec)
        agent.check_game(game)
    except PlygroundError as e:
        return "refused", str(e)
    agent.warm_up(game)
    res = play_game(game, (agent, agents.make("random:seed=1")), seed=7, max_plies=MAX)
    assert res.termination in (NORMAL, MAX_PLIES), f"{spec} on {name}: {res.termination}: {res.detail}"
    if res.termination == NORMAL and not _sampled_chance(game):  # the record replays to the same end
        state = game.new_initial_state()
        for m in res.moves:
            state.apply_action(m.action)
        assert state.is_terminal() and list(state.returns()) == res.returns
    return "played", res.termination


def _sampled_chance(game) -> bool:
    """OpenSpiel games whose chance outcomes are drawn inside the game (negotiation): a recorded
    outcome does not replay to the same state."""
    import pyspiel
    gt = getattr(game, "game_type", None)
    return gt is not None and gt.chance_mode == pyspiel.GameType.ChanceMode.SAMPLED_STOCHASTIC


def check(name: str) -> dict[str, tuple[str, str]]:
    out = {spec: outcome(name, spec) for spec in AGENTS}
    for spec, (kind, text) in out.items():
        if kind == "refused":
            assert text.strip() and "Traceback" not in text, (name, spec, text)
    return out


@pytest.mark.parametrize("name", list(KINDS), ids=list(KINDS))
def test_each_kind_of_game_is_played_or_refused_up_front(name):
    out = check(name)
    played = {spec for spec, (kind, _) in out.items() if kind == "played"}
    # what each agent must do, from the game's kind
    if name in ("openspiel:goofspiel", "openspiel:blackjack", "openspiel:kuhn_poker(players=3)",
                "openspiel:nfg_game", "openspiel:mfg_crowd_modelling"):
        assert not played                      # the game itself cannot seat two players in turns
    elif name in ("openspiel:kuhn_poker", "openspiel:liars_dice", "openspiel:phantom_ttt"):
        assert played == {"random", "mcts:sims=8,seed=3"}
        assert "hidden information" in out["minimax:depth=1"][1]
    elif name == "openspiel:battleship":
        assert played == {"random"}
        assert "hidden information" in out["minimax:depth=1"][1]
        assert "cannot be sampled" in out["mcts:sims=8,seed=3"][1]
    else:
        assert played == set(AGENTS)


def test_refusals_name_the_reason():
    assert "simultaneous" in outcome("openspiel:goofspiel", "random")[1]
    assert "3 players" in outcome("openspiel:kuhn_poker(players=3)", "random")[1]
    assert "file" in outcome("openspiel:nfg_game", "random")[1]


@pytest.mark.parametrize("name", games.list_games())
def test_every_listed_game_is_played_or_refused_up_front(name):
    check(name)
