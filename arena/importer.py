"""PGN results into the record as rated games, so matches played elsewhere can be rated.

Each game with a decisive or drawn result (``1-0``, ``0-1``, ``1/2-1/2``) becomes a rated
two-player game of the tournament ``pgn-<first 16 hex of the file's sha256>`` (format
``pgn-import``); its players are ``pgn:<Name>``.  Unfinished games (``*``) and games without two
distinct player names are skipped with a notice.  Game ids are fixed by the file and the game's
position in it, so importing the same file again adds nothing.

Chess games from the standard start (no ``FEN``/``SetUp`` tag, no ``Variant`` other than standard)
whose moves are all legal are also recorded move by move (so ``plyground replay`` shows them);
otherwise only the result is kept and the game's ``detail`` says why.  A ``Game`` tag (written by
``arena export``) names a non-chess game.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from plyground.arena.pgn import PGNGame, load_pgn

__all__ = ["import_pgn", "ImportSummary", "pgn_tournament_id", "san_to_actions"]

_LAN = re.compile(r"[KQRBN]?([a-h][1-8])[-x]?([a-h][1-8])(=?[QRBNqrbn])?")
_SCORES = {"1-0": (1.0, -1.0), "0-1": (-1.0, 1.0), "1/2-1/2": (0.0, 0.0)}


@dataclass
class ImportSummary:
    """What an import did: the tournament, games added, games already there, notices of skips."""

    tournament: str
    added: int = 0
    already: int = 0
    skipped: int = 0
    notices: list[str] = field(default_factory=list)


def pgn_tournament_id(data: bytes) -> str:
    """``pgn-`` + the first 16 hex digits of the sha256 of the file's bytes."""
    return "pgn-" + hashlib.sha256(data).hexdigest()[:16]


def _normal_san(text: str) -> str:
    t = text.rstrip("+#").replace("0-0-0", "O-O-O").replace("0-0", "O-O")
    if len(t) >= 3 and t[-1] in "QRBNqrbn" and t[-2] in "18" and "=" not in t and t[0] in "abcdefgh":
        t = t[:-1] + "=" + t[-1].upper()  # e8Q -> e8=Q
    return t


def san_to_actions(sans: list[str]) -> tuple[list[tuple[int, int, str]], str | None]:
    """Play SAN (or long algebraic) moves from chess's start through OpenSpiel: a list of
    ``(player, action, SAN as OpenSpiel writes it)`` and None, or the moves up to the first bad
    one and why it is bad."""
    import pyspiel
    state = pyspiel.load_game("chess").new_initial_state()
    out: list[tuple[int, int, str]] = []
    for i, san in enumerate(sans):
        if state.is_terminal():
            return out, f"move {i // 2 + 1}{'.' if i % 2 == 0 else '...'} {san}: the game is already over"
        legal = {}
        board = state.board()
        for a in state.legal_actions():
            text = state.action_to_string(a)
            legal[_normal_san(text)] = (a, text)
            legal.setdefault(pyspiel.chess.action_to_move(a, board).to_lan(), (a, text))
        key = _normal_san(san)
        hit = legal.get(key)
        lan = _LAN.fullmatch(san.rstrip("+#"))
        if hit is None and lan is not None:
            hit = legal.get(lan.group(1) + lan.group(2) + (lan.group(3) or "").lstrip("=").lower())
        if hit is None:
            return out, f"move {i // 2 + 1}{'.' if i % 2 == 0 else '...'} {san} is not legal"
        out.append((state.current_player(), hit[0], hit[1]))
        state.apply_action(hit[0])
    return out, None


def _chess_start(tags: dict[str, str]) -> str | None:
    """Why a chess game cannot be replayed from the standard start, or None."""
    variant = tags.get("Variant", "").strip().lower()
    if variant and variant not in ("standard", "chess"):
        return f"variant {tags['Variant']!r}"
    if "FEN" in tags or tags.get("SetUp", "0").strip() == "1":
        return "it starts from a FEN position"
    return None


def import_pgn(path: str | Path, record, notify: Callable[[str], None] | None = None) -> ImportSummary:
    """Import every finished game of the PGN file at ``path`` into ``record`` (a ``Record``).

    ``notify`` receives each notice (a skipped game, moves not recorded) as it happens."""
    from plyground.arena.export import first_mover_seat
    from plyground.arena.record import now_iso

    p = Path(path)
    data, games = load_pgn(p)
    tid = pgn_tournament_id(data)
    summary = ImportSummary(tournament=tid)

    def notice(msg: str) -> None:
        summary.notices.append(msg)
        if notify is not None:
            notify(msg)

    done = record.finished_ids(tid)
    names = sorted({g.tags.get("Game") or "openspiel:chess" for g in games if g.result in _SCORES})
    record.upsert_tournament(tid, p.name, names[0] if len(names) == 1 else "mixed", "pgn-import", None,
                             {"source": p.name, "sha256": hashlib.sha256(data).hexdigest(), "games": len(games)})
    stamp = now_iso()
    for index, g in enumerate(games, 1):
        gid = f"{tid}-r000-g{index:04d}"
        where = f"game {index} (line {g.line}, {g.white} - {g.black})"
        if g.result not in _SCORES:
            summary.skipped += 1
            notice(f"skipped {where}: result {g.result} is not finished (only 1-0, 0-1, 1/2-1/2 are rated)")
            continue
        white, black = g.tags.get("White", "").strip(), g.tags.get("Black", "").strip()
        if not white or not black or white == "?" or black == "?" or white == black:
            summary.skipped += 1
            notice(f"skipped {where}: it needs two different player names in White and Black")
            continue
        if gid in done:
            summary.already += 1
            continue
        row, moves = _game_row(g, gid, tid, index, p.name, record, stamp, first_mover_seat, notice, where)
        record.insert_game(row, moves, if_exists="ignore")
        summary.added += 1
    return summary


def _game_row(g: PGNGame, gid: str, tid: str, index: int, source: str, record, stamp: str,
              first_mover_seat, notice, where: str) -> tuple[dict, list[dict]]:
    game_name = g.tags.get("Game") or "openspiel:chess"
    moves: list[dict] = []
    why_not = None
    if game_name == "openspiel:chess":
        why_not = _chess_start(g.tags)
        if why_not is None and g.moves:
            played, bad = san_to_actions(g.sans())
            if bad is None:
                for ply, ((player, action, san), pm) in enumerate(zip(played, g.moves)):
                    decision = {"source": "pgn"}
                    if pm.comments:
                        decision["comment"] = " ".join(pm.comments)
                    if pm.nags:
                        decision["nags"] = pm.nags
                    moves.append({"ply": ply, "player": player, "action": action, "text": san,
                                  "think_time": None, "decision": decision})
            else:
                why_not = bad
    elif g.moves:
        why_not = f"moves of {game_name} are not read from PGN"
    if why_not and g.moves:
        notice(f"{where}: result imported, moves not recorded ({why_not})")
    white_seat = first_mover_seat(game_name, moves)
    ids = {}
    for colour in ("White", "Black"):
        name = g.tags[colour].strip()
        ids[colour] = record.upsert_player(name, f"pgn:{name}", {"name": "pgn", "player": name})
    seats = [ids["Black"], ids["White"]] if white_seat == 1 else [ids["White"], ids["Black"]]
    w, b = _SCORES[g.result]
    returns = [b, w] if white_seat == 1 else [w, b]
    try:
        rnd = int(g.tags.get("Round", "").split(".")[0])
    except ValueError:
        rnd = None
    detail = f"{source} game {index} (line {g.line}): {g.white} - {g.black} {g.result}"
    for tag in ("Event", "Date", "Termination"):
        if g.tags.get(tag, "?") not in ("?", "", "????.??.??"):
            detail += f"; {tag} {g.tags[tag]}"
    if why_not and g.moves:
        detail += f"; moves not recorded: {why_not}"
    row = {"id": gid, "tournament": tid, "round": rnd, "pair": None, "game": game_name, "players": seats,
           "returns": returns, "termination": "pgn", "detail": detail, "rated": 1, "seed": None, "opening": [],
           "plies": len(g.moves), "started": stamp, "ended": stamp}
    return row, moves
