"""The arena's record: one SQLite file (through sqlite-utils, WAL) holding players, tournaments,
finished games and their moves, and the re-analysis of those moves (``analysis``: one row per game,
ply and engine configuration; values from the mover's view in -1..1, ``pv`` and ``detail`` JSON).  The schema is the contract in docs (notes/record_schema.md).

A finished game is written in ONE transaction together with all its moves, so a killed
tournament never leaves half a game behind: a game is either fully recorded or absent.  The
runner groups several finished games into one transaction (``Record.write_games``); a game is
never split across transactions.

>>> rec = Record(":memory:")
>>> pid = rec.upsert_player("random", "random", {"name": "random", "seed": None})
>>> len(pid)
16
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sqlite3
from itertools import chain
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import sqlite_utils

from plyground.agents.decision import jsonable
from plyground.games.errors import PlygroundError

GAME_COLUMNS = ("id", "tournament", "round", "pair", "game", "players", "returns", "termination", "detail",
                "rated", "seed", "opening", "plies", "started", "ended")
MOVE_COLUMNS = ("game", "ply", "player", "action", "text", "think_time", "decision")
TERMINATIONS = ("normal", "illegal_move", "agent_error", "timeout", "max_plies", "aborted", "pgn")
_GAME_JSON = ("players", "returns", "opening")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS players (
    id TEXT PRIMARY KEY, name TEXT, spec TEXT, config TEXT, config_hash TEXT, version TEXT, created TEXT);
CREATE TABLE IF NOT EXISTS tournaments (
    id TEXT PRIMARY KEY, name TEXT, game TEXT, format TEXT, seed INTEGER, config TEXT, created TEXT);
CREATE TABLE IF NOT EXISTS games (
    id TEXT PRIMARY KEY, tournament TEXT REFERENCES tournaments(id), round INTEGER, pair INTEGER, game TEXT,
    players TEXT, returns TEXT, termination TEXT, detail TEXT, rated INTEGER, seed INTEGER, opening TEXT,
    plies INTEGER, started TEXT, ended TEXT);
CREATE INDEX IF NOT EXISTS games_tournament ON games(tournament);
CREATE TABLE IF NOT EXISTS moves (
    game TEXT REFERENCES games(id), ply INTEGER, player INTEGER, action INTEGER, text TEXT, think_time REAL,
    decision TEXT, PRIMARY KEY (game, ply));
CREATE TABLE IF NOT EXISTS analysis (
    game TEXT REFERENCES games(id), ply INTEGER, engine TEXT, player INTEGER, action INTEGER, best_action INTEGER,
    value_before REAL, value_after REAL, exact INTEGER, label TEXT, pv TEXT, detail TEXT,
    PRIMARY KEY (game, ply, engine));
"""


class RecordError(PlygroundError):
    """A write the record refuses (a game recorded twice, a row missing columns, a bad termination)."""


def canonical_json(obj: Any) -> str:
    """The JSON text hashed for ids: sorted keys, no spaces, non-JSON values as strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Mapping[str, Any]) -> str:
    """First 16 hex digits of sha256 of the canonical JSON of ``config`` (players' and tournaments' id)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def now_iso(ts: float | None = None) -> str:
    """An ISO-8601 UTC timestamp (of ``ts`` seconds since the epoch, default now)."""
    t = _dt.datetime.now(_dt.timezone.utc) if ts is None else _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    return t.isoformat(timespec="milliseconds")


def dumps_json(value: Any) -> str:
    """JSON text for a JSON column (text passes through; numpy values become plain numbers)."""
    return value if isinstance(value, str) else _ENCODER.encode(value)


# the same text as Decision.dumps (json.dumps(value, sort_keys=True, default=jsonable)), without building an encoder per call
_ENCODER = json.JSONEncoder(sort_keys=True, default=jsonable)


_TERMINATION_SET = frozenset(TERMINATIONS)


def _insert_sql(table: str, columns: Sequence[str], rows: int) -> str:
    one = f"({', '.join('?' * len(columns))})"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)}"


def _insert_rows(conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 per: int) -> None:
    """INSERT ``rows`` (tuples of len(columns) values; checked by the caller) with ``per`` rows per
    statement: about half the cost of one statement per row, all of it in C."""
    full = len(rows) // per * per
    if full:
        width = per * len(columns)
        flat = list(chain.from_iterable(rows[:full] if full < len(rows) else rows))
        conn.executemany(_insert_sql(table, columns, per), [flat[k:k + width] for k in range(0, len(flat), width)])
    if full < len(rows):
        conn.executemany(_insert_sql(table, columns, 1), rows[full:])


def game_values(row: Mapping[str, Any], n_moves: int = 0) -> tuple:
    """A games row (dict) checked and turned into the compact tuple ``write_games`` takes (GAME_COLUMNS
    order, JSON columns as text, ``rated`` and ``plies`` defaulted)."""
    missing = [c for c in ("id", "game", "players", "returns", "termination") if row.get(c) is None]
    if missing:
        raise RecordError(f"game row {row.get('id')!r} lacks required columns {missing}")
    unknown = sorted(set(row) - set(GAME_COLUMNS))
    if unknown:
        raise RecordError(f"game row {row['id']!r} has unknown columns {unknown}; allowed: {list(GAME_COLUMNS)}")
    if row["termination"] not in _TERMINATION_SET:
        raise RecordError(f"game {row['id']!r}: termination {row['termination']!r} is not one of {list(TERMINATIONS)}")
    values = dict(row)
    for c in _GAME_JSON:
        if values.get(c) is not None:
            values[c] = dumps_json(values[c])
    if values.get("rated") is None:
        values["rated"] = 0 if row["termination"] == "aborted" else 1
    if values.get("plies") is None:
        values["plies"] = n_moves
    return tuple(values.get(c) for c in GAME_COLUMNS)


def move_values(game_id: str, moves: Iterable[Any]) -> list[tuple]:
    """Moves (dicts with the moves columns, or ``(ply, player, action, text, think_time, decision)``
    tuples) as the compact tuples ``write_games`` takes, in MOVE_COLUMNS order with the game id first."""
    return [(game_id, m[0], m[1], m[2], m[3], m[4], m[5] if m[5] is None or type(m[5]) is str
             else dumps_json(m[5])) if type(m) is tuple
            else (game_id, int(m["ply"]), m.get("player"), m.get("action"), m.get("text"), m.get("think_time"),
                  None if m.get("decision") is None else dumps_json(m["decision"]))
            for m in moves]


class Record:
    """An arena record file: opens or creates it, switches to WAL and ensures the schema."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = sqlite_utils.Database(self.path)
        self.db.conn.execute("PRAGMA busy_timeout=30000")
        if self.path != ":memory:":
            self.db.enable_wal()
            # WAL + synchronous=NORMAL: a committed game survives a killed process (only an OS crash
            # could lose the last commits), and a commit costs no fsync.
            self.db.conn.execute("PRAGMA synchronous=NORMAL")
        self.db.conn.executescript(_SCHEMA)

    # -- writing -------------------------------------------------------------------------------
    def upsert_player(self, name: str, spec: str, config: dict) -> str:
        """Record a player (id = config hash); a known player keeps its first version and
        creation time, its display name follows the latest call.  Returns the player id."""
        from plyground import __version__
        pid = config_hash(config)
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO players (id, name, spec, config, config_hash, version, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name",
                (pid, name, spec, canonical_json(config), pid, __version__, now_iso()))
        return pid

    def upsert_tournament(self, id: str, name: str, game: str, format: str, seed: int | None,
                          config: dict) -> None:
        """Record a tournament once; calling again with the same id changes nothing but the name."""
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO tournaments (id, name, game, format, seed, config, created) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name",
                (id, name, game, format, seed, canonical_json(config), now_iso()))

    def insert_game(self, row: dict, moves: list[dict], if_exists: str = "error") -> None:
        """Write one finished game and its moves in one transaction.

        ``row`` has the games columns (``players``, ``returns``, ``opening`` as lists or JSON text;
        missing optional columns become NULL, ``rated`` defaults to 1 unless aborted); each move has
        the moves columns (``game`` may be omitted; ``decision`` a dict or JSON text), or is a tuple
        ``(ply, player, action, text, think_time, decision)`` (the runner's compact form).
        ``if_exists``: "error" (default, raises RecordError), "ignore" (keep the old game) or "replace".
        """
        values = game_values(row, len(moves))
        self.write_games([(values, move_values(values[0], moves))], if_exists=if_exists)

    def write_games(self, games: Sequence[tuple[Sequence[Any], Sequence[Sequence[Any]]]],
                    if_exists: str = "error") -> list[str]:
        """Write many finished games in ONE transaction (the runner's group commit); returns the ids written.

        Each item is ``(row, moves)`` in the compact form: ``row`` a tuple of the games columns in
        ``GAME_COLUMNS`` order with the JSON columns already text (``game_values`` makes one from a
        dict), ``moves`` tuples in ``MOVE_COLUMNS`` order, game id first (``move_values``).  A game
        and its moves are never split: the whole batch commits, or nothing does.  ``if_exists`` as in
        ``insert_game``: "error" refuses the whole batch if any id is already recorded, "ignore" skips
        the recorded ones (and their moves), "replace" overwrites them.
        """
        if if_exists not in ("error", "ignore", "replace"):
            raise RecordError(f"if_exists={if_exists!r} is not allowed; choose error, ignore or replace")
        rows, n = [], len(GAME_COLUMNS)
        for row, _ in games:
            if len(row) != n:
                raise RecordError(f"game row {row[0] if row else None!r} has {len(row)} values; "
                                  f"expected {n} ({', '.join(GAME_COLUMNS)})")
            if row[7] not in _TERMINATION_SET:
                raise RecordError(f"game {row[0]!r}: termination {row[7]!r} is not one of {list(TERMINATIONS)}")
            rows.append(row)
        if not rows:
            return []
        ids = [r[0] for r in rows]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise RecordError(f"games {dup} appear twice in one batch")
        conn = self.db.conn
        try:
            with conn:
                if not conn.in_transaction:  # take the write lock first: the id check and the inserts are atomic
                    conn.execute("BEGIN IMMEDIATE")
                have = self._existing(ids)
                if have:
                    if if_exists == "error":
                        raise RecordError(f"games {sorted(have)} are already recorded (use if_exists)")
                    if if_exists == "replace":
                        conn.executemany("DELETE FROM moves WHERE game = ?", [(i,) for i in have])
                        conn.executemany("DELETE FROM games WHERE id = ?", [(i,) for i in have])
                    else:
                        games = [g for g in games if g[0][0] not in have]
                        rows = [g[0] for g in games]
                _insert_rows(conn, "games", GAME_COLUMNS, rows, 16)
                moves = games[0][1] if len(games) == 1 else list(chain.from_iterable(g[1] for g in games))
                if any(map(len(MOVE_COLUMNS).__ne__, map(len, moves))):
                    bad = next(m for m in moves if len(m) != len(MOVE_COLUMNS))
                    raise RecordError(f"move {bad!r} has {len(bad)} values; expected {len(MOVE_COLUMNS)} "
                                      f"({', '.join(MOVE_COLUMNS)})")
                _insert_rows(conn, "moves", MOVE_COLUMNS, moves, 32)
        except sqlite3.IntegrityError as e:
            which = ids[0] if len(ids) == 1 else f"of the batch {ids[0]} .. {ids[-1]}"
            raise RecordError(f"game {which!r} cannot be recorded: {e} (already recorded? use if_exists)") from None
        return [r[0] for r in rows]

    def _existing(self, ids: list[str]) -> set[str]:
        out: set[str] = set()
        for k in range(0, len(ids), 500):
            part = ids[k:k + 500]
            out.update(r[0] for r in self.db.conn.execute(
                f"SELECT id FROM games WHERE id IN ({', '.join('?' * len(part))})", part))
        return out

    # -- reading -------------------------------------------------------------------------------
    def finished_ids(self, tournament: str) -> set[str]:
        """Ids of the games of ``tournament`` already recorded."""
        return {r[0] for r in self.db.conn.execute("SELECT id FROM games WHERE tournament = ?", (tournament,))}

    def games(self, tournament: str | None = None, rated_only: bool = False) -> list[dict]:
        """Recorded games (JSON columns decoded), in the order they ended (then by id)."""
        where, args = [], []
        if tournament is not None:
            where.append("tournament = ?")
            args.append(tournament)
        if rated_only:
            where.append("rated = 1")
        sql = "SELECT * FROM games" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY ended, id"
        out = []
        for r in self.db.query(sql, args):
            for c in _GAME_JSON:
                if r.get(c) is not None:
                    r[c] = json.loads(r[c])
            out.append(r)
        return out

    def moves(self, game_id: str) -> list[dict]:
        """The moves of one game by ply (decision decoded)."""
        out = []
        for r in self.db.query("SELECT * FROM moves WHERE game = ? ORDER BY ply", [game_id]):
            if r.get("decision") is not None:
                r["decision"] = json.loads(r["decision"])
            out.append(r)
        return out

    def player_names(self) -> dict[str, str]:
        """Player id -> display name."""
        return {r[0]: r[1] for r in self.db.conn.execute("SELECT id, name FROM players")}

    def tournaments(self) -> list[dict]:
        """Every tournament (config decoded), oldest first."""
        out = []
        for r in self.db.query("SELECT * FROM tournaments ORDER BY created, id"):
            r["config"] = json.loads(r["config"]) if r.get("config") else None
            out.append(r)
        return out

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    def __enter__(self) -> "Record":
        return self

    def __exit__(self, *exc: Iterable) -> None:
        self.close()
