"""Self-play throughput against the network's bare batched forward throughput, in one process.

    python tools/bench_selfplay.py --model runs/selfplay-connect4/generations/gen-010.pt --games 128

Prints network evaluations per second inside self-play (all leaves evaluated, over the self-play's
wall time: tree work, encoding and move bookkeeping included), the same network's best bare forward
throughput over the batch sizes self-play sends (pre-encoded positions, nothing else), their
ratio, and self-play positions (moves) per second.  Both use the same torch thread count.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--game", default="connect4")
    ap.add_argument("--model", help="network checkpoint (default: a fresh network of --width/--blocks)")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--games", type=int, default=128, help="games in lockstep")
    ap.add_argument("--sims", type=int, default=100)
    ap.add_argument("--leaves", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0, help="bare forward: time to measure")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    from plyground import games
    from plyground.agents.neural.checkpoint import save_network
    from plyground.agents.neural.network import NetConfig, PolicyValueNet
    from plyground.agents.neural.evaluator import NetEvaluator
    from plyground.datasets.selfplay import play_selfplay_task

    torch.set_num_threads(args.threads)
    game = games.make(args.game)
    model = args.model
    if model is None:
        import tempfile
        torch.manual_seed(0)
        net = PolicyValueNet(NetConfig(tuple(game.observation_tensor_shape()), game.num_distinct_actions(),
                                       width=args.width, blocks=args.blocks))
        model = tempfile.mktemp(suffix=".pt")
        save_network(model, net, game.name)
    settings = {"sims": args.sims, "c": 1.5, "leaves": args.leaves, "dirichlet_alpha": 1.0, "dirichlet_frac": 0.25,
                "temperature_plies": 8}
    task = {"game": game.name, "model": model, "settings": settings, "ids": [f"b{i}" for i in range(args.games)],
            "seed": 1, "tournament": "bench", "generation": 0, "index": 0, "players": ["p", "p"]}
    play_selfplay_task({**task, "ids": ["warm"]})          # load the network, compile the kernels
    t = time.perf_counter()
    res = play_selfplay_task(task)
    sp_seconds = time.perf_counter() - t
    sp_rate = res["evaluations"] / sp_seconds
    batch = args.games * args.leaves
    # bare forward on batches of the self-play's size: positions from the games just played
    from plyground.datasets.selfplay import _evaluator
    ev: NetEvaluator = _evaluator(model, game)
    states = []
    for row, moves in res["games"]:
        s = game.new_initial_state()
        for m in moves:
            states.append(s.array.copy())
            s.apply_action(m[3])
    states = np.stack(states)[np.random.default_rng(0).integers(0, len(states), batch)]
    from plyground.games.native.encode import encode
    obs = np.empty((batch, *game.observation_tensor_shape()), np.float32)
    player, mask = np.empty(batch, np.int64), np.empty((batch, game.num_distinct_actions()), np.bool_)
    encode(game.name, states, obs, player, mask)
    # Self-play's batches shrink as games end, and per-position speed depends on the batch size: the
    # denominator is the best bare rate over the batch sizes self-play sends (the largest and its halves).
    sizes = sorted({max(1, batch >> k) for k in range(4)})
    by_size = {}
    for size in sizes:
        o, pl, m = obs[:size], player[:size], mask[:size]
        ev.evaluate_arrays(o, pl, m)
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < args.seconds / len(sizes):
            ev.evaluate_arrays(o, pl, m)
            n += size
        by_size[size] = n / (time.perf_counter() - t)
    best = max(by_size, key=by_size.get)
    bare = by_size[best]
    out = {"game": game.name, "games": args.games, "sims": args.sims, "leaves": args.leaves, "batch": batch,
           "threads": args.threads, "selfplay_evaluations_per_second": sp_rate, "bare_forward_per_second": bare,
           "ratio": sp_rate / bare, "bare_by_batch": by_size, "positions_per_second": res["positions"] / sp_seconds,
           "selfplay_seconds": sp_seconds, "positions": res["positions"], "evaluations": res["evaluations"]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{game.name}: {args.games} games in lockstep, {args.sims} simulations a move, {args.leaves} leaves "
              f"per tree per call (batches up to {batch}), {args.threads} torch thread(s)")
        print(f"  self-play:    {sp_rate:10.0f} network evaluations/s ({res['positions']} positions, "
              f"{out['positions_per_second']:.1f} positions/s)")
        print("  bare forward: " + ", ".join(f"{r:.0f}/s at {s}" for s, r in by_size.items())
              + f"; best {bare:.0f} positions/s (batches of {best})")
        print(f"  ratio:        {out['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
