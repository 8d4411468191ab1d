"""Schedules: the seed fixes them, ids are stable and unique, colours are balanced, Swiss pairs by standings."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import pytest

from plyground import games
from plyground.arena.config import config_from_dict
from plyground.arena.schedule import schedule, swiss_round, total_games

AGENTS = ["random", "minimax:depth=1", "minimax:depth=2", "mcts:sims=10", "mcts:sims=20"]


def cfg(**kw):
    return config_from_dict({"game": "connect4", "agents": AGENTS, **kw})


def test_round_robin_every_pairing_plays_its_games_in_colour_swapped_pairs():
    c = cfg(games_per_pairing=4, openings={"random_plies": 3})
    s = schedule(c)
    assert len(s) == total_games(c) == 10 * 4
    assert len({g.id for g in s}) == len(s)
    per_pairing = Counter(frozenset(g.seats) for g in s)
    assert set(per_pairing) == {frozenset(p) for p in combinations(range(5), 2)}
    assert set(per_pairing.values()) == {4}
    by_pair: dict[int, list] = {}
    for g in s:
        by_pair.setdefault(g.pair, []).append(g)
    assert len(by_pair) == 20
    for a, b in by_pair.values():
        assert a.seats == b.seats[::-1] and a.opening == b.opening and len(a.opening) == 3
        state = games.make("connect4").new_initial_state()
        for x in a.opening:  # the opening is legal and leaves the game open
            state.apply_action(x)
        assert not state.is_terminal()
    first = Counter(g.seats[0] for g in s)
    assert set(first.values()) == {8}  # every agent moves first in half its games


def test_the_seed_fixes_the_schedule_and_seeds_differ_per_game():
    a, b, c = schedule(cfg(seed=5)), schedule(cfg(seed=5)), schedule(cfg(seed=6))
    assert a == b
    assert [g.id for g in a] != [g.id for g in c]
    assert len({g.seed for g in a}) == len(a)
    assert all(g.id.startswith(cfg(seed=5).id + "-r") for g in a)


def test_unpaired_games_alternate_seats():
    s = schedule(cfg(games_per_pairing=3, colour_swap=False))
    assert all(g.pair is None for g in s) and len(s) == 30
    for pairing in combinations(range(5), 2):
        firsts = sorted(g.seats[0] for g in s if set(g.seats) == set(pairing))
        assert firsts in ([pairing[0]] * 2 + [pairing[1]], [pairing[0]] + [pairing[1]] * 2)


def test_gauntlet_plays_only_the_gauntlet_agents_against_the_rest():
    c = cfg(format="gauntlet", gauntlet=["minimax:depth=2"], games_per_pairing=2)
    s = schedule(c)
    assert len(s) == 4 * 2 == total_games(c)
    assert all(2 in g.seats for g in s)


def test_opening_list_is_assigned_to_pairs_in_order():
    c = cfg(openings={"moves": ["44", "17"]}, games_per_pairing=4)
    openings = [g.opening for g in schedule(c)]
    assert Counter(openings) == {(3, 3): 20, (0, 6): 20}


def test_swiss_pairs_by_standings_without_rematches():
    c = cfg(format="swiss", rounds=3, games_per_pairing=2, agents=AGENTS[:4])
    r0 = swiss_round(c, 0, {})
    assert len(r0) == 2 * 2 and len({g.id for g in r0}) == 4
    with pytest.raises(ValueError, match="round 0"):
        swiss_round(c, 1, {})
    # results: seat 0 always wins -> each pair is split 1-1; then make the lower-indexed agent win both
    results = {}
    for g in r0:
        results[g.id] = [1.0, -1.0] if g.seats[0] < g.seats[1] else [-1.0, 1.0]
    r1 = swiss_round(c, 1, results)
    met0 = {frozenset(g.seats) for g in r0}
    met1 = {frozenset(g.seats) for g in r1}
    assert not met0 & met1, "no rematch while new opponents remain"
    winners = {min(p) for p in met0}
    assert any(p <= winners for p in met1), "the two round-0 winners meet in round 1"
    assert swiss_round(c, 1, results) == r1  # deterministic given seed + results


def test_swiss_odd_number_gives_byes_to_different_players():
    c = cfg(format="swiss", rounds=3, games_per_pairing=2, agents=AGENTS[:3])
    results, sitting_out = {}, []
    for r in range(3):
        games_r = swiss_round(c, r, results)
        assert len(games_r) == 2
        sitting_out.append(({0, 1, 2} - set(games_r[0].seats)).pop())
        results.update({g.id: [0.0, 0.0] for g in games_r})
    assert len(set(sitting_out)) == 3
