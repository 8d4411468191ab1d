"""Re-analysis of recorded moves: for every move of the chosen games, an engine's value of the
position before and after it from the mover's view (-1..1), its best move and principal variation,
the loss of the played move and its label (``arena.labels``), written to the record's ``analysis``
table keyed by (game, ply, engine configuration).

Engines (``parse_engine``): ``solver`` (the exact alpha-beta solver under a time or node budget: a
position it proves is exact), ``minimax`` (depth-limited alpha-beta), ``mcts`` (UCT with
MCTS-Solver) and ``neural-mcts`` (PUCT with the bundled network or ``model=PATH``).  The engine's
canonical configuration string (``"solver:time=1"``) is the table's ``engine`` column, so analyses
under different budgets live side by side.

Each position is searched once per task: the value *before* move k is the search of the position at
ply k (for its player to move, who makes move k), the value *after* is the search of the position at
ply k+1 turned to the mover's view (or the mover's scaled return when the move ends the game).
``exact`` is true when both are proven.  The work is split by game (a game is split into runs of
plies when there are fewer games than twice the workers; the position where two runs meet is searched
by both), run on the arena's process pool, and each task's rows are committed as it finishes: a killed
analysis loses only the tasks in flight, and running it again analyses only the (game, ply, engine)
rows not yet recorded.

>>> parse_engine("solver").canonical, parse_engine("mcts", "sims=500").canonical
('solver:time=1', 'mcts:sims=500')
>>> parse_engine("minimax:depth=6").canonical
'minimax:depth=6'
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from plyground.arena import labels as L
from plyground.arena.evaluations import AnalysisError, is_opening
from plyground.arena.export import open_record, tournament_ids
from plyground.games.errors import PlygroundError

__all__ = ["AnalysisError", "UnplayableGame", "EngineConfig", "ENGINES", "parse_engine", "parse_budget", "analyse_games",
           "analysis_rows", "AnalysisSummary", "analyse_task", "ROW_COLUMNS"]


# engine -> (budget keys with their types, default budget)
ENGINES: dict[str, tuple[dict[str, type], dict[str, Any]]] = {
    "solver": ({"time": float, "nodes": int}, {"time": 1.0}),
    "minimax": ({"depth": int, "time": float, "nodes": int}, {"depth": 8}),
    "mcts": ({"sims": int, "time": float}, {"sims": 10_000}),
    "neural-mcts": ({"sims": int, "model": str}, {"sims": 800}),
}
ROW_COLUMNS = ("game", "ply", "engine", "player", "action", "best_action", "value_before", "value_after",
               "exact", "label", "pv", "detail")
TOP_MOVES = 5        # top moves kept in a row's detail
SEED = 20_240_601    # MCTS seeds derive from it and the position, so a re-run searches alike


@dataclass(frozen=True)
class EngineConfig:
    """An analysis engine and its budget; ``canonical`` is the record's ``engine`` column."""

    name: str
    budget: tuple[tuple[str, Any], ...]

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.budget)

    @property
    def canonical(self) -> str:
        if not self.budget:
            return f"{self.name}:exact"
        return self.name + ":" + ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in self.budget)


def parse_budget(text: str | None, engine: str) -> dict[str, Any]:
    """``"depth=8,time=2"`` -> ``{"depth": 8, "time": 2.0}`` for ``engine``; ``exact`` (solver only)
    means no limit; ``auto`` or empty means the engine's default.  Errors name the bad item and what
    the engine takes.

    >>> parse_budget("time=0.5", "solver"), parse_budget("exact", "solver"), parse_budget("", "mcts")
    ({'time': 0.5}, {}, {'sims': 10000})
    """
    if engine not in ENGINES:
        raise AnalysisError(f"unknown analysis engine {engine!r}; allowed: {', '.join(ENGINES)}")
    keys, default = ENGINES[engine]
    items = [x.strip() for x in (text or "").split(",") if x.strip()]
    if not items or items == ["auto"]:
        return dict(default)
    allowed = ", ".join([f"{k}=N" if t is not str else f"{k}=PATH" for k, t in keys.items()]
                        + (["exact"] if engine == "solver" else []) + ["auto"])
    out: dict[str, Any] = {}
    exact = False
    for item in items:
        if item == "exact" and engine == "solver":
            exact = True
            continue
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or key not in keys:
            raise AnalysisError(f"budget item {item!r} does not apply to engine {engine}; it takes: {allowed}")
        kind = keys[key]
        if kind is str:
            if not raw.strip():
                raise AnalysisError(f"budget {key}= needs a value")
            out[key] = raw.strip()
            continue
        try:
            value = float(raw)
        except ValueError:
            raise AnalysisError(f"budget {key}={raw!r} is not a number") from None
        if not value > 0 or math.isinf(value):
            raise AnalysisError(f"budget {key} must be a positive number; got {raw!r}")
        if kind is int:
            if value != int(value):
                raise AnalysisError(f"budget {key} must be a whole number; got {raw!r}")
            value = int(value)
        out[key] = value
    if exact and out:
        raise AnalysisError(f"budget 'exact' (no limit) cannot be combined with {', '.join(sorted(out))}")
    if exact:
        return {}
    if engine == "neural-mcts" and "sims" not in out:
        out["sims"] = default["sims"]
    if not any(k in out for k in keys if keys[k] is not str):
        out.update(default)
    return out


def parse_engine(text: str, budget: str | None = None) -> EngineConfig:
    """An engine from ``NAME`` or ``NAME:BUDGET`` (``"solver:time=2"``); ``budget`` is used when the
    text carries none."""
    name, _, own = str(text).strip().partition(":")
    name = name.strip()
    if name not in ENGINES:
        raise AnalysisError(f"unknown analysis engine {name!r}; allowed: {', '.join(ENGINES)}")
    opts = parse_budget(own if own.strip() else budget, name)
    return EngineConfig(name, tuple(sorted(opts.items())))


class UnplayableGame(AnalysisError):
    """A recorded game whose moves the rules refuse (a skipped ply, a move after the end, the wrong
    player, an illegal action): left out of a tournament or whole-record analysis, an error when
    asked for by id."""


# ------------------------------------------------------------------------------ the worker side
_WORKER: dict[str, Any] = {}


def _game(name: str):
    g = _WORKER.get(("game", name))
    if g is None:
        from plyground import games
        g = _WORKER[("game", name)] = games.make(name)
    return g


def _warm(game, engine: EngineConfig) -> None:
    """Compile (or load) the numba engines before the first timed search of this process."""
    key = ("warm", game.name, engine.name)
    if key in _WORKER:
        return
    if engine.name in ("solver", "minimax"):
        from plyground.search import alphabeta
        alphabeta.warm_up(game, exact=engine.name == "solver")
    elif engine.name == "mcts":
        from plyground.search import mcts
        if hasattr(mcts, "warm_up"):
            mcts.warm_up(game)
    _WORKER[key] = True


def _neural(engine: EngineConfig, game):
    key = ("neural", engine.canonical, game.name)
    agent = _WORKER.get(key)
    if agent is None:
        from plyground import agents
        o = engine.options
        agent = agents.make("neural-mcts", sims=o["sims"], seed=0,
                            **({"model": o["model"]} if "model" in o else {}))
        agent.check_game(game)
        agent.warm_up(game)
        _WORKER[key] = agent
    return agent


def _position_seed(game_id: str, ply: int) -> int:
    import zlib
    return (zlib.crc32(f"{game_id}:{ply}".encode()) ^ SEED) & 0x7FFFFFFF


def search_position(state, engine: EngineConfig, seed: int = 0) -> dict[str, Any]:
    """One engine search of a non-terminal ``state``: value for the player to move, best action, PV,
    exactness, per-action values and the search's size, as a plain dict.

    >>> from plyground import games
    >>> s = games.play_moves(games.make("tictactoe"), "0 3 1 4")
    >>> r = search_position(s, parse_engine("solver")); (r["best_action"], r["value"], r["exact"])
    (2, 1.0, True)
    """
    o = engine.options
    if engine.name in ("solver", "minimax"):
        from plyground.search import alphabeta
        if engine.name == "solver":
            res = alphabeta.search(state, exact=True, time_limit=o.get("time"), max_nodes=o.get("nodes"))
        else:
            res = alphabeta.search(state, depth=o.get("depth"), time_limit=o.get("time"), max_nodes=o.get("nodes"))
        out = res.to_json()
    elif engine.name == "mcts":
        from plyground.search.mcts import MCTS
        sims = o.get("sims", 10**9 if "time" in o else 10_000)
        res = MCTS(sims=sims, time_limit=o.get("time"), solver=True, reuse_tree=False, seed=seed).search(state)
        out = res.to_json()
    else:
        agent = _neural(engine, state.game if hasattr(state, "game") else state.get_game())
        agent.reset(seed)
        out = dict(agent.act(state).search)
    return out


def _top(res: dict[str, Any]) -> list[list]:
    av = {int(a): float(v) for a, v in (res.get("action_values") or {}).items()}
    visits = {int(a): int(v) for a, v in (res.get("visits") or {}).items()}
    if visits:
        order = sorted(visits, key=lambda a: (-visits[a], a))
    else:
        order = sorted(av, key=lambda a: (-av[a], a))
    return [[a, av.get(a), visits.get(a)] if visits else [a, av.get(a)] for a in order[:TOP_MOVES]]


def analyse_task(task: dict[str, Any]) -> list[tuple]:
    """Analyse the plies ``task["plies"]`` of one recorded game; returns rows in ``ROW_COLUMNS`` order.

    ``task``: ``game_id``, ``game`` (its name), ``engine`` (canonical string), ``moves`` (every recorded
    move up to the last ply needed, each ``[ply, player, action, opening]``) and ``plies``.  Module-level
    and picklable: it runs in the arena's worker processes.
    """
    from plyground.games.traits import traits

    game = _game(task["game"])
    engine = parse_engine(task["engine"])
    _warm(game, engine)
    scale = traits(game).scale
    moves = task["moves"]
    wanted = sorted(set(task["plies"]))
    state = game.new_initial_state()
    searched: dict[int, dict] = {}
    positions: dict[int, Any] = {}
    last = wanted[-1] if wanted else -1
    for k, (ply, player, action, _opening) in enumerate(moves):
        if ply != k:
            raise UnplayableGame(f"game {task['game_id']}: the record skips from ply {k - 1} to ply {ply}")
        if k in wanted or k - 1 in wanted:
            positions[k] = state.clone()
        if k > last:
            break
        if state.is_terminal():
            raise UnplayableGame(f"game {task['game_id']}: ply {k} is recorded after the game ended")
        if int(state.current_player()) != int(player):
            raise UnplayableGame(f"game {task['game_id']}: ply {k} is recorded for player {player}, but player "
                                f"{state.current_player()} is to move")
        if int(action) not in state.legal_actions():
            raise UnplayableGame(f"game {task['game_id']}: the recorded action {action} at ply {k} is illegal")
        state.apply_action(int(action))
    if last + 1 not in positions and last + 1 == len(moves):
        positions[last + 1] = state.clone()   # the position after the game's last recorded move

    def result(k: int) -> dict:
        if k not in searched:
            t = time.perf_counter()
            searched[k] = search_position(positions[k], engine, _position_seed(task["game_id"], k))
            searched[k].setdefault("seconds", time.perf_counter() - t)
        return searched[k]

    rows = []
    for k in wanted:
        _ply, mover, action, opening = moves[k]
        before = result(k)
        nxt = positions[k + 1]
        if nxt.is_terminal():
            after_value, after_exact, after = scale(nxt.returns()[mover]), True, None
        else:
            after = result(k + 1)
            same = int(nxt.current_player()) == int(mover)
            after_value = float(after["value"]) if same else -float(after["value"])
            after_exact = bool(after.get("exact"))
        before_value, before_exact = float(before["value"]), bool(before.get("exact"))
        exact = before_exact and after_exact
        judged = L.judge(before_value, after_value, exact)
        detail = {"depth": before.get("depth"), "nodes": before.get("nodes"), "seconds": before.get("seconds"),
                  "exact_before": before_exact, "exact_after": after_exact, "top": _top(before),
                  "loss": judged["loss"], "win_chance_before": judged["win_chance_before"],
                  "win_chance_after": judged["win_chance_after"], "accuracy": judged["accuracy"]}
        if "exact_change" in judged:
            detail["exact_change"] = judged["exact_change"]
        if before.get("score") is not None:
            detail["score_before"] = before["score"]
        if after is not None:
            detail.update(depth_after=after.get("depth"), nodes_after=after.get("nodes"),
                          seconds_after=after.get("seconds"))
            if after.get("score") is not None:
                detail["score_after"] = after["score"] if same else -after["score"]
        if opening:
            detail["opening"] = True
        rows.append((task["game_id"], k, task["engine"], int(mover), int(action), int(before["best_action"]),
                     before_value, after_value, int(exact), judged["label"],
                     json.dumps([int(a) for a in before.get("pv") or []]), json.dumps(detail, sort_keys=True)))
    return rows


# ------------------------------------------------------------------------------ the parent side
@dataclass
class AnalysisSummary:
    """What ``analyse_games`` did: rows (moves) to analyse in the selection, already recorded, newly
    analysed, whether it was stopped early, the games of kinds it cannot analyse and the games whose
    record the rules refuse (both left out of a tournament or whole-record selection; asked for by id
    they are an error)."""

    engines: list[str]
    games: int
    total: int
    already: int
    analysed: int = 0
    seconds: float = 0.0
    stopped: bool = False
    exact: int = 0
    game_ids: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)   # game name -> why its games were left out
    skipped_games: int = 0
    unplayable: dict[str, str] = field(default_factory=dict)   # game id -> why the rules refuse its record

    @property
    def moves_per_second(self) -> float:
        return self.analysed / self.seconds if self.seconds > 0 else 0.0


def select_games(rec, tournament: str | None = None, game_ids: Sequence[str] | None = None) -> list[dict]:
    """The games to analyse: ``game_ids`` (each must be recorded), else a tournament's (id or name), else all."""
    if game_ids:
        out = []
        for gid in dict.fromkeys(game_ids):     # an id given twice is analysed once
            row = rec.db.conn.execute("SELECT id, game, tournament, players, plies FROM games WHERE id = ?",
                                      (gid,)).fetchone()
            if row is None:
                raise AnalysisError(f"unknown game id {gid!r} in {rec.path} (list them with 'plyground arena export')")
            out.append({"id": row[0], "game": row[1], "tournament": row[2]})
        return out
    if tournament is not None:
        games = [g for t in tournament_ids(rec, tournament) for g in rec.games(tournament=t)]
    else:
        games = rec.games()
    return [{"id": g["id"], "game": g["game"], "tournament": g["tournament"]} for g in games]


def check_game(name: str) -> None:
    """Refuse games the analysis cannot value: it compares two players' outcomes move by move."""
    from plyground import games
    from plyground.games.traits import traits
    t = traits(games.make(name))
    if not t.win_draw_loss or t.chance or not t.perfect_information or t.simultaneous:
        what = ("hidden information" if not t.perfect_information else "chance" if t.chance
                else "simultaneous moves" if t.simultaneous else f"{t.num_players} players, {t.utility} utilities")
        raise AnalysisError(f"analysis values positions of two-player zero-sum games of perfect information "
                            f"without chance; {name} has {what}")


def _tasks(rec, games: list[dict], engines: list[EngineConfig], workers: int) -> tuple[list[dict], int, int]:
    """The tasks for the rows not yet recorded, the rows in the selection and the rows already recorded."""
    total = already = 0
    per_game = []
    for g in games:
        moves = [m for m in rec.db.conn.execute(
            "SELECT ply, player, action, decision FROM moves WHERE game = ? ORDER BY ply", (g["id"],))]
        move_list = [[int(p), int(pl), int(a), is_opening(d)] for p, pl, a, d in moves]
        plies = [m[0] for m in move_list if m[1] >= 0]
        for e in engines:
            have = {r[0] for r in rec.db.conn.execute(
                "SELECT ply FROM analysis WHERE game = ? AND engine = ?", (g["id"], e.canonical))}
            missing = [p for p in plies if p not in have]
            total += len(plies)
            already += len(plies) - len(missing)
            if missing:
                per_game.append((g, e, move_list, missing))
    # fewer games than workers: split games into runs of plies so every worker has work
    parts = max(1, math.ceil(2 * workers / len(per_game))) if per_game and workers > 1 else 1
    tasks = []
    for g, e, move_list, missing in per_game:
        size = max(1, math.ceil(len(missing) / parts))
        for i in range(0, len(missing), size):
            chunk = missing[i:i + size]
            tasks.append({"game_id": g["id"], "game": g["game"], "engine": e.canonical, "plies": chunk,
                          "moves": move_list[:chunk[-1] + 1]})
    return tasks, total, already


def _write(rec, rows: list[tuple]) -> None:
    """Commit one task's rows (a row already there is an error: nothing is analysed twice)."""
    if not rows:
        return
    import sqlite3
    conn = rec.db.conn
    try:
        with conn:
            conn.executemany(f"INSERT INTO analysis ({', '.join(ROW_COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(ROW_COLUMNS))})", rows)
    except sqlite3.IntegrityError:
        raise AnalysisError(f"game {rows[0][0]} ply {rows[0][1]} ({rows[0][2]}) was recorded meanwhile: is another "
                            f"analysis of {rec.path} running?") from None


def analyse_games(db: str | Path, engines: Iterable[EngineConfig | str] = ("solver",), *,
                  tournament: str | None = None, game_ids: Sequence[str] | None = None, workers: int = 1,
                  progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> AnalysisSummary:
    """Analyse every move of the chosen games with each engine and record the rows in ``db``.

    Rows already recorded for (game, ply, engine) are kept and not redone.  ``workers`` > 1 runs the
    tasks on the arena's local process pool; 1 runs them in this process.  ``progress(done, total)``
    is called as rows are committed (``done`` counts the already recorded ones); ``should_stop()``,
    checked between tasks, ends the run early with the finished tasks committed.
    """
    configs = list(dict.fromkeys(e if isinstance(e, EngineConfig) else parse_engine(e) for e in engines))
    if not configs:
        raise AnalysisError("no analysis engine given; allowed: " + ", ".join(ENGINES))
    if workers < 1:
        raise AnalysisError(f"workers must be at least 1; got {workers}")
    t0 = time.perf_counter()
    rec = open_record(db)
    try:
        games = select_games(rec, tournament, game_ids)
        skipped: dict[str, str] = {}
        for name in sorted({g["game"] for g in games}):
            try:
                check_game(name)
            except PlygroundError as e:
                if game_ids:          # games asked for by id: refusing one is an error
                    raise
                skipped[name] = str(e)
        n_skipped = sum(g["game"] in skipped for g in games)
        games = [g for g in games if g["game"] not in skipped]
        tasks, total, already = _tasks(rec, games, configs, workers)
        summary = AnalysisSummary(engines=[c.canonical for c in configs], games=len(games), total=total,
                                  already=already, game_ids=[g["id"] for g in games], skipped=skipped,
                                  skipped_games=n_skipped)
        done = already
        if progress is not None:
            progress(done, total)

        def commit(rows: list[tuple]) -> None:
            nonlocal done
            _write(rec, rows)
            done += len(rows)
            summary.analysed += len(rows)
            summary.exact += sum(r[8] for r in rows)
            if progress is not None:
                progress(done, total)

        def unplayable(task: dict, e: UnplayableGame) -> None:
            if game_ids:             # a game asked for by id: its broken record is an error
                raise e
            summary.unplayable.setdefault(task["game_id"], str(e))

        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                if should_stop is not None and should_stop():
                    summary.stopped = True
                    break
                try:
                    rows = analyse_task(task)
                except UnplayableGame as e:
                    unplayable(task, e)
                    continue
                commit(rows)
        else:
            summary.stopped = _run_pool(tasks, workers, commit, should_stop, unplayable)
        summary.seconds = time.perf_counter() - t0
        return summary
    finally:
        rec.close()


def _run_pool(tasks: list[dict], workers: int, commit: Callable, should_stop, unplayable: Callable) -> bool:
    """Run the tasks on the arena's local process pool, at most two in flight per worker; True if stopped.
    A worker process that dies (killed, out of memory) is an ``AnalysisError``; the rows committed so
    far are kept for the next run."""
    from plyground.arena.runner import LocalBackend, _Crashed
    backend = LocalBackend(workers)
    stopped = False
    try:
        queue = list(reversed(tasks))
        inflight: dict = {}          # handle -> task
        while queue or inflight:
            if should_stop is not None and should_stop():
                stopped = True
                break
            while queue and len(inflight) < 2 * workers:
                task = queue.pop()
                inflight[backend.call(analyse_task, task)] = task
            for h in backend.wait(list(inflight), timeout=0.5):
                task = inflight.pop(h)
                try:
                    rows = backend.result(h)
                except UnplayableGame as e:
                    unplayable(task, e)
                    continue
                except _Crashed as e:
                    raise AnalysisError(f"an analysis {e}; the moves analysed so far are recorded: run the "
                                        "command again to resume") from None
                commit(rows)
    finally:
        backend.shutdown()
    return stopped


def analysis_rows(db: str | Path, game_ids: Sequence[str], engines: Sequence[str]) -> list[dict]:
    """The recorded rows of ``game_ids`` for the ``engines`` (canonical strings), by game order then
    engine and ply, with ``pv`` and ``detail`` decoded, ``exact`` a bool, and ``loss`` and ``opening`` (a
    ply of the tournament's opening, which no agent chose) from the detail."""
    rec = open_record(db)
    try:
        order = {g: i for i, g in enumerate(game_ids)}
        out = []
        for e in engines:
            for gid in game_ids:
                for r in rec.db.query("SELECT * FROM analysis WHERE game = ? AND engine = ? ORDER BY ply", [gid, e]):
                    r["pv"] = json.loads(r["pv"]) if r.get("pv") else []
                    r["detail"] = json.loads(r["detail"]) if r.get("detail") else {}
                    r["exact"] = bool(r["exact"])
                    r["loss"] = r["detail"].get("loss")
                    r["opening"] = bool(r["detail"].get("opening"))
                    out.append(r)
        out.sort(key=lambda r: (order[r["game"]], engines.index(r["engine"]), r["ply"]))
        return out
    finally:
        rec.close()


def default_workers() -> int:
    """The CPU cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
