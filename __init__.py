"""plyground: game-playing search agents — numba alpha-beta and MCTS, LLM hooks, a recorded arena.

The repository's top-level folders are this package's subpackages (see pyproject.toml):
``plyground.games``, ``plyground.search``, ``plyground.agents``, ``plyground.arena``,
``plyground.datasets`` and ``plyground.cli``.
"""

__version__ = "0.1.0"
