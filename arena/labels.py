"""Judging one move from two values of the mover's view in -1..1: the win chance, the loss, the
label (lichess's thresholds, or the exact game-theoretic change where both values are proven) and
lichess's per-move accuracy.

Engine values here are expected outcomes on -1..1 (a proven win is 1, a draw 0, a loss -1; MCTS and
network values are mean outcomes; minimax's heuristic leaves are bounded to -1..1), so the win
chance on lichess's -1..1 scale is the value itself, clipped; ``win_percent`` is the same on 0..100.

>>> label(0.5, 0.45), label(0.5, 0.35), label(0.5, 0.25), label(0.5, 0.15)
(None, 'inaccuracy', 'mistake', 'blunder')
>>> exact_label(1.0, 0.0), exact_label(0.0, -1.0), exact_label(1.0, -1.0), exact_label(0.0, 0.0)
('mistake', 'mistake', 'blunder', None)
>>> accuracy(50.0, 50.0), round(accuracy(60.0, 50.0), 4)
(100.0, 63.5798)
"""

from __future__ import annotations

import math

__all__ = ["LABELS", "THRESHOLDS", "win_chance", "win_percent", "loss", "label", "exact_label", "outcome",
           "accuracy", "judge"]

# The labels, mildest first, and the drop in win chance (-1..1 scale) at which each starts: lichess's
# thresholds (0.1 / 0.2 / 0.3 on its -1..1 winning-chances scale).
LABELS = ("inaccuracy", "mistake", "blunder")
THRESHOLDS = (0.1, 0.2, 0.3)

# Lichess's per-move accuracy curve, fitted on win percentages (0..100).
ACC_A, ACC_K, ACC_B = 103.1668100711649, 0.04354415386753951, 3.166924740191411

# The exact outcomes and what a move can do to them.
OUTCOMES = ("loss", "draw", "win")


def win_chance(value: float) -> float:
    """The win chance of a value on the -1..1 scale (the value itself, clipped)."""
    v = float(value)
    return -1.0 if v < -1.0 else 1.0 if v > 1.0 else v


def win_percent(value: float) -> float:
    """The win chance on 0..100 (lichess's win %): ``50 + 50 * win_chance(value)``."""
    return 50.0 + 50.0 * win_chance(value)


def loss(before: float, after: float) -> float:
    """The drop in win chance (-1..1 scale) from ``before`` to ``after``, never negative."""
    return max(0.0, win_chance(before) - win_chance(after))


def label(before: float, after: float) -> str | None:
    """``inaccuracy`` / ``mistake`` / ``blunder`` for a drop of at least 0.1 / 0.2 / 0.3, else None."""
    drop = loss(before, after) + 1e-12   # 0.5 -> 0.4 is a drop of 0.1 despite floating point
    out = None
    for name, t in zip(LABELS, THRESHOLDS):
        if drop >= t:
            out = name
    return out


def outcome(value: float) -> str:
    """``win``, ``draw`` or ``loss``: the sign of a proven value."""
    return "win" if value > 0 else "loss" if value < 0 else "draw"


def exact_label(before: float, after: float) -> str | None:
    """The label of a move between two proven values: it keeps the game-theoretic outcome (None),
    lowers it one step, win to draw or draw to loss (``mistake``: half a point thrown away), or throws a
    win away to a loss (``blunder``: the whole point).  A slower win or a longer defence keeps the
    outcome and is not labelled."""
    drop = OUTCOMES.index(outcome(before)) - OUTCOMES.index(outcome(after))
    return None if drop <= 0 else "mistake" if drop == 1 else "blunder"


def accuracy(win_pct_before: float, win_pct_after: float) -> float:
    """Lichess's accuracy of one move from the mover's win % (0..100) before and after it:
    ``103.1668 * exp(-0.04354 * (before - after)) - 3.1669`` clamped to [0, 100]; 100 when the move
    lost nothing."""
    drop = float(win_pct_before) - float(win_pct_after)
    if drop <= 0:
        return 100.0
    return min(100.0, max(0.0, ACC_A * math.exp(-ACC_K * drop) - ACC_B))


def judge(before: float, after: float, exact: bool) -> dict:
    """Everything the analysis stores about one move's two values (mover's view): the label (exact
    where both values are proven), the loss, the win chances and the move's accuracy.

    >>> judge(1.0, 0.0, exact=True)["label"], judge(0.3, 0.25, exact=False)["label"]
    ('mistake', None)
    """
    wb, wa = win_percent(before), win_percent(after)
    out = {"label": exact_label(before, after) if exact else label(before, after),
           "loss": loss(before, after), "win_chance_before": win_chance(before),
           "win_chance_after": win_chance(after), "accuracy": accuracy(wb, wa)}
    if exact:
        change = OUTCOMES.index(outcome(before)) - OUTCOMES.index(outcome(after))
        out["exact_change"] = "keeps" if change <= 0 else "lowers" if change == 1 else "throws away"
    return out
