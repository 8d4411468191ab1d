"""Running a tournament: games in worker processes (local pool or Ray), results recorded by the parent.

Design
------
* One function, ``run_game_task(task) -> dict``, plays one scheduled game and returns the game row
  and its moves.  The parent submits it either to a ``concurrent.futures.ProcessPoolExecutor``
  (``backend="local"``, spawn context) or as ``ray.remote`` tasks (``backend="ray"``); everything
  else — scheduling, retries, deadlines, recording — is the same code.
* Agents are built inside the worker from their spec (never pickled live) and cached there across
  games; before every game they are ``reset`` with a seed derived from the tournament seed and the
  game id, so a result does not depend on the worker or the order.  When several workers share the
  machine, agents with an ``n_threads`` parameter the config leaves unset get ``n_threads=1``.
* Warm-up: compiling is never thinking time.  A worker warms each agent up (``Agent.warm_up(game)``:
  numba kernels compiled or loaded from the cache, models loaded) once per (agent cache key, game)
  before that agent's first move in the process, and the game's own rules kernels when it first makes
  the game.  It reports SETUP meanwhile (with the seat being warmed in the seat field), so the
  parent's ``setup_timeout`` covers it, not the move backstop, and ``RunStatus.warming`` counts the
  workers doing it.  An agent whose warm-up raises forfeits that game, as one that cannot be built.
* The parent alone writes SQLite.  Games that finish less often than every 2 ms (all but the
  fastest agents) are committed one by one as they end.  Faster ones get a group commit: they wait
  in memory and are written together in ONE transaction when ``commit_games`` (64) are pending or
  the oldest has waited ``commit_seconds`` (0.2 s), and always before ``run_tournament`` returns
  or raises (an exception, Ctrl-C, SIGTERM/SIGHUP).  A game and all its moves are always in the same transaction,
  never split.  Workers hand back each game as plain tuples ready for ``Record.write_games`` (row
  with its JSON columns encoded, moves with the statistics as JSON), so the parent does no
  per-move work.  With ``should_stop`` every game is committed on its own before the check.
* Crash bound: a SIGKILL (or power loss) of the parent loses at most the finished games not yet
  committed (at most ``commit_games``, at most ``commit_seconds`` old) plus the games in flight
  (at most two submissions per worker).  None of them is in the record, so resuming replays them
  (deterministic agents replay them identically): no game is lost from the schedule and none is
  recorded twice.  Fast games (random vs random) go to a worker in chunks (enough for ~0.1 s, at
  most 64; one at a time when ``should_stop`` is given or games take over 50 ms) so the
  per-message cost is shared; each is still its own result.
* Faults are results.  An agent that raises, answers late or plays an illegal move forfeits
  (``arena.match.play_game``).  Hung agents meet two deadlines:
  1. in the worker, SIGALRM at ``move_time + grace`` interrupts the move (Python code, sleeps,
     blocking I/O; never inside numba's compiler, where it waits for the compile to end, see
     ``arena.match``): the game is recorded ``timeout`` and the worker retires (below);
  2. a backstop in the parent for code that never returns to the interpreter (native loops, a
     blocked signal): workers report the start of every move (shared memory locally, a small Ray
     actor on Ray); a move still running ``move_time + 2 * grace + 1`` seconds after it began gets
     its worker killed (SIGKILL locally, which also breaks the pool: the other games in flight are
     resubmitted on a fresh pool and replay identically; ``ray.cancel(force=True)`` on Ray) and the
     game is recorded ``timeout`` against the seat that was thinking (its moves are lost with the
     worker).  A worker that builds its agents for longer than ``setup_timeout`` is killed likewise
     and the game is recorded ``aborted``.
* Retirement: an interrupted move may leave its process in a bad state (a lock held, a half-built
  numba function, a C library mid-call), so the worker that played it plays no more games.  Its
  result says so (``retiring``); games left in its submission come back ``SKIPPED`` and are submitted
  again (none is lost, none recorded twice).  The worker leaves after sending that result and a fresh
  process takes its place; the other workers and their games in flight are untouched:
  - local: each pool worker wraps the pool's result sender so that a retiring worker's result carries
    its pid as ``exit_pid``, the pool's own "this worker leaves" signal (the ``max_tasks_per_child``
    path of ``concurrent.futures``), then exits; the pool's manager thread reaps it and starts a
    replacement, which takes over the progress slot it freed (``_Pool`` stops replacing once the
    pool is shut down);
  - Ray: the remote function has a (huge) ``max_calls``, and a retiring worker sets its own count
    one short of it, so Ray ends that worker process after storing the task's result, as it does at
    ``max_calls``; where Ray keeps no such count the worker exits at the start of its next task
    instead (that task fails as a crash and its games are replayed).
  ``RunSummary.retired`` counts the replaced workers.
* ``InfrastructureError`` from an agent (an LLM endpoint down) is not the agent's fault: the game
  is retried after ``backoff``, ``2*backoff``, ... seconds, ``retries`` times; then it is recorded
  ``aborted`` (unrated).  A worker process that dies while playing makes its games suspects:
  they are replayed one at a time, and a game that kills its worker three times is ``aborted``.
* ``should_stop(record) -> bool`` is called after every committed game; once true no new game is
  submitted, the running ones finish and are recorded, and ``run_tournament`` returns.
* ``progress(status)`` is rate-limited to 10 calls a second (plus one at the end); ``status.done``
  counts committed games.
"""

from __future__ import annotations

import heapq
import os
import queue as queue_mod
import signal
import sys
import threading
import time
import traceback
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from plyground.arena.config import TournamentConfig
from plyground.arena.record import GAME_COLUMNS, Record, dumps_json, now_iso
from plyground.arena.schedule import ScheduledGame, schedule, score_by_seat, swiss_round, total_games
from plyground.games.errors import InfrastructureError, PlygroundError

SETUP_TIMEOUT = 600.0   # seconds a worker may spend building agents before it is presumed hung
MAX_CRASHES = 3         # a game whose worker process dies this many times is recorded aborted
COMMIT_GAMES = 64       # group commit: at most this many finished games per transaction ...
COMMIT_SECONDS = 0.2    # ... and none waits longer than this for its commit; and only while games
SOLO_INTERVAL = 0.002   # finish more often than every 2 ms (else each game is committed as it ends)
CHUNK_SECONDS = 0.1     # very fast games go to a worker in chunks of about this much play ...
MAX_CHUNK = 64          # ... and at most this many games (each chunk costs the parent ~1 ms of thread hand-offs)
STATUS_INTERVAL = 0.1   # seconds between progress callbacks (10 Hz)
_SHUTDOWN_WAIT = 30.0   # seconds to wait for killed workers to be gone, then for the pool's thread


# ---------------------------------------------------------------------------------------------
# the task a worker runs

@dataclass(frozen=True)
class Seat:
    """One seat of a task: the agent's spec as configured, its player id and display name (``key``:
    the worker's agent-cache key, filled in by the runner so workers need not compute it per game)."""

    spec: Any
    player: str
    name: str
    key: str = ""


@dataclass(frozen=True)
class GameTask:
    """Everything a worker needs to play one scheduled game (plain data, picklable)."""

    id: str
    tournament: str
    round: int
    pair: int | None
    game: str
    seats: tuple[Seat, ...]
    seed: int
    opening: tuple[int, ...]
    move_time: float | None
    grace: float
    max_plies: int | None
    hints: tuple[tuple[str, Any], ...] = ()
    serial: int = 0


_GAMES: dict[str, Any] = {}
_AGENTS: dict[str, Any] = {}
_WARM: set[tuple[str, str]] = set()  # (agent cache key, game) pairs whose agent has warmed up for that game
_RETIRING = False           # a move was interrupted in this process: it plays no more games
_BOARD: Any = None          # local: a shared double array; ray: an actor handle
_SLOT: int = -1
_FIELDS = 5                 # per worker slot: pid, serial, ply, seat, wall time the move started
SETUP, UNTIMED = -1, -2     # "plies" reported while building agents / while playing without a move limit
# (during SETUP the seat field is -1 while building, the seat's index while that seat warms up)


def _init_local_worker(board: Any, lock: Any) -> None:
    """ProcessPoolExecutor initializer: claim a free progress slot (a replacement worker takes the one
    its retired predecessor freed); die with the parent; retire after a result when asked to."""
    global _BOARD, _SLOT
    _BOARD = board
    with lock:
        for k in range(len(board) // _FIELDS):
            if board[k * _FIELDS] <= 0:
                _SLOT = k
                board[k * _FIELDS + 1] = -1.0
                board[k * _FIELDS] = os.getpid()
                break
    _die_with_parent()
    _exit_after_result_when_retiring()


def _exit_after_result_when_retiring() -> None:
    """Make this pool worker end itself once it has sent the result of a task that set ``_RETIRING``.

    The pool's worker loop sends each result through ``concurrent.futures.process._sendback_result``;
    a result carrying ``exit_pid`` is the pool's own signal that the worker is leaving (the path of
    ``max_tasks_per_child``): the pool's manager thread then reaps the process and starts a fresh one,
    and the other workers and their games are untouched.  This wraps that function in this worker
    process only, so that a retiring worker's result carries its pid and the worker exits right after
    sending it (the loop would otherwise read the next task)."""
    import inspect
    from concurrent.futures import process as cf

    send = getattr(cf, "_sendback_result", None)
    if send is None or "exit_pid" not in inspect.signature(send).parameters:
        return  # another pool implementation: a retiring worker goes on playing (the old behaviour)

    def sendback(result_queue, work_id, result=None, exception=None, exit_pid=None):  # noqa: ANN001
        if not _RETIRING:
            return send(result_queue, work_id, result=result, exception=exception, exit_pid=exit_pid)
        _leave()
        send(result_queue, work_id, result=result, exception=exception, exit_pid=os.getpid())
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    cf._sendback_result = sendback


def _leave() -> None:
    """A retiring worker's last acts: close its agents and free its progress slot for its successor."""
    for key in list(_AGENTS):
        _evict(key)
    board, base = _BOARD, _SLOT * _FIELDS
    if board is not None and not hasattr(board, "report") and 0 <= base < len(board):
        board[base + 1] = -1.0
        board[base] = -1.0


def _die_with_parent() -> None:
    try:  # Linux: SIGKILL this worker when the parent dies, so a killed tournament leaves no orphans
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _report(serial: int, ply: int, seat: int, started: float | None = None) -> None:
    board = _BOARD
    if board is None:
        return
    if started is None:
        started = time.time()
    if hasattr(board, "report"):  # a Ray actor handle
        board.report.remote(serial, ply, seat, started, os.getpid())
        return
    base = _SLOT * _FIELDS
    if 0 <= base < len(board):
        board[base + 3] = seat
        board[base + 2] = ply
        board[base + 4] = started
        board[base + 1] = serial
        board[base] = os.getpid()


def _agent_key(spec: Any, hints: dict) -> str:
    from plyground.arena.record import canonical_json
    return canonical_json([spec, hints])


def _build_agent(spec: Any, hints: dict):
    from plyground import agents
    from plyground.agents.params import parse_spec
    name, given = parse_spec(spec)
    cls = agents.AGENTS.get(name)
    extra = {k: v for k, v in hints.items() if cls is not None and k in cls.PARAMS and k not in given}
    return agents.make(spec, **extra)


def check_agents(cfg: TournamentConfig) -> None:
    """Refuse a tournament before its first game if one of its agents cannot play its game:
    ``UnsupportedGameError`` naming the agent and what the game has that the agent does not support.
    Builds each agent in this process only to ask it (building loads no model, compiles nothing)."""
    from plyground import games
    from plyground.games.errors import UnsupportedGameError
    game = games.make(cfg.game)
    for a in cfg.agents:
        agent = _build_agent(a.spec, {})
        try:
            agent.check_game(game)
        except UnsupportedGameError as e:
            raise UnsupportedGameError(f"agent {a.name!r} cannot play {cfg.game}: {e}") from None
        finally:
            agent.close()


def _get_agent(spec: Any, hints: dict, taken: set[str], key: str = ""):
    key = key or _agent_key(spec, hints)
    if key in taken:  # the same spec in both seats: a second instance
        key += "#2"
    taken.add(key)
    agent = _AGENTS.get(key)
    if agent is None:
        agent = _AGENTS[key] = _build_agent(spec, hints)
    return key, agent


def _evict(key: str) -> None:
    for pair in [p for p in _WARM if p[0] == key]:
        _WARM.discard(pair)
    agent = _AGENTS.pop(key, None)
    if agent is not None:
        try:
            agent.close()
        except Exception:  # noqa: BLE001 - a broken agent may fail to close; it is dropped anyway
            pass


# What a worker hands back per game: plain tuples, cheap to pickle, and ready for Record.write_games
# (the game row in GAME_COLUMNS order with its JSON columns encoded, the moves with the game id), so
# the parent never touches a move:
#   (DONE, row, moves, seconds, returns, retiring) | (INFRA, message, seconds) | (FAILED, message, seconds)
#   | (SKIPPED, message, seconds): not played, the worker retired first (the parent submits it again)
DONE, INFRA, FAILED, SKIPPED = "done", "infra", "error", "skipped"


def run_game_task(task: GameTask) -> tuple:
    """Play one scheduled game in this process; returns ``(DONE, row, moves, returns, retiring)``
    (``row`` a ``Record.write_games`` tuple, ``moves`` its move tuples, ``retiring`` true when a move
    was interrupted and this process must play no more games), or ``(INFRA, message)`` when an
    infrastructure error stopped it (the parent retries).  Before a seat's first move in this
    process on this game its agent warms up (``Agent.warm_up``), reported as SETUP."""
    global _RETIRING
    from plyground import games
    from plyground.arena.match import ERROR, play_game

    hints = dict(task.hints)
    t0 = time.time()
    _report(task.serial, SETUP, -1, t0)
    game = _GAMES.get(task.game)
    if game is None:
        game = games.make(task.game)
        warm_rules = getattr(game, "warm_up", None)  # the rules kernels every agent's moves call
        if warm_rules is not None:
            warm_rules()
        _GAMES[task.game] = game
    taken: set[str] = set()
    keys, seats = [], []
    for i, seat in enumerate(task.seats):
        try:
            key, agent = _get_agent(seat.spec, hints, taken, seat.key)
        except InfrastructureError as e:
            return (INFRA, f"building seat {i} ({seat.name}): {e}")
        except Exception as e:  # noqa: BLE001 - an agent that cannot be built forfeits
            returns = [1.0, -1.0] if i == 1 else [-1.0, 1.0]
            detail = f"seat {i} ({seat.name}) could not be built: {type(e).__name__}: {e}"
            return (DONE, _row(task, returns, ERROR, detail, 0, t0, time.time()), [], returns, False)
        keys.append(key)
        seats.append(agent)
    for i, (key, agent) in enumerate(zip(keys, seats)):
        if (key, task.game) in _WARM:
            continue
        _report(task.serial, SETUP, i, t0)  # still SETUP (the setup timeout applies), warming seat i
        try:
            agent.warm_up(game)
        except InfrastructureError as e:
            return (INFRA, f"warming up seat {i} ({task.seats[i].name}): {e}")
        except Exception as e:  # noqa: BLE001 - an agent that cannot warm up forfeits, as one that cannot be built
            _evict(key)
            returns = [1.0, -1.0] if i == 1 else [-1.0, 1.0]
            detail = f"seat {i} ({task.seats[i].name}) could not warm up: {type(e).__name__}: {e}"
            return (DONE, _row(task, returns, ERROR, detail, 0, t0, time.time()), [], returns, False)
        _WARM.add((key, task.game))
    if task.move_time is not None:
        def on_move(ply: int, seat: int) -> None:
            _report(task.serial, ply, seat)
    else:
        on_move = None
        _report(task.serial, UNTIMED, -1)
    try:
        res = play_game(game, seats, seed=task.seed, move_time=task.move_time, max_plies=task.max_plies,
                        opening=task.opening, grace=task.grace, on_move=on_move)
    except InfrastructureError as e:
        return (INFRA, str(e))
    finally:
        _report(-1, 0, 0)
    for s in res.broken_seats:
        _evict(keys[s])
    if res.broken_seats:  # an interrupted move may leave anything half-done (a lock, numba, a C library)
        _RETIRING = True
    # compact rows with the decisions already JSON: the encoding happens in the (parallel) workers
    gid, enc = task.id, dumps_json
    moves = [(gid, m.ply, m.player, m.action, m.text, m.think_time, enc(m.decision)) for m in res.moves]
    returns = [float(r) for r in res.returns]
    row = _row(task, returns, res.termination, res.detail, res.plies, res.started, res.ended)
    return (DONE, row, moves, returns, _RETIRING)


def run_game_tasks(tasks: list[GameTask]) -> list[tuple]:
    """Play several games in a row (one message each way for very fast games); each result is
    ``run_game_task``'s tuple plus the seconds it took, and an internal error in one game becomes
    ``(FAILED, message, seconds)`` for that game only.  Once this process is retiring, the games
    left are handed back unplayed, ``(SKIPPED, message, 0.0)``."""
    out = []
    clock = time.perf_counter
    for task in tasks:
        if _RETIRING:
            out.append((SKIPPED, "not played: a move was interrupted in this worker, which retired", 0.0))
            continue
        t = clock()
        try:
            res = run_game_task(task)
        except Exception as e:  # noqa: BLE001 - reported to the parent, which records the game aborted
            res = (FAILED, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-4)}")
        out.append(res[:3] + (clock() - t,) + res[3:] if res[0] == DONE else res + (clock() - t,))
    return out


def _row(task: GameTask, returns: list[float], termination: str, detail: str, plies: int, started: float,
         ended: float) -> tuple:
    """The game's row as a ``Record.write_games`` tuple (GAME_COLUMNS order, JSON columns encoded)."""
    return (task.id, task.tournament, task.round, task.pair, task.game,
            dumps_json([s.player for s in task.seats]), dumps_json([float(r) for r in returns]),
            termination, detail, 0 if termination == "aborted" else 1, task.seed, dumps_json(list(task.opening)),
            plies, now_iso(started), now_iso(ended))


def _row_dict(row: tuple) -> dict:
    """A recorded row tuple as the dict ``Record.games`` would return (JSON columns decoded)."""
    import json
    d = dict(zip(GAME_COLUMNS, row))
    for c in ("players", "returns", "opening"):
        if isinstance(d.get(c), str):
            d[c] = json.loads(d[c])
    return d


# ---------------------------------------------------------------------------------------------
# backends: the same task function, two ways to run it

class _Crashed(Exception):
    """A worker died under a game (not an agent fault the game could record)."""


class _Pool(ProcessPoolExecutor):
    """The process pool.  Its manager thread replaces a worker that left after a result (a retiring
    worker, see ``_exit_after_result_when_retiring``) through ``_adjust_process_count``.  Here it
    always does: the stdlib skips the replacement while its count of idle workers is positive, and
    when no task is submitted after that (the end of a run) the workers still alive may retire too,
    leaving queued games with no process at all.  Once ``closing()`` has been called it replaces
    none: a replacement started while the workers are being killed would outlive them, and
    ``shutdown(wait=False)`` empties the process table under the manager thread."""

    _closing = False

    def closing(self) -> None:
        with self._shutdown_lock:  # the lock the manager thread holds while it replaces a worker
            self._closing = True

    def _adjust_process_count(self) -> None:
        if self._closing:
            return
        if threading.current_thread() is getattr(self, "_executor_manager_thread", None):
            if len(self._processes) < self._max_workers:  # a worker left: start its successor
                self._spawn_process()
            return
        super()._adjust_process_count()


class LocalBackend:
    """A spawn-context ProcessPoolExecutor plus a shared-memory board of moves in progress."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._start()

    def _start(self) -> None:
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        self._finished: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
        self.board = ctx.Array("d", [-1.0] * (self.workers * _FIELDS), lock=False)
        slots = ctx.Lock()  # guards the claiming of progress slots
        self.pool = _Pool(self.workers, mp_context=ctx, initializer=_init_local_worker,
                          initargs=(self.board, slots))

    def submit(self, tasks: list[GameTask]):
        return self.call(run_game_tasks, tasks)

    def call(self, fn: Callable, *args: Any):
        """Run ``fn(*args)`` (a picklable module-level function) in a worker; a handle for ``wait``/``result``."""
        fut = self.pool.submit(fn, *args)
        fut.add_done_callback(self._finished.put)
        return fut

    def wait(self, handles: list, timeout: float) -> list:
        """Finished futures among ``handles`` (a done-callback queue: cheaper than futures.wait per game)."""
        wanted = set(handles)
        out = []
        try:
            item = self._finished.get(timeout=timeout)
            while True:
                if item in wanted:
                    out.append(item)
                item = self._finished.get_nowait()
        except queue_mod.Empty:
            pass
        return out

    def result(self, handle) -> dict:
        from concurrent.futures.process import BrokenProcessPool
        try:
            return handle.result()
        except BrokenProcessPool as e:
            raise _Crashed(f"worker process died ({e})") from None

    def moves_in_progress(self) -> dict[int, tuple[int, int, float, int]]:
        """serial -> (ply, seat, wall time the move started, worker pid)."""
        out = {}
        b = list(self.board)
        for k in range(self.workers):
            pid, serial, ply, seat, t = b[k * _FIELDS:(k + 1) * _FIELDS]
            if serial >= 0 and pid > 0:
                out[int(serial)] = (int(ply), int(seat), t, int(pid))
        return out

    def worker_pids(self) -> list[int]:
        return [p.pid for p in (getattr(self.pool, "_processes", None) or {}).values()]

    def kill(self, handle, pid: int | None) -> bool:
        """Kill the worker running ``handle`` (the pool breaks; ``restart`` it). True if it needs a restart."""
        targets = [pid] if pid else self.worker_pids()
        for p in targets:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return True

    def restart(self) -> None:
        self.shutdown()
        self._start()

    def shutdown(self) -> None:
        """Kill the workers and stop the pool without waiting on it.

        A worker killed while it sends a result leaves half a message in the pool's result pipe,
        and the pool's manager thread then waits for the rest forever (so would
        ``pool.shutdown(wait=True)``, and the interpreter's exit).  Once every worker is gone,
        closing this process's copy of that pipe's write end ends the wait: the thread reads
        end-of-file, counts the pool as broken and exits."""
        from multiprocessing.connection import wait as wait_ready
        pool = self.pool
        pool.closing()  # no retired worker is replaced from here on
        procs = list((getattr(pool, "_processes", None) or {}).values())
        for p in procs:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pending = [p.sentinel for p in procs]
        deadline = time.monotonic() + _SHUTDOWN_WAIT
        while pending and time.monotonic() < deadline:
            done = wait_ready(pending, timeout=deadline - time.monotonic())
            pending = [s for s in pending if s not in done]
        thread = getattr(pool, "_executor_manager_thread", None)
        writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
        pool.shutdown(wait=False, cancel_futures=True)
        if writer is not None and not pending:
            writer.close()
        if thread is not None:
            thread.join(timeout=_SHUTDOWN_WAIT)


class RayBackend:
    """``ray.remote`` tasks; a tiny actor collects move starts for the backstop deadline."""

    name = "ray"

    def __init__(self, workers: int) -> None:
        import ray
        self.ray = ray
        self.started_ray = False
        if not ray.is_initialized():
            if os.environ.get("RAY_ADDRESS"):
                ray.init(address=os.environ["RAY_ADDRESS"], include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            self.started_ray = True
        self._remote = ray.remote(num_cpus=1, max_retries=0, max_calls=_RAY_MAX_CALLS)(_ray_run_game_tasks)
        self.board = ray.remote(num_cpus=0)(_RayBoard).remote()
        self._calls: dict[Callable, Any] = {}

    def submit(self, tasks: list[GameTask]):
        return self._remote.remote(tasks, self.board)

    def call(self, fn: Callable, *args: Any):
        """Run ``fn(*args)`` as a Ray task (one CPU); a handle for ``wait``/``result``."""
        remote = self._calls.get(fn)
        if remote is None:
            remote = self._calls[fn] = self.ray.remote(num_cpus=1, max_retries=0)(fn)
        return remote.remote(*args)

    def wait(self, handles: list, timeout: float) -> list:
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        if done:  # take every finished one
            more, _ = self.ray.wait(handles, num_returns=len(handles), timeout=0)
            done = list({id(h): h for h in done + more}.values())
        return done

    def result(self, handle) -> dict:
        from ray.exceptions import RayError, RayTaskError
        try:
            return self.ray.get(handle)
        except RayTaskError as e:  # an exception inside run_game_task: re-raise the original
            raise e.as_instanceof_cause() from None
        except RayError as e:
            raise _Crashed(f"ray worker failed: {type(e).__name__}: {e}") from None

    def moves_in_progress(self) -> dict[int, tuple[int, int, float, int]]:
        return self.ray.get(self.board.snapshot.remote())

    def kill(self, handle, pid: int | None) -> bool:
        self.ray.cancel(handle, force=True)
        return False

    def restart(self) -> None:
        pass

    def shutdown(self) -> None:
        if self.started_ray:
            self.ray.shutdown()


_RAY_MAX_CALLS = 1 << 30   # tasks a Ray worker may run (in effect unlimited; set so that one can retire)
_RAY_EXIT_NOW = False       # a retiring Ray worker that could not arrange a clean exit leaves at its next task


def _ray_run_game_tasks(tasks: list[GameTask], board: Any) -> list[dict]:
    global _BOARD, _RAY_EXIT_NOW
    if _RAY_EXIT_NOW:  # the task fails as a worker crash: the parent replays its games (none is lost)
        os._exit(1)
    if _BOARD is None:
        _die_with_parent()
    _BOARD = board
    out = run_game_tasks(tasks)
    if _RETIRING:
        _leave()
        _RAY_EXIT_NOW = not _ray_exit_after_this_task()
    return out


def _ray_exit_after_this_task() -> bool:
    """Have Ray end this worker process once the running task's result is stored, as it does when a
    worker reaches a remote function's ``max_calls``: Ray counts each function's executions per worker
    after the task returns, so a count one short of the limit ends the worker after this task, with
    its result delivered.  Ray keeps that count in its worker's function manager (not a public API):
    False if this Ray has none, and the worker then leaves at its next task instead."""
    try:
        import ray
        manager = ray._private.worker.global_worker.function_actor_manager
        counts = manager._num_task_executions
        found = False
        for fid, info in list(manager._function_execution_info.items()):
            if getattr(info, "max_calls", None) == _RAY_MAX_CALLS:
                counts[fid] = _RAY_MAX_CALLS - 1
                found = True
        return found
    except Exception:  # noqa: BLE001 - any other layout: fall back to leaving at the next task
        return False


class _RayBoard:
    def __init__(self) -> None:
        self.moves: dict[int, tuple[int, int, float, int]] = {}

    def report(self, serial: int, ply: int, seat: int, t: float, pid: int) -> None:
        if serial < 0:
            self.moves = {k: v for k, v in self.moves.items() if v[3] != pid}
        else:
            self.moves[serial] = (ply, seat, t, pid)

    def snapshot(self) -> dict:
        return dict(self.moves)


def make_backend(name: str, workers: int):
    """``local`` (a process pool) or ``ray``."""
    if name == "local":
        return LocalBackend(workers)
    if name == "ray":
        return RayBackend(workers)
    raise PlygroundError(f"unknown backend {name!r}; allowed: local, ray")


# ---------------------------------------------------------------------------------------------
# the parent

@dataclass
class RunStatus:
    """Progress of a run, handed to the ``progress`` callback."""

    total: int
    done: int
    running: int
    leader: str = ""
    last: dict | None = None
    pending: int = 0        # finished games waiting for the next commit (not yet in ``done``)
    warming: int = 0        # workers warming up an agent (compiling kernels, loading models) right now


@dataclass
class RunSummary:
    """What a run did (``record_seconds``: the wall time of each commit; ``commits``: (monotonic time,
    games recorded by this run so far) after each commit)."""

    tournament_id: str
    total: int
    already_done: int
    played: int = 0
    aborted: int = 0
    retries: int = 0
    crashes: int = 0
    killed: int = 0
    retired: int = 0        # workers replaced by a fresh process after a move was interrupted in them
    stopped_early: bool = False
    max_batch: int = 1
    wall: float = 0.0
    record_seconds: list[float] = field(default_factory=list)
    commits: list[tuple[float, int]] = field(default_factory=list)

    @property
    def record_ms_per_game(self) -> float:
        """Mean time the parent spent writing one game (with its moves), in milliseconds."""
        return 1000 * sum(self.record_seconds) / max(1, self.played)


def register(cfg: TournamentConfig, rec: Record) -> tuple[str, list[Seat]]:
    """Write the tournament and its players to the record; returns the tournament id and the seats."""
    tid = cfg.id
    rec.upsert_tournament(tid, cfg.name, cfg.game, cfg.format, cfg.seed, cfg.to_dict())
    seats = [Seat(spec=a.spec, player=rec.upsert_player(a.name, a.canonical, a.config), name=a.name)
             for a in cfg.agents]
    return tid, seats


class _Terminated(SystemExit):
    """SIGTERM/SIGHUP during a run: unwinds like Ctrl-C so the pending games are committed first."""


def _on_terminate(signum, frame) -> None:  # noqa: ANN001
    raise _Terminated(128 + signum)


def _catch_termination() -> dict:
    """Turn SIGTERM/SIGHUP into an exception while a run is in progress (main thread, default handlers
    only), so ``finally`` blocks commit what is pending; returns the handlers to restore."""
    import threading
    old: dict = {}
    if threading.current_thread() is not threading.main_thread():
        return old
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            old[sig] = signal.signal(sig, _on_terminate)
    return old


def run_tournament(cfg: TournamentConfig, db: str | Path | Record, workers: int = 1, backend: str = "local",
                   should_stop: Callable[[Record], bool] | None = None,
                   progress: Callable[[RunStatus], None] | None = None,
                   setup_timeout: float = SETUP_TIMEOUT, commit_games: int = COMMIT_GAMES,
                   commit_seconds: float = COMMIT_SECONDS) -> RunSummary:
    """Play (or resume) the tournament ``cfg`` into the record ``db`` and return a summary.

    Games already recorded for this tournament are skipped; the rest are played on ``workers``
    processes (``backend`` "local" or "ray").  Finished games are committed as they end, or, when
    they end more often than every 2 ms, in groups of up to ``commit_games`` at least every
    ``commit_seconds``; always before returning (also on an exception, Ctrl-C or SIGTERM).  With
    ``should_stop`` every game is committed at once and ``should_stop(record)`` is checked after each.
    ``progress(status)`` is called at most 10 times a second while games run, and once at the end.
    """
    if workers < 1:
        raise PlygroundError(f"workers must be at least 1; got {workers}")
    if commit_games < 1:
        raise PlygroundError(f"commit_games must be at least 1; got {commit_games}")
    if not commit_seconds >= 0:
        raise PlygroundError(f"commit_seconds must be >= 0; got {commit_seconds}")
    check_agents(cfg)
    rec = db if isinstance(db, Record) else Record(db)
    t0 = time.monotonic()
    handlers = _catch_termination()
    try:
        tid, seats = register(cfg, rec)
        finished = rec.finished_ids(tid)
        total = total_games(cfg)
        summary = RunSummary(tournament_id=tid, total=total, already_done=len(finished))
        hints = (("n_threads", 1),) if workers > 1 else ()
        runner = _Runner(cfg, rec, tid, seats, hints, workers, backend, should_stop, progress, summary, setup_timeout,
                         commit_games, commit_seconds)
        try:
            if cfg.format == "swiss":
                for rnd in range(cfg.rounds or 1):
                    results = {g["id"]: g["returns"] for g in rec.games(tid)}
                    todo = [g for g in swiss_round(cfg, rnd, results, tid) if g.id not in finished]
                    runner.drive(todo)
                    if summary.stopped_early:
                        break
            else:
                runner.drive([g for g in schedule(cfg, tid) if g.id not in finished])
        finally:
            runner.close()
        summary.wall = time.monotonic() - t0
        return summary
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
        if not isinstance(db, Record):
            rec.close()


class _Runner:
    def __init__(self, cfg, rec, tid, seats, hints, workers, backend, should_stop, progress, summary,
                 setup_timeout, commit_games=COMMIT_GAMES, commit_seconds=COMMIT_SECONDS) -> None:
        from dataclasses import replace
        self.cfg, self.rec, self.tid, self.hints = cfg, rec, tid, hints
        hint_dict = dict(hints)
        self.seats = [replace(s, key=_agent_key(s.spec, hint_dict)) for s in seats]
        self.workers, self.backend_name = workers, backend
        self.should_stop, self.progress, self.summary = should_stop, progress, summary
        self.setup_timeout = setup_timeout
        self.commit_games = 1 if should_stop is not None else commit_games
        self.commit_seconds = commit_seconds
        self.backend = None
        self.capacity = 2 * workers  # one submission queued per worker hides the parent's round trip
        self.game_s: float | None = None  # mean seconds per game in the workers (sets the chunk size)
        self.queue: deque = deque()
        self.serial = 0
        self.points: dict[str, list[float]] = {s.player: [0.0, 0] for s in seats}
        self.names = {s.player: s.name for s in seats}
        for g in rec.games(tid):
            self._score(g["players"], g["returns"], g.get("rated", 1))
        self.done = summary.already_done
        # group commit: finished games wait here (row, moves) until the next commit
        self.pending: list[tuple[tuple, list]] = []
        self.pending_meta: list[tuple[GameTask, list[float] | None]] = []
        self.pending_since = 0.0
        self.last_status = 0.0
        self.last_row: tuple | None = None

    def close(self) -> None:
        if self.backend is not None:
            self.backend.shutdown()
            self.backend = None

    def _score(self, players, returns, rated) -> None:
        if rated == 0:
            return
        p0, p1 = players
        s0, s1 = score_by_seat(returns)
        for p, s in ((p0, s0), (p1, s1)):
            if p in self.points:
                self.points[p][0] += s
                self.points[p][1] += 1

    def leader(self) -> str:
        best = max(self.points.items(), key=lambda kv: (kv[1][0] / max(kv[1][1], 1), kv[1][0]), default=None)
        if best is None or best[1][1] == 0:
            return ""
        pts, n = best[1]
        return f"{self.names[best[0]]} {pts:g}/{n}"

    def _task(self, g: ScheduledGame) -> GameTask:
        self.serial += 1
        return GameTask(id=g.id, tournament=self.tid, round=g.round, pair=g.pair, game=self.cfg.game,
                        seats=tuple(self.seats[i] for i in g.seats), seed=g.seed, opening=g.opening,
                        move_time=self.cfg.move_time, grace=self.cfg.grace, max_plies=self.cfg.max_plies,
                        hints=self.hints, serial=self.serial)

    def _status(self, running: int, force: bool = False) -> None:
        """Call ``progress``, at most 10 times a second unless ``force``."""
        if self.progress is None:
            return
        now = time.monotonic()
        if not force and now - self.last_status < STATUS_INTERVAL:
            return
        self.last_status = now
        last = None if self.last_row is None else _row_dict(self.last_row)
        self.progress(RunStatus(total=self.summary.total, done=self.done, running=running,
                                leader=self.leader(), last=last, pending=len(self.pending),
                                warming=self._warming() if running else 0))

    def _warming(self) -> int:
        """Workers whose report says SETUP with a seat: warming that seat's agent up."""
        try:
            progress = self.backend.moves_in_progress()
        except Exception:  # noqa: BLE001 - a progress display never stops the run
            return 0
        return sum(1 for ply, seat, _, _ in progress.values() if ply == SETUP and seat >= 0)

    def _record(self, task: GameTask, row: tuple, moves: list, returns: list[float] | None = None) -> None:
        """Queue a finished game for the next commit (with ``should_stop``: commit it at once)."""
        if not self.pending:
            self.pending_since = time.monotonic()
        self.pending.append((row, moves))
        self.pending_meta.append((task, returns))
        if len(self.pending) >= self.commit_games or self._solo():  # commit_games is 1 with should_stop
            self.commit()

    def _solo(self) -> bool:
        """Commit each game on its own while games finish less often than every SOLO_INTERVAL seconds
        (the per-commit cost is then negligible, and the record stays up to the game)."""
        return self.game_s is None or self.game_s >= SOLO_INTERVAL * self.workers

    def commit(self) -> None:
        """Write the pending games in one transaction (each game with all its moves)."""
        if not self.pending:
            return
        pending, meta = self.pending, self.pending_meta
        t = time.perf_counter()
        self.rec.write_games(pending, if_exists="ignore")  # all or nothing: on error the games stay pending
        self.pending, self.pending_meta = [], []
        summary = self.summary
        summary.record_seconds.append(time.perf_counter() - t)
        summary.played += len(pending)
        summary.commits.append((time.monotonic(), summary.played))
        self.done += len(pending)
        self.last_row = pending[-1][0]
        for (row, _), (task, returns) in zip(pending, meta):
            if row[7] == "aborted":
                summary.aborted += 1
            elif row[9] and returns is not None and len(task.seats) == 2:
                self._score((task.seats[0].player, task.seats[1].player), returns, 1)

    def _commit_due(self, now: float) -> bool:
        return bool(self.pending) and now - self.pending_since >= self.commit_seconds

    def _chunk_size(self, queued: int) -> int:
        """Games per submission: 1 for slow games (over CHUNK_SECONDS / 2 each); for fast ones enough to
        fill ~CHUNK_SECONDS, at most MAX_CHUNK, so the per-message cost is shared (never with should_stop,
        never starving the other workers)."""
        if self.should_stop is not None or self.game_s is None:
            return 1
        want = int(CHUNK_SECONDS / max(self.game_s, 1e-4))
        return max(1, min(MAX_CHUNK, want, queued // self.capacity))

    def drive(self, games: list[ScheduledGame]) -> None:
        """Play ``games`` to completion (or until should_stop), recording them as they finish; whatever
        happens, the finished games still pending are committed before this returns or raises."""
        try:
            self._drive(games)
        except BaseException:
            try:
                self.commit()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
            raise
        self.commit()
        self._status(0, force=True)

    def _drive(self, games: list[ScheduledGame]) -> None:
        if not games:
            return
        if self.backend is None:
            self.backend = make_backend(self.backend_name, self.workers)
        queue: deque[GameTask] = deque(self._task(g) for g in games)
        self.queue = queue
        retry_heap: list[tuple[float, int, GameTask]] = []
        attempts: dict[str, int] = {}
        crashes: dict[str, int] = {}
        suspects: set[str] = set()
        inflight: dict[Any, tuple[list[GameTask], float]] = {}
        stopping = False
        cfg = self.cfg
        while queue or retry_heap or inflight:
            now = time.monotonic()
            while retry_heap and retry_heap[0][0] <= now:
                queue.appendleft(heapq.heappop(retry_heap)[2])
            if stopping:
                queue.clear()
                retry_heap.clear()
            # a suspect (its worker died) runs alone, so a crash can be pinned on it
            while queue and len(inflight) < self.capacity:
                if suspects and any(t.id in suspects for ts, _ in inflight.values() for t in ts):
                    break
                if queue[0].id in suspects:
                    if inflight:
                        break
                    batch = [queue.popleft()]
                else:
                    batch = []
                    for _ in range(self._chunk_size(len(queue))):
                        if not queue or queue[0].id in suspects:
                            break
                        batch.append(queue.popleft())
                inflight[self.backend.submit(batch)] = (batch, time.monotonic())
                self.summary.max_batch = max(self.summary.max_batch, len(batch))
            if self._commit_due(now):
                self.commit()
            if not inflight:
                if retry_heap:
                    time.sleep(max(0.0, min(0.5, retry_heap[0][0] - time.monotonic())))
                continue
            self._status(self._running(inflight))
            timeout = 0.2
            if self.pending:
                timeout = min(timeout, max(0.0, self.pending_since + self.commit_seconds - now))
            done = self.backend.wait(list(inflight), timeout=timeout)
            broken = False
            skipped: list[GameTask] = []
            for h in done:
                batch, _ = inflight.pop(h)
                try:
                    outs = self.backend.result(h)
                except _Crashed as e:
                    broken = broken or self.backend.name == "local"
                    self.summary.crashes += 1
                    for task in reversed(batch):
                        if len(batch) == 1 and task.id in suspects:
                            crashes[task.id] = crashes.get(task.id, 0) + 1
                        if crashes.get(task.id, 0) >= MAX_CRASHES:
                            self._record(task, _row(task, [0.0, 0.0], "aborted",
                                              f"the worker process died {MAX_CRASHES} times playing this game: {e}",
                                              0, time.time(), time.time()), [])
                        else:
                            suspects.add(task.id)
                            queue.appendleft(task)
                    continue
                for task, out in zip(batch, outs):
                    status = out[0]
                    if status == SKIPPED:  # its worker retired before playing it: submitted again
                        skipped.append(task)
                        continue
                    if status == DONE:
                        g, m = out[3], self.game_s
                        # a moving average that falls fast (a worker's first game includes its start-up)
                        self.game_s = g if m is None else (0.5 * (m + g) if g < m else 0.8 * m + 0.2 * g)
                        row, moves, returns = out[1], out[2], out[4]
                        if len(out) > 5 and out[5]:  # the worker that played it is being replaced
                            self.summary.retired += 1
                    elif status == INFRA:
                        n = attempts[task.id] = attempts.get(task.id, 0) + 1
                        if n <= cfg.retries:
                            self.summary.retries += 1
                            delay = cfg.backoff * 2 ** (n - 1)
                            heapq.heappush(retry_heap, (time.monotonic() + delay, task.serial, task))
                            continue
                        row, moves, returns = _row(task, [0.0, 0.0], "aborted",
                                                   f"infrastructure error persisted after {cfg.retries} retries: "
                                                   f"{out[1]}", 0, time.time(), time.time()), [], None
                    else:  # an internal error in one game is recorded, not fatal
                        row, moves, returns = _row(task, [0.0, 0.0], "aborted", f"internal error: {out[1]}", 0,
                                                   time.time(), time.time()), [], None
                    if suspects:
                        suspects.discard(task.id)
                    self._record(task, row, moves, returns)
                    if not stopping and self.should_stop is not None and self.should_stop(self.rec):
                        stopping = True
                        self.summary.stopped_early = True
            queue.extendleft(reversed(skipped))
            if not broken:
                broken = self._check_deadlines(inflight)
            if broken:  # a local pool is unusable once one of its workers died: replay the rest
                for batch, _ in inflight.values():
                    queue.extendleft(reversed(batch))
                inflight.clear()
                self.backend.restart()

    @staticmethod
    def _running(inflight: dict) -> int:
        return sum(len(b) for b, _ in inflight.values())

    def _check_deadlines(self, inflight: dict) -> bool:
        """The backstop: kill workers stuck past every deadline; True if the local pool must restart."""
        if not inflight:
            return False
        now_m = time.monotonic()
        cfg = self.cfg
        limit = None if cfg.move_time is None else cfg.move_time + 2 * cfg.grace + 1.0
        first = self.setup_timeout if limit is None else min(limit, self.setup_timeout)
        # cheap filter first: nothing can be overdue before it has been submitted that long
        candidates = [(h, b) for h, (b, s) in inflight.items() if now_m - s > first]
        if not candidates:
            return False
        progress = self.backend.moves_in_progress()
        now = time.time()
        restart = False
        for h, batch in candidates:
            for task in batch:
                info = progress.get(task.serial)
                if info is not None:
                    break
            else:
                continue  # still queued
            ply, seat, started, pid = info
            if ply == SETUP and now - started > self.setup_timeout:
                returns = [0.0, 0.0]
                row = _row(task, returns, "aborted",
                           f"the worker spent over {self.setup_timeout:.0f}s building the agents and was killed",
                           0, started, now)
            elif ply >= 0 and limit is not None and now - started > limit:
                name = task.seats[seat].name
                returns = [1.0, -1.0] if seat == 1 else [-1.0, 1.0]
                detail = (f"seat {seat} ({name}) was still thinking {now - started:.1f}s into ply {ply} (limit "
                          f"{cfg.move_time}s + grace {cfg.grace}s) and could not be interrupted; its worker was "
                          "killed and the game's moves were lost with it")
                row = _row(task, returns, "timeout", detail, ply, started, now)
            else:
                continue
            restart = self.backend.kill(h, pid) or restart
            inflight.pop(h)
            self.queue.extendleft(reversed([t for t in batch if t is not task]))  # replayed
            self.summary.killed += 1
            self._record(task, row, [], returns)
        return restart
