"""The Agent protocol the arena plays: ``act(state, clock) -> Decision``."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from plyground.agents.decision import Decision
from plyground.agents.params import Param, resolve_params


class Agent:
    """A player.  Subclasses declare ``PARAMS`` and implement ``act``.

    ``clock`` is the time this move may take, in seconds (``None``: no limit); agents with a
    time budget use the smaller of their own and the clock.  ``reset(seed)`` starts a new game.
    """

    name: ClassVar[str] = "agent"
    summary: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Param]] = {}

    def __init__(self, **params: Any) -> None:
        self.params = resolve_params(self.name, self.PARAMS, params)

    @property
    def spec(self) -> str:
        """Canonical spec string: the name plus every parameter that differs from its default."""
        items = [f"{k}={v}" for k, v in sorted(self.params.items()) if v != self.PARAMS[k].default]
        return self.name + (":" + ",".join(items) if items else "")

    def config(self) -> dict[str, Any]:
        """Every parameter's value (defaults included), for the record's config hash."""
        return {"name": self.name, **self.params}

    def reset(self, seed: int | None = None) -> None:
        """Forget the previous game; ``seed`` re-seeds any randomness."""

    def check_game(self, game) -> None:
        """Raise ``UnsupportedGameError`` if this agent cannot play ``game`` honestly, naming what the
        game has (hidden information, chance, more players, ...) that the agent does not support.
        Called before the first game; cheap (loads no model, compiles nothing).  The default accepts
        every game whose moves come in turns."""

    def warm_up(self, game) -> None:
        """Compile or load everything needed to play ``game`` (numba kernels, models), so that no
        move pays for it on the clock.  Called once per game per process, before the first move."""

    def act(self, state, clock: float | None = None) -> Decision:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (models, processes)."""

    def __repr__(self) -> str:
        return f"<Agent {self.spec}>"


def merged_seed(base: int | None, game_seed: int | None) -> int | None:
    """Combine an agent's own seed with a per-game seed (either may be None)."""
    if base is None and game_seed is None:
        return None
    return ((base or 0) * 1_000_003 + (game_seed or 0)) % (2**31 - 1)


def params_doc(params: Mapping[str, Param]) -> str:
    return ", ".join(f"{k}={p.default!r}" for k, p in params.items())
