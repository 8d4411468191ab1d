"""What finished games say about the agents that played them.

Three readings, never mixed up:

- a **forfeit** (``timeout``, ``agent_error``, ``illegal_move``): the game did not end by the rules;
  the seat that forfeited is the one given the lowest return (``match._forfeit_returns`` and the
  arena's runner give it -1).  Its opponent takes the point, but a forfeit is reported as a forfeit,
  by kind, with the first one's detail (often it says the agent cannot play the game at all);
- a **win, draw or loss** in a two-player zero- or constant-sum game: the higher return wins, equal
  returns draw (``schedule.score_by_seat``);
- only a **return** in general-sum and identical-interest games, where one player's gain is not the
  other's loss, so W/D/L (and the ratings built on it) does not apply: the mean return per agent
  with a 95% interval is what means something there.

``MatchTally`` keeps the score of a two-agent match (``plyground play``); ``Forfeits`` counts one
agent's forfeits by kind (the arena's leaderboard uses it too).

>>> from plyground.arena.match import GameResult
>>> f = Forfeits()
>>> f.add("timeout", "seat 0 (minimax:depth=5) took 7.012s > 5.0s")
>>> f.add("timeout", "seat 1 (minimax:depth=5) took 6.500s > 5.0s")
>>> f.sentence("minimax-d5")
'minimax-d5 forfeited 2 games on time; first: seat 0 (minimax:depth=5) took 7.012s > 5.0s'
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

from plyground.arena.match import ERROR, ILLEGAL, MAX_PLIES, NORMAL, TIMEOUT, GameResult
from plyground.arena.schedule import score_by_seat
from plyground.games.errors import PlygroundError, UnsupportedGameError
from plyground.games.traits import CONSTANT_SUM, GENERAL_SUM, IDENTICAL, ZERO_SUM, GameTraits, traits

FORFEIT_KINDS = (TIMEOUT, ERROR, ILLEGAL)
FORFEIT_SHORT = {TIMEOUT: "time", ERROR: "error", ILLEGAL: "illegal"}
FORFEIT_PHRASE = {TIMEOUT: "on time", ERROR: "by an agent error", ILLEGAL: "by an illegal move"}
UTILITY_TEXT = {
    ZERO_SUM: "zero-sum",
    CONSTANT_SUM: "constant-sum",
    GENERAL_SUM: "general-sum (one player's gain is not the other's loss)",
    IDENTICAL: "identical-interest (both players always get the same return)",
}


def is_forfeit(termination: str | None) -> bool:
    """True for the terminations in which an agent forfeited (time, error, illegal move)."""
    return termination in FORFEIT_KINDS


def forfeit_seat(termination: str | None, returns: Sequence[float]) -> int | None:
    """The seat that forfeited a game, or None if the game did not end in a forfeit."""
    if not is_forfeit(termination) or not returns:
        return None
    return min(range(len(returns)), key=lambda s: float(returns[s]))


def first_line(detail: str | None) -> str:
    """The first line of a game's detail (an agent error's detail goes on with traceback lines)."""
    return (detail or "").strip().splitlines()[0] if (detail or "").strip() else ""


@dataclass
class Forfeits:
    """One agent's forfeits by kind, and the detail of its first forfeit."""

    counts: Counter = field(default_factory=Counter)
    first: str = ""

    def add(self, kind: str, detail: str | None) -> None:
        self.counts[kind] += 1
        if not self.first:
            self.first = first_line(detail) or kind

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def get(self, kind: str) -> int:
        return self.counts.get(kind, 0)

    def cells(self) -> str:
        """``time/error/illegal`` counts, e.g. ``6/1/0``; ``-`` when there are none."""
        return "/".join(str(self.get(k)) for k in FORFEIT_KINDS) if self.total else "-"

    def by_kind(self) -> str:
        """``timeout 2, agent_error 1`` (``none`` when there are none)."""
        return ", ".join(f"{k} {self.get(k)}" for k in FORFEIT_KINDS if self.get(k)) or "none"

    def sentence(self, who: str, played: int | None = None, game: str | None = None) -> str:
        """``WHO forfeited N games on time and M by an agent error; first: DETAIL``.  With ``played``
        equal to the forfeits (every game it played), it says the agent could not play ``game``."""
        n = self.total
        kinds = [k for k in FORFEIT_KINDS if self.get(k)]
        parts = [f"{self.get(k)} {FORFEIT_PHRASE[k]}" for k in kinds]
        if len(parts) == 1:
            what = f"{n} game{'s' if n != 1 else ''} {FORFEIT_PHRASE[kinds[0]]}"
        else:
            what = f"{n} games: " + ", ".join(parts[:-1]) + " and " + parts[-1]
        if played is not None and played == n:
            what = (f"all {n} of its games" if n > 1 else "its only game") + (
                f" {FORFEIT_PHRASE[kinds[0]]}" if len(kinds) == 1 else " (" + ", ".join(parts) + ")")
            if game:
                what += f": it could not play {game}" + (" within the move time" if kinds == [TIMEOUT] else "")
        return f"{who} forfeited {what}; first: {self.first}"


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% normal-approximation interval (``nan`` ends with fewer than two values)."""
    if not values:
        return math.nan, math.nan, math.nan
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, math.nan, math.nan
    half = 1.959964 * statistics.stdev(values) / math.sqrt(len(values))
    return m, m - half, m + half


@lru_cache(maxsize=64)
def game_traits(name: str) -> GameTraits | None:
    """The traits of the game ``name`` (a record's game column), None if it no longer loads."""
    from plyground import games
    try:
        return traits(games.make(name))
    except (PlygroundError, ImportError):
        return None


def rateable(name: str | None, termination: str | None = None) -> str | None:
    """None if results of game ``name`` are wins, draws and losses (two-player zero- or constant-sum;
    PGN results always are, as is a game that no longer loads), else its utility kind (why not)."""
    if not name or termination == "pgn":
        return None
    t = game_traits(name)
    if t is None or t.win_draw_loss:
        return None
    return t.utility if t.num_players == 2 else f"{t.num_players}-player"


def _num(v: float, spec: str = "+.3f") -> str:
    return "-" if v is None or math.isnan(v) else format(v, spec)


@dataclass
class Side:
    """One agent of a match: games played to the end, its forfeits and its returns."""

    label: str
    spec: str
    games: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0
    points: float = 0.0
    forfeits: Forfeits = field(default_factory=Forfeits)
    returns: list[float] = field(default_factory=list)   # games that ended by the rules

    def as_dict(self) -> dict[str, Any]:
        m, lo, hi = (None if math.isnan(v) else round(v, 6) for v in mean_interval(self.returns))
        return {"spec": self.spec, "games": self.games, "wins": self.wins, "draws": self.draws,
                "losses": self.losses, "points": self.points,
                "forfeits": {k: self.forfeits.get(k) for k in FORFEIT_KINDS}, "first_forfeit": self.forfeits.first,
                "mean_return": m, "ci_low": lo, "ci_high": hi}


class MatchTally:
    """The running score of agents A and B over games of one game, whoever sat where.

    Zero- and constant-sum two-player games are scored by comparing the two returns (a forfeit
    gives the opponent the point and is counted apart, by kind); general-sum and identical-interest
    games get no W/D/L score, only each agent's mean return over the games that ended by the rules.
    """

    def __init__(self, game, spec_a: str, spec_b: str) -> None:
        self.traits = traits(game)
        self.game = self.traits.name
        if self.traits.num_players != 2:
            raise UnsupportedGameError(
                f"{self.game} is a {self.traits.num_players}-player game; a match seats two agents (A and B)")
        self.win_draw_loss = self.traits.win_draw_loss
        self.sides = {"A": Side("A", spec_a), "B": Side("B", spec_b)}
        self.n = 0
        self.stopped = 0   # games stopped at a ply limit (no return to average)

    def add(self, result: GameResult, a_seat: int) -> dict[str, Any]:
        """Count one finished game in which A sat in ``a_seat``; returns its reading by agent
        (``returns``, ``score`` or None, ``forfeit`` or None), as ``--json`` prints it."""
        seat_of = {"A": a_seat, "B": 1 - a_seat}
        by_agent = {k: float(result.returns[s]) for k, s in seat_of.items()}
        self.n += 1
        for side in self.sides.values():
            side.games += 1
        out: dict[str, Any] = {"a_seat": a_seat, "returns_by_agent": by_agent, "score": None, "forfeit": None}
        loser_seat = forfeit_seat(result.termination, result.returns)
        if loser_seat is not None:
            who = "A" if loser_seat == a_seat else "B"
            other = "B" if who == "A" else "A"
            self.sides[who].forfeits.add(result.termination, result.detail)
            out["forfeit"] = {"agent": who, "seat": loser_seat, "kind": result.termination,
                              "detail": first_line(result.detail)}
            if self.win_draw_loss:
                self.sides[other].points += 1.0
                out["score"] = {"A": 0.0 if who == "A" else 1.0, "B": 0.0 if who == "B" else 1.0}
            return out
        if result.termination == MAX_PLIES:
            self.stopped += 1
        if self.win_draw_loss:
            s_a, s_b = score_by_seat([by_agent["A"], by_agent["B"]])
            for k, s in (("A", s_a), ("B", s_b)):
                side = self.sides[k]
                side.points += s
                side.wins += s == 1.0
                side.draws += s == 0.5
                side.losses += s == 0.0
            out["score"] = {"A": s_a, "B": s_b}
        if result.termination == NORMAL:
            for k, side in self.sides.items():
                side.returns.append(by_agent[k])
        return out

    def outcome_text(self, result: GameResult) -> str:
        """One game's result from seat 0's side: ``1-0``, ``0-1``, ``1/2-1/2``, or its returns."""
        if self.win_draw_loss:
            s0, _ = score_by_seat(result.returns)
            return {1.0: "1-0", 0.0: "0-1", 0.5: "1/2-1/2"}[s0]
        return "returns " + ", ".join(f"{r:g}" for r in result.returns)

    def progress_text(self) -> str:
        a, b = self.sides["A"], self.sides["B"]
        if self.win_draw_loss:
            text = f"A {a.points:g} - {b.points:g} B"
        else:
            text = f"mean return A {_num(mean_interval(a.returns)[0], '.3g')}, B {_num(mean_interval(b.returns)[0], '.3g')}"
        if a.forfeits.total or b.forfeits.total:
            text += f"  forfeits A {a.forfeits.total} B {b.forfeits.total}"
        return text

    def summary_lines(self) -> list[str]:
        """The end-of-match summary: the score (or mean returns), forfeits by kind, and a line per
        agent that forfeited, naming the first forfeit's detail."""
        a, b = self.sides["A"], self.sides["B"]
        n = self.n
        lines = [f"A = {a.spec}", f"B = {b.spec}"]
        if self.win_draw_loss:
            pct = 100 * a.points / n if n else math.nan
            lines.append(f"score A {a.points:g} - {b.points:g} B over {n} games "
                         f"(A: +{a.wins} ={a.draws} -{a.losses}, {pct:.1f}%)")
            if a.returns and (self.traits.min_utility, self.traits.max_utility) != (-1.0, 1.0):
                # returns are amounts (chips, points), not just who won: how much, too
                m_a, m_b = (mean_interval(s.returns) for s in (a, b))
                lines.append(f"mean return per game played to the end: A {_num(m_a[0])} [{_num(m_a[1])}, "
                             f"{_num(m_a[2])}], B {_num(m_b[0])} [{_num(m_b[1])}, {_num(m_b[2])}] (95% interval)")
        else:
            played = len(a.returns)
            lines.append(f"{self.game} is {UTILITY_TEXT[self.traits.utility]}: a win/draw/loss score "
                         f"does not apply")
            lines.append(f"mean return per game over the {played} of {n} games played to the end (95% interval):")
            for side in (a, b):
                m, lo, hi = mean_interval(side.returns)
                ci = f"[{_num(lo)}, {_num(hi)}]" if not math.isnan(lo) else "(no interval: fewer than 2 games)"
                lines.append(f"  {side.label}  {_num(m)} {ci}")
        if a.forfeits.total or b.forfeits.total:
            rule = (" (each gives the opponent the point; +/=/- counts the games played to the end)"
                    if self.win_draw_loss else " (not in the mean returns)")
            lines.append(f"forfeits{rule}: A {a.forfeits.by_kind()}; B {b.forfeits.by_kind()}")
        else:
            lines.append("no forfeits")
        if self.stopped:
            lines.append(f"{self.stopped} game(s) stopped at the ply limit")
        for side in (a, b):
            if side.forfeits.total:
                lines.append(side.forfeits.sentence(f"{side.label} ({side.spec})", played=side.games,
                                                    game=self.game))
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"game": self.game, "utility": self.traits.utility, "win_draw_loss": self.win_draw_loss,
                "games": self.n, "agents": {k: s.as_dict() for k, s in self.sides.items()}}
