"""LLM agents in hidden-information games: the ``llm`` agent prompts and decides only from what its
player sees (a ``PlayerView``); ``llm-minimax`` and ``llm-mcts`` refuse such games up front; agents
load no model until ``warm_up``.  The real bundled model runs through llama.cpp (1 thread)."""

from __future__ import annotations

import hashlib
import json

import pytest

from plyground import agents, games
from plyground.agents.llm.backend import Backend, CallStats, Completion, Scores
from plyground.agents.llm.backends import make_backend
from plyground.agents.llm.prompts import move_prompt, prompt_fields, recent_moves, state_key
from plyground.games.errors import UnsupportedGameError
from plyground.games.information import player_view

T1 = "n_threads=1"


@pytest.fixture(scope="module")
def backend():
    return make_backend("local", n_threads=1)


class Spy(Backend):
    """Passes every call to ``inner`` and records everything sent (messages, continuations, options)."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.name, self.model = inner, inner.name, inner.model
        self.sent: list[tuple] = []

    def chat(self, messages, **kw):
        self.sent.append(("chat", json.dumps(list(messages)), sorted(kw.items())))
        return self.inner.chat(messages, **kw)

    def score(self, prompt, continuations):
        self.sent.append(("score", json.dumps(prompt), list(continuations)))
        return self.inner.score(prompt, continuations)


class PromptHash(Backend):
    """A model whose every answer is a function of the whole prompt (a hash): two prompts that
    differ anywhere get unrelated answers, so any hidden card that reached a prompt shows up in
    the decisions too."""

    name, model = "prompt-hash", "sha256"

    @staticmethod
    def _h(*parts) -> int:
        return int(hashlib.sha256(json.dumps(parts).encode()).hexdigest(), 16)

    def chat(self, messages, **kw):
        user = messages[1]["content"] if len(messages) > 1 else messages[0]["content"]
        legal = user.split("\n", 1)[0].removeprefix("Legal moves: ").split(", ")
        text = legal[self._h(messages, "chat") % len(legal)]
        return Completion(text, CallStats(self.name, self.model, "chat"))

    def score(self, prompt, continuations):
        lps = [-(self._h(prompt, c) % 1000) / 100.0 for c in continuations]
        return Scores(lps, "logprobs", CallStats(self.name, self.model, "score", method="logprobs"))


def play(name: str, *actions: int):
    s = games.make("openspiel:" + name).new_initial_state()
    for a in actions:
        s.apply_action(a)
    return s


def kuhn_pairs():
    """(viewer, state, state): the same for the viewer, the opponent's card differs."""
    out = []
    for mine in range(3):
        a, b = [c for c in range(3) if c != mine]
        for moves in ((), (0, 1)):                        # viewer 0: first to act; after pass, bet
            out.append((0, play("kuhn_poker", mine, a, *moves), play("kuhn_poker", mine, b, *moves)))
        for moves in ((0,), (1,)):                        # viewer 1 after a pass or a bet
            out.append((1, play("kuhn_poker", a, mine, *moves), play("kuhn_poker", b, mine, *moves)))
    return out


def leduc_pairs():
    """Leduc (cards 0-5: ranks J J Q Q K K): the viewer's card and the public card fixed, the
    opponent's card differs; in round 1 and after the public card in round 2."""
    out = []
    for mine, theirs, other, public in ((0, 2, 5, 4), (3, 1, 4, 5), (5, 0, 2, 1)):
        for moves in ((), (1, 1, public), (2, 1, public, 2)):   # round 1; call-call; raise-call, raise
            s1, s2 = play("leduc_poker", mine, theirs, *moves), play("leduc_poker", mine, other, *moves)
            viewer = s1.current_player()
            if viewer == 1:                          # deal so that the viewer holds ``mine``
                s1, s2 = play("leduc_poker", theirs, mine, *moves), play("leduc_poker", other, mine, *moves)
            out.append((viewer, s1, s2))
    return out


def decide(agent, state, player, seed=7):
    agent.reset(seed)
    spy = agent._backend
    spy.sent.clear()
    if hasattr(spy.inner, "reset_kv"):
        # llama.cpp's greedy replies depend on how much of the prompt its KV cache already held
        # (a different split of the evaluation rounds differently): start each decision alike
        spy.inner.reset_kv()
    d = agent.act(player_view(state, player))
    return d.action, d.fallback, list(spy.sent), prompt_fields(player_view(state, player))


# ------------------------------------------------------------------------- prompts from the view
@pytest.mark.parametrize("pairs", [kuhn_pairs, leduc_pairs], ids=["kuhn", "leduc"])
def test_prompt_fields_are_identical_when_only_the_opponents_card_differs(pairs):
    for viewer, s1, s2 in pairs():
        assert s1.current_player() == viewer and str(s1) != str(s2)       # the full states differ
        v1, v2 = player_view(s1, viewer), player_view(s2, viewer)
        assert prompt_fields(v1) == prompt_fields(v2)
        assert move_prompt(v1) == move_prompt(v2)
        assert state_key(v1) == state_key(v2)
        # a full state is prompted from its player's view too (a search's sampled states)
        assert move_prompt(s1) == move_prompt(v1) and state_key(s1) == state_key(v1)


def test_phantom_ttt_prompt_hides_the_opponents_moves():
    # player 1 (o) has seen none of x's moves: x at 0 then 1, or at 2 then 6
    s1, s2 = play("phantom_ttt", 0, 4, 1), play("phantom_ttt", 2, 4, 6)
    v1, v2 = player_view(s1, 1), player_view(s2, 1)
    assert prompt_fields(v1) == prompt_fields(v2)
    assert "x" not in prompt_fields(v1)["board"]
    assert recent_moves(v1, 5) == ["player 1: o(1,1)"]
    assert "x(" not in move_prompt(s1)[1]["content"]


@pytest.mark.parametrize("pairs", [kuhn_pairs, leduc_pairs], ids=["kuhn", "leduc"])
def test_decisions_of_a_prompt_sensitive_model_ignore_the_hidden_card(pairs):
    """Every answer of ``PromptHash`` depends on the whole prompt, so an agent that let the hidden
    card into any prompt would (over these positions) decide differently."""
    for spec in ("llm:seed=1", "llm:seed=1,retries=0", "llm:seed=1,sample_temperature=0.7,fallback=random"):
        agent = agents.make(spec)
        agent._backend = Spy(PromptHash())
        for viewer, s1, s2 in pairs():
            assert decide(agent, s1, viewer) == decide(agent, s2, viewer)


@pytest.mark.parametrize("pairs", [kuhn_pairs, leduc_pairs], ids=["kuhn", "leduc"])
def test_llm_agent_with_the_real_model_ignores_the_hidden_card(backend, pairs):
    agent = agents.make(f"llm:{T1},seed=3,retries=1,max_tokens=8")
    agent._backend = Spy(backend)
    for viewer, s1, s2 in pairs()[:2]:
        a1, a2 = decide(agent, s1, viewer), decide(agent, s2, viewer)
        assert a1[2] and a1 == a2                                          # calls made, all identical
        assert a1[0] in s1.legal_actions()


# ------------------------------------------------------------------------- check_game / warm_up
@pytest.mark.parametrize("name", ["llm-minimax", "llm-mcts"])
def test_search_llm_agents_refuse_hidden_information_and_more_players(name):
    agent = agents.make(f"{name}:{T1}")
    for game in ("openspiel:kuhn_poker", "openspiel:leduc_poker", "openspiel:phantom_ttt"):
        with pytest.raises(UnsupportedGameError, match="hidden information"):
            agent.check_game(games.make(game))
    with pytest.raises(UnsupportedGameError, match="3 players"):
        agent.check_game(games.make("openspiel:pig(players=3)"))
    agent.check_game(games.make("connect4"))
    agent.check_game(games.make("openspiel:tic_tac_toe"))
    assert agent._backend is None                                          # no model loaded


def test_llm_agent_accepts_hidden_information_games():
    agent = agents.make(f"llm:{T1}")
    for game in ("openspiel:kuhn_poker", "openspiel:leduc_poker", "openspiel:liars_dice",
                 "openspiel:phantom_ttt", "connect4"):
        agent.check_game(games.make(game))
    assert agent._backend is None


def test_construction_and_check_game_load_no_model():
    from plyground.agents.llm import local
    before = dict(local._MODELS)
    for spec in ("llm", "llm-minimax", "llm-mcts"):
        a = agents.make(f"{spec}:{T1},n_ctx=1024")       # a context size no other test loads
        a.check_game(games.make("openspiel:tic_tac_toe"))
        assert a._backend is None
    assert local._MODELS.keys() == before.keys()


def test_warm_up_loads_the_model_and_decodes_the_first_prompt():
    from plyground.agents.llm import local
    a = agents.make(f"llm:{T1},n_ctx=1536")              # its own model instance: a clean KV cache
    game = games.make("openspiel:kuhn_poker")
    a.check_game(game)
    assert not any(k[1] == 1536 for k in local._MODELS)
    a.warm_up(game)
    m = a.backend.shared
    # the first position a player sees: player 0 after the deal (the first outcome: the jack)
    first = move_prompt(player_view(play("kuhn_poker", 0, 1), 0))
    want = m.tokenize(m.render(first))
    assert m.llm.n_tokens == len(want) and list(m.llm.input_ids[: len(want)]) == want
    # the rules at the start of every prompt of the game are already in the cache
    system = m.tokenize(m.render(first[:1]))
    later = m.tokenize(m.render(move_prompt(player_view(play("kuhn_poker", 2, 0, 1), 1))))
    common = next((i for i, (x, y) in enumerate(zip(want, later)) if x != y), 0)
    assert common >= len(system) - 8
    d = a.act(player_view(play("kuhn_poker", 2, 0, 1), 1))
    assert d.action in (0, 1)
    a.close()


@pytest.mark.parametrize("name", ["connect4", "tictactoe", "pettingzoo:classic/connect_four_v3"])
def test_warm_up_works_on_native_and_pettingzoo_games(name):
    """The default tournament's LLM warms up on connect four (a native game) before its first move."""
    a = agents.make(f"llm:{T1}")
    game = games.make(name)
    a.check_game(game)
    a.warm_up(game)
    state = game.new_initial_state()
    assert a.act(player_view(state, 0)).action in state.legal_actions()
    a.close()
