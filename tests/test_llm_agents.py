"""The LLM roles and agents with the real bundled model (SmolLM2-135M through llama.cpp, 1 thread).

Budgets are small so the default run stays fast; longer games are marked slow.
"""

from __future__ import annotations

import json
import math

import pytest

from conftest import after_random_plies
from plyground import agents, games
from plyground.agents import AgentSpecError
from plyground.agents.llm.backends import make_backend
from plyground.agents.llm.roles import (
    CallLog, LLMActionProposer, LLMOpponentModel, LLMValueEstimator, terminal_value)
from plyground.arena.match import play_game
from plyground.search import alphabeta

T1 = "n_threads=1"


@pytest.fixture(scope="module")
def backend():
    return make_backend("local", n_threads=1)


# ----------------------------------------------------------------------------- the roles
@pytest.mark.parametrize("name, plies", [
    ("connect4", 5), ("tictactoe", 3), ("openspiel:connect_four", 4), ("openspiel:breakthrough", 2),
    ("pettingzoo:classic/connect_four_v3", 6), ("pettingzoo:classic/tictactoe_v3", 2),
])
def test_move_distribution_covers_exactly_the_legal_set_and_sums_to_one(backend, name, plies):
    s = after_random_plies(name, plies, seed=plies)
    legal = set(s.legal_actions())
    log = CallLog()
    dist = LLMActionProposer(backend, log=log).propose(s)
    assert set(dist) == legal
    assert math.isclose(sum(dist.values()), 1.0, abs_tol=1e-9)
    assert all(p > 0 for p in dist.values())                       # a softmax of finite log-likelihoods
    assert len(set(round(p, 6) for p in dist.values())) > 1        # the model prefers some moves
    summary = log.summary()
    assert summary["calls"] == 1 and summary["score_methods"] == {"logprobs": 1}
    assert summary["prompt_tokens"] > 0 and summary["log"][0]["top"]


def test_proposer_topk_and_mix_reshape_the_same_distribution(backend):
    s = after_random_plies("connect4", 4, seed=1)
    full = LLMActionProposer(backend).propose(s)
    mixed = LLMActionProposer(backend, mix=0.5).propose(s)
    n = len(full)
    for a in full:
        assert math.isclose(mixed[a], 0.5 * full[a] + 0.5 / n, rel_tol=1e-9)
    top = LLMActionProposer(backend, k=3).propose(s)
    best3 = sorted(full, key=lambda a: -full[a])[:3]
    assert list(top) == best3 and math.isclose(sum(top.values()), 1.0)


def test_opponent_model_speaks_for_the_player_to_move_and_shares_the_scorer(backend):
    s = after_random_plies("connect4", 3, seed=2)          # o to move
    log = CallLog()
    prop = LLMActionProposer(backend, log=log)
    opp = LLMOpponentModel(backend, mode="expectation", scorer=prop.scorer)
    assert opp.mode == "expectation" and opp.log is log
    d1 = prop.propose(s)
    d2 = opp.predict(s)
    assert d1 == d2 and set(d2) == set(s.legal_actions())
    assert log.calls == 1 and log.memo_hits == 1      # one position, one call whoever asks
    with pytest.raises(ValueError, match="opponent mode"):
        LLMOpponentModel(backend, mode="best")


def test_value_estimator_in_range_and_exact_on_finished_games(backend):
    log = CallLog()
    v = LLMValueEstimator(backend, log=log)
    live = [after_random_plies("connect4", n, seed=n) for n in (2, 5, 8)]
    vals = v.evaluate(live)
    assert all(-1.0 <= x <= 1.0 for x in vals)
    assert log.calls == 3
    won = games.play_moves(games.make("connect4"), "1212121")      # x won; o would move next
    drawn = games.play_moves(games.make("tictactoe"), "0 1 2 4 3 5 7 6 8")
    assert won.is_terminal() and drawn.is_terminal()
    assert v.evaluate([won, drawn]) == [-1.0, 0.0]
    assert terminal_value(won) == -1.0
    kuhn = games.make("openspiel:kuhn_poker").new_initial_state()
    for a in (0, 1, 1, 1):                                          # J, Q dealt; bet, call: Q wins 2 chips
        kuhn.apply_action(a)
    assert kuhn.returns() == [-2.0, 2.0] and terminal_value(kuhn) == -1.0   # scaled by the 2-chip maximum
    assert log.calls == 3                                           # no call for a finished game
    assert v.evaluate(live) == vals and log.memo_hits == 3


def test_value_estimator_number_method_parses_or_falls_back(backend):
    log = CallLog()
    v = LLMValueEstimator(backend, method="number", log=log)
    s = after_random_plies("tictactoe", 2, seed=0)
    (x,) = v.evaluate([s])
    assert -1.0 <= x <= 1.0
    entry = log.entries[0]
    assert entry["op"] == "chat" and "raw" in entry
    if entry["value"] is None:      # the small model did not answer with a number: recorded
        assert log.fallbacks and "unparsable" in log.fallbacks[0]


def test_minimax_with_llm_roles_searches_only_the_proposed_moves(backend):
    s = after_random_plies("connect4", 4, seed=3)
    log = CallLog()
    prop = LLMActionProposer(backend, log=log)
    opp = LLMOpponentModel(backend, mode="topk", k=2, scorer=prop.scorer)
    val = LLMValueEstimator(backend, log=log)
    r = alphabeta.search(s, depth=2, proposer=prop, proposer_k=2, opponent=opp, value=val, iterative=False)
    top2 = sorted(prop.propose(s).items(), key=lambda kv: -kv[1])[:2]
    assert set(r.action_values) == {a for a, _ in top2}
    assert r.best_action in s.legal_actions()
    assert r.extra["hook_calls"] == {"propose": 1, "predict": 2, "evaluate": 2, "states_evaluated": 4}


# ----------------------------------------------------------------------------- agents
def _play(spec: str, game: str, seed: int = 1, llm_seat: int = 0):
    seats = [agents.make(spec), agents.make(f"random:seed={seed}")]
    if llm_seat == 1:
        seats.reverse()
    r = play_game(games.make(game), seats, seed=seed)
    assert r.termination == "normal", r.detail
    s = games.make(game).new_initial_state()
    for m in r.moves:                          # replay: every move was legal where it was played
        assert m.action in s.legal_actions()
        s.apply_action(m.action)
    assert s.is_terminal()
    llm_moves = [m for m in r.moves if m.player == llm_seat]
    assert llm_moves and all("llm" in m.decision for m in llm_moves)
    json.dumps([m.decision for m in r.moves])     # the arena can record it
    return r, llm_moves


@pytest.mark.parametrize("spec", [
    f"llm:{T1},retries=1,max_tokens=8",
    f"llm-minimax:{T1},depth=2,k=2,opp_k=2",
    f"llm-mcts:{T1},sims=4,batch=2,leaf=mixed",
])
def test_full_tictactoe_game_with_only_legal_moves(spec):
    _r, moves = _play(spec, "tictactoe")
    assert sum(m.decision["llm"]["calls"] + m.decision["llm"]["memo_hits"] for m in moves) > 0


@pytest.mark.parametrize("spec", [
    f"llm:{T1},retries=1,max_tokens=8",
    f"llm-minimax:{T1},depth=1,k=3",
    f"llm-mcts:{T1},sims=4,batch=4",
])
def test_full_connect4_game_with_only_legal_moves(spec):
    _play(spec, "connect4", llm_seat=1)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [
    f"llm-minimax:{T1},depth=2,k=3,opp_k=3",
    f"llm-minimax:{T1},depth=2,k=2,opp_mode=expectation",
    f"llm-mcts:{T1},sims=16,batch=8,leaf=llm",
    f"llm:{T1}",
])
def test_full_connect4_game_longer_budgets(spec):
    _play(spec, "connect4", seed=2)


def test_llm_agent_decision_records_replies_parses_and_fallbacks():
    a = agents.make(f"llm:{T1},retries=1,max_tokens=8")
    s = after_random_plies("connect4", 6, seed=4)
    d = a.act(s)
    assert d.action in s.legal_actions()
    chats = [e for e in d.llm["log"] if e["op"] == "chat"]
    assert 1 <= len(chats) <= 2 and all("raw" in e and "parsed" in e for e in chats)
    if d.fallback is None:            # the model named a legal move
        assert chats[-1]["parsed"]["action"] == d.action
    else:                             # it did not, twice: the highest-scored move, recorded
        assert len(chats) == 2 and all(e["parsed"]["error"] for e in chats)
        assert "highest-scored legal move" in d.fallback
        scored = [e for e in d.llm["log"] if e["op"] == "score"]
        assert scored and scored[0]["top"][0][0] == s.action_to_string(d.action)
    assert d.llm["calls"] == len(d.llm["log"]) and d.llm["prompt_tokens"] > 0


def test_repeated_position_costs_zero_model_calls_with_the_cache(tmp_path):
    cache = tmp_path / "llm.sqlite"
    s = after_random_plies("connect4", 4, seed=5)
    for spec in (f"llm-minimax:{T1},depth=2,k=2,opp_k=2", f"llm:{T1},retries=1,max_tokens=8"):
        first = agents.make(f"{spec},cache={cache}").act(s.clone())
        assert first.llm["model_calls"] > 0
        again = agents.make(f"{spec},cache={cache}").act(s.clone())     # a new agent and backend
        assert again.llm["calls"] == first.llm["calls"]
        assert again.llm["model_calls"] == 0 and again.llm["cache_hits"] == again.llm["calls"]
        assert again.action == first.action


def test_same_agent_remembers_positions_within_a_game():
    a = agents.make(f"llm-minimax:{T1},depth=2,k=2,opp_k=2")
    s = after_random_plies("connect4", 2, seed=6)
    d1 = a.act(s.clone())
    d2 = a.act(s.clone())
    assert d1.llm["calls"] > 0 and d2.llm["calls"] == 0 and d2.llm["memo_hits"] > 0
    assert d1.action == d2.action


def test_roles_choose_which_hooks_use_the_llm():
    s = after_random_plies("connect4", 4, seed=7)
    none = agents.make(f"llm-minimax:{T1},roles=none,depth=3").act(s)
    assert none.llm["calls"] == 0 and none.search["engine"] == "alphabeta-numba"
    v = agents.make(f"llm-minimax:{T1},roles=value,depth=1").act(s)
    roles = {e["role"] for e in v.llm["log"]}
    assert roles == {"value"} and v.llm["calls"] == len(s.legal_actions())
    po = agents.make(f"llm-minimax:{T1},roles=propose+opponent,depth=2,k=2,opp_k=2").act(s)
    assert {e["role"] for e in po.llm["log"]} == {"propose", "opponent"}


def test_template_file_reaches_the_model(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('move = "Columns free: {legal_moves}\\n{board}\\nYou are {player}. Column?"\n')
    a = agents.make(f"llm-minimax:{T1},depth=1,k=2,roles=propose,templates={path}")
    seen = []
    real = a.backend.score

    def spy(prompt, conts):
        seen.append(prompt)
        return real(prompt, conts)
    a.backend.score = spy
    s = after_random_plies("connect4", 2, seed=8)
    a.act(s)
    assert seen and seen[0][1]["content"].startswith("Columns free: 1, 2, 3, 4, 5, 6, 7\n")
    assert seen[0][1]["content"].endswith("You are x. Column?")


@pytest.mark.parametrize("spec, fragment", [
    ("llm-minimax:roles=propose+guess", "names ['guess']"),
    ("llm-minimax:opp_mode=best", "choose one of ['full', 'topk', 'expectation']"),
    ("llm:backend=gpt", "choose one of ['local', 'openai', 'transformers']"),
    ("llm:backend=openai,n_threads=2,base_url=http://127.0.0.1:1/v1", "not an option of the 'openai' backend"),
    ("llm:backend=local,base_url=http://x", "not an option of the 'local' backend"),
    ("llm-mcts:mix=1.5", "above the maximum"),
    ("llm:api_key=sk-123", "no parameter 'api_key'"),
])
def test_bad_llm_specs_are_clear_errors(spec, fragment):
    with pytest.raises(AgentSpecError) as e:
        agents.make(spec)
    assert fragment in str(e.value)


def test_bad_template_file_in_a_spec_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("{board} {nope}")
    with pytest.raises(Exception) as e:
        agents.make(f"llm:templates={path}")
    assert "unknown placeholder {nope}" in str(e.value)


def test_backend_options_from_a_table():
    a = agents.make({"name": "llm-minimax", "depth": 1,
                     "backend": {"name": "local", "n_threads": 1, "n_ctx": 1024}})
    assert a.params["backend"] == "local" and a.backend_options() == {"n_threads": 1, "n_ctx": 1024}
    with pytest.raises(AgentSpecError, match="both in the backend table and outside"):
        agents.make({"name": "llm", "n_threads": 2, "backend": {"name": "local", "n_threads": 1}})


# ----------------------------------------------------------------------------- an OpenAI-compatible server
def _llama_server_fixture():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from test_llm_backends import llama_server   # the backends' fixture: llama_cpp.server on 127.0.0.1
    return llama_server


llama_server = _llama_server_fixture()


@pytest.mark.parametrize("spec", ["llm:retries=1,max_tokens=8",
                                  pytest.param("llm-minimax:depth=1,k=2", marks=pytest.mark.slow)])
def test_game_through_llama_cpps_openai_compatible_server(llama_server, spec):
    full = f"{spec},backend=openai,base_url={llama_server},timeout=60"
    r, moves = _play(full, "tictactoe", llm_seat=0)
    llm = [m.decision["llm"] for m in moves]
    assert sum(x["model_calls"] for x in llm) > 0 and not any(x["errors"] for x in llm)
    assert sum(x["prompt_tokens"] for x in llm) > 0                   # tokens are counted
    if spec.startswith("llm:"):
        assert sum(x["completion_tokens"] for x in llm) > 0
    else:
        assert all(set(x["score_methods"]) <= {"logprobs", "top_logprobs", "sample"} for x in llm)


def test_single_depth_search_gives_the_iterative_result():
    """``iterative=False`` (what llm-minimax uses) searches the same tree without the shallower
    iterations: the same values, fewer hook calls."""
    from plyground.search.hooks import HeuristicValue, UniformProposer
    for moves in ("4453", "1234567", "44"):
        s = games.play_moves(games.make("connect4"), moves)
        kw = dict(depth=3, proposer=UniformProposer(), value=HeuristicValue(), engine="generic")
        a = alphabeta.search(s, **kw)
        b = alphabeta.search(s, iterative=False, **kw)
        assert a.action_values == b.action_values and a.value == b.value and a.depth == b.depth == 3
        assert b.extra["hook_calls"]["evaluate"] < a.extra["hook_calls"]["evaluate"]
