"""The Python face of a native game: ``NativeGame`` and ``NativeState`` over a kernel module."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

import numpy as np

from plyground.games.errors import IllegalActionError, PlygroundError
from plyground.games.native import connect4 as _c4
from plyground.games.native import tictactoe as _ttt

TERMINAL_PLAYER = -4  # OpenSpiel's PlayerId.TERMINAL


@dataclass(frozen=True)
class NativeSpec:
    """What a native game adds to its kernel: names, notation, rendering, observations."""

    name: str
    kernel: ModuleType
    openspiel_name: str
    description: str
    action_to_string: Callable[[int, int], str]  # (player, action) -> text
    string_to_action: Callable[[str], int | None]  # text -> action, None if not parseable
    render: Callable[[np.ndarray], str]
    observation: Callable[[np.ndarray, int], np.ndarray]
    observation_shape: tuple[int, ...]
    # Notation for a whole move list, e.g. connect4's "4453" (one character per move).
    compact_moves: bool = False


# ---------------------------------------------------------------- tic-tac-toe
def _ttt_cells(s: np.ndarray) -> list[str]:
    return ["x" if (s[_ttt.X] >> i) & 1 else "o" if (s[_ttt.O] >> i) & 1 else "." for i in range(9)]


def _ttt_render(s: np.ndarray) -> str:
    c = _ttt_cells(s)
    return "\n".join("".join(c[r * 3:r * 3 + 3]) for r in range(3))


def _ttt_observation(s: np.ndarray, player: int) -> np.ndarray:
    # OpenSpiel's layout: planes [empty, o, x], each 3x3 row-major.
    obs = np.zeros((3, 3, 3), dtype=np.float32)
    for i, ch in enumerate(_ttt_cells(s)):
        obs[{".": 0, "o": 1, "x": 2}[ch], i // 3, i % 3] = 1.0
    return obs


def _ttt_to_string(player: int, action: int) -> str:
    return f"{'xo'[player]}({action // 3},{action % 3})"


_TTT_RE = re.compile(r"^\s*[xo]?\s*\(?\s*([0-2])\s*,\s*([0-2])\s*\)?\s*$", re.I)


def _ttt_from_string(text: str) -> int | None:
    m = _TTT_RE.match(text)
    if m:
        return int(m.group(1)) * 3 + int(m.group(2))
    t = text.strip()
    if t.isdigit() and len(t) == 1:
        return int(t)
    return None


# ---------------------------------------------------------------- connect four
_C4_BITS = np.array([[1 << (c * _c4.H1 + r) for c in range(_c4.WIDTH)] for r in range(_c4.HEIGHT)], dtype=np.int64)


def _c4_grid(s: np.ndarray) -> np.ndarray:
    """6x7 grid, rows bottom to top: 0 empty, 1 x (player 0), 2 o (player 1)."""
    occupied = (_C4_BITS & s[_c4.MASK]) != 0
    mine = (_C4_BITS & s[_c4.CUR]) != 0  # CUR holds the stones of the player to move
    x = mine if (s[_c4.PLY] & 1) == 0 else occupied & ~mine
    return np.where(occupied, np.where(x, 1, 2), 0)


def _c4_render(s: np.ndarray) -> str:
    chars = np.array([".", "x", "o"])[_c4_grid(s)[::-1]]
    return "".join("".join(row) + "\n" for row in chars)


def _c4_observation(s: np.ndarray, player: int) -> np.ndarray:
    # OpenSpiel's layout: planes [x, o, empty], rows bottom to top, 6x7.
    g = _c4_grid(s)
    return np.stack([g == 1, g == 2, g == 0]).astype(np.float32)


def _c4_to_string(player: int, action: int) -> str:
    return str(action + 1)


def _c4_from_string(text: str) -> int | None:
    t = text.strip()
    if len(t) == 1 and t.isdigit() and 1 <= int(t) <= _c4.WIDTH:
        return int(t) - 1
    return None


NATIVE_GAMES: dict[str, NativeSpec] = {
    "tictactoe": NativeSpec(
        name="tictactoe", kernel=_ttt, openspiel_name="tic_tac_toe",
        description="Tic-tac-toe on 3x3; x moves first; three in a row wins. Moves are cells (row,col), 0-based.",
        action_to_string=_ttt_to_string, string_to_action=_ttt_from_string,
        render=_ttt_render, observation=_ttt_observation, observation_shape=(3, 3, 3),
    ),
    "connect4": NativeSpec(
        name="connect4", kernel=_c4, openspiel_name="connect_four",
        description="Connect four on 7 columns x 6 rows; x moves first; four in a row wins. Moves are columns 1-7.",
        action_to_string=_c4_to_string, string_to_action=_c4_from_string,
        render=_c4_render, observation=_c4_observation, observation_shape=(3, 6, 7),
        compact_moves=True,
    ),
}


class NativeGame:
    """A numba-native two-player game; ``new_initial_state()`` gives a ``NativeState``."""

    def __init__(self, spec: NativeSpec) -> None:
        self.spec = spec
        self.kernel = spec.kernel
        self.name = spec.name

    def num_players(self) -> int:
        return 2

    def num_distinct_actions(self) -> int:
        return self.kernel.NUM_ACTIONS

    def max_game_length(self) -> int:
        return self.kernel.MAX_PLIES

    def observation_tensor_shape(self) -> list[int]:
        return list(self.spec.observation_shape)

    def new_initial_state(self) -> "NativeState":
        return NativeState(self, np.array(self.kernel.new_state(), dtype=np.int64), [])

    def warm_up(self) -> None:
        """Load (or compile, on a cold numba cache) every kernel function ``NativeState`` calls, so
        that no timed move pays for it: two plies through the state API."""
        state = self.new_initial_state()
        for _ in range(2):
            if state.is_terminal():
                break
            state.current_player()
            state.apply_action(state.legal_actions()[0])
        state.returns()

    def deserialize_state(self, text: str) -> "NativeState":
        """Rebuild a state from ``serialize()`` output (one action number a line, as OpenSpiel)."""
        state = self.new_initial_state()
        for tok in text.split():
            try:
                a = int(tok)
            except ValueError:
                raise PlygroundError(f"cannot deserialize {self.name} state: {tok!r} is not an action number") from None
            state.apply_action(a)
        return state

    def __repr__(self) -> str:
        return f"NativeGame({self.name!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, NativeGame) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("native", self.name))


class NativeState:
    """A position of a native game: the kernel's position as an int64 array, plus the history."""

    __slots__ = ("game", "array", "_history", "_buf")

    def __init__(self, game: NativeGame, array: np.ndarray, history: list[int]) -> None:
        self.game = game
        self.array = array
        self._history = history
        self._buf = np.empty(game.kernel.NUM_ACTIONS, dtype=np.int64)

    # --- the OpenSpiel-named API
    def current_player(self) -> int:
        if self.game.kernel.is_terminal(self.array):
            return TERMINAL_PLAYER
        return int(self.game.kernel.to_play(self.array))

    def legal_actions(self, player: int | None = None) -> list[int]:
        n = self.game.kernel.legal_actions(self.array, self._buf)
        return self._buf[:n].tolist()

    def is_terminal(self) -> bool:
        return bool(self.game.kernel.is_terminal(self.array))

    def is_chance_node(self) -> bool:
        """Always False: the native games have no chance events."""
        return False

    def chance_outcomes(self) -> list[tuple[int, float]]:
        return []

    def returns(self) -> list[float]:
        r = float(self.game.kernel.returns0(self.array))
        return [r, -r]

    def apply_action(self, action: int) -> None:
        try:
            a = operator.index(action)  # int() would truncate 2.5 and parse "3": nothing silently converted
        except TypeError:
            raise IllegalActionError(self.game.name, action, self.legal_actions(), "not an integer") from None
        legal = self.legal_actions()
        if a not in legal:
            detail = "the game is over" if self.is_terminal() else ""
            raise IllegalActionError(self.game.name, action, legal, detail)
        self.array[:] = self.game.kernel.play(self.array, a)  # the kernel returns the next position
        self._history.append(a)

    def clone(self) -> "NativeState":
        return NativeState(self.game, self.array.copy(), list(self._history))

    def child(self, action: int) -> "NativeState":
        c = self.clone()
        c.apply_action(action)
        return c

    def history(self) -> list[int]:
        return list(self._history)

    def move_number(self) -> int:
        return len(self._history)

    def action_to_string(self, *args: int) -> str:
        """``action_to_string(action)`` or OpenSpiel's ``action_to_string(player, action)``."""
        if len(args) == 1:
            player, action = self.current_player(), args[0]
            if player < 0:
                player = len(self._history) % 2
        elif len(args) == 2:
            player, action = args
        else:
            raise TypeError("action_to_string(action) or action_to_string(player, action)")
        if not 0 <= int(action) < self.game.num_distinct_actions():
            raise IllegalActionError(self.game.name, action, range(self.game.num_distinct_actions()),
                                     "out of the action range")
        return self.game.spec.action_to_string(int(player), int(action))

    def string_to_action(self, text: str) -> int:
        """Parse a move in the game's notation; raises ``IllegalActionError`` if unparseable or illegal."""
        a = self.game.spec.string_to_action(str(text))
        legal = self.legal_actions()
        if a is None or a not in legal:
            raise IllegalActionError(self.game.name, text, [self.action_to_string(x) for x in legal],
                                     "legal moves shown in the game's notation")
        return a

    def observation_tensor(self, player: int | None = None) -> np.ndarray:
        p = self.current_player() if player is None else player
        return self.game.spec.observation(self.array, p)

    def serialize(self) -> str:
        """OpenSpiel's format: one action number a line, each line ending in a newline; a lone newline at the start."""
        return "\n".join(str(a) for a in self._history) + "\n"

    def __str__(self) -> str:
        return self.game.spec.render(self.array)

    def __repr__(self) -> str:
        return f"<{self.game.name} after {self._history}>"


def make_native(name: str) -> NativeGame:
    return NativeGame(NATIVE_GAMES[name])
