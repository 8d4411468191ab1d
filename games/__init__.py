"""The rules: one State/Game API with OpenSpiel's names over native, OpenSpiel and PettingZoo games.

>>> from plyground import games
>>> state = games.make("connect4").new_initial_state()
>>> state.apply_action(3); state.current_player()
1

Names: ``tictactoe`` and ``connect4`` (numba-native), ``openspiel:<game string>`` (any pyspiel
game, e.g. ``openspiel:hex(board_size=5)``) and ``pettingzoo:<env>`` (e.g.
``pettingzoo:classic/connect_four_v3``: the env is the referee).  The adapters are imported
lazily so that a native game never pays for OpenSpiel's or PettingZoo's import.
"""

from __future__ import annotations

from plyground.games.errors import IllegalActionError, PlygroundError, UnknownGameError

__all__ = [
    "make", "list_games", "make_env", "play_moves",
    "IllegalActionError", "PlygroundError", "UnknownGameError",
]

OPENSPIEL_PREFIX = "openspiel:"
PETTINGZOO_PREFIX = "pettingzoo:"


def _native_names() -> list[str]:
    from plyground.games.native.state import NATIVE_GAMES
    return list(NATIVE_GAMES)


def list_games() -> list[str]:
    """Every name ``make`` takes: the native games, the PettingZoo envs we referee, and the
    OpenSpiel games (each as ``openspiel:<short name>``)."""
    from plyground.games.pettingzoo_game import PETTINGZOO_TWINS
    import pyspiel
    names = list(_native_names())
    names += [PETTINGZOO_PREFIX + n for n in PETTINGZOO_TWINS]
    names += [OPENSPIEL_PREFIX + n for n in sorted(pyspiel.registered_names())]
    return names


def make(name: str, **params):
    """A ``Game`` by name; ``params`` go to OpenSpiel games (``make("openspiel:hex", board_size=5)``)."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownGameError(repr(name), _native_names() + [OPENSPIEL_PREFIX + "<game>", PETTINGZOO_PREFIX + "<env>"])
    name = name.strip()
    if name.startswith(OPENSPIEL_PREFIX):
        from plyground.games.openspiel_game import OpenSpielGame
        return OpenSpielGame.load(name[len(OPENSPIEL_PREFIX):], **params)
    if name.startswith(PETTINGZOO_PREFIX):
        from plyground.games.pettingzoo_game import PettingZooGame
        return PettingZooGame.load(name[len(PETTINGZOO_PREFIX):], **params)
    from plyground.games.native.state import NATIVE_GAMES, make_native
    if name in NATIVE_GAMES:
        if params:
            raise PlygroundError(f"game {name!r} takes no parameters; got {sorted(params)}")
        return make_native(name)
    raise UnknownGameError(name, _native_names() + [OPENSPIEL_PREFIX + "<game>", PETTINGZOO_PREFIX + "<env>"],
                           "OpenSpiel games need the prefix, e.g. openspiel:chess")


def make_env(name: str, **kwargs):
    """A native game as a PettingZoo AEC env with ``action_mask`` observations."""
    from plyground.games.pettingzoo_env import make_env as _make_env
    return _make_env(name, **kwargs)


def play_moves(game, moves: str):
    """The state after ``moves`` from the start: the game's notation separated by spaces or commas
    (``"e2e4 e7e5"``), or for compact games such as connect4 one character a move (``"4453"``)."""
    state = game.new_initial_state()
    text = moves.strip()
    if not text:
        return state
    tokens = text.replace(",", " ").split()
    spec = getattr(game, "spec", None)
    if spec is not None and spec.compact_moves and len(tokens) == 1:
        tokens = list(tokens[0])
    for tok in tokens:
        state.apply_action(state.string_to_action(tok))
    return state
