"""Every listed game against every built-in agent: played to the end, or refused up front?

A development sweep (not a user command) behind the README's games table.  For each name
``plyground games`` lists and each agent spec, it loads the game, asks the agent
``check_game(game)``, and if accepted plays ``--games`` games against ``random`` (seats
alternating, ``--move-time`` seconds a move, at most ``--max-plies`` plies) and records how each ended.  Each
game runs in a child process with a wall-clock limit, so a game that crashes or hangs its process
is reported, not fatal.

    python tools/games_sweep.py --out sweep.jsonl                   # random, minimax, mcts
    python tools/games_sweep.py --agents llm --games 1 --out llm.jsonl
    python tools/games_sweep.py --table sweep.jsonl llm.jsonl       # the README table (a later row of
                                                                    # the same game and agent wins)

Outcome per (game, agent): ``played`` (every game ended by the rules), ``capped`` (every game
ended normally or at the ply cap), ``refused`` (the game failed to load for two seats, or the
agent refused it; the reason kept), ``forfeit`` (a game ended in timeout / agent_error /
illegal_move: a defect), ``crashed`` (the child process died or ran past ``--wall``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import sys
import time
from collections import Counter, defaultdict

DEFAULT_AGENTS = ("random", "minimax:depth=2", "mcts:sims=20")


def _one(name: str, spec: str, games: int, max_plies: int, seed: int, move_time: float | None) -> dict:
    from plyground import agents, games as G
    from plyground.arena.match import MAX_PLIES, NORMAL, play_game
    from plyground.games.errors import PlygroundError

    out = {"game": name, "agent": spec}
    try:
        game = G.make(name)
        n = game.num_players()
        if n != 2:
            from plyground.games.errors import UnsupportedGameError
            raise UnsupportedGameError(f"{name} is a {n}-player game; the arena and play seat two agents")
        agent = agents.make(spec)
        agent.check_game(game)
    except PlygroundError as e:
        out.update(outcome="refused", reason=f"{type(e).__name__}: {e}")
        return out
    opponent = agents.make("random")
    agent.warm_up(game)
    terms = Counter()
    details = []
    t0 = time.perf_counter()
    for i in range(games):
        seats = (agent, opponent) if i % 2 == 0 else (opponent, agent)
        res = play_game(game, seats, seed=seed * 1000 + i, max_plies=max_plies, move_time=move_time)
        terms[res.termination] += 1
        if res.termination not in (NORMAL, MAX_PLIES):
            details.append(res.detail.splitlines()[0] if res.detail else "")
    out["terminations"] = dict(terms)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    if details:
        out.update(outcome="forfeit", reason=details[0])
    elif terms.get(MAX_PLIES):
        out["outcome"] = "capped"
    else:
        out["outcome"] = "played"
    return out


def _child(conn, args) -> None:
    try:
        conn.send(_one(*args))
    except BaseException as e:  # noqa: BLE001 - reported as the row's outcome
        import traceback
        conn.send({"game": args[0], "agent": args[1], "outcome": "crashed",
                   "reason": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=-4)})


def run(names, specs, games: int, max_plies: int, wall: float, seed: int, move_time, out) -> None:
    ctx = mp.get_context("fork")
    for name in names:
        for spec in specs:
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, args=(send, (name, spec, games, max_plies, seed, move_time)))
            t = time.perf_counter()
            p.start()
            send.close()
            row = None
            if recv.poll(wall):
                try:
                    row = recv.recv()
                except EOFError:
                    row = None
            if row is None:
                row = {"game": name, "agent": spec, "outcome": "crashed",
                       "reason": f"no answer within {wall:.0f}s (exit code {p.exitcode})"}
            p.kill()
            p.join()
            row["wall"] = round(time.perf_counter() - t, 2)
            print(json.dumps(row), file=out, flush=True)
            print(f"{name:55s} {spec:18s} {row['outcome']:8s} {row.get('reason', '')[:90]}", file=sys.stderr)


def _reason_class(reason: str) -> str:
    """A short class for a refusal reason (the table groups by it)."""
    r = reason.lower()
    for pattern, label in (
            (r"simultaneous", "simultaneous moves"),
            (r"\d+-player game|more than two|players? \(|has \d+ players", "not two players"),
            (r"cannot be sampled", "hidden information no sampler handles"),
            (r"hidden information|imperfect", "hidden information"),
            (r"parameter|game file|needs a|wrapped|file", "needs parameters or a file"),
            (r"mean.field|dynamics", "not sequential"),
            (r"general-sum|identical", "general-sum utilities"),
            (r"chance", "chance nodes"),
    ):
        if re.search(pattern, r):
            return label
    return reason[:60]


def table(paths: list[str]) -> str:
    latest = {}  # a (game, agent) run again (after a fix) replaces the earlier row
    for p in paths:
        for line in open(p):
            if line.strip():
                r = json.loads(line)
                latest[(r["game"], r["agent"])] = r
    rows = list(latest.values())
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    by = defaultdict(Counter)
    reasons = defaultdict(Counter)
    for r in rows:
        by[r["agent"]][r["outcome"]] += 1
        if r["outcome"] != "played" and r["outcome"] != "capped":
            reasons[r["agent"]][(r["outcome"], _reason_class(r.get("reason", "")))] += 1
    lines = ["| agent | games listed | played to the end | ended by the ply cap | refused up front | forfeits | crashed |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for a in agents:
        c = by[a]
        lines.append(f"| `{a}` | {sum(c.values())} | {c['played']} | {c['capped']} | {c['refused']} | "
                     f"{c['forfeit']} | {c['crashed']} |")
    lines.append("")
    lines.append("| agent | outcome | reason | games |")
    lines.append("| --- | --- | --- | --- |")
    for a in agents:
        for (outcome, reason), k in reasons[a].most_common():
            lines.append(f"| `{a}` | {outcome} | {reason} | {k} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", nargs="*", default=list(DEFAULT_AGENTS), help="agent specs to sweep")
    ap.add_argument("--games", type=int, default=2, help="games per (game, agent), seats alternating")
    ap.add_argument("--max-plies", type=int, default=100, help="ply cap per game")
    ap.add_argument("--move-time", type=float, default=1.0,
                    help="seconds per move, told to the agent as its clock (a move over it forfeits)")
    ap.add_argument("--wall", type=float, default=300.0, help="seconds before a (game, agent) counts as crashed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None, help="these game names instead of every listed one")
    ap.add_argument("--out", default="-", help="JSON lines file ('-': stdout)")
    ap.add_argument("--table", nargs="*", default=None, metavar="JSONL", help="print the table of earlier runs")
    args = ap.parse_args(argv)
    if args.table is not None:
        print(table(args.table))
        return 0
    from plyground.games import list_games
    names = args.only or list_games()
    out = sys.stdout if args.out == "-" else open(args.out, "a")
    run(names, args.agents, args.games, args.max_plies, args.wall, args.seed, args.move_time, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
