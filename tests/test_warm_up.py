"""Compilation is never thinking time and never forfeits: agents warm up before their first clocked
move (a cold numba cache costs no game), the move alarm never lands inside numba's compiler, and a
worker whose move was interrupted is replaced by a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from plyground.arena.config import config_from_dict
from plyground.arena.record import Record
from plyground.arena.runner import run_tournament
from plyground.arena.schedule import schedule

# ---- a cold numba cache costs no game ------------------------------------------------------------

COLD_RUN = r"""
import json, sys
from plyground.arena.config import config_from_dict
from plyground.arena.runner import run_tournament

if __name__ == "__main__":
    cfg = config_from_dict(json.loads(sys.argv[1]))
    seen = []
    summary = run_tournament(cfg, sys.argv[2], workers=2, progress=lambda s: seen.append(s.warming))
    print("RESULT=" + json.dumps({"played": summary.played, "max_warming": max(seen), "retired": summary.retired}))
"""


def test_a_cold_numba_cache_forfeits_no_game(tmp_path):
    """Every worker compiles every kernel (an empty NUMBA_CACHE_DIR) before its agents' first
    moves, under a move limit far below a cold compile: no game is lost on time or to a broken kernel."""
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    cfg = {"game": "connect4", "seed": 7, "games_per_pairing": 4, "move_time": 2.0, "grace": 0.5,
           "openings": {"random_plies": 2},
           "agents": [{"agent": "minimax", "depth": 4, "name": "minimax-d4"},
                      {"agent": "mcts", "sims": 500, "name": "mcts-500"}]}
    db = tmp_path / "cold.db"
    script = tmp_path / "cold_run.py"
    script.write_text(COLD_RUN)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    t = time.monotonic()
    out = subprocess.run([sys.executable, str(script), json.dumps(cfg), str(db)], env=env, capture_output=True,
                         text=True, timeout=600)
    wall = time.monotonic() - t
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("RESULT="))[len("RESULT="):])
    assert list(cache.rglob("*.nbi")), "nothing was compiled into the empty cache: the test did not run cold"
    total = len(schedule(config_from_dict(cfg)))
    with Record(db) as rec:
        rows = rec.games()
    assert result["played"] == len(rows) == total
    assert {r["termination"] for r in rows} == {"normal"}, [(r["termination"], r["detail"]) for r in rows]
    assert result["max_warming"] >= 1  # the parent saw workers warming up (the progress display says so)
    assert result["retired"] == 0
    print(f"cold-cache tournament: {wall:.1f}s")


# ---- the move alarm waits for numba's compiler ---------------------------------------------------

def test_the_move_alarm_waits_until_numba_has_compiled_then_interrupts():
    """An alarm due 20 ms into a move whose first call compiles a fresh numba function goes off only
    once the compile has ended; the move is then interrupted as usual, and the function works."""
    import numba
    from numba.core import event

    from plyground.arena.match import MoveInterrupted, _Alarm

    @numba.njit  # no cache: compiled inside the move
    def collatz_steps(n):
        steps = 0
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        return steps

    spans = []  # [start, end] of each compile of collatz_steps

    class Span(event.Listener):
        def on_start(self, ev):
            if ev.data["dispatcher"] is collatz_steps:
                spans.append([time.perf_counter(), None])

        def on_end(self, ev):
            if ev.data["dispatcher"] is collatz_steps:
                spans[-1][1] = time.perf_counter()

    due = 0.02
    with event.install_listener("numba:compile", Span()):
        with _Alarm(True) as alarm:
            assert alarm.enabled
            t0 = time.perf_counter()
            alarm.arm(due)
            with pytest.raises(MoveInterrupted):
                collatz_steps(27)
                time.sleep(5)  # (not reached: the interrupt comes as the compile ends)
            interrupted = time.perf_counter()
        assert collatz_steps(27) == 111
    assert len(spans) == 1, "compiled twice: the interrupt cut the first compile short"
    started, ended = spans[0]
    assert started < t0 + due < ended, "the alarm was not due during the compile: nothing was tested"
    assert ended <= interrupted < ended + 1.0  # deferred past the compile's end, then delivered


def test_an_alarm_outside_a_compile_interrupts_at_once():
    from plyground.arena.match import MoveInterrupted, _Alarm

    with _Alarm(True) as alarm:
        t0 = time.perf_counter()
        alarm.arm(0.05)
        with pytest.raises(MoveInterrupted):
            time.sleep(5)
        assert time.perf_counter() - t0 < 1.0


# ---- warm_up loads everything a game needs --------------------------------------------------------

PLAY_AFTER_WARM_UP = r"""
import json, sys
from numba.core import event
from plyground import agents, games
from plyground.arena.match import play_game

game = games.make(sys.argv[1])
players = [agents.make(s) for s in sys.argv[2:]]
for p in players:
    p.warm_up(game)
events = []

class Count(event.Listener):  # any compile or cache load takes numba's compiler lock
    def on_start(self, ev):
        events.append(1)
    def on_end(self, ev):
        pass

event.register("numba:compiler_lock", Count())
results = []
for first in range(len(players)):
    for second in range(len(players)):
        if first != second:
            r = play_game(game, [players[first], players[second]], seed=first * 10 + second)
            results.append(r.termination)
print("RESULT=" + json.dumps({"events": len(events), "results": results}))
"""


@pytest.mark.parametrize("game,specs", [
    ("tictactoe", ["minimax:depth=2", "minimax:exact=true", "mcts:sims=50", "mcts:sims=50,variant=puct,dirichlet=0.3",
                   "openspiel-mcts:sims=20"]),
    ("connect4", ["minimax:depth=3", "minimax:exact=true,time=0.02", "minimax:depth=2,value=rollout",
                  "mcts:sims=100,reuse=false", "mcts:sims=100,solver=false"]),
])
def test_after_warm_up_a_game_loads_no_numba_code(tmp_path, game, specs):
    """Once every agent has warmed up, whole games between them (every pairing, both colours) take
    numba's compiler lock not once: nothing is compiled or even loaded from the cache on the clock."""
    script = tmp_path / "play.py"
    script.write_text(PLAY_AFTER_WARM_UP)
    out = subprocess.run([sys.executable, str(script), game, *specs], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("RESULT="))[len("RESULT="):])
    assert result["results"] and set(result["results"]) == {"normal"}
    assert result["events"] == 0


def test_warm_up_is_a_no_op_for_games_without_numba_engines():
    from plyground import agents, games
    game = games.make("openspiel:tic_tac_toe")
    for spec in ("minimax:depth=2", "mcts:sims=10", "random"):
        agents.make(spec).warm_up(game)


# ---- a worker whose move was interrupted is replaced ---------------------------------------------

def _pid(moves: list[dict]) -> set:
    return {m["decision"]["info"]["pid"] for m in moves if "pid" in (m["decision"] or {}).get("info", {})}


@pytest.mark.parametrize("backend", ["local", pytest.param("ray", marks=pytest.mark.slow)])
def test_a_worker_whose_move_was_interrupted_plays_no_more_games(tmp_path, backend):
    """The sleeper's second move is interrupted in every game it plays; the worker that played it never
    plays again (a fresh process takes its place), while the other workers' games go on untouched:
    every scheduled game is recorded exactly once, nothing crashes or is killed."""
    if backend == "ray":
        ray = pytest.importorskip("ray")
    cfg = config_from_dict({
        "game": "tictactoe", "seed": 3, "move_time": 0.2, "grace": 0.2, "games_per_pairing": 2,
        "agents": [{"agent": "faulty", "mode": "sleep", "after": 1, "seconds": 30, "name": "sleeper"},
                   {"agent": "faulty", "mode": "raise", "after": 99, "name": "good"},
                   {"agent": "faulty", "mode": "raise", "after": 99, "seed": 5, "name": "good2"}]})
    try:
        summary = run_tournament(cfg, tmp_path / "r.db", workers=2, backend=backend)
    finally:
        if backend == "ray" and ray.is_initialized():
            ray.shutdown()
    with Record(tmp_path / "r.db") as rec:
        names = rec.player_names()
        rows = rec.games()
        pid = {r["id"]: _pid(rec.moves(r["id"])) for r in rows}
    ids = [g.id for g in schedule(cfg)]
    assert summary.played == len(rows) == len(ids) and sorted(r["id"] for r in rows) == sorted(ids)
    assert summary.crashes == 0 and summary.killed == 0 and summary.aborted == 0
    interrupted = [r for r in rows if "sleeper" in {names[p] for p in r["players"]}]
    assert interrupted and all(r["termination"] == "timeout" and "interrupted" in r["detail"] for r in interrupted)
    assert all(r["termination"] == "normal" for r in rows if r not in interrupted)
    assert summary.retired == len(interrupted)
    assert all(len(p) == 1 for p in pid.values())  # each game on one worker, its pid in every decision
    for g in interrupted:
        (worker,) = pid[g["id"]]
        # after g in this process means started once g had ended (g took at least limit + grace); the
        # start stamps alone tie (millisecond resolution) with a game played just before g in its batch
        later = [h for h in rows if h is not g and pid[h["id"]] == {worker} and h["started"] >= g["ended"]]
        assert not later, f"worker {worker} played {[h['id'] for h in later]} after its move was interrupted"
    assert len({p for (p,) in (pid[g["id"]] for g in interrupted)}) == len(interrupted)


def _worker_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _retiring_worker_pid(seconds: float) -> int:
    from plyground.arena import runner
    time.sleep(seconds)
    runner._RETIRING = True  # as after an interrupted move: this worker leaves after its result
    return os.getpid()


def test_the_pool_replaces_every_retiring_worker_even_with_nothing_more_submitted():
    """Both workers finish a game, then both retire on their next one while a third waits in the pool
    and nothing more is submitted (the end of a run): the waiting game still gets a fresh worker."""
    from plyground.arena.runner import LocalBackend

    backend = LocalBackend(2)
    try:
        pool = backend.pool
        normal = [pool.submit(_worker_pid, 1.5) for _ in range(2)]  # (long enough for both workers to start)
        retiring = [pool.submit(_retiring_worker_pid, 1.0) for _ in range(2)]
        last = pool.submit(_worker_pid, 0.0)
        first = {f.result(timeout=60) for f in normal}
        leaving = {f.result(timeout=60) for f in retiring}
        assert len(first) == 2, "one worker played both first games: the scenario did not happen"
        assert leaving == first  # each worker played one game, then retired on the next
        assert last.result(timeout=60) not in first
    finally:
        backend.shutdown()


def test_games_left_in_a_retiring_workers_batch_come_back_unplayed(monkeypatch):
    """In one submission, the game after an interrupted one is handed back SKIPPED (the parent submits
    it again), and the interrupted game's result says the worker is retiring."""
    from plyground.arena import runner
    from plyground.arena.runner import DONE, SKIPPED, GameTask, Seat, run_game_tasks

    monkeypatch.setattr(runner, "_RETIRING", False)
    sleeper = Seat(spec="faulty:mode=sleep,after=0,seconds=30", player="p0", name="sleeper")
    good = Seat(spec="random", player="p1", name="random")

    def task(i: int) -> GameTask:
        return GameTask(id=f"g{i}", tournament="t", round=0, pair=None, game="tictactoe", seats=(sleeper, good),
                        seed=i, opening=(), move_time=0.1, grace=0.1, max_plies=None, serial=i)

    first, second = run_game_tasks([task(1), task(2)])
    assert first[0] == DONE and first[1][7] == "timeout" and first[5] is True
    assert second[0] == SKIPPED
    assert runner._RETIRING
