"""Game text for LLMs: the rules in a sentence, the board, whose turn, the legal moves in the
game's notation and the recent moves, rendered through templates a user may override from a file.

>>> from plyground import games
>>> s = games.play_moves(games.make("connect4"), "44")
>>> msgs = move_prompt(s)
>>> [m["role"] for m in msgs]
['system', 'user']
>>> move_continuations(s)
['1', '2', '3', '4', '5', '6', '7']

The system message holds only what never changes within a game (the rules and the answer
format), so a backend that keeps its key/value cache (llama.cpp) reuses it across calls; the user
message puts what changes least between neighbouring positions first (the legal moves, the
board) and keeps what follows the board short (whose turn, the last moves, the question): a call
only pays for the tokens after the first one that differs from the previous prompt.

Templates are ``str.format`` strings over a fixed set of fields (``FIELDS``); nothing in a
template is executed, and a placeholder outside ``FIELDS`` (or any attribute/index access) is a
``PromptTemplateError`` naming the allowed ones.  ``load_templates(path)`` reads a TOML file
(keys ``system``, ``move``, ``value``, ``retry``, ``outcomes``) or a plain-text file (the ``move``
template).
"""

from __future__ import annotations

import hashlib
import json
import string
import tomllib
from dataclasses import dataclass, field, fields as dc_fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from plyground.games.errors import PlygroundError

__all__ = [
    "FIELDS", "RETRY_FIELDS", "TEMPLATE_NAMES", "PromptTemplates", "PromptTemplateError",
    "load_templates", "templates_from", "prompt_fields", "move_prompt", "move_continuations",
    "value_prompt", "value_continuations", "retry_message", "game_rules", "board_text",
    "player_name", "move_text", "state_key", "as_view", "recent_moves", "spaced_grid", "tactics_text",
    "prompt_digest", "VALUE_PROMPTS",
]

# placeholder -> what it holds (the documentation users see in errors)
FIELDS: dict[str, str] = {
    "game": "the game's name, e.g. connect4",
    "rules": "the rules in a sentence",
    "board": "the board as text",
    "player": "the player to move, e.g. x",
    "opponent": "the other player, e.g. o",
    "legal_moves": "the legal moves in the game's notation, comma-separated",
    "num_legal": "how many legal moves there are",
    "history": "the recent moves in the game's notation, oldest first ('no moves yet' at the start)",
    "last_move": "the last move in the game's notation ('none' at the start)",
    "move_number": "plies played so far (hidden-information games: the moves the player saw)",
    "outcomes": "the outcome words, e.g. 'win, draw or loss'",
    "tactics": ("what one move of lookahead shows, as lines ending in a newline: 'Winning moves: ...' "
                "(moves that win at once) and 'Safe moves: ...' (moves after which the opponent cannot "
                "win at once); empty in a hidden-information game, after a chance move, or with more "
                "than 64 legal moves"),
}
RETRY_FIELDS: dict[str, str] = {
    "reply": "the model's previous reply",
    "error": "what was wrong with it",
}
TEMPLATE_NAMES = ("system", "move", "value", "retry")
MAX_LISTED_MOVES = 100   # a prompt lists at most this many legal moves (go 19x19 has 362)
MAX_TACTICS_MOVES = 64   # the tactics lines look one move ahead for each side: at most 64 x 64 positions


class PromptTemplateError(PlygroundError, ValueError):
    """A template that cannot be used: unknown placeholder, bad syntax, or a bad template file."""


@dataclass(frozen=True)
class PromptTemplates:
    """The four templates and the outcome words (win, draw, loss) the value prompt asks for."""

    system: str = ("You are playing {game}. Rules: {rules} Answer with exactly what is asked, nothing "
                   "else. Asked 'Move?', give one legal move. Asked 'outcome?', say how the game will "
                   "end for the player to move: {outcomes}.")
    move: str = "Legal moves: {legal_moves}\nBoard:\n{board}\n{tactics}{player} to move after {history}. Move?"
    # (the value prompt leaves the recent moves out: the board says it all, and every token after
    # the board is paid again on each leaf)
    value: str = "Legal moves: {legal_moves}\nBoard:\n{board}\n{player} to move: outcome?"
    retry: str = ("{error} Reply with exactly one of the legal moves: {legal_moves}.")
    outcomes: tuple[str, str, str] = ("win", "draw", "loss")
    source: str = field(default="built-in", compare=False)

    def __post_init__(self) -> None:
        for name in TEMPLATE_NAMES:
            check_template(getattr(self, name), name, self.source)
        words = tuple(self.outcomes)
        if len(words) != 3 or not all(isinstance(w, str) and w.strip() for w in words) or len(set(words)) != 3:
            raise PromptTemplateError(
                f"templates from {self.source}: outcomes must be three different non-empty words "
                f"(win, draw, loss in that order); got {list(self.outcomes)!r}")
        object.__setattr__(self, "outcomes", words)


def check_template(template: Any, name: str, source: str = "built-in") -> None:
    """Raise ``PromptTemplateError`` unless ``template`` is a format string over allowed fields."""
    where = f"template {name!r} ({source})"
    if not isinstance(template, str):
        raise PromptTemplateError(f"{where} must be a string; got {type(template).__name__}")
    allowed = dict(FIELDS)
    if name == "retry":
        allowed.update(RETRY_FIELDS)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        raise PromptTemplateError(f"{where}: {e} (write a literal brace as {{{{ or }}}})") from None
    for _literal, fname, spec, _conv in parts:
        if fname is None:
            continue
        if fname not in allowed:
            shown = "{" + fname + "}" if fname else "{} (a positional placeholder)"
            raise PromptTemplateError(
                f"{where}: unknown placeholder {shown}; allowed: "
                + ", ".join("{" + k + "}" for k in allowed))
        if spec and ("{" in spec or "}" in spec):
            raise PromptTemplateError(f"{where}: nested placeholders in a format spec are not allowed "
                                      f"({{{fname}:{spec}}})")


def load_templates(path: str | Path) -> PromptTemplates:
    """Templates from a file: TOML (``.toml``; keys ``system``, ``move``, ``value``, ``retry``,
    ``outcomes``), otherwise plain text replacing the ``move`` template.  Missing keys keep the
    built-in templates."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise PromptTemplateError(f"cannot read prompt templates from {str(p)!r}: {e.strerror or e}") from None
    if p.suffix.lower() != ".toml":
        return PromptTemplates(move=text, source=str(p))
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PromptTemplateError(f"prompt templates {str(p)!r} are not valid TOML: {e}") from None
    return templates_from(table, source=str(p))


def templates_from(table: Mapping[str, Any], source: str = "table") -> PromptTemplates:
    """Templates from a mapping with any of the keys ``system``, ``move``, ``value``, ``retry``, ``outcomes``."""
    allowed = TEMPLATE_NAMES + ("outcomes",)
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise PromptTemplateError(f"prompt templates from {source}: unknown key(s) {unknown}; "
                                  f"allowed: {list(allowed)}")
    kw: dict[str, Any] = {k: table[k] for k in allowed if k in table}
    if "outcomes" in kw:
        if not isinstance(kw["outcomes"], (list, tuple)):
            raise PromptTemplateError(f"prompt templates from {source}: outcomes must be a list of three "
                                      f"words (win, draw, loss); got {kw['outcomes']!r}")
        kw["outcomes"] = tuple(kw["outcomes"])
    return PromptTemplates(source=source, **kw)


def _render(template: str, name: str, values: Mapping[str, str], source: str) -> str:
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError) as e:  # e.g. a bad format spec for a string
        raise PromptTemplateError(f"template {name!r} ({source}) cannot be filled: {e}") from None


# ----------------------------------------------------------------------------- game text
_OPENSPIEL_RULES = {
    "tic_tac_toe": "Tic-tac-toe on a 3x3 grid; x moves first; three in a row wins. Moves are x(row,col), 0-based.",
    "connect_four": ("Connect four on 7 columns x 6 rows; x moves first; a stone drops to the lowest empty "
                     "cell of its column; four in a row (across, down or diagonal) wins. Moves name the "
                     "player and the column, 0-based (x3 is the middle column)."),
    "chess": "Chess with the standard rules; white moves first; checkmate wins. Moves are in SAN (e4, Nf3, O-O).",
    "go": ("Go; black moves first; stones with no liberties are captured; the larger area (stones plus "
           "surrounded points, komi added for white) wins. Moves are B/W plus a point (B d4) or pass."),
    "hex": ("Hex on a rhombus; x (first) joins the top and bottom edges, o the left and right; the first "
            "chain joining its edges wins. Moves are cells like c3."),
    "breakthrough": ("Breakthrough on 8x8: pieces move one square forward or diagonally forward, capture "
                     "diagonally; the first to reach the far row wins. Moves are from-to squares (a2a3)."),
    "othello": "Othello: place a disc that outflanks opponent discs to flip them; most discs at the end wins.",
    "checkers": "Checkers (draughts) on 8x8: move diagonally, capturing is compulsory; no pieces or moves left loses.",
    "clobber": "Clobber: move a stone onto an adjacent enemy stone, capturing it; the player who cannot move loses.",
    "dots_and_boxes": "Dots and boxes: draw a line; completing a box scores it and moves again; most boxes wins.",
    "nim": "Nim: take any number of objects from one pile; the player who takes the last object wins.",
}
_PLAYER_NAMES = {
    "tictactoe": ("x", "o"), "connect4": ("x", "o"),
    "tic_tac_toe": ("x", "o"), "connect_four": ("x", "o"), "hex": ("x", "o"),
    # OpenSpiel numbers chess's black as player 0 (white, player 1, moves first)
    "chess": ("black", "white"), "go": ("black", "white"), "breakthrough": ("black", "white"),
}


def _game(state):
    g = getattr(state, "game", None)
    if g is None and hasattr(state, "get_game"):
        g = state.get_game()
    return g


def _short_name(game) -> str:
    """The rules' name: native name, OpenSpiel short name, or a PettingZoo env's twin's."""
    twin = getattr(game, "twin_game", None)
    if twin is not None:
        return _short_name(twin)
    short = getattr(game, "short_name", None)
    if short:
        return short
    gt = getattr(game, "get_type", None)
    if gt is not None:  # a raw pyspiel game
        return gt().short_name
    return str(getattr(game, "name", game))


def game_name(state) -> str:
    """The game's name as plyground spells it (``connect4``, ``openspiel:chess``, ``pettingzoo:...``)."""
    game = _game(state)
    name = getattr(game, "name", None)
    return name if isinstance(name, str) else str(game)


_DISPLAY = {"connect4": "connect four", "tictactoe": "tic-tac-toe"}


def display_name(state) -> str:
    """The game's name for people (``connect four``, ``Chess``), the same for every position."""
    game = _game(state)
    twin = getattr(game, "twin_game", None)
    if twin is not None:
        return display_name(twin.new_initial_state())
    name = getattr(game, "name", None)
    if name in _DISPLAY:
        return _DISPLAY[name]
    long_name = getattr(game, "description", None)
    if long_name is None and hasattr(game, "get_type"):
        long_name = game.get_type().long_name
    return long_name or _short_name(game)


def game_rules(state) -> str:
    """The rules in a sentence: native games' description, a known OpenSpiel game's summary, else
    the game's long name."""
    game = _game(state)
    twin = getattr(game, "twin_game", None)
    if twin is not None:
        return game_rules(twin.new_initial_state())
    spec = getattr(game, "spec", None)
    if spec is not None and getattr(spec, "description", None):
        return spec.description
    short = _short_name(game)
    if short in _OPENSPIEL_RULES:
        return _OPENSPIEL_RULES[short]
    long_name = getattr(game, "description", None)
    if long_name is None and hasattr(game, "get_type"):
        long_name = game.get_type().long_name
    n = game.num_players() if hasattr(game, "num_players") else 2
    return (f"{long_name or short}, a {n}-player turn-based game played by OpenSpiel's rules "
            f"('{short}'); players alternate choosing one of the legal moves.")


def player_name(state, player: int) -> str:
    """How the prompt names ``player`` (x/o, white/black, or 'player N')."""
    game = _game(state)
    names = _PLAYER_NAMES.get(_short_name(game))
    rules = getattr(game, "rules", None)
    if getattr(game, "twin_game", None) is not None and rules is not None and hasattr(rules, "twin_player"):
        player = int(rules.twin_player(player))
    if names is not None and 0 <= player < len(names):
        return names[player]
    return f"player {player}"


def _imperfect(state) -> bool:
    gt = getattr(_game(state), "game_type", None)
    if gt is None:
        return False
    import pyspiel
    return gt.information != pyspiel.GameType.Information.PERFECT_INFORMATION


def as_view(state):
    """What a prompt may show of ``state``: in a hidden-information game, the view of the player
    to move (``games.information.PlayerView``; a full state, e.g. one a search sampled, is turned
    into that player's view); otherwise the state itself.  Prompts are built only from this, so a
    prompt never holds what the player to move cannot see."""
    if getattr(state, "is_view", False) or not _imperfect(state):
        return state
    if getattr(state, "pyspiel_state", None) is None or state.is_chance_node():
        return state
    p = int(state.current_player())
    if p < 0:   # a finished game: nothing is asked of it
        return state
    from plyground.games.information import player_view
    return player_view(state, p)


def _views(state) -> bool:
    return bool(getattr(state, "is_view", False))


def spaced_grid(text: str) -> str:
    r"""A board drawn as a grid of one-character cells, with a space between cells; any other
    text unchanged.

    A BPE tokenizer merges runs of a repeated character (``"x......"`` is three tokens for
    SmolLM2: ``x``, ``....``, ``..``), so a model reading the unspaced grid cannot tell which
    column a cell is in; spaced, every cell is one token and the cell above is always the same
    number of tokens back.  A grid here is three or more lines of the same length (three or
    more), none with whitespace, as the connect-four and tic-tac-toe boards are.

    >>> print(spaced_grid("x..\n.o.\n..x"))
    x . .
    . o .
    . . x
    >>> spaced_grid("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1")[:8]
    'rnbqkbnr'
    """
    lines = text.split("\n")
    width = len(lines[0])
    if (len(lines) < 3 or width < 3 or any(len(line) != width for line in lines)
            or any(ch.isspace() for line in lines for ch in line)):
        return text
    return "\n".join(" ".join(line) for line in lines)


def board_text(state) -> str:
    """The board as text: the state's ``__str__`` (trailing blank lines dropped), a grid of
    cells spaced (``spaced_grid``); in a hidden-information game, what the player to move
    observes (its view's ``__str__``: the observation string, else its information-state
    string)."""
    return spaced_grid(_raw_board_text(state))


def _raw_board_text(state) -> str:
    state = as_view(state)
    if _views(state):
        return str(state).rstrip()
    if hasattr(state, "observation_string") and not state.is_terminal() and _imperfect(state):
        try:  # a finished hidden-information game: player 0's observation, never the full state
            return state.observation_string(_to_move(state)).rstrip()
        except Exception:  # noqa: BLE001
            pass
    return str(state).rstrip()


def move_text(state, action: int) -> str:
    """``action`` in the game's notation, for the player to move in ``state``."""
    return state.action_to_string(int(action))


def _to_move(state) -> int:
    p = int(state.current_player())
    if p >= 0:
        return p
    if _views(state):
        return state.player
    return len(state.history()) % 2


def _initial_like(state):
    """A fresh initial state of ``state``'s game without side effects (no live PettingZoo env)."""
    game = _game(state)
    try:
        return game.new_initial_state(referee=False)
    except TypeError:
        return game.new_initial_state()


def _seen_moves(view) -> list[str]:
    """The players' moves the viewer saw, each labelled with who made it (``player 0: Bet``).  Chance
    outcomes are left out: what they showed the viewer (its cards, the public cards) is on the board."""
    return [f"{player_name(view, p)}: {text}" for p, _a, text in view.observed_moves() if p >= 0]


def recent_moves(state, plies: int) -> list[str]:
    """The last ``plies`` moves in the game's notation, oldest first (replayed from the start so
    position-dependent notations such as chess SAN come out right).  In a hidden-information game,
    only the players' moves the player to move saw (``PlayerView.observed_moves``), each labelled
    with who made it: no deal (the board shows the player's own cards), no unseen opponent move,
    and not how many there were."""
    state = as_view(state)
    if _views(state):
        return _seen_moves(state)[-plies:] if plies > 0 else []
    hist = [int(a) for a in state.history()]
    if plies <= 0 or not hist:
        return []
    start = max(0, len(hist) - plies)
    try:
        s = _initial_like(state)
        for a in hist[:start]:
            s.apply_action(a)
        hidden = _imperfect(state)
        out = []
        for a in hist[start:]:
            chance = hasattr(s, "is_chance_node") and s.is_chance_node()
            if not (chance and hidden):  # a deal must not show the opponent's cards
                out.append(s.action_to_string(a))
            s.apply_action(a)
        return out
    except Exception:  # noqa: BLE001 - a game we cannot replay: number the moves instead
        return [str(a) for a in hist[start:]]


def _wins(state, player: int) -> bool:
    """``state`` is over and ``player`` has the strictly best return."""
    if not state.is_terminal():
        return False
    r = list(state.returns())
    return all(r[player] > v for i, v in enumerate(r) if i != player)


def _opponent_can_win(state, me: int) -> bool:
    """Some legal move of the player to move in ``state`` (not ``me``) wins at once."""
    opp = int(state.current_player())
    if opp < 0 or opp == me:   # a chance node is ruled out by the caller; ``me`` moving again is safe
        return False
    for b in state.legal_actions():
        s = state.clone()
        s.apply_action(b)
        if _wins(s, opp):
            return True
    return False


def tactics_text(state) -> str:
    """What one move of lookahead by each side shows the player to move, in two lines: its moves
    that win at once, and its moves after which the opponent has no immediately winning reply
    ("safe"; a move that wins is safe).  The empty string where the lookahead is not for a prompt
    to make: a hidden-information game (the player cannot see the positions it would look at), a
    move leading to a chance event, a finished game, or more than ``MAX_TACTICS_MOVES`` legal moves.

    As PokéChamp gives its LLM the damage a move would do, this hands the model the facts a line
    of play would show it at once, so it can spend its choice on the rest.

    >>> from plyground import games
    >>> print(tactics_text(games.play_moves(games.make("connect4"), "121212")), end="")
    Winning moves: 1
    Safe moves: 1, 2
    >>> print(tactics_text(games.play_moves(games.make("connect4"), "1212")), end="")
    Winning moves: none
    Safe moves: 1, 2, 3, 4, 5, 6, 7
    """
    view = as_view(state)
    if _views(view) or _imperfect(view) or view.is_terminal() or not hasattr(view, "clone"):
        return ""
    me = int(view.current_player())
    legal = list(view.legal_actions())
    if me < 0 or not legal or len(legal) > MAX_TACTICS_MOVES:
        return ""
    winning, safe = [], []
    for a in legal:
        s = view.clone()
        s.apply_action(a)
        if _wins(s, me):
            winning.append(a)
            safe.append(a)
            continue
        if hasattr(s, "is_chance_node") and s.is_chance_node():
            return ""
        if s.is_terminal() or not _opponent_can_win(s, me):
            safe.append(a)
    names = lambda acts: ", ".join(move_text(view, a) for a in acts) or "none"  # noqa: E731
    return f"Winning moves: {names(winning)}\nSafe moves: {names(safe)}\n"


VALUE_PROMPTS = ("system", "value")     # a value call renders no move or retry template


def _uses(t: PromptTemplates, name: str, prompts: Sequence[str] = TEMPLATE_NAMES) -> bool:
    """Some template of ``t`` among ``prompts`` has the placeholder ``{name}``."""
    return any(fname == name for p in prompts
               for _lit, fname, _spec, _conv in string.Formatter().parse(getattr(t, p)))


def state_key(state) -> tuple:
    """A key for ``state`` within its game (memo tables): the game name and the history; in a
    hidden-information game, the player to move and its ``information_key()`` instead (equal
    exactly when that player's information is)."""
    view = as_view(state)
    if _views(view):
        return (game_name(view), "view", view.player, view.information_key())
    return (game_name(state), tuple(int(a) for a in state.history()))


def prompt_fields(state, *, history_plies: int = 2, templates: PromptTemplates | None = None,
                  prompts: Sequence[str] = TEMPLATE_NAMES) -> dict[str, str]:
    """Every placeholder's value for ``state`` (all strings), for rendering the templates named in
    ``prompts``: the lookahead lines (``tactics``) are computed only if one of those uses them, else
    they are empty."""
    t = templates or DEFAULT_TEMPLATES
    state = as_view(state)
    me = _to_move(state)
    legal = [] if state.is_terminal() else list(state.legal_actions())
    names = [move_text(state, a) for a in legal[:MAX_LISTED_MOVES]]
    listed = ", ".join(names)
    if len(legal) > MAX_LISTED_MOVES:
        listed += f", ... ({len(legal) - MAX_LISTED_MOVES} more)"
    hist = recent_moves(state, history_plies)
    n_players = _game(state).num_players() if hasattr(_game(state), "num_players") else 2
    opp = (me + 1) % max(2, n_players)
    seen = len(state.observed_moves()) if _views(state) else len(state.history())
    return {
        "game": display_name(state),
        "rules": game_rules(state),
        "board": board_text(state),
        "player": player_name(state, me),
        "opponent": player_name(state, opp),
        "legal_moves": listed or "none",
        "num_legal": str(len(legal)),
        "history": ("; " if _views(state) else " ").join(hist) if hist else "no moves yet",
        "last_move": hist[-1] if hist else "none",
        "move_number": str(seen),
        "outcomes": f"{t.outcomes[0]}, {t.outcomes[1]} or {t.outcomes[2]}",
        "tactics": tactics_text(state) if _uses(t, "tactics", prompts) else "",
    }


DEFAULT_TEMPLATES = PromptTemplates()


def _messages(t: PromptTemplates, name: str, values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"role": "system", "content": _render(t.system, "system", values, t.source)},
            {"role": "user", "content": _render(getattr(t, name), name, values, t.source)}]


def move_prompt(state, templates: PromptTemplates | None = None, *, history_plies: int = 2,
                values: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Chat messages asking for the move of the player to move (the reply should start with it)."""
    t = templates or DEFAULT_TEMPLATES
    return _messages(t, "move", values or prompt_fields(state, history_plies=history_plies, templates=t))


def prompt_digest(messages: Sequence[Mapping[str, str]]) -> str:
    """A short fingerprint of chat messages (16 hex digits of a SHA-256 over their roles and texts).
    The ``llm`` agent records it with each move, so a prompt rebuilt later (the replay page) can be
    checked against the one actually sent: templates change between versions.

    >>> prompt_digest([{"role": "user", "content": "Move?"}]) == prompt_digest([{"role": "user", "content": "Move?"}])
    True
    >>> prompt_digest([{"role": "user", "content": "Move?"}]) == prompt_digest([{"role": "user", "content": "Move!"}])
    False
    """
    canon = json.dumps([[m.get("role"), m.get("content")] for m in messages], ensure_ascii=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]


def move_continuations(state, actions: Sequence[int] | None = None) -> list[str]:
    """The text of each action (default: every legal action, in ``legal_actions()`` order), as the
    start of the reply ``backend.score`` measures."""
    acts = state.legal_actions() if actions is None else actions
    return [move_text(state, a) for a in acts]


def value_prompt(state, templates: PromptTemplates | None = None, *, history_plies: int = 2,
                 values: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Chat messages asking whether the position is a win, draw or loss for the player to move."""
    t = templates or DEFAULT_TEMPLATES
    return _messages(t, "value", values or prompt_fields(state, history_plies=history_plies, templates=t,
                                                         prompts=VALUE_PROMPTS))


def value_continuations(templates: PromptTemplates | None = None) -> list[str]:
    """The outcome words, win/draw/loss order."""
    return list((templates or DEFAULT_TEMPLATES).outcomes)


def retry_message(reply: str, error: str, values: Mapping[str, str],
                  templates: PromptTemplates | None = None) -> list[dict[str, str]]:
    """The two messages appended for a re-ask: the model's reply and the user's correction."""
    t = templates or DEFAULT_TEMPLATES
    filled = dict(values, reply=reply, error=error)
    return [{"role": "assistant", "content": reply},
            {"role": "user", "content": _render(t.retry, "retry", filled, t.source)}]


def with_overrides(templates: PromptTemplates, **kw: Any) -> PromptTemplates:
    """A copy of ``templates`` with some fields replaced (checked like any template)."""
    names = {f.name for f in dc_fields(PromptTemplates)}
    bad = sorted(set(kw) - names)
    if bad:
        raise PromptTemplateError(f"unknown template field(s) {bad}; allowed: {sorted(names)}")
    return replace(templates, **kw)
