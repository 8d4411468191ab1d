"""Agents without search: uniform random, and a human at the terminal."""

from __future__ import annotations

import random
import sys
import time
from typing import TextIO

from plyground.agents.base import Agent, merged_seed
from plyground.agents.decision import Decision
from plyground.agents.params import Param
from plyground.games.errors import IllegalActionError, PlygroundError


class RandomAgent(Agent):
    name = "random"
    summary = "uniformly random legal moves (seeded)"
    PARAMS = {"seed": Param(int, None, "random seed; unset = nondeterministic")}

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.rng = random.Random(self.params["seed"])

    def reset(self, seed: int | None = None) -> None:
        self.rng = random.Random(merged_seed(self.params["seed"], seed))

    def act(self, state, clock: float | None = None) -> Decision:
        t = time.perf_counter()
        legal = state.legal_actions()
        if not legal:
            raise PlygroundError(f"random agent asked to move in a state with no legal actions:\n{state}")
        action = self.rng.choice(legal)
        return Decision(action=action, think_time=time.perf_counter() - t)


class HumanQuit(PlygroundError):
    """The human typed quit."""


class HumanAgent(Agent):
    name = "human"
    summary = "a person typing moves in the game's notation at the terminal"
    PARAMS = {}

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None, **params) -> None:
        super().__init__(**params)
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout

    def act(self, state, clock: float | None = None) -> Decision:
        t = time.perf_counter()
        legal = state.legal_actions()
        notation = [state.action_to_string(a) for a in legal]
        print(f"\n{state}", file=self.stdout)
        while True:
            print(f"Your move ({' '.join(notation)}; 'quit' to stop): ", end="", file=self.stdout, flush=True)
            line = self.stdin.readline()
            if not line or line.strip().lower() in ("quit", "exit", "q"):
                raise HumanQuit("the human player quit")
            try:
                action = state.string_to_action(line.strip())
            except IllegalActionError as e:
                print(f"  {e}", file=self.stdout)
                continue
            return Decision(action=action, think_time=time.perf_counter() - t)
