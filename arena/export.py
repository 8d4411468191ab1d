"""Recorded games out of the record: JSON lines for every game, PGN for chess and results-only PGN
for the rest (what rating tools such as Ordo and BayesElo read).

Both carry the record's analysis: a JSON line lists every analysis row of its game (all engines);
a chess game's PGN gives each move ``[%emt H:MM:SS.sss]`` (the mover's think time) and, where one
analysis engine evaluated it, ``[%eval ...]`` and the NAG of its label (``?!`` inaccuracy, ``?``
mistake, ``??`` blunder; none on a ply of the tournament's opening, which no agent chose).  The eval
is from White's view in pawns: the value after the move in -1..1 mapped through the inverse of lichess's win-chance curve (``evaluations.pawns``), or ``#N`` / ``#-N``
where the analysis proved a win and its principal variation gives the distance to mate.

>>> result_token([1.0, -1.0], white_seat=0), result_token([1.0, -1.0], white_seat=1), result_token([0.0, 0.0], 0)
('1-0', '0-1', '1/2-1/2')
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, TextIO

from plyground.arena.evaluations import (all_analysis, analysis_by_ply, engines, is_opening, pawns, pick_engine,
                                         resolve_engine)
from plyground.arena.pgn import format_game
from plyground.games.errors import PlygroundError

__all__ = ["CHESS_GAMES", "is_chess", "first_mover_seat", "result_token", "open_record", "check_tournament",
           "tournament_ids",
           "player_rows", "game_to_json", "iter_game_dicts", "export_jsonl", "game_to_pgn", "export_pgn",
           "ExportSummary", "PGN_TERMINATION", "emt_text", "eval_text"]

CHESS_GAMES = ("openspiel:chess", "pettingzoo:classic/chess_v6")

# plyground's termination reasons -> the PGN standard's Termination tag values.
PGN_TERMINATION = {
    "normal": "normal",
    "timeout": "time forfeit",
    "illegal_move": "rules infraction",
    "agent_error": "abandoned",
    "max_plies": "adjudication",
    "aborted": "unterminated",
    "pgn": "normal",
}


def is_chess(game_name: str) -> bool:
    """True for the chess games whose moves are written as SAN in a full PGN."""
    return game_name in CHESS_GAMES


@functools.lru_cache(maxsize=64)
def _initial_player(game_name: str) -> int:
    from plyground import games
    try:
        p = games.make(game_name).new_initial_state().current_player()
    except Exception:  # noqa: BLE001 - a game this install cannot build: assume seat 0 starts
        return 0
    return p if p >= 0 else 0


def first_mover_seat(game_name: str, moves: list[dict] | None = None) -> int:
    """The seat that makes the first (non-chance) move: White in PGN.  From the recorded moves if
    any, else from the game's initial state (OpenSpiel chess: seat 1 is White)."""
    for m in moves or ():
        if m.get("player") is not None and m["player"] >= 0:
            return int(m["player"])
    return _initial_player(game_name)


def result_token(returns: list[float], white_seat: int) -> str:
    """The PGN result of a two-player game from its per-seat returns."""
    w, b = returns[white_seat], returns[1 - white_seat]
    return "1-0" if w > b else "0-1" if w < b else "1/2-1/2"


def open_record(path: str | Path):
    """The record at ``path``, which must exist (reading never creates an empty database) and be an
    SQLite file; either failure is a ``PlygroundError`` naming the file."""
    import sqlite3

    from plyground.arena.record import Record
    p = Path(path)
    if str(path) != ":memory:" and not p.is_file():
        raise PlygroundError(f"no arena record at {str(p)!r}: the file does not exist "
                             "(create one with 'plyground arena run CONFIG.toml --db FILE' or 'arena import-pgn')")
    try:
        return Record(p)
    except sqlite3.DatabaseError as e:
        raise PlygroundError(f"{str(p)!r} is not an arena record ({e})") from None


def check_tournament(record, tournament: str | None) -> None:
    """Raise a clear error if ``tournament`` is given and not in the record."""
    if tournament is None:
        return
    known = [r["id"] for r in record.db.query("SELECT id FROM tournaments ORDER BY created, id")]
    if tournament not in known:
        shown = ", ".join(known[:10]) + (f", ... ({len(known)} in all)" if len(known) > 10 else "")
        raise PlygroundError(f"unknown tournament {tournament!r}; the record has: {shown or 'no tournaments'}")


def tournament_ids(record, tournament: str | None) -> list[str] | None:
    """The ids of the tournaments ``tournament`` names (an id or a name; a name may be shared), None
    for None; an unknown one is an error listing what the record holds."""
    if tournament is None:
        return None
    known = record.tournaments()
    ids = [t["id"] for t in known if tournament in (t["id"], t.get("name"))]
    if not ids:
        shown = ", ".join(f"{t['id']} ({t.get('name')})" for t in known[:10]) or "no tournaments"
        more = f", ... ({len(known)} in all)" if len(known) > 10 else ""
        raise PlygroundError(f"unknown tournament {tournament!r}; the record holds: {shown}{more}")
    return ids


def player_rows(record) -> dict[str, dict]:
    """Player id -> the players row (config decoded)."""
    out = {}
    for r in record.db.query("SELECT * FROM players"):
        r["config"] = json.loads(r["config"]) if r.get("config") else None
        out[r["id"]] = r
    return out


def _tournament_names(record) -> dict[str, str]:
    return {r["id"]: r["name"] or r["id"] for r in record.db.query("SELECT id, name FROM tournaments")}


def game_to_json(row: dict, moves: list[dict], players: dict[str, dict],
                 analysis: list[dict] | None = None) -> dict[str, Any]:
    """One game as a JSON-ready dict: the games columns, players by seat (id, name, spec), every
    move (ply, player, action, text, think_time, decision) and the game's analysis rows (every
    engine's; pv and detail decoded, exact as a boolean)."""
    seats = []
    for seat, pid in enumerate(row["players"]):
        p = players.get(pid, {})
        seats.append({"seat": seat, "id": pid, "name": p.get("name", pid), "spec": p.get("spec")})
    out = {k: row.get(k) for k in ("id", "tournament", "round", "pair", "game")}
    out["players"] = seats
    for k in ("returns", "termination", "detail", "rated", "seed", "opening", "plies", "started", "ended"):
        out[k] = row.get(k)
    out["moves"] = [{k: m.get(k) for k in ("ply", "player", "action", "text", "think_time", "decision")}
                    for m in moves]
    out["analysis"] = list(analysis or [])
    return out


def iter_game_dicts(record, tournament: str | None = None) -> Iterator[dict[str, Any]]:
    """``game_to_json`` of every recorded game (of one tournament if given), in the order they ended."""
    check_tournament(record, tournament)
    players = player_rows(record)
    for row in record.games(tournament):
        yield game_to_json(row, record.moves(row["id"]), players, all_analysis(record, row["id"]))


def export_jsonl(record, out: TextIO, tournament: str | None = None) -> int:
    """Write one JSON object a line per game; returns the number of games written."""
    n = 0
    for d in iter_game_dicts(record, tournament):
        out.write(json.dumps(d, sort_keys=False, default=str) + "\n")
        n += 1
    return n


def _pgn_date(iso: str | None) -> str:
    if not iso or len(iso) < 10:
        return "????.??.??"
    return iso[:10].replace("-", ".")


_NAGS = {"inaccuracy": "?!", "mistake": "?", "blunder": "??"}


def emt_text(seconds: float) -> str:
    """Think time as PGN's ``H:MM:SS.sss``.

    >>> emt_text(0.25), emt_text(3725.5)
    ('0:00:00.250', '1:02:05.500')
    """
    ms = max(0, round(float(seconds) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{h}:{m:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def eval_text(a: dict, white_moved: bool) -> str | None:
    """``[%eval]``'s value for the position after an analysed move, from White's view: ``#N`` / ``#-N``
    for a proven win whose principal variation starts with the move played (mate in N moves), else
    pawns (``evaluations.pawns`` of the value after the move), two decimals.

    >>> eval_text({"value_after": 0.5}, True), eval_text({"value_after": 0.5}, False)
    ('2.98', '-2.98')
    >>> eval_text({"value_after": 1.0, "exact": 1, "action": 5, "pv": [5, 9, 7]}, False)
    '#-1'
    """
    v = a.get("value_after")
    if v is None or not math.isfinite(float(v)):
        return None
    v = float(v) if white_moved else -float(v)
    pv = a.get("pv") if isinstance(a.get("pv"), list) else None
    if a.get("exact") and abs(v) == 1.0 and pv and pv[0] == a.get("action") and len(pv) % 2 == 1 and len(pv) > 1:
        n = (len(pv) - 1) // 2          # the winner's moves after the one played, the mating one last
        return f"#{n}" if v > 0 else f"#-{n}"
    return f"{pawns(v):.2f}"


def game_to_pgn(row: dict, moves: list[dict], players: dict[str, dict], event: str = "?",
                analysis: dict[int, dict] | None = None) -> str:
    """One two-player game as PGN: the moves in SAN for chess, only the result for other games.

    White is the seat that moves first; an unrated game's result is ``*``.  Chess moves carry their
    think time (``[%emt]``) and, from ``analysis`` (one engine's rows by ply), ``[%eval]`` and the
    label's NAG."""
    if len(row["players"]) != 2:
        raise PlygroundError(f"game {row['id']} has {len(row['players'])} players; PGN holds two-player games only")
    chess = is_chess(row["game"])
    white = first_mover_seat(row["game"], moves)
    names = [players.get(pid, {}).get("name") or pid for pid in row["players"]]
    specs = [players.get(pid, {}).get("spec") or "" for pid in row["players"]]
    rated = row.get("rated", 1)
    result = result_token(row["returns"], white) if rated else "*"
    played = [m for m in moves if m.get("action") is not None and m["action"] >= 0 and m.get("player", 0) >= 0]
    tags: dict[str, Any] = {
        "Event": event,
        "Site": "plyground",
        "Date": _pgn_date(row.get("started")),
        "Round": "?" if row.get("round") is None else row["round"],
        "White": names[white],
        "Black": names[1 - white],
        "Result": result,
        "WhiteSpec": specs[white],
        "BlackSpec": specs[1 - white],
        "GameId": row["id"],
        "Termination": PGN_TERMINATION.get(row.get("termination"), "unterminated"),
        "PlyCount": len(played),
    }
    if not chess:
        tags["Game"] = row["game"]
    comment = None
    if row.get("termination") not in ("normal", "pgn") or row.get("detail"):
        comment = f"{row.get('termination')}: {row.get('detail') or ''}".strip().rstrip(":")
    sans = [m["text"] for m in played] if chess else []
    if chess and any(not s for s in sans):
        raise PlygroundError(f"game {row['id']} has a move without its text; cannot write SAN")
    suffixes: list[str | None] = []
    notes: list[str | None] = []
    for m in played if chess else ():
        a = (analysis or {}).get(int(m["ply"]))
        parts = []
        ev = eval_text(a, m.get("player") == white) if a else None
        if ev is not None:
            parts.append(f"[%eval {ev}]")
        if isinstance(m.get("think_time"), (int, float)):
            parts.append(f"[%emt {emt_text(m['think_time'])}]")
        notes.append(" ".join(parts) or None)
        suffixes.append(None if is_opening(m.get("decision")) else _NAGS.get((a or {}).get("label")))
    return format_game(tags, sans, result, comment=comment, suffixes=suffixes, move_comments=notes)


@dataclass
class ExportSummary:
    """How many games were written and which were left out (with why)."""

    written: int = 0
    skipped: list[str] = field(default_factory=list)


def export_pgn(record, out: TextIO, tournament: str | None = None, engine: str | None = None) -> ExportSummary:
    """Write every two-player game as PGN (games of more players are skipped and listed).  Chess games
    carry the analysis of ``engine`` where it analysed them (default: each game's first engine, as
    ``evaluations.pick_engine``)."""
    check_tournament(record, tournament)
    if engine is not None:
        engine = resolve_engine([e["engine"] for e in engines(record)], engine, "any game of this record")
    players = player_rows(record)
    events = _tournament_names(record)
    summary = ExportSummary()
    for row in record.games(tournament):
        if len(row["players"]) != 2:
            summary.skipped.append(f"{row['id']}: {len(row['players'])} players (PGN holds two-player games)")
            continue
        analysis = None
        if is_chess(row["game"]):
            try:
                analysis = analysis_by_ply(record, row["id"], pick_engine(record, row["id"], engine))
            except PlygroundError:
                analysis = None     # this game was not analysed by the engine asked for
        out.write(game_to_pgn(row, record.moves(row["id"]), players, events.get(row["tournament"], "?"), analysis))
        summary.written += 1
    return summary
