"""Arena throughput on fast agents (random vs random, connect4) with 1 and 2 workers, and the
parent's recording overhead per game.

    python -m plyground.arena.bench [--games 2000] [--workers 1,2] [--repeats 3] [--json]

Both runs record every game to a fresh SQLite file the same way (the runner's group commit).  Rates
are steady-state and measured the same way for every worker count: from the first commit at which
``warmup`` (10%) of the games are recorded to the last commit, so pool start-up (spawning workers,
loading numba kernels) is excluded; the excluded warm-up time is printed too.  "recording" is the
parent's wall time inside commits per game.  The in-process row plays the same games with
``play_game`` in one process with no record at all (the game alone).  The machine's load average is
printed: other processes on the cores skew the wall-clock ratio.  So the steady-state CPU per game of
the parent (P, all its threads) and of the workers (W, from /proc, sampled at the progress callbacks)
is printed too, with the load-independent ceiling for 2 workers on 2 idle cores, 2W/(W+P).

A virtual machine's speed drifts by 10-20% over seconds, which moves a single ratio as much.  So the
worker counts alternate (1, 2, 1, 2, ... for ``--repeats`` rounds) and each speed-up is the median
over the rounds of that round's rate against the same round's first worker count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path


def bench_config(games: int, seed: int = 0):
    """Random vs random on connect4, ``games`` games in colour-swapped pairs."""
    from plyground.arena.config import config_from_dict
    return config_from_dict({"name": "bench", "game": "connect4", "seed": seed, "games_per_pairing": games,
                             "agents": ["random", {"agent": "random", "seed": 1, "name": "random-b"}]})


def in_process_rate(games: int) -> tuple[float, float]:
    """(games per second, CPU ms per game) of ``play_game`` alone: no workers, no record (after a warm-up)."""
    from plyground import agents
    from plyground import games as games_mod
    from plyground.arena.match import play_game
    g = games_mod.make("connect4")
    a, b = agents.make("random"), agents.make("random:seed=1")
    for i in range(20):  # load the numba kernels first
        play_game(g, (a, b), seed=i)
    t, c = time.perf_counter(), time.process_time()
    for i in range(games):
        play_game(g, (a, b) if i % 2 == 0 else (b, a), seed=i)
    return games / (time.perf_counter() - t), 1000 * (time.process_time() - c) / games


def steady_rate(commits: list[tuple[float, int]], games: int, warmup: float = 0.1) -> tuple[float, float]:
    """(games per second, start time) between the first commit with ``warmup * games`` games recorded and
    the last commit; ``commits`` are a run's (monotonic time, games recorded so far)."""
    start = next(((t, n) for t, n in commits if n >= warmup * games), None)
    if start is None or commits[-1][1] <= start[1] or commits[-1][0] <= start[0]:
        return float("nan"), float("nan")
    return (commits[-1][1] - start[1]) / (commits[-1][0] - start[0]), start[0]


def _children_cpu() -> float:
    """CPU seconds used so far by this process's live child processes (the pool's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for kids in Path("/proc/self/task").glob("*/children"):
        try:
            pids = kids.read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(f[11]) + int(f[12])) / tick  # utime, stime
    return total


def run_bench(games: int = 2000, workers: tuple[int, ...] = (1, 2), backend: str = "local",
              warmup: float = 0.1, repeats: int = 1) -> dict:
    """Run the benchmark tournament once per worker count, ``repeats`` alternating rounds; returns
    rates, per-round and median speed-ups, and the recording overhead."""
    from plyground.arena.runner import run_tournament
    from plyground.games.errors import PlygroundError
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise PlygroundError(f"repeats must be an integer >= 1, got {repeats!r}")
    if not workers or any(w < 1 for w in workers):
        raise PlygroundError(f"worker counts must be integers >= 1, got {list(workers)!r}")
    cfg = bench_config(games)
    load0 = os.getloadavg()
    rate, cpu = in_process_rate(min(games, 500))
    out: dict = {"games": games, "backend": backend, "in_process_games_per_s": rate, "game_cpu_ms": cpu,
                 "warmup": warmup, "repeats": repeats, "runs": []}
    for rnd, w in ((r, w) for r in range(repeats) for w in workers):
        with tempfile.TemporaryDirectory() as d:
            r0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.monotonic()
            samples: list[tuple[int, float, float]] = []  # (games recorded, parent CPU, workers' CPU)

            def progress(status) -> None:  # at most 10 Hz: CPU of the parent and the live workers
                samples.append((status.done, time.process_time(), _children_cpu()))

            s = run_tournament(cfg, Path(d) / "bench.db", workers=w, backend=backend, progress=progress)
            wall = time.monotonic() - t
            r1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        parent_cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000 / games
        worker_cpu = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) * 1000 / games
        steady, start = steady_rate(s.commits, games, warmup)
        # steady-state CPU per game (same window idea: from the first sample past the warm-up to the end)
        first = next((x for x in samples if x[0] >= warmup * games), None)
        last = samples[-1] if samples else None
        if first is not None and last[0] > first[0]:
            n = last[0] - first[0]
            p_steady, w_steady = 1000 * (last[1] - first[1]) / n, 1000 * (last[2] - first[2]) / n
        else:
            p_steady = w_steady = float("nan")
        out["runs"].append({"round": rnd, "workers": w, "games_per_s": steady, "wall_s": wall, "startup_s": start - t,
                            "record_ms_per_game": s.record_ms_per_game, "commits": len(s.record_seconds),
                            "parent_cpu_ms_per_game": parent_cpu, "worker_cpu_ms_per_game": worker_cpu,
                            "record_ms_max": 1000 * max(s.record_seconds, default=0.0),
                            "steady_parent_cpu_ms_per_game": p_steady, "steady_worker_cpu_ms_per_game": w_steady})
    for rnd in range(repeats):
        runs = [r for r in out["runs"] if r["round"] == rnd]
        for r in runs:
            r["speedup"] = r["games_per_s"] / runs[0]["games_per_s"]
    out["median_speedup"] = {w: statistics.median(r["speedup"] for r in out["runs"] if r["workers"] == w)
                             for w in workers}
    # On C idle cores the parent (P ms CPU per game) shares them with the workers (W ms per game), so
    # W workers can at best reach min(w, C*W/(W+P)) x one worker's rate: the load-independent ceiling.
    # W and P are steady-state CPU per game, medians over the runs with the most workers
    most = [r for r in out["runs"] if r["workers"] == max(workers)]
    w_ms = statistics.median(r["steady_worker_cpu_ms_per_game"] for r in most)
    p_ms = statistics.median(r["steady_parent_cpu_ms_per_game"] for r in most)
    out["ceiling_2_workers_on_2_cores"] = min(2.0, 2 * w_ms / (w_ms + p_ms))
    out["load_average_before"], out["load_average_after"] = list(load0), list(os.getloadavg())
    out["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m plyground.arena.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--games", type=int, default=2000, help="games per run (default 2000)")
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--repeats", type=int, default=3,
                   help="alternating rounds over the worker counts; speed-ups are medians (default 3)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        counts = tuple(int(x) for x in args.workers.split(","))
    except ValueError:
        p.error(f"--workers {args.workers!r}: expected comma-separated integers, e.g. 1,2")
    if args.games < 10:
        p.error(f"--games {args.games}: at least 10 games are needed for a steady-state rate")
    if args.repeats < 1:
        p.error(f"--repeats {args.repeats}: must be 1 or more")
    if any(w < 1 for w in counts):
        p.error(f"--workers {args.workers!r}: every worker count must be 1 or more")
    res = run_bench(args.games, counts, args.backend, repeats=args.repeats)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"random vs random, connect4, {res['games']} games, backend {res['backend']}, {res['cores']} cores, "
          f"load average before {res['load_average_before'][0]:.2f}, after {res['load_average_after'][0]:.2f}")
    print(f"  in-process play_game, no record: {res['in_process_games_per_s']:.0f} games/s, "
          f"{res['game_cpu_ms']:.2f} ms CPU per game")
    for r in res["runs"]:
        print(f"  round {r['round'] + 1}, {r['workers']} worker(s): {r['games_per_s']:.0f} games/s steady-state "
              f"(x{r['speedup']:.2f}), "
              f"wall {r['wall_s']:.1f}s incl. {r['startup_s']:.1f}s start-up+warm-up; recording "
              f"{r['record_ms_per_game']:.3f} ms/game ({r['commits']} commits, slowest {r['record_ms_max']:.1f} ms); "
              f"CPU per game: parent "
              f"{r['parent_cpu_ms_per_game']:.3f} ms, workers {r['worker_cpu_ms_per_game']:.3f} ms (whole run, incl. "
              f"start-up); steady state: parent {r['steady_parent_cpu_ms_per_game']:.3f} ms, workers "
              f"{r['steady_worker_cpu_ms_per_game']:.3f} ms")
    print("  median speed-up over " + f"{res['repeats']} rounds: "
          + ", ".join(f"{w} worker(s) x{v:.2f}" for w, v in res["median_speedup"].items()))
    print(f"  ceiling for 2 workers on 2 idle cores, from steady-state CPU per game (workers W, parent P): "
          f"2W/(W+P) = x{res['ceiling_2_workers_on_2_cores']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
