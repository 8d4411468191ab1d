"""Any pyspiel game behind plyground's State API: ``make("openspiel:chess")``.

>>> from plyground.games.openspiel_game import OpenSpielGame
>>> game = OpenSpielGame.load("hex", board_size=5)
>>> game.name
'openspiel:hex(board_size=5)'
>>> state = game.new_initial_state()
>>> state.apply_action(state.string_to_action("c3")); state.current_player()
1

The wrapper checks every action against the legal set before it reaches C++, so an illegal move
is a typed ``IllegalActionError`` instead of a ``SpielError`` or an abort.  The raw pyspiel objects
stay reachable (``game.pyspiel_game``, ``state.pyspiel_state``) for OpenSpiel's own bots.
Chance nodes are supported (``is_chance_node()``, ``chance_outcomes()``); simultaneous-move and
mean-field games are rejected with ``UnsupportedGameError``.
"""

from __future__ import annotations

import contextlib
import difflib
import operator
import os
import sys
from typing import Iterator

import numpy as np
import pyspiel

from plyground.games.errors import IllegalActionError, PlygroundError, UnknownGameError, UnsupportedGameError

__all__ = ["OpenSpielGame", "OpenSpielState", "UnsupportedGameError", "CHANCE_PLAYER", "TERMINAL_PLAYER"]

CHANCE_PLAYER = int(pyspiel.PlayerId.CHANCE)  # -1
TERMINAL_PLAYER = int(pyspiel.PlayerId.TERMINAL)  # -4
_MAX_NOTATION = 60  # legal moves spelled out in an error message


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C++ writes to fd 2 (pyspiel prints every SpielError it raises) for one call."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _format_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class OpenSpielGame:
    """A pyspiel game with plyground's names; ``new_initial_state()`` gives an ``OpenSpielState``."""

    def __init__(self, pyspiel_game: "pyspiel.Game", name: str | None = None) -> None:
        gtype = pyspiel_game.get_type()
        if gtype.dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS:
            raise UnsupportedGameError(
                f"openspiel:{gtype.short_name} is a simultaneous-move game; plyground's State is turn-based "
                f"(wrap it in turns: openspiel:turn_based_simultaneous_game(game={gtype.short_name}()))")
        if gtype.dynamics != pyspiel.GameType.Dynamics.SEQUENTIAL:
            raise UnsupportedGameError(
                f"openspiel:{gtype.short_name} has {gtype.dynamics.name.lower()} dynamics; only sequential games "
                "(with or without chance nodes) are supported")
        self.pyspiel_game = pyspiel_game
        self.game_type = gtype
        if name is None:
            canonical = str(pyspiel_game)
            name = canonical[:-2] if canonical.endswith("()") else canonical
        self.name = "openspiel:" + name
        self.short_name = gtype.short_name
        self.description = gtype.long_name

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, game_string: str, **params) -> "OpenSpielGame":
        """Load ``game_string`` (``"chess"``, ``"hex(board_size=5)"``), ``params`` added to its parameters."""
        if not isinstance(game_string, str) or not game_string.strip():
            raise UnknownGameError(repr(game_string), ["<any OpenSpiel game>"],
                                   "give an OpenSpiel game string such as chess or hex(board_size=5)")
        text = game_string.strip()
        short = text.split("(", 1)[0].strip()
        registered = pyspiel.registered_names()
        if short not in registered:
            close = difflib.get_close_matches(short, registered, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join('openspiel:' + c for c in close)}?" if close else \
                "see pyspiel.registered_names() or plyground.games.list_games()"
            raise UnknownGameError("openspiel:" + short, ["openspiel:" + n for n in registered], hint)
        if "(" in text:
            if not text.endswith(")"):
                raise PlygroundError(f"malformed OpenSpiel game string {text!r}: missing ')'")
            try:
                with _quiet_stderr():
                    given = dict(pyspiel.game_parameters_from_string(text))
            except pyspiel.SpielError as e:
                raise PlygroundError(f"malformed OpenSpiel game string {text!r}: {e}") from None
            given.pop("name", None)
        else:
            given = {}
        given.update(params)
        spec = _parameter_spec(short)
        unknown = sorted(set(given) - set(spec))
        if unknown:
            raise PlygroundError(f"openspiel:{short} has no parameter(s) {unknown}; allowed: {sorted(spec) or 'none'}")
        if given.get("filename") and "filename" in spec and not os.path.isfile(str(given["filename"])):
            raise PlygroundError(f"openspiel:{short}: no file at filename={given['filename']!r}")
        try:
            with _quiet_stderr():
                game = pyspiel.load_game(short, given) if given else pyspiel.load_game(short)
        except Exception as e:  # noqa: BLE001 - SpielError, and IndexError or RuntimeError from some loaders
            _check_required(short, spec, given)
            missing = _missing_mandatory(short, spec, given)
            if missing:
                example = ",".join(f"{k}={_format_value(spec[k])}" for k in missing)
                raise PlygroundError(
                    f"openspiel:{short} needs the parameter(s) {', '.join(missing)} (OpenSpiel has no default for "
                    f"them), e.g. openspiel:{short}({example}{''.join(',' + k + '=...' for k in given)})") from None
            raise PlygroundError(f"cannot load openspiel:{short} with {given}: {type(e).__name__}: {e} "
                                 f"(parameters and their defaults: {spec})") from None
        name = short
        if given:
            # Nested game parameters (a pyspiel.Game value) keep OpenSpiel's own rendering.
            name = str(game) if any(not isinstance(v, (bool, int, float, str)) for v in given.values()) else \
                short + "(" + ",".join(f"{k}={_format_value(v)}" for k, v in sorted(given.items())) + ")"
        return cls(game, name)

    # ------------------------------------------------------------------ the Game API
    def num_players(self) -> int:
        return self.pyspiel_game.num_players()

    def num_distinct_actions(self) -> int:
        return self.pyspiel_game.num_distinct_actions()

    def max_game_length(self) -> int:
        return self.pyspiel_game.max_game_length()

    def max_chance_outcomes(self) -> int:
        return self.pyspiel_game.max_chance_outcomes()

    def has_chance(self) -> bool:
        """True if the game has chance nodes (dice, card deals)."""
        return self.game_type.chance_mode != pyspiel.GameType.ChanceMode.DETERMINISTIC

    def observation_tensor_shape(self) -> list[int]:
        if not self.game_type.provides_observation_tensor:
            raise PlygroundError(f"{self.name} provides no observation tensor")
        return list(self.pyspiel_game.observation_tensor_shape())

    def new_initial_state(self, start: str | None = None) -> "OpenSpielState":
        """The initial state, or for games that take one a start position (chess: a FEN)."""
        if start is None:
            return OpenSpielState(self, self.pyspiel_game.new_initial_state())
        try:
            with _quiet_stderr():
                return OpenSpielState(self, self.pyspiel_game.new_initial_state(str(start)))
        except pyspiel.SpielError as e:
            raise PlygroundError(f"{self.name} cannot start from {start!r}: {e}") from None

    def wrap_state(self, pyspiel_state: "pyspiel.State") -> "OpenSpielState":
        """Wrap a pyspiel state of this game (e.g. one an OpenSpiel bot produced); no copy is made."""
        return OpenSpielState(self, pyspiel_state)

    def deserialize_state(self, text: str) -> "OpenSpielState":
        """Rebuild a state from ``serialize()``: action numbers replayed with legality checks."""
        lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
        if all(_is_int(ln) for ln in lines):
            state = self.new_initial_state()
            for i, ln in enumerate(lines):
                try:
                    state.apply_action(int(ln))
                except IllegalActionError as e:
                    raise PlygroundError(f"cannot deserialize {self.name} state: action {i} ({ln}) is illegal: {e}") from None
            return state
        try:  # a game with its own serialization format
            with _quiet_stderr():
                return OpenSpielState(self, self.pyspiel_game.deserialize_state(str(text)))
        except (pyspiel.SpielError, ValueError, RuntimeError, IndexError) as e:  # C++ parse errors surface as these
            raise PlygroundError(f"cannot deserialize {self.name} state from {text[:80]!r}: {e}") from None

    def __repr__(self) -> str:
        return f"OpenSpielGame({self.name!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, OpenSpielGame) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("openspiel", self.name))


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# Example values for parameters that take a whole game, by parameter name
_GAME_EXAMPLES = {"stage_game": "matrix_pd()", "universal_poker_game_string": "universal_poker()"}


def _check_required(short: str, spec: dict, given: dict) -> None:
    """After a failed load: name the parameters OpenSpiel could not default, a wrapped game
    (``zerosum``, ``misere``, ...) or a game file (``nfg_game``, ``efg_game``)."""
    games = [k for k, v in spec.items() if isinstance(v, dict) and k not in given]
    if games:
        example = ",".join(f"{k}={_GAME_EXAMPLES.get(k, 'tic_tac_toe()')}" for k in games)
        raise PlygroundError(f"openspiel:{short} is built on another game: give the parameter(s) "
                             f"{', '.join(games)}, e.g. openspiel:{short}({example})")
    if "filename" in spec and spec["filename"] == "":
        if not given.get("filename"):
            raise PlygroundError(f"openspiel:{short} reads its game from a file: give the parameter filename, "
                                 f"e.g. openspiel:{short}(filename=/path/to/game.{short.split('_')[0]})")


def _missing_mandatory(short: str, spec: dict, given: dict) -> list[str]:
    """The parameters OpenSpiel insists on being given (it reports them one at a time as "Missing
    parameter X"): found by retrying with each reported one set to its listed value."""
    trial, missing = dict(given), []
    for _ in range(len(spec)):
        try:
            with _quiet_stderr():
                pyspiel.load_game(short, trial)
            return missing
        except Exception as e:  # noqa: BLE001 - any failure other than a missing parameter ends the search
            name = str(e).rsplit("Missing parameter ", 1)[-1].strip() if "Missing parameter " in str(e) else None
            if name not in spec or name in trial or isinstance(spec[name], dict):
                return missing
            missing.append(name)
            trial[name] = spec[name]
    return missing


def _parameter_spec(short_name: str) -> dict:
    for gtype in pyspiel.registered_games():
        if gtype.short_name == short_name:
            return dict(gtype.parameter_specification)
    return {}


class OpenSpielState:
    """A position of an OpenSpiel game; ``pyspiel_state`` is the live pyspiel state."""

    __slots__ = ("game", "pyspiel_state", "_legal", "_legal_set")

    def __init__(self, game: OpenSpielGame, pyspiel_state: "pyspiel.State") -> None:
        self.game = game
        self.pyspiel_state = pyspiel_state
        self._legal: list[int] | None = None
        self._legal_set: frozenset[int] | None = None

    # ------------------------------------------------------------------ whose turn, what is legal
    def current_player(self) -> int:
        """OpenSpiel's player id: 0..n-1, ``-1`` at a chance node, ``-4`` when terminal."""
        return self.pyspiel_state.current_player()

    def is_terminal(self) -> bool:
        return self.pyspiel_state.is_terminal()

    def is_chance_node(self) -> bool:
        return self.pyspiel_state.is_chance_node()

    def chance_outcomes(self) -> list[tuple[int, float]]:
        """The chance node's outcomes as ``(action, probability)``; empty at a player node."""
        if not self.pyspiel_state.is_chance_node():
            return []
        return [(int(a), float(p)) for a, p in self.pyspiel_state.chance_outcomes()]

    def legal_actions(self, player: int | None = None) -> list[int]:
        """Legal actions of the player to move (chance outcomes at a chance node)."""
        if player is not None and player != self.pyspiel_state.current_player():
            if not 0 <= int(player) < self.game.num_players():
                return []
            return list(self.pyspiel_state.legal_actions(int(player)))
        if self._legal is None:
            self._legal = list(self.pyspiel_state.legal_actions())
        return list(self._legal)

    def _legal_lookup(self) -> frozenset[int]:
        if self._legal_set is None:
            if self._legal is None:
                self._legal = list(self.pyspiel_state.legal_actions())
            self._legal_set = frozenset(self._legal)
        return self._legal_set

    def apply_action(self, action: int) -> None:
        """Play ``action`` in place; an illegal one raises ``IllegalActionError`` and changes nothing."""
        try:
            a = operator.index(action)
        except TypeError:
            raise IllegalActionError(self.game.name, action, self.legal_actions(), "not an integer") from None
        if a not in self._legal_lookup():
            legal = self.legal_actions()
            if self.pyspiel_state.is_terminal():
                detail = "the game is over"
            elif self.pyspiel_state.is_chance_node():
                detail = "a chance node: the legal actions are its outcomes"
            else:
                detail = "legal moves: " + self._notation(legal)
            raise IllegalActionError(self.game.name, action, legal, detail)
        self.pyspiel_state.apply_action(a)
        self._legal = None
        self._legal_set = None

    def child(self, action: int) -> "OpenSpielState":
        c = self.clone()
        c.apply_action(action)
        return c

    def clone(self) -> "OpenSpielState":
        c = OpenSpielState(self.game, self.pyspiel_state.clone())
        # the same position has the same legal actions: share the cached list and set (both are
        # replaced, never changed in place), so a search cloning a node with thousands of chance
        # outcomes (yacht: 7,776) once per outcome does not rebuild the set each time
        if self._legal is not None and self._legal_set is None:
            self._legal_set = frozenset(self._legal)
        c._legal, c._legal_set = self._legal, self._legal_set
        return c

    def returns(self) -> list[float]:
        return [float(r) for r in self.pyspiel_state.returns()]

    def history(self) -> list[int]:
        return [int(a) for a in self.pyspiel_state.history()]

    def move_number(self) -> int:
        return self.pyspiel_state.move_number()

    # ------------------------------------------------------------------ notation
    def action_to_string(self, *args: int) -> str:
        """``action_to_string(action)`` (the player to move) or ``action_to_string(player, action)``."""
        if len(args) == 1:
            player, action = self.pyspiel_state.current_player(), args[0]
            if player == TERMINAL_PLAYER:
                player = 0
        elif len(args) == 2:
            player, action = args
        else:
            raise TypeError("action_to_string(action) or action_to_string(player, action)")
        try:
            a, p = operator.index(action), operator.index(player)
        except TypeError:
            raise IllegalActionError(self.game.name, action, [], "action and player must be integers") from None
        limit = self.game.max_chance_outcomes() if p == CHANCE_PLAYER else self.game.num_distinct_actions()
        if not 0 <= a < limit:
            raise IllegalActionError(self.game.name, action, range(limit), "out of the action range")
        if p != CHANCE_PLAYER and not 0 <= p < self.game.num_players():
            raise PlygroundError(f"player {player} is not one of {list(range(self.game.num_players()))} or -1 (chance)")
        try:
            with _quiet_stderr():
                return self.pyspiel_state.action_to_string(p, a)
        except pyspiel.SpielError as e:
            raise IllegalActionError(self.game.name, action, self.legal_actions(), str(e)) from None

    def _notation(self, actions: list[int]) -> str:
        p = self.pyspiel_state.current_player()
        names = [self.pyspiel_state.action_to_string(p, a) for a in actions[:_MAX_NOTATION]]
        more = f", ... ({len(actions) - _MAX_NOTATION} more)" if len(actions) > _MAX_NOTATION else ""
        return ", ".join(names) + more

    def _uci_names(self, actions: list[int]) -> dict[str, int]:
        """Chess-family moves in coordinate notation (``e2e4``, ``e7e8q``)."""
        board = getattr(self.pyspiel_state, "board", None)
        if board is None or not hasattr(pyspiel, "chess") or self.game.short_name not in ("chess",):
            return {}
        b = board()
        return {pyspiel.chess.action_to_move(a, b).to_lan().lower(): a for a in actions}

    def string_to_action(self, text: str) -> int:
        """Parse a move in OpenSpiel's notation (also without the player label, e.g. go's ``d4``;
        chess also takes ``e2e4``); raises ``IllegalActionError`` listing the legal moves."""
        legal = self.legal_actions()
        t = str(text).strip()
        p = self.pyspiel_state.current_player()
        if legal and t:
            names = {a: self.pyspiel_state.action_to_string(p, a) for a in legal}
            exact = [a for a, n in names.items() if n == t]
            if len(exact) == 1:
                return exact[0]
            low = t.lower()
            folded = [a for a, n in names.items() if n.lower() == low or n.split()[-1].lower() == low
                      or n.rstrip("+#").lower() == low.rstrip("+#")]
            if len(folded) == 1:
                return folded[0]
            uci = self._uci_names(legal).get(low)
            if uci is not None:
                return uci
            try:  # OpenSpiel's own parser knows more spellings (e.g. chess SAN variants)
                with _quiet_stderr():
                    a = int(self.pyspiel_state.string_to_action(t))
                if a in self._legal_lookup():
                    return a
            except pyspiel.SpielError:
                pass
        detail = "the game is over" if self.pyspiel_state.is_terminal() else "legal moves shown in the game's notation"
        raise IllegalActionError(self.game.name, text, [self.pyspiel_state.action_to_string(p, a) for a in legal], detail)

    # ------------------------------------------------------------------ views
    def observation_tensor(self, player: int | None = None) -> np.ndarray:
        """The game's observation tensor for ``player`` (default: the player to move, else 0)."""
        shape = self.game.observation_tensor_shape()
        p = self._view_player(player)
        return np.asarray(self.pyspiel_state.observation_tensor(p), dtype=np.float32).reshape(shape)

    def observation_string(self, player: int | None = None) -> str:
        if not self.game.game_type.provides_observation_string:
            raise PlygroundError(f"{self.game.name} provides no observation string")
        return self.pyspiel_state.observation_string(self._view_player(player))

    def _view_player(self, player: int | None) -> int:
        if player is None:
            p = self.pyspiel_state.current_player()
            return p if p >= 0 else 0
        if not 0 <= int(player) < self.game.num_players():
            raise PlygroundError(f"player {player} is not one of {list(range(self.game.num_players()))}")
        return int(player)

    def serialize(self) -> str:
        return self.pyspiel_state.serialize()

    def __str__(self) -> str:
        return str(self.pyspiel_state)

    def __repr__(self) -> str:
        return f"<{self.game.name} after {self.history()}>"
