"""Boards as SVG markup for the replay page: connect four, tic-tac-toe and chess; other games as
their text board.

The markup is made only from what the rules give (``str(state)``: a grid of ``.xo`` or a FEN, checked
character by character), never from record text, and every attribute value is escaped all the same.
Each cell carries ``data-row``, ``data-col`` and ``data-piece`` (chess: ``data-square`` and
``data-piece``), so a test can read the board back from the page's DOM.  Chess pieces are ``<use>``
references to ``chess_piece_defs()``, which the page includes once.

>>> grid_cells("x..\\n.o.\\n...", (3, 3))
['x..', '.o.', '...']
>>> grid_cells("x..\\n.o.", (3, 3)) is None
True
"""

from __future__ import annotations

import re
from html import escape

__all__ = ["board_view", "grid_cells", "grid_kind", "connect4_svg", "tictactoe_svg", "chess_svg",
           "chess_piece_defs", "changed_cell", "FEN_RE"]

_NS = 'xmlns="http://www.w3.org/2000/svg"'
FEN_RE = re.compile(r"((?:[1-8pnbrqkPNBRQK]{1,8}/){7}[1-8pnbrqkPNBRQK]{1,8}) ([wb]) .*")
_SHAPES = {"connect4": (6, 7), "tictactoe": (3, 3)}


def grid_kind(game_name: str) -> str | None:
    """``connect4`` or ``tictactoe`` for the games of those rules (native, OpenSpiel, PettingZoo)."""
    n = game_name.lower()
    if "connect4" in n or "connect_four" in n:
        return "connect4"
    if "tictactoe" in n or "tic_tac_toe" in n:
        return "tictactoe"
    return None


def grid_cells(text: str, shape: tuple[int, int]) -> list[str] | None:
    """The rows of a ``.xo`` board text of ``shape`` (rows, columns), top row first; None if the text
    is not such a board."""
    rows = [r for r in text.strip("\n").split("\n")]
    if len(rows) != shape[0] or any(len(r) != shape[1] or set(r) - set(".xo") for r in rows):
        return None
    return rows


def changed_cell(before: list[str] | None, after: list[str]) -> tuple[int, int] | None:
    """The one cell that went from empty to a stone between two grids, if exactly one did."""
    if before is None:
        return None
    diff = [(r, c) for r, (a, b) in enumerate(zip(before, after)) for c, (x, y) in enumerate(zip(a, b)) if x != y]
    return diff[0] if len(diff) == 1 else None


def _attr(v) -> str:
    return escape(str(v), quote=True)


def connect4_svg(rows: list[str], last: tuple[int, int] | None = None) -> str:
    """A connect-four board: a blue frame, x red (the first player), o yellow; the last move ringed."""
    n_r, n_c = len(rows), len(rows[0])
    s = 60
    out = [f'<svg {_NS} class="board connect4" viewBox="0 0 {n_c * s} {n_r * s}" data-rows="{n_r}" '
           f'data-cols="{n_c}" role="img" aria-label="connect four board">',
           f'<rect width="{n_c * s}" height="{n_r * s}" rx="10" fill="#1f5fbf"/>']
    fill = {".": "#f4f6fb", "x": "#d7263d", "o": "#f2c14e"}
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            ring = ' stroke="#111" stroke-width="4"' if last == (r, c) else ""
            out.append(f'<circle class="cell" data-row="{r}" data-col="{c}" data-piece="{_attr(ch)}" '
                       f'cx="{c * s + s // 2}" cy="{r * s + s // 2}" r="{s * 0.4:.0f}" fill="{fill[ch]}"{ring}/>')
    for c in range(n_c):
        out.append(f'<text x="{c * s + s // 2}" y="{n_r * s - 3}" font-size="10" text-anchor="middle" '
                   f'fill="#cfe0ff">{c + 1}</text>')
    out.append("</svg>")
    return "".join(out)


def tictactoe_svg(rows: list[str], last: tuple[int, int] | None = None) -> str:
    """A tic-tac-toe board: grid lines, x as a cross, o as a ring; the last move's square shaded."""
    s = 100
    n = len(rows)
    out = [f'<svg {_NS} class="board tictactoe" viewBox="0 0 {n * s} {n * s}" data-rows="{n}" data-cols="{n}" '
           f'role="img" aria-label="tic-tac-toe board"><rect width="{n * s}" height="{n * s}" fill="#fbfaf7"/>']
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            x, y = c * s, r * s
            shade = "#fff3c4" if last == (r, c) else "none"
            out.append(f'<g class="cell" data-row="{r}" data-col="{c}" data-piece="{_attr(ch)}">'
                       f'<rect x="{x}" y="{y}" width="{s}" height="{s}" fill="{shade}"/>')
            if ch == "x":
                out.append(f'<path d="M{x + 22} {y + 22}L{x + 78} {y + 78}M{x + 78} {y + 22}L{x + 22} {y + 78}" '
                           'stroke="#d7263d" stroke-width="10" stroke-linecap="round"/>')
            elif ch == "o":
                out.append(f'<circle cx="{x + 50}" cy="{y + 50}" r="29" fill="none" stroke="#1f5fbf" stroke-width="10"/>')
            out.append("</g>")
    for k in range(1, n):
        out.append(f'<path d="M{k * s} 8V{n * s - 8}M8 {k * s}H{n * s - 8}" stroke="#333" stroke-width="4" '
                   'stroke-linecap="round"/>')
    out.append("</svg>")
    return "".join(out)


_PIECE_NAMES = {"p": "pawn", "n": "knight", "b": "bishop", "r": "rook", "q": "queen", "k": "king"}


def _piece_id(symbol: str) -> str:
    return f"pg-{'white' if symbol.isupper() else 'black'}-{_PIECE_NAMES[symbol.lower()]}"


def chess_piece_defs() -> str:
    """A hidden SVG holding python-chess's piece drawings once, with ids the boards refer to; a
    plain letter for each piece if python-chess is not installed."""
    try:
        from chess.svg import PIECES
    except ImportError:
        PIECES = None
    out = [f'<svg {_NS} width="0" height="0" style="position:absolute" aria-hidden="true"><defs>']
    for sym in "PNBRQKpnbrqk":
        if PIECES is not None and sym in PIECES:
            body = re.sub(r'^<g id="[^"]*"', f'<g id="{_piece_id(sym)}"', PIECES[sym], count=1)
        else:
            colour = ("#fff", "#000") if sym.isupper() else ("#000", "#fff")
            body = (f'<g id="{_piece_id(sym)}"><circle cx="22.5" cy="22.5" r="17" fill="{colour[0]}" stroke="{colour[1]}"/>'
                    f'<text x="22.5" y="29" font-size="18" text-anchor="middle" fill="{colour[1]}">{sym.upper()}</text></g>')
        out.append(body)
    out.append("</defs></svg>")
    return "".join(out)


def _squares(fen_board: str) -> dict[str, str]:
    """Square name -> piece letter from a FEN's placement field."""
    out = {}
    for i, rank in enumerate(fen_board.split("/")):
        f = 0
        for ch in rank:
            if ch.isdigit():
                f += int(ch)
            else:
                out[f"{'abcdefgh'[f]}{8 - i}"] = ch
                f += 1
    return out


def chess_svg(fen: str, last: tuple[str, str] | None = None) -> str:
    """A chess board from White's side for a FEN; the last move's squares tinted."""
    m = FEN_RE.fullmatch(fen.strip())
    if m is None:
        raise ValueError(f"not a FEN: {fen!r}")
    pieces = _squares(m.group(1))
    s = 45
    out = [f'<svg {_NS} class="board chess" viewBox="0 0 {8 * s + 14} {8 * s + 14}" data-fen="{_attr(fen.strip())}" '
           'role="img" aria-label="chess board"><rect width="100%" height="100%" fill="#2c2c2c"/>']
    lit = set(last or ())
    for r in range(8):
        for f in range(8):
            sq = f"{'abcdefgh'[f]}{8 - r}"
            light = (r + f) % 2 == 0
            colour = ("#cdd26a" if light else "#aaa23a") if sq in lit else ("#f0d9b5" if light else "#b58863")
            x, y = 14 + f * s, r * s
            p = pieces.get(sq, "")
            out.append(f'<g class="cell" data-square="{sq}" data-piece="{_attr(p or ".")}">'
                       f'<rect x="{x}" y="{y}" width="{s}" height="{s}" fill="{colour}"/>')
            if p:
                out.append(f'<use href="#{_piece_id(p)}" x="{x}" y="{y}"/>')
            out.append("</g>")
    for i in range(8):
        out.append(f'<text x="7" y="{i * s + s // 2 + 4}" font-size="11" text-anchor="middle" fill="#ddd">{8 - i}</text>'
                   f'<text x="{14 + i * s + s // 2}" y="{8 * s + 11}" font-size="11" text-anchor="middle" '
                   f'fill="#ddd">{"abcdefgh"[i]}</text>')
    out.append("</svg>")
    return "".join(out)


def _chess_last_move(state, action: int | None) -> tuple[str, str] | None:
    """The from and to squares of ``action`` in ``state`` (before it), from its UCI-like text if the
    game writes one; else None."""
    if action is None:
        return None
    try:
        import chess
        board = chess.Board(str(state).strip())
        move = board.parse_san(state.action_to_string(int(action)))
        return chess.square_name(move.from_square), chess.square_name(move.to_square)
    except Exception:  # noqa: BLE001 - no python-chess, or a notation it does not read: no highlight
        return None


def board_view(game_name: str, state, prev_state=None, action: int | None = None) -> dict:
    """What the page shows for ``state``: ``{"svg": markup}`` for connect four, tic-tac-toe and chess,
    else ``{"text": str(state)}``.  ``prev_state`` and ``action`` (the move that led here) mark the
    last move."""
    text = str(state)
    kind = grid_kind(game_name)
    if kind is not None:
        rows = grid_cells(text, _SHAPES[kind])
        if rows is not None:
            before = grid_cells(str(prev_state), _SHAPES[kind]) if prev_state is not None else None
            last = changed_cell(before, rows)
            return {"svg": (connect4_svg if kind == "connect4" else tictactoe_svg)(rows, last), "cells": rows}
    if FEN_RE.fullmatch(text.strip()):
        last = _chess_last_move(prev_state, action) if prev_state is not None else None
        return {"svg": chess_svg(text, last), "fen": text.strip()}
    return {"text": text.rstrip("\n")}
