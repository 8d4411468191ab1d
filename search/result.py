"""What an engine returns: value, best action and the statistics the arena records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SearchResult:
    """One search's answer, from the point of view of the player to move at the root.

    ``value`` is in [-1, 1] (alpha-beta's exact mode also sets ``score``, the distance-to-win
    score of ../shared/data/README.md for connect four).  ``action_values`` holds per-action
    scores (alpha-beta) or mean values (MCTS), ``visits`` per-action visit counts (MCTS).
    """

    best_action: int
    value: float
    engine: str
    nodes: int = 0                      # alpha-beta nodes, or MCTS simulations
    depth: int = 0                      # alpha-beta depth completed, or MCTS max tree depth
    pv: list[int] = field(default_factory=list)
    action_values: dict[int, float] = field(default_factory=dict)
    visits: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    exact: bool = False                 # the value is proven (solved, or MCTS-Solver proof)
    score: int | None = None            # exact distance-to-win score, where the engine computes it
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (int keys become strings, as JSON requires)."""
        d = asdict(self)
        d["action_values"] = {str(k): float(v) for k, v in self.action_values.items()}
        d["visits"] = {str(k): int(v) for k, v in self.visits.items()}
        d["pv"] = [int(a) for a in self.pv]
        return d
