"""The ``plyground`` command: thin; it parses arguments and calls the packages below it."""

from __future__ import annotations

import argparse
import json
import sys

from plyground.games.errors import PlygroundError

EPILOG = "Run 'plyground COMMAND --help' for a command's options."


def _cmd_play(args: argparse.Namespace) -> int:
    from plyground.cli.play import run_play
    return run_play(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from plyground.cli.bench import run_bench
    return run_bench(args)


def _cmd_games(args: argparse.Namespace) -> int:
    from plyground import games
    names = games.list_games()
    if args.json:
        print(json.dumps(names))
    else:
        print("\n".join(names))
    return 0


def _cmd_agents(args: argparse.Namespace) -> int:
    from plyground.agents import list_agents
    rows = list_agents()
    if args.json:
        print(json.dumps([{"name": n, "summary": s, "params": p} for n, s, p in rows], indent=1))
        return 0
    for name, summary, params in rows:
        print(f"{name:16s} {summary}\n{'':16s} params: {params or '-'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="plyground",
        description="Game-playing search agents: numba alpha-beta and MCTS, OpenSpiel and PettingZoo games.",
        epilog=EPILOG)
    from plyground import __version__
    p.add_argument("--version", action="version", version=f"plyground {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    q = sub.add_parser("play", help="play colour-swapped games between two agents and print the score",
                       description="Play N games between AGENT_A and AGENT_B, swapping who moves first every game; "
                                   "print the score and each game's moves.",
                       epilog="Agents are specs like random, minimax:depth=8, mcts:sims=2000,c=1.4, openspiel-mcts:sims=1000, human. "
                              "See 'plyground agents'.")
    q.add_argument("game", metavar="GAME", help="tictactoe, connect4, openspiel:<game>, pettingzoo:<env>")
    q.add_argument("agent_a", metavar="AGENT_A")
    q.add_argument("agent_b", metavar="AGENT_B")
    q.add_argument("--games", type=int, default=2, help="number of games (default 2: one pair)")
    q.add_argument("--seed", type=int, default=0, help="seed for every agent and game (default 0)")
    q.add_argument("--move-time", type=float, default=None, help="seconds per move; an agent over it forfeits")
    q.add_argument("--json", action="store_true", help="print the games as JSON lines instead of text")
    q.set_defaults(func=_cmd_play)

    q = sub.add_parser("bench", help="benchmark our engines against OpenSpiel in the same process",
                       description="Run our engine and its OpenSpiel peer in one process and print both rates and the ratio.")
    q.add_argument("what", choices=("mcts", "alphabeta", "solver"),
                   help="mcts: vs OpenSpiel's C++ MCTSBot; alphabeta: vs OpenSpiel's Python alpha_beta_search; "
                        "solver: exact connect4 solving of the 280 solved positions shipped with plyground")
    q.add_argument("--game", choices=("connect4", "tictactoe"), default=None,
                   help="default: connect4 for mcts, tictactoe for alphabeta")
    q.add_argument("--sims", type=int, default=20000, help="mcts: simulations per search (default 20000)")
    q.add_argument("--repeats", type=int, default=3, help="mcts: searches per engine (default 3)")
    q.add_argument("--positions", default=None, help="solver: a 'MOVES SCORE' positions file (default: the copy shipped with plyground)")
    q.add_argument("--stones", default=None,
                   help="solver: comma-separated stone counts to run (default: all of 8,12,...,32)")
    q.add_argument("--cpp-solver", default=None, metavar="BINARY",
                   help="solver: also run a C++ solver reading 'MOVES' lines on stdin and printing "
                        "'MOVES SCORE [NODES MICROSECONDS]', for a same-machine comparison")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_bench)

    q = sub.add_parser("arena", help="recorded tournaments, ratings, export and import of results",
                       description="Run tournaments recorded in SQLite, rate the players, export and import games.",
                       epilog="Run 'plyground arena COMMAND --help' for a command's options.")
    arena_sub = q.add_subparsers(dest="arena_command", metavar="COMMAND", required=True)
    from plyground.cli import analysis, arena_io, arena_ratings, arena_run
    for module in (arena_run, arena_ratings, arena_io, analysis):
        module.add_parsers(arena_sub, sub)

    from plyground.cli import datasets as datasets_cli
    datasets_cli.add_parsers(sub)

    from plyground.cli import train as train_cli
    train_cli.add_parsers(sub)

    q = sub.add_parser("games", help="list the game names 'make' accepts")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_games)

    q = sub.add_parser("agents", help="list the agents and their parameters")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_agents)
    return p


def main(argv: list[str] | None = None) -> int:
    from plyground.cli.analysis import legacy_argv
    parser = build_parser()
    args = parser.parse_args(legacy_argv(list(sys.argv[1:] if argv is None else argv)))
    try:
        return args.func(args)
    except PlygroundError as e:
        print(f"plyground {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
