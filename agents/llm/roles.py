"""The three LLM roles behind search/hooks.py's interfaces, and the per-move call log.

- ``LLMActionProposer``: a distribution over the legal moves from ``backend.score`` — the
  softmax of each legal move's log-likelihood as the start of the reply — top-k kept, optionally
  mixed with uniform (``mix``; LLM-MCTS uses 0.5).
- ``LLMOpponentModel``: the same distribution from the opponent's seat (the engine asks it at the
  opponent's nodes, so the prompt names the opponent as the player to move), with the engine
  modes ``full`` / ``topk`` / ``expectation``.
- ``LLMValueEstimator``: a value in [-1, 1] for the player to move: ``p(win) - p(loss)`` from
  the likelihood of the outcome words (``method="words"``), or a number parsed from a short reply
  (``method="number"``); finished games get their exact result.

Every call goes into a ``CallLog`` (tokens, latency, cache hits, the raw reply and parsed move, or
the score method and the top moves).  A failed call (``LLMError``) is recorded and the role falls
back (uniform moves, the ``fallback`` value estimator); after ``max_failures`` failures in one
move the roles stop calling the backend until the next move, so a hanging server costs a bounded
time.  ``InfrastructureError`` (the endpoint is unreachable) is never swallowed.

Answers are memoised per position (``state_key``) for the roles' lifetime, so a transposition or
a position searched again on the next move costs nothing.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any, Callable, Sequence

from plyground.agents.llm.backend import Backend, CallStats, LLMError
from plyground.agents.llm.parsing import parse_value
from plyground.agents.llm.prompts import (
    PromptTemplates, move_continuations, move_prompt, state_key, value_continuations,
    value_prompt,
)
from plyground.search.hooks import ActionProposer, HeuristicValue, OpponentModel, ValueEstimator, terminal_value

__all__ = ["CallLog", "MoveScorer", "LLMActionProposer", "LLMOpponentModel", "LLMValueEstimator",
           "softmax", "shape_distribution", "terminal_value"]

LOG_LIMIT = 64          # per-call entries kept in a move's log (the totals count every call)
TOP_SHOWN = 3           # moves shown per score call in the log
MEMO_SIZE = 200_000


# ----------------------------------------------------------------------------- the call log
class CallLog:
    """What one move's LLM calls cost and said; ``summary()`` is a Decision's ``llm`` section."""

    def __init__(self, limit: int = LOG_LIMIT, max_failures: int = 2) -> None:
        self.limit = limit
        self.max_failures = max_failures
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start a new move."""
        with self._lock:
            self.entries: list[dict[str, Any]] = []
            self.dropped = 0
            self.calls = 0
            self.cache_hits = 0
            self.memo_hits = 0
            self.prompt_tokens = 0
            self.completion_tokens = 0
            self.latency = 0.0
            self.attempts = 0
            self.methods: dict[str, int] = {}
            self.errors: list[str] = []
            self.fallbacks: list[str] = []
            self.failures = 0
            self.backend = None
            self.model = None

    @property
    def broken(self) -> bool:
        """True once this move has seen ``max_failures`` failed calls: stop calling the backend."""
        return self.failures >= self.max_failures

    def _account(self, stats: CallStats | None) -> None:
        if stats is None:
            return
        self.calls += 1
        self.cache_hits += bool(stats.cached)
        self.prompt_tokens += int(stats.prompt_tokens or 0)
        self.completion_tokens += int(stats.completion_tokens or 0)
        self.latency += float(stats.latency or 0.0)
        self.attempts += int(stats.attempts or 0)
        if stats.method:
            self.methods[stats.method] = self.methods.get(stats.method, 0) + 1
        self.backend, self.model = stats.backend, stats.model

    def _entry(self, entry: dict[str, Any]) -> None:
        if len(self.entries) < self.limit:
            self.entries.append(entry)
        else:
            self.dropped += 1

    def record(self, stats: CallStats, role: str, **detail: Any) -> None:
        """One successful call: its accounting plus what it said (``raw``/``parsed`` or ``top``)."""
        with self._lock:
            self._account(stats)
            self._entry({"role": role, "op": stats.op, "cached": bool(stats.cached),
                         "latency": round(float(stats.latency or 0.0), 4),
                         "prompt_tokens": int(stats.prompt_tokens or 0),
                         "completion_tokens": int(stats.completion_tokens or 0),
                         **({"method": stats.method} if stats.method else {}),
                         **({"retry_error": stats.error} if stats.error else {}), **detail})

    def record_error(self, role: str, exc: BaseException) -> None:
        """A failed call (after the backend's own retries)."""
        stats = getattr(exc, "stats", None)
        with self._lock:
            self._account(stats if isinstance(stats, CallStats) else None)
            self.failures += 1
            msg = f"{role}: {type(exc).__name__}: {exc}"
            self.errors.append(msg[:500])
            self._entry({"role": role, "op": getattr(stats, "op", None), "error": msg[:500],
                         "latency": round(float(getattr(stats, "latency", 0.0) or 0.0), 4),
                         "attempts": int(getattr(stats, "attempts", 0) or 0)})

    def note_error(self, role: str, message: str) -> None:
        """Something went wrong that was not a failed call (e.g. an unparsable value reply)."""
        with self._lock:
            self.errors.append(f"{role}: {message}"[:500])

    def fallback(self, role: str, what: str) -> None:
        """A fallback taken (recorded once per distinct text, with a count)."""
        with self._lock:
            self.fallbacks.append(f"{role}: {what}")

    def memo_hit(self) -> None:
        with self._lock:
            self.memo_hits += 1

    def fallback_text(self) -> str | None:
        """The fallbacks of this move, counted: ``"propose: uniform (LLM unavailable) x3"``."""
        if not self.fallbacks:
            return None
        counts: dict[str, int] = {}
        for f in self.fallbacks:
            counts[f] = counts.get(f, 0) + 1
        return "; ".join(f + (f" x{n}" if n > 1 else "") for f, n in counts.items())

    def summary(self) -> dict[str, Any]:
        """The Decision's ``llm`` section (JSON-serialisable)."""
        with self._lock:
            out: dict[str, Any] = {
                "backend": self.backend, "model": self.model,
                "calls": self.calls, "model_calls": self.calls - self.cache_hits,
                "cache_hits": self.cache_hits, "memo_hits": self.memo_hits,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "latency": round(self.latency, 4), "attempts": self.attempts,
                "score_methods": dict(self.methods), "errors": list(self.errors),
                "fallbacks": list(self.fallbacks), "log": list(self.entries),
            }
            if self.dropped:
                out["log_dropped"] = self.dropped
            return out


# ----------------------------------------------------------------------------- distributions
def softmax(logprobs: Sequence[float], temperature: float = 1.0) -> list[float]:
    """Softmax of ``logprobs / temperature``; non-finite entries get 0; all non-finite -> uniform."""
    vals = [float(x) / temperature if math.isfinite(float(x)) else -math.inf for x in logprobs]
    finite = [v for v in vals if v != -math.inf]
    if not finite:
        return [1.0 / len(vals)] * len(vals) if vals else []
    m = max(finite)
    ex = [math.exp(v - m) if v != -math.inf else 0.0 for v in vals]
    z = sum(ex)
    return [e / z for e in ex]


def shape_distribution(dist: dict[int, float], *, mix: float = 0.0, k: int | None = None) -> dict[int, float]:
    """Mix ``dist`` (over every legal move) with uniform (weight ``mix``), keep the ``k`` most
    likely (ties: the earlier move) and renormalise; best first."""
    n = len(dist)
    if n == 0:
        return {}
    items = [(a, (1.0 - mix) * p + mix / n) for a, p in dist.items()]
    order = sorted(range(n), key=lambda i: (-items[i][1], i))
    if k is not None:
        order = order[:k]
    z = sum(items[i][1] for i in order)
    if z <= 0:
        return {items[i][0]: 1.0 / len(order) for i in order}
    return {items[i][0]: items[i][1] / z for i in order}


def _uniform(state) -> dict[int, float]:
    legal = [int(a) for a in state.legal_actions()]
    return {a: 1.0 / len(legal) for a in legal} if legal else {}


class _Memo:
    """A bounded LRU dict shared by threads."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self.data: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
            return v

    def put(self, key, value) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.data.clear()


def _map_batch(fn: Callable, items: Sequence, parallel: int) -> list:
    """``[fn(x) for x in items]``, on up to ``parallel`` threads (order kept, first error raised)."""
    if parallel <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=min(parallel, len(items))) as pool:
        return list(pool.map(fn, items))


def _parallelism(backend: Backend) -> int:
    """Concurrent calls worth making: 1 for a local model (calls are serialised anyway)."""
    if getattr(backend, "name", "") == "local":
        return 1
    policy = getattr(backend, "policy", None)
    return max(1, int(getattr(policy, "concurrency", 1)))


# ----------------------------------------------------------------------------- move scoring
class MoveScorer:
    """The LLM's distribution over every legal move of a position, memoised per position; shared
    by a proposer and an opponent model so a position costs one call whoever asks."""

    def __init__(self, backend: Backend, *, templates: PromptTemplates | None = None,
                 log: CallLog | None = None, temperature: float = 1.0, history_plies: int = 2) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.backend = backend
        self.templates = templates
        self.log = log if log is not None else CallLog()
        self.temperature = float(temperature)
        self.history_plies = int(history_plies)
        self.memo = _Memo()

    def scores(self, state, role: str) -> dict[int, float] | None:
        """{legal action: probability} from one score call, or None if the LLM failed (recorded)."""
        return self._scores(state, role)[0]

    def _scores(self, state, role: str) -> tuple[dict[int, float] | None, str]:
        key = state_key(state)
        hit = self.memo.get(key)
        if hit is not None:
            self.log.memo_hit()
            return hit, ""
        if self.log.broken:
            return None, "LLM unavailable this move"
        legal = [int(a) for a in state.legal_actions()]
        if not legal:
            return {}, ""
        if len(legal) == 1:          # nothing to ask
            return {legal[0]: 1.0}, ""
        msgs = move_prompt(state, self.templates, history_plies=self.history_plies)
        conts = move_continuations(state, legal)
        try:
            res = self.backend.score(msgs, conts)
        except LLMError as e:
            self.log.record_error(role, e)
            return None, "LLM call failed"
        probs = softmax(res.logprobs, self.temperature)
        dist = {a: p for a, p in zip(legal, probs)}
        top = sorted(range(len(legal)), key=lambda i: -probs[i])[:TOP_SHOWN]
        self.log.record(res.stats, role, method=res.method,
                        top=[[conts[i], round(probs[i], 4)] for i in top])
        if not any(math.isfinite(float(x)) for x in res.logprobs):
            self.log.note_error(role, "every move scored -inf: uniform used")
        self.memo.put(key, dist)
        return dist, ""

    def distribution(self, state, role: str) -> dict[int, float]:
        """``scores`` or, if the LLM failed, uniform over the legal moves (the fallback recorded)."""
        dist, why = self._scores(state, role)
        if dist is None:
            self.log.fallback(role, f"uniform moves ({why})")
            return _uniform(state)
        return dist


def _check_k(k: int | None, what: str) -> int | None:
    if k is None or k == 0:
        return None
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"{what} must be an integer >= 1 (or None for every legal move); got {k!r}")
    return int(k)


def _check_mix(mix: float) -> float:
    if not 0.0 <= float(mix) <= 1.0:
        raise ValueError(f"mix must be in [0, 1] (the uniform share); got {mix!r}")
    return float(mix)


class LLMActionProposer(ActionProposer):
    """Priors over the player's legal moves from the LLM (see the module doc).

    >>> p = LLMActionProposer(make_backend("local"), k=3)        # doctest: +SKIP
    >>> p.propose(state)                                          # doctest: +SKIP
    {3: 0.52, 2: 0.27, 4: 0.21}
    """

    def __init__(self, backend: Backend, *, k: int | None = None, mix: float = 0.0,
                 temperature: float = 1.0, templates: PromptTemplates | None = None,
                 log: CallLog | None = None, history_plies: int = 2,
                 scorer: MoveScorer | None = None) -> None:
        self.k = _check_k(k, "proposer k")
        self.mix = _check_mix(mix)
        self.scorer = scorer or MoveScorer(backend, templates=templates, log=log, temperature=temperature,
                                           history_plies=history_plies)
        self.log = self.scorer.log
        self.role = "propose"

    def propose(self, state) -> dict[int, float]:
        return shape_distribution(self.scorer.distribution(state, self.role), mix=self.mix, k=self.k)

    def propose_batch(self, states: Sequence) -> list[dict[int, float]]:
        return _map_batch(self.propose, list(states), _parallelism(self.scorer.backend))


class LLMOpponentModel(OpponentModel):
    """The opponent's replies with the LLM's probabilities, for the engines' ``full`` / ``topk`` /
    ``expectation`` modes; shares a ``MoveScorer`` (and its memo) with the proposer if given one."""

    def __init__(self, backend: Backend, *, mode: str = "topk", k: int = 3, mix: float = 0.0,
                 temperature: float = 1.0, templates: PromptTemplates | None = None,
                 log: CallLog | None = None, history_plies: int = 2,
                 scorer: MoveScorer | None = None) -> None:
        super().__init__(mode=mode, k=k)
        self.mix = _check_mix(mix)
        self.scorer = scorer or MoveScorer(backend, templates=templates, log=log, temperature=temperature,
                                           history_plies=history_plies)
        self.log = self.scorer.log

    def predict(self, state) -> dict[int, float]:
        # every reply (the engine keeps the top k in "topk" mode): the expectation needs them all
        return shape_distribution(self.scorer.distribution(state, "opponent"), mix=self.mix)


class LLMValueEstimator(ValueEstimator):
    """Leaf values in [-1, 1] for the player to move, from the LLM (see the module doc).

    ``method="words"``: one score call over the outcome words; value = p(win) - p(loss).
    ``method="number"``: a short chat reply parsed as a number in [-1, 1], a percentage or an
    outcome word.  On a failed call or an unparsable reply the ``fallback`` estimator answers
    (default: the game's heuristic for native games, 0 otherwise) and the log says so.
    """

    METHODS = ("words", "number")

    def __init__(self, backend: Backend, *, method: str = "words", temperature: float = 1.0,
                 templates: PromptTemplates | None = None, log: CallLog | None = None,
                 history_plies: int = 2, max_tokens: int = 8,
                 fallback: ValueEstimator | None = None) -> None:
        if method not in self.METHODS:
            raise ValueError(f"value method {method!r} is not one of {self.METHODS}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.backend = backend
        self.method = method
        self.temperature = float(temperature)
        self.templates = templates
        self.log = log if log is not None else CallLog()
        self.history_plies = int(history_plies)
        self.max_tokens = int(max_tokens)
        self.fallback = fallback if fallback is not None else HeuristicValue()
        self.memo = _Memo()

    def evaluate(self, states: Sequence) -> list[float]:
        states = list(states)
        out: list[float | None] = [None] * len(states)
        todo = []
        for i, s in enumerate(states):
            if s.is_terminal():
                out[i] = terminal_value(s)
                continue
            v = self.memo.get(state_key(s))
            if v is not None:
                self.log.memo_hit()
                out[i] = v
            else:
                todo.append(i)
        if todo:
            vals = _map_batch(self._one, [states[i] for i in todo], _parallelism(self.backend))
            missing = [j for j, v in enumerate(vals) if v is None]
            if missing:
                fb = self.fallback.evaluate([states[todo[j]] for j in missing])
                for j, v in zip(missing, fb):
                    vals[j] = max(-1.0, min(1.0, float(v)))
            for i, v in zip(todo, vals):
                out[i] = v
        return [float(v) for v in out]

    def _one(self, state) -> float | None:
        """The LLM's value of one non-terminal state, or None (fallback needed; recorded)."""
        if self.log.broken:
            self.log.fallback("value", f"{type(self.fallback).__name__} (LLM unavailable this move)")
            return None
        msgs = value_prompt(state, self.templates, history_plies=self.history_plies)
        words = value_continuations(self.templates)
        try:
            if self.method == "words":
                res = self.backend.score(msgs, words)
                p = softmax(res.logprobs, self.temperature)
                v = p[0] - p[2]
                self.log.record(res.stats, "value", method=res.method,
                                top=[[w, round(x, 4)] for w, x in zip(words, p)], value=round(v, 4))
            else:
                c = self.backend.chat(msgs, max_tokens=self.max_tokens, temperature=0.0)
                v = parse_value(c.text, words)
                self.log.record(c.stats, "value", raw=c.text[:200], value=v)
                if v is None:
                    self.log.note_error("value", f"no value in the reply {c.text[:60]!r}")
                    self.log.fallback("value", f"{type(self.fallback).__name__} (unparsable reply)")
                    return None
        except LLMError as e:
            self.log.record_error("value", e)
            self.log.fallback("value", f"{type(self.fallback).__name__} (LLM call failed)")
            return None
        v = max(-1.0, min(1.0, float(v)))
        self.memo.put(state_key(state), v)
        return v


class MixedValue(ValueEstimator):
    """``weight * a + (1 - weight) * b`` (e.g. the LLM's value and random rollouts)."""

    def __init__(self, a: ValueEstimator, b: ValueEstimator, weight: float = 0.5) -> None:
        if not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"mixed value weight must be in [0, 1]; got {weight!r}")
        self.a, self.b, self.weight = a, b, float(weight)

    def evaluate(self, states: Sequence) -> list[float]:
        states = list(states)
        va = self.a.evaluate(states)
        vb = self.b.evaluate(states)
        return [max(-1.0, min(1.0, self.weight * x + (1.0 - self.weight) * y)) for x, y in zip(va, vb)]
