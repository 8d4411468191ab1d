"""PGN (Portable Game Notation) read and written by a real tokenizer and parser, never eval.

>>> games = parse_pgn('[White "A"]\\n[Black "B"]\\n[Result "1-0"]\\n\\n1. e4 {best} e5 (1... c5) 2. Qh5?! 1-0')
>>> g = games[0]; g.tags["White"], g.result, g.sans(), g.moves[1].variations
('A', '1-0', ['e4', 'e5', 'Qh5'], 1)

Reads tag pairs (with ``\\"`` and ``\\\\`` escapes), brace and semicolon comments, ``%`` escape
lines, nested variations (skipped, counted on the move they follow), NAGs (``$n`` and the suffixes
``! ? !! ?? !? ?!``), move numbers, the four results (``1-0 0-1 1/2-1/2 *``) and any number of
games.  Moves must look like SAN or long algebraic notation; anything else is a ``PGNError``
naming the line.  Whether the moves are legal is not checked here (see arena.importer).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from plyground.games.errors import PlygroundError

__all__ = ["PGNError", "PGNMove", "PGNGame", "parse_pgn", "read_pgn", "RESULTS", "SEVEN_TAG_ROSTER",
           "format_tag", "format_game", "SAN_RE"]

RESULTS = ("1-0", "0-1", "1/2-1/2", "*")
SEVEN_TAG_ROSTER = ("Event", "Site", "Date", "Round", "White", "Black", "Result")
_SUFFIX_NAGS = {"!": 1, "?": 2, "!!": 3, "??": 4, "!?": 5, "?!": 6}

# SAN (Nf3, exd5, e8=Q, O-O-O, with +/#), long algebraic (e2e4, Ng1-f3, e7e8q), null moves (--, Z0).
SAN_RE = re.compile(
    r"(?:[KQRBN][a-h]?[1-8]?x?[a-h][1-8]"
    r"|[a-h](?:x[a-h])?[1-8](?:=?[QRBNqrbn])?"
    r"|[KQRBN]?[a-h][1-8][-x]?[a-h][1-8](?:=?[QRBNqrbn])?"
    r"|O-O(?:-O)?|0-0(?:-0)?|--|Z0)[+#]?")

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<tag>\[)
  | (?P<brace>\{)
  | (?P<semi>;[^\n]*)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<nag>\$\d+)
  | (?P<result>(?:1-0|0-1|1/2-1/2|\*)(?![\w/\-]))
  | (?P<castle>(?:O-O-O|O-O|0-0-0|0-0)[+#]?(?:[!?]{1,2})?(?![\w\-]))
  | (?P<number>\d+\s*\.+|\d+(?=\s)|\.\.\.)
  | (?P<move>[A-Za-z0-9][A-Za-z0-9_+#=:\-/]*(?:[!?]{1,2})?)
  | (?P<suffix>[!?]{1,2})
  | (?P<dashes>--)
""", re.VERBOSE)
_TAG_RE = re.compile(r'\[[ \t]*([A-Za-z0-9_]+)[ \t]+"((?:[^"\\\n]|\\.)*)"[ \t]*\]')


class PGNError(PlygroundError, ValueError):
    """Input that is not PGN; the message names the source and line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source, self.line = source, line
        super().__init__(f"{source}, line {line}: {message}")


@dataclass
class PGNMove:
    """One main-line move: its SAN text, NAG numbers, the comments after it and how many
    variations (alternatives to it) follow it."""

    san: str
    line: int
    nags: list[int] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    variations: int = 0


@dataclass
class PGNGame:
    """One game: tags in file order, main-line moves, the result token and where it starts."""

    tags: dict[str, str]
    moves: list[PGNMove]
    result: str
    line: int
    comments: list[str] = field(default_factory=list)  # comments before the first move

    def sans(self) -> list[str]:
        """The main line's moves as written (suffix annotations removed)."""
        return [m.san for m in self.moves]

    @property
    def white(self) -> str:
        return self.tags.get("White", "?")

    @property
    def black(self) -> str:
        return self.tags.get("Black", "?")


class _Builder:
    """The game being parsed."""

    def __init__(self, line: int) -> None:
        self.line = line
        self.tags: dict[str, str] = {}
        self.moves: list[PGNMove] = []
        self.comments: list[str] = []
        self.in_movetext = False
        self.depth = 0
        self.open_lines: list[int] = []

    def comment(self, text: str) -> None:
        text = " ".join(text.split())
        if self.depth:
            return
        (self.moves[-1].comments if self.moves else self.comments).append(text)


def parse_pgn(text: str, source: str = "<pgn>") -> list[PGNGame]:
    """Every game in ``text``; raises ``PGNError`` naming the line of the first problem."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
    games: list[PGNGame] = []
    cur: _Builder | None = None
    pos, n = 0, len(text)

    def line_at(p: int) -> int:
        return bisect.bisect_right(starts, p)

    while pos < n:
        # '%' in the first column escapes the whole line.
        if text[pos] == "%" and (pos == 0 or text[pos - 1] == "\n"):
            end = text.find("\n", pos)
            pos = n if end < 0 else end + 1
            continue
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            raise PGNError(source, line_at(pos), f"unexpected character {ch!r} "
                           f"(allowed: tag pairs [Name \"value\"], moves, move numbers, {{comments}}, "
                           f"(variations), $NAGs and the results {', '.join(RESULTS)})")
        kind, tok, here = m.lastgroup, m.group(), pos
        line = line_at(here)
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "tag":
            tm = _TAG_RE.match(text, here)
            if tm is None:
                bad = text[here:text.find("\n", here) if "\n" in text[here:] else n]
                raise PGNError(source, line, f"malformed tag pair {bad.strip()!r}; expected [Name \"value\"]")
            if cur is not None and cur.in_movetext:
                raise PGNError(source, line, f"tag pair [{tm.group(1)} ...] inside the moves of the game that "
                               f"starts at line {cur.line}: that game has no result (1-0, 0-1, 1/2-1/2 or *)")
            if cur is None:
                cur = _Builder(line)
            name, value = tm.group(1), re.sub(r"\\(.)", r"\1", tm.group(2))
            if name in cur.tags:
                raise PGNError(source, line, f"tag {name!r} appears twice in the game that starts at line {cur.line}")
            cur.tags[name] = value
            pos = tm.end()
            continue
        if kind == "brace":
            end = text.find("}", pos)
            if end < 0:
                raise PGNError(source, line, "comment '{' is never closed by '}'")
            if cur is None:  # a comment between games belongs to no game
                pos = end + 1
                continue
            cur.comment(text[pos:end])
            pos = end + 1
            continue
        if kind == "semi":
            if cur is not None:
                cur.comment(tok[1:])
            continue
        # Everything else is movetext.
        if cur is None:
            cur = _Builder(line)
        cur.in_movetext = True
        if kind == "open":
            if cur.depth == 0:
                if not cur.moves:
                    raise PGNError(source, line, "variation '(' before any move of the main line")
                cur.moves[-1].variations += 1
            cur.depth += 1
            cur.open_lines.append(line)
        elif kind == "close":
            if cur.depth == 0:
                raise PGNError(source, line, "')' closes no variation")
            cur.depth -= 1
            cur.open_lines.pop()
        elif kind == "nag":
            if cur.depth == 0:
                if not cur.moves:
                    raise PGNError(source, line, f"NAG {tok} before any move")
                cur.moves[-1].nags.append(int(tok[1:]))
        elif kind == "suffix":
            if cur.depth == 0:
                if not cur.moves:
                    raise PGNError(source, line, f"annotation {tok!r} before any move")
                cur.moves[-1].nags.append(_SUFFIX_NAGS[tok])
        elif kind == "number":
            pass
        elif kind == "result":
            if cur.depth:
                raise PGNError(source, line, f"result {tok} inside the variation opened at line {cur.open_lines[-1]}")
            tag = cur.tags.get("Result")
            if tag is not None and tag in RESULTS and tag != tok:
                raise PGNError(source, line, f"the moves end with {tok} but the Result tag of the game that starts "
                               f"at line {cur.line} says {tag}")
            games.append(PGNGame(cur.tags, cur.moves, tok, cur.line, cur.comments))
            cur = None
        else:  # move, castle, dashes
            san, suffix = re.match(r"(.*?)([!?]{0,2})$", tok).groups()
            if not SAN_RE.fullmatch(san):
                raise PGNError(source, line, f"{tok!r} is not a move (expected SAN such as e4, Nf3, exd5, "
                               f"e8=Q, O-O, or long algebraic such as e2e4)")
            if cur.depth == 0:
                cur.moves.append(PGNMove(san, line))
                if suffix:
                    if suffix not in _SUFFIX_NAGS:
                        raise PGNError(source, line, f"unknown annotation {suffix!r} on {san}; "
                                       f"allowed: {', '.join(_SUFFIX_NAGS)}")
                    cur.moves[-1].nags.append(_SUFFIX_NAGS[suffix])
    if cur is not None:
        if cur.depth:
            raise PGNError(source, cur.open_lines[-1], "variation '(' is never closed by ')'")
        raise PGNError(source, cur.line, "the game that starts here has no result: its moves must end with "
                       "1-0, 0-1, 1/2-1/2 or *")
    return games


def read_pgn(path: str | Path) -> list[PGNGame]:
    """Every game of a PGN file (UTF-8, or Latin-1 if it is not valid UTF-8)."""
    return load_pgn(path)[1]


def load_pgn(path: str | Path) -> tuple[bytes, list[PGNGame]]:
    """The file's bytes (importers hash them) and its games."""
    p = Path(path)
    if not p.is_file():
        raise PlygroundError(f"no PGN file at {str(p)!r}")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return data, parse_pgn(text, source=str(p))


# ---------------------------------------------------------------------------------------- writing
def format_tag(name: str, value) -> str:
    """One tag pair line, with quotes and backslashes escaped."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise PlygroundError(f"PGN tag name {name!r} must be letters, digits or '_'")
    v = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'[{name} "{v}"]'


def _comment(text: str) -> str:
    return "{" + " ".join(text.replace("}", ")").split()) + "}"


def format_game(tags: dict[str, object], sans: list[str], result: str, comment: str | None = None,
                width: int = 79, suffixes: list[str | None] | None = None,
                move_comments: list[str | None] | None = None) -> str:
    """A game in PGN export style: the tags (the Seven Tag Roster first), a blank line, the
    numbered moves wrapped at ``width`` and the result, then a blank line.  ``suffixes`` (``?!``,
    ``?``, ``??``, ...) and ``move_comments`` (e.g. ``[%eval 0.25] [%emt 0:00:01.5]``), one or None per
    move, follow their move; Black's move after a comment gets its ``N...`` number."""
    if result not in RESULTS:
        raise PlygroundError(f"PGN result {result!r} is not one of {', '.join(RESULTS)}")
    ordered = [k for k in SEVEN_TAG_ROSTER if k in tags] + [k for k in tags if k not in SEVEN_TAG_ROSTER]
    lines = [format_tag(k, tags[k]) for k in ordered]
    tokens: list[str] = []
    for i, san in enumerate(sans):
        if i % 2 == 0:
            tokens.append(f"{i // 2 + 1}.")
        elif i == 0 or (move_comments and move_comments[i - 1]):
            tokens.append(f"{i // 2 + 1}...")
        suffix = suffixes[i] if suffixes and i < len(suffixes) else None
        if suffix and suffix not in _SUFFIX_NAGS:
            raise PlygroundError(f"PGN move suffix {suffix!r} is not one of {', '.join(_SUFFIX_NAGS)}")
        tokens.append(san + (suffix or ""))
        if move_comments and i < len(move_comments) and move_comments[i]:
            tokens.append(_comment(move_comments[i]))
    if comment:
        tokens.append(_comment(comment))
    tokens.append(result)
    body, row = [], ""
    for tok in tokens:
        if row and len(row) + 1 + len(tok) > width:
            body.append(row)
            row = tok
        else:
            row = f"{row} {tok}" if row else tok
    body.append(row)
    return "\n".join(lines) + "\n\n" + "\n".join(body) + "\n\n"
