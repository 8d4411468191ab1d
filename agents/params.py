"""Agent specs: ``name:key=value,key=value`` strings or TOML-style tables, checked against each
agent's declared parameters so that a typo is an error naming what is allowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from plyground.games.errors import PlygroundError


class AgentSpecError(PlygroundError, ValueError):
    """A bad agent spec: unknown agent, unknown parameter, or a value of the wrong kind."""


@dataclass(frozen=True)
class Param:
    """One agent parameter: its type, default, help, and optional allowed choices or bounds."""

    type: type
    default: Any
    help: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None

    def convert(self, agent: str, key: str, raw: Any) -> Any:
        value = raw
        try:
            if self.type is bool:
                if isinstance(raw, bool):
                    value = raw
                elif str(raw).strip().lower() in ("1", "true", "yes", "on"):
                    value = True
                elif str(raw).strip().lower() in ("0", "false", "no", "off"):
                    value = False
                else:
                    raise ValueError
            elif raw is None:
                value = None
            elif self.type is int:
                if isinstance(raw, float) and not raw.is_integer():
                    raise ValueError
                value = int(str(raw).strip()) if not isinstance(raw, (int, float)) else int(raw)
            elif self.type is float:
                value = float(raw)
            else:
                value = self.type(raw)
        except (TypeError, ValueError):
            raise AgentSpecError(
                f"agent {agent!r}: parameter {key}={raw!r} is not a valid {self.type.__name__}") from None
        if self.choices is not None and value not in self.choices:
            raise AgentSpecError(f"agent {agent!r}: {key}={value!r} is not allowed; choose one of {list(self.choices)}")
        if value is not None and self.min is not None and value < self.min:
            raise AgentSpecError(f"agent {agent!r}: {key}={value!r} is below the minimum {self.min}")
        if value is not None and self.max is not None and value > self.max:
            raise AgentSpecError(f"agent {agent!r}: {key}={value!r} is above the maximum {self.max}")
        return value


def parse_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``"mcts:sims=2000,c=1.4"`` or ``{"name": "mcts", "sims": 2000}`` -> ("mcts", {...}) (raw values)."""
    if isinstance(spec, Mapping):
        table = dict(spec)
        name = table.pop("name", table.pop("agent", None))
        if not isinstance(name, str) or not name:
            raise AgentSpecError(f"agent table {dict(spec)!r} needs a 'name' field naming the agent")
        return name.strip(), table
    if not isinstance(spec, str) or not spec.strip():
        raise AgentSpecError(f"agent spec must be a non-empty string like 'mcts:sims=2000'; got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    params: dict[str, Any] = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise AgentSpecError(f"agent spec {spec!r}: {item!r} is not key=value")
            if key.strip() in params:
                raise AgentSpecError(f"agent spec {spec!r}: {key.strip()!r} is given twice")
            params[key.strip()] = value.strip()
    return name.strip(), params


def resolve_params(agent: str, declared: Mapping[str, Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with the given values, each converted and checked."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        allowed = ", ".join(f"{k} ({p.help})" for k, p in declared.items()) or "none"
        raise AgentSpecError(f"agent {agent!r} has no parameter {', '.join(map(repr, unknown))}; allowed: {allowed}")
    out = {k: p.default for k, p in declared.items()}
    for k, v in given.items():
        out[k] = declared[k].convert(agent, k, v)
    return out
