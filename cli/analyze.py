"""``plyground analyze``: one position, one engine, its value and per-move scores."""

from __future__ import annotations

import argparse
import json

from plyground.games.errors import PlygroundError

BUDGET_KEYS = {"depth": int, "nodes": int, "time": float, "sims": int}
AUTO_EXACT_SECONDS = 1.0  # keeps a default analysis interactive; --budget exact has no limit
AUTO_SIMS = 10_000


def parse_budget(text: str, engine: str) -> dict:
    """``"depth=8,time=2"`` -> {"depth": 8, "time": 2.0}; ``"exact"`` -> {"exact": True}."""
    out: dict = {}
    for item in (x.strip() for x in text.split(",") if x.strip()):
        if item in ("auto", "exact"):
            out[item] = True
            continue
        key, eq, raw = item.partition("=")
        if not eq or key not in BUDGET_KEYS:
            raise PlygroundError(f"--budget item {item!r} is not one of: auto, exact, "
                                 + ", ".join(f"{k}=N" for k in BUDGET_KEYS))
        try:
            value = BUDGET_KEYS[key](float(raw)) if BUDGET_KEYS[key] is int else float(raw)
        except ValueError:
            raise PlygroundError(f"--budget {key}={raw!r} is not a number") from None
        if value <= 0:
            raise PlygroundError(f"--budget {key} must be positive; got {raw}")
        out[key] = value
    bad = {"minimax": {"sims"}, "mcts": {"depth", "exact"}}[engine] & set(out)
    if bad:
        raise PlygroundError(f"--budget {', '.join(sorted(bad))} does not apply to --engine {engine}")
    return out


def analyze(game_name: str, moves: str, engine: str, budget_text: str):
    """Run the analysis; returns (state, SearchResult)."""
    from plyground import games

    game = games.make(game_name)
    state = games.play_moves(game, moves)
    if state.is_terminal():
        raise PlygroundError(f"the game is over after {moves!r} (returns {state.returns()}); nothing to analyse")
    budget = parse_budget(budget_text, engine)
    auto = budget.pop("auto", False) or not budget
    if engine == "minimax":
        from plyground.search import alphabeta
        if auto:
            return state, alphabeta.search(state, exact=True, time_limit=AUTO_EXACT_SECONDS)
        return state, alphabeta.search(state, depth=budget.get("depth"), max_nodes=budget.get("nodes"),
                                       time_limit=budget.get("time"), exact=budget.get("exact", False))
    from plyground.search.mcts import MCTS
    sims = budget.get("sims", AUTO_SIMS if "time" not in budget and "nodes" not in budget else 10**9)
    mcts = MCTS(sims=sims, time_limit=budget.get("time"), max_nodes=budget.get("nodes"), seed=0)
    return state, mcts.search(state)


def run_analyze(args: argparse.Namespace) -> int:
    state, res = analyze(args.game, args.moves, args.engine, args.budget)
    to_text = state.action_to_string
    if args.json:
        d = res.to_json()
        d["best_move"] = to_text(res.best_action)
        d["pv_moves"] = _safe_pv_text(state, res.pv)
        d["player"] = state.current_player()
        d["moves"] = args.moves
        if res.score is None:
            d.pop("score", None)
        print(json.dumps(d))
        return 0
    print(state)
    who = state.current_player()
    kind = "exact" if res.exact else "estimate"
    print(f"player to move: {who}   engine: {res.engine}   value: {res.value:+.3f} ({kind})"
          + (f"   score: {res.score:+d}" if res.score is not None else ""))
    print(f"best move: {to_text(res.best_action)}   principal variation: {_safe_pv_text(state, res.pv)}")
    print(f"nodes: {res.nodes}   depth: {res.depth}   time: {res.seconds:.3f}s")
    rows = sorted(res.action_values.items(), key=lambda kv: -kv[1])
    if rows:
        print("per-move " + ("scores" if res.engine.startswith("alphabeta") else "values") + ":")
        for a, v in rows:
            visits = f"  visits {res.visits[a]}" if a in res.visits else ""
            print(f"  {to_text(a):>8s}  {v:+.3f}{visits}")
    return 0


def _safe_pv_text(state, pv) -> str:
    s = state.clone()
    out = []
    for a in pv:
        if a not in s.legal_actions():
            break
        out.append(s.action_to_string(a))
        s.apply_action(a)
    return " ".join(out)
