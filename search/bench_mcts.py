"""Benchmark: our numba MCTS against OpenSpiel's C++ ``MCTSBot``, in the same process.

Both run plain UCT (``c``), one uniformly random rollout per leaf, no solver, ``sims`` simulations
from the initial state, a fresh tree each time.  The first call of ours (numba compilation or
cache load) is a warm-up outside the measurement; repeats alternate ours and theirs so that both
see the same machine load.  Run it as ``python -m plyground.search.bench_mcts --game connect4``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

OPENSPIEL_NAMES = {"connect4": "connect_four", "tictactoe": "tic_tac_toe"}


def bench_mcts(game: str = "connect4", sims: int = 20000, c: float = 2.0, repeats: int = 5, seed: int = 0,
               max_memory_mb: int = 1000, out: Callable[[str], None] | None = print) -> dict:
    """Simulations per second of our MCTS and OpenSpiel's MCTSBot on ``game``, and their ratio
    (medians over ``repeats`` alternating runs).  Returns the numbers as a dict."""
    import pyspiel

    from plyground import games
    from plyground.search.mcts import MCTS

    if game not in OPENSPIEL_NAMES:
        raise ValueError(f"bench_mcts game {game!r} is not one of {sorted(OPENSPIEL_NAMES)}")
    if sims < 1 or repeats < 1:
        raise ValueError(f"bench_mcts needs sims >= 1 and repeats >= 1; got sims={sims}, repeats={repeats}")
    ours_game = games.make(game)
    ps_game = pyspiel.load_game(OPENSPIEL_NAMES[game])

    def ours(k: int) -> float:
        engine = MCTS(sims=sims, c=c, variant="uct", solver=False, rollouts=1, reuse_tree=False, seed=seed + k)
        state = ours_game.new_initial_state()
        t = time.perf_counter()
        r = engine.search(state)
        dt = time.perf_counter() - t
        assert r.nodes == sims, (r.nodes, sims)
        return dt

    def theirs(k: int) -> float:
        evaluator = pyspiel.RandomRolloutEvaluator(1, seed + k)
        bot = pyspiel.MCTSBot(ps_game, evaluator, c, sims, max_memory_mb, False, seed + k, False)
        state = ps_game.new_initial_state()
        t = time.perf_counter()
        root = bot.mcts_search(state)
        dt = time.perf_counter() - t
        assert root.explore_count >= sims, (root.explore_count, sims)
        return dt

    t = time.perf_counter()
    MCTS(sims=64, c=c, solver=False, reuse_tree=False, seed=seed).search(ours_game.new_initial_state())
    warmup = time.perf_counter() - t
    ours_t, theirs_t = [], []
    for k in range(repeats):
        ours_t.append(ours(k))
        theirs_t.append(theirs(k))
    ours_rate = sims / statistics.median(ours_t)
    theirs_rate = sims / statistics.median(theirs_t)
    res = {
        "game": game, "sims": sims, "c": c, "repeats": repeats,
        "ours_sims_per_s": ours_rate, "openspiel_sims_per_s": theirs_rate, "ratio": ours_rate / theirs_rate,
        "ours_best_sims_per_s": sims / min(ours_t), "openspiel_best_sims_per_s": sims / min(theirs_t),
        "ours_us_per_sim": 1e6 * statistics.median(ours_t) / sims, "warmup_s": warmup,
    }
    if out is not None:
        out(f"MCTS {game}: UCT c={c}, 1 random rollout/leaf, no solver, {sims} simulations from the start, "
            f"median of {repeats} (warm-up {warmup:.2f} s excluded)")
        out(f"  plyground numba MCTS  {ours_rate:>12,.0f} sims/s  ({res['ours_us_per_sim']:.3f} us/sim, "
            f"best {res['ours_best_sims_per_s']:,.0f})")
        out(f"  OpenSpiel MCTSBot     {theirs_rate:>12,.0f} sims/s  (best {res['openspiel_best_sims_per_s']:,.0f})")
        out(f"  ratio                 {res['ratio']:>12.1f}x")
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", default="connect4", choices=sorted(OPENSPIEL_NAMES))
    ap.add_argument("--sims", type=int, default=20000)
    ap.add_argument("--c", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    bench_mcts(a.game, a.sims, a.c, a.repeats, a.seed)


if __name__ == "__main__":
    main()
