"""Native games as PettingZoo AEC envs: ``make_env("connect4")``.

>>> from plyground.games import make_env
>>> env = make_env("tictactoe", render_mode="ansi")
>>> env.reset(seed=0)
>>> obs, reward, terminated, truncated, info = env.last()
>>> obs["action_mask"].tolist()
[1, 1, 1, 1, 1, 1, 1, 1, 1]

Observations are dicts: ``observation`` is the state's observation tensor (OpenSpiel's layout,
float32, the same array a network sees through ``state.observation_tensor()``) and
``action_mask`` marks the legal actions (int8; all zeros for an agent not to move).  Rewards
are +1/-1/0 at the end only.  An illegal action raises ``IllegalActionError`` instead of being
clamped or punished silently.  ``env.unwrapped.native_state`` is the underlying ``NativeState``.
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv
from pettingzoo.utils import wrappers
from pettingzoo.utils.agent_selector import AgentSelector

from plyground.games.errors import IllegalActionError, UnknownGameError

__all__ = ["make_env", "NativeAECEnv", "ENV_NAMES"]

RENDER_MODES = ("human", "ansi")


def _native_games() -> dict:
    from plyground.games.native.state import NATIVE_GAMES
    return NATIVE_GAMES


ENV_NAMES = tuple(_native_games())


class NativeAECEnv(AECEnv):
    """A native game as a two-agent, turn-based AEC env (``player_0`` moves first)."""

    metadata = {"render_modes": list(RENDER_MODES), "name": "plyground_native_v0",
                "is_parallelizable": False, "render_fps": 1}

    def __init__(self, name: str, render_mode: str | None = None) -> None:
        super().__init__()
        from plyground.games.native.state import make_native
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode {render_mode!r} is not one of {[None, *RENDER_MODES]}")
        self.game = make_native(name)
        self.render_mode = render_mode
        self.metadata = dict(self.metadata, name=f"{name}_v0")
        self.possible_agents = ["player_0", "player_1"]
        self.agents = self.possible_agents[:]
        n = self.game.num_distinct_actions()
        shape = tuple(self.game.observation_tensor_shape())
        self.action_spaces = {a: spaces.Discrete(n) for a in self.possible_agents}
        self.observation_spaces = {
            a: spaces.Dict({
                "observation": spaces.Box(low=0.0, high=1.0, shape=shape, dtype=np.float32),
                "action_mask": spaces.Box(low=0, high=1, shape=(n,), dtype=np.int8),
            })
            for a in self.possible_agents
        }
        self.state_space = spaces.Box(low=0.0, high=1.0, shape=shape, dtype=np.float32)
        self.native_state = self.game.new_initial_state()
        self._selector = AgentSelector(self.agents)

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        """Start a new game; the game is deterministic, so ``seed`` only seeds the action spaces."""
        if seed is not None:
            for i, a in enumerate(self.possible_agents):
                self.action_spaces[a].seed(seed + i)
        self.native_state = self.game.new_initial_state()
        self.agents = self.possible_agents[:]
        self.rewards = {a: 0 for a in self.agents}
        self._cumulative_rewards = {a: 0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: {} for a in self.agents}
        self._selector = AgentSelector(self.agents)
        self.agent_selection = self._selector.reset()

    def observe(self, agent: str) -> dict:
        p = self.possible_agents.index(agent)
        mask = np.zeros(self.game.num_distinct_actions(), dtype=np.int8)
        if agent == self.agent_selection and not self.native_state.is_terminal():
            mask[self.native_state.legal_actions()] = 1
        obs = np.asarray(self.native_state.observation_tensor(p), dtype=np.float32)
        return {"observation": obs, "action_mask": mask}

    def step(self, action) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        legal = self.native_state.legal_actions()
        try:
            a = int(action)
        except (TypeError, ValueError):
            raise IllegalActionError(self.game.name, action, legal, f"{agent} must play an integer action") from None
        if a not in legal:
            raise IllegalActionError(self.game.name, action, legal, f"{agent} to move")
        self._cumulative_rewards[agent] = 0
        self.native_state.apply_action(a)
        self.rewards = {ag: 0 for ag in self.agents}
        if self.native_state.is_terminal():
            returns = self.native_state.returns()
            for i, ag in enumerate(self.possible_agents):
                self.rewards[ag] = returns[i]
                self.terminations[ag] = True
        self.agent_selection = self._selector.next()
        self._accumulate_rewards()
        if self.render_mode == "human":
            self.render()

    def render(self) -> str | None:
        """``ansi``: the board as text; ``human``: print it; no mode: warn and return None."""
        if self.render_mode is None:
            gymnasium.logger.warn("You are calling render method without specifying any render mode.")
            return None
        text = str(self.native_state)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def state(self) -> np.ndarray:
        """A global view: the observation tensor (it is the same for both players)."""
        return np.asarray(self.native_state.observation_tensor(0), dtype=np.float32)

    def close(self) -> None:
        pass


def make_env(name: str, render_mode: str | None = None):
    """A native game (``tictactoe``, ``connect4``) as a PettingZoo AEC env with ``action_mask``."""
    games = _native_games()
    if name not in games:
        raise UnknownGameError(name, list(games), "make_env wraps the native games")
    env = NativeAECEnv(name, render_mode=render_mode)
    env = wrappers.OrderEnforcingWrapper(env)
    return env
