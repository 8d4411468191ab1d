"""``plyground play``: colour-swapped games between two agents, with a progress bar (the scoring
lives in plyground.arena.outcomes)."""

from __future__ import annotations

import argparse
import json
import time

from plyground.games.errors import PlygroundError


def _prepare(agent, game) -> None:
    """``warm_up(game)`` for one agent; a failure is a clear error naming the agent, not a traceback."""
    try:
        agent.warm_up(game)
    except PlygroundError:
        raise
    except Exception as e:  # noqa: BLE001 - a broken warm-up is reported, never dumped
        raise PlygroundError(f"agent {agent.spec} failed to warm up for {game.name}: "
                             f"{type(e).__name__}: {e}") from None


def run_play(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from plyground import agents, games
    from plyground.arena.match import play_game
    from plyground.arena.outcomes import MatchTally, first_line

    if args.games < 1:
        raise PlygroundError(f"--games must be at least 1; got {args.games}")
    game = games.make(args.game)
    a, b = agents.make(args.agent_a), agents.make(args.agent_b)
    tally = MatchTally(game, a.spec, b.spec)
    for agent in (a, b):
        agent.check_game(game)
    console = Console(stderr=True)
    t = time.perf_counter()
    console.print(f"warming up A = {a.spec} and B = {b.spec} for {game.name} ...", highlight=False,
                  soft_wrap=True)
    for agent in (a, b):
        _prepare(agent, game)
    console.print(f"warmed up in {time.perf_counter() - t:.1f}s", highlight=False, soft_wrap=True)
    results = []
    with Progress(TextColumn("[bold]playing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[score]}"),
                  TimeElapsedColumn(), console=console, transient=True, disable=args.json) as bar:
        task = bar.add_task("games", total=args.games, score="")
        for i in range(args.games):
            a_seat = i % 2
            seats = (a, b) if a_seat == 0 else (b, a)
            res = play_game(game, seats, seed=args.seed * 100_003 + i, move_time=args.move_time)
            results.append((res, tally.add(res, a_seat)))
            bar.update(task, advance=1, score=tally.progress_text())
    for i, (res, reading) in enumerate(results):
        first, second = res.players
        if args.json:
            print(json.dumps({"game": i, "name": res.game, "players": res.players, "returns": res.returns,
                              "termination": res.termination, "detail": res.detail,
                              "agents": {"A": a.spec, "B": b.spec}, "win_draw_loss": tally.win_draw_loss,
                              **reading, "moves": [m.text for m in res.moves]}))
            continue
        extra = f" [{res.termination}: {first_line(res.detail)}]" if res.termination != "normal" else ""
        print(f"game {i + 1}: {first} vs {second}  {tally.outcome_text(res)}{extra}\n  moves: {res.move_text()}")
    if not args.json:
        print()
        print("\n".join(tally.summary_lines()))
    return 0
