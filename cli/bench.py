"""``plyground bench``: our engines against their OpenSpiel peers, measured in one process."""

from __future__ import annotations

import argparse
import json


def run_bench(args: argparse.Namespace) -> int:
    if args.what == "mcts":
        from plyground.search.bench_mcts import bench_mcts
        result = bench_mcts(game=args.game or "connect4", sims=args.sims, repeats=args.repeats,
                            out=None if args.json else print)
    elif args.what == "alphabeta":
        from plyground.search.bench_alphabeta import bench_alphabeta
        result = bench_alphabeta(game=args.game or "tictactoe", verbose=not args.json)
    else:
        from plyground.search.bench_alphabeta import bench_solver
        from plyground.games.errors import PlygroundError
        kwargs: dict = {"path": args.positions, "cpp_solver": args.cpp_solver}
        if args.stones:
            try:
                kwargs["stones"] = tuple(int(x) for x in args.stones.split(","))
            except ValueError:
                raise PlygroundError(f"--stones takes comma-separated integers, got {args.stones!r}") from None
        result = bench_solver(verbose=not args.json, **kwargs)
    if args.json:
        print(json.dumps(result, default=str))
    return 0
