"""What a player may see: the state an agent is handed.

``player_view(state, player)`` is what the arena gives an agent to move from.  In a
perfect-information game it is a clone of the state.  In an imperfect-information game (OpenSpiel's
poker, liar's dice, phantom tic-tac-toe, dark hex, bridge, ...) it is a ``PlayerView``: a read-only
object that answers only what ``player`` (the *viewer*) can see.

>>> from plyground import games
>>> s = games.make("openspiel:kuhn_poker").new_initial_state()
>>> for a in (2, 0): s.apply_action(a)          # deal: player 0 gets the king, player 1 the jack
>>> v = player_view(s, 0)
>>> v.is_view, v.player, v.current_player(), v.legal_actions()
(True, 0, 0, [0, 1])
>>> v.information_state_string()
'2'
>>> str(v) == s.observation_string(0)
True

The view API
------------
- ``game``, ``player`` (the viewer), ``is_view = True``;
- ``current_player()``, ``is_terminal()``, ``is_chance_node()`` (always False: a view is made at a
  player node), ``returns()`` (terminal only); whose turn it is is taken to be public;
- ``legal_actions()`` — the viewer's legal actions when it is to move (another player's legal
  actions can reveal what it knows, so asking for them is an error);
- ``action_to_string(action)`` / ``action_to_string(player, action)`` and ``string_to_action(text)``
  for the viewer's own actions;
- ``move_number()`` — the number of moves the *viewer* has made (the total number of moves can be
  hidden: in phantom tic-tac-toe the opponent's attempts on occupied cells are);
- ``observation_string()``, ``observation_tensor()``, ``information_state_string()``,
  ``information_state_tensor()`` for the viewer (``PlygroundError`` where the game has none);
- ``information_key()`` — hashable, equal for two states exactly when the viewer's information is:
  the information-state string where the game provides one, else the viewer's trace (below);
- ``observed_moves()`` — the moves the viewer saw, oldest first, as ``(player, action, text)``:
  its own moves and the chance outcomes and opponent moves it can tell apart from every
  alternative; moves it cannot see are left out without a trace (their number can be hidden too);
- ``history()`` raises ``PlygroundError``: the true history holds hidden chance outcomes and
  opponent moves (use ``information_key()`` or ``observed_moves()``);
- ``sample(rng)`` — a full ``OpenSpielState`` consistent with the viewer's information (below);
- ``str(view)`` is the viewer's observation (its information state where there is no observation
  string), never the full state; ``clone()`` returns the view itself (it is immutable) and
  ``apply_action`` is an error: sample a state to play on.

The view keeps a private snapshot of the true state, which its methods use only to answer for the
viewer and which the samplers use as described below.

Sampling (``PlayerView.sample(rng)``, ``rng`` a ``random.Random``)
------------------------------------------------------------------
A sample is a full state whose information for the viewer equals the true one: the viewer's
information-state string (observation string in games without one) and its legal actions are the
same, so an engine may clone it, play it out and search it like any state.  Two samplers:

- **resample**: OpenSpiel's ``State.resample_from_infostate(player, sampler)``, where the game
  implements it and a probe (``samplable``) finds it correct: its samples match the viewer's
  information, and two true states with the same information give the same samples for one seed.
  OpenSpiel's implementations draw the hidden cards (kuhn, leduc, universal poker, ...) uniformly
  among those the viewer does not see and replay the public actions.
- **replay** (every other game): the viewer's *trace* is read off the true history: the sequence of
  its own actions and of the changes of its information (information-state string, else
  observation string), in order; how many unseen moves lie between two changes is not part of it.
  A sample is built forward from the initial state by a randomized depth-first search: the
  viewer's own actions are played as in the trace; at a chance node an outcome is drawn with its
  probability among the outcomes after which the viewer's information either stays the same (an
  unseen outcome) or becomes the next change of the trace; at another player's node an action is
  drawn uniformly among the actions with the same property (so an opponent move the viewer can
  tell apart from the alternatives is the true one).  At a dead end (e.g. in latent tic-tac-toe the
  viewer's next move reveals an opponent move the sample did not make) the search backs up to the
  latest step with untried alternatives and draws again among them.  It ends at the first state
  where the trace is used up and the player to move (or the end of the game) is the true one;
  after ``max_nodes`` candidate moves tried in vain it raises ``SamplingError``.

Both samplers condition only on the viewer's information (its trace; the information state
itself for resample), so the sample depends only on ``rng`` and what the viewer knows.  Both
assume a **uniform opponent model**: opponent moves the viewer did not see are drawn uniformly
(replay) and hidden cards uniformly over the deck (resample) — the opponent's actual policy,
which would make some hidden cards likelier given the betting, is not modelled.  The replay
sampler is not an exact posterior even under that model: each hidden step is drawn in proportion
to its probability among the steps that have at least one consistent continuation, which equals
the posterior when those steps keep equally much probability of consistent continuations open
(kuhn's deal: the opponent's card is uniform over the two the viewer does not hold) and
approximates it otherwise (no importance weights).  In games whose information-state string
forgets (OpenSpiel's ``*_ir`` imperfect-recall variants) the trace holds more than that string,
and the samples follow the trace.

``samplable(game)`` says up front whether views of a game can be sampled (``None``) or why not: a
deterministic probe of a few random positions (a fixed seed), cached per game name.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import numpy as np

from plyground.games.errors import PlygroundError, UnsupportedGameError

__all__ = ["player_view", "PlayerView", "samplable", "sampler_kind", "SamplingError", "MAX_NODES"]

MAX_NODES = 200_000          # candidate moves the replay sampler may try per sample before SamplingError
_PROBE_SEED = 20261202       # the fixed seed of samplable()'s random positions
_PROBE_DEPTHS = (0, 1, 3, 6, 12, 24, 48)  # player moves of random play before a probed position
_PROBE_BUDGET = 40_000      # candidate moves the replay probe may try over all positions (bounds its time)

RESAMPLE, REPLAY = "resample", "replay"


class SamplingError(PlygroundError):
    """No full state consistent with the viewer's information was found within the search budget."""


def _imperfect(game) -> bool:
    gtype = getattr(game, "game_type", None)
    if gtype is None:  # native and PettingZoo games are all perfect-information here
        return False
    import pyspiel
    return gtype.information != pyspiel.GameType.Information.PERFECT_INFORMATION


def player_view(state, player: int):
    """The state as ``player`` may see it: a clone in a perfect-information game, else a
    ``PlayerView`` (read-only; see the module docstring)."""
    if not _imperfect(state.game):
        return state.clone()
    return PlayerView(state, player)


# ---------------------------------------------------------------------------------------- helpers
def _quiet():
    from plyground.games.openspiel_game import _quiet_stderr
    return _quiet_stderr()


def _info_function(game) -> tuple[str, Callable[[Any, int], str]]:
    """What the viewer's information is read from: ``("infostate", f)`` or ``("observation", f)``."""
    gt = game.game_type
    if gt.provides_information_state_string:
        return "infostate", lambda ps, p: ps.information_state_string(p)
    if gt.provides_observation_string:
        return "observation", lambda ps, p: ps.observation_string(p)
    raise UnsupportedGameError(f"{game.name} provides neither an information-state nor an observation "
                               "string, so no player's view of it can be formed")


def _safe_info(info, ps, p):
    """The viewer's information, or a marker where the game cannot give it (e.g. some games at the end)."""
    import pyspiel
    try:
        return info(ps, p)
    except (pyspiel.SpielError, RuntimeError):
        return ("unavailable", ps.is_terminal())


def _trace(game, true_ps, viewer: int) -> tuple[tuple, Any]:
    """The viewer's trace along the true history: ``("a", action)`` for its own actions and
    ``("i", info)`` for each change of its information, in order; and the final information."""
    _, info = _info_function(game)
    ps = game.pyspiel_game.new_initial_state()
    cur = _safe_info(info, ps, viewer)
    events: list[tuple] = []
    for a in true_ps.history():
        if ps.current_player() == viewer:
            events.append(("a", int(a)))
        ps.apply_action(a)
        new = _safe_info(info, ps, viewer)
        if new != cur:
            events.append(("i", new))
            cur = new
    return tuple(events), cur


# ------------------------------------------------------------------------------------ the view
class PlayerView:
    """A read-only view of an OpenSpiel state for one player; see the module docstring."""

    is_view = True
    __slots__ = ("game", "player", "_state", "_trace", "_observed")

    def __init__(self, state, player: int) -> None:
        ps = getattr(state, "pyspiel_state", None)
        if ps is None:
            raise UnsupportedGameError(f"player views of imperfect-information games need an OpenSpiel state; "
                                       f"got {type(state).__name__} of {getattr(state.game, 'name', state.game)}")
        n = state.game.num_players()
        try:
            p = int(player)
        except (TypeError, ValueError):
            raise PlygroundError(f"player {player!r} is not one of {list(range(n))}") from None
        if not 0 <= p < n or isinstance(player, bool):
            raise PlygroundError(f"player {player!r} is not one of {list(range(n))}")
        if ps.is_chance_node():
            raise PlygroundError(f"{state.game.name}: a view is made at a player node or the end of the game, "
                                 "not at a chance node")
        self.game = state.game
        self.player = p
        self._state = state.clone()
        self._trace = None
        self._observed = None

    # ------------------------------------------------------------------ public game flow
    def current_player(self) -> int:
        return self._state.current_player()

    def is_terminal(self) -> bool:
        return self._state.is_terminal()

    def is_chance_node(self) -> bool:
        return False

    def returns(self) -> list[float]:
        if not self._state.is_terminal():
            raise PlygroundError("returns() of a view: the game is not over (the returns so far can "
                                 "depend on hidden information)")
        return self._state.returns()

    def _check_viewer(self, player, what: str) -> int:
        if player is None:
            return self.player
        if player != self.player:
            raise PlygroundError(f"{what} of player {player!r} is not visible to player {self.player} "
                                 f"(a view answers for its viewer only)")
        return self.player

    def _check_to_move(self, what: str) -> None:
        p = self._state.current_player()
        if p != self.player:
            who = "nobody (the game is over)" if self._state.is_terminal() else f"player {p}"
            raise PlygroundError(f"{what}: player {self.player}'s view, but {who} is to move")

    def legal_actions(self, player: int | None = None) -> list[int]:
        """The viewer's legal actions when it is to move (``[]`` at the end of the game)."""
        self._check_viewer(player, "legal_actions")
        if self._state.is_terminal():
            return []
        self._check_to_move("legal_actions")
        return self._state.legal_actions()

    def action_to_string(self, *args: int) -> str:
        """``action_to_string(action)`` or ``action_to_string(player, action)`` for the viewer's actions."""
        if len(args) == 1:
            player, action = self.player, args[0]
        elif len(args) == 2:
            player, action = args
            self._check_viewer(player, "action_to_string")
        else:
            raise TypeError("action_to_string(action) or action_to_string(player, action)")
        return self._state.action_to_string(self.player, action)

    def string_to_action(self, text: str) -> int:
        self._check_to_move("string_to_action")
        return self._state.string_to_action(text)

    def move_number(self) -> int:
        """The number of moves the viewer has made (the total can be hidden)."""
        return sum(1 for e in self._get_trace()[0] if e[0] == "a")

    # ------------------------------------------------------------------ what the viewer sees
    def _require(self, flag: str, what: str) -> None:
        if not getattr(self.game.game_type, flag):
            raise PlygroundError(f"{self.game.name} provides no {what}")

    def observation_string(self, player: int | None = None) -> str:
        p = self._check_viewer(player, "observation_string")
        self._require("provides_observation_string", "observation string")
        return self._state.pyspiel_state.observation_string(p)

    def observation_tensor(self, player: int | None = None) -> np.ndarray:
        p = self._check_viewer(player, "observation_tensor")
        self._require("provides_observation_tensor", "observation tensor")
        return self._state.observation_tensor(p)

    def information_state_string(self, player: int | None = None) -> str:
        p = self._check_viewer(player, "information_state_string")
        self._require("provides_information_state_string", "information-state string")
        return self._state.pyspiel_state.information_state_string(p)

    def information_state_tensor(self, player: int | None = None) -> np.ndarray:
        p = self._check_viewer(player, "information_state_tensor")
        self._require("provides_information_state_tensor", "information-state tensor")
        shape = list(self.game.pyspiel_game.information_state_tensor_shape())
        return np.asarray(self._state.pyspiel_state.information_state_tensor(p), dtype=np.float32).reshape(shape)

    def _get_trace(self):
        if self._trace is None:
            with _quiet():
                self._trace = _trace(self.game, self._state.pyspiel_state, self.player)
        return self._trace

    def information_key(self):
        """Equal for two states of this game exactly when the viewer's information is the same."""
        if self.game.game_type.provides_information_state_string:
            return self.information_state_string()
        return self._get_trace()[0]

    def observed_moves(self) -> list[tuple[int, int, str]]:
        """The moves the viewer saw, oldest first, as ``(player, action, text)`` (player -1: chance).

        A move of chance or of another player counts as seen when every other legal alternative
        would have left the viewer with different information.  Unseen moves are left out."""
        if self._observed is None:
            _, info = _info_function(self.game)
            ps = self.game.pyspiel_game.new_initial_state()
            seen: list[tuple[int, int, str]] = []
            for a in self._state.pyspiel_state.history():
                p = ps.current_player()
                if p == self.player:
                    visible = True
                else:
                    alternatives = [b for b in ps.legal_actions() if b != a]
                    after = _safe_info(info, ps.child(a), self.player)
                    visible = bool(alternatives) and all(
                        _safe_info(info, ps.child(b), self.player) != after for b in alternatives)
                if visible:
                    with _quiet():
                        seen.append((int(p), int(a), ps.action_to_string(p, a)))
                ps.apply_action(a)
            self._observed = seen
        return list(self._observed)

    def history(self):
        raise PlygroundError("a player's view has no history(): the true history holds hidden chance "
                             "outcomes and opponent moves; use information_key() to identify the "
                             "viewer's information or observed_moves() for the moves it saw")

    def __str__(self) -> str:
        gt = self.game.game_type
        if gt.provides_observation_string:
            return self.observation_string()
        return self.information_state_string()

    def __repr__(self) -> str:
        return f"<view of {self.game.name} for player {self.player}>"

    # ------------------------------------------------------------------ read-only
    def clone(self) -> "PlayerView":
        return self

    def apply_action(self, action) -> None:
        raise PlygroundError("a PlayerView is read-only: use sample(rng) for a full state to play on")

    def child(self, action):
        raise PlygroundError("a PlayerView is read-only: use sample(rng) for a full state to play on")

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: random.Random, max_nodes: int = MAX_NODES):
        """A full ``OpenSpielState`` drawn from the states consistent with the viewer's information
        (see the module docstring for the samplers and their assumptions)."""
        if not isinstance(rng, random.Random):
            raise PlygroundError(f"sample(rng): rng must be a random.Random; got {type(rng).__name__}")
        why = samplable(self.game)
        if why is not None:
            raise UnsupportedGameError(f"views of {self.game.name} cannot be sampled: {why}")
        kind = sampler_kind(self.game)
        if kind == RESAMPLE:
            ps = _resample(self._state.pyspiel_state, self.player, rng)
        else:
            events, _ = self._get_trace()
            with _quiet():
                ps = _replay(self.game, self.player, events, self._end_player(), rng, max_nodes)
            if ps is None:
                raise SamplingError(f"{self.game.name}: no state consistent with player {self.player}'s "
                                    f"information found after trying {max_nodes} moves")
        return self.game.wrap_state(ps)

    def _end_player(self) -> int:
        return self._state.current_player()


def _resample(true_ps, viewer: int, rng: random.Random):
    with _quiet():
        return true_ps.resample_from_infostate(viewer, rng.random)


def _replay(game, viewer: int, events: tuple, end_player: int, rng: random.Random, max_nodes: int,
            budget: list[int] | None = None):
    """The replay sampler (module docstring): a randomized depth-first search for a state that
    follows the viewer's trace, or None when ``max_nodes`` candidate moves were tried in vain (or
    the one-item list ``budget``, shared between calls, runs out)."""
    _, info = _info_function(game)
    pgame = game.pyspiel_game
    max_depth = 4 * max(1, pgame.max_game_length()) + 16
    n = len(events)
    left = [max_nodes]

    def spend(k: int) -> bool:
        left[0] -= k
        if budget is not None:
            budget[0] -= k
            if budget[0] < 0:
                return False
        return left[0] >= 0

    def expand(ps, e: int, cur):
        """The consistent children of ``ps`` as ``(child, e, info, weight)``, or None: out of budget."""
        p = ps.current_player()
        if p == viewer:
            if e == n or events[e][0] != "a" or events[e][1] not in ps.legal_actions():
                return []
            if not spend(1):
                return None
            c = ps.child(events[e][1])
            new = _safe_info(info, c, viewer)
            if new == cur:
                return [(c, e + 1, cur, 1.0)]
            if e + 1 < n and events[e + 1] == ("i", new):
                return [(c, e + 2, new, 1.0)]
            return []
        options = ps.chance_outcomes() if ps.is_chance_node() else [(a, 1.0) for a in ps.legal_actions()]
        if not spend(len(options)):
            return None
        nxt = events[e][1] if e < n and events[e][0] == "i" else None
        out = []
        for a, prob in options:
            c = ps.child(a)
            new = _safe_info(info, c, viewer)
            if new == cur:
                out.append((c, e, cur, prob))
            elif nxt is not None and new == nxt:
                out.append((c, e + 1, new, prob))
        return out

    root = pgame.new_initial_state()
    stack = [[(root, 0, _safe_info(info, root, viewer), 1.0)]]   # untried alternatives per depth
    while stack:
        alternatives = stack[-1]
        if not alternatives:
            stack.pop()
            continue
        if len(alternatives) == 1:
            i = 0
        else:
            i = rng.choices(range(len(alternatives)), weights=[w for *_, w in alternatives])[0]
        ps, e, cur, _ = alternatives.pop(i)
        if e == n and ps.current_player() == end_player:
            return ps
        if ps.is_terminal() or len(stack) > max_depth:
            continue
        children = expand(ps, e, cur)
        if children is None:
            return None
        stack.append(children)
    return None


# ------------------------------------------------------------------------------------ probing
_KIND: dict[str, tuple[str | None, str | None]] = {}


def _probe_positions(game, rng: random.Random) -> list:
    """Positions of random play (fixed seed) at the player nodes ``_PROBE_DEPTHS`` player moves in,
    copied from one playthrough (a new one where a game ends early)."""
    out = []
    ps = game.pyspiel_game.new_initial_state()
    moves, games_played = 0, 1
    for depth in _PROBE_DEPTHS:
        while True:
            if ps.is_terminal():
                if games_played >= 3:
                    return out
                ps, moves, games_played = game.pyspiel_game.new_initial_state(), 0, games_played + 1
            if ps.is_chance_node():
                outcomes = ps.chance_outcomes()
                ps.apply_action(rng.choices([a for a, _ in outcomes], weights=[p for _, p in outcomes])[0])
                continue
            if moves >= depth:
                break
            ps.apply_action(rng.choice(ps.legal_actions()))
            moves += 1
        if ps.current_player() >= 0:
            out.append(ps.clone())
    return out


def _same_info(game, a, b, viewer: int) -> bool:
    _, info = _info_function(game)
    if _safe_info(info, a, viewer) != _safe_info(info, b, viewer):
        return False
    if a.current_player() != b.current_player():
        return False
    return a.is_terminal() or a.current_player() != viewer or list(a.legal_actions()) == list(b.legal_actions())


def _probe(game) -> tuple[str | None, str | None]:
    """(sampler kind, None) or (None, why no sampler works) for ``game``."""
    import pyspiel
    if not _imperfect(game):
        return None, f"{game.name} is a perfect-information game: its views are clones, nothing to sample"
    try:
        _info_function(game)
    except UnsupportedGameError as e:
        return None, str(e)
    rng = random.Random(_PROBE_SEED)
    try:
        positions = _probe_positions(game, rng)
    except Exception as e:  # noqa: BLE001 - any failure of the game's own code makes it unsamplable
        return None, f"random play failed: {str(e).strip()[:120]}"
    if not positions:
        return None, "random play reached no player node to probe"
    # resample_from_infostate: implemented, consistent, and blind to the hidden part
    resample_ok, why_not = True, ""
    for ps in positions:
        p = ps.current_player()
        try:
            s1 = _resample(ps, p, random.Random(1))
            s2 = _resample(s1, p, random.Random(1))
            same = _same_info(game, s1, ps, p) and _same_info(game, s2, ps, p)
        except Exception as e:  # noqa: BLE001
            resample_ok, why_not = False, f"resample_from_infostate: {str(e).strip()[:120]}"
            break
        if not same:
            resample_ok, why_not = False, "resample_from_infostate gives states with other information"
            break
        if s1.history() != s2.history():
            resample_ok, why_not = False, "resample_from_infostate depends on the hidden part of the state"
            break
    if resample_ok:
        return RESAMPLE, None
    if game.game_type.chance_mode == pyspiel.GameType.ChanceMode.SAMPLED_STOCHASTIC:
        return None, (f"{why_not}; the replay sampler needs the chance outcomes listed with their "
                      "probabilities, and this game samples its chance events")
    budget = [_PROBE_BUDGET]
    for ps in positions:
        p = ps.current_player()
        try:
            events, _ = _trace(game, ps, p)
            s = _replay(game, p, events, p, random.Random(1), _PROBE_BUDGET, budget)
            same = s is not None and _same_info(game, s, ps, p)
        except Exception as e:  # noqa: BLE001
            return None, f"{why_not}; the replay sampler failed: {str(e).strip()[:120]}"
        if s is None:
            return None, (f"{why_not}; the replay sampler found no consistent state within its probe budget "
                          f"({_PROBE_BUDGET} candidate moves in all) after "
                          f"{ps.move_number()} moves: too many hidden moves to match by search")
        if not same:
            return None, f"{why_not}; the replay sampler gave a state with other information"
    return REPLAY, None


def _probe_cached(game) -> tuple[str | None, str | None]:
    key = game.name
    if key not in _KIND:
        with _quiet():
            _KIND[key] = _probe(game)
    return _KIND[key]


def samplable(game) -> str | None:
    """None if views of ``game`` can be sampled, else the reason (cached per game name)."""
    return _probe_cached(game)[1]


def sampler_kind(game) -> str | None:
    """``"resample"`` (OpenSpiel's ``resample_from_infostate``), ``"replay"`` or None (not samplable)."""
    return _probe_cached(game)[0]
