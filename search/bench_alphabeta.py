"""Benchmarks (not tests) of the alpha-beta engines, run against their peers in the same process.

- ``bench_alphabeta(game)``: our numba alpha-beta against OpenSpiel's Python
  ``open_spiel.python.algorithms.minimax.alpha_beta_search`` (nodes per second and time).
- ``bench_solver(stones)``: our exact solver on the 280 solved connect-four positions shipped in
  ``plyground/search/data/`` (mean time per stone count, every score checked), optionally beside
  a C++ solver binary run on the same positions.

Both print a readable report and return a dict (the ``plyground bench`` command shows either).

How ``bench_alphabeta`` counts and times, so that the two rates compare like with like:

- A node is a position the search enters, on both sides: OpenSpiel's count is the number of
  calls of its recursive ``_alpha_beta`` (the root, every child it visits, terminal positions and
  depth-limit leaves alike); ours is the engine's ``nodes`` (the same definition: the root of
  each iteration, every child entered, terminals, leaves, table cuts).  Moves our engine rules
  out without entering them (an immediate win found by the kernel, moves that lose at once) are
  not counted, just as OpenSpiel does not count the moves its cut-offs skip.  Our iterative
  deepening re-enters positions at each depth; each entry counts, as a node would for OpenSpiel.
- OpenSpiel is timed WITHOUT the counter: the count comes from one separate run through a
  counting wrapper of ``_alpha_beta`` (the search is deterministic, so the count is the same),
  because the wrapper's extra Python call per node slows it by about 15%.  OpenSpiel runs with
  its defaults (``maximum_depth=30``, which on tic-tac-toe is a full solve; no value function);
  on connect4 it gets ``maximum_depth`` and a cheap board-hash leaf value.
- Our time is the wall clock of the whole public ``search(state, depth=...)`` call: option
  checks, table set-up, the numba engine and building the ``SearchResult`` (that Python costs
  about 4 us per call here, a tenth of a 4,100-node tic-tac-toe solve), after one warm-up call
  that loads the compiled code.
- The machine is shared, so the two alternate: each round times ours for about half an
  OpenSpiel run, one OpenSpiel run, and ours again for the other half (so a change of load
  during the round hits both alike); the reported ratio is the median of the rounds' ratios.
"""

from __future__ import annotations

import statistics
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any, Sequence

from plyground.games.errors import PlygroundError

DEFAULT_STONES = (8, 12, 16, 20, 24, 28, 32)
C4_DEPTH = 8  # connect four from the empty board: OpenSpiel's Python search takes about a second


# ---------------------------------------------------------------- OpenSpiel's alpha-beta
def _openspiel_alpha_beta(game_name: str, depth: int | None, value_function=None,
                          count: bool = False) -> dict[str, Any]:
    """One run of OpenSpiel's ``alpha_beta_search`` from the initial state.  With ``count`` the
    nodes are counted (calls of its recursive ``_alpha_beta``, which looks itself up by module
    name on every call) through a wrapper that slows the search: never time a counted run."""
    import pyspiel
    from open_spiel.python.algorithms import minimax

    game = pyspiel.load_game(game_name)
    kwargs: dict[str, Any] = {"value_function": value_function}
    if depth is not None:
        kwargs["maximum_depth"] = depth
    calls = [0]
    original = minimax._alpha_beta
    if count:
        def counted(*args, **kw):
            calls[0] += 1
            return original(*args, **kw)
        minimax._alpha_beta = counted
    try:
        t = time.perf_counter()
        value, action = minimax.alpha_beta_search(game, **kwargs)
        seconds = time.perf_counter() - t
    finally:
        minimax._alpha_beta = original
    out = {"value": float(value), "action": int(action), "seconds": seconds}
    if count:
        out["nodes"] = calls[0]
    return out


def _board_hash_value(state) -> float:
    """A cheap deterministic leaf value in [-1, 1] for OpenSpiel (a hash of the board): it prunes
    like a real evaluation, unlike a constant, and costs OpenSpiel's search little."""
    return (zlib.crc32(str(state).encode()) % 2001 - 1000) / 1000.0


def _time_ours(state, seconds: float, min_runs: int, **options) -> tuple[int, float, Any]:
    """Repeat ``search(state, **options)`` for about ``seconds`` (at least ``min_runs`` calls);
    return (nodes searched, seconds spent inside the calls, the last result)."""
    from plyground.search.alphabeta import search

    nodes, spent, runs = 0, 0.0, 0
    result = None
    while runs < min_runs or spent < seconds:
        t = time.perf_counter()
        result = search(state, **options)
        spent += time.perf_counter() - t
        nodes += result.nodes
        runs += 1
    return nodes, spent, result


def bench_alphabeta(game: str = "tictactoe", *, depth: int | None = None, rounds: int | None = None,
                    verbose: bool = True) -> dict[str, Any]:
    """Our numba alpha-beta against OpenSpiel's Python ``alpha_beta_search`` on ``game``.

    tictactoe: both solve the empty board (it must be a draw); connect4: both search the empty
    board to ``depth`` (default 8) plies, OpenSpiel with a cheap board-hash leaf value, ours with
    the kernel heuristic.  ``rounds`` (default 7 on tictactoe, 3 on connect4, where OpenSpiel
    takes about a second a run) alternations of one OpenSpiel run and as long of ours around it;
    the ratios are medians over the rounds.  The module docstring says what is counted and timed.
    """
    from plyground import games
    from plyground.search.alphabeta import search, solve, zero_solver_tables

    if rounds is None:
        rounds = 3 if game == "connect4" else 7
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise PlygroundError(f"bench_alphabeta rounds must be an integer >= 1, got {rounds!r}")
    if game == "tictactoe":
        state = games.make("tictactoe").new_initial_state()
        peer_args: tuple = ("tic_tac_toe", None, None)
        options: dict[str, Any] = {"depth": 9}
        setting = "solve the empty board (a draw)"
    elif game == "connect4":
        d = depth or C4_DEPTH
        state = games.make("connect4").new_initial_state()
        peer_args = ("connect_four", d, _board_hash_value)
        options = {"depth": d}
        setting = f"depth {d} from the empty board (OpenSpiel: board-hash leaves; ours: heuristic)"
    else:
        raise PlygroundError(f"bench_alphabeta game must be 'tictactoe' or 'connect4', got {game!r}")

    counted = _openspiel_alpha_beta(*peer_args, count=True)
    peer_nodes = counted["nodes"]
    search(state, **options)  # loads the compiled code and the tables
    peer_rates, our_rates, ratios, peer_secs, our_secs = [], [], [], [], []
    half = counted["seconds"] / 2  # (the counted run is slower: a little more of ours per round)
    result = None
    for _ in range(rounds):
        nodes, spent, result = _time_ours(state, half, 2, **options)
        peer = _openspiel_alpha_beta(*peer_args)
        if (peer["value"], peer["action"]) != (counted["value"], counted["action"]):
            raise PlygroundError("OpenSpiel's search is not deterministic here: "
                                 "the node count does not apply")
        more_nodes, more_spent, result = _time_ours(state, half, 2, **options)
        nodes, spent = nodes + more_nodes, spent + more_spent
        peer_rates.append(peer_nodes / peer["seconds"])
        our_rates.append(nodes / spent)
        ratios.append(our_rates[-1] / peer_rates[-1])
        peer_secs.append(peer["seconds"])
        our_secs.append(spent * result.nodes / nodes)  # seconds per search() call
    ours = {"value": result.value, "action": result.best_action, "exact": result.exact,
            "score": result.score, "depth": result.depth, "nodes": result.nodes,
            "seconds": statistics.median(our_secs), "nodes_per_s": statistics.median(our_rates)}
    openspiel = {"value": counted["value"], "action": counted["action"], "nodes": peer_nodes,
                 "seconds": statistics.median(peer_secs), "nodes_per_s": statistics.median(peer_rates)}
    out: dict[str, Any] = {
        "game": game, "setting": setting, "rounds": rounds, "ours": ours, "openspiel": openspiel,
        "nodes_per_s_ratio": statistics.median(ratios),
        "nodes_per_s_ratios": ratios,
        "time_ratio": statistics.median(p / o for p, o in zip(peer_secs, our_secs)),
    }
    if game == "tictactoe":
        # the solver keeps its table between calls (its bounds stay valid): time a cold solve
        solve(state, all_values=False)  # load the code and allocate the table ...
        zero_solver_tables()            # ... then empty it
        t = time.perf_counter()
        cold = solve(state, all_values=False)
        out["ours_solver"] = {"cold_seconds": time.perf_counter() - t, "cold_nodes": cold.nodes,
                              "score": cold.score}
        out["solver_time_ratio"] = openspiel["seconds"] / out["ours_solver"]["cold_seconds"]
        ok = (ours["value"] == 0.0 and ours["exact"] and openspiel["value"] == 0.0
              and cold.score == 0)
    else:
        ok = ours["depth"] == options["depth"]
    out["ok"] = bool(ok)
    if verbose:
        print(f"alpha-beta on {game}: {setting}; {rounds} alternating rounds, medians")
        print(f"  OpenSpiel alpha_beta_search (Python): {peer_nodes:>9,d} nodes  "
              f"{openspiel['seconds'] * 1e3:9.3f} ms  {openspiel['nodes_per_s']:>13,.0f} nodes/s  "
              f"value {openspiel['value']:+.3f}  (timed without the node counter)")
        print(f"  plyground numba alpha-beta:           {ours['nodes']:>9,d} nodes  "
              f"{ours['seconds'] * 1e3:9.3f} ms  {ours['nodes_per_s']:>13,.0f} nodes/s  "
              f"value {ours['value']:+.3f}  (wall clock of the whole search() call)")
        if "ours_solver" in out:
            sv = out["ours_solver"]
            print(f"  plyground numba solver (cold table):  {sv['cold_nodes']:>9,d} nodes  "
                  f"{sv['cold_seconds'] * 1e3:9.3f} ms  score {sv['score']:+d}")
        print(f"  ratio ours/OpenSpiel: nodes/s {out['nodes_per_s_ratio']:.1f}x "
              f"(rounds: {', '.join(f'{r:.1f}' for r in ratios)}), "
              f"time {out['time_ratio']:.1f}x faster"
              + (f"; solver {out['solver_time_ratio']:.0f}x faster" if "ours_solver" in out else ""))
        print(f"  check: {'ok' if ok else 'FAILED'}")
    return out


# ---------------------------------------------------------------- the solver on the solved positions
POSITIONS_FILE = "connect4_solved_positions.txt"


def default_positions():
    """The 280 solved connect-four positions shipped inside the package (``plyground/search/data/``,
    format in its README.md), as an ``importlib.resources`` traversable: it works from a wheel too."""
    from importlib.resources import files
    return files("plyground.search").joinpath("data", POSITIONS_FILE)


def load_positions(path: str | Path | None = None) -> list[tuple[str, int]]:
    """The ``MOVES SCORE`` lines of a solved-positions file (default: the shipped copy)."""
    p = Path(path) if path is not None else default_positions()
    if not p.is_file():
        where = "the installed package lacks its data" if path is None else "give an existing file"
        raise PlygroundError(f"solved positions file not found: {str(p)!r} ({where})")
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
    """Solve the solved connect-four positions (``path``, default the shipped copy) with ``stones``
    stones; check every score.

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
        print("connect-four solver on the solved positions "
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
