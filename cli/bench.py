"""``plyground bench``: our engines against their OpenSpiel peers, measured in one process."""

from __future__ import annotations

import argparse
import json


def run_bench(args: argparse.Namespace) -> int:
    if args.what == "mcts":
        from plyground.search.bench_mcts import bench_mcts
        result = bench_mcts(game=args.game or "connect4", sims=args.sims, repeats=args.repeats, verbose=not args.json)
    elif args.what == "alphabeta":
        from plyground.search.bench_alphabeta import bench_alphabeta
        result = bench_alphabeta(game=args.game or "tictactoe", verbose=not args.json)
    else:
        from plyground.search.bench_alphabeta import bench_solver
        kwargs = {"path": args.positions} if args.positions else {}
        result = bench_solver(verbose=not args.json, **kwargs)
    if args.json:
        print(json.dumps(result, default=str))
    return 0
