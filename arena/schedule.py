"""The schedule: which agents play which game, in which seats, with which opening and seed.

Everything is a pure function of the config (its seed included): every game gets a stable id
``f"{tournament_id}-r{round:03d}-g{index:04d}"`` and a per-game seed derived from the tournament
seed and that id, so a game's result does not depend on the worker or the order it ran in.
Swiss rounds after the first are paired from the standings in the record so far, which makes them
a deterministic function of the seed and the earlier rounds' results.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from itertools import combinations
from typing import Iterable, Mapping, Sequence

from plyground.arena.config import TournamentConfig


@dataclass(frozen=True)
class ScheduledGame:
    """One game of the schedule: ``seats`` are agent indices into ``config.agents`` (seat 0 moves first)."""

    id: str
    round: int
    index: int
    pair: int | None
    seats: tuple[int, int]
    seed: int
    opening: tuple[int, ...]


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any parts (e.g. the tournament seed and a game id), stable across runs and machines."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def game_id(tournament_id: str, round: int, index: int) -> str:
    """The stable id of the ``index``-th game of ``round``."""
    return f"{tournament_id}-r{round:03d}-g{index:04d}"


class _Openings:
    """Openings for pairs (or unpaired games): a fixed list assigned in order or at random, or random plies."""

    def __init__(self, cfg: TournamentConfig) -> None:
        self.cfg = cfg
        self._game = None

    def for_key(self, key: int) -> tuple[int, ...]:
        cfg = self.cfg
        if cfg.opening_moves:
            if cfg.opening_order == "random":
                return cfg.opening_moves[random.Random(derive_seed(cfg.seed, "opening", key)).randrange(
                    len(cfg.opening_moves))]
            return cfg.opening_moves[key % len(cfg.opening_moves)]
        if cfg.opening_plies <= 0:
            return ()
        if self._game is None:
            from plyground import games
            self._game = games.make(cfg.game)
        rng = random.Random(derive_seed(cfg.seed, "opening", key))
        for _ in range(1000):  # redraw if the random plies end the game
            state = self._game.new_initial_state()
            actions: list[int] = []
            while len(actions) < cfg.opening_plies and not state.is_terminal():
                a = rng.choice(state.legal_actions())
                state.apply_action(a)
                actions.append(int(a))
            if not state.is_terminal():
                return tuple(actions)
        from plyground.games.errors import PlygroundError
        raise PlygroundError(f"openings.random_plies={cfg.opening_plies} ends every sampled {cfg.game} game; use fewer")


def _pair_games(cfg: TournamentConfig, tid: str, rnd: int, start_index: int, pair_base: int,
                pairing: tuple[int, int], first: int, openings: _Openings) -> list[ScheduledGame]:
    """The games one pairing plays in one round: colour-swapped pairs, or single games alternating seats."""
    a, b = pairing
    out = []
    idx = start_index
    if cfg.colour_swap:
        for k in range(cfg.games_per_pairing // 2):
            pair = pair_base + k
            opening = openings.for_key(pair)
            order = [(a, b), (b, a)] if (first + k) % 2 == 0 else [(b, a), (a, b)]
            for seats in order:
                gid = game_id(tid, rnd, idx)
                out.append(ScheduledGame(gid, rnd, idx, pair, seats, derive_seed(cfg.seed, gid), opening))
                idx += 1
    else:
        for k in range(cfg.games_per_pairing):
            gid = game_id(tid, rnd, idx)
            seats = (a, b) if (first + k) % 2 == 0 else (b, a)
            out.append(ScheduledGame(gid, rnd, idx, None, seats, derive_seed(cfg.seed, gid),
                                     openings.for_key(derive_seed("game", gid))))
            idx += 1
    return out


def _pairings(cfg: TournamentConfig) -> list[tuple[int, int]]:
    n = len(cfg.agents)
    if cfg.format == "gauntlet":
        names = [a.name for a in cfg.agents]
        g = [names.index(x) for x in cfg.gauntlet]
        return [(i, j) for i in g for j in range(n) if j not in g]
    return list(combinations(range(n), 2))


def schedule(cfg: TournamentConfig, tournament_id: str | None = None) -> list[ScheduledGame]:
    """Every game of a round-robin or gauntlet tournament, in playing order.

    Each pairing plays one colour-swapped pair (or one game) per round, the pairings of a round in a
    seeded order, until ``games_per_pairing`` is reached.  Swiss: use ``swiss_round``.
    """
    if cfg.format == "swiss":
        raise ValueError("a swiss tournament is scheduled round by round: use swiss_round()")
    tid = tournament_id or cfg.id
    pairings = _pairings(cfg)
    per_round = 2 if cfg.colour_swap else 1
    n_rounds = cfg.games_per_pairing // per_round
    openings = _Openings(cfg)
    out: list[ScheduledGame] = []
    pair_counter = 0
    for rnd in range(n_rounds):
        order = list(range(len(pairings)))
        random.Random(derive_seed(cfg.seed, "round", rnd)).shuffle(order)
        idx = 0
        for p in order:
            games = _pair_games(_with_gpp(cfg, per_round), tid, rnd, idx, pair_counter, pairings[p], rnd, openings)
            out.extend(games)
            idx += len(games)
            pair_counter += 1 if cfg.colour_swap else 0
    return out


def _with_gpp(cfg: TournamentConfig, gpp: int) -> TournamentConfig:
    from dataclasses import replace
    return cfg if cfg.games_per_pairing == gpp else replace(cfg, games_per_pairing=gpp)


def total_games(cfg: TournamentConfig) -> int:
    """How many games the tournament schedules in all (Swiss: rounds x pairings x games per pairing)."""
    n = len(cfg.agents)
    if cfg.format == "swiss":
        return (cfg.rounds or 1) * (n // 2) * cfg.games_per_pairing
    return len(_pairings(cfg)) * cfg.games_per_pairing


# ---- Swiss --------------------------------------------------------------------------------------

def score_by_seat(returns: Sequence[float]) -> tuple[float, float]:
    """Points of seat 0 and seat 1 from per-seat returns: 1 for the higher return, 0.5 each if equal.
    Meaningful in two-player zero- and constant-sum games only (``traits(game).win_draw_loss``): in a
    general-sum or identical-interest game a higher return is not a win (see arena/outcomes.py)."""
    if returns[0] > returns[1]:
        return 1.0, 0.0
    if returns[0] < returns[1]:
        return 0.0, 1.0
    return 0.5, 0.5


def _pair_swiss(order: list[int], played: set[frozenset]) -> list[tuple[int, int]] | None:
    """Top-down pairing in standings order avoiding rematches (backtracking); None if impossible."""
    if not order:
        return []
    top, rest = order[0], order[1:]
    for k, other in enumerate(rest):
        if frozenset((top, other)) in played:
            continue
        sub = _pair_swiss(rest[:k] + rest[k + 1:], played)
        if sub is not None:
            return [(top, other)] + sub
    return None


def swiss_round(cfg: TournamentConfig, rnd: int, results: Mapping[str, Sequence[float]],
                tournament_id: str | None = None) -> list[ScheduledGame]:
    """The games of Swiss round ``rnd``, paired from ``results`` (game id -> per-seat returns) of rounds < rnd.

    Standings: points (win 1, draw 0.5, bye 1), ties broken by a seeded order.  The top player meets
    the highest-placed opponent it has not met yet (rematches only when unavoidable); with an odd
    number of agents the lowest-placed player without a bye sits out.  Raises if an earlier round is
    unfinished.
    """
    tid = tournament_id or cfg.id
    n = len(cfg.agents)
    tiebreak = list(range(n))
    random.Random(derive_seed(cfg.seed, "swiss-order")).shuffle(tiebreak)
    rank0 = {a: k for k, a in enumerate(tiebreak)}
    points = [0.0] * n
    firsts = [0] * n
    played: set[frozenset] = set()
    byes: set[int] = set()
    openings = _Openings(cfg)
    pairs_per_round = (n // 2) * (cfg.games_per_pairing // 2 if cfg.colour_swap else 0)
    games: list[ScheduledGame] = []
    for r in range(rnd + 1):
        order = sorted(range(n), key=lambda i: (-points[i], rank0[i]))
        bye = None
        if n % 2:
            bye = next((i for i in reversed(order) if i not in byes), order[-1])
            order.remove(bye)
        pairs = _pair_swiss(order, played) or [(order[k], order[k + 1]) for k in range(0, len(order), 2)]
        games = []
        idx = 0
        for p, (a, b) in enumerate(pairs):
            # the player who has moved first less often moves first; ties: the higher-placed on even rounds
            first = 0 if firsts[a] < firsts[b] else 1 if firsts[a] > firsts[b] else r % 2
            g = _pair_games(cfg, tid, r, idx, r * pairs_per_round + p * (cfg.games_per_pairing // 2),
                            (a, b), first, openings)
            games.extend(g)
            idx += len(g)
        if r == rnd:
            return games
        for g in games:  # fold this earlier round's results into the standings
            if g.id not in results:
                raise ValueError(f"swiss round {rnd} needs round {r} finished; game {g.id} has no result")
            s0, s1 = score_by_seat(results[g.id])
            points[g.seats[0]] += s0
            points[g.seats[1]] += s1
            firsts[g.seats[0]] += 1
        for a, b in pairs:
            played.add(frozenset((a, b)))
        if bye is not None:
            byes.add(bye)
            points[bye] += 1.0
    return games


def standings(cfg: TournamentConfig, results: Iterable[tuple[Sequence[int], Sequence[float]]]) -> list[float]:
    """Points per agent index from (seats, returns) pairs."""
    pts = [0.0] * len(cfg.agents)
    for seats, rets in results:
        s0, s1 = score_by_seat(rets)
        pts[seats[0]] += s0
        pts[seats[1]] += s1
    return pts
