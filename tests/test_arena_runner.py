"""Running tournaments: determinism across workers, faults as results, retries, early stop, Swiss, and
resuming after SIGKILL at a random moment (a real subprocess)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plyground import games
from plyground.arena.config import config_from_dict
from plyground.arena.record import Record
from plyground.arena.runner import _build_agent, run_tournament
from plyground.arena.schedule import schedule

DETERMINISTIC = ["random", "minimax:depth=2", "mcts:sims=30"]


def snapshot(db) -> dict:
    """id -> everything a game's outcome consists of (not the timestamps)."""
    with Record(db) as rec:
        return {g["id"]: (tuple(g["players"]), tuple(g["returns"]), g["termination"], g["plies"],
                          tuple((m["player"], m["action"], m["text"]) for m in rec.moves(g["id"])))
                for g in rec.games()}


def test_results_do_not_depend_on_workers(tmp_path):
    cfg = config_from_dict({"game": "connect4", "agents": DETERMINISTIC, "seed": 11,
                            "openings": {"random_plies": 2}})
    s1 = run_tournament(cfg, tmp_path / "a.db", workers=1)
    s2 = run_tournament(cfg, tmp_path / "b.db", workers=2)
    a, b = snapshot(tmp_path / "a.db"), snapshot(tmp_path / "b.db")
    assert s1.played == s2.played == len(a) == 6 and a == b
    # every recorded game is a legal connect4 game with the result the rules give
    g = games.make("connect4")
    for players, returns, termination, plies, moves in a.values():
        state = g.new_initial_state()
        for _, action, text in moves:
            assert state.action_to_string(action) == text
            state.apply_action(action)
        assert termination == "normal" and state.is_terminal() and list(state.returns()) == list(returns)
        assert plies == len(moves)
    assert run_tournament(cfg, tmp_path / "a.db", workers=1).played == 0  # nothing left to play


def test_fast_games_batched_to_workers_match_a_single_worker(tmp_path):
    """Very fast games go to workers in batches; results stay those of one worker, and legal."""
    import pyspiel
    cfg = config_from_dict({"game": "tictactoe", "games_per_pairing": 300, "seed": 5,
                            "agents": ["random", {"agent": "random", "seed": 1, "name": "r1"}]})
    run_tournament(cfg, tmp_path / "one.db", workers=1)
    two = run_tournament(cfg, tmp_path / "two.db", workers=2)
    assert two.max_batch > 1
    a, b = snapshot(tmp_path / "one.db"), snapshot(tmp_path / "two.db")
    assert len(a) == 300 and a == b
    for players, returns, termination, plies, moves in a.values():
        ps = pyspiel.load_game("tic_tac_toe").new_initial_state()
        for _, action, _ in moves:
            ps.apply_action(action)
        assert ps.is_terminal() and list(ps.returns()) == list(returns)


def test_faults_are_results_and_hung_agents_do_not_hang_the_tournament(tmp_path):
    cfg = config_from_dict({
        "game": "connect4", "format": "gauntlet", "gauntlet": "random", "seed": 3, "move_time": 0.3, "grace": 0.3,
        "agents": ["random", "faulty:mode=raise,after=2", "faulty:mode=illegal,after=1",
                   "faulty:mode=sleep,after=1,seconds=60", "faulty:mode=block,after=2,seconds=60"]})
    t = time.monotonic()
    summary = run_tournament(cfg, tmp_path / "f.db", workers=2)
    wall = time.monotonic() - t
    assert wall < 40, f"hung agents held the tournament for {wall:.0f}s"
    assert summary.killed == 2  # the two 'block' games needed the backstop
    with Record(tmp_path / "f.db") as rec:
        names = rec.player_names()
        rows = rec.games()
    assert len(rows) == 8 and {r["id"] for r in rows} == {g.id for g in schedule(cfg)}
    expected = {"faulty:after=2": "agent_error", "faulty:after=1,mode=illegal": "illegal_move",
                "faulty:after=1,mode=sleep,seconds=60.0": "timeout", "faulty:after=2,mode=block,seconds=60.0": "timeout"}
    for r in rows:
        seat = next(i for i, p in enumerate(r["players"]) if names[p] != "random")
        assert r["termination"] == expected[names[r["players"][seat]]], r
        assert r["returns"][seat] == -1.0 and r["returns"][1 - seat] == 1.0 and r["rated"] == 1
        assert f"seat {seat}" in r["detail"]
        if "block" in names[r["players"][seat]]:
            assert "killed" in r["detail"]
        if "sleep" in names[r["players"][seat]]:
            assert "interrupted" in r["detail"]


def test_infrastructure_errors_are_retried_then_recorded_aborted(tmp_path):
    cfg = config_from_dict({"game": "tictactoe", "agents": ["random", "faulty:mode=infra,after=1"],
                            "retries": 2, "backoff": 0.05})
    summary = run_tournament(cfg, tmp_path / "i.db", workers=1)
    assert summary.retries == 4 and summary.aborted == 2
    with Record(tmp_path / "i.db") as rec:
        rows = rec.games()
        assert rec.games(rated_only=True) == []
    assert all(r["termination"] == "aborted" and "after 2 retries" in r["detail"] for r in rows)


def test_should_stop_ends_early_and_a_rerun_completes(tmp_path):
    cfg = config_from_dict({"game": "tictactoe", "agents": DETERMINISTIC, "games_per_pairing": 4, "seed": 2})
    calls = []

    def stop(rec):
        calls.append(len(rec.finished_ids(cfg.id)))
        return calls[-1] >= 3

    s = run_tournament(cfg, tmp_path / "s.db", workers=1, should_stop=stop)
    assert s.stopped_early and calls[:3] == [1, 2, 3] and 3 <= s.played <= 3 + 2
    assert s.max_batch == 1 and len(s.commits) == s.played  # one game per message and per commit
    s2 = run_tournament(cfg, tmp_path / "s.db", workers=2)
    assert s2.already_done == s.played and s.played + s2.played == 12 and not s2.stopped_early
    run_tournament(cfg, tmp_path / "full.db", workers=1)
    assert snapshot(tmp_path / "s.db") == snapshot(tmp_path / "full.db")


def test_swiss_tournament_runs_round_by_round(tmp_path):
    cfg = config_from_dict({"game": "connect4", "format": "swiss", "rounds": 2, "seed": 4,
                            "agents": DETERMINISTIC + ["minimax:depth=1"]})
    s = run_tournament(cfg, tmp_path / "w.db", workers=2)
    rows = snapshot(tmp_path / "w.db")
    assert s.played == len(rows) == 2 * 2 * 2
    r0 = {frozenset(v[0]) for k, v in rows.items() if "-r000-" in k}
    r1 = {frozenset(v[0]) for k, v in rows.items() if "-r001-" in k}
    assert len(r0) == len(r1) == 2 and not r0 & r1


def test_agents_get_one_thread_hint_only_where_they_take_it():
    assert _build_agent("llm", {"n_threads": 1}).params["n_threads"] == 1
    assert _build_agent("llm:n_threads=2", {"n_threads": 1}).params["n_threads"] == 2
    assert _build_agent("random", {"n_threads": 1}).spec == "random"


# ---- resume after SIGKILL ---------------------------------------------------------------------

RESUME_TOML = """
game = "connect4"
seed = 21
games_per_pairing = 2
# games slow enough (~0.1 s) that the runner sends them one at a time: a kill then lands between games
agents = ["mcts:sims=20000", "minimax:depth=7", "mcts:sims=30000", "mcts:sims=10000,c=1.0"]
[openings]
random_plies = 2
"""


def _cli(config: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "plyground.cli.main", "arena", "run", str(config), "--db", str(db),
            "--workers", "2", "--quiet", "--bootstrap", "0"]


def _count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM games").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except (OSError, IndexError):
        return False


def _sigkill_run(config, db, recorded: int, poll: float, delay: float = 0.0) -> list[int]:
    """Start ``plyground arena run CONFIG --db DB`` and SIGKILL it once ``recorded`` games are in the
    record (then ``delay`` seconds more); returns the pids of its workers at the kill."""
    proc = subprocess.Popen(_cli(config, db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _count(db) < recorded and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(poll)
        time.sleep(delay)
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    return workers


@pytest.mark.parametrize("seed", [1])
def test_sigkill_at_a_random_moment_then_resume_matches_an_uninterrupted_run(tmp_path, seed):
    config = tmp_path / "t.toml"
    config.write_text(RESUME_TOML)
    total = 12
    full, killed = tmp_path / "full.db", tmp_path / "killed.db"
    from plyground.arena.config import load_config
    run_tournament(load_config(config), full, workers=2)  # the uninterrupted reference
    rng = random.Random(seed)
    target = rng.randrange(1, total - 6)  # kill after this many games are recorded, plus a random delay
    workers = _sigkill_run(config, killed, target, poll=0.02, delay=rng.uniform(0, 0.1))
    n_killed = _count(killed)
    assert 0 < n_killed < total, f"the kill did not land mid-run ({n_killed} of {total} recorded)"
    end = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < end:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "worker processes outlived the killed tournament"
    out = subprocess.run(_cli(config, killed), check=True, capture_output=True, text=True, timeout=300)
    assert f"{n_killed} were already recorded" in " ".join(out.stderr.split())
    a, b = snapshot(full), snapshot(killed)
    assert len(a) == len(b) == total
    assert a == b
    con = sqlite3.connect(killed)
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM games").fetchone() == (total, total)
    assert con.execute("SELECT count(*) FROM moves m LEFT JOIN games g ON g.id = m.game "
                       "WHERE g.id IS NULL").fetchone()[0] == 0  # no orphan moves of an unrecorded game


# ---- group commit -------------------------------------------------------------------------------

FAST = {"game": "tictactoe", "seed": 8, "agents": ["random", {"agent": "random", "seed": 1, "name": "r1"}]}


def test_group_commit_writes_games_in_batches_with_the_same_results(tmp_path):
    cfg = config_from_dict({**FAST, "games_per_pairing": 200})
    calls = []
    s1 = run_tournament(cfg, tmp_path / "one.db", workers=1, commit_games=1)
    t = time.monotonic()
    s7 = run_tournament(cfg, tmp_path / "seven.db", workers=2, commit_games=7, commit_seconds=60,
                        progress=calls.append)
    wall = time.monotonic() - t
    assert s1.played == s7.played == 200 and len(s1.commits) == 200
    sizes = [b[1] - a[1] for a, b in zip([(0, 0)] + s7.commits, s7.commits)]
    # the first games (the workers' start-up makes them look slow) are committed alone, the rest in groups of 7
    assert max(sizes) == 7 and sum(sizes) == 200 and len(s7.commits) == len(s7.record_seconds) < 200 / 3
    assert snapshot(tmp_path / "one.db") == snapshot(tmp_path / "seven.db")
    # progress is rate-limited (10 Hz) and ends with every game committed
    assert len(calls) <= 10 * wall + 3 and calls[-1].done == 200 and calls[-1].pending == 0


def _wait_pending(n: int):
    def progress(status):
        if status.pending >= n:
            raise KeyboardInterrupt
    return progress


def test_pending_games_are_committed_when_a_run_is_interrupted(tmp_path):
    cfg = config_from_dict({**FAST, "games_per_pairing": 2000})
    with pytest.raises(KeyboardInterrupt):  # nothing would be committed before the end but for the interrupt
        run_tournament(cfg, tmp_path / "i.db", workers=1, commit_games=10**6, commit_seconds=1e6,
                       progress=_wait_pending(5))
    n = len(snapshot(tmp_path / "i.db"))
    assert 5 <= n < 2000
    s = run_tournament(cfg, tmp_path / "i.db", workers=2)
    assert s.already_done == n and s.played == 2000 - n
    run_tournament(cfg, tmp_path / "full.db", workers=2)
    assert snapshot(tmp_path / "i.db") == snapshot(tmp_path / "full.db")


SIGTERM_CHILD = """
import sys
from plyground.arena.config import config_from_dict
from plyground.arena.runner import run_tournament

def progress(status):
    if status.pending:
        print("pending", status.pending, flush=True)

if __name__ == "__main__":
    cfg = config_from_dict({**%r, "games_per_pairing": 4000})
    run_tournament(cfg, sys.argv[1], workers=1, commit_games=10**6, commit_seconds=1e6, progress=progress)
"""


def test_sigterm_commits_the_pending_games_before_exiting(tmp_path):
    script, db = tmp_path / "child.py", tmp_path / "t.db"
    script.write_text(SIGTERM_CHILD % (FAST,))
    proc = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if int(line.split()[1]) >= 5:
                proc.send_signal(signal.SIGTERM)
                break
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    con = sqlite3.connect(db)
    n = con.execute("SELECT count(*) FROM games").fetchone()[0]
    assert 5 <= n < 4000  # committed although no commit was due before the end
    assert con.execute("SELECT sum(plies) FROM games").fetchone()[0] == con.execute(
        "SELECT count(*) FROM moves").fetchone()[0]  # every committed game with all its moves


FAST_TOML = """
game = "tictactoe"
seed = 8
games_per_pairing = 3000
agents = ["random", { agent = "random", seed = 1, name = "r1" }]
"""


def test_sigkill_during_group_commits_then_resume_matches_an_uninterrupted_run(tmp_path):
    """Fast games are committed in groups; a kill loses the uncommitted ones, which the resume replays."""
    config, killed, full = tmp_path / "fast.toml", tmp_path / "killed.db", tmp_path / "full.db"
    config.write_text(FAST_TOML)
    _sigkill_run(config, killed, 1, poll=0.01)
    n_killed = _count(killed)
    assert 0 < n_killed < 3000, f"the kill did not land mid-run ({n_killed} of 3000 recorded)"
    out = subprocess.run(_cli(config, killed), check=True, capture_output=True, text=True, timeout=300)
    assert f"{n_killed} were already recorded" in " ".join(out.stderr.split())
    from plyground.arena.config import load_config
    run_tournament(load_config(config), full, workers=2)
    assert snapshot(killed) == snapshot(full) and len(snapshot(full)) == 3000
    con = sqlite3.connect(killed)
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM games").fetchone() == (3000, 3000)
    assert con.execute("SELECT sum(plies) FROM games").fetchone()[0] == con.execute(
        "SELECT count(*) FROM moves").fetchone()[0]  # every game with all its moves, no orphans


def _big_result(n: int) -> bytes:
    """A task whose result takes a while to send through the pool's result pipe."""
    return b"x" * n


def _bytes_read(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no rchar in /proc/{pid}/io")


def test_shutdown_returns_when_a_worker_is_killed_in_the_middle_of_sending_a_result():
    # A worker killed mid-message left the pool's thread waiting for the rest of it forever, and
    # shutdown (and the interpreter's exit) with it.  The worker sends its result in one write
    # call, which the kernel counts when it returns, so the transfer is watched from this side.
    import threading

    from plyground.arena.runner import LocalBackend

    backend = LocalBackend(1)
    backend.pool.submit(_big_result, 1).result(timeout=120)  # the worker is up
    me = os.getpid()
    start = _bytes_read(me)
    future = backend.pool.submit(_big_result, 300_000_000)
    deadline = time.monotonic() + 120
    while _bytes_read(me) - start < 30_000_000:  # part of the result has come through the pipe
        assert time.monotonic() < deadline, "the worker never started sending its result"
        time.sleep(0.0005)
    thread = backend.pool._executor_manager_thread
    done = threading.Event()
    closer = threading.Thread(target=lambda: (backend.shutdown(), done.set()), daemon=True)
    closer.start()
    assert done.wait(90), "shutdown hung on the half-sent result"
    assert not thread.is_alive()
    assert not future.done() or future.exception() is not None  # the result never arrived whole


def test_an_agent_that_cannot_play_the_game_is_refused_before_anything_is_recorded(tmp_path):
    from plyground.games.errors import UnsupportedGameError
    cfg = config_from_dict({"name": "k", "game": "openspiel:kuhn_poker", "games_per_pairing": 2,
                            "agents": ["random", {"agent": "minimax", "name": "mm"}]})
    db = tmp_path / "k.db"
    with pytest.raises(UnsupportedGameError, match="agent 'mm' cannot play openspiel:kuhn_poker.*hidden information"):
        run_tournament(cfg, db, workers=1)
    assert not db.exists()
    out = subprocess.run([sys.executable, "-m", "plyground.cli.main", "arena", "run", "--db", str(db),
                          str(_write_config(tmp_path, cfg))], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "agent 'mm' cannot play openspiel:kuhn_poker" in out.stderr
    assert not db.exists()


def _write_config(tmp_path, cfg) -> Path:
    path = tmp_path / "k.toml"
    path.write_text('name = "k"\ngame = "openspiel:kuhn_poker"\ngames_per_pairing = 2\n'
                    'agents = ["random", { agent = "minimax", name = "mm" }]\n')
    return path
