"""The ``openai`` backend: any OpenAI-compatible server (OpenAI, vLLM, SGLang, Ollama, llama.cpp's
server, OpenRouter) through the ``openai`` SDK.

The API key is read from the environment variable NAMED by ``api_key_env``; the key itself never
enters a record, a log, an error message, a repr, a pickle or a cache key.

``score`` tries, in order (``score_method="auto"``; the first that works is remembered):
1. ``logprobs``: the completions endpoint with ``echo`` + ``logprobs`` returns the prompt's token
   log-probabilities; the continuation's are summed (needs raw text: a text prompt, or chat
   messages plus a ``chat_template`` to render them client-side);
2. ``top_logprobs``: the continuations are listed under single-token labels (A, B, C, ...) and the
   first reply token's ``top_logprobs`` give each label's probability;
3. ``sample``: the same labelled question sampled ``samples`` times and counted (smoothed).
"""

from __future__ import annotations

import math
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence, TypeVar

from plyground.agents.llm.backend import SCORE_METHODS, CallStats
from plyground.agents.llm.calls import (
    CallPolicy, EndpointError, FatalCallError, ManagedBackend, TransientError, Unreachable,
    endpoint_semaphore)

T = TypeVar("T")
LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
NO_KEY = "sk-no-key-required"
_ECHO_PROBES: dict[tuple[str, str], str] = {}     # (base_url, model) -> "" (echo usable) or why not


class _Unsupported(Exception):
    """The server cannot do this scoring method; try the next one."""


def _label_prompt(continuations: Sequence[str]) -> str:
    lines = "\n".join(f"{LABELS[i]}) {c}" for i, c in enumerate(continuations))
    return (f"\n\nOptions:\n{lines}\nAnswer with the letter of the best option only.")


def _norm_label(token: str) -> str:
    return token.strip().strip(").:.,;*\"'`[]()").strip()


class OpenAIBackend(ManagedBackend):
    """An OpenAI-compatible endpoint.

    ``OpenAIBackend(model="qwen2.5-7b", base_url="http://127.0.0.1:8000/v1", api_key_env="VLLM_KEY")``;
    ``model=""`` asks the server (``GET /models``) and uses the first model it lists."""

    name = "openai"

    def __init__(self, model: str = "", *, base_url: str = "https://api.openai.com/v1",
                 api_key_env: str | None = None, score_method: str = "auto",
                 chat_template: str | None = None, samples: int = 8, seed: int | None = 0,
                 top_logprobs: int = 20, cache: Any = None, policy: CallPolicy | None = None,
                 timeout: float | None = None) -> None:
        policy = policy or self.default_policy()
        if timeout is not None:
            policy = CallPolicy(**{**policy.__dict__, "timeout": float(timeout)})
        super().__init__(cache=cache, policy=policy)
        if score_method not in ("auto",) + SCORE_METHODS:
            raise ValueError(f"unknown score_method {score_method!r}; allowed: auto, "
                             f"{', '.join(SCORE_METHODS)}")
        if not base_url or not re.match(r"^https?://", str(base_url)):
            raise ValueError(f"base_url {base_url!r} must start with http:// or https://")
        self.base_url = str(base_url).rstrip("/")
        self.model = str(model or "")
        self.model_option = self.model      # "" = the server's first model (resolved on first use)
        self.api_key_env = api_key_env or None
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            raise ValueError(f"openai backend: the environment variable {self.api_key_env!r} "
                             "(api_key_env) is not set or empty")
        self.score_method = score_method
        self.chat_template = _load_template(chat_template)
        self.chat_template_name = chat_template if chat_template and len(chat_template) < 200 else (
            "inline" if chat_template else None)
        self.samples = int(samples)
        self.seed = None if seed in (None, "", "none", "None") else int(seed)
        self.top_logprobs = int(top_logprobs)
        if self.samples < 1 or not 1 <= self.top_logprobs <= 20:
            raise ValueError(f"need samples >= 1 and 1 <= top_logprobs <= 20; got samples="
                             f"{samples!r}, top_logprobs={top_logprobs!r}")
        self._client = None
        self._client_pid = -1
        self._client_lock = threading.Lock()
        self._unsupported: set[str] = set()

    @classmethod
    def default_policy(cls) -> CallPolicy:
        return CallPolicy(retries=2, backoff=0.2, backoff_max=2.0, timeout=60.0, concurrency=4)

    # ---- plumbing ----------------------------------------------------------------------------
    def _key(self) -> str:
        return os.environ.get(self.api_key_env, "") if self.api_key_env else NO_KEY

    def _secrets(self) -> Sequence[str]:
        k = self._key()
        return (k,) if k and k != NO_KEY else ()

    def _semaphore(self) -> threading.BoundedSemaphore:
        return endpoint_semaphore(("openai", self.base_url), self.policy.concurrency)

    def cache_identity(self) -> str:
        return f"{self.base_url}|{self.model_option}"

    def _score_params(self) -> dict[str, Any]:
        return {"method": self.score_method, "template": self.chat_template,
                "samples": self.samples, "seed": self.seed, "top_logprobs": self.top_logprobs}

    def __repr__(self) -> str:
        return (f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r}, "
                f"api_key_env={self.api_key_env!r})")

    def _restore(self) -> None:          # the client (it holds the key) is never pickled
        self._client, self._client_pid = None, -1
        self._client_lock = threading.Lock()

    def client(self) -> Any:
        """The SDK client (one per process; the SDK's own retries are off: ours apply)."""
        with self._client_lock:
            if self._client is None or self._client_pid != os.getpid():
                import openai
                self._client = openai.OpenAI(base_url=self.base_url, api_key=self._key(),
                                             max_retries=0, timeout=self.policy.timeout)
                self._client_pid = os.getpid()
            return self._client

    def _request(self, fn: Callable[[Any], T]) -> T:
        """Run one SDK request, translating its failures into our transport classes."""
        import openai
        try:
            return fn(self.client())
        except openai.APITimeoutError:
            raise TransientError(f"no reply within {self.policy.timeout} s from {self.base_url}") from None
        except openai.APIConnectionError as e:
            if _is_connect_failure(e):
                raise Unreachable(f"cannot connect to {self.base_url}") from None
            raise TransientError(f"connection to {self.base_url} failed: {_cause(e)}") from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            hint = f" (check the key in ${self.api_key_env})" if self.api_key_env else \
                " (set api_key_env to the name of the variable holding the key)"
            raise EndpointError(f"HTTP {e.status_code} from {self.base_url}{hint}") from None
        except openai.NotFoundError as e:
            raise EndpointError(f"HTTP 404 from {self.base_url}: {_short(e)} (model {self.model!r}?)") from None
        except openai.APIStatusError as e:
            if e.status_code in (408, 409, 425, 429) or e.status_code >= 500:
                raise TransientError(f"HTTP {e.status_code} from {self.base_url}: {_short(e)}") from None
            raise FatalCallError(f"HTTP {e.status_code} from {self.base_url}: {_short(e)}") from None
        except openai.APIResponseValidationError:
            raise TransientError(f"malformed reply from {self.base_url}") from None
        except ValueError:      # JSON decoding of a garbage body
            raise TransientError(f"unparsable reply from {self.base_url}") from None

    def _resolve_model(self) -> str:
        if not self.model:
            models = self._request(lambda c: c.models.list())
            data = getattr(models, "data", None) or []
            if not data:
                raise EndpointError(f"{self.base_url} lists no models; pass model=<name>")
            self.model = str(data[0].id)
        return self.model

    # ---- generation --------------------------------------------------------------------------
    def _chat(self, messages: list[dict[str, str]], stats: CallStats, timeout: float,
              **params: Any) -> str:
        model = self._resolve_model()
        stats.model = model
        r = self._request(lambda c: c.chat.completions.create(
            model=model, messages=messages, timeout=timeout, **_sdk_params(params)))
        text = _chat_text(r)
        _add_usage(stats, r)
        return text

    def _complete(self, prompt: str, stats: CallStats, timeout: float, **params: Any) -> str:
        model = self._resolve_model()
        stats.model = model
        r = self._request(lambda c: c.completions.create(
            model=model, prompt=prompt, timeout=timeout, **_sdk_params(params)))
        text = _completion_choice(r).text
        if not isinstance(text, str):
            raise TransientError(f"malformed completion reply from {self.base_url}")
        _add_usage(stats, r)
        return text

    # ---- scoring -----------------------------------------------------------------------------
    def _score(self, prompt: str | list[dict[str, str]], continuations: list[str],
               stats: CallStats, timeout: float) -> tuple[list[float], dict[str, Any]]:
        model = self._resolve_model()
        stats.model = model
        methods = list(SCORE_METHODS) if self.score_method == "auto" else [self.score_method]
        text = prompt if isinstance(prompt, str) else (
            None if self.chat_template is None else _render(self.chat_template, prompt))
        why: dict[str, str] = {}
        for method in methods:
            if self.score_method == "auto" and method in self._unsupported:
                continue
            try:
                if method == "logprobs":
                    if text is None:
                        raise _Unsupported("chat messages need chat_template=... for prompt logprobs")
                    lps, extra = self._score_echo(text, continuations, stats, timeout)
                elif method == "top_logprobs":
                    lps, extra = self._score_labels(prompt, continuations, stats, timeout)
                else:
                    lps, extra = self._score_sample(prompt, continuations, stats, timeout)
            except _Unsupported as e:
                why[method] = str(e)
                if self.score_method != "auto":
                    raise FatalCallError(f"score_method={method!r} unsupported: {e}") from None
                if not (method == "logprobs" and text is None):
                    self._unsupported.add(method)
                continue
            stats.method = method
            if why:
                extra["fallbacks"] = why
            return lps, extra
        raise FatalCallError(f"no scoring method works on {self.base_url}: {why}")

    def _each(self, fn: Callable[[int], T], n: int) -> list[T]:
        workers = min(self.policy.concurrency, n)
        if workers <= 1:
            return [fn(i) for i in range(n)]
        with ThreadPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(fn, range(n)))

    def _check_echo(self, stats: CallStats, timeout: float) -> None:
        """Probe once per endpoint+model that echoed prompt logprobs are aligned: the logprob the
        server reports for a generated token must reappear when that token is echoed back.
        (llama-cpp-python 0.3's server shifts echoed logprobs by one token: unusable.)"""
        key = (self.base_url, self.model)
        verdict = _ECHO_PROBES.get(key)
        if verdict is None:
            probe = "The capital of France is"
            r1 = self._request(lambda c: c.completions.create(
                model=self.model, prompt=probe, max_tokens=1, logprobs=1, temperature=0.0,
                timeout=timeout))
            _add_usage(stats, r1)
            lp1 = getattr(_completion_choice(r1), "logprobs", None)
            if not lp1 or not getattr(lp1, "tokens", None) or not getattr(lp1, "token_logprobs", None):
                verdict = "the server returns no logprobs on the completions endpoint"
            else:
                tok, want = str(lp1.tokens[0]), float(lp1.token_logprobs[0])
                r2 = self._request(lambda c: c.completions.create(
                    model=self.model, prompt=probe + tok, echo=True, logprobs=1, max_tokens=1,
                    temperature=0.0, timeout=timeout))
                _add_usage(stats, r2)
                lp2 = getattr(_completion_choice(r2), "logprobs", None)
                toks = list(getattr(lp2, "tokens", None) or [])
                tlps = list(getattr(lp2, "token_logprobs", None) or [])
                verdict = "the server returned no prompt logprobs for echo=True"
                for n_gen in dict.fromkeys((_usage(r2)[1], 0, 1)):
                    j = len(toks) - n_gen - 1
                    if 0 < j < len(tlps) and toks[j] == tok and tlps[j] is not None:
                        verdict = "" if abs(float(tlps[j]) - want) < 0.05 else (
                            "the server's echoed prompt logprobs are misaligned (reported "
                            f"{float(tlps[j]):.3f} for a token it generated with {want:.3f})")
                        break
            _ECHO_PROBES[key] = verdict
        if verdict:
            raise _Unsupported(verdict)

    def _score_echo(self, text: str, continuations: list[str], stats: CallStats,
                    timeout: float) -> tuple[list[float], dict[str, Any]]:
        model = self.model
        self._check_echo(stats, timeout)

        def one(i: int) -> tuple[float, Any]:
            c = continuations[i]
            r = self._request(lambda cl: cl.completions.create(
                model=model, prompt=text + c, echo=True, logprobs=1, max_tokens=1, temperature=0.0,
                timeout=timeout))
            ch = _completion_choice(r)
            lp = getattr(ch, "logprobs", None)
            toks = getattr(lp, "tokens", None) if lp is not None else None
            tlps = getattr(lp, "token_logprobs", None) if lp is not None else None
            if not toks or not tlps or len(toks) != len(tlps):
                raise _Unsupported("the server returned no prompt logprobs for echo=True")
            for n_gen in dict.fromkeys((_usage(r)[1], 0)):
                try:
                    return _continuation_logprob(toks, tlps, c, n_gen), r
                except _Unsupported:
                    continue
            raise _Unsupported("the echoed tokens do not end with the scored continuation")

        out = self._each(one, len(continuations))
        for _, r in out:
            _add_usage(stats, r)
        return [o[0] for o in out], {"requests": len(out)}

    def _label_messages(self, prompt: str | list[dict[str, str]],
                        continuations: list[str]) -> list[dict[str, str]]:
        if len(continuations) > len(LABELS):
            raise _Unsupported(f"{len(continuations)} options exceed the {len(LABELS)} single-letter labels")
        msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
        if msgs[-1]["role"] == "assistant":            # fold a prefill into the question
            pre = msgs.pop()["content"]
            msgs[-1]["content"] += "\n" + pre if msgs else pre
        if msgs[-1]["role"] != "user":
            msgs.append({"role": "user", "content": ""})
        msgs[-1]["content"] += _label_prompt(continuations)
        return msgs

    def _score_labels(self, prompt: str | list[dict[str, str]], continuations: list[str],
                      stats: CallStats, timeout: float) -> tuple[list[float], dict[str, Any]]:
        msgs = self._label_messages(prompt, continuations)
        r = self._request(lambda c: c.chat.completions.create(
            model=self.model, messages=msgs, max_tokens=1, temperature=0.0, logprobs=True,
            top_logprobs=self.top_logprobs, timeout=timeout))
        _add_usage(stats, r)
        ch = _first_choice(r)
        content = getattr(getattr(ch, "logprobs", None), "content", None)
        if not content or not getattr(content[0], "top_logprobs", None):
            raise _Unsupported("the server returned no top_logprobs for the chat reply")
        probs: dict[str, float] = {}
        for t in content[0].top_logprobs:
            lab = _norm_label(str(t.token))
            if lab in LABELS[: len(continuations)] and lab:
                probs[lab] = probs.get(lab, 0.0) + math.exp(float(t.logprob))
        seen = sum(probs.values())
        unseen = [LABELS[i] for i in range(len(continuations)) if LABELS[i] not in probs]
        floor = None
        if unseen:
            rest = max(1.0 - sum(math.exp(float(t.logprob)) for t in content[0].top_logprobs), 1e-9)
            lowest = min((math.exp(float(t.logprob)) for t in content[0].top_logprobs), default=1e-9)
            floor = min(rest / len(unseen), lowest)
        lps = [math.log(probs.get(LABELS[i], floor or 1e-9)) for i in range(len(continuations))]
        return lps, {"labels": LABELS[: len(continuations)], "label_mass": seen, "unseen": len(unseen)}

    def _score_sample(self, prompt: str | list[dict[str, str]], continuations: list[str],
                      stats: CallStats, timeout: float) -> tuple[list[float], dict[str, Any]]:
        msgs = self._label_messages(prompt, continuations)

        def one(i: int) -> Any:
            seed = None if self.seed is None else self.seed + i
            return self._request(lambda c: c.chat.completions.create(
                model=self.model, messages=msgs, max_tokens=8, temperature=1.0, seed=seed,
                timeout=timeout))

        replies = self._each(one, self.samples)
        counts = [0] * len(continuations)
        unparsed = 0
        for r in replies:
            _add_usage(stats, r)
            k = _match_reply(_chat_text(r), continuations)
            if k is None:
                unparsed += 1
            else:
                counts[k] += 1
        alpha = 0.5
        total = sum(counts) + alpha * len(continuations)
        lps = [math.log((c + alpha) / total) for c in counts]
        return lps, {"counts": counts, "unparsed": unparsed, "samples": self.samples,
                     "deterministic": self.seed is not None}


# ---- helpers ---------------------------------------------------------------------------------
def _load_template(spec: str | None) -> str | None:
    if not spec:
        return None
    if spec == "chatml":
        from plyground.agents.llm.local import CHATML_TEMPLATE
        return CHATML_TEMPLATE
    if "{{" in spec or "{%" in spec:
        return spec
    if os.path.isfile(spec):
        if spec.endswith(".gguf"):
            from plyground.agents.llm.local import gguf_chat_template
            tpl = gguf_chat_template(spec)
            if tpl is None:
                raise ValueError(f"chat_template: the GGUF file {spec!r} has no chat template")
            return tpl
        with open(spec, encoding="utf-8") as f:
            return f.read()
    raise ValueError(f"chat_template {spec!r} is neither 'chatml', a Jinja template, a template "
                     "file nor a .gguf file")


def _render(template: str, messages: list[dict[str, str]]) -> str:
    from plyground.agents.llm.local import render_chat_template
    return render_chat_template(template, messages)


def _sdk_params(params: dict[str, Any]) -> dict[str, Any]:
    out = {"max_tokens": params["max_tokens"], "temperature": params["temperature"]}
    if params.get("seed") is not None:
        out["seed"] = params["seed"]
    if params.get("stop"):
        out["stop"] = params["stop"]
    return out


def _first_choice(r: Any) -> Any:
    choices = getattr(r, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise TransientError("malformed reply: no choices")
    return choices[0]


def _completion_choice(r: Any) -> Any:
    ch = _first_choice(r)
    if not hasattr(ch, "text"):
        raise TransientError("malformed completion reply: no text")
    return ch


def _chat_text(r: Any) -> str:
    ch = _first_choice(r)
    text = getattr(getattr(ch, "message", None), "content", None)
    if text is None and getattr(getattr(ch, "message", None), "refusal", None) is None:
        raise TransientError("malformed chat reply: no message content")
    return text or ""


def _usage(r: Any) -> tuple[int, int]:
    u = getattr(r, "usage", None)
    return (int(getattr(u, "prompt_tokens", 0) or 0), int(getattr(u, "completion_tokens", 0) or 0))


def _add_usage(stats: CallStats, r: Any) -> None:
    p, c = _usage(r)
    stats.prompt_tokens += p
    stats.completion_tokens += c


def _continuation_logprob(tokens: Sequence[str], logprobs: Sequence[float | None], cont: str,
                          n_generated: int) -> float:
    """Sum of the log-probs of the echoed tokens that spell ``cont`` (counted from the end, past
    the ``n_generated`` reply tokens), so special tokens earlier in the prompt do not matter."""
    end = len(tokens) - n_generated
    total, text, i = 0.0, "", end
    while i > 0 and len(text) < len(cont):
        i -= 1
        text = tokens[i] + text
        lp = logprobs[i]
        if lp is None:
            raise _Unsupported("the first prompt token has no logprob (continuation spans the whole prompt)")
        total += float(lp)
    if not text.endswith(cont):
        raise _Unsupported("the echoed tokens do not end with the scored continuation")
    return total


def _match_reply(reply: str, continuations: Sequence[str]) -> int | None:
    """Index of the option a sampled reply names (a label letter, or the option text), or None."""
    s = reply.strip()
    m = re.match(r"^\W*([A-Za-z])(?:\W|$)", s)
    if m and m.group(1) in LABELS[: len(continuations)]:
        return LABELS.index(m.group(1))
    for i, c in enumerate(continuations):
        if s == c.strip():
            return i
    hits = [i for i, c in enumerate(continuations) if c.strip() and c.strip() in s]
    return hits[0] if len(hits) == 1 else None


def _cause(e: BaseException) -> str:
    c = e.__cause__ or e.__context__
    return type(c).__name__ if c is not None else type(e).__name__


def _is_connect_failure(e: BaseException) -> bool:
    """Whether the SDK's connection error was a refused/failed connect (not a dropped reply).

    Matched by class name: the SDK's HTTP library varies (httpx, httpx2) between versions."""
    seen = set()
    c: BaseException | None = e
    while c is not None and id(c) not in seen:
        seen.add(id(c))
        if isinstance(c, (ConnectionRefusedError, ConnectionAbortedError)) or \
                type(c).__name__ in ("ConnectError", "ConnectionRefusedError"):
            return True
        c = c.__cause__ or c.__context__
    return False


def _short(e: Any) -> str:
    msg = getattr(e, "message", None) or str(e)
    return str(msg)[:200]
