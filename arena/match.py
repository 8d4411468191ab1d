"""Playing one game between agents, with faults turned into results."""

from __future__ import annotations

import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from plyground.games.errors import InfrastructureError, PlygroundError
from plyground.games.information import player_view

# Termination reasons
NORMAL = "normal"
ILLEGAL = "illegal_move"
ERROR = "agent_error"
TIMEOUT = "timeout"
MAX_PLIES = "max_plies"
ABORTED = "aborted"


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
    plies: int = 0
    broken_seats: list[int] = field(default_factory=list)

    def move_text(self) -> str:
        return " ".join(m.text for m in self.moves)


def _forfeit_returns(n: int, loser: int) -> list[float]:
    if n == 2:
        return [1.0 if p != loser else -1.0 for p in range(2)]
    return [-1.0 if p == loser else 0.0 for p in range(n)]


class MoveInterrupted(BaseException):
    """Raised inside an agent's ``act`` by the hard move deadline (a BaseException, so an agent's
    ``except Exception`` cannot swallow it)."""


class _CompileWatch:
    """Whether the main thread is inside numba's compiler right now, from numba's event API.

    An exception raised inside numba's compiler leaves the half-built function behind ("no compiled
    object yet for <Library ...>" on every later call), so the move alarm must not land there.
    ``numba:compiler_lock`` spans the whole of a dispatcher's compile: loading from the cache,
    compiling (the narrower ``numba:compile``, also watched) and saving to the cache.  Registered
    once per process; a call into already-compiled code fires no event, so moves pay nothing.
    ``pending`` is an alarm that went off during a compile: it is raised again once the outermost
    compile has ended.
    """

    KINDS = ("numba:compiler_lock", "numba:compile")
    depth = 0
    pending: "_Alarm | None" = None
    _installed = False

    @classmethod
    def install(cls) -> None:
        if cls._installed:
            return
        cls._installed = True
        try:
            from numba.core import event
        except ImportError:  # no numba: nothing compiles
            return
        main = threading.main_thread().ident

        class Listener(event.Listener):
            def on_start(self, ev) -> None:  # noqa: ANN001
                if threading.get_ident() == main:
                    cls.depth += 1

            def on_end(self, ev) -> None:  # noqa: ANN001
                if threading.get_ident() != main:
                    return
                cls.depth = max(0, cls.depth - 1)
                if cls.depth == 0 and cls.pending is not None:
                    alarm, cls.pending = cls.pending, None
                    if alarm.armed:  # the compile is over: deliver the deferred interrupt now
                        signal.raise_signal(signal.SIGALRM)

        listener = Listener()
        for kind in cls.KINDS:
            event.register(kind, listener)


class _Alarm:
    """A per-move hard deadline through SIGALRM: interrupts Python code, sleeps and blocking I/O.

    Only usable in the main thread of a process (elsewhere it is a no-op and the caller must rely
    on an outside watchdog).  Native code that never returns to the interpreter is not interrupted;
    the arena's runner kills such a worker from outside (see plyground.arena.runner).  Never inside
    numba's compiler: an alarm that goes off there waits until the compile ends (``_CompileWatch``).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = (enabled and hasattr(signal, "setitimer")
                        and threading.current_thread() is threading.main_thread())
        self.armed = False
        self._old = None

    def _handler(self, signum, frame):  # noqa: ANN001
        if self.armed:
            if _CompileWatch.depth:
                _CompileWatch.pending = self
                return
            self.armed = False
            raise MoveInterrupted()

    def __enter__(self) -> "_Alarm":
        if self.enabled:
            _CompileWatch.install()
            self._old = signal.signal(signal.SIGALRM, self._handler)
        return self

    def arm(self, seconds: float) -> None:
        if self.enabled:
            _CompileWatch.depth = 0  # (the game loop is never inside a compile: drop any count a
            _CompileWatch.pending = None  # compile unwound by an exception left behind)
            self.armed = True
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))

    def disarm(self) -> None:
        if self.enabled:
            self.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            if _CompileWatch.pending is self:
                _CompileWatch.pending = None

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.disarm()
            signal.signal(signal.SIGALRM, self._old if self._old is not None else signal.SIG_DFL)


def play_game(game, agents: Sequence, seed: int | None = None, move_time: float | None = None,
              max_plies: int | None = None, opening: Sequence[int] = (), grace: float | None = None,
              on_move: Callable[[int, int], None] | None = None) -> GameResult:
    """Play ``agents`` (one per seat, seat 0 moves first) to the end, after the ``opening`` actions.

    An agent that raises, overruns ``move_time`` (the agent is told the limit as its clock) or
    returns an illegal action forfeits; its opponent gets +1, it gets -1.  With ``grace`` set, an
    agent still thinking ``move_time + grace`` seconds into its move is interrupted (SIGALRM, main
    thread only) and forfeits on time; its seat is listed in ``result.broken_seats``.
    ``on_move(ply, seat)`` is called before each agent move (a progress hook).
    An ``InfrastructureError`` from an agent is not the agent's fault: it propagates to the caller.
    ``max_plies`` counts opening plies too; reaching it ends the game as a draw (``max_plies``).
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
    for action in opening:
        player = state.current_player()
        legal = state.legal_actions()
        if action not in legal:
            raise PlygroundError(f"opening action {action!r} at ply {ply} is illegal in {game.name}; legal: {legal}")
        result.moves.append(MoveRecord(ply, int(player), int(action), state.action_to_string(action), 0.0,
                                       {"opening": True}))
        state.apply_action(action)
        ply += 1
    hard = move_time is not None and grace is not None
    with _Alarm(hard) as alarm:
        while not state.is_terminal():
            if max_plies is not None and ply >= max_plies:
                result.termination, result.detail = MAX_PLIES, f"stopped after {max_plies} plies"
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
            if on_move is not None:
                on_move(ply, player)
            t = time.perf_counter()
            try:
                if hard:
                    alarm.arm(move_time + grace)
                decision = agent.act(player_view(state, player), clock=move_time)
                alarm.disarm()
            except MoveInterrupted:
                alarm.disarm()
                elapsed = time.perf_counter() - t
                result.termination = TIMEOUT
                result.detail = (f"seat {player} ({agent.spec}) was still thinking after {elapsed:.3f}s "
                                 f"(limit {move_time}s + grace {grace}s) and was interrupted")
                result.returns = _forfeit_returns(n, player)
                result.broken_seats.append(player)
                break
            except InfrastructureError:
                alarm.disarm()
                raise
            except Exception as exc:  # noqa: BLE001 - a broken agent forfeits, it never stops the match
                alarm.disarm()
                result.termination = ERROR
                tb = traceback.format_exc(limit=-3).strip().splitlines()
                result.detail = (f"seat {player} ({agent.spec}) raised {type(exc).__name__}: {exc}\n"
                                 + "\n".join(tb[-6:]))
                result.returns = _forfeit_returns(n, player)
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
    result.plies = ply
    result.ended = time.time()
    return result
