"""Playing one game between agents, with faults turned into results."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Sequence

from plyground.games.errors import PlygroundError

# Termination reasons
NORMAL = "normal"
ILLEGAL = "illegal_move"
ERROR = "agent_error"
TIMEOUT = "timeout"


@dataclass
class MoveRecord:
    ply: int
    player: int
    action: int
    text: str
    think_time: float
    decision: dict[str, Any]


@dataclass
class GameResult:
    """One finished game: who sat where, every move, the per-seat returns and why it ended."""

    game: str
    players: list[str]
    returns: list[float]
    termination: str
    moves: list[MoveRecord] = field(default_factory=list)
    seed: int | None = None
    detail: str = ""
    started: float = 0.0
    ended: float = 0.0

    def move_text(self) -> str:
        return " ".join(m.text for m in self.moves)


def _forfeit_returns(n: int, loser: int) -> list[float]:
    if n == 2:
        return [1.0 if p != loser else -1.0 for p in range(2)]
    return [-1.0 if p == loser else 0.0 for p in range(n)]


def play_game(game, agents: Sequence, seed: int | None = None, move_time: float | None = None,
              max_plies: int | None = None) -> GameResult:
    """Play ``agents`` (one per seat, seat 0 moves first) to the end.

    An agent that raises, overruns ``move_time`` (checked after the move: the agent is told the
    limit as its clock) or returns an illegal action forfeits; its opponent gets +1, it gets -1.
    """
    state = game.new_initial_state()
    n = game.num_players()
    if len(agents) != n:
        raise PlygroundError(f"{game.name} needs {n} players; got {len(agents)}")
    for i, agent in enumerate(agents):
        agent.reset(None if seed is None else seed * 7919 + i)
    result = GameResult(game=game.name, players=[a.spec for a in agents], returns=[0.0] * n,
                        termination=NORMAL, seed=seed, started=time.time())
    ply = 0
    while not state.is_terminal():
        if max_plies is not None and ply >= max_plies:
            result.termination, result.detail = "max_plies", f"stopped after {max_plies} plies"
            break
        if hasattr(state, "is_chance_node") and state.is_chance_node():
            import random
            rng = random.Random(None if seed is None else seed * 104729 + ply)
            outcomes = state.chance_outcomes()
            action = rng.choices([a for a, _ in outcomes], weights=[p for _, p in outcomes])[0]
            result.moves.append(MoveRecord(ply, -1, int(action), state.action_to_string(action), 0.0, {}))
            state.apply_action(action)
            ply += 1
            continue
        player = state.current_player()
        agent = agents[player]
        t = time.perf_counter()
        try:
            decision = agent.act(state.clone(), clock=move_time)
        except Exception as exc:  # noqa: BLE001 - a broken agent forfeits, it never stops the match
            result.termination = ERROR
            result.detail = f"seat {player} ({agent.spec}) raised {type(exc).__name__}: {exc}"
            result.returns = _forfeit_returns(n, player)
            result.moves.append(MoveRecord(ply, player, -1, "", time.perf_counter() - t,
                                           {"error": traceback.format_exc(limit=5)}))
            break
        elapsed = time.perf_counter() - t
        legal = state.legal_actions()
        if decision.action not in legal:
            result.termination = ILLEGAL
            result.detail = f"seat {player} ({agent.spec}) played {decision.action!r}; legal: {legal}"
            result.returns = _forfeit_returns(n, player)
            break
        if move_time is not None and elapsed > move_time:
            result.termination = TIMEOUT
            result.detail = f"seat {player} ({agent.spec}) took {elapsed:.3f}s > {move_time}s"
            result.returns = _forfeit_returns(n, player)
            break
        text = state.action_to_string(decision.action)
        result.moves.append(MoveRecord(ply, player, int(decision.action), text, elapsed, decision.to_json()))
        state.apply_action(decision.action)
        ply += 1
    if result.termination == NORMAL:
        result.returns = [float(r) for r in state.returns()]
    result.ended = time.time()
    return result
