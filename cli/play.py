"""``plyground play``: colour-swapped games between two agents, with a progress bar."""

from __future__ import annotations

import argparse
import json

from plyground.games.errors import PlygroundError


def run_play(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from plyground import agents, games
    from plyground.arena.match import play_game

    if args.games < 1:
        raise PlygroundError(f"--games must be at least 1; got {args.games}")
    game = games.make(args.game)
    a, b = agents.make(args.agent_a), agents.make(args.agent_b)
    console = Console(stderr=True)
    score = {"A": 0.0, "B": 0.0}
    wdl = [0, 0, 0]  # A's wins, draws, losses
    results = []
    with Progress(TextColumn("[bold]playing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[score]}"),
                  TimeElapsedColumn(), console=console, transient=True, disable=args.json) as bar:
        task = bar.add_task("games", total=args.games, score="")
        for i in range(args.games):
            seats = (a, b) if i % 2 == 0 else (b, a)
            res = play_game(game, seats, seed=args.seed * 100_003 + i, move_time=args.move_time)
            a_seat = 0 if i % 2 == 0 else 1
            ra = res.returns[a_seat]
            if ra > 0:
                wdl[0] += 1
                score["A"] += 1
            elif ra < 0:
                wdl[2] += 1
                score["B"] += 1
            else:
                wdl[1] += 1
                score["A"] += 0.5
                score["B"] += 0.5
            results.append((res, a_seat))
            bar.update(task, advance=1, score=f"A {score['A']:g} - {score['B']:g} B")
    for i, (res, a_seat) in enumerate(results):
        first, second = res.players
        if args.json:
            print(json.dumps({"game": i, "name": res.game, "players": res.players, "returns": res.returns,
                              "termination": res.termination, "detail": res.detail,
                              "moves": [m.text for m in res.moves]}))
            continue
        outcome = {1.0: "1-0", -1.0: "0-1", 0.0: "1/2-1/2"}.get(res.returns[0], str(res.returns))
        extra = f" [{res.termination}: {res.detail}]" if res.termination != "normal" else ""
        print(f"game {i + 1}: {first} vs {second}  {outcome}{extra}\n  moves: {res.move_text()}")
    n = args.games
    if not args.json:
        print(f"\nA = {a.spec}\nB = {b.spec}\n"
              f"score A {score['A']:g} - {score['B']:g} B over {n} games (A: +{wdl[0]} ={wdl[1]} -{wdl[2]}, "
              f"{100 * score['A'] / n:.1f}%)")
    return 0
