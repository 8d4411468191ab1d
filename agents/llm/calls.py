"""What every backend call goes through: the answer cache, retries with exponential backoff, a
per-attempt timeout, a concurrency limit per endpoint, secret redaction and per-call accounting.

Backends subclass ``ManagedBackend`` and implement ``_chat`` / ``_complete`` / ``_score``; each of
those fills the token counts of the ``CallStats`` it is handed and raises ``TransientError`` (worth
retrying: HTTP 5xx, timeout, garbage reply) or ``Unreachable`` (connection refused) for transport
faults.  After the retries, ``Unreachable`` becomes ``InfrastructureError`` and the rest ``LLMError``.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterable, Sequence, TypeVar

from plyground.agents.llm.backend import (
    Backend, CallStats, Completion, LLMError, Message, Prompt, SCORE_METHODS, Scores)
from plyground.agents.llm.cache import LLMCache, cache_key, open_cache
from plyground.games.errors import InfrastructureError

T = TypeVar("T")


class TransientError(Exception):
    """A failed attempt worth retrying (HTTP 5xx/429, timeout, unparsable reply)."""


class Unreachable(Exception):
    """The endpoint could not be reached at all (connection refused, DNS failure)."""


class FatalCallError(Exception):
    """A failed attempt not worth retrying (HTTP 400, unsupported request): becomes LLMError."""


class EndpointError(Exception):
    """The endpoint refuses us for good (HTTP 401/403/404): becomes InfrastructureError at once."""


@dataclass
class CallPolicy:
    """Retry/timeout/concurrency settings of one backend (small defaults so faults resolve quickly)."""

    retries: int = 2              # extra attempts after the first
    backoff: float = 0.2          # seconds before the first retry; doubles each time (with jitter)
    backoff_max: float = 2.0
    timeout: float = 60.0         # seconds per attempt
    concurrency: int = 4          # simultaneous calls per endpoint in this process

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.timeout <= 0 or self.concurrency < 1:
            raise ValueError(f"bad call policy {self}: need retries>=0, backoff>=0, timeout>0, "
                             "concurrency>=1")

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


_SEMAPHORES: dict[tuple, threading.BoundedSemaphore] = {}
_SEM_LOCK = threading.Lock()


def endpoint_semaphore(key: tuple, size: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore limiting concurrent calls to one endpoint (``key``)."""
    with _SEM_LOCK:
        sem = _SEMAPHORES.get((key, size))
        if sem is None:
            sem = _SEMAPHORES[(key, size)] = threading.BoundedSemaphore(size)
        return sem


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def run_with_retries(attempt: Callable[[float], T], policy: CallPolicy, stats: CallStats,
                     secrets: Sequence[str] = (), what: str = "LLM call") -> T:
    """Call ``attempt(timeout)`` up to ``1 + policy.retries`` times with exponential backoff.

    Raises ``InfrastructureError`` if the last failure was ``Unreachable`` (or ``EndpointError``),
    ``LLMError`` otherwise; every message is redacted and recorded in ``stats.error``."""
    last: Exception | None = None
    for i in range(policy.retries + 1):
        stats.attempts = i + 1
        try:
            return attempt(policy.timeout)
        except (TransientError, Unreachable) as e:
            last = e
            stats.error = redact(f"{type(e).__name__}: {e}", secrets)
        except EndpointError as e:
            stats.error = redact(f"EndpointError: {e}", secrets)
            raise InfrastructureError(f"{what} refused: {stats.error}") from None
        except FatalCallError as e:
            stats.error = redact(f"FatalCallError: {e}", secrets)
            raise LLMError(f"{what} failed: {stats.error}", stats) from None
        if i < policy.retries:
            delay = min(policy.backoff * (2 ** i), policy.backoff_max)
            time.sleep(delay * (0.75 + 0.5 * random.random()))
    msg = f"{what} failed after {stats.attempts} attempt(s): {stats.error}"
    if isinstance(last, Unreachable):
        raise InfrastructureError(msg) from None
    raise LLMError(msg, stats) from None


def _norm_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"bad chat message {m!r}: need a dict with 'role' and 'content'")
        out.append({"role": str(m["role"]), "content": str(m["content"])})
    if not out:
        raise ValueError("empty chat messages: need at least one message")
    return out


def norm_prompt(prompt: Prompt) -> str | list[dict[str, str]]:
    """A prompt as raw text or a validated list of messages."""
    return prompt if isinstance(prompt, str) else _norm_messages(prompt)


class ManagedBackend(Backend):
    """Base of the concrete backends: cache, retries, accounting around ``_chat/_complete/_score``.

    Counters: ``model_calls`` (calls that reached the model, cache hits excluded), ``cache_hits``,
    ``prompt_tokens``, ``completion_tokens`` (totals over the backend's life)."""

    name = "managed"

    def __init__(self, *, cache: Any = None, policy: CallPolicy | None = None) -> None:
        self.cache: LLMCache | None = open_cache(cache)
        self.policy = policy or CallPolicy()
        self.model_calls = 0
        self.cache_hits = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._counter_lock = threading.Lock()

    # process-local members dropped from pickles (a loaded model, an HTTP client, locks)
    _transient_attrs = ("_counter_lock", "_m", "_client", "_client_lock")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for k in self._transient_attrs:
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._counter_lock = threading.Lock()
        self._restore()

    def _restore(self) -> None:
        """Re-create process-local members after unpickling (subclasses extend)."""
        self._m = None

    # ---- what subclasses provide -------------------------------------------------------------
    def cache_identity(self) -> str:
        """What identifies the model in cache keys (never a secret)."""
        return self.model

    def _secrets(self) -> Sequence[str]:
        return ()

    def _semaphore(self) -> threading.BoundedSemaphore | None:
        return None

    def _chat(self, messages: list[dict[str, str]], stats: CallStats, timeout: float,
              **params: Any) -> str:
        raise NotImplementedError

    def _complete(self, prompt: str, stats: CallStats, timeout: float, **params: Any) -> str:
        raise NotImplementedError

    def _score(self, prompt: str | list[dict[str, str]], continuations: list[str],
               stats: CallStats, timeout: float) -> tuple[list[float], dict[str, Any]]:
        """Return the log-likelihoods and extra info; set ``stats.method``."""
        raise NotImplementedError

    # ---- the public operations ---------------------------------------------------------------
    def chat(self, messages: Sequence[Message], *, max_tokens: int = 64, temperature: float = 0.0,
             seed: int | None = None, stop: Sequence[str] | None = None) -> Completion:
        msgs = _norm_messages(messages)
        params = _sampling(max_tokens, temperature, seed, stop)
        return self._text_call("chat", msgs, params,
                               lambda st, to: self._chat(msgs, st, to, **params))

    def complete(self, prompt: str, *, max_tokens: int = 64, temperature: float = 0.0,
                 seed: int | None = None, stop: Sequence[str] | None = None) -> Completion:
        if not isinstance(prompt, str):
            raise ValueError(f"complete() takes a text prompt, got {type(prompt).__name__}; "
                             "use chat() for messages")
        params = _sampling(max_tokens, temperature, seed, stop)
        return self._text_call("complete", prompt, params,
                               lambda st, to: self._complete(prompt, st, to, **params))

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> Scores:
        """Log-likelihood of each continuation after ``prompt``; see ``Backend.score``."""
        p = norm_prompt(prompt)
        conts = [str(c) for c in continuations]
        if not conts:
            raise ValueError("score() needs at least one continuation")
        stats = CallStats(backend=self.name, model=self.model, op="score")
        key = None
        if self.cache is not None:
            key = cache_key(backend=self.name, model=self.cache_identity(), op="score", prompt=p,
                            continuations=conts, params=self._score_params())
            t0 = time.perf_counter()
            hit = self.cache.get(key)
            if hit is not None:
                stats.cached, stats.attempts, stats.method = True, 0, hit["method"]
                stats.latency = time.perf_counter() - t0
                self._count(stats, hit=True)
                return Scores(list(hit["logprobs"]), hit["method"], stats, dict(hit.get("extra", {})))
        logprobs, extra = self._run(stats, lambda st, to: self._score(p, conts, st, to), "score")
        if len(logprobs) != len(conts):
            raise LLMError(f"backend returned {len(logprobs)} scores for {len(conts)} continuations",
                           stats)
        method = stats.method or "logprobs"
        if method not in SCORE_METHODS:
            raise AssertionError(f"unknown score method {method!r}")
        if key is not None and extra.get("deterministic", True):
            self.cache.put(key, {"logprobs": logprobs, "method": method, "extra": extra},
                           backend=self.name, model=self.cache_identity(), op="score")
        return Scores(logprobs, method, stats, extra)

    def _score_params(self) -> dict[str, Any]:
        """Options that change score results (part of the cache key)."""
        return {}

    # ---- machinery ---------------------------------------------------------------------------
    def _text_call(self, op: str, prompt: Any, params: dict[str, Any],
                   fn: Callable[[CallStats, float], str]) -> Completion:
        stats = CallStats(backend=self.name, model=self.model, op=op)
        deterministic = params["temperature"] == 0 or params["seed"] is not None
        key = None
        if self.cache is not None and deterministic:
            key = cache_key(backend=self.name, model=self.cache_identity(), op=op, prompt=prompt,
                            params=params)
            t0 = time.perf_counter()
            hit = self.cache.get(key)
            if hit is not None:
                stats.cached, stats.attempts = True, 0
                stats.latency = time.perf_counter() - t0
                self._count(stats, hit=True)
                return Completion(hit["text"], stats)
        text = self._run(stats, fn, op)
        if key is not None:
            self.cache.put(key, {"text": text}, backend=self.name, model=self.cache_identity(), op=op)
        return Completion(text, stats)

    def _run(self, stats: CallStats, fn: Callable[[CallStats, float], T], op: str) -> T:
        t0 = time.perf_counter()
        sem = self._semaphore()
        what = f"{self.name} {op} ({self.model})"
        try:
            if sem is not None:
                sem.acquire()
            try:
                return run_with_retries(lambda to: fn(stats, to), self.policy, stats,
                                        self._secrets(), what)
            finally:
                if sem is not None:
                    sem.release()
        except (LLMError, InfrastructureError) as e:
            e.stats = stats
            raise
        except (RuntimeError, OSError) as e:       # e.g. llama.cpp decode failure, context overflow
            stats.error = redact(f"{type(e).__name__}: {e}", self._secrets())
            raise LLMError(f"{what} failed: {stats.error}", stats) from None
        finally:
            stats.latency = time.perf_counter() - t0
            self._count(stats, hit=False)

    def _count(self, stats: CallStats, hit: bool) -> None:
        with self._counter_lock:
            if hit:
                self.cache_hits += 1
            else:
                self.model_calls += 1
                self.prompt_tokens += stats.prompt_tokens
                self.completion_tokens += stats.completion_tokens

    def counters(self) -> dict[str, int]:
        """Totals over this backend's life: model calls, cache hits, tokens."""
        return {"model_calls": self.model_calls, "cache_hits": self.cache_hits,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


def _sampling(max_tokens: int, temperature: float, seed: int | None,
              stop: Sequence[str] | None) -> dict[str, Any]:
    if int(max_tokens) < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens!r}")
    if float(temperature) < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if isinstance(stop, str):
        stop = [stop]
    return {"max_tokens": int(max_tokens), "temperature": float(temperature),
            "seed": None if seed is None else int(seed), "stop": list(stop) if stop else None}


class InProcessBackend(ManagedBackend):
    """A backend whose model runs in this process (llama.cpp, transformers): chat is the chat
    template rendered by ``self.shared.render`` and then plain generation by ``self._generate``."""

    shared: Any

    def _generate(self, text: str, stats: CallStats, timeout: float, **params: Any) -> str:
        raise NotImplementedError

    def _chat(self, messages: list[dict[str, str]], stats: CallStats, timeout: float,
              **params: Any) -> str:
        return self._generate(self.shared.render(messages), stats, timeout, **params)

    def _complete(self, prompt: str, stats: CallStats, timeout: float, **params: Any) -> str:
        return self._generate(prompt, stats, timeout, **params)
