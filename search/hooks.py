"""The three hooks the engines call, and their non-LLM implementations.

PokéChamp's three LLM roles, as interfaces any engine can take:

- ``ActionProposer``: state -> candidate actions of the player to move with prior probabilities
  (prunes and orders alpha-beta's own moves; the PUCT prior in MCTS).
- ``OpponentModel``: state -> the opponent's likely replies with probabilities; ``mode`` says how
  alpha-beta uses them: ``"full"`` (every reply, plain minimax), ``"topk"`` (only the ``k`` most
  likely) or ``"expectation"`` (an expectimax node weighted by the probabilities).
- ``ValueEstimator``: states -> values in [-1, 1] for the player to move in each (leaf values).
  The engines hand it player nodes only (never a chance node, never a ``PlayerView``).

Values are the game's returns mapped linearly from [min utility, max utility] to [-1, 1]
(``games.traits.traits(game).scale``): a win at poker's largest pot is 1, a backgammon
single win a third.  Native games already return -1, 0 or 1.

Methods take batches where engines batch (MCTS evaluates k leaves at once); the single-state
forms default to the batch ones and back.  The LLM roles (``agents.llm.roles``) implement the same interfaces.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

from plyground.games.errors import PlygroundError


OPPONENT_MODES = ("full", "topk", "expectation")


class ActionProposer:
    """Candidate actions with priors.  Override ``propose`` or ``propose_batch``."""

    def propose(self, state) -> dict[int, float]:
        """A distribution over (a subset of) the legal actions of ``state``, summing to 1."""
        return self.propose_batch([state])[0]

    def propose_batch(self, states: Sequence) -> list[dict[int, float]]:
        if type(self).propose is ActionProposer.propose:
            raise NotImplementedError(f"{type(self).__name__} implements neither propose nor propose_batch")
        return [self.propose(s) for s in states]


class OpponentModel:
    """The opponent's replies with probabilities, and how the engine should use them."""

    def __init__(self, mode: str = "full", k: int = 3) -> None:
        if mode not in OPPONENT_MODES:
            raise ValueError(f"opponent mode {mode!r} is not one of {OPPONENT_MODES}")
        if k < 1:
            raise ValueError(f"opponent k must be >= 1, got {k}")
        self.mode = mode
        self.k = k

    def predict(self, state) -> dict[int, float]:
        """A distribution over the legal replies of the player to move in ``state``."""
        raise NotImplementedError


class ValueEstimator:
    """Leaf values.  Override ``evaluate`` (batched)."""

    def evaluate(self, states: Sequence) -> list[float]:
        """Values in [-1, 1], each for the player to move in its state."""
        raise NotImplementedError

    def value(self, state) -> float:
        return self.evaluate([state])[0]


# ------------------------------------------------------------------ scaling
CHANCE_PLAYER = -1


def game_of(state):
    """The game behind a state (our adapters' and views' ``.game``, pyspiel's ``get_game()``)."""
    game = getattr(state, "game", None)
    if game is None and hasattr(state, "get_game"):
        game = state.get_game()
    return game


def scaler(game) -> Callable[[float], float]:
    """``traits(game).scale``: a return mapped from the game's [min, max] utility to [-1, 1]."""
    from plyground.games.traits import traits
    return traits(game).scale


def scaled_returns(state) -> list[float]:
    """Every player's return of a finished game, scaled to [-1, 1]."""
    scale = scaler(game_of(state))
    return [scale(r) for r in state.returns()]


def sample_chance(state, rng: random.Random) -> int:
    """A chance outcome of ``state`` drawn with its probability."""
    outcomes = state.chance_outcomes()
    x = rng.random()
    acc = 0.0
    for a, p in outcomes:
        acc += p
        if x < acc:
            return int(a)
    return int(outcomes[-1][0])  # rounding: the probabilities may sum to just under 1


# ------------------------------------------------------------------ non-LLM implementations
def terminal_value(state) -> float:
    """Exact scaled value of a terminal state for the player who would move next (the last
    mover's opponent in a two-player game that alternates)."""
    returns = scaled_returns(state)
    # After the game ends the player "to move" is not defined; the engines ask from the point of
    # view of the player who moved *into* the leaf's parent, so use the player of the next ply.
    hist = state.history()
    nxt = len(hist) % 2 if len(returns) == 2 else 0
    return returns[nxt]


class UniformProposer(ActionProposer):
    """Every legal action, equally likely (the non-LLM default)."""

    def propose(self, state) -> dict[int, float]:
        legal = state.legal_actions()
        if not legal:
            return {}
        p = 1.0 / len(legal)
        return {a: p for a in legal}


class FullWidthOpponent(OpponentModel):
    """Uniform over every reply; with ``mode="full"`` alpha-beta is plain minimax."""

    def predict(self, state) -> dict[int, float]:
        legal = state.legal_actions()
        if not legal:
            return {}
        p = 1.0 / len(legal)
        return {a: p for a in legal}


class RolloutValue(ValueEstimator):
    """Mean scaled result of ``n`` playouts: uniformly random moves, chance outcomes drawn with
    their probabilities (inside numba for native games)."""

    def __init__(self, n: int = 1, seed: int | None = None) -> None:
        if n < 1:
            raise ValueError(f"rollouts n must be >= 1, got {n}")
        self.n = n
        self.rng = random.Random(seed)

    def evaluate(self, states: Sequence) -> list[float]:
        out = []
        for s in states:
            kernel = getattr(getattr(s, "game", None), "kernel", None)
            if kernel is not None and hasattr(s, "array"):
                me = int(kernel.to_play(s.array))
                total = 0.0
                for _ in range(self.n):
                    total += kernel.random_playout(s.array.copy())
                v = total / self.n
                out.append(v if me == 0 else -v)
                continue
            if s.is_terminal():
                out.append(terminal_value(s))
                continue
            me = s.current_player()
            if me < 0:
                raise PlygroundError(f"RolloutValue: the state is not a player node (current_player() = {me}); "
                                     "values are for the player to move, so a chance node has none")
            scale = scaler(game_of(s))
            total = 0.0
            for _ in range(self.n):
                c = s.clone()
                while not c.is_terminal():
                    if c.current_player() == CHANCE_PLAYER:
                        c.apply_action(sample_chance(c, self.rng))
                    else:
                        c.apply_action(self.rng.choice(c.legal_actions()))
                total += scale(c.returns()[me])
            out.append(total / self.n)
        return out


class HeuristicValue(ValueEstimator):
    """The game's own cheap heuristic (native kernels); exact scaled results at terminals; 0 otherwise."""

    def evaluate(self, states: Sequence) -> list[float]:
        out = []
        for s in states:
            kernel = getattr(getattr(s, "game", None), "kernel", None)
            if kernel is not None and hasattr(s, "array"):
                out.append(float(kernel.heuristic(s.array)))
            elif s.is_terminal():
                out.append(terminal_value(s))
            else:
                out.append(0.0)
        return out
