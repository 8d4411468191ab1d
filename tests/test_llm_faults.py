"""Faults: every LLM agent still returns a legal move in bounded time and records what went wrong
(a fake OpenAI-compatible server plays garbage, HTTP 500s, a hang, illegal moves); an
unreachable backend raises InfrastructureError, which the arena turns into an aborted game."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from plyground import agents, games
from plyground.games.errors import InfrastructureError

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAI, free_port  # noqa: E402

AGENT_SPECS = ["llm:retries=2", "llm-minimax:depth=2,k=3,opp_k=3", "llm-mcts:sims=12,batch=4"]
TIMEOUT = 0.5         # per attempt; 1 retry -> about 1 s per failing call, 2 failing calls per move
BOUND = 12.0          # seconds a move may take whatever the server does


def _spec(name: str, base_url: str, extra: str = "") -> str:
    sep = "," if ":" in name else ":"
    return (f"{name}{sep}backend=openai,base_url={base_url},model=fake,timeout={TIMEOUT},"
            f"call_retries=1,seed=3{extra}")


def _position():
    return games.play_moves(games.make("connect4"), "444444")     # column 4 is full


def _act(spec: str, state):
    a = agents.make(spec)
    t = time.perf_counter()
    d = a.act(state.clone())
    elapsed = time.perf_counter() - t
    assert d.action in state.legal_actions()
    assert elapsed < BOUND, f"{spec} took {elapsed:.1f} s"
    json.dumps(d.to_json())
    return d, elapsed


@pytest.mark.parametrize("mode", ["garbage", "500", "badjson", "hang"])
@pytest.mark.parametrize("name", AGENT_SPECS)
def test_transport_faults_give_a_legal_move_and_a_record(name, mode):
    s = _position()
    with FakeOpenAI(reply="5", mode=mode) as srv:
        d, elapsed = _act(_spec(name, srv.base_url), s)
        posts = srv.n_posts
    assert d.fallback, "the fallback taken must be recorded"
    assert d.llm["errors"], "what went wrong must be recorded"
    want = {"garbage": "unparsable", "500": "HTTP 500", "badjson": "malformed", "hang": "no reply within"}[mode]
    assert any(want in e for e in d.llm["errors"]), d.llm["errors"]
    failed = [e for e in d.llm["log"] if "error" in e]
    assert failed and all(e["attempts"] == 2 for e in failed)       # the backend retried once
    # after two failed calls the roles stop calling: the move costs a bounded number of requests
    assert posts <= 2 * (d.llm["calls"])
    assert d.llm["calls"] <= 2 or name.startswith("llm-mcts")     # mcts may have a batch in flight
    if mode == "hang":
        assert elapsed >= TIMEOUT


@pytest.mark.parametrize("reply", ["4", "Column 4", "I play column 9", "1 2 3"])
def test_llm_agent_re_asks_then_falls_back_when_the_replies_name_no_legal_move(reply):
    s = _position()
    with FakeOpenAI(reply=reply) as srv:
        d, _ = _act(_spec("llm:retries=2", srv.base_url), s)
        chats = [b for p, b, _h in srv.requests if p.endswith("/chat/completions") and b and not b.get("logprobs")]
    moves = [e for e in d.llm["log"] if e["role"] == "move"]
    assert len(moves) == 3 and all(e["raw"] == reply and e["parsed"]["error"] for e in moves)
    # the re-asks show the model its reply and the error
    assert len(chats) == 3
    last = chats[-1]["messages"]
    assert [m["role"] for m in last[-5:]] == ["user", "assistant", "user", "assistant", "user"]
    assert last[-2]["content"] == reply and "legal moves" in last[-1]["content"]
    assert moves[0]["parsed"]["error"] in last[-3]["content"]
    assert d.fallback.startswith("move: highest-scored legal move (no legal move in 3 replies)")


def test_llm_agent_accepts_a_legal_reply_first_time():
    s = _position()
    with FakeOpenAI(reply="I play column 5.") as srv:
        d, _ = _act(_spec("llm", srv.base_url), s)
    assert d.action == s.string_to_action("5") and d.fallback is None
    assert d.llm["log"][0]["parsed"]["how"] == "intent" and d.llm["completion_tokens"] > 0


def test_random_fallback_when_the_server_fails_and_scoring_is_off():
    s = _position()
    with FakeOpenAI(mode="500") as srv:
        d, _ = _act(_spec("llm:fallback=random", srv.base_url), s)
    assert "seeded random legal move" in d.fallback and "failed call" in d.fallback


def test_a_server_that_recovers_mid_move_is_used_again():
    s = _position()
    with FakeOpenAI(reply="6") as srv:
        srv.script(["500"])        # the first attempt fails, the retry succeeds
        d, _ = _act(_spec("llm", srv.base_url), s)
    assert d.action == s.string_to_action("6") and d.fallback is None and not d.llm["errors"]
    assert d.llm["log"][0]["retry_error"].startswith("TransientError: HTTP 500")


@pytest.mark.parametrize("name", AGENT_SPECS)
def test_unreachable_backend_raises_infrastructure_error(name):
    url = f"http://127.0.0.1:{free_port()}/v1"
    a = agents.make(_spec(name, url))
    t = time.perf_counter()
    with pytest.raises(InfrastructureError):
        a.act(_position())
    assert time.perf_counter() - t < BOUND


def test_refused_key_raises_infrastructure_error():
    with FakeOpenAI(mode="401") as srv:
        with pytest.raises(InfrastructureError, match="refused"):
            agents.make(_spec("llm-minimax", srv.base_url)).act(_position())


def test_an_unreachable_backend_is_not_the_agents_fault_in_a_game():
    """play_game lets InfrastructureError through (no forfeit); the arena's runner records the game
    aborted."""
    from plyground.arena.match import play_game
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(InfrastructureError):
        play_game(games.make("connect4"), [agents.make(_spec("llm", url)), agents.make("random:seed=1")], seed=1)


def test_the_api_key_never_reaches_a_decision(monkeypatch):
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("PLYGROUND_TEST_KEY", secret)
    s = _position()
    with FakeOpenAI(reply="2") as srv:
        a = agents.make(_spec("llm", srv.base_url, ",api_key_env=PLYGROUND_TEST_KEY"))
        d = a.act(s)
        srv.mode = "500"
        d2 = a.act(s.clone())
        sent = [v for _p, _b, h in srv.requests for k, v in h.items() if k.lower() == "authorization"]
    assert any(secret in h for h in sent)                          # it was used...
    for text in (d.dumps(), d2.dumps(), a.spec, json.dumps(a.config()), repr(a)):
        assert secret not in text                                  # ...and never recorded
    assert "PLYGROUND_TEST_KEY" in a.spec
    assert os.environ["PLYGROUND_TEST_KEY"] == secret


def test_llm_agent_keeps_within_its_clock_when_calls_are_slow():
    """Each call takes over 0.4 s and names no legal move; with a 3 s clock the agent stops re-asking
    once another ask (1.5 x the last call) would end past 80% of the clock, and takes the score
    fallback only if one more call still ends within 90% of it (else a seeded random legal move): the
    move ends within the clock (with no clock it would ask all 11 times, over 4.4 s)."""
    with FakeOpenAI(reply="no idea", delay=0.4) as srv:
        a = agents.make(_spec("llm:retries=10", srv.base_url))
        state = _position()
        t = time.perf_counter()
        d = a.act(state.clone(), clock=3.0)
        elapsed = time.perf_counter() - t
    assert d.action in state.legal_actions()
    assert elapsed < 3.0
    assert 1 <= d.info["asked"] <= 6 and d.fallback


def test_llm_agent_makes_no_call_its_pace_says_would_overrun_the_clock():
    """After one 0.4 s call, a 0.3 s clock leaves no room for another: the next move makes no call and
    plays a seeded random legal move at once, saying why; a new game starts with no pace remembered."""
    with FakeOpenAI(reply="no idea", delay=0.4) as srv:
        a = agents.make(_spec("llm:retries=0,fallback=random", srv.base_url))
        state = _position()
        first = a.act(state.clone(), clock=0.3)       # nothing measured yet: it asks, and overruns
        assert first.info["asked"] == 1 and first.think_time > 0.3
        d = a.act(state.clone(), clock=0.3)
        assert d.info["asked"] == 0 and d.think_time < 0.3 and d.action in state.legal_actions()
        assert "no call made" in d.fallback and "within the clock" in d.fallback
        assert a.act(state.clone(), clock=None).info["asked"] == 1    # no clock: it asks
        a.reset(1)
        assert a.act(state.clone(), clock=0.3).info["asked"] == 1     # a new game: asked again
