"""The ``transformers`` backend: a Hugging Face causal LM from a local directory (torch, CPU by default).

``score`` runs the shared prefix once (keeping its KV cache), reads single-token continuations
from the prefix's last logits, and runs all longer continuations together in one batch on top of
the repeated prefix cache.  Models are loaded once per process per (directory, dtype, device).
"""

from __future__ import annotations

import copy
import os
import threading
import time
from typing import Any

from plyground.agents.llm.backend import CallStats
from plyground.agents.llm.calls import CallPolicy, FatalCallError, InProcessBackend, TransientError

_MODELS: dict[tuple, "_HFModel"] = {}
_MODELS_LOCK = threading.Lock()
DTYPES = ("float32", "bfloat16", "float16")


class _HFModel:
    def __init__(self, path: str, dtype: str, device: str, adapter: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
        if adapter:
            from peft import PeftModel          # a LoRA adapter, merged into the weights once
            self.model = PeftModel.from_pretrained(self.model, adapter).merge_and_unload()
        self.model = self.model.to(device)
        self.model.eval()
        self.device = device
        self.lock = threading.RLock()
        import inspect
        params = inspect.signature(self.model.forward).parameters
        # transformers 5 renames ``past_key_values`` to ``cache``; accept both
        self.cache_kw = "cache" if "cache" in params else "past_key_values"

    def past(self, out: Any) -> Any:
        """The KV cache a forward pass returned (attribute name differs between versions)."""
        for name in (("cache", "past_key_values") if self.cache_kw == "cache"
                     else ("past_key_values", "cache")):
            c = getattr(out, name, None)
            if c is not None:
                return c
        raise RuntimeError("the model returned no KV cache")

    def render(self, messages: list[dict[str, str]]) -> str:
        """Messages -> text with the tokenizer's chat template (a final assistant message is a prefill)."""
        prefill = ""
        if messages and messages[-1]["role"] == "assistant":
            prefill, messages = messages[-1]["content"], messages[:-1]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                      tokenize=False)
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        return text + prefill

    def tokenize(self, text: str) -> list[int]:
        """Token ids; special-token text is parsed; BOS added only if the tokenizer adds one and the
        text does not already start with it."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        bos = self.tokenizer.bos_token_id
        if (bos is not None and getattr(self.tokenizer, "add_bos_token", False)
                and (not ids or ids[0] != bos)):
            ids = [bos] + ids
        return list(ids)


def _shared(path: str, dtype: str, device: str, adapter: str | None = None) -> _HFModel:
    key = (os.path.realpath(path), dtype, device, os.path.realpath(adapter) if adapter else None)
    with _MODELS_LOCK:
        m = _MODELS.get(key)
        if m is None:
            m = _MODELS[key] = _HFModel(*key)
        return m


class TransformersBackend(InProcessBackend):
    """``TransformersBackend(model="/path/to/hf_dir", adapter=None, dtype="float32", device="cpu", n_threads=1)``;
    ``adapter``: a peft LoRA adapter directory trained on that model, merged in at load time."""

    name = "transformers"

    def __init__(self, model: str | os.PathLike = "", *, adapter: str | os.PathLike | None = None,
                 dtype: str = "float32", device: str = "cpu",
                 n_threads: int | None = 1, cache: Any = None, policy: CallPolicy | None = None,
                 timeout: float | None = None) -> None:
        policy = policy or self.default_policy()
        if timeout is not None:
            policy = CallPolicy(**{**policy.__dict__, "timeout": float(timeout)})
        super().__init__(cache=cache, policy=policy)
        path = os.fspath(model) if model else ""
        if not path or not os.path.isdir(path) or not os.path.isfile(os.path.join(path, "config.json")):
            raise FileNotFoundError(f"transformers backend: model={path!r} must be a local directory "
                                    "holding a Hugging Face causal LM (config.json, weights, tokenizer)")
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
        self.adapter = os.fspath(adapter) if adapter not in (None, "") else None
        if self.adapter is not None and not os.path.isfile(os.path.join(self.adapter, "adapter_config.json")):
            raise FileNotFoundError(f"transformers backend: adapter={self.adapter!r} must be a peft adapter directory "
                                    "(adapter_config.json, adapter_model.safetensors); bundled GGUF adapters play "
                                    "through the local backend")
        if self.adapter is not None:
            try:
                import peft  # noqa: F401  (checked here: otherwise the first move fails deep in loading)
            except ImportError:
                raise ImportError(f"transformers backend: adapter={self.adapter!r} needs peft, which is not "
                                  "installed (pip install peft, or pip install 'plyground[llm-train]')") from None
        self.path, self.dtype, self.device = path, dtype, str(device)
        self.model = os.path.basename(os.path.normpath(path)) + (
            f"+{os.path.basename(os.path.normpath(self.adapter))}" if self.adapter else "")
        self.n_threads = None if n_threads in (None, "", 0, "0") else int(n_threads)
        self._m: _HFModel | None = None

    @classmethod
    def default_policy(cls) -> CallPolicy:
        return CallPolicy(retries=0, timeout=600.0, concurrency=1)

    @property
    def shared(self) -> _HFModel:
        if self._m is None:
            if self.n_threads:
                import torch
                torch.set_num_threads(self.n_threads)
            self._m = _shared(self.path, self.dtype, self.device, self.adapter)
        return self._m

    def warm_up(self, prompt=None) -> None:
        """Load the model (this backend keeps no key/value cache between calls)."""
        _ = self.shared

    def cache_identity(self) -> str:
        return f"{self.model}:{self.dtype}"

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.path!r}, dtype={self.dtype!r}, device={self.device!r})"

    # ---- generation --------------------------------------------------------------------------
    def _generate(self, text: str, stats: CallStats, timeout: float, max_tokens: int,
                  temperature: float, seed: int | None, stop: list[str] | None) -> str:
        m = self.shared
        torch = m.torch
        with m.lock, torch.no_grad():
            ids = m.tokenize(text)
            inp = torch.tensor([ids], device=m.device)
            kw: dict[str, Any] = {"max_new_tokens": max_tokens, "max_time": timeout,
                                  "attention_mask": torch.ones_like(inp)}
            if temperature > 0:
                if seed is not None:
                    torch.manual_seed(seed)
                kw.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
            else:
                kw.update(do_sample=False, temperature=None, top_k=None, top_p=None)
            pad = m.tokenizer.pad_token_id if m.tokenizer.pad_token_id is not None else m.tokenizer.eos_token_id
            t0 = time.monotonic()
            out = m.model.generate(inp, pad_token_id=pad, **kw)
            elapsed = time.monotonic() - t0
        new = out[0, len(ids):].tolist()
        eos = m.tokenizer.eos_token_id
        if eos is not None and eos in new:
            new = new[: new.index(eos)]
        if elapsed >= timeout and len(new) < max_tokens:
            raise TransientError(f"generation exceeded the per-call timeout of {timeout} s")
        reply = m.tokenizer.decode(new, skip_special_tokens=True)
        for s in stop or []:
            if s in reply:
                reply = reply[: reply.index(s)]
        stats.prompt_tokens = len(ids)
        stats.completion_tokens = len(new)
        return reply

    # ---- scoring -----------------------------------------------------------------------------
    def _score(self, prompt: str | list[dict[str, str]], continuations: list[str],
               stats: CallStats, timeout: float) -> tuple[list[float], dict[str, Any]]:
        m = self.shared
        torch = m.torch
        stats.method = "logprobs"
        text = prompt if isinstance(prompt, str) else m.render(prompt)
        with m.lock, torch.no_grad():
            base = m.tokenize(text)
            fulls = [m.tokenize(text + c) for c in continuations]
            k = len(base)
            for f in fulls:
                j, lim = 0, min(k, len(f))
                while j < lim and f[j] == base[j]:
                    j += 1
                k = j
            if k == 0:
                raise FatalCallError("score() needs a non-empty prompt")
            tails = [f[k:] for f in fulls]
            out = m.model(torch.tensor([base[:k]], device=m.device), use_cache=True)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            result = [float(first[t[0]]) if t else 0.0 for t in tails]
            multi = [i for i, t in enumerate(tails) if len(t) > 1]
            if multi:
                width = max(len(tails[i]) - 1 for i in multi)
                pad = m.tokenizer.pad_token_id if m.tokenizer.pad_token_id is not None else 0
                ids = torch.full((len(multi), width), pad, dtype=torch.long, device=m.device)
                mask = torch.zeros((len(multi), k + width), dtype=torch.long, device=m.device)
                mask[:, :k] = 1
                for r, i in enumerate(multi):
                    t = tails[i][:-1]
                    ids[r, : len(t)] = torch.tensor(t)
                    mask[r, k: k + len(t)] = 1
                past = copy.deepcopy(m.past(out))
                past.batch_repeat_interleave(len(multi))
                pos = torch.arange(k, k + width, device=m.device).unsqueeze(0).expand(len(multi), -1)
                o2 = m.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                             **{m.cache_kw: past})
                lsm = torch.log_softmax(o2.logits.float(), dim=-1)
                for r, i in enumerate(multi):
                    t = tails[i]
                    result[i] += float(sum(lsm[r, j - 1, t[j]] for j in range(1, len(t))))
        stats.prompt_tokens = k + sum(len(t) for t in tails)
        return result, {"prompt_len": len(base), "split": k, "n_tokens": [len(t) for t in tails]}
