"""LLM backends: the real bundled SmolLM2-135M through llama.cpp (n_threads=1), llama-cpp-python's
own OpenAI-compatible server, a fake server for faults, the SQLite cache, and (slow) transformers."""

from __future__ import annotations

import json
import math
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from plyground.agents.llm.backend import SCORE_METHODS, LLMError
from plyground.agents.llm.backends import BACKEND_NAMES, backend_options, make_backend
from plyground.agents.llm.cache import LLMCache
from plyground.agents.llm.local import LocalBackend, default_gguf_path
from plyground.games.errors import InfrastructureError

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAI, free_port  # noqa: E402

MSGS = [{"role": "system", "content": "You play connect four. Moves are columns 1-7."},
        {"role": "user", "content": "Board:\n.......\n.......\n.......\n.......\n.......\n...x...\n"
                                    "o to move. Which column? Answer with a number."}]
CONTS = ["1", "4", "7", "column 3", "I play 4", " 4", "\n4", "4\n"]
SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture(scope="module")
def local() -> LocalBackend:
    return LocalBackend(n_threads=1)


@pytest.fixture(scope="module")
def reference():
    """An independent llama.cpp instance keeping the logits of every position."""
    from llama_cpp import Llama
    llm = Llama(default_gguf_path(), n_ctx=256, n_threads=1, logits_all=True, verbose=False)
    yield llm
    llm.close()


def naive_logprob(ref, text: str, cont: str, split: int) -> float:
    """log P(tokens[split:] of text+cont | tokens[:split]) from one full evaluation of text+cont."""
    toks = ref.tokenize((text + cont).encode(), add_bos=False, special=True)
    ref.reset()
    ref.eval(toks)
    rows = ref.scores[: len(toks)].astype(np.float64)
    total = 0.0
    for p in range(split, len(toks)):
        r = rows[p - 1]
        total += r[toks[p]] - (r.max() + math.log(np.exp(r - r.max()).sum()))
    return total


# ---- local backend: score ----------------------------------------------------------------------
@pytest.mark.parametrize("prompt", [MSGS, "The capital of France is"])
def test_score_equals_naive_per_continuation(local, reference, prompt):
    conts = CONTS if not isinstance(prompt, str) else [" Paris", " London", " Berlin", " the city of"]
    s = local.score(prompt, conts)
    assert s.method == "logprobs" and s.stats.method == "logprobs"
    text = prompt if isinstance(prompt, str) else local.shared.render(prompt)
    for c, lp in zip(conts, s.logprobs):
        assert lp == pytest.approx(naive_logprob(reference, text, c, s.extra["split"]), abs=1e-4), c
    assert all(lp < 0 for lp in s.logprobs)


def test_score_chain_rule_and_distribution(local):
    s = local.score(MSGS, [str(d) for d in range(10)])
    p = np.exp(s.logprobs)
    assert p.sum() < 1.0                                 # ten tokens out of a 49k vocabulary
    q = np.exp(np.array(s.logprobs) - max(s.logprobs))
    assert (q / q.sum()).sum() == pytest.approx(1.0)
    # log P("column 3") = log P("column") + log P(" 3" | ... "column")
    whole = local.score(MSGS, ["column 3"]).logprobs[0]
    first = local.score(MSGS, ["column"]).logprobs[0]
    rest = local.score(MSGS + [{"role": "assistant", "content": "column"}], [" 3"]).logprobs[0]
    assert whole == pytest.approx(first + rest, abs=1e-4)


def test_greedy_reply_scores_highest(local):
    g1 = local.chat(MSGS, max_tokens=1).text
    alts = [c for c in ["1", "2", "3", "4", "5", "6", "7", "I", "The", "Column", "O"] if c != g1]
    s = local.score(MSGS, [g1] + alts)
    assert s.logprobs[0] >= max(s.logprobs[1:])
    g3 = local.chat(MSGS, max_tokens=3).text
    g2 = local.chat(MSGS, max_tokens=2).text
    assert g3.startswith(g2)
    alts3 = [g2 + x for x in (" the", " a", " is", "!", " 5") if g2 + x != g3]
    s3 = local.score(MSGS, [g3] + alts3)
    assert s3.logprobs[0] >= max(s3.logprobs[1:])


def test_kv_reuse_does_not_change_scores(local, reference):
    other = [MSGS[0], {"role": "user", "content": "Board:\n.......\n...o...\n...x...\nx to move."}]
    local.score(other, ["1", "2"])                        # leaves a shared system prefix in the KV
    s = local.score(MSGS, ["3", "column 3", "I play 4"])
    assert s.extra["decoded"] < s.extra["prompt_len"]    # the shared prefix was not recomputed
    local.reset_kv()
    fresh = local.score(MSGS, ["3", "column 3", "I play 4"])
    assert fresh.extra["decoded"] >= fresh.extra["prompt_len"]
    assert s.logprobs == pytest.approx(fresh.logprobs, abs=1e-6)
    local.chat(other, max_tokens=4)                      # generation also moves the KV cache
    again = local.score(MSGS, ["3", "column 3", "I play 4"])
    assert again.logprobs == pytest.approx(fresh.logprobs, abs=1e-6)


def test_prefill_is_scored_after_the_assistant_start(local):
    text = local.shared.render(MSGS) + "I play"
    a = local.score(MSGS + [{"role": "assistant", "content": "I play"}], [" 4", " 5"])
    b = local.score(text, [" 4", " 5"])
    assert a.logprobs == pytest.approx(b.logprobs, abs=1e-9)


def test_score_rejects_bad_input(local):
    with pytest.raises(ValueError, match="at least one continuation"):
        local.score(MSGS, [])
    with pytest.raises(ValueError, match="role"):
        local.score([{"content": "x"}], ["1"])


def test_models_are_shared_within_a_process(local):
    other = LocalBackend(n_threads=1)
    assert other.shared is local.shared
    assert LocalBackend(n_threads=1, n_ctx=1024).shared is not local.shared


# ---- local backend: generation -----------------------------------------------------------------
def test_chat_is_deterministic_and_counts_tokens(local):
    a = local.chat(MSGS, max_tokens=6)
    b = local.chat(MSGS, max_tokens=6)
    assert a.text == b.text and a.text.strip()
    n_prompt = len(local.shared.tokenize(local.shared.render(MSGS)))
    assert a.stats.prompt_tokens == n_prompt
    assert 1 <= a.stats.completion_tokens <= 6
    assert a.stats.op == "chat" and a.stats.backend == "local" and not a.stats.cached
    c = local.complete("1, 2, 3, 4,", max_tokens=8, stop=[","])
    assert c.text.strip() == "5" and "," not in c.text
    s1 = local.chat(MSGS, max_tokens=12, temperature=1.0, seed=7)
    s2 = local.chat(MSGS, max_tokens=12, temperature=1.0, seed=7)
    assert s1.text == s2.text


def test_local_failures_are_llm_errors(local):
    b = LocalBackend(n_threads=1, timeout=1e-4)
    with pytest.raises(LLMError) as e:
        b.chat(MSGS, max_tokens=64)
    assert "timeout" in str(e.value) and e.value.stats.error
    small = LocalBackend(n_threads=1, n_ctx=32)
    with pytest.raises(LLMError, match="exceeds the context of 32 tokens"):
        small.score(MSGS, ["1"])
    with pytest.raises(LLMError, match="exceeds the context"):
        small.chat(MSGS)


def test_local_backend_pickles_without_its_model(local):
    s = local.score(MSGS, ["1", "column 3"])
    clone = pickle.loads(pickle.dumps(local))             # e.g. sent to a worker process
    assert clone._m is None and clone.score(MSGS, ["1", "column 3"]).logprobs == s.logprobs


# ---- factory -----------------------------------------------------------------------------------
def test_make_backend_names_and_options():
    assert BACKEND_NAMES == ("local", "openai", "transformers")
    with pytest.raises(ValueError, match="allowed: local, openai, transformers"):
        make_backend("vllm")
    with pytest.raises(ValueError, match=r"'tempo'.*allowed: model, adapter, n_threads"):
        make_backend("local", tempo=1)
    with pytest.raises(ValueError, match="base_url"):
        make_backend("openai", model="m", base_url="localhost:8000")
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        make_backend("local", model="/nope.gguf")
    with pytest.raises(FileNotFoundError, match="directory"):
        make_backend("transformers", model="/nonexistent")
    with pytest.raises(ValueError, match="retries"):
        make_backend("openai", model="m", base_url="http://127.0.0.1:1/v1", retries="x")
    assert "api_key_env" in backend_options("openai") and "retries" in backend_options("openai")
    b = make_backend("local", n_threads="1", n_ctx="512", timeout="30")
    assert (b.n_threads, b.n_ctx, b.policy.timeout) == (1, 512, 30.0)
    with pytest.raises(ValueError, match="NO_SUCH_VAR"):
        make_backend("openai", model="m", base_url="http://x/v1", api_key_env="NO_SUCH_VAR")


# ---- cache -------------------------------------------------------------------------------------
def test_cache_hits_cost_no_model_calls_and_survive_reopening(tmp_path):
    path = tmp_path / "llm.sqlite"
    b = LocalBackend(n_threads=1, cache=str(path))
    a1 = b.chat(MSGS, max_tokens=5)
    s1 = b.score(MSGS, ["3", "4", "column 4"])
    assert b.counters()["model_calls"] == 2
    a2 = b.chat(MSGS, max_tokens=5)
    s2 = b.score(MSGS, ["3", "4", "column 4"])
    assert b.counters()["model_calls"] == 2 and b.counters()["cache_hits"] == 2
    assert a2.text == a1.text and a2.stats.cached and a2.stats.prompt_tokens == 0
    assert s2.logprobs == s1.logprobs and s2.method == "logprobs" and s2.stats.cached
    b.score(MSGS, ["3", "4"])                             # other continuations: a miss
    b.chat(MSGS, max_tokens=6)                            # other sampling params: a miss
    b.chat(MSGS, max_tokens=5, temperature=0.9)           # not deterministic: never cached
    b.chat(MSGS, max_tokens=5, temperature=0.9)
    assert b.counters()["model_calls"] == 6
    b.cache.close()
    b2 = LocalBackend(n_threads=1, cache=LLMCache(path))  # a new process would see the same file
    assert b2.chat(MSGS, max_tokens=5).text == a1.text
    assert b2.score(MSGS, ["3", "4", "column 4"]).logprobs == s1.logprobs
    assert b2.counters()["model_calls"] == 0 and b2.counters()["cache_hits"] == 2
    assert len(b2.cache) == 4


def test_cache_is_safe_across_threads(tmp_path):
    c = LLMCache(tmp_path / "c.sqlite")
    errors = []

    def work(i):
        try:
            for j in range(30):
                c.put(f"k{i}-{j}", {"v": j}, backend="b", model="m", op="chat")
                assert c.get(f"k{i}-{j}") == {"v": j}
        except Exception as e:                             # pragma: no cover - reported below
            errors.append(e)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and len(c) == 120
    assert pickle.loads(pickle.dumps(c)).get("k0-0") == {"v": 0}


# ---- openai backend against a fake server: faults --------------------------------------------
def fake_backend(srv, **kw):
    opts = dict(base_url=srv.base_url, model="fake-model", api_key_env="PLYGROUND_TEST_KEY",
                retries=2, backoff=0.01, timeout=2.0)
    opts.update(kw)
    return make_backend("openai", **opts)


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("PLYGROUND_TEST_KEY", SECRET)


def test_openai_retries_then_succeeds(key_env):
    with FakeOpenAI(reply="4") as srv:
        b = fake_backend(srv)
        srv.script(["500", "garbage"])
        c = b.chat(MSGS)
        assert c.text == "4" and c.stats.attempts == 3 and srv.n_posts == 3
        assert c.stats.prompt_tokens == 11 and c.stats.completion_tokens == 1
        assert "unparsable" in c.stats.error
        auth = {k.lower(): v for k, v in srv.requests[-1][2].items()}["authorization"]
        assert auth == f"Bearer {SECRET}"                  # the key is used on the wire ...


@pytest.mark.parametrize("mode,what", [("500", "HTTP 500"), ("garbage", "unparsable"),
                                       ("badjson", "malformed"), ("hang", "no reply within")])
def test_openai_faults_become_llm_errors_in_bounded_time(key_env, mode, what, tmp_path):
    with FakeOpenAI(mode=mode, leak_auth=True) as srv:
        b = fake_backend(srv, timeout=0.3, cache=str(tmp_path / "c.sqlite"))
        t = time.perf_counter()
        with pytest.raises(LLMError) as e:
            b.chat(MSGS)
        assert time.perf_counter() - t < 3 * 0.3 + 1.5
        assert srv.n_posts == 3 and e.value.stats.attempts == 3
        assert what in str(e.value) and what in e.value.stats.error
        with pytest.raises(LLMError):
            b.score(MSGS, ["1", "2"])
        # ... but never in an error, the stats, the repr, a pickle or the cache
        assert SECRET not in str(e.value) and SECRET not in json.dumps(e.value.stats.to_json())
        assert SECRET not in repr(b) and SECRET.encode() not in pickle.dumps(b)
        with sqlite3.connect(tmp_path / "c.sqlite") as db:
            assert SECRET not in json.dumps(db.execute("SELECT * FROM answers").fetchall())


def test_openai_auth_and_bad_request(key_env):
    with FakeOpenAI(mode="401", leak_auth=True) as srv:
        with pytest.raises(InfrastructureError) as e:
            fake_backend(srv).chat(MSGS)
        assert srv.n_posts == 1 and "PLYGROUND_TEST_KEY" in str(e.value) and SECRET not in str(e.value)
    with FakeOpenAI(mode="400", leak_auth=True) as srv:
        with pytest.raises(LLMError) as e:
            fake_backend(srv).chat(MSGS)
        assert srv.n_posts == 1 and SECRET not in str(e.value)


def test_openai_connection_refused_is_infrastructure_error(key_env):
    b = make_backend("openai", base_url=f"http://127.0.0.1:{free_port()}/v1", model="m",
                     api_key_env="PLYGROUND_TEST_KEY", retries=2, backoff=0.01)
    t = time.perf_counter()
    with pytest.raises(InfrastructureError) as e:
        b.score(MSGS, ["1", "2"])
    assert time.perf_counter() - t < 2.0
    assert e.value.stats.attempts == 3 and "cannot connect" in str(e.value)


def test_openai_score_methods_on_fake(key_env, tmp_path):
    with FakeOpenAI(reply="B") as srv:
        b = fake_backend(srv, cache=str(tmp_path / "c.sqlite"))
        s = b.score("Pick: ", ["1", "22", "333"])         # raw text: echo logprobs (-0.5 per char)
        assert s.method == "logprobs" and s.logprobs == pytest.approx([-0.5, -1.0, -1.5])
        n = srv.n_posts
        assert b.score("Pick: ", ["1", "22", "333"]).stats.cached and srv.n_posts == n
        s = b.score(MSGS, ["1", "2", "3"])               # messages, no chat_template: labels
        assert s.method == "top_logprobs" and "chat_template" in s.extra["fallbacks"]["logprobs"]
        assert max(range(3), key=lambda i: s.logprobs[i]) == 1          # the fake favours "B"
        t = fake_backend(srv, chat_template="chatml").score(MSGS, ["1", "22"])
        assert t.method == "logprobs" and t.logprobs == pytest.approx([-0.5, -1.0])
        sm = fake_backend(srv, score_method="sample", samples=5).score(MSGS, ["1", "2", "3"])
        assert sm.method == "sample" and sm.extra["counts"] == [0, 5, 0]
        assert sm.logprobs[1] == max(sm.logprobs)


def test_openai_concurrency_limit(key_env):
    with FakeOpenAI(reply="4", delay=0.15) as srv:
        b = fake_backend(srv, concurrency=2)
        ts = [threading.Thread(target=b.chat, args=([{"role": "user", "content": f"q{i}"}],))
              for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert srv.n_posts == 6 and srv.max_inflight == 2


# ---- openai backend against llama-cpp-python's own server --------------------------------------
@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    pytest.importorskip("uvicorn")
    pytest.importorskip("sse_starlette")
    pytest.importorskip("starlette_context")
    pytest.importorskip("pydantic_settings")
    port = free_port()
    log = open(tmp_path_factory.mktemp("llama_server") / "server.log", "w+b")   # a pipe would fill up
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", default_gguf_path(), "--host",
         "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_ctx", "2048"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"llama_cpp.server exited: {log.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not become ready in 90 s")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_openai_against_llama_cpp_server(llama_server, local):
    b = make_backend("openai", base_url=llama_server, timeout=60)   # model: the server's first
    c = b.chat(MSGS, max_tokens=6)
    assert c.text.strip() and c.stats.completion_tokens >= 1
    assert c.stats.prompt_tokens == len(local.shared.tokenize(local.shared.render(MSGS)))
    assert c.text == local.chat(MSGS, max_tokens=6).text       # same model, same greedy reply
    s = b.score(MSGS, ["1", "2", "3", "4"])
    assert s.method in SCORE_METHODS and s.stats.method == s.method
    assert s.stats.prompt_tokens > 0 and len(s.logprobs) == 4
    # llama-cpp-python 0.3's server shifts echoed prompt logprobs by one token: the probe sees it
    t = make_backend("openai", base_url=llama_server, timeout=60,
                     chat_template=default_gguf_path()).score(MSGS, ["1", "2", "3", "4"])
    assert t.method == "top_logprobs" and "misaligned" in t.extra["fallbacks"]["logprobs"]
    # the label probabilities are the model's: the local backend scores the same labelled prompt
    labelled = b._label_messages(MSGS, ["1", "2", "3", "4"])
    ref = local.score(labelled, ["A", "B", "C", "D"]).logprobs
    assert s.logprobs == pytest.approx(ref, abs=0.2)
    assert int(np.argmax(s.logprobs)) == int(np.argmax(ref))


# ---- transformers backend (slow: converts the bundled GGUF to a HF directory) -----------------
@pytest.mark.slow
def test_transformers_backend_matches_llama_cpp(tmp_path_factory, local):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    torch.set_num_threads(1)
    d, f = os.path.split(default_gguf_path())
    out = tmp_path_factory.mktemp("smol_hf")
    tok = transformers.AutoTokenizer.from_pretrained(d, gguf_file=f)
    q = transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    fresh = transformers.AutoModelForCausalLM.from_config(q.config)
    fresh.load_state_dict(q.state_dict())
    fresh.save_pretrained(out)
    tok.save_pretrained(out)
    del q, fresh
    h = make_backend("transformers", model=str(out), n_threads=1)
    m = h.shared
    assert m.render(MSGS) == local.shared.render(MSGS)
    conts = [str(i) for i in range(1, 8)] + ["column 3", "I play 4"]
    s = h.score(MSGS, conts)
    # independent truth: one full forward pass per continuation
    for c, lp in zip(conts, s.logprobs):
        ids = m.tokenize(m.render(MSGS) + c)
        with torch.no_grad():
            lg = torch.log_softmax(m.model(torch.tensor([ids])).logits[0].float(), -1)
        naive = sum(float(lg[j - 1, ids[j]]) for j in range(s.extra["split"], len(ids)))
        assert lp == pytest.approx(naive, abs=1e-3), c
    # same weights as llama.cpp (dequantized): close values, same favourite
    loc = local.score(MSGS, conts).logprobs
    assert np.abs(np.array(s.logprobs) - np.array(loc)).max() < 1.0
    assert int(np.argmax(s.logprobs[:7])) == int(np.argmax(loc[:7]))
    assert np.corrcoef(s.logprobs, loc)[0, 1] > 0.95
    c = h.chat(MSGS, max_tokens=6)
    assert c.text.strip() and c.stats.prompt_tokens == len(m.tokenize(m.render(MSGS)))
    assert 1 <= c.stats.completion_tokens <= 6


# ---- benchmark smoke ---------------------------------------------------------------------------
def test_bench_score_runs():
    from plyground.agents.llm.bench import bench_score
    r = bench_score("4453", repeats=1, n_threads=1, verbose=False)
    assert r["moves"] == 7 and r["score_cold_s"] > 0 and r["completion_s"] > 0
