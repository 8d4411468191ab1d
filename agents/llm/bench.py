"""Benchmarks of the LLM backends: the cost of a score call against a completion, and of one
llm-minimax move's calls; and, through ``bench_agents``, the LLM agents' speed and strength.

    python -m plyground.agents.llm.bench                 # both, bundled model, 2 threads
    python -m plyground.agents.llm.bench score --repeats 20 --threads 2
    python -m plyground.agents.llm.bench speed --moves 12          # llm-minimax seconds per move
    python -m plyground.agents.llm.bench strength llm-minimax      # strength (100 games)

``bench_score``: one distribution over all legal connect4 moves (``score``) versus one short
completion (``chat``, max_tokens=8) on the same prompt; both from a cold KV cache (the prompt is
evaluated in full each time) and, for score, also warm (the previous call had the same prompt).
Target: score <= 2x the completion.  ``bench_tree``: the score calls of one llm-minimax move
(depth 2, k=3 per side: 1 proposer + 3 opponent + 9 value calls) with the KV cache carried from
call to call as in play.  ``speed`` and ``strength`` run ``bench_agents.minimax_speed`` and
``bench_agents.strength`` (see that module).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from plyground.agents.llm.local import LocalBackend


def _prompt(state: Any) -> tuple[list[dict[str, str]], list[str]]:
    """The llm-agents prompt for ``state`` (their templates), or a representative stand-in."""
    try:
        from plyground.agents.llm.prompts import move_continuations, move_prompt
        return move_prompt(state), move_continuations(state)
    except ImportError:
        legal = [str(a + 1) for a in state.legal_actions()]
        return ([{"role": "system", "content": "You are playing connect four. Moves are columns 1-7."},
                 {"role": "user", "content": f"Legal moves: {', '.join(legal)}\nBoard:\n{state}\n"
                                             "Give the best move."}], legal)


def _state(moves: str) -> Any:
    from plyground import games
    return games.play_moves(games.make("connect4"), moves)


def bench_score(position_moves: str = "4453", repeats: int = 10, n_threads: int = 2,
                model: str | None = None, max_tokens: int = 8, verbose: bool = True) -> dict[str, float]:
    """Median seconds of one move distribution (score over all legal moves) vs one short chat
    completion on the same connect4 prompt; prints both and the ratio (target <= 2)."""
    b = LocalBackend(model, n_threads=n_threads)
    msgs, conts = _prompt(_state(position_moves))
    b.score(msgs, conts)                              # load + warm up
    b.chat(msgs, max_tokens=max_tokens)
    cold, warm, comp, ntok = [], [], [], []
    for _ in range(repeats):
        b.reset_kv()
        t = time.perf_counter()
        b.score(msgs, conts)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        b.score(msgs, conts)
        warm.append(time.perf_counter() - t)
        b.reset_kv()
        t = time.perf_counter()
        c = b.chat(msgs, max_tokens=max_tokens)
        comp.append(time.perf_counter() - t)
        ntok.append(c.stats.completion_tokens)
    out = {"score_cold_s": statistics.median(cold), "score_warm_s": statistics.median(warm),
           "completion_s": statistics.median(comp), "completion_tokens": statistics.median(ntok),
           "prompt_tokens": c.stats.prompt_tokens, "moves": len(conts)}
    out["ratio_cold"] = out["score_cold_s"] / out["completion_s"]
    out["ratio_warm"] = out["score_warm_s"] / out["completion_s"]
    if verbose:
        print(f"connect4 {position_moves!r}: {len(conts)} legal moves, prompt {out['prompt_tokens']} "
              f"tokens, {n_threads} thread(s), median of {repeats}")
        print(f"  score (all moves, cold KV)  {out['score_cold_s'] * 1e3:8.1f} ms")
        print(f"  score (all moves, warm KV)  {out['score_warm_s'] * 1e3:8.1f} ms")
        print(f"  chat max_tokens={max_tokens} (cold KV) {out['completion_s'] * 1e3:8.1f} ms "
              f"({out['completion_tokens']:.0f} tokens generated)")
        print(f"  ratio score/completion: cold {out['ratio_cold']:.2f}x, warm {out['ratio_warm']:.2f}x "
              "(target <= 2x)")
    return out


def bench_tree(position_moves: str = "4453", k: int = 3, repeats: int = 3, n_threads: int = 2,
               model: str | None = None, verbose: bool = True) -> dict[str, float]:
    """Seconds for the 1 + k + k*k score calls of one depth-2 llm-minimax move (proposer at the
    root, opponent model at k children, value estimator at k*k leaves), KV cache carried along."""
    from plyground.agents.llm.prompts import value_continuations, value_prompt
    b = LocalBackend(model, n_threads=n_threads)
    root = _state(position_moves)
    b.score(*_prompt(root))                           # load + warm up
    times, calls, decoded = [], 0, 0
    for _ in range(repeats):
        b.reset_kv()
        t = time.perf_counter()
        calls = decoded = 0
        msgs, conts = _prompt(root)
        s = b.score(msgs, conts)
        calls, decoded = calls + 1, decoded + s.extra["decoded"]
        acts = root.legal_actions()
        top = [a for _, a in sorted(zip(s.logprobs, acts), reverse=True)[:k]]
        for a in top:
            child = root.clone()
            child.apply_action(a)
            s2 = b.score(*_prompt(child))
            calls, decoded = calls + 1, decoded + s2.extra["decoded"]
            replies = [r for _, r in sorted(zip(s2.logprobs, child.legal_actions()), reverse=True)[:k]]
            for r in replies:
                leaf = child.clone()
                leaf.apply_action(r)
                s3 = b.score(value_prompt(leaf), value_continuations())
                calls, decoded = calls + 1, decoded + s3.extra["decoded"]
        times.append(time.perf_counter() - t)
    out = {"move_s": statistics.median(times), "calls": calls, "decoded_tokens": decoded}
    if verbose:
        print(f"llm-minimax-like tree, depth 2, k={k}: {calls} score calls, {decoded} tokens decoded, "
              f"median {out['move_s']:.3f} s per move ({n_threads} thread(s), {repeats} repeats)")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m plyground.agents.llm.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="?", default="all", choices=("all", "score", "tree", "speed", "strength"),
                    help="all = score + tree; speed = llm-minimax seconds per move; strength = matches on connect4 (default all)")
    ap.add_argument("matchup", nargs="?", default=None,
                    help="with strength: llm | llm-minimax | llm-mcts (default: all three in turn)")
    ap.add_argument("--position", default="4453", help="connect4 moves from the start (columns 1-7)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None,
                    help="llama.cpp threads (default 2; strength: 1)")
    ap.add_argument("--model", default=None, help="a GGUF path (default: bundled SmolLM2-135M)")
    ap.add_argument("--moves", type=int, default=12, help="speed: moves timed (default 12)")
    ap.add_argument("--games", type=int, default=100, help="strength: games, in colour-swapped pairs (default 100)")
    ap.add_argument("--sims", type=int, default=32, help="strength, llm-mcts: simulations on both sides (default 32)")
    ap.add_argument("--seed", type=int, default=0, help="speed/strength: seed (default 0)")
    ap.add_argument("--with", dest="extra", default="", metavar="PARAMS",
                    help="strength: more parameters of the LLM agent, e.g. adapter=connect4 (the bundled "
                         "fine-tuned LoRA adapter)")
    ap.add_argument("--cache", default=None, help="strength: an LLM answer-cache file (saves time, changes no move)")
    ap.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                    help="strength: stop after whole pairs once this many seconds have passed")
    ap.add_argument("--first-pair", type=int, default=1, metavar="N",
                    help="strength: start at pair N (1-based; pair N plays the same games in every run), so "
                         "a long match can be split over processes or finished later (default 1)")
    a = ap.parse_args(argv)
    if a.matchup is not None and a.which != "strength":
        ap.error(f"a matchup ({a.matchup!r}) is only taken by 'strength'")
    for name in ("repeats", "moves", "games", "sims", "first_pair"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} {getattr(a, name)}: must be 1 or more")
    if a.which in ("speed", "strength"):
        if a.model is not None:
            ap.error(f"--model is taken by score and tree only; {a.which} runs the agents on the bundled model")
        from plyground.agents.llm import bench_agents as ba
        if a.which == "speed":
            ba.minimax_speed(moves=a.moves, n_threads=a.threads or 2, seed=a.seed)
            return
        if a.matchup is not None and a.matchup not in ba.MATCHUPS:
            ap.error(f"unknown matchup {a.matchup!r}; allowed: {', '.join(ba.MATCHUPS)}")
        for m in [a.matchup] if a.matchup else list(ba.MATCHUPS):
            ba.strength(m, games=a.games, n_threads=a.threads or 1, sims=a.sims, seed=a.seed,
                        time_budget=a.time_budget, cache=a.cache, extra=a.extra, first_pair=a.first_pair)
        return
    a.threads = a.threads or 2
    if a.which in ("all", "score"):
        bench_score(a.position, a.repeats, a.threads, a.model)
    if a.which in ("all", "tree"):
        bench_tree(a.position, 3, max(1, a.repeats // 3), a.threads, a.model)


if __name__ == "__main__":
    main()
