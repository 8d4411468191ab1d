"""PettingZoo classic envs played with the env as referee and a twin rules model for search.

>>> from plyground import games
>>> game = games.make("pettingzoo:classic/connect_four_v3")
>>> state = game.new_initial_state()          # holds a live env (the referee) and the twin state
>>> state.apply_action(3); state.current_player()
1

Design:

- A live ``PettingZooState`` holds the env and the state of its *twin* (``PETTINGZOO_TWINS``):
  every action goes to both, and after every ply the two must agree on whose turn it is, the
  legal set (the env's ``action_mask`` against the twin's legal actions, translated), the board,
  and at the end on terminality and returns; a disagreement raises ``TwinMismatchError``.
  Terminal flag and returns of a live state are the env's (the referee's).
- Action numbers are the env's own (chess: PettingZoo's 8x8x73 encoding, not OpenSpiel's; go:
  rows from the top, not from the bottom).  The twin's numbers stay inside (``state.twin``).
- ``clone()`` never copies the env (``copy.deepcopy`` of a classic env silently gives a fresh,
  un-reset env).  It returns a *detached* state: the twin plus the referee's extra rules, no env,
  which is what search needs.  ``refereed_clone()`` replays the history on a fresh env instead.
- Player ids are the env's agent order: ``possible_agents[0]`` is player 0 (chess: white,
  go: black), whatever the twin calls them.
- The referee's rules where the twin differs, applied to every state (live or detached):
  chess_v6 ends the game as soon as a draw can be *claimed* (threefold repetition reachable
  with one move, fifty-move rule at 99 half-moves with a quiet move available) and on
  python-chess's insufficient material; OpenSpiel chess only draws automatically.  go_v5 has no
  move limit, so its twin's ``max_game_length`` is raised to 10*N*N (OpenSpiel's default 2*N*N
  ends random games early); a tie counts as a white win in go_v5.
"""

from __future__ import annotations

import collections
import importlib
import inspect
import operator
from typing import Any

import numpy as np
import pettingzoo

from plyground.games.errors import IllegalActionError, PlygroundError, UnknownGameError

__all__ = ["PettingZooGame", "PettingZooState", "PETTINGZOO_TWINS", "TwinMismatchError",
           "chess_move_to_action", "chess_action_to_move"]

TERMINAL_PLAYER = -4
_GO_LENGTH_FACTOR = 10  # twin go's max_game_length = 10 * N * N (random 19x19 games reach ~3.5 N*N)


def _go_twin(board_size: int = 19, komi: float = 7.5) -> str:
    return (f"openspiel:go(board_size={board_size},komi={komi},"
            f"max_game_length={_GO_LENGTH_FACTOR * board_size * board_size})")


# The env each name refers to, and the rules model that searches it.
PETTINGZOO_TWINS: dict[str, str] = {
    "classic/connect_four_v3": "connect4",
    "classic/tictactoe_v3": "tictactoe",
    "classic/chess_v6": "openspiel:chess",
    "classic/go_v5": _go_twin(),
}


class TwinMismatchError(PlygroundError):
    """The referee (the env) and the twin rules model disagree about a position."""


# ====================================================================== chess action encoding
# PettingZoo's chess_v6 numbers a move AlphaZero-style: (file * 8 + rank) * 73 + plane, seen from
# the mover's side (ranks mirrored for black).  Planes 0-55: queen-like moves, 8 directions x
# distance 1-7 (plane = (distance - 1) * 8 + direction); 56-63: knight jumps; 64-72: under-
# promotions (3 pawn directions x knight/bishop/rook).  A queen promotion is a plain queen-like move.
_QUEEN_DIRS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if (dx, dy) != (0, 0)]
_KNIGHT_JUMPS = [(dx, dy) for dx in (-2, -1, 0, 1, 2) for dy in (-2, -1, 0, 1, 2) if abs(dx) + abs(dy) == 3]
_UNDER = "nbr"
_FILES = "abcdefgh"


def _sign(v: int) -> int:
    return (v > 0) - (v < 0)


def chess_move_to_action(uci: str, white_to_move: bool) -> int:
    """PettingZoo chess_v6's action number of a move in coordinate notation (``e2e4``, ``e7e8n``)."""
    f0, r0 = _FILES.index(uci[0]), int(uci[1]) - 1
    f1, r1 = _FILES.index(uci[2]), int(uci[3]) - 1
    promo = uci[4:5].lower()
    if not white_to_move:
        r0, r1 = 7 - r0, 7 - r1
    dx, dy = f1 - f0, r1 - r0
    if (dx, dy) in _KNIGHT_JUMPS:
        plane = 56 + _KNIGHT_JUMPS.index((dx, dy))
    elif promo and promo != "q":
        plane = 64 + 3 * (dx + 1) + _UNDER.index(promo)
    else:
        plane = (max(abs(dx), abs(dy)) - 1) * 8 + _QUEEN_DIRS.index((_sign(dx), _sign(dy)))
    return (f0 * 8 + r0) * 73 + plane


def chess_action_to_move(action: int, white_to_move: bool) -> str:
    """The coordinate notation of a PettingZoo chess_v6 action (a queen promotion reads as a plain move)."""
    if not 0 <= action < 8 * 8 * 73:
        raise ValueError(f"chess_v6 action {action} is not in 0..4671")
    square, plane = divmod(action, 73)
    f0, r0 = divmod(square, 8)
    promo = ""
    if plane < 56:
        dist, d = divmod(plane, 8)
        dx, dy = _QUEEN_DIRS[d]
        dx, dy = dx * (dist + 1), dy * (dist + 1)
    elif plane < 64:
        dx, dy = _KNIGHT_JUMPS[plane - 56]
    else:
        k, p = divmod(plane - 64, 3)
        dx, dy, promo = k - 1, 1, _UNDER[p]
    f1, r1 = f0 + dx, r0 + dy
    if not white_to_move:
        r0, r1 = 7 - r0, 7 - r1
    if not (0 <= f1 < 8 and 0 <= r1 < 8):
        return f"{_FILES[f0]}{r0 + 1}-off-board"
    return f"{_FILES[f0]}{r0 + 1}{_FILES[f1]}{r1 + 1}{promo}"


# ====================================================================== rules models
class _Rules:
    """How one env maps onto its twin: players, action numbers, board check, extra end rules."""

    env_id = ""
    module = ""
    rule_params: tuple[str, ...] = ()  # env constructor parameters that change the rules

    def __init__(self, env_kwargs: dict[str, Any]) -> None:
        self.env_kwargs = env_kwargs

    def twin_name(self) -> str:
        return PETTINGZOO_TWINS[self.env_id]

    # players: env index <-> twin id
    def twin_player(self, p: int) -> int:
        return p

    def env_player(self, twin_p: int) -> int:
        return twin_p

    def env_returns(self, twin_returns: list[float]) -> list[float]:
        return [twin_returns[self.twin_player(i)] for i in range(2)]

    # actions: arithmetic maps by default
    def to_twin(self, a: int) -> int:
        return a

    def to_env(self, t: int) -> int:
        return t

    def legal_map(self, twin, extra) -> dict[int, int]:
        """Env action -> twin action for every legal move of the player to move."""
        return {self.to_env(t): t for t in twin.legal_actions()}

    def twin_action_any(self, twin, extra, a: int) -> int | None:
        """The twin's number of env action ``a`` even if illegal (None if it has none)."""
        return self.to_twin(a)

    def describe(self, twin, a: int) -> str:
        return f"action {a}"

    # extra per-state data (chess: position keys for the repetition rule)
    def new_extra(self, twin):
        return None

    def after_apply(self, twin, extra):
        return extra

    def copy_extra(self, extra):
        return extra

    def referee_result(self, twin, extra) -> list[float] | None:
        """Env-ordered returns if the referee ends a game the twin would continue, else None."""
        return None

    def env_legal(self, env, agent: str) -> set[int]:
        """The referee's legal actions: the env's own ``action_mask``."""
        return set(np.flatnonzero(np.asarray(env.observe(agent)["action_mask"])).tolist())

    def board_mismatch(self, env, twin, extra) -> str | None:
        return None

    def before_step(self, env) -> None:
        """Anything the env needs before ``step`` (go: its module-level board size)."""

    def render(self, twin, extra) -> str:
        return str(twin)


class _ConnectFourRules(_Rules):
    env_id = "classic/connect_four_v3"
    module = "pettingzoo.classic.connect_four.connect_four"

    def board_mismatch(self, env, twin, extra):
        # env: 42 cells row-major from the top, 1/2 = player_0/player_1; twin: rows from the top, x/o.
        ours = [{"x": 1, "o": 2, ".": 0}[ch] for ch in str(twin).replace("\n", "")]
        theirs = [int(v) for v in env.unwrapped.board]
        return None if ours == theirs else f"board {theirs} vs twin {ours}"


class _TicTacToeRules(_Rules):
    env_id = "classic/tictactoe_v3"
    module = "pettingzoo.classic.tictactoe.tictactoe"

    # tictactoe_v3 numbers cells column by column (0 3 6 / 1 4 7 / 2 5 8); the twin row by row.
    def to_twin(self, a: int) -> int:
        return (a % 3) * 3 + a // 3

    def to_env(self, t: int) -> int:
        return (t % 3) * 3 + t // 3

    def board_mismatch(self, env, twin, extra):
        rows = str(twin).split("\n")
        ours = [{"x": 1, "o": 2, ".": 0}[rows[i % 3][i // 3]] for i in range(9)]
        theirs = [int(v) for v in env.unwrapped.board.squares]
        return None if ours == theirs else f"squares {theirs} vs twin {ours}"


class _GoRules(_Rules):
    env_id = "classic/go_v5"
    module = "pettingzoo.classic.go.go"
    rule_params = ("board_size", "komi")

    def __init__(self, env_kwargs):
        super().__init__(env_kwargs)
        self.n = int(env_kwargs.get("board_size", 19))
        self.komi = float(env_kwargs.get("komi", 7.5))

    def twin_name(self) -> str:
        return _go_twin(self.n, self.komi)

    # go_v5: (row from the top) * N + col, N*N = pass; OpenSpiel: (row from the bottom) * N + col.
    def to_twin(self, a: int) -> int:
        n = self.n
        if a == n * n:
            return a
        r, c = divmod(a, n)
        return (n - 1 - r) * n + c

    to_env = to_twin  # the flip is its own inverse

    def twin_action_any(self, twin, extra, a):
        return self.to_twin(a) if 0 <= a <= self.n * self.n else None

    def before_step(self, env):
        # go_v5 keeps the board size in module globals that every new env overwrites: put ours
        # back, so that live games of different sizes can be played side by side.
        from pettingzoo.classic.go import go_base
        if go_base.N != self.n:
            env.unwrapped._overwrite_go_global_variables(board_size=self.n)

    def env_returns(self, twin_returns):
        if twin_returns[0] == 0.0:  # go_v5 scores a tie as a white win
            return [-1.0, 1.0]
        return list(twin_returns)

    def board_mismatch(self, env, twin, extra):
        n = self.n
        board = np.flipud(np.asarray(env.unwrapped._go.board)).ravel()
        obs = twin.observation_tensor(0).reshape(-1, n * n)
        ours = np.where(obs[0] > 0, 1, np.where(obs[1] > 0, -1, 0))
        if np.array_equal(board, ours):
            return None
        return f"stones differ at env points {sorted(self.to_env(int(i)) for i in np.flatnonzero(board != ours))}"


class _ChessRules(_Rules):
    env_id = "classic/chess_v6"
    module = "pettingzoo.classic.chess.chess"
    _WINDOW = 101  # positions since the last pawn move or capture that can still repeat

    # OpenSpiel chess: player 0 is black, 1 is white; chess_v6: player_0 is white.
    def twin_player(self, p):
        return 1 - p

    def env_player(self, twin_p):
        return 1 - twin_p

    @staticmethod
    def _white(twin) -> bool:
        return twin.pyspiel_state.current_player() == 1

    def legal_map(self, twin, extra):
        import pyspiel
        board = twin.pyspiel_state.board()
        white = self._white(twin)
        return {chess_move_to_action(pyspiel.chess.action_to_move(t, board).to_lan(), white): t
                for t in twin.legal_actions()}

    def twin_action_any(self, twin, extra, a):
        return self.legal_map(twin, extra).get(a)

    def describe(self, twin, a):
        return chess_action_to_move(a, self._white(twin))

    @staticmethod
    def _key(twin) -> str:
        # FEN without the move counters: the position for the repetition rule.  OpenSpiel writes the
        # en-passant square only when a capture is possible, exactly as python-chess's EPD does.
        return twin.pyspiel_state.board().to_fen().rsplit(" ", 2)[0]

    def new_extra(self, twin):
        return [self._key(twin)]

    def after_apply(self, twin, extra):
        extra.append(self._key(twin))
        if len(extra) > self._WINDOW:
            del extra[0]
        return extra

    def copy_extra(self, extra):
        return list(extra)

    def referee_result(self, twin, extra):
        """chess_v6 ends on python-chess's insufficient material or any claimable draw."""
        import chess
        fen = twin.pyspiel_state.board().to_fen()
        placement, _, _, _, halfmoves, _ = fen.split(" ")
        draw = [0.0, 0.0]
        board = None
        if not any(ch in placement for ch in "pPrRqQ"):
            board = chess.Board(fen)
            if board.is_insufficient_material():
                return draw
        h = int(halfmoves)
        if h >= 100:
            return draw
        window = extra[-(h + 1):]
        counts = collections.Counter(window)
        if counts[window[-1]] >= 3:
            return draw
        maybe_repeat = any(v >= 2 for v in counts.values())
        if h >= 99 or maybe_repeat:
            board = board or chess.Board(fen)
            for move in board.generate_legal_moves():
                if h >= 99 and not board.is_zeroing(move):
                    return draw
                if maybe_repeat:
                    board.push(move)
                    repeated = counts[board.epd()] >= 2
                    board.pop()
                    if repeated:
                        return draw
        return None

    def env_legal(self, env, agent):
        # What chess_v6's observe() puts in the action_mask, without also building its 8x8x111 planes.
        from pettingzoo.classic.chess import chess_utils
        return set(chess_utils.legal_moves(env.unwrapped.board))

    def board_mismatch(self, env, twin, extra):
        theirs = env.unwrapped.board.epd()
        return None if theirs == extra[-1] else f"position {theirs!r} vs twin {extra[-1]!r}"

    def render(self, twin, extra):
        import chess
        fen = twin.pyspiel_state.board().to_fen()
        return f"{chess.Board(fen)}\n{fen}"


_RULES: dict[str, type[_Rules]] = {r.env_id: r for r in (_ConnectFourRules, _TicTacToeRules, _GoRules, _ChessRules)}


def _canonical_env_id(name: str) -> str | None:
    n = name.strip().replace(".", "/")
    if n in _RULES:
        return n
    if "/" not in n and "classic/" + n in _RULES:
        return "classic/" + n
    return None


# ====================================================================== the Game
class PettingZooGame:
    """A PettingZoo classic env with its twin; states hold a live env as referee."""

    def __init__(self, env_id: str, rules: _Rules) -> None:
        from plyground.games import make
        self.env_id = env_id
        self.rules = rules
        shown = {k: v for k, v in rules.env_kwargs.items() if k in rules.rule_params}
        self.name = "pettingzoo:" + env_id + (
            "(" + ",".join(f"{k}={v}" for k, v in sorted(shown.items())) + ")" if shown else "")
        self.twin_game = make(rules.twin_name())
        probe = self.make_env()
        self.possible_agents: list[str] = list(probe.possible_agents)
        self._num_actions = int(probe.action_space(self.possible_agents[0]).n)
        probe.close()

    @classmethod
    def load(cls, env_name: str, **env_kwargs) -> "PettingZooGame":
        """``load("classic/chess_v6")``; ``env_kwargs`` go to the env (go: ``board_size``, ``komi``)."""
        env_id = _canonical_env_id(env_name) if isinstance(env_name, str) else None
        if env_id is None:
            raise UnknownGameError("pettingzoo:" + str(env_name), ["pettingzoo:" + n for n in PETTINGZOO_TWINS],
                                   "only PettingZoo envs with a twin rules model can be refereed")
        rules_cls = _RULES[env_id]
        module = importlib.import_module(rules_cls.module)
        allowed = [p for p in inspect.signature(module.raw_env.__init__).parameters if p != "self"]
        unknown = sorted(set(env_kwargs) - set(allowed))
        if unknown:
            raise PlygroundError(f"pettingzoo:{env_id} takes no parameter(s) {unknown}; allowed: {allowed}")
        return cls(env_id, rules_cls(dict(env_kwargs)))

    def make_env(self):
        """A fresh, reset env, made through PettingZoo's registry (``pettingzoo.make("aec", ...)``)."""
        env = pettingzoo.make("aec", self.env_id, **self.rules.env_kwargs)
        env.reset()
        return env

    def num_players(self) -> int:
        return 2

    def num_distinct_actions(self) -> int:
        return self._num_actions

    def max_game_length(self) -> int:
        return self.twin_game.max_game_length()

    def observation_tensor_shape(self) -> list[int]:
        """The twin's observation tensor (``PettingZooState.env_observation`` gives the env's own)."""
        return self.twin_game.observation_tensor_shape()

    def warm_up(self) -> None:
        """Load what the twin rules model needs (a native twin's numba kernels) before any timed move."""
        warm = getattr(self.twin_game, "warm_up", None)
        if warm is not None:
            warm()

    def new_initial_state(self, referee: bool = True) -> "PettingZooState":
        """The start; ``referee=False`` gives a detached (twin-only) state without an env."""
        twin = self.twin_game.new_initial_state()
        state = PettingZooState(self, twin, self.make_env() if referee else None, [],
                                self.rules.new_extra(twin))
        if referee:
            state._check_agreement()
        return state

    def deserialize_state(self, text: str) -> "PettingZooState":
        """Replay ``serialize()`` output (env action numbers, one a line) on a fresh env."""
        state = self.new_initial_state()
        for i, tok in enumerate(str(text).split()):
            try:
                a = int(tok)
            except ValueError:
                raise PlygroundError(f"cannot deserialize {self.name} state: {tok!r} is not an action number") from None
            try:
                state.apply_action(a)
            except IllegalActionError as e:
                raise PlygroundError(f"cannot deserialize {self.name} state: action {i} ({a}) is illegal: {e}") from None
        return state

    def __repr__(self) -> str:
        return f"PettingZooGame({self.name!r}, twin={self.twin_game.name!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, PettingZooGame) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("pettingzoo", self.name))


_UNKNOWN = object()


# ====================================================================== the State
class PettingZooState:
    """A position: the twin state, plus the live env if this state is refereed (``env``)."""

    __slots__ = ("game", "twin", "env", "_history", "_extra", "_lmap", "_outcome_cache")

    def __init__(self, game: PettingZooGame, twin, env, history: list[int], extra) -> None:
        self.game = game
        self.twin = twin
        self.env = env
        self._history = history
        self._extra = extra
        self._lmap: dict[int, int] | None = None
        self._outcome_cache: Any = _UNKNOWN

    @property
    def refereed(self) -> bool:
        """True if a live env referees this state (False for clones made for search)."""
        return self.env is not None

    # ------------------------------------------------------------------ the rules (twin + referee rules)
    def _legal_map(self) -> dict[int, int]:
        if self._lmap is None:
            self._lmap = {} if self._outcome() is not None else self.game.rules.legal_map(self.twin, self._extra)
        return self._lmap

    def env_action(self, twin_action: int) -> int:
        """The env's number for a legal move given in the twin's numbering (e.g. a twin's bot's choice)."""
        for a, tw in self._legal_map().items():
            if tw == twin_action:
                return a
        raise IllegalActionError(self.game.name, twin_action, sorted(self._legal_map().values()),
                                 "not a legal move in the twin's numbering")

    def _outcome(self) -> list[float] | None:
        """Env-ordered returns if the game is over under the referee's rules (via the twin), else None."""
        if self._outcome_cache is _UNKNOWN:
            rules = self.game.rules
            if self.twin.is_terminal():
                self._outcome_cache = rules.env_returns(self.twin.returns())
            else:
                self._outcome_cache = rules.referee_result(self.twin, self._extra)
        return self._outcome_cache

    def _env_over(self) -> bool:
        env = self.env
        return any(env.terminations.values()) or any(env.truncations.values())

    def _env_returns(self) -> list[float]:
        return [float(self.env.rewards[a]) for a in self.game.possible_agents]

    def _mismatch(self, what: str) -> TwinMismatchError:
        h = self._history
        shown = h if len(h) <= 40 else ["..."] + h[-40:]
        return TwinMismatchError(f"{self.game.name}: the env (referee) and its twin {self.game.twin_game.name} "
                                 f"disagree after {len(h)} plies {shown}: {what}")

    def _check_agreement(self) -> None:
        """Compare the env with the twin: terminal flag and returns, or player, legal set and board."""
        env, rules = self.env, self.game.rules
        outcome = self._outcome()
        env_over = self._env_over()
        if env_over != (outcome is not None):
            raise self._mismatch(f"env terminal={env_over}, twin terminal={outcome is not None}"
                                 + (f" (twin returns {outcome})" if outcome is not None else ""))
        if env_over:
            env_ret = self._env_returns()
            if env_ret != outcome:
                raise self._mismatch(f"env returns {env_ret}, twin returns {outcome}")
            return
        agent = env.agent_selection
        env_p = self.game.possible_agents.index(agent)
        twin_p = rules.env_player(self.twin.current_player())
        if env_p != twin_p:
            raise self._mismatch(f"env says player {env_p} ({agent}) moves, twin says player {twin_p}")
        env_legal = rules.env_legal(env, agent)
        twin_legal = set(self._legal_map())
        if env_legal != twin_legal:
            raise self._mismatch(f"legal actions differ: only env {sorted(env_legal - twin_legal)}, "
                                 f"only twin {sorted(twin_legal - env_legal)}")
        bad = rules.board_mismatch(env, self.twin, self._extra)
        if bad:
            raise self._mismatch(bad)

    # ------------------------------------------------------------------ the State API
    def current_player(self) -> int:
        """The env's agent index to move (0 = ``possible_agents[0]``), ``-4`` when terminal."""
        if self.is_terminal():
            return TERMINAL_PLAYER
        return self.game.rules.env_player(self.twin.current_player())

    def is_chance_node(self) -> bool:
        """Always False: the refereed classic envs have no chance events."""
        return False

    def chance_outcomes(self) -> list[tuple[int, float]]:
        return []

    def is_terminal(self) -> bool:
        if self.env is not None:
            return self._env_over()
        return self._outcome() is not None

    def returns(self) -> list[float]:
        """Per player (env order): the env's rewards when refereed, else the twin's under the referee's rules."""
        if self.env is not None:
            return self._env_returns() if self._env_over() else [0.0, 0.0]
        out = self._outcome()
        return list(out) if out is not None else [0.0, 0.0]

    def legal_actions(self, player: int | None = None) -> list[int]:
        """Legal actions in the env's numbering, ascending."""
        if player is not None and player != self.current_player():
            return []
        return sorted(self._legal_map())

    def apply_action(self, action: int) -> None:
        """Play ``action`` (env numbering) on the twin and, if refereed, on the env; then check they agree."""
        try:
            a = operator.index(action)
        except TypeError:
            raise IllegalActionError(self.game.name, action, self.legal_actions(), "not an integer") from None
        lmap = self._legal_map()
        if a not in lmap:
            detail = "the game is over" if self.is_terminal() else "legal moves: " + ", ".join(
                self.action_to_string(x) for x in sorted(lmap)[:60])
            raise IllegalActionError(self.game.name, action, sorted(lmap), detail)
        self.twin.apply_action(lmap[a])
        self._extra = self.game.rules.after_apply(self.twin, self._extra)
        self._history.append(a)
        self._lmap = None
        self._outcome_cache = _UNKNOWN
        if self.env is not None:
            self.game.rules.before_step(self.env)
            self.env.step(a)
            self._check_agreement()

    def child(self, action: int) -> "PettingZooState":
        c = self.clone()
        c.apply_action(action)
        return c

    def clone(self) -> "PettingZooState":
        """A detached copy (twin + referee rules, no env): cheap, independent, for search."""
        c = PettingZooState(self.game, self.twin.clone(), None, list(self._history),
                            self.game.rules.copy_extra(self._extra))
        c._outcome_cache = self._outcome_cache
        return c

    def refereed_clone(self) -> "PettingZooState":
        """A copy with its own live env: the history replayed on a fresh env, checked every ply."""
        state = self.game.new_initial_state(referee=True)
        for a in self._history:
            state.apply_action(a)
        return state

    def history(self) -> list[int]:
        return list(self._history)

    def move_number(self) -> int:
        return len(self._history)

    # ------------------------------------------------------------------ notation
    def action_to_string(self, *args: int) -> str:
        """``action_to_string(action)`` or ``action_to_string(player, action)``, in the twin's notation."""
        if len(args) == 1:
            player, action = self.current_player(), args[0]
        elif len(args) == 2:
            player, action = args
        else:
            raise TypeError("action_to_string(action) or action_to_string(player, action)")
        n = self.game.num_distinct_actions()
        if not 0 <= int(action) < n:
            raise IllegalActionError(self.game.name, action, range(n), "out of the action range")
        a = int(action)
        rules = self.game.rules
        t = self._legal_map().get(a)
        if t is None:
            t = rules.twin_action_any(self.twin, self._extra, a)
        if t is None:
            return rules.describe(self.twin, a)
        p = player if player >= 0 else len(self._history) % 2
        return self.twin.action_to_string(rules.twin_player(p), t)

    def string_to_action(self, text: str) -> int:
        """Parse a move in the twin's notation (chess: SAN or ``e2e4``; go: ``d4``/``pass``)."""
        lmap = self._legal_map()
        try:
            t = self.twin.string_to_action(text)
        except IllegalActionError as e:
            raise IllegalActionError(self.game.name, text, e.legal, "legal moves shown in the game's notation") from None
        back = {tw: a for a, tw in lmap.items()}
        if t not in back:
            raise IllegalActionError(self.game.name, text, [self.action_to_string(a) for a in sorted(lmap)],
                                     "legal moves shown in the game's notation")
        return back[t]

    # ------------------------------------------------------------------ views
    def observation_tensor(self, player: int | None = None) -> np.ndarray:
        """The twin's observation tensor for ``player`` (env numbering; default: the player to move)."""
        if player is None:
            p = self.current_player()
            player = p if p >= 0 else 0
        return self.twin.observation_tensor(self.game.rules.twin_player(int(player)))

    def env_observation(self, player: int | None = None) -> dict:
        """The env's own observation dict (``observation``, ``action_mask``) for ``player``."""
        if self.env is None:
            raise PlygroundError(f"{self.game.name}: a detached state (a clone) has no env; use refereed_clone()")
        agents = self.game.possible_agents
        agent = self.env.agent_selection if player is None else agents[int(player)]
        return self.env.observe(agent)

    def serialize(self) -> str:
        return "\n".join(str(a) for a in self._history) + "\n"

    def __str__(self) -> str:
        return self.game.rules.render(self.twin, self._extra)

    def __repr__(self) -> str:
        kind = "refereed" if self.env is not None else "detached"
        return f"<{self.game.name} ({kind}) after {self._history}>"
