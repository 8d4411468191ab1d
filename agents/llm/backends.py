"""``make_backend(name, **options)``: build an LLM backend by name (local | openai | transformers)."""

from __future__ import annotations

import inspect
from typing import Any

from plyground.agents.llm.backend import Backend
from plyground.agents.llm.calls import CallPolicy

BACKEND_NAMES = ("local", "openai", "transformers")


def _backend_class(name: str) -> type:
    if name == "local":
        from plyground.agents.llm.local import LocalBackend
        return LocalBackend
    if name == "openai":
        from plyground.agents.llm.openai_backend import OpenAIBackend
        return OpenAIBackend
    from plyground.agents.llm.hf_backend import TransformersBackend
    return TransformersBackend


def backend_options(name: str) -> tuple[str, ...]:
    """The option names ``make_backend(name, ...)`` accepts (policy options included)."""
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown LLM backend {name!r}; allowed: {', '.join(BACKEND_NAMES)}")
    sig = inspect.signature(_backend_class(name).__init__)
    own = tuple(p for p in sig.parameters if p not in ("self", "policy"))
    return own + tuple(o for o in CallPolicy.option_names() if o not in own)


def make_backend(name: str = "local", **options: Any) -> Backend:
    """A backend by name; options are the backend's own (e.g. ``model``, ``n_threads``,
    ``base_url``, ``api_key_env``, ``cache``) plus the call policy (``retries``, ``backoff``,
    ``backoff_max``, ``timeout``, ``concurrency``).

    >>> b = make_backend("local", n_threads=1)      # doctest: +SKIP
    """
    name = (name or "local").strip().lower()
    allowed = backend_options(name)
    bad = sorted(k for k in options if k not in allowed)
    if bad:
        raise ValueError(f"unknown option(s) {', '.join(map(repr, bad))} for LLM backend {name!r}; "
                         f"allowed: {', '.join(allowed)}")
    cls = _backend_class(name)
    own = set(inspect.signature(cls.__init__).parameters)
    policy_kw = {k: options.pop(k) for k in list(options)
                 if k in CallPolicy.option_names() and k not in own}
    if policy_kw:
        defaults = cls.default_policy() if hasattr(cls, "default_policy") else CallPolicy()
        fields = {f: getattr(defaults, f) for f in CallPolicy.option_names()}
        fields.update({k: _num(k, v) for k, v in policy_kw.items()})
        options["policy"] = CallPolicy(**fields)
    return cls(**options)


def _num(key: str, value: Any) -> float | int:
    try:
        return int(value) if key in ("retries", "concurrency") else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {key}={value!r} must be a number") from None
