"""Typed errors a user can act on: each names the bad value and what is allowed."""

from __future__ import annotations

from typing import Iterable


class PlygroundError(Exception):
    """Base class of every error plyground raises on purpose."""


class UnknownGameError(PlygroundError, KeyError):
    """A game name that no registry knows."""

    def __init__(self, name: str, allowed: Iterable[str], hint: str = "") -> None:
        self.name = name
        self.allowed = sorted(allowed)
        msg = f"unknown game {name!r}; allowed: {', '.join(self.allowed)}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class IllegalActionError(PlygroundError, ValueError):
    """An action that is not legal in the given state."""

    def __init__(self, game: str, action, legal: Iterable, detail: str = "") -> None:
        self.game = game
        self.action = action
        self.legal = list(legal)
        msg = f"illegal action {action!r} in {game}; legal actions: {self.legal}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class InfrastructureError(PlygroundError):
    """The environment failed, not the agent (e.g. an LLM endpoint that stays unreachable after
    retries).  The arena retries such a game and, if it persists, records it ``aborted``, unrated."""


class UnsupportedGameError(PlygroundError):
    """A game that cannot be played here, or that an agent cannot play: raised before the first move,
    naming what the game has (chance, hidden information, three players, ...) that is not supported."""
