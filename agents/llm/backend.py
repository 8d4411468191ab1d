"""The one small interface every LLM backend implements: chat, completion, and scoring.

``score(prompt, continuations)`` is the log-likelihood of each continuation after the prompt
(teacher-forced).  Backends that cannot read prompt log-probabilities fall back to labelling the
continuations with single tokens and reading the first reply token's ``top_logprobs``, and last
to sampling and counting; ``Scores.method`` says which was used.

Errors: ``LLMError`` for a call that failed (bad reply, HTTP 5xx, timeout after retries: the
caller falls back and records it); ``plyground.games.errors.InfrastructureError`` when the
backend is unreachable altogether (connection refused after retries: the arena aborts the game).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence, Union

from plyground.games.errors import PlygroundError

Message = dict[str, str]            # {"role": "system"|"user"|"assistant", "content": "..."}
Prompt = Union[str, Sequence[Message]]   # raw text, or chat messages (the backend applies its template)

SCORE_METHODS = ("logprobs", "top_logprobs", "sample")


class LLMError(PlygroundError):
    """One LLM call failed (after retries); the caller may fall back.

    ``stats`` (a ``CallStats`` or None) accounts for the failed call: attempts, latency, error."""

    def __init__(self, message: str, stats: "CallStats | None" = None) -> None:
        super().__init__(message)
        self.stats = stats


@dataclass
class CallStats:
    """Accounting for one backend call (what a Decision's ``llm`` section records per call)."""

    backend: str
    model: str
    op: str                         # "chat" | "complete" | "score"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0            # seconds, wall, including retries
    cached: bool = False
    attempts: int = 1
    method: str | None = None       # score: one of SCORE_METHODS
    error: str | None = None        # last error text if any attempt failed (never contains a key)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Completion:
    text: str
    stats: CallStats


@dataclass
class Scores:
    logprobs: list[float]           # one per continuation, same order
    method: str                     # one of SCORE_METHODS
    stats: CallStats
    extra: dict[str, Any] = field(default_factory=dict)


class Backend:
    """Base class.  Implementations: ``local`` (llama.cpp), ``openai``, ``transformers``."""

    name: str = "backend"
    model: str = ""

    def chat(self, messages: Sequence[Message], *, max_tokens: int = 64, temperature: float = 0.0,
             seed: int | None = None, stop: Sequence[str] | None = None) -> Completion:
        raise NotImplementedError

    def complete(self, prompt: str, *, max_tokens: int = 64, temperature: float = 0.0,
                 seed: int | None = None, stop: Sequence[str] | None = None) -> Completion:
        raise NotImplementedError

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> Scores:
        """Log-likelihood of each continuation after ``prompt`` (chat messages end with the user
        turn; the continuation is scored as the start of the assistant's reply)."""
        raise NotImplementedError

    def warm_up(self, prompt: Prompt | None = None) -> None:
        """Load what the first call would load (a local model) and, where the backend keeps a
        key/value cache between calls, evaluate ``prompt`` into it, so a call that starts the same
        way pays only for the rest.  The default does nothing (a server loads its own model)."""

    def close(self) -> None:
        """Release the model or the connection."""
