"""The engines: alpha-beta (negamax) and MCTS, numba-compiled for native games and generic for any State.

Entry points (each picks the numba engine for a native state and the generic one otherwise):

- ``plyground.search.alphabeta.search(state, ...) -> SearchResult``
- ``plyground.search.mcts.MCTS(...).search(state) -> SearchResult``

Both take the three hooks of ``plyground.search.hooks`` (ActionProposer, OpponentModel,
ValueEstimator), which the LLM roles implement and which have non-LLM implementations here.
"""

from plyground.search.hooks import (
    ActionProposer, OpponentModel, ValueEstimator,
    UniformProposer, FullWidthOpponent, RolloutValue, HeuristicValue,
)
from plyground.search.result import SearchResult

__all__ = [
    "ActionProposer", "OpponentModel", "ValueEstimator",
    "UniformProposer", "FullWidthOpponent", "RolloutValue", "HeuristicValue",
    "SearchResult",
]
