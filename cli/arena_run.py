"""CLI: ``plyground arena run CONFIG.toml [--db FILE] [--workers N] [--backend local|ray]``
(the logic lives in plyground.arena.config / schedule / runner / record)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plyground.games.errors import PlygroundError


def add_parsers(arena_sub: argparse._SubParsersAction, top_sub: argparse._SubParsersAction) -> None:
    """Add this module's commands: under 'plyground arena' (arena_sub) or top-level (top_sub)."""
    q = arena_sub.add_parser(
        "run", help="play (or resume) a tournament from a TOML config, recorded in SQLite",
        description="Play the tournament CONFIG.toml describes (game, agents, round-robin / gauntlet / swiss, "
                    "games per pairing, colour-swapped pairs, openings, per-move time limit, seed) and record "
                    "every game in --db.  Running the same command again resumes it: recorded games are kept, "
                    "the others are played; none is played twice.  Prints the leaderboard at the end.",
        epilog="Faults are results: an agent that raises, runs out of time or plays an illegal move forfeits the "
               "game (agent_error, timeout, illegal_move); infrastructure errors are retried, then the game is "
               "recorded aborted (unrated).  Example: plyground arena run examples/default.toml")
    q.add_argument("config", metavar="CONFIG.toml", help="tournament config (see examples/default.toml)")
    q.add_argument("--db", default=None, metavar="FILE",
                   help="the record (SQLite, created if missing; default: arena.db in the current directory)")
    q.add_argument("--workers", type=int, default=None,
                   help="games played in parallel (default: the number of CPU cores)")
    q.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: a process pool (default); ray: Ray tasks (RAY_ADDRESS set: that cluster, "
                        "else a local Ray instance)")
    q.add_argument("--bootstrap", type=int, default=200,
                   help="bootstrap resamples for the leaderboard's intervals (default 200)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=run_arena_run)


def _workers(n: int | None) -> int:
    import os
    if n is None:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if n < 1:
        raise PlygroundError(f"--workers must be at least 1; got {n}")
    return n


def run_arena_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from plyground.arena.config import load_config
    from plyground.arena.runner import check_agents, run_tournament
    from plyground.arena.schedule import total_games

    cfg = load_config(args.config)
    check_agents(cfg)  # an agent that cannot play the game is refused before anything starts
    db = Path(args.db) if args.db else Path("arena.db")
    workers = _workers(args.workers)
    console = Console(stderr=True)
    console.print(f"[bold]{cfg.name}[/]: {cfg.format} of {len(cfg.agents)} agents on {cfg.game}, "
                  f"{total_games(cfg)} games, {workers} worker(s) ({args.backend}) -> {db}")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("running {task.fields[running]}"), TextColumn("leader: {task.fields[leader]}"),
                  TimeElapsedColumn(), console=console, transient=False, disable=args.quiet) as bar:
        task = bar.add_task("games", total=total_games(cfg), running=0, leader="-")

        def progress(status) -> None:
            n = status.warming  # workers compiling or loading before their first clocked move
            what = f"warming up {n} worker{'s' if n != 1 else ''} (compiling kernels, loading models)" if n else "games"
            bar.update(task, description=what, completed=status.done, total=status.total, running=status.running,
                       leader=status.leader or "-")

        summary = run_tournament(cfg, db, workers=workers, backend=args.backend, progress=progress)
    done = summary.already_done + summary.played
    extra = []
    if summary.already_done:
        extra.append(f"{summary.already_done} were already recorded")
    if summary.aborted:
        extra.append(f"{summary.aborted} aborted")
    if summary.retries:
        extra.append(f"{summary.retries} retries")
    if summary.killed:
        extra.append(f"{summary.killed} hung workers killed")
    console.print(f"tournament {summary.tournament_id}: {done}/{summary.total} games recorded, {summary.played} "
                  f"played in {summary.wall:.1f}s" + (f" ({', '.join(extra)})" if extra else "")
                  + f"; recording {summary.record_ms_per_game:.2f} ms/game")
    print_board(db, summary.tournament_id, args.bootstrap)
    return 0


def print_board(db: Path, tournament: str, bootstrap: int = 200) -> None:
    """The end-of-run summary of one tournament: the Bradley-Terry leaderboard with forfeits by kind and
    a line per agent that forfeited; for games without wins, draws and losses, each agent's mean return."""
    from plyground.arena.leaderboard import build_leaderboard, print_leaderboard, print_returns_table, returns_table
    try:
        board = build_leaderboard(str(db), tournament=tournament, bootstrap=bootstrap)
    except PlygroundError as e:
        if returns_table(db, tournament)[1] is not None:
            print_returns_table(db, tournament, title=f"Mean returns (tournament {tournament})")
        else:
            print(f"no ratings: {e}", file=sys.stderr)
        return
    print_leaderboard(board, title=f"Leaderboard (tournament {tournament})")
