"""Shared test helpers: the solved connect-four positions shipped with the package, random positions."""

from __future__ import annotations

import random

import pytest


def solved_positions() -> list[tuple[str, int]]:
    """The 280 ``(MOVES, SCORE)`` rows of the positions file shipped in ``plyground.search``'s data."""
    from plyground.search.bench_alphabeta import load_positions
    return load_positions()


@pytest.fixture(scope="session")
def c4_solved() -> list[tuple[str, int]]:
    return solved_positions()


def after_random_plies(name: str, plies: int, seed: int = 0):
    """The state of game ``name`` after up to ``plies`` uniformly random moves (fewer if it ends)."""
    from plyground import games
    s = games.make(name).new_initial_state()
    rng = random.Random(seed)
    for _ in range(plies):
        if s.is_terminal():
            break
        s.apply_action(rng.choice(s.legal_actions()))
    return s


def random_positions(game, count: int, plies: tuple[int, int], seed: int) -> list:
    """``count`` non-terminal states reached by uniformly random play of ``plies`` (a range) moves."""
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        s = game.new_initial_state()
        for _ in range(rng.randrange(*plies)):
            if s.is_terminal():
                break
            s.apply_action(rng.choice(s.legal_actions()))
        if not s.is_terminal():
            out.append(s)
    return out
