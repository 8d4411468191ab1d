"""The LLM agents' speed (llm-minimax seconds per move) and strength on connect4.

    python -m plyground.agents.llm.bench speed                   # the same from the command line
    python -m plyground.agents.llm.bench strength llm-minimax     # (see --help)
    python -c "from plyground.agents.llm.bench_agents import minimax_speed; minimax_speed()"
    python -c "from plyground.agents.llm.bench_agents import strength; strength('llm-minimax', games=100)"
    python -c "from plyground.agents.llm.bench_agents import strength_all; strength_all(games=100)"

Speed (``minimax_speed``): ``llm-minimax:depth=2,k=3,opp_k=3`` with the bundled model; the
positions are those of games against a seeded random player (a new game when one ends, until
``moves`` moves are timed); each move is timed on a fresh
agent with no answer cache (cold: no persistent cache and an empty per-game memo), the model
already loaded.  Prints the median seconds and calls per move, and the tokens llama.cpp actually
decoded per move (the cost that does not depend on how busy the machine is).  Target: < 2 s.

Strength (``strength``): games in colour-swapped pairs (same seed, seats swapped), the score of
the first agent with a 95% interval over pair scores (normal approximation, clipped to [0, 1]):
``llm`` vs ``random``; ``llm-minimax`` vs ``random`` (target >= 90%); ``llm-mcts`` vs ``mcts`` with
the same simulations, PUCT, the same c and rollouts, uniform priors.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

from plyground import agents, games
from plyground.arena.match import play_game


def _decoded() -> Callable[[], int]:
    """A counter of tokens llama.cpp decoded in this process (0 if the model is not local)."""
    from plyground.agents.llm import local

    def count() -> int:
        return sum(m.tokens_decoded for m in getattr(local, "_MODELS", {}).values())
    return count


def minimax_speed(moves: int = 12, depth: int = 2, k: int = 3, n_threads: int = 2, seed: int = 0,
                  fresh: bool = True, extra: str = "", verbose: bool = True) -> dict[str, Any]:
    """Median seconds and LLM calls per ``llm-minimax`` move on connect4 (cold cache); see module doc."""
    spec = f"llm-minimax:depth={depth},k={k},opp_k={k},n_threads={n_threads}" + (f",{extra}" if extra else "")
    game = games.make("connect4")
    rand = agents.make(f"random:seed={seed}")
    rand.reset(seed)
    t = time.perf_counter()
    agent = agents.make(spec)
    agent.backend.shared            # load the model before any clock starts (shared per process)
    load = time.perf_counter() - t
    agent.act(game.new_initial_state())   # warm llama.cpp (first decode allocates buffers)
    count = _decoded()
    state = game.new_initial_state()
    rows = []
    while len(rows) < moves:
        if state.is_terminal():             # a short game: go on with the next one
            state = game.new_initial_state()
        if len(state.history()) % 2 == 0:
            a = agents.make(spec) if fresh else agent
            d0 = count()
            t = time.perf_counter()
            d = a.act(state.clone())
            sec = time.perf_counter() - t
            rows.append({"ply": len(state.history()), "seconds": sec, "calls": d.llm["calls"],
                         "model_calls": d.llm["model_calls"], "memo_hits": d.llm["memo_hits"],
                         "decoded_tokens": count() - d0, "prompt_tokens": d.llm["prompt_tokens"],
                         "fallback": d.fallback})
            state.apply_action(d.action)
        else:
            state.apply_action(rand.act(state).action)
    out = {
        "spec": spec, "moves": len(rows), "model_load_s": round(load, 3),
        "median_s_per_move": round(statistics.median(r["seconds"] for r in rows), 3),
        "mean_s_per_move": round(statistics.fmean(r["seconds"] for r in rows), 3),
        "calls_per_move": round(statistics.fmean(r["calls"] for r in rows), 2),
        "decoded_tokens_per_move": round(statistics.fmean(r["decoded_tokens"] for r in rows), 1),
        "target_s": 2.0, "rows": rows,
    }
    if verbose:
        print(f"speed: {spec} on connect4, cold cache, {len(rows)} moves (model load {load:.2f} s)")
        for r in rows:
            print(f"  ply {r['ply']:2d}: {r['seconds']:6.2f} s  {r['calls']:2d} calls  "
                  f"{r['decoded_tokens']:4d} tokens decoded" + (f"  fallback: {r['fallback']}" if r["fallback"] else ""))
        print(f"  median {out['median_s_per_move']} s/move (target < 2 s), {out['calls_per_move']} calls/move, "
              f"{out['decoded_tokens_per_move']} decoded tokens/move")
    return out


# ----------------------------------------------------------------------------- strength
def pair_interval(pair_scores: list[float], z: float = 1.96) -> tuple[float, float, float]:
    """(mean, low, high): the mean score per game and a normal-approximation interval over pairs
    (each value a pair's mean score in [0, 1]), clipped to [0, 1]."""
    n = len(pair_scores)
    if n == 0:
        return math.nan, math.nan, math.nan
    m = statistics.fmean(pair_scores)
    if n < 2:
        return m, 0.0, 1.0
    se = statistics.stdev(pair_scores) / math.sqrt(n)
    return m, max(0.0, m - z * se), min(1.0, m + z * se)


MATCHUPS = {
    "llm": ("llm:n_threads={t}", "random"),
    "llm-minimax": ("llm-minimax:depth=2,k=3,opp_k=3,n_threads={t}", "random"),
    "llm-mcts": ("llm-mcts:sims={sims},c=1.5,rollouts=1,n_threads={t}", "mcts:variant=puct,sims={sims},c=1.5,rollouts=1"),
}


def strength(matchup: str, games: int = 100, n_threads: int = 1, sims: int = 32, seed: int = 0,
             time_budget: float | None = None, verbose: bool = True,
             cache: str | None = None, extra: str = "", first_pair: int = 1) -> dict[str, Any]:
    """Score of ``matchup``'s first agent (``llm`` | ``llm-minimax`` | ``llm-mcts``) against its
    opponent on connect4 in ``games // 2`` colour-swapped pairs; stops early (whole pairs) after
    ``time_budget`` seconds.  ``cache``: an LLM answer-cache path for the LLM agent (scores are
    deterministic, so it saves time on positions seen before and changes no move).  Prints W/D/L,
    the score, its 95% interval and seconds per game.  ``extra``: more parameters of the LLM agent
    (e.g. ``"adapter=connect4"``, the bundled fine-tuned LoRA adapter).  For ``llm`` it also counts
    the moves whose first reply named a legal move.  ``first_pair``: the number (1-based) of the
    first pair played; pair ``i`` plays the same two games in every run, so pairs ``1-25`` and
    ``26-50`` from two processes are the 100 games of one run."""
    if matchup not in MATCHUPS:
        raise ValueError(f"unknown matchup {matchup!r}; allowed: {', '.join(MATCHUPS)}")
    from plyground import games as G
    spec_a, spec_b = (s.format(t=n_threads, sims=sims) for s in MATCHUPS[matchup])
    if cache:
        spec_a += f",cache={cache}"
    if extra:
        spec_a += f",{extra}"
    game = G.make("connect4")
    a, b = agents.make(spec_a), agents.make(spec_b)
    pairs, wins, draws, losses, fallbacks, calls, llm_moves, first_legal = [], 0, 0, 0, 0, 0, 0, 0
    t0 = time.perf_counter()
    if first_pair < 1:
        raise ValueError(f"first_pair {first_pair}: must be 1 or more")
    for i in range(first_pair - 1, first_pair - 1 + max(1, games // 2)):
        pair = []
        for swap in (False, True):
            seats = [b, a] if swap else [a, b]
            r = play_game(game, seats, seed=seed * 100_003 + i)
            ret = r.returns[1 if swap else 0]
            s = 1.0 if ret > 0 else (0.5 if ret == 0 else 0.0)
            wins += s == 1.0
            draws += s == 0.5
            losses += s == 0.0
            pair.append(s)
            for m in r.moves:
                if m.player == (1 if swap else 0):
                    llm_moves += 1
                    calls += m.decision.get("llm", {}).get("calls", 0)
                    fallbacks += bool(m.decision.get("fallback"))
                    first_legal += _first_reply_legal(m.decision)
        pairs.append(statistics.fmean(pair))
        if verbose:
            print(f"  pair {i + 1}: {pair}  ({time.perf_counter() - t0:.0f} s)", flush=True)
        if time_budget is not None and time.perf_counter() - t0 > time_budget:
            break
    mean, lo, hi = pair_interval(pairs)
    n = 2 * len(pairs)
    out = {"matchup": f"{spec_a} vs {spec_b}", "first_pair": first_pair, "pairs": pairs, "games": n, "wins": int(wins), "draws": int(draws),
           "losses": int(losses), "score": round(mean, 4), "ci95": (round(lo, 4), round(hi, 4)),
           "seconds_per_game": round((time.perf_counter() - t0) / n, 2),
           "llm_calls_per_move": round(calls / max(1, llm_moves), 2),
           "moves_with_fallback": fallbacks, "llm_moves": llm_moves}
    if matchup == "llm":
        out["first_reply_legal"] = first_legal
    if verbose:
        print(f"strength: {out['matchup']} on connect4: {n} games (colour-swapped pairs) "
              f"+{out['wins']} ={out['draws']} -{out['losses']}, score {mean:.3f} "
              f"[95% {lo:.3f}, {hi:.3f}], {out['seconds_per_game']} s/game, "
              f"{out['llm_calls_per_move']} LLM calls/move, {fallbacks}/{llm_moves} moves with a fallback"
              + (f", {first_legal}/{llm_moves} first replies legal" if matchup == "llm" else ""))
    return out


def _first_reply_legal(decision: dict[str, Any]) -> bool:
    """Whether the move's first reply from the LLM (its first ``move`` call) parsed to a legal move."""
    for e in decision.get("llm", {}).get("log", []):
        if e.get("role") == "move" and "raw" in e:
            return (e.get("parsed") or {}).get("action") is not None
    return False


def strength_all(games: int = 100, n_threads: int = 1, sims: int = 32, seed: int = 0,
                 time_budget: float | None = None, cache: str | None = None) -> list[dict[str, Any]]:
    """The three strength matchups, one after the other."""
    return [strength(m, games=games, n_threads=n_threads, sims=sims, seed=seed, time_budget=time_budget,
                     cache=cache) for m in MATCHUPS]
