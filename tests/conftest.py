"""Shared test helpers: paths to the reference data beside the repository."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """../shared next to the checkout; PLYGROUND_SHARED overrides.  Without either, the copy of its
    data/ kept in tests/ (so a clone anywhere runs every test)."""
    env = os.environ.get("PLYGROUND_SHARED")
    if env:
        return Path(env)
    beside = REPO.parent / "shared"
    return beside if (beside / "data").is_dir() else REPO / "tests"


def solved_positions() -> list[tuple[str, int]]:
    path = shared_dir() / "data" / "connect4_solved_positions.txt"
    if not path.exists():
        pytest.skip(f"reference data not found at {path}")
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            moves, score = line.split()
            rows.append((moves, int(score)))
    return rows


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
