"""A deliberately broken agent for exercising the arena's fault handling.

``faulty:mode=raise|sleep|illegal|infra|block,after=N,seconds=S`` plays seeded random legal
moves for its first ``after`` moves of every game, then misbehaves on each later move:

- ``raise``: raises ``RuntimeError`` (the arena records ``agent_error``);
- ``sleep``: sleeps ``seconds`` before answering (past the move time: ``timeout``; far past it the
  arena interrupts it);
- ``illegal``: returns an action that is not legal (``illegal_move``);
- ``infra``: raises ``InfrastructureError``, as an unreachable LLM endpoint would (retried, then
  ``aborted``);
- ``block``: blocks SIGALRM in its thread and then sleeps ``seconds`` — a stand-in for native code
  that never returns to the interpreter, which only an outside watchdog can stop.

Every decision names the process that made it (``info["pid"]``), so tests can tell workers apart.

>>> from plyground import agents, games
>>> a = agents.make("faulty:mode=illegal,after=1")
>>> s = games.make("tictactoe").new_initial_state()
>>> a.act(s).action in s.legal_actions(), a.act(s).action in s.legal_actions()
(True, False)
"""

from __future__ import annotations

import os
import random
import signal
import time

from plyground.agents.base import Agent, merged_seed
from plyground.agents.decision import Decision
from plyground.agents.params import Param
from plyground.games.errors import InfrastructureError


class FaultyAgent(Agent):
    name = "faulty"
    summary = "test agent that raises, sleeps, plays illegal moves or fails like a dead endpoint after N moves"
    PARAMS = {
        "mode": Param(str, "raise", "how it misbehaves", choices=("raise", "sleep", "illegal", "infra", "block")),
        "after": Param(int, 0, "good (random) moves per game before misbehaving", min=0),
        "seconds": Param(float, 10.0, "sleep/block: seconds to sleep", min=0.0),
        "seed": Param(int, None, "random seed for the good moves"),
    }

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.rng = random.Random(self.params["seed"])
        self.moves = 0

    def reset(self, seed: int | None = None) -> None:
        self.rng = random.Random(merged_seed(self.params["seed"], seed))
        self.moves = 0

    def act(self, state, clock: float | None = None) -> Decision:
        t = time.perf_counter()
        legal = state.legal_actions()
        self.moves += 1
        if self.moves <= self.params["after"]:
            return Decision(action=self.rng.choice(legal), think_time=time.perf_counter() - t,
                            info={"pid": os.getpid()})
        mode = self.params["mode"]
        if mode == "raise":
            raise RuntimeError(f"faulty agent: deliberate failure on move {self.moves}")
        if mode == "infra":
            raise InfrastructureError(f"faulty agent: simulated unreachable endpoint on move {self.moves}")
        if mode == "illegal":
            bad = next(a for a in range(-1, 10**6) if a not in legal)
            return Decision(action=bad, think_time=time.perf_counter() - t, info={"pid": os.getpid()})
        if mode == "block":
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            try:
                time.sleep(self.params["seconds"])
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
        else:
            time.sleep(self.params["seconds"])
        return Decision(action=self.rng.choice(legal), think_time=time.perf_counter() - t, info={"pid": os.getpid()})
