"""Players: ``plyground.agents.make(spec) -> Agent``.

Specs are ``name:key=value,...`` strings (``"mcts:sims=2000,c=1.4"``) or tables
(``{"name": "mcts", "sims": 2000}``); unknown agents or parameters raise ``AgentSpecError``
naming what is allowed.

>>> from plyground import agents, games
>>> a = agents.make("random:seed=1")
>>> a.act(games.make("tictactoe").new_initial_state()).action in range(9)
True
"""

from __future__ import annotations

from typing import Any, Mapping

from plyground.agents.base import Agent
from plyground.agents.basic import HumanAgent, RandomAgent
from plyground.agents.decision import Decision
from plyground.agents.params import AgentSpecError, Param, parse_spec
from plyground.agents.search_agents import MCTSAgent, MinimaxAgent, OpenSpielMCTSAgent
from plyground.agents.faulty import FaultyAgent

AGENTS: dict[str, type[Agent]] = {
    cls.name: cls for cls in (RandomAgent, MinimaxAgent, MCTSAgent, OpenSpielMCTSAgent, HumanAgent)
}

from plyground.agents.llm_agents import LLM_AGENTS  # noqa: E402 - the LLM agents (llm, llm-minimax, llm-mcts)

AGENTS.update({cls.name: cls for cls in LLM_AGENTS})
from plyground.agents.neural.agents import NEURAL_AGENTS  # noqa: E402 - neural, neural-mcts

AGENTS.update({cls.name: cls for cls in NEURAL_AGENTS})
AGENTS[FaultyAgent.name] = FaultyAgent  # a test agent for the arena's fault handling

__all__ = ["make", "list_agents", "Agent", "Decision", "AgentSpecError", "Param", "AGENTS"]


def make(spec: str | Mapping[str, Any], **overrides: Any) -> Agent:
    """An agent from a spec string or table; ``overrides`` are extra parameters (e.g. a seed)."""
    name, params = parse_spec(spec)
    cls = AGENTS.get(name)
    if cls is None:
        raise AgentSpecError(f"unknown agent {name!r}; allowed: {', '.join(sorted(AGENTS))}")
    params.update(overrides)
    return cls(**params)


def list_agents() -> list[tuple[str, str, str]]:
    """(name, summary, parameters with defaults) for every agent."""
    from plyground.agents.base import params_doc
    return [(n, c.summary, params_doc(c.PARAMS)) for n, c in sorted(AGENTS.items())]
