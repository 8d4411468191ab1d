"""Position suites: how often an agent plays a best move in solved connect-four positions, against
exact truth rather than against another engine.

A suite file has one position a line, ``MOVES SCORE`` (the format of the solved-positions file:
1-based columns from the empty board, the exact score for the player to move), optionally followed
by ``BEST``, the columns that keep the score (``search/data/connect4_best_moves.txt``).  Without
``BEST`` the best moves come from the shipped best-moves file where it has the position, else from
solving every child with the exact solver (a position whose children do not give its score is an
error: the file and the solver disagree).  A move is best when it keeps the score (the child's score
is -SCORE): the fastest win, the slowest loss, or a draw.

Each agent is built from its spec (any agent, LLM agents included), checked and warmed up once, then
asked for a move in every position, reseeded per position; a move that raises or is illegal counts
as not best.  Shares get 95% Wilson intervals, per stone count and overall.

>>> round(wilson(40, 40)[0], 3), wilson(0, 0)
(0.912, (0.0, 1.0))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from plyground.games.errors import InfrastructureError, PlygroundError

__all__ = ["SuiteError", "Position", "load_suite", "shipped_best_moves", "wilson", "run_suite", "default_suite", "solve_best",
           "print_suite"]


class SuiteError(PlygroundError):
    """A suite file that cannot be read, or a position whose score the solver contradicts."""


@dataclass(frozen=True)
class Position:
    """A solved position: its moves (1-based columns), exact score and best actions (0-based)."""

    moves: str
    score: int
    best: frozenset[int]

    @property
    def stones(self) -> int:
        return len(self.moves)


def default_suite() -> Path:
    """The 280 solved positions with their best moves, shipped with the package."""
    return Path(str(resources.files("plyground.search") / "data" / "connect4_best_moves.txt"))


def _parse(path: Path) -> list[tuple[str, int, frozenset[int] | None]]:
    if not path.is_file():
        raise SuiteError(f"positions file not found: {str(path)!r}")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split()
        ok = (len(parts) in (2, 3) and parts[0].isdigit() and all(c in "1234567" for c in parts[0])
              and parts[1].lstrip("+-").isdigit()
              and (len(parts) == 2 or (parts[2].isdigit() and all(c in "1234567" for c in parts[2]))))
        if not ok:
            raise SuiteError(f"{path}:{i}: expected 'MOVES SCORE [BEST]' (columns 1-7), got {text!r}")
        best = frozenset(int(c) - 1 for c in parts[2]) if len(parts) == 3 else None
        rows.append((parts[0], int(parts[1]), best))
    if not rows:
        raise SuiteError(f"{path}: no positions")
    return rows


def shipped_best_moves() -> dict[str, tuple[int, frozenset[int]]]:
    """MOVES -> (score, best actions) of the shipped best-moves file."""
    return {m: (s, b) for m, s, b in _parse(default_suite())}


def solve_best(moves: str, score: int) -> frozenset[int]:
    """The actions after ``moves`` that keep ``score``, every child solved with the exact solver; a
    score the children do not give is an error."""
    from plyground import games
    from plyground.search import alphabeta as ab
    try:
        state = games.play_moves(games.make("connect4"), moves)
    except PlygroundError as e:
        raise SuiteError(f"position {moves}: {e}") from None
    if state.is_terminal():
        raise SuiteError(f"position {moves} is already over")
    me = state.current_player()
    child = {}
    for a in state.legal_actions():
        c = state.clone()
        c.apply_action(a)
        if c.is_terminal():  # a win with this stone: floor((43 - n) / 2) with n stones on the board before it
            child[a] = (43 - len(moves)) // 2 if c.returns()[me] > 0 else 0
        else:
            child[a] = -ab.solve(c, all_values=False).score
    top = max(child.values())
    if top != score:
        raise SuiteError(f"position {moves}: the exact solver gives score {top}, the file says {score}")
    return frozenset(a for a, v in child.items() if v == score)


def load_suite(path: str | Path | None = None) -> list[Position]:
    """The positions of a suite file (default: the shipped 280 with best moves), best moves filled in."""
    p = Path(path) if path is not None else default_suite()
    rows = _parse(p)
    shipped = None
    out = []
    for moves, score, best in rows:
        if best is None:
            if shipped is None:
                shipped = shipped_best_moves()
            known = shipped.get(moves)
            if known is not None and known[0] == score:
                best = known[1]
            else:
                try:
                    best = solve_best(moves, score)
                except SuiteError as e:
                    raise SuiteError(f"{p}: {e}") from None
        out.append(Position(moves, score, best))
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` trials (95% by default); (0, 1) when n = 0."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def _share(k: int, n: int) -> dict[str, Any]:
    return {"best": k, "positions": n, "share": k / n if n else None, "interval": list(wilson(k, n))}


def run_suite(spec: str, positions: list[Position] | None = None, *, seed: int = 0, move_time: float | None = None,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Ask the agent ``spec`` for a move in every position; the share of best moves per stone count
    and overall, each with its 95% Wilson interval, and the per-position answers."""
    from plyground import agents, games

    if move_time is not None and not (move_time > 0 and math.isfinite(move_time)):
        raise SuiteError(f"move time must be a positive number of seconds; got {move_time!r}")
    positions = load_suite() if positions is None else positions
    game = games.make("connect4")
    agent = agents.make(spec)
    agent.check_game(game)
    agent.warm_up(game)
    per: dict[int, list[int]] = {}
    answers = []
    errors = fallbacks = 0
    try:
        for i, pos in enumerate(positions):
            state = games.play_moves(game, pos.moves)
            agent.reset(seed + i)
            played, error = None, None
            try:
                d = agent.act(state, clock=move_time)
                played = int(d.action)
                fallbacks += bool(d.fallback)
                if played not in state.legal_actions():
                    error = f"illegal move {played}"
            except InfrastructureError:
                raise
            except Exception as e:  # noqa: BLE001 - a failing agent misses the position, the suite goes on
                error = f"{type(e).__name__}: {e}"
            hit = error is None and played in pos.best
            errors += error is not None
            cell = per.setdefault(pos.stones, [0, 0])
            cell[0] += hit
            cell[1] += 1
            answers.append({"moves": pos.moves, "score": pos.score, "best": sorted(a + 1 for a in pos.best),
                            "played": None if played is None else played + 1, "hit": hit,
                            **({"error": error} if error else {})})
            if progress is not None:
                progress(i + 1, len(positions))
    finally:
        close = getattr(agent, "close", None)
        if close is not None:
            close()
    k = sum(v[0] for v in per.values())
    n = sum(v[1] for v in per.values())
    return {"agent": spec, **_share(k, n), "errors": errors, "fallbacks": fallbacks,
            "by_stones": {s: _share(*v) for s, v in sorted(per.items())}, "answers": answers}


def print_suite(result: dict[str, Any], console=None) -> None:
    """One agent's ``run_suite`` result as a rich table: best moves per stone count with intervals."""
    from rich.console import Console
    from rich.table import Table

    r = result
    lo, hi = r["interval"]
    share = "-" if r["share"] is None else f"{100 * r['share']:.1f}%"
    t = Table(title=f"{r['agent']}: {r['best']}/{r['positions']} best moves = {share} "
                    f"(95% {100 * lo:.1f}-{100 * hi:.1f})"
                    + (f", {r['errors']} errors" if r["errors"] else "")
                    + (f", {r['fallbacks']} fallbacks" if r["fallbacks"] else ""))
    for col in ("stones", "best", "positions", "share %", "95% interval"):
        t.add_column(col, justify="right")
    for stones, v in r["by_stones"].items():
        lo, hi = v["interval"]
        t.add_row(str(stones), str(v["best"]), str(v["positions"]), f"{100 * v['share']:.1f}",
                  f"{100 * lo:.0f}-{100 * hi:.0f}")
    (console or Console()).print(t)
