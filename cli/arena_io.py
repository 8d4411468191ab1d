"""CLI: ``arena export``, ``arena import-pgn`` and the top-level ``replay``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plyground.games.errors import PlygroundError


def _cmd_export(args: argparse.Namespace) -> int:
    from plyground.arena.export import export_jsonl, export_pgn, open_record
    record = open_record(args.db)
    try:
        out = sys.stdout if args.out in (None, "-") else None
        if out is None:
            path = Path(args.out)
            if path.parent and not path.parent.is_dir():
                raise PlygroundError(f"--out {args.out!r}: the folder {str(path.parent)!r} does not exist")
            out = path.open("w", encoding="utf-8")
        try:
            if args.format == "jsonl":
                n, skipped = export_jsonl(record, out, args.tournament), []
            else:
                summary = export_pgn(record, out, args.tournament, engine=args.engine)
                n, skipped = summary.written, summary.skipped
        finally:
            if out is not sys.stdout:
                out.close()
    finally:
        record.close()
    for s in skipped:
        print(f"skipped {s}", file=sys.stderr)
    where = f" to {args.out}" if args.out not in (None, "-") else ""
    print(f"exported {n} game(s) as {args.format}{where}", file=sys.stderr)
    return 0


def _cmd_import_pgn(args: argparse.Namespace) -> int:
    from plyground.arena.importer import import_pgn
    from plyground.arena.pgn import read_pgn
    from plyground.arena.record import Record
    read_pgn(args.pgn)  # parse errors before the database is created
    with Record(args.db) as record:
        summary = import_pgn(args.pgn, record, notify=lambda msg: print(msg, file=sys.stderr))
    print(f"tournament {summary.tournament}: {summary.added} game(s) added, {summary.already} already recorded, "
          f"{summary.skipped} skipped")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.html:
        return _replay_html(args)
    from plyground.arena.replay import replay_game, run_interactive
    replay = replay_game(args.db, args.game_id)
    if args.ply is not None and not 0 <= args.ply <= replay.last:
        raise PlygroundError(f"--ply {args.ply} is out of range: game {args.game_id} has plies 0 to {replay.last}")
    if sys.stdin.isatty() and sys.stdout.isatty() and not args.all:
        run_interactive(replay, start=args.ply or 0)
        return 0
    print(replay.header())
    plies = [args.ply] if args.ply is not None and not args.all else range(len(replay.frames))
    for i in plies:
        print(replay.render(i))
        print()
    return 0


def _replay_html(args: argparse.Namespace) -> int:
    from plyground.arena.export import open_record
    from plyground.arena.replay_page import write_game_page
    if args.ply is not None or args.all:
        raise PlygroundError("--ply and --all are for the text replay; the page opens at a ply with #ply=N "
                             "after its address")
    record = open_record(args.db)
    try:
        path = write_game_page(record, args.game_id, args.html, engine=args.engine)
    finally:
        record.close()
    print(f"wrote {path} (open it in a browser; it works offline; add #ply=N to open at ply N)", file=sys.stderr)
    return 0


def add_parsers(arena_sub: argparse._SubParsersAction, top_sub: argparse._SubParsersAction) -> None:
    """Add this module's commands: under 'plyground arena' (arena_sub) or top-level (top_sub)."""
    q = arena_sub.add_parser("export", help="write recorded games as JSON lines or PGN",
                             description="Write the record's games: jsonl (every game, one JSON object a line with "
                                         "id, game, players, returns, termination, moves and their statistics) or "
                                         "pgn (chess games with their moves in SAN, other two-player games as "
                                         "results-only PGN for rating tools).")
    q.add_argument("--db", required=True, metavar="FILE", help="the arena record (SQLite)")
    q.add_argument("--format", required=True, choices=("jsonl", "pgn"))
    q.add_argument("--out", default=None, metavar="FILE", help="output file (default: standard output)")
    q.add_argument("--tournament", default=None, metavar="ID", help="only this tournament's games")
    q.add_argument("--engine", default=None, metavar="ENGINE",
                   help="pgn: whose analysis gives the chess moves' [%%eval] and NAGs (default: each game's "
                        "proven/solver engine, else the one with the most rows); jsonl carries every engine's")
    q.set_defaults(func=_cmd_export)

    q = arena_sub.add_parser("import-pgn", help="import the results of a PGN file as rated games",
                             description="Every game of the PGN with a result 1-0, 0-1 or 1/2-1/2 becomes a rated "
                                         "game between players pgn:<Name> (unfinished '*' games are skipped with a "
                                         "notice). Chess moves are kept when they replay legally. Importing the "
                                         "same file again adds nothing.")
    q.add_argument("pgn", metavar="FILE.pgn")
    q.add_argument("--db", required=True, metavar="FILE", help="the arena record (created if missing)")
    q.set_defaults(func=_cmd_import_pgn)

    q = top_sub.add_parser("replay", help="step through a recorded game with each mover's statistics",
                           description="Show the board after every ply of a recorded game with the mover's "
                                       "statistics (value, depth, nodes/simulations, pv, top moves, think time, "
                                       "LLM use). In a terminal: n/Enter next, p previous, g N go to ply N, q quit; "
                                       "otherwise every ply is printed. With --html OUT.html: one self-contained "
                                       "page instead (SVG boards, controls, evaluation graph, each move's "
                                       "statistics and LLM replies; no server, no network).")
    q.add_argument("game_id", metavar="GAME_ID")
    q.add_argument("--db", required=True, metavar="FILE", help="the arena record (SQLite)")
    q.add_argument("--ply", type=int, default=None, metavar="N",
                   help="start at ply N (in a terminal) or print only ply N (otherwise)")
    q.add_argument("--all", action="store_true", help="print every ply instead of stepping, even in a terminal")
    q.add_argument("--html", default=None, metavar="OUT.html",
                   help="write the game as one self-contained HTML page instead (board, controls, evaluation "
                        "graph, each move's statistics; works offline)")
    q.add_argument("--engine", default=None, metavar="ENGINE",
                   help="with --html: whose analysis to show when several engines analysed the game "
                        "(default: a proven/solver one, else the one with the most rows)")
    q.set_defaults(func=_cmd_replay)
