"""CLI: ``plyground arena ratings``, ``arena sprt`` and ``arena plot`` (the logic lives in
plyground.arena.ratings / sprt / leaderboard / plot)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from plyground.games.errors import PlygroundError


def add_parsers(arena_sub: argparse._SubParsersAction, top_sub: argparse._SubParsersAction) -> None:
    """Add this module's commands: under 'plyground arena' (arena_sub) or top-level (top_sub)."""
    q = arena_sub.add_parser(
        "ratings", help="rate the players of a record: Bradley-Terry Elo with bootstrap intervals",
        description="One joint Bradley-Terry maximum-likelihood fit over all rated games of the record "
                    "(draws = half points, 400 Elo = 10:1 odds), bootstrap 95% intervals, W/D/L, online Elo "
                    "and the likelihood-of-superiority matrix.",
        epilog="Players who won or lost everything, or groups that never met, have no finite maximum-likelihood "
               "rating: a weak N(0, 500^2) prior is then used and the output says which ratings are only bounds.")
    _common(q)
    q.add_argument("--json", action="store_true",
                   help="print a JSON list of {player, elo, ci_low, ci_high, games, wins, draws, losses, ...}")
    q.add_argument("--format", choices=("table", "json", "csv", "markdown"), default="table",
                   help="output format (default table; --json is --format json)")
    q.add_argument("--k", type=float, default=16.0, help="K-factor of the online Elo shown beside the fit (default 16)")
    q.add_argument("--no-los", action="store_true", help="do not print the likelihood-of-superiority matrix")
    q.set_defaults(func=run_ratings)

    q = arena_sub.add_parser(
        "sprt", help="A/B match in colour-swapped pairs that stops when an SPRT decides (or report one)",
        description="With GAME AGENT_A AGENT_B: play colour-swapped pairs of AGENT_A vs AGENT_B, recorded in --db, "
                    "until the sequential probability ratio test of H0: elo = ELO0 against H1: elo = ELO1 decides "
                    "(or --max-pairs is reached); running it again resumes.  Without them: report the SPRT state "
                    "of the A/B games already in --db.",
        epilog="The statistics are pentanomial (pairs scored LL, LD, DD+WL, WD, WW for AGENT_A), so the two games "
               "of a pair share an opening and swap colours.  Example: plyground arena sprt connect4 "
               "mcts:sims=400 mcts:sims=200 --db ab.db --elo0 0 --elo1 50")
    q.add_argument("game", metavar="GAME", nargs="?", help="game to play (omit to report from --db)")
    q.add_argument("agent_a", metavar="AGENT_A", nargs="?", help="the candidate (H1: it is stronger by ELO1)")
    q.add_argument("agent_b", metavar="AGENT_B", nargs="?", help="the baseline")
    q.add_argument("--db", required=True, metavar="FILE", help="the record (SQLite)")
    q.add_argument("--elo0", type=float, default=0.0, help="H0 Elo difference (default 0)")
    q.add_argument("--elo1", type=float, default=10.0, help="H1 Elo difference (default 10)")
    q.add_argument("--alpha", type=float, default=0.05, help="false-positive rate (default 0.05)")
    q.add_argument("--beta", type=float, default=0.05, help="false-negative rate (default 0.05)")
    q.add_argument("--model", choices=("logistic", "normalized"), default="logistic",
                   help="Elo bounds in logistic Elo (default) or normalised Elo")
    q.add_argument("--max-pairs", type=int, default=1000, help="stop after this many pairs (default 1000)")
    q.add_argument("--workers", type=int, default=1, help="parallel games (default 1)")
    q.add_argument("--backend", choices=("local", "ray"), default="local", help="execution backend (default local)")
    q.add_argument("--seed", type=int, default=0, help="seed of the schedule, openings and agents (default 0)")
    q.add_argument("--move-time", type=float, default=None, help="seconds per move; over it the mover forfeits")
    q.add_argument("--max-plies", type=int, default=None, help="plies after which a game stops as a draw")
    q.add_argument("--random-plies", type=int, default=2,
                   help="random opening plies shared by the two games of a pair (default 2; 0 = none). "
                        "Deterministic agents need openings, or every pair repeats")
    q.add_argument("--tournament", default=None, metavar="ID", help="report mode: the A/B tournament to read")
    q.add_argument("--player-a", default=None, metavar="NAME",
                   help="report mode: which recorded player is A (default: seat 0 of the first game)")
    q.add_argument("--json", action="store_true", help="print the SPRT state as JSON")
    q.set_defaults(func=run_sprt)

    q = arena_sub.add_parser(
        "plot", help="PNG plots: ratings with intervals and the head-to-head score matrix",
        description="Write ratings.png (Elo with 95% intervals, online Elo) and head_to_head.png (score of each "
                    "player against each other) into --out DIR.")
    _common(q)
    q.add_argument("--out", required=True, metavar="DIR", help="directory for the PNG files (created if missing)")
    q.add_argument("--k", type=float, default=16.0, help="K-factor of the online Elo (default 16)")
    q.set_defaults(func=run_plot)


def _common(q: argparse.ArgumentParser) -> None:
    q.add_argument("--db", required=True, metavar="FILE", help="the record (SQLite) written by 'plyground arena run'")
    q.add_argument("--tournament", default=None, metavar="ID", help="only this tournament's games (default: all)")
    q.add_argument("--anchor", default=None, metavar="NAME=ELO",
                   help="pin one player's rating (default: the ratings average 0)")
    q.add_argument("--bootstrap", type=int, default=200, metavar="N",
                   help="bootstrap resamples for the 95%% intervals (default 200; 0 = normal approximation)")
    q.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    q.add_argument("--first-move-advantage", action="store_true",
                   help="also fit an Elo bonus for the player who moves first (the seat of each game's "
                        "first recorded move, e.g. White in chess)")


class _LazyProgress:
    """A progress bar on stderr that only appears once the work has taken more than ``delay`` seconds."""

    def __init__(self, label: str, delay: float = 1.0) -> None:
        self.label, self.delay, self.t0 = label, delay, time.monotonic()
        self.bar = None
        self.task = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if time.monotonic() - self.t0 < self.delay or done >= total:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
            self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total)
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _board(args: argparse.Namespace):
    from plyground.arena.leaderboard import build_leaderboard
    progress = _LazyProgress("bootstrap")
    try:
        return build_leaderboard(args.db, tournament=args.tournament, anchor=args.anchor, bootstrap=args.bootstrap,
                                 first_move_advantage=args.first_move_advantage, seed=args.seed, k=args.k,
                                 progress=progress)
    finally:
        progress.close()


def run_ratings(args: argparse.Namespace) -> int:
    """plyground arena ratings."""
    from plyground.arena.leaderboard import leaderboard_text, print_leaderboard
    board = _board(args)
    fmt = "json" if args.json else args.format
    if fmt == "table":
        from rich.console import Console
        # a pipe or file gets the full table; a terminal gets its own width
        console = Console() if sys.stdout.isatty() else Console(width=160)
        print_leaderboard(board, console, los=not args.no_los)
    else:
        sys.stdout.write(leaderboard_text(board, fmt))
    return 0


def run_plot(args: argparse.Namespace) -> int:
    """plyground arena plot."""
    from plyground.arena.plot import write_plots
    board = _board(args)
    for path in write_plots(board, args.out):
        print(path)
    return 0


# ---------------------------------------------------------------------------------------------
# SPRT
# ---------------------------------------------------------------------------------------------

def _sprt_state(games, a: str, b: str, test) -> dict:
    from plyground.arena.sprt import pair_up
    pairs = pair_up(games, a, b)
    status = test.status(pairs.counts)
    return {"player_a": a, "player_b": b, "pairs": len(pairs.scores), "unpaired_games": len(pairs.unpaired),
            "pentanomial": pairs.counts, **status.as_dict(), "_status": status}


def _print_state(state: dict, header: str) -> None:
    from plyground.arena.sprt import PENTANOMIAL
    st = state["_status"]
    s = st.stats
    print(header)
    print(f"  A = {state['player_a']}   B = {state['player_b']}")
    print(f"  pairs {state['pairs']} ({s.games} games)" +
          (f", {state['unpaired_games']} game(s) without their pair (not counted)" if state["unpaired_games"] else ""))
    print("  pentanomial " + ", ".join(f"{k} {v}" for k, v in zip(PENTANOMIAL, state["pentanomial"])))
    if state["pairs"]:
        print(f"  score of A {100 * s.score:.1f}%   Elo {s.elo:+.1f} [{s.elo_low:+.1f}, {s.elo_high:+.1f}]   "
              f"nElo {s.nelo:+.1f} +- {s.nelo_ci:.1f}   LOS {100 * s.los:.1f}%")
    print(f"  {st.describe()}  (alpha {st.alpha:g}, beta {st.beta:g})")


def _emit(state: dict, args: argparse.Namespace, header: str, extra: dict | None = None) -> None:
    if args.json:
        out = {k: v for k, v in state.items() if k != "_status"}
        out.update(extra or {})
        print(json.dumps(out, indent=1, default=float))
    else:
        _print_state(state, header)


def run_sprt(args: argparse.Namespace) -> int:
    """plyground arena sprt: run an A/B match until the SPRT decides, or report one from the record."""
    from plyground.arena.sprt import SPRT
    test = SPRT(args.elo0, args.elo1, args.alpha, args.beta, model=args.model)
    given = [x is not None for x in (args.game, args.agent_a, args.agent_b)]
    if any(given) and not all(given):
        raise PlygroundError("arena sprt: give GAME AGENT_A AGENT_B to play a match, or none of them to report "
                             "the match recorded in --db")
    if not any(given):
        return _report(args, test)
    if args.max_pairs < 1:
        raise PlygroundError(f"--max-pairs {args.max_pairs}: must be at least 1")
    if args.agent_a == args.agent_b:
        raise PlygroundError(f"AGENT_A and AGENT_B are the same agent ({args.agent_a!r}); an A/B test needs two "
                             "different agents (e.g. other parameters or another seed=)")
    return _play(args, test)


def _report(args: argparse.Namespace, test) -> int:
    from plyground.arena.leaderboard import load_games
    from plyground.arena.ratings import RatingError, check_player
    loaded = load_games(args.db, args.tournament)
    games = loaded.games
    if not games:
        raise RatingError(f"no rated games in {args.db!r}" + (f" for tournament {args.tournament!r}"
                                                                if args.tournament else "") + "; nothing to test")
    players = sorted({p for g in games for p in (g.first, g.second)})
    if len(players) != 2:
        tids = ", ".join(loaded.tournaments) or "(none)"
        raise RatingError(f"an SPRT report needs the games of exactly two players; the selection has {len(players)}: "
                          f"{', '.join(players)} (choose an A/B tournament with --tournament; tournaments: {tids})")
    if args.player_a is not None:
        check_player(args.player_a, players, what="--player-a")
        a = args.player_a
    else:
        first = min(games, key=lambda g: g.id or "")
        a = first.first
    b = players[1] if a == players[0] else players[0]
    state = _sprt_state(games, a, b, test)
    _emit(state, args, f"SPRT of the A/B games in {args.db}" + (f" (tournament {args.tournament})"
                                                                  if args.tournament else ""))
    return 0


def _play(args: argparse.Namespace, test) -> int:
    from plyground.arena.config import config_from_dict
    from plyground.arena.leaderboard import games_from_rows
    from plyground.arena.record import Record
    try:
        from plyground.arena.runner import run_tournament
    except ImportError as e:  # pragma: no cover - the runner ships with the arena
        raise PlygroundError(f"arena sprt needs plyground.arena.runner: {e}") from None
    data = {"name": f"sprt {args.agent_a} vs {args.agent_b}", "game": args.game,
            "agents": [args.agent_a, args.agent_b], "format": "round-robin",
            "games_per_pairing": 2 * args.max_pairs, "colour_swap": True, "seed": args.seed}
    if args.move_time is not None:
        data["move_time"] = args.move_time
    if args.max_plies is not None:
        data["max_plies"] = args.max_plies
    if args.random_plies:
        data["openings"] = {"random_plies": args.random_plies}
    cfg = config_from_dict(data, default_name="sprt")
    tid = cfg.id
    a, b = cfg.agents[0].name, cfg.agents[1].name

    games: list = []
    seen = {"rowid": 0}

    def state_of(rec: Record) -> dict:
        # incremental: only the rows recorded since the last call are read (the callback runs
        # after every game, so re-reading the whole tournament would make a long match quadratic)
        cur = rec.db.conn.execute(
            "SELECT rowid, id, tournament, pair, players, returns, rated, termination, game FROM games "
            "WHERE tournament = ? AND rowid > ? ORDER BY rowid", (tid, seen["rowid"]))
        rows = []
        for rowid, gid, t, pair, players, returns, rated, term, game in cur.fetchall():
            seen["rowid"] = max(seen["rowid"], rowid)
            rows.append({"id": gid, "tournament": t, "pair": pair, "players": json.loads(players),
                         "returns": json.loads(returns), "rated": rated, "termination": term,
                         "game": game})
        if rows:
            games.extend(games_from_rows(rows, rec.player_names()).games)
        return _sprt_state(games, a, b, test)

    with Record(args.db) as rec:
        before = state_of(rec)
    if before["decision"] is not None or before["pairs"] >= args.max_pairs:
        _emit(before, args, f"SPRT already finished in {args.db} (tournament {tid})", {"tournament": tid})
        return 0

    last = {"t": 0.0}
    show = sys.stderr.isatty() and not args.json

    def should_stop(rec: Record) -> bool:
        state = state_of(rec)
        if show and time.monotonic() - last["t"] > 0.5:
            last["t"] = time.monotonic()
            sys.stderr.write(f"\r  pairs {state['pairs']}  {state['_status'].describe()}    ")
            sys.stderr.flush()
        return state["decision"] is not None

    run_tournament(cfg, args.db, workers=args.workers, backend=args.backend, should_stop=should_stop)
    if show:
        sys.stderr.write("\n")
    games.clear()
    seen["rowid"] = 0
    with Record(args.db) as rec:
        final = state_of(rec)
    verdict = {"H1": "H1 accepted", "H0": "H0 accepted"}.get(final["decision"] or "",
                                                              f"undecided after {final['pairs']} pairs (--max-pairs)")
    _emit(final, args, f"SPRT {verdict} (tournament {tid}, record {args.db})", {"tournament": tid})
    return 0

