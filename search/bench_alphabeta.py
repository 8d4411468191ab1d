"""Benchmarks (not tests) of the alpha-beta engines, run against their peers in the same process.

- ``bench_alphabeta(game)``: our numba alpha-beta against OpenSpiel's Python
  ``open_spiel.python.algorithms.minimax.alpha_beta_search`` (nodes per second and time).
- ``bench_solver(stones)``: our exact solver on the solved connect-four positions of
  ``shared/data`` (mean time per stone count, every score checked), optionally beside a C++
  solver binary run on the same positions.

Both print a readable report and return a dict (the ``plyground bench`` command shows either).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any, Sequence

from plyground.games.errors import PlygroundError

DEFAULT_STONES = (8, 12, 16, 20, 24, 28, 32)
C4_DEPTH = 8  # connect four from the empty board: OpenSpiel's Python search takes about a second


# ---------------------------------------------------------------- OpenSpiel's alpha-beta, counted
def _openspiel_alpha_beta(game_name: str, depth: int | None, value_function=None) -> dict[str, Any]:
    """Run OpenSpiel's ``alpha_beta_search`` from the initial state, counting its nodes (calls of
    its recursive ``_alpha_beta``, which looks itself up by module name on every call)."""
    import pyspiel
    from open_spiel.python.algorithms import minimax

    count = [0]
    original = minimax._alpha_beta

    def counted(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    game = pyspiel.load_game(game_name)
    minimax._alpha_beta = counted
    try:
        t = time.perf_counter()
        kwargs = {"value_function": value_function}
        if depth is not None:
            kwargs["maximum_depth"] = depth
        value, action = minimax.alpha_beta_search(game, **kwargs)
        seconds = time.perf_counter() - t
    finally:
        minimax._alpha_beta = original
    return {"value": float(value), "action": int(action), "nodes": count[0], "seconds": seconds,
            "nodes_per_s": count[0] / seconds}


def _board_hash_value(state) -> float:
    """A cheap deterministic leaf value in [-1, 1] for OpenSpiel (a hash of the board): it prunes
    like a real evaluation, unlike a constant, and costs OpenSpiel's search little."""
    return (zlib.crc32(str(state).encode()) % 2001 - 1000) / 1000.0


def _ours(state, repeats: int, min_seconds: float, **options) -> dict[str, Any]:
    """Time ``search(state, **options)`` (wall clock around the whole call, after a warm-up),
    repeating until ``repeats`` runs and ``min_seconds`` have passed."""
    from plyground.search.alphabeta import search

    result = search(state, **options)  # loads the compiled code and the tables
    nodes = 0
    seconds = 0.0
    runs = 0
    while runs < repeats or seconds < min_seconds:
        t = time.perf_counter()
        result = search(state, **options)
        seconds += time.perf_counter() - t
        nodes += result.nodes
        runs += 1
    return {"value": result.value, "action": result.best_action, "exact": result.exact,
            "score": result.score, "depth": result.depth, "nodes": result.nodes, "runs": runs,
            "seconds": seconds / runs, "nodes_per_s": nodes / seconds}


def bench_alphabeta(game: str = "tictactoe", *, depth: int | None = None, repeats: int = 20,
                    min_seconds: float = 0.5, verbose: bool = True) -> dict[str, Any]:
    """Our numba alpha-beta against OpenSpiel's Python ``alpha_beta_search`` on ``game``.

    tictactoe: both solve the empty board (it must be a draw); connect4: both search the empty
    board to ``depth`` (default 8) plies, OpenSpiel with a cheap board-hash leaf value, ours with
    the kernel heuristic.  Reports both nodes/s, the ratio, and the time ratio.
    """
    from plyground import games
    from plyground.search.alphabeta import solve

    if game == "tictactoe":
        state = games.make("tictactoe").new_initial_state()
        peer = _openspiel_alpha_beta("tic_tac_toe", None)
        ours = _ours(state, repeats, min_seconds, depth=9)
        # the solver keeps its table between calls (its bounds stay valid): time a cold solve
        from plyground.search.alphabeta import zero_solver_tables
        solve(state, all_values=False)  # load the code and allocate the table ...
        zero_solver_tables()            # ... then empty it
        t = time.perf_counter()
        cold = solve(state, all_values=False)
        solver = {"cold_seconds": time.perf_counter() - t, "cold_nodes": cold.nodes,
                  "score": cold.score}
        ok = ours["value"] == 0.0 and ours["exact"] and peer["value"] == 0.0 and cold.score == 0
        setting = "solve the empty board (a draw)"
    elif game == "connect4":
        d = depth or C4_DEPTH
        state = games.make("connect4").new_initial_state()
        peer = _openspiel_alpha_beta("connect_four", d, _board_hash_value)
        ours = _ours(state, max(3, repeats // 4), min_seconds, depth=d)
        solver = None
        ok = ours["depth"] == d
        setting = f"depth {d} from the empty board (OpenSpiel: board-hash leaves; ours: heuristic)"
    else:
        raise PlygroundError(f"bench_alphabeta game must be 'tictactoe' or 'connect4', got {game!r}")
    out = {
        "game": game, "setting": setting, "ours": ours, "openspiel": peer,
        "nodes_per_s_ratio": ours["nodes_per_s"] / peer["nodes_per_s"],
        "time_ratio": peer["seconds"] / ours["seconds"],
        "ok": bool(ok),
    }
    if solver is not None:
        out["ours_solver"] = solver
        out["solver_time_ratio"] = peer["seconds"] / solver["cold_seconds"]
    if verbose:
        print(f"alpha-beta on {game}: {setting}")
        print(f"  OpenSpiel alpha_beta_search (Python): {peer['nodes']:>9,d} nodes  "
              f"{peer['seconds'] * 1e3:9.3f} ms  {peer['nodes_per_s']:>13,.0f} nodes/s  value {peer['value']:+.3f}")
        print(f"  plyground numba alpha-beta:           {ours['nodes']:>9,d} nodes  "
              f"{ours['seconds'] * 1e3:9.3f} ms  {ours['nodes_per_s']:>13,.0f} nodes/s  value {ours['value']:+.3f}"
              f"  (mean of {ours['runs']} runs, wall clock of the whole search() call)")
        if solver is not None:
            print(f"  plyground numba solver (cold table):  {solver['cold_nodes']:>9,d} nodes  "
                  f"{solver['cold_seconds'] * 1e3:9.3f} ms  score {cold.score:+d}")
        print(f"  ratio ours/OpenSpiel: nodes/s {out['nodes_per_s_ratio']:.1f}x, "
              f"time {out['time_ratio']:.1f}x faster"
              + (f"; solver {out['solver_time_ratio']:.0f}x faster" if solver is not None else ""))
        print(f"  check: {'ok' if ok else 'FAILED'}")
    return out


# ---------------------------------------------------------------- the solver on the solved positions
def default_positions_path() -> Path:
    """``shared/data/connect4_solved_positions.txt`` beside the checkout (PLYGROUND_SHARED overrides)."""
    env = os.environ.get("PLYGROUND_SHARED")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    return base / "data" / "connect4_solved_positions.txt"


def load_positions(path: str | Path | None = None) -> list[tuple[str, int]]:
    """The ``MOVES SCORE`` lines of a solved-positions file."""
    p = Path(path) if path is not None else default_positions_path()
    if not p.exists():
        raise PlygroundError(f"solved positions file not found: {p} (pass path=, or set PLYGROUND_SHARED)")
    rows = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise PlygroundError(f"{p}:{i}: expected 'MOVES SCORE', got {line!r}")
        rows.append((parts[0], int(parts[1])))
    return rows


def _run_cpp(binary: str, lines: list[str]) -> tuple[list[int], list[float] | None, float]:
    """Feed positions to a C++ solver (one ``MOVES`` a line on stdin; it answers ``MOVES SCORE
    [NODES [MICROSECONDS ...]]``).  Returns scores, per-position seconds if it reports them, and
    the wall time of the whole run (process start and table allocation included)."""
    t = time.perf_counter()
    proc = subprocess.run([binary], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          check=True)
    wall = time.perf_counter() - t
    scores, times = [], []
    for out in proc.stdout.splitlines():
        parts = out.split()
        if len(parts) < 2:
            raise PlygroundError(f"unexpected output from {binary}: {out!r}")
        scores.append(int(parts[1]))
        if len(parts) >= 4:
            times.append(float(parts[3]) * 1e-6)
    return scores, (times if len(times) == len(scores) else None), wall


def bench_solver(stones: Sequence[int] = DEFAULT_STONES, *, path: str | Path | None = None,
                 cpp_solver: str | None = None, reset_table: bool = False, tt_bits: int = 24,
                 verbose: bool = True) -> dict[str, Any]:
    """Solve the shared connect-four positions with ``stones`` stones; check every score.

    Times the score search (the numba null-window solver, as a C++ solver's ``solve``) and the
    whole ``solve()`` call (which adds the principal variation).  The table is kept between
    positions (its bounds stay valid) unless ``reset_table``.  ``cpp_solver``: a binary reading
    positions on stdin (e.g. Pascal Pons' ``c4solver``), run on the same positions for comparison.
    """
    from plyground import games
    from plyground.search import alphabeta as ab

    rows = load_positions(path)
    game = games.make("connect4")
    wanted = [int(n) for n in stones]
    groups = {n: [(m, s) for m, s in rows if len(m) == n] for n in wanted}
    missing = [n for n, g in groups.items() if not g]
    if missing:
        have = sorted({len(m) for m, _ in rows})
        raise PlygroundError(f"no positions with {missing} stones in the file; it has {have}")
    ab.solve(games.play_moves(game, groups[wanted[-1]][0][0]), tt_bits=tt_bits)  # load the code
    report: dict[str, Any] = {"groups": {}, "all_exact": True, "tt_bits": tt_bits,
                              "reset_table": reset_table}
    progress = _progress(verbose, sum(len(g) for g in groups.values()))
    for n in wanted:
        solve_times, total_times, nodes, wrong = [], [], [], []
        for moves, score in groups[n]:
            state = games.play_moves(game, moves)
            if reset_table:
                ab.zero_solver_tables()
            t = time.perf_counter()
            r = ab.solve(state, all_values=False, tt_bits=tt_bits)
            total_times.append(time.perf_counter() - t)
            solve_times.append(r.extra["solve_seconds"])
            nodes.append(r.extra["root_nodes"])
            if r.score != score:
                wrong.append((moves, score, r.score))
            progress(1)
        g: dict[str, Any] = {
            "positions": len(groups[n]), "wrong": wrong,
            "mean_solve_ms": 1e3 * statistics.fmean(solve_times),
            "mean_total_ms": 1e3 * statistics.fmean(total_times),
            "mean_nodes": statistics.fmean(nodes),
        }
        if cpp_solver:
            scores, times, wall = _run_cpp(cpp_solver, [m for m, _ in groups[n]])
            g["cpp_wrong"] = [(m, s, c) for (m, s), c in zip(groups[n], scores) if s != c]
            if times is not None:
                g["cpp_mean_ms"] = 1e3 * statistics.fmean(times)
            g["cpp_wall_mean_ms"] = 1e3 * wall / len(groups[n])
        report["groups"][n] = g
        report["all_exact"] = report["all_exact"] and not wrong
    progress(None)
    if verbose:
        print("connect-four solver on the shared solved positions "
              f"(table 2^{tt_bits}, {'reset per position' if reset_table else 'kept between positions'})")
        head = f"  {'stones':>6} {'n':>3} {'wrong':>5} {'solve ms':>9} {'solve() ms':>10} {'nodes':>10}"
        if cpp_solver:
            head += f" {'C++ ms':>8} {'C++ wall ms':>11} {'C++/ours':>8}"
        print(head)
        for n, g in report["groups"].items():
            line = (f"  {n:>6} {g['positions']:>3} {len(g['wrong']):>5} {g['mean_solve_ms']:>9.2f} "
                    f"{g['mean_total_ms']:>10.2f} {g['mean_nodes']:>10.0f}")
            if cpp_solver:
                c = g.get("cpp_mean_ms")
                line += (f" {c:>8.2f}" if c is not None else f" {'-':>8}") + f" {g['cpp_wall_mean_ms']:>11.2f}"
                line += f" {c / g['mean_solve_ms']:>8.2f}" if c is not None else ""
            print(line)
        print(f"  all scores exact: {report['all_exact']}")
    return report


def _progress(enabled: bool, total: int):
    """A rich progress bar when ``enabled`` (call with a step, then with None to close)."""
    if not enabled:
        return lambda step: None
    try:
        from rich.progress import Progress
    except ImportError:  # pragma: no cover - rich is a dependency
        return lambda step: None
    bar = Progress(transient=True)
    task = bar.add_task("solving", total=total)
    bar.start()

    def step(k):
        if k is None:
            bar.stop()
        else:
            bar.advance(task, k)
    return step
