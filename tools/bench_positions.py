"""The share of the 280 solved connect-four positions where an agent's move keeps the exact score.

    python tools/bench_positions.py --agent neural --agent mcts:sims=2000

A move is best when it keeps the game-theoretic score (search/data/connect4_best_moves.txt, from our
exact solver, every score checked against the independent solver's file).  Prints, per agent and per
stone count, best moves / positions with a 95% Wilson interval, and the overall share.
"""

from __future__ import annotations

import argparse
import json
import math
from importlib import resources


def best_moves() -> list[tuple[str, int, set[int]]]:
    text = (resources.files("plyground.search") / "data" / "connect4_best_moves.txt").read_text()
    out = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            moves, score, cols = line.split()
            out.append((moves, int(score), {int(c) - 1 for c in cols}))
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def run(spec: str, seed: int = 0) -> dict:
    from plyground import agents, games

    game = games.make("connect4")
    agent = agents.make(spec)
    agent.check_game(game)
    agent.warm_up(game)
    per: dict[int, list[int]] = {}
    for i, (moves, _, best) in enumerate(best_moves()):
        agent.reset(seed + i)
        d = agent.act(games.play_moves(game, moves))
        hit = per.setdefault(len(moves), [0, 0])
        hit[0] += d.action in best
        hit[1] += 1
    k, n = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
    return {"agent": spec, "best": k, "positions": n, "share": k / n, "interval": wilson(k, n),
            "by_stones": {s: {"best": v[0], "positions": v[1], "share": v[0] / v[1], "interval": wilson(*v)}
                          for s, v in sorted(per.items())}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agent", action="append", required=True, help="agent spec (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for spec in args.agent:
        r = run(spec, args.seed)
        if args.json:
            print(json.dumps(r))
            continue
        lo, hi = r["interval"]
        print(f"{spec}: {r['best']}/{r['positions']} best moves = {100 * r['share']:.1f}% "
              f"(95% {100 * lo:.1f}-{100 * hi:.1f})")
        for s, v in r["by_stones"].items():
            lo, hi = v["interval"]
            print(f"  {s:2d} stones: {v['best']:2d}/{v['positions']} = {100 * v['share']:5.1f}% "
                  f"({100 * lo:.0f}-{100 * hi:.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
