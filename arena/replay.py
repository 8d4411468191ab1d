"""Replay a recorded game: the board after every ply with the mover's statistics.

The state is rebuilt by playing the recorded actions (opening plies included) through
``games.make(game name)``, so what is shown is what the rules give, not a stored picture; an
action the rules refuse is an error naming the ply.  Each ply shows the mover's Decision: value,
depth, nodes or simulations, principal variation and top moves (in the game's notation), think
time, LLM usage and any fallback taken.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from plyground.games.errors import PlygroundError

__all__ = ["Frame", "Replay", "game_row", "initial_state", "replay_moves", "load_replay", "replay_game",
           "describe_decision", "run_interactive", "ReplayError", "board_text"]

_TOP = 5


class ReplayError(PlygroundError):
    """A game that cannot be replayed (unknown id, or recorded moves the rules refuse)."""


@dataclass
class Frame:
    """The position after ``ply`` plies (0: the start) and the move that led to it."""

    ply: int
    board: str
    move: dict | None = None
    mover: str = ""
    lines: list[str] = field(default_factory=list)


@dataclass
class Replay:
    """A replayed game: its games row, the player names by seat, one frame per ply and a footer."""

    row: dict
    names: list[str]
    frames: list[Frame]
    footer: str
    final_returns: list[float] | None = None

    @property
    def last(self) -> int:
        return len(self.frames) - 1

    def header(self) -> str:
        seats = ", ".join(f"seat {i}: {n}" for i, n in enumerate(self.names))
        return f"game {self.row['id']} ({self.row['game']}) - {seats}"

    def render(self, i: int) -> str:
        """The text of frame ``i``: a heading, the mover's statistics and the board."""
        f = self.frames[i]
        if f.move is None:
            head = f"ply 0/{self.last}: start"
        else:
            m = f.move
            tt = m.get("think_time")
            took = f" in {tt:.3f}s" if isinstance(tt, (int, float)) else ""
            if m.get("action") is None or m["action"] < 0:
                head = f"ply {f.ply}/{self.last}: {f.mover} made no move{took}"
            else:
                head = f"ply {f.ply}/{self.last}: {f.mover} played {m.get('text') or m['action']} " \
                       f"[action {m['action']}]{took}"
        body = "".join(f"\n  {ln}" for ln in f.lines)
        tail = f"\n{self.footer}" if i == self.last else ""
        return f"{head}{body}\n{f.board}{tail}"


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:+.3f}" if -1.0 <= v <= 1.0 else f"{v:.4g}"
    return str(v)


_FEN = re.compile(r"([1-8pnbrqkPNBRQK]{1,8}/){7}[1-8pnbrqkPNBRQK]{1,8} [wb] .*")


def board_text(state) -> str:
    """``str(state)``, with a diagram above it when that is a bare chess FEN."""
    text = str(state).rstrip("\n")
    if not _FEN.fullmatch(text):
        return text
    ranks = ["".join("." * int(ch) if ch.isdigit() else ch for ch in rank) for rank in text.split()[0].split("/")]
    return "\n".join(f"{8 - i} {' '.join(r)}" for i, r in enumerate(ranks)) + "\n  a b c d e f g h\n" + text


def _text(state, action: int) -> str:
    try:
        return state.action_to_string(int(action))
    except Exception:  # noqa: BLE001 - a stale or foreign action number: show the number
        return str(action)


def _pv_text(state, pv: list) -> str:
    """The principal variation in the game's notation, as far as it stays legal."""
    s = state.clone()
    out = []
    for a in pv:
        a = int(a)
        if s.is_terminal() or a not in s.legal_actions():
            out.append(f"({a}?)")
            break
        out.append(_text(s, a))
        s.apply_action(a)
    return " ".join(out)


def _scalars(d: dict) -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)):
            out.append(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}")
        elif isinstance(v, str) and v:
            out.append(f"{k} {v!r:.60}")
    return out


def _llm_lines(llm: dict) -> list[str]:
    """LLM usage in a few lines: scalar fields, and per list of calls their count and numeric totals."""
    head = _scalars(llm)
    lines = []
    for k, v in llm.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            totals: dict[str, float] = {}
            for x in v:
                for kk, vv in x.items():
                    if isinstance(vv, (int, float)) and not isinstance(vv, bool):
                        totals[kk] = totals.get(kk, 0) + vv
            lines.append(f"llm {k}: {len(v)}" + "".join(f", {kk} {_scalars({kk: tv})[0].split(' ', 1)[1]}"
                                                        for kk, tv in totals.items()))
            last = [t for t in _scalars(v[-1]) if "'" in t]
            if last:
                lines.append(f"llm last {k[:-1] if k.endswith('s') else k}: " + ", ".join(last))
        elif isinstance(v, dict) and v:
            lines.append(f"llm {k}: " + ", ".join(_scalars(v)))
    return (["llm: " + ", ".join(head)] if head else []) + lines


def describe_decision(decision: dict | None, state) -> list[str]:
    """Lines describing a recorded Decision, with moves in ``state``'s notation (the state
    before the move)."""
    d = decision or {}
    lines: list[str] = []
    if d.get("opening"):
        lines.append("opening ply (applied before the agents play)")
    if d.get("source") == "pgn":
        lines.append("imported from PGN" + (f"; NAGs {d['nags']}" if d.get("nags") else ""))
        if d.get("comment"):
            lines.append(f"comment: {d['comment']}")
    if d.get("error"):
        err = [ln for ln in str(d["error"]).strip().splitlines() if ln.strip()]
        lines.append(f"error: {err[-1].strip() if err else d['error']}")
    search = d.get("search") or {}
    stats = []
    value = d.get("value", search.get("value"))
    if value is not None:
        stats.append(f"value {_fmt(value)}")
    if search.get("exact"):
        stats.append("exact" + (f" (score {search['score']})" if search.get("score") is not None else ""))
    if search.get("depth"):
        stats.append(f"depth {search['depth']}")
    if search.get("nodes"):
        engine = str(search.get("engine", ""))
        stats.append(f"{'sims' if 'mcts' in engine else 'nodes'} {search['nodes']}")
    if search.get("engine"):
        stats.append(f"engine {search['engine']}")
    if search.get("seconds"):
        stats.append(f"search {search['seconds']:.3f}s")
    if stats:
        lines.append(", ".join(stats))
    if search.get("pv"):
        lines.append(f"pv: {_pv_text(state, search['pv'])}")
    visits = {int(k): int(v) for k, v in (search.get("visits") or {}).items()}
    values = {int(k): float(v) for k, v in (search.get("action_values") or {}).items()}
    if visits:
        order = sorted(visits, key=lambda a: (-visits[a], a))[:_TOP]
        lines.append("top: " + ", ".join(
            f"{_text(state, a)} {visits[a]}v" + (f" {values[a]:+.2f}" if a in values else "") for a in order))
    elif values:
        order = sorted(values, key=lambda a: (-values[a], a))[:_TOP]
        lines.append("top: " + ", ".join(f"{_text(state, a)} {values[a]:+.3f}" for a in order))
    llm = d.get("llm") or {}
    if llm:
        lines.extend(_llm_lines(llm))
    if d.get("fallback"):
        lines.append(f"fallback: {d['fallback']}")
    info = {k: v for k, v in (d.get("info") or {}).items() if isinstance(v, (int, float, str, bool))}
    if info:
        lines.append("info: " + ", ".join(f"{k} {_fmt(v)}" for k, v in info.items()))
    return lines


def _unknown_id(record, game_id: str) -> ReplayError:
    ids = [r[0] for r in record.db.conn.execute("SELECT id FROM games ORDER BY ended DESC, id")]
    if not ids:
        return ReplayError(f"unknown game {game_id!r}: the record holds no games")
    shown = difflib.get_close_matches(game_id, ids, n=5, cutoff=0.6) or ids[:5]
    return ReplayError(f"unknown game {game_id!r}; known ids include: {', '.join(shown)} "
                       f"({len(ids)} games in all; 'plyground arena export --db FILE --format jsonl' lists them)")


def game_row(record, game_id: str) -> dict:
    """The games row of ``game_id`` (``players``, ``returns``, ``opening`` decoded); an unknown id is a
    ``ReplayError`` suggesting the closest ids."""
    rows = list(record.db.query("SELECT * FROM games WHERE id = ?", [game_id]))
    if not rows:
        raise _unknown_id(record, game_id)
    row = rows[0]
    for c in ("players", "returns", "opening"):
        if isinstance(row.get(c), str):
            row[c] = json.loads(row[c])
    return row


def initial_state(row: dict):
    """The initial state of the game of a games ``row``; a game this install cannot make is a ``ReplayError``."""
    from plyground import games
    try:
        return games.make(row["game"]).new_initial_state()
    except PlygroundError as e:
        raise ReplayError(f"game {row['id']} cannot be replayed: {e}") from None


def replay_moves(row: dict, state, moves: list[dict]) -> Iterator[tuple[dict, Any]]:
    """Play the recorded ``moves`` of the game of ``row`` on ``state`` (changed in place), yielding each
    move with a copy of the state before it; on resuming, ``state`` is the state after it (a move
    without an action leaves it as it was).  An action the rules refuse is a ``ReplayError`` naming the ply."""
    for m in moves:
        before = state.clone()
        action = m.get("action")
        if action is not None and action >= 0:
            try:
                state.apply_action(int(action))
            except PlygroundError as e:  # IllegalActionError, or a PettingZoo referee disagreeing
                raise ReplayError(f"game {row['id']}: ply {m['ply']} action {action} ({m.get('text')!r}) is "
                                  f"illegal when replayed through {row['game']}: {e}") from None
        yield m, before


def load_replay(record, game_id: str) -> Replay:
    """Replay game ``game_id`` of ``record`` (a ``Record``) through its game's rules."""
    row = game_row(record, game_id)
    names_by_id = record.player_names()
    names = [names_by_id.get(pid, pid) for pid in row["players"]]
    moves = record.moves(game_id)
    state = initial_state(row)
    frames = [Frame(0, board_text(state))]
    for m, before in replay_moves(row, state, moves):
        seat = m.get("player")
        mover = "chance" if seat is not None and seat < 0 else \
            f"seat {seat} ({names[seat] if seat is not None and 0 <= seat < len(names) else '?'})"
        action = m.get("action")
        lines = describe_decision(m.get("decision"), before)
        if action is not None and action >= 0 and m.get("text"):
            shown = _text(before, action)
            if shown != m["text"]:
                lines.append(f"note: recorded as {m['text']!r}, the rules write {shown!r}")
        frames.append(Frame(len(frames), board_text(state), m, mover, lines))
    final = None
    ret = row.get("returns")
    if state.is_terminal():
        final = [float(r) for r in state.returns()]
        agree = "" if ret is None or [float(r) for r in ret] == final else f"; the record says {ret} (MISMATCH)"
        footer = f"end: {row.get('termination')}, returns {final}{agree}"
    else:
        footer = f"end: {row.get('termination')}, returns {ret}"
        if row.get("detail"):
            footer += f" - {row['detail']}"
        if not moves:
            footer += " (no moves recorded)"
    return Replay(row, names, frames, footer, final)


def replay_game(db: str | Path, game_id: str) -> Replay:
    """Open the record at ``db`` (which must exist) and replay ``game_id``."""
    from plyground.arena.export import open_record
    record = open_record(db)
    try:
        return load_replay(record, game_id)
    finally:
        record.close()


HELP = "n/Enter next, p previous, g N go to ply N, q quit"


def run_interactive(replay: Replay, start: int = 0, read: Callable[[str], str] = input,
                    write: Callable[[str], None] = print) -> None:
    """Step through ``replay`` from ply ``start``; commands as in ``HELP``; end of input quits."""
    i = max(0, min(start, replay.last))
    write(f"{replay.header()}\n({HELP})")
    write(replay.render(i))
    while True:
        try:
            cmd = read(f"ply {i}> ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            write("")
            return
        if cmd in ("q", "quit", "exit"):
            return
        if cmd in ("", "n", "next"):
            if i == replay.last:
                write(f"(ply {i} is the last; {HELP})")
                continue
            i += 1
        elif cmd in ("p", "prev", "previous"):
            if i == 0:
                write(f"(ply 0 is the start; {HELP})")
                continue
            i -= 1
        elif cmd.startswith("g"):
            arg = cmd[1:].strip()
            if not arg.isdigit() or int(arg) > replay.last:
                write(f"(go to which ply? give a number from 0 to {replay.last}, e.g. 'g 5')")
                continue
            i = int(arg)
        else:
            write(f"(unknown command {cmd!r}; {HELP})")
            continue
        write(replay.render(i))
