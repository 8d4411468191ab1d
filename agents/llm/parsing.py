"""Reading a move (or a value) out of an LLM's reply without trusting it.

A reply is matched against the LEGAL set only: first the whole reply (and its first line) through
the game's own parser (``state.string_to_action``), then mentions of legal moves in the text —
those after words of intent ("I play 4", "column 4", "move: e4") first, then any mention.  Moves
that are negated ("not 3", "instead of 3") do not count; a reply naming several different moves
is ambiguous.  Nothing is evaluated: only regular expressions and the game's parser.

>>> from plyground import games
>>> s = games.make("connect4").new_initial_state()
>>> parse_move("I will play column 4.", s).action
3
>>> parse_move("Column 9!", s).error
"'9' is not a legal move; legal moves: 1, 2, 3, 4, 5, 6, 7"
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

__all__ = ["ParsedMove", "parse_move", "parse_value", "MAX_REPLY_CHARS"]

MAX_REPLY_CHARS = 4000      # longer replies are cut (regexes stay linear, errors stay short)
_SHOWN = 60                 # characters of a reply quoted in an error

_WORD_NUMBERS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                 "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_INTENT = re.compile(
    r"(?:\b(?:play|plays|playing|played|move|column|col|choose|chose|choosing|choice|select|selecting|"
    r"pick|picking|drop|dropping|place|placing|put|answer|action|go|going|take|taking|mark|cell|square|"
    r"position|is)\b)"
    r"[\s:=>#\-]*(?:(?:is|to|in|into|at|on|the|a|an|my|column|col|cell|square|number|no\.|move|will be)\b"
    r"[\s:=>#\-]*)*$", re.I)
_NEGATION = re.compile(
    r"(?:\bnot|n't|\bnever|\bavoid|\bavoiding|\binstead of|\brather than|\bexcept|\bwithout|\bbut not|"
    r"\bother than)\b[\s\w]{0,20}$", re.I)
_TOKEN = re.compile(r"[A-Za-z]{0,2}\(\s*\d+\s*,\s*\d+\s*\)|[A-Za-z0-9][A-Za-z0-9+#=\-]*")
_ROW_COL = re.compile(r"\brow\s*(\d+)\D{1,15}?\bcol(?:umn)?\s*(\d+)", re.I)
_MARKUP = re.compile(r"[*_`\"'“”‘’]+")


@dataclass
class ParsedMove:
    """The legal action a reply names (``action``, its notation ``text`` and ``how`` it was found:
    ``exact``, ``intent`` or ``mention``), or ``error`` saying why there is none."""

    action: int | None
    text: str | None = None
    how: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.action is not None

    def to_json(self) -> dict:
        return {"action": self.action, "text": self.text, "how": self.how, "error": self.error}


def _quote(reply: str) -> str:
    r = " ".join(reply.split())
    return repr(r if len(r) <= _SHOWN else r[:_SHOWN] + "...")


def _alias_pattern(alias: str) -> re.Pattern:
    """A regex for ``alias`` standing alone: optional spaces around punctuation, no letter or
    digit glued to either end."""
    parts = []
    for ch in alias:
        if ch.isalnum():
            parts.append(re.escape(ch))
        elif ch.isspace():
            parts.append(r"\s+")
        else:
            parts.append(r"\s*" + re.escape(ch) + r"\s*")
    return re.compile(r"(?<![A-Za-z0-9])" + "".join(parts) + r"(?![A-Za-z0-9])")


def _aliases(notation: str) -> set[str]:
    """Ways a reply may write a move: the notation, its last word (go's ``W d4`` -> ``d4``), and
    a coordinate without its player label (``x(1,2)`` -> ``(1,2)``, ``1,2``)."""
    out = {notation}
    words = notation.split()
    if len(words) > 1:
        out.add(words[-1])
    m = re.fullmatch(r"[A-Za-z]{1,2}(\(.*\))", notation)
    if m:
        out.add(m.group(1))
        out.add(m.group(1)[1:-1])
    return {a for a in out if a.strip()}


def _try_exact(text: str, state, legal_set: set[int]) -> int | None:
    try:
        a = int(state.string_to_action(text))
    except Exception:  # noqa: BLE001 - any parser complaint just means "not this way"
        return None
    return a if a in legal_set else None


def _clean(reply: str) -> str:
    text = reply[:MAX_REPLY_CHARS]
    return _MARKUP.sub("", text).strip()


def _exact_candidates(clean: str) -> list[str]:
    cands = [clean]
    lines = [ln.strip() for ln in clean.splitlines() if ln.strip()]
    if lines:
        cands.append(lines[0])
    out = []
    for c in cands:
        c2 = c.strip().rstrip(".!;")
        c3 = re.sub(r"^(?:my\s+)?(?:final\s+)?(?:move|answer|action|play|column|choice)\s*(?:is)?\s*[:=\-]?\s*",
                    "", c2, flags=re.I)
        out += [c, c2, c3]
    m = _ROW_COL.search(clean)
    if m:
        out.append(f"({m.group(1)},{m.group(2)})")
    seen, uniq = set(), []
    for c in out:
        if c and c not in seen and len(c) <= 40:
            seen.add(c)
            uniq.append(c)
    return uniq


def parse_move(reply: str, state, legal: Sequence[int] | None = None) -> ParsedMove:
    """The legal move ``reply`` names in ``state`` (see the module doc); never raises on bad text."""
    if state.is_terminal():
        return ParsedMove(None, error="the game is over: there is no move to make")
    legal_list = [int(a) for a in (state.legal_actions() if legal is None else legal)]
    legal_set = set(legal_list)
    names = {a: state.action_to_string(a) for a in legal_list}
    shown_legal = ", ".join(names[a] for a in legal_list[:40]) + (", ..." if len(legal_list) > 40 else "")
    if not isinstance(reply, str) or not reply.strip():
        return ParsedMove(None, error=f"the reply is empty; legal moves: {shown_legal}")
    clean = _clean(reply)
    # 1. the whole reply (or its first line) in the game's notation
    for cand in _exact_candidates(clean):
        a = _try_exact(cand, state, legal_set)
        if a is not None:
            return ParsedMove(a, names[a], "exact")
    # 2. mentions of legal moves, intent first
    text = clean
    worded = re.sub(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", lambda m: _WORD_NUMBERS[m.group(1).lower()],
                    text, flags=re.I)
    found: list[tuple[int, int, int]] = []   # (start, end, action)
    for source in (text, worded) if worded != text else (text,):
        hits = []
        for a in legal_list:
            for alias in _aliases(names[a]):
                for flags in (0, re.I):
                    pat = _alias_pattern(alias)
                    if flags:
                        pat = re.compile(pat.pattern, re.I)
                    for m in pat.finditer(source):
                        hits.append((m.start(), m.end(), a))
                    if hits:
                        break
        for m in _TOKEN.finditer(source):   # the game's own parser on each move-like token
            a = _try_exact(m.group(), state, legal_set)
            if a is not None:
                hits.append((m.start(), m.end(), a))
        if hits:
            found = hits
            text = source
            break
    positive = [(s, e, a) for s, e, a in found if not _NEGATION.search(text[max(0, s - 30):s])]
    intent = [(s, e, a) for s, e, a in positive if _INTENT.search(text[max(0, s - 40):s])]
    for group, how in ((intent, "intent"), (positive, "mention")):
        acts = sorted({a for _s, _e, a in group}, key=lambda a: legal_list.index(a))
        if len(acts) == 1:
            return ParsedMove(acts[0], names[acts[0]], how)
        if len(acts) > 1:
            return ParsedMove(None, error=f"the reply {_quote(reply)} names several moves "
                                          f"({', '.join(names[a] for a in acts)}); name exactly one")
    # 3. nothing legal: say what was named, if anything
    named = _named_illegal(clean, state)
    if named:
        return ParsedMove(None, error=f"{named!r} is not a legal move; legal moves: {shown_legal}")
    return ParsedMove(None, error=f"the reply {_quote(reply)} names no legal move; legal moves: {shown_legal}")


def _named_illegal(clean: str, state) -> str | None:
    """A move-like token after a word of intent (``play 8``), or the bare reply if short."""
    for m in _TOKEN.finditer(clean):
        if _INTENT.search(clean[max(0, m.start() - 40):m.start()]) and any(ch.isdigit() for ch in m.group()):
            return m.group()
    short = clean.strip().rstrip(".!")
    if short and len(short) <= 12 and len(short.split()) == 1:
        return short
    return None


_NUMBER = re.compile(r"(?<![\w.])([+-]?(?:\d+(?:\.\d+)?|\.\d+))\s*(%)?")


def parse_value(reply: str, outcomes: Sequence[str] = ("win", "draw", "loss")) -> float | None:
    """A value in [-1, 1] from a reply: a number in [-1, 1], a percentage (a win chance, mapped
    to 2p-1), or one of the outcome words (win 1, draw 0, loss -1); None if there is none."""
    if not isinstance(reply, str):
        return None
    text = reply[:MAX_REPLY_CHARS]
    m = _NUMBER.search(text)
    if m:
        try:
            v = float(m.group(1))
        except ValueError:
            v = math.nan
        if math.isfinite(v):
            if m.group(2):
                return max(-1.0, min(1.0, 2.0 * v / 100.0 - 1.0))
            if -1.0 <= v <= 1.0:
                return v
            if 1.0 < v <= 100.0 and re.search(r"\b(percent|chance|probability)\b", text, re.I):
                return 2.0 * v / 100.0 - 1.0
    words = [w.lower() for w in outcomes]
    low = text.lower()
    found = [(low.find(w), i) for i, w in enumerate(words) if re.search(r"\b" + re.escape(w) + r"\b", low)]
    if found:
        _pos, i = min(found)
        return (1.0, 0.0, -1.0)[i]
    return None
