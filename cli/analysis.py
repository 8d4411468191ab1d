"""CLI: ``plyground analyze position | games | suite`` and ``plyground arena report`` (the logic lives in
plyground.arena.analysis / report / suite; ``analyze position`` is cli/analyze.py)."""

from __future__ import annotations

import argparse
import json
import sys

from plyground.games.errors import PlygroundError

ANALYZE_COMMANDS = ("position", "games", "suite")


def legacy_argv(argv: list[str]) -> list[str]:
    """``plyground analyze GAME ...`` (the one-position form from before the subcommands) means
    ``plyground analyze position GAME ...``."""
    if len(argv) >= 2 and argv[0] == "analyze" and argv[1] not in ANALYZE_COMMANDS and not argv[1].startswith("-"):
        return ["analyze", "position", *argv[1:]]
    return argv


def add_parsers(arena_sub: argparse._SubParsersAction, top_sub: argparse._SubParsersAction) -> None:
    """Add ``analyze`` (top level, with its subcommands) and ``arena report``."""
    a = top_sub.add_parser(
        "analyze", help="analyse a position, re-analyse recorded games, or run a suite of solved positions",
        description="position: search one position; games: judge every move of recorded games with an engine "
                    "(stored in the record); suite: the share of best moves an agent plays in solved positions.",
        epilog="'plyground analyze GAME --moves MOVES' still means 'plyground analyze position GAME --moves MOVES'.")
    sub = a.add_subparsers(dest="analyze_command", metavar="COMMAND", required=True)

    q = sub.add_parser("position", help="search one position: value, best move, per-move scores",
                       description="Analyse the position after MOVES with an engine and print its value for the "
                                   "player to move, the best move, per-move scores, nodes and time.")
    q.add_argument("game", metavar="GAME")
    q.add_argument("--moves", default="", help="moves from the start in the game's notation "
                                                "(connect4: 1-based columns, e.g. 4453)")
    q.add_argument("--engine", choices=("minimax", "mcts"), default="minimax")
    q.add_argument("--budget", default="auto",
                   help="exact | depth=N | nodes=N | time=SECONDS | sims=N (mcts); several comma-separated. "
                        "auto (default): minimax tries an exact solve for 1 s, else reports the deepest search it "
                        "finished; mcts runs 10000 simulations")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=_cmd_position)

    q = sub.add_parser(
        "games", help="judge every move of recorded games (values, best move, loss, label) into the record",
        description="For every move of the chosen games: the engine's value of the position before and after it "
                    "from the mover's view (-1..1), its best move and principal variation, the loss and a label "
                    "(inaccuracy / mistake / blunder at a win-chance drop of 0.1 / 0.2 / 0.3; exact where both "
                    "values are proven).  Rows go into the record's analysis table keyed by game, ply and engine "
                    "configuration: running the command again resumes, and never redoes a recorded move.",
        epilog="Engines: solver (exact alpha-beta; budget time=S (default 1), nodes=N or exact), minimax (depth=N "
               "(default 8), time=S, nodes=N), mcts (sims=N (default 10000), time=S), neural-mcts (sims=N (default "
               "800), model=PATH).  A budget can ride on the engine: --engine solver:time=2.  "
               "Example: plyground analyze games --db arena.db --engine solver --budget time=1")
    q.add_argument("--db", required=True, metavar="FILE", help="the record (SQLite) written by 'plyground arena run'")
    which = q.add_mutually_exclusive_group()
    which.add_argument("--tournament", default=None, metavar="ID", help="only this tournament's games (id or name)")
    which.add_argument("--game-id", action="append", default=None, metavar="ID", help="a game to analyse (repeatable)")
    q.add_argument("--engine", action="append", default=None, metavar="ENGINE",
                   help="solver (default), minimax, mcts or neural-mcts, optionally with NAME:BUDGET (repeatable)")
    q.add_argument("--budget", default=None,
                   help="the budget of every --engine given without one, e.g. time=1 | depth=8 | sims=2000 | exact")
    q.add_argument("--workers", type=int, default=None, help="processes (default: the number of CPU cores)")
    q.add_argument("--json", action="store_true",
                   help="print one JSON line per analysed move of the selection (game, ply, player, action, "
                        "best_action, value_before, value_after, exact, label, opening, ...)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_games)

    q = sub.add_parser(
        "suite", help="the share of best moves an agent plays in solved connect-four positions",
        description="Ask each agent for a move in every position of a file of solved positions ('MOVES SCORE "
                    "[BEST]' lines) and report the share of moves that keep the exact score, per stone count and "
                    "overall, with 95% Wilson intervals.",
        epilog="Default positions: the 280 solved positions shipped with plyground.  "
               "Example: plyground analyze suite --agent random --agent mcts:sims=2000")
    q.add_argument("--positions", default=None, metavar="FILE",
                   help="positions file (default: the shipped 280 positions with their best moves)")
    q.add_argument("--agent", action="append", required=True, metavar="SPEC", help="agent spec (repeatable)")
    q.add_argument("--seed", type=int, default=0, help="agents are reseeded with SEED + position index (default 0)")
    q.add_argument("--move-time", type=float, default=None, help="the clock handed to the agent per move (seconds)")
    q.add_argument("--json", action="store_true", help="print one JSON line per agent (with every answer)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_suite)

    q = arena_sub.add_parser(
        "report", help="per-agent move analysis: accuracy, loss, inaccuracies/mistakes/blunders, exact error rate",
        description="Summarise the analysis of the record's games (run 'plyground analyze games' first) per agent: "
                    "moves analysed, accuracy % (lichess's per-move formula, averaged per game), average loss, "
                    "inaccuracies / mistakes / blunders per 100 moves and the exact error rate where solved, each "
                    "by game phase (thirds by ply); for LLM agents also illegal first answers, re-asks, fallbacks, "
                    "tokens and latency per move.")
    q.add_argument("--db", required=True, metavar="FILE", help="the record (SQLite)")
    q.add_argument("--tournament", default=None, metavar="ID", help="only this tournament's games (id or name)")
    q.add_argument("--engine", default=None, metavar="ENGINE",
                   help="which analysis to read (needed when several engines analysed the games)")
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.add_argument("--out", default=None, metavar="DIR", help="also write report.json, PNG plots and a replay page per game "
                                                           "(index.html links them) into DIR")
    q.set_defaults(func=_cmd_report)


def _workers(n: int | None) -> int:
    from plyground.arena.analysis import default_workers
    if n is None:
        return default_workers()
    if n < 1:
        raise PlygroundError(f"--workers must be at least 1; got {n}")
    return n


def _cmd_position(args: argparse.Namespace) -> int:
    from plyground.cli.analyze import run_analyze
    return run_analyze(args)


def _cmd_games(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from plyground.arena.analysis import analyse_games, analysis_rows, parse_engine, select_games
    from plyground.arena.export import open_record

    engines = [parse_engine(e, args.budget) for e in (args.engine or ["solver"])]
    workers = _workers(args.workers)
    rec = open_record(args.db)     # a missing or foreign file, an unknown game or tournament: an error before the bar
    try:
        select_games(rec, args.tournament, args.game_id)
    finally:
        rec.close()
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]analysing moves"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=False, disable=args.quiet) as bar:
        task = bar.add_task("moves", total=None)
        summary = analyse_games(args.db, engines, tournament=args.tournament, game_ids=args.game_id, workers=workers,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
    rate = f", {summary.moves_per_second:.1f} moves/s" if summary.analysed else ""
    exact = f"; {summary.exact} of them exactly labelled" if summary.analysed else ""
    console.print(f"{', '.join(summary.engines)}: {summary.analysed} moves analysed in {summary.seconds:.1f}s on "
                  f"{workers} worker(s){rate}, {summary.already} already recorded, {summary.games} games{exact}")
    for name, why in summary.skipped.items():
        console.print(f"left out the games of {name}: {why}")
    for why in summary.unplayable.values():
        console.print(f"left out {why}")
    if args.json:
        keys = ("game", "ply", "engine", "player", "action", "best_action", "value_before", "value_after", "exact",
                "label", "loss", "opening", "pv", "detail")
        try:
            for r in analysis_rows(args.db, summary.game_ids, summary.engines):
                print(json.dumps({k: r[k] for k in keys}))
            sys.stdout.flush()
        except BrokenPipeError:   # the reader stopped early (| head): not an error
            import os
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _cmd_suite(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from plyground.arena.suite import load_suite, print_suite, run_suite

    positions = load_suite(args.positions)
    console = Console(stderr=True)
    out = Console()
    for spec in args.agent:
        with Progress(TextColumn(f"[bold]{spec}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=args.quiet) as bar:
            task = bar.add_task(spec, total=len(positions))
            r = run_suite(spec, positions, seed=args.seed, move_time=args.move_time,
                          progress=lambda done, total: bar.update(task, completed=done))
        if args.json:
            print(json.dumps(r))
        else:
            print_suite(r, out)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from plyground.arena.report import build_report, print_report, write_report

    report = build_report(args.db, tournament=args.tournament, engine=args.engine)
    if args.out:
        from plyground.arena.export import open_record
        from plyground.arena.replay_page import write_index
        paths = write_report(report, args.out)
        with open_record(args.db) as record:     # a replay page per game, linked from index.html
            paths.append(write_index(record, args.tournament, args.out, engine=report.engine))
        print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json(), indent=1, sort_keys=True))
    else:
        print_report(report)
    return 0
