"""What a player may see: the state an agent is handed.

``player_view(state, player)`` is what the arena gives an agent to move from.  In a
perfect-information game it is a clone of the state.  (Imperfect-information games: to be
implemented — a view exposing only the player's information, with samplers of full states
consistent with it.)
"""

from __future__ import annotations

__all__ = ["player_view"]


def player_view(state, player: int):
    """The state as ``player`` may see it (a perfect-information game: a clone)."""
    return state.clone()
