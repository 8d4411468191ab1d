"""Reading the record's ``analysis`` table for display and export: which engine's rows to show,
the rows of one game by ply, and the conversion of a value in -1..1 (the mover's view) to a chess
evaluation in pawns (win chances are ``arena.labels``'s).

>>> pawns(0.0), round(pawns(0.5), 2), pawns(-0.5) == -pawns(0.5)
(0.0, 2.98, True)
"""

from __future__ import annotations

import json
import math
from typing import Any

from plyground.games.errors import PlygroundError

__all__ = ["AnalysisError", "is_opening", "pawns", "engines", "resolve_engine", "pick_engine", "analysis_by_ply",
           "all_analysis"]

# Lichess maps centipawns to a win chance with W = 1 / (1 + exp(-K * cp)); on the -1..1 scale that is
# v = 2W - 1 = tanh(K * cp / 2), so the pawn-like number of a value is its inverse, 2 atanh(v) / K / 100.
_LICHESS_K = 0.00368208
_CLIP = 0.999   # |v| -> at most about 20.6 pawns; a proven win is written as a mate where known


class AnalysisError(PlygroundError):
    """A bad analysis engine or budget, a record or game that cannot be analysed, an analysis the
    record does not hold."""


def is_opening(decision: Any) -> bool:
    """Whether a recorded move's decision (a dict or its JSON text) marks a ply of the tournament's
    opening, applied before the agents play: such a move is nobody's choice, so its label is shown
    but never charged to an agent (report, page marks, index counts, PGN NAGs).

    >>> is_opening({"opening": True}), is_opening('{"opening": true}'), is_opening(None), is_opening("x")
    (True, True, False, False)
    """
    if isinstance(decision, str):
        try:
            decision = json.loads(decision)
        except ValueError:
            return False
    return isinstance(decision, dict) and bool(decision.get("opening"))


def pawns(value: float) -> float:
    """A pawn-like evaluation of a value in -1..1 (same view): the inverse of lichess's win-chance
    curve, so a value maps to the centipawns lichess would give the same win chance; clipped at
    |value| = 0.999."""
    v = max(-_CLIP, min(_CLIP, float(value)))
    return 2.0 * math.atanh(v) / _LICHESS_K / 100.0


def engines(record, game_id: str | None = None) -> list[dict[str, Any]]:
    """The analysis engines of the record (of one game if given), each ``{"engine", "rows", "exact"}``,
    in the default order: engines with proven rows (or named solver) first, then by row count, then name."""
    where, args = ("WHERE game = ?", [game_id]) if game_id is not None else ("", [])
    try:
        rows = record.db.conn.execute(
            f"SELECT engine, COUNT(*), COALESCE(SUM(exact), 0) FROM analysis {where} GROUP BY engine", args).fetchall()
    except Exception:  # noqa: BLE001 - a record written before the analysis table existed holds none
        return []
    out = [{"engine": e, "rows": int(n), "exact": int(x)} for e, n, x in rows]
    out.sort(key=lambda r: (not (r["exact"] > 0 or "solver" in str(r["engine"]).lower()), -r["rows"], str(r["engine"])))
    return out


def resolve_engine(names: list[str], engine: str, what: str) -> str:
    """The one of ``names`` (recorded engine configurations) that ``engine`` means: itself, a bare
    engine name's only configuration (``mcts`` for ``mcts:sims=100``), or the canonical spelling of a
    configuration (``solver:time=1.0``); else an error saying that ``engine`` has not analysed ``what``.

    >>> resolve_engine(["mcts:sims=100", "solver:time=1"], "mcts", "these games")
    'mcts:sims=100'
    """
    if engine in names:
        return engine
    same = [n for n in names if n.split(":")[0] == engine]
    if len(same) > 1:
        raise AnalysisError(f"engine {engine!r} analysed {what} under several budgets; choose one: "
                            + ", ".join(same))
    if same:
        return same[0]
    if ":" in engine:
        from plyground.arena.analysis import parse_engine
        try:
            canonical = parse_engine(engine).canonical
        except AnalysisError:
            canonical = None
        if canonical in names:
            return canonical
    shown = ", ".join(names) or "none (run 'plyground analyze games')"
    raise AnalysisError(f"engine {engine!r} has not analysed {what}; analysed by: {shown}")


def pick_engine(record, game_id: str, engine: str | None = None) -> str | None:
    """The engine whose analysis of ``game_id`` to show: ``engine`` if given (as ``resolve_engine``;
    an error naming the game's engines if it did not analyse it), else the first of ``engines(record,
    game_id)``; None if the game has no analysis."""
    names = [r["engine"] for r in engines(record, game_id)]
    if engine is not None:
        return resolve_engine(names, engine, f"game {game_id}")
    return names[0] if names else None


def _decode(row: dict) -> dict:
    for k in ("pv", "detail"):
        if isinstance(row.get(k), str):
            try:
                row[k] = json.loads(row[k])
            except ValueError:
                pass  # shown as the text it is
    if row.get("exact") is not None:
        row["exact"] = bool(row["exact"])
    return row


def analysis_by_ply(record, game_id: str, engine: str | None) -> dict[int, dict]:
    """``engine``'s rows for ``game_id`` by ply (pv and detail decoded); empty if ``engine`` is None."""
    if engine is None:
        return {}
    rows = record.db.query("SELECT * FROM analysis WHERE game = ? AND engine = ? ORDER BY ply", [game_id, engine])
    return {int(r["ply"]): _decode(r) for r in rows}


def all_analysis(record, game_id: str) -> list[dict]:
    """Every analysis row of ``game_id`` (all engines), by engine then ply, pv and detail decoded."""
    try:
        rows = list(record.db.query("SELECT * FROM analysis WHERE game = ? ORDER BY engine, ply", [game_id]))
    except Exception:  # noqa: BLE001 - no analysis table: nothing analysed
        return []
    return [_decode(r) for r in rows]
