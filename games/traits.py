"""What kind of game a game is: players, chance, hidden information, utilities.

Agents read these to refuse a game up front (``Agent.check_game``), engines to scale values into
[-1, 1], and summaries to know whether a win/draw/loss score means anything.

>>> from plyground import games
>>> t = traits(games.make("connect4"))
>>> (t.num_players, t.perfect_information, t.chance, t.utility, t.min_utility, t.max_utility)
(2, True, False, 'zero_sum', -1.0, 1.0)
>>> t = traits(games.make("openspiel:leduc_poker"))
>>> (t.perfect_information, t.chance, t.min_utility, t.max_utility)
(False, True, -13.0, 13.0)
>>> t.scale(-13.0), t.scale(0.0), t.scale(6.5)
(-1.0, 0.0, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GameTraits", "traits", "ZERO_SUM", "CONSTANT_SUM", "GENERAL_SUM", "IDENTICAL"]

ZERO_SUM, CONSTANT_SUM, GENERAL_SUM, IDENTICAL = "zero_sum", "constant_sum", "general_sum", "identical"


@dataclass(frozen=True)
class GameTraits:
    """``utility`` is one of ``zero_sum``, ``constant_sum``, ``general_sum``, ``identical``
    (OpenSpiel's classification); ``min_utility``/``max_utility`` bound every player's return."""

    name: str
    num_players: int
    chance: bool
    perfect_information: bool
    simultaneous: bool
    utility: str
    min_utility: float
    max_utility: float

    @property
    def win_draw_loss(self) -> bool:
        """True when comparing two players' returns is a win, a draw or a loss (zero- and
        constant-sum two-player games); general-sum and identical-interest games have no such score."""
        return self.num_players == 2 and self.utility in (ZERO_SUM, CONSTANT_SUM)

    def scale(self, r: float) -> float:
        """A return mapped linearly from [min_utility, max_utility] to [-1, 1] (clipped)."""
        lo, hi = self.min_utility, self.max_utility
        if not hi > lo:
            return 0.0
        v = 2.0 * (float(r) - lo) / (hi - lo) - 1.0
        return -1.0 if v < -1.0 else 1.0 if v > 1.0 else v


_CACHE: dict[tuple[str, str], GameTraits] = {}


def traits(game) -> GameTraits:
    """The traits of a plyground game (native, ``OpenSpielGame``, ``PettingZooGame``) or a raw pyspiel game;
    computed once per game (engines ask per leaf, e.g. to scale a return)."""
    key = (type(game).__name__, getattr(game, "name", None) or str(game))
    t = _CACHE.get(key)
    if t is None:
        t = _CACHE[key] = _traits(game)
    return t


def _traits(game) -> GameTraits:
    twin = getattr(game, "twin_game", None)
    if twin is not None:  # PettingZoo: the env plays the twin's rules
        t = traits(twin)
        return GameTraits(game.name, t.num_players, t.chance, t.perfect_information, t.simultaneous, t.utility,
                          t.min_utility, t.max_utility)
    ps = getattr(game, "pyspiel_game", None)
    if ps is None and hasattr(game, "get_type"):
        ps = game
    if ps is not None:
        import pyspiel
        gt = ps.get_type()
        utility = {pyspiel.GameType.Utility.ZERO_SUM: ZERO_SUM,
                   pyspiel.GameType.Utility.CONSTANT_SUM: CONSTANT_SUM,
                   pyspiel.GameType.Utility.IDENTICAL: IDENTICAL}.get(gt.utility, GENERAL_SUM)
        name = getattr(game, "name", None) or "openspiel:" + str(ps)
        return GameTraits(
            name=name, num_players=int(ps.num_players()),
            chance=gt.chance_mode != pyspiel.GameType.ChanceMode.DETERMINISTIC,
            perfect_information=gt.information == pyspiel.GameType.Information.PERFECT_INFORMATION,
            simultaneous=gt.dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS,
            utility=utility, min_utility=float(ps.min_utility()), max_utility=float(ps.max_utility()))
    # native games: two-player, zero-sum, perfect information, returns in {-1, 0, 1}
    return GameTraits(name=getattr(game, "name", str(game)), num_players=int(game.num_players()), chance=False,
                      perfect_information=True, simultaneous=False, utility=ZERO_SUM, min_utility=-1.0,
                      max_utility=1.0)
