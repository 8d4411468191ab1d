"""The leaderboard: rated games read from the record, the joint Bradley-Terry fit with bootstrap
intervals, W/D/L, online Elo and the likelihood-of-superiority matrix, printed as a rich table
or written as CSV, JSON or Markdown.

>>> from plyground.arena.ratings import RatedGame
>>> games = [RatedGame("a", "b", 1.0), RatedGame("b", "a", 0.5), RatedGame("a", "b", 0.0)] * 4
>>> board = build_leaderboard(games, bootstrap=20)
>>> [r.player for r in board.rows], board.rows[0].games
(['a', 'b'], 12)
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from plyground.arena.ratings import (DEFAULT_K, WEAK_PRIOR_ELO, BTFit, Bootstrap, RatedGame, RatingError, bootstrap_ratings,
                                     check_player, fit_bradley_terry, head_to_head, los_matrix, online_elo,
                                     parse_anchor, player_records, score_from_returns)
from plyground.arena.outcomes import FORFEIT_KINDS, UTILITY_TEXT, Forfeits, forfeit_seat, rateable

COLUMNS = ("rank", "player", "elo", "ci_low", "ci_high", "games", "wins", "draws", "losses", "score",
           "forfeits_time", "forfeits_error", "forfeits_illegal", "online_elo", "note")


# ---------------------------------------------------------------------------------------------
# Reading games
# ---------------------------------------------------------------------------------------------

@dataclass
class LoadedGames:
    """Rated games in the order they ended, with what was left out and why."""

    games: list[RatedGame]
    skipped: Counter = field(default_factory=Counter)
    tournaments: list[str] = field(default_factory=list)
    forfeits: dict[str, Forfeits] = field(default_factory=dict)   # player -> its forfeits, in game order
    played: Counter = field(default_factory=Counter)               # player -> games recorded (aborted left out)


# A games row's first mover: the seat of its first non-chance move (through the moves' primary key)
FIRST_SEAT = ("(SELECT player FROM moves m WHERE m.game = games.id AND m.player >= 0 "
              "ORDER BY m.ply LIMIT 1)")


def _connect(path: str | Path) -> sqlite3.Connection:
    p = Path(path)
    if not p.is_file():
        raise RatingError(f"no record database at {str(path)!r} (give --db FILE of an arena run)")
    try:
        conn = sqlite3.connect(f"file:{p.resolve()}?mode=ro", uri=True)
        conn.execute("SELECT 1 FROM sqlite_master").fetchall()
    except sqlite3.Error as e:
        raise RatingError(f"{str(path)!r} is not a readable SQLite record: {e}") from None
    return conn


def _read_db(path: str | Path, tournament: str | None) -> tuple[list[dict], dict[str, str], list[str]]:
    conn = _connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"games", "players"} <= tables:
            raise RatingError(f"{str(path)!r} is not an arena record (it has no games/players tables)")
        names = {r[0]: r[1] for r in conn.execute("SELECT id, name FROM players")}
        tids = [r[0] for r in conn.execute("SELECT DISTINCT tournament FROM games ORDER BY tournament")]
        sql = ("SELECT id, tournament, pair, players, returns, rated, termination, detail, game, "
               f"{FIRST_SEAT if 'moves' in tables else 'NULL'} FROM games")
        args: list[Any] = []
        if tournament is not None:
            if tournament not in tids:
                raise RatingError(f"unknown tournament {tournament!r} in {str(path)!r}; tournaments with games: "
                                  f"{', '.join(t for t in tids if t) or '(none)'}")
            sql += " WHERE tournament = ?"
            args.append(tournament)
        sql += " ORDER BY ended, id"
        rows = []
        for gid, tid, pair, players, returns, rated, term, detail, game, first in conn.execute(sql, args):
            rows.append({"id": gid, "tournament": tid, "pair": pair, "players": json.loads(players or "null"),
                         "returns": json.loads(returns or "null"), "rated": rated, "termination": term,
                         "detail": detail, "game": game, "first_seat": first})
        return rows, names, tids
    finally:
        conn.close()


def _display_names(names: dict[str, str]) -> dict[str, str]:
    """Player id -> a unique display name (ids appended where two players share a name)."""
    count = Counter(names.values())
    return {pid: (n if count[n] == 1 else f"{n} [{pid[:6]}]") for pid, n in names.items()}


def _first_seat(row: dict, cache: dict[str, int]) -> int:
    """The seat that moved first in a game row: its recorded first move (``first_seat``), else the
    first player of its game's initial state (seat 0 when neither is known)."""
    seat = row.get("first_seat")
    if seat is not None:
        return int(seat)
    name = row.get("game")
    if not name:
        return 0
    if name not in cache:
        from plyground.arena.export import first_mover_seat
        cache[name] = first_mover_seat(name)
    return cache[name]


def games_from_rows(rows: Iterable[dict], names: dict[str, str] | None = None,
                    tournament: str | None = None) -> LoadedGames:
    """Rated two-player games from game rows (record.games() dicts: ``players`` and ``returns``
    decoded).  Each RatedGame lists first the player who moved first (``first_seat`` of the row,
    else the game's first player), so the first-move advantage is White's in chess whatever the seat.
    Forfeits are counted by kind per player (``forfeits``); games whose results are no wins, draws and
    losses (general-sum, identical-interest) are left out of the ratings, with the reason in ``skipped``."""
    rows = list(rows)
    used = {p for r in rows for p in (r.get("players") or [])}
    disp = _display_names({pid: n for pid, n in (names or {}).items() if pid in used})
    out = LoadedGames([])
    seen_t: dict[str, None] = {}
    first_cache: dict[str, int] = {}
    for r in rows:
        if tournament is not None and r.get("tournament") != tournament:
            continue
        if r.get("tournament") is not None:
            seen_t.setdefault(r["tournament"])
        players, returns = r.get("players"), r.get("returns")
        if players and r.get("termination") != "aborted":
            for p in players:
                out.played[disp.get(p, p)] += 1
            seat = forfeit_seat(r.get("termination"), returns or [])
            if seat is not None and seat < len(players):
                who = disp.get(players[seat], players[seat])
                out.forfeits.setdefault(who, Forfeits()).add(r["termination"], r.get("detail"))
        if not r.get("rated", 1):
            out.skipped[f"unrated ({r.get('termination') or 'aborted'})"] += 1
            continue
        if not players or not returns or len(players) != 2 or len(returns) != 2:
            out.skipped["not a two-player result"] += 1
            continue
        why = rateable(r.get("game"), r.get("termination"))
        if why is not None:
            out.skipped[f"{UTILITY_TEXT.get(why, why).split(' (')[0]} games: no win/draw/loss, so Bradley-Terry "
                        "ratings do not apply"] += 1
            continue
        if players[0] == players[1]:
            out.skipped["self-play"] += 1
            continue
        a, b = (disp.get(p, p) for p in players)
        pair = None if r.get("pair") is None else f"{r.get('tournament')}:{r['pair']}"
        score = score_from_returns(returns)
        if _first_seat(r, first_cache) == 1:  # e.g. OpenSpiel chess: seat 1 is White and moves first
            a, b, score = b, a, 1.0 - score
        out.games.append(RatedGame(a, b, score, r.get("id"), pair))
    out.tournaments = list(seen_t)
    return out


def load_games(source: Any, tournament: str | None = None) -> LoadedGames:
    """Rated games from a record path, a ``Record``, a list of RatedGame, or a list of game rows."""
    if isinstance(source, (str, Path)):
        rows, names, _ = _read_db(source, tournament)
        return games_from_rows(rows, names, tournament)
    if hasattr(source, "games") and hasattr(source, "player_names"):
        if tournament is not None:
            known = sorted({r["tournament"] for r in source.games()} - {None})
            if tournament not in known:
                raise RatingError(f"unknown tournament {tournament!r}; tournaments with games: "
                                  f"{', '.join(known) or '(none)'}")
        rows = source.games(tournament)
        firsts = dict(source.db.conn.execute(f"SELECT id, {FIRST_SEAT} FROM games"))
        for r in rows:
            r.setdefault("first_seat", firsts.get(r["id"]))
        return games_from_rows(rows, source.player_names(), tournament)
    items = list(source)
    if all(isinstance(g, RatedGame) for g in items):
        return LoadedGames(items)
    if all(isinstance(g, dict) for g in items):
        return games_from_rows(items, None, tournament)
    raise RatingError("ratings need a record path, a Record, RatedGame objects or game rows")


# ---------------------------------------------------------------------------------------------
# The leaderboard
# ---------------------------------------------------------------------------------------------

@dataclass
class LeaderboardRow:
    """One player's line.  ``note``: "lower bound"/"upper bound" when only a prior keeps the rating
    finite, "group N" when the players split into groups that never met."""

    rank: int
    player: str
    elo: float
    ci_low: float
    ci_high: float
    games: int
    wins: int
    draws: int
    losses: int
    score: float
    online_elo: float
    note: str = ""
    los: dict[str, float] = field(default_factory=dict)
    forfeits_time: int = 0      # games this player forfeited, by kind (counted in its losses)
    forfeits_error: int = 0
    forfeits_illegal: int = 0

    def as_dict(self, los: bool = True) -> dict:
        d = {c: getattr(self, c) for c in COLUMNS}
        for c in ("elo", "ci_low", "ci_high", "online_elo"):
            d[c] = round(float(d[c]), 2)
        d["score"] = round(float(d["score"]), 4)
        if los:
            d["los"] = {k: round(v, 4) for k, v in self.los.items()}
        return d


@dataclass
class Leaderboard:
    """Rows best first plus everything behind them: the fit, bootstrap, LOS and head-to-head matrices."""

    rows: list[LeaderboardRow]
    fit: BTFit
    boot: Bootstrap | None
    los: np.ndarray              # rows' order
    points: np.ndarray           # head-to-head points, rows' order
    meetings: np.ndarray         # head-to-head games, rows' order
    games: int
    skipped: Counter
    notes: list[str]
    ci_method: str               # "bootstrap (N, seed S)" or "normal approximation"
    online_k: float
    first_move_advantage: tuple[float, float, float] | None  # (elo, low, high)
    forfeits: dict[str, Forfeits] = field(default_factory=dict)  # player -> its forfeits
    played: Counter = field(default_factory=Counter)             # player -> games recorded

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def players(self) -> list[str]:
        return [r.player for r in self.rows]

    def to_records(self, los: bool = True) -> list[dict]:
        """The rows as plain dicts (what ``--json`` prints)."""
        return [r.as_dict(los) for r in self.rows]

    def to_json(self, indent: int | None = 1) -> str:
        """A JSON list of objects: player, elo, ci_low, ci_high, games, wins, draws, losses, ..."""
        return json.dumps(self.to_records(), indent=indent)

    def to_csv(self) -> str:
        """CSV with one line per player (COLUMNS)."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
        w.writeheader()
        for r in self.to_records(los=False):
            w.writerow(r)
        return buf.getvalue()

    def to_markdown(self) -> str:
        """A Markdown table plus the notes."""
        head = "| # | Player | Elo | 95% CI | Games | W | D | L | Score | Forfeits time/error/illegal | Online Elo | Note |"
        lines = [head, "|" + "---|" * 12]
        for r in self.rows:
            lines.append(f"| {r.rank} | {_md(r.player)} | {r.elo:.1f} | {r.ci_low:.1f} .. {r.ci_high:.1f} | "
                         f"{r.games} | {r.wins} | {r.draws} | {r.losses} | {100 * r.score:.1f}% | "
                         f"{_forfeit_cells(r)} | {r.online_elo:.1f} | {_md(r.note)} |")
        lines.append("")
        lines.extend(f"- {n}" for n in self.summary_lines() + self.forfeit_lines())
        return "\n".join(lines) + "\n"

    def summary_lines(self) -> list[str]:
        """How the numbers were made, and what to be careful about."""
        out = [f"{self.games} rated games; Bradley-Terry maximum likelihood (draws = half points, "
               f"400 Elo = 10:1 odds); {self.anchor_text()}",
               f"95% intervals: {self.ci_method}; online Elo: K={self.online_k:g} in game order"]
        if self.first_move_advantage is not None:
            h, lo, hi = self.first_move_advantage
            out.append(f"first-move advantage: {h:+.1f} Elo (95% {lo:+.1f} .. {hi:+.1f})")
        if self.skipped:
            out.append("not rated: " + ", ".join(f"{n} {k}" for k, n in sorted(self.skipped.items())))
        out.extend(self.notes)
        if self.forfeits:
            out.append("forfeits (time/error/illegal) are counted in W-D-L as losses of the player who forfeited")
        return out

    def forfeit_lines(self) -> list[str]:
        """A line per player who forfeited: the kind, how many and the first forfeit's detail."""
        return forfeit_lines(self.forfeits, self.played)

    def anchor_text(self) -> str:
        a = self.fit.anchor
        return "ratings average 0" if a is None else f"anchored at {a[0]} = {a[1]:g}"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


def _forfeit_cells(r: LeaderboardRow) -> str:
    return f"{r.forfeits_time}/{r.forfeits_error}/{r.forfeits_illegal}" if (
        r.forfeits_time or r.forfeits_error or r.forfeits_illegal) else "-"


def forfeit_lines(forfeits: dict[str, Forfeits], played: Counter | None = None, game: str | None = None) -> list[str]:
    """``NAME forfeited N games on time; first: DETAIL`` for each player with forfeits, most first."""
    order = sorted(forfeits.items(), key=lambda kv: (-kv[1].total, kv[0]))
    return [f.sentence(p, played=(played or {}).get(p), game=game) for p, f in order if f.total]


def build_leaderboard(source: Any, *, tournament: str | None = None, anchor: str | tuple[str, float] | None = None,
                      bootstrap: int = 200, first_move_advantage: bool = False, seed: int = 0,
                      k: float = DEFAULT_K, progress: Callable[[int, int], None] | None = None) -> Leaderboard:
    """Rate every player of ``source`` (a record path, a Record, RatedGames or game rows).

    ``anchor``: "NAME=ELO" or (name, elo); default mean 0.  ``bootstrap``: replicates for the
    95% intervals (0: normal approximation from the fit's information matrix instead).
    ``progress(done, total)`` follows the bootstrap."""
    loaded = load_games(source, tournament)
    games = loaded.games
    if not games:
        where = f" of tournament {tournament!r}" if tournament else ""
        extra = (" (" + ", ".join(f"{n} {k_}" for k_, n in sorted(loaded.skipped.items())) + ")") \
            if loaded.skipped else ""
        raise RatingError(f"no rated games{where} in the record{extra}; nothing to rate")
    if bootstrap < 0:
        raise RatingError(f"--bootstrap {bootstrap}: the number of replicates must be 0 or more")
    recs = player_records(games)
    players = sorted(recs)
    if isinstance(anchor, str):
        anchor = parse_anchor(anchor, players)
    elif anchor is not None:
        check_player(anchor[0], players, what="anchor player")
    fit = fit_bradley_terry(games, players=players, first_move_advantage=first_move_advantage, anchor=anchor)
    boot = None
    if bootstrap > 0:
        # resample in a fixed order (by game id where known), so the intervals depend only on the
        # seed and the results, not on the order in which parallel workers happened to finish games
        ordered = sorted(games, key=lambda g: (g.id is None, str(g.id)))
        boot = bootstrap_ratings(ordered, fit, n=bootstrap, seed=seed, progress=progress)
        low, high = boot.low, boot.high
        ci_method = f"bootstrap ({bootstrap} resamples of the games, seed {seed})"
    else:
        half = 1.959964 * fit.sd()
        low, high = fit.elo - half, fit.elo + half
        ci_method = "normal approximation (inverse information)"
    fma = None
    if fit.first_move_advantage is not None:
        if boot is not None:
            fma = (fit.first_move_advantage, boot.fma_low, boot.fma_high)
        else:
            h, e = fit.first_move_advantage, 1.959964 * (fit.fma_sd or 0.0)
            fma = (h, h - e, h + e)
    online = online_elo(games, k=k, players=players)
    mean_online = float(np.mean([online[p] for p in players]))
    shift = (0.0 - mean_online) if anchor is None else anchor[1] - online[anchor[0]]

    los = los_matrix(fit)
    order = sorted(range(len(players)), key=lambda i: (-fit.elo[i], players[i]))
    group_of = {p: gi for gi, g in enumerate(fit.groups) for p in g}
    open_ends = boot.open_ends() if boot is not None else {}
    rows = []
    for rank, i in enumerate(order, 1):
        p = players[i]
        r = recs[p]
        notes = []
        if p in fit.bound:
            notes.append(f"{fit.bound[p]} bound")
        if len(fit.groups) > 1:
            notes.append(f"group {group_of[p] + 1}")
        if anchor is not None and p == anchor[0]:
            notes.append("anchor")
        elif p in open_ends:
            notes.append(f"CI open {open_ends[p]}")
        ff = loaded.forfeits.get(p, Forfeits())
        rows.append(LeaderboardRow(rank, p, float(fit.elo[i]), float(low[i]), float(high[i]), r.games, r.wins,
                                   r.draws, r.losses, r.score, online[p] + shift, ", ".join(notes),
                                   {players[j]: float(los[i, j]) for j in order if j != i},
                                   *(ff.get(k) for k in FORFEIT_KINDS)))
    pts, cnt = head_to_head(games, players)
    o = np.array(order)
    notes = list(fit.notes)
    if boot is not None and boot.prior_replicates:
        notes.append(f"{boot.prior_replicates} of {bootstrap} bootstrap resamples had a player who won or lost "
                     f"everything; they were refitted with a weak N(fit, {WEAK_PRIOR_ELO:g}^2) prior")
        for p, side in open_ends.items():
            if anchor is None or p != anchor[0]:
                notes.append(f"{p}: the {'lower' if side == 'below' else 'upper' if side == 'above' else ''} "
                             f"end{'s' if side == 'both' else ''} of its interval "
                             f"{'are' if side == 'both' else 'is'} only a bound (too few "
                             f"{'points' if side != 'above' else 'points conceded'} to pin it down)")
    return Leaderboard(rows=rows, fit=fit, boot=boot, los=los[np.ix_(o, o)], points=pts[np.ix_(o, o)],
                       meetings=cnt[np.ix_(o, o)], games=len(games), skipped=loaded.skipped, notes=notes,
                       ci_method=ci_method, online_k=k, first_move_advantage=fma, forfeits=loaded.forfeits,
                       played=loaded.played)


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------

def _fmt(v: float, spec: str = ".1f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def print_leaderboard(board: Leaderboard, console: Any = None, *, los: bool = True, max_los: int = 12,
                      title: str | None = "Leaderboard") -> None:
    """Print the leaderboard as a rich table, the notes, and (up to ``max_los`` players) the LOS matrix."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    console = console or Console()
    with_notes = any(r.note for r in board.rows)
    longest = max((len(r.player) for r in board.rows), default=6)
    cols = [("Elo", 7), ("95% CI", 12), ("Games", 5), ("W-D-L", 11), ("Score", 6), ("Online", 7)]
    if any(_forfeit_cells(r) != "-" for r in board.rows):   # beside the score: forfeits by kind
        cols.insert(5, ("Forfeits t/e/i", 14))
    need = 4 + min(longest, 32) + 3 + sum(w + 3 for _, w in cols) + (14 if with_notes else 0)
    for optional in ("Online", "Score"):          # narrow terminals: drop the least essential columns
        if need > console.width:
            need -= dict(cols)[optional] + 3
            cols = [c for c in cols if c[0] != optional]
    names = [c for c, _ in cols]
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("Player", min_width=min(longest, 12), overflow="fold")
    for name in names:
        t.add_column(name, justify="right", no_wrap=True)
    if with_notes:
        t.add_column("Note", overflow="fold")
    for r in board.rows:
        cells = {"Elo": _fmt(r.elo), "95% CI": f"[{_fmt(r.ci_low, '.0f')}, {_fmt(r.ci_high, '.0f')}]",
                 "Games": str(r.games), "W-D-L": f"{r.wins}-{r.draws}-{r.losses}", "Score": f"{100 * r.score:.1f}%",
                 "Forfeits t/e/i": _forfeit_cells(r), "Online": _fmt(r.online_elo)}
        t.add_row(str(r.rank), r.player, *(cells[c] for c in names), *([r.note] if with_notes else []))
    console.print(t)
    for line in board.summary_lines():
        console.print(f"  {line}", highlight=False, markup=False)
    n = len(board.rows)
    if los and 1 < n <= max_los:
        console.print("Likelihood of superiority: P(row is stronger than column)", highlight=False)
        m = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        m.add_column("")
        for j in range(n):
            m.add_column(str(j + 1), justify="right")
        for i, r in enumerate(board.rows):
            m.add_row(f"{i + 1} {r.player}", *("" if i == j else f"{board.los[i, j]:.2f}" for j in range(n)))
        console.print(m)
    elif los and n > max_los:
        console.print(f"  (LOS matrix omitted for {n} players; see --json)", highlight=False)
    for line in board.forfeit_lines():   # last: why agents lost games without playing them out
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def leaderboard_text(board: Leaderboard, fmt: str) -> str:
    """The leaderboard as 'json', 'csv' or 'markdown' text."""
    if fmt == "json":
        return board.to_json() + "\n"
    if fmt == "csv":
        return board.to_csv()
    if fmt in ("markdown", "md"):
        return board.to_markdown()
    raise RatingError(f"leaderboard format {fmt!r} is not allowed; choose table, json, csv or markdown")


def rated_players(source: Any, tournament: str | None = None) -> list[str]:
    """Names of the players with rated games (for error messages and A/B defaults)."""
    return sorted(player_records(load_games(source, tournament).games))



# ---------------------------------------------------------------------------------------------
# Games without wins, draws and losses: mean returns instead of ratings
# ---------------------------------------------------------------------------------------------

@dataclass
class ReturnsRow:
    """One player's mean return per game over the games that ended by the rules (forfeits apart)."""

    player: str
    games: int          # games recorded (aborted ones left out)
    played_out: int     # games that ended by the rules: the mean is over these
    mean: float
    ci_low: float
    ci_high: float
    forfeits: Forfeits


def returns_table(path: str | Path, tournament: str | None = None) -> tuple[list[ReturnsRow], str | None]:
    """Mean return per player (95% interval) of the record at ``path``, best first, and the utility kind
    of its games when they have no win/draw/loss (general-sum, identical-interest), else None."""
    from plyground.arena.outcomes import mean_interval
    rows, names, _ = _read_db(path, tournament)
    disp = _display_names(names)
    kind = next((k for k in (rateable(r.get("game"), r.get("termination")) for r in rows) if k), None)
    loaded = games_from_rows(rows, names, tournament)
    rets: dict[str, list[float]] = {}
    for r in rows:
        players, returns = r.get("players") or [], r.get("returns") or []
        for seat, p in enumerate(players):
            rets.setdefault(disp.get(p, p), [])
            if r.get("termination") == "normal" and seat < len(returns):
                rets[disp.get(p, p)].append(float(returns[seat]))
    out = [ReturnsRow(p, loaded.played[p], len(v), *mean_interval(v), loaded.forfeits.get(p, Forfeits()))
           for p, v in rets.items()]
    out.sort(key=lambda x: (-(x.mean if not math.isnan(x.mean) else -math.inf), x.player))
    return out, kind


def print_returns_table(path: str | Path, tournament: str | None = None, console: Any = None,
                        title: str | None = "Mean returns") -> None:
    """The mean-return table of a record whose games have no win/draw/loss, and its forfeit lines."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    console = console or Console()
    rows, kind = returns_table(path, tournament)
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("Player", min_width=min(max((len(r.player) for r in rows), default=6), 24), overflow="fold")
    for col in ("Games", "Ended", "Mean", "95% CI", "Forfeits t/e/i"):
        t.add_column(col, justify="right", no_wrap=True)
    for rank, r in enumerate(rows, 1):
        t.add_row(str(rank), r.player, str(r.games), str(r.played_out), _fmt(r.mean, "+.2f"),
                  f"[{_fmt(r.ci_low, '+.2f')}, {_fmt(r.ci_high, '+.2f')}]", r.forfeits.cells())
    console.print(t)
    what = UTILITY_TEXT.get(kind, kind or "")
    console.print(f"  the games are {what}: no win/draw/loss, so Bradley-Terry ratings do not apply; Mean: "
                  "return per game over the games that Ended by the rules (forfeits apart), 95% normal intervals",
                  highlight=False, markup=False)
    for line in forfeit_lines({r.player: r.forfeits for r in rows}, Counter({r.player: r.games for r in rows})):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
