"""What an agent returns for a move: the action and everything it knows about how it chose it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Decision:
    """An agent's move plus its statistics; ``to_json()`` is what the arena records per move.

    ``search`` holds the engine's statistics (``SearchResult.to_json()``: nodes or simulations,
    depth, principal variation, root value, per-action values and visits); ``llm`` is filled by
    LLM agents (calls, tokens, latency, raw replies); ``fallback`` names any fallback taken.
    """

    action: int
    think_time: float = 0.0
    value: float | None = None
    search: dict[str, Any] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)
    fallback: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["action"] = int(self.action)
        return d

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, default=jsonable)


def jsonable(obj: Any) -> Any:
    """numpy scalars and arrays to plain JSON types; anything else as its string."""
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
