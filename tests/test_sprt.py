"""SPRT and pentanomial statistics: the LLR against a direct constrained maximisation, Wald's
bounds, decisions on matches simulated with a known Elo difference, and the pairing of games."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plyground.arena.ratings import RatedGame, RatingError, expected_score
from plyground.arena.sprt import (NELO_PER_T, SPRT, llr_logistic, llr_normalized, match_stats, pair_up,
                                  pentanomial, trinomial)

VALUES5 = np.linspace(0, 1, 5)


def direct_llr(counts, constraint0, constraint1):
    """max log-likelihood under constraint1 minus under constraint0, by a generic optimiser
    (SLSQP over softmax logits) -- no secular equation, no fixed point."""
    optimize = pytest.importorskip("scipy.optimize")
    c = np.where(np.asarray(counts, float) == 0, 1e-3, np.asarray(counts, float))
    a = np.linspace(0, 1, len(c))

    def probs(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    def best(constraint):
        res = optimize.minimize(lambda z: -np.dot(c, np.log(np.maximum(probs(z), 1e-300))), np.log(c / c.sum()),
                                method="SLSQP",
                                constraints=[{"type": "eq", "fun": lambda z: constraint(probs(z), a)}],
                                options={"ftol": 1e-15, "maxiter": 1000})
        assert res.success, res.message
        assert abs(constraint(probs(res.x), a)) < 1e-8
        return -res.fun

    return best(constraint1) - best(constraint0)


def max_loglik_given_mean(counts, s):
    """Generic Newton ascent of sum c log p on the affine set {sum p = 1, sum p a = s} (a basis of
    its directions from the SVD), staying inside p > 0 -- no Lagrange multiplier formula."""
    c = np.where(np.asarray(counts, float) == 0, 1e-3, np.asarray(counts, float))
    k = len(c)
    a = np.linspace(0, 1, k)
    N = np.linalg.svd(np.vstack([np.ones(k), a]))[2][2:].T        # k x (k-2) null-space basis
    p = np.full(k, 1 / k) + (s - 0.5) / np.sum((a - 0.5) ** 2) * (a - 0.5)
    assert np.all(p > 0) and abs(p @ a - s) < 1e-12

    def f(q):
        return float(c @ np.log(q))
    for _ in range(200):
        g, h = c / p, c / p ** 2
        step = np.linalg.solve(N.T @ (h[:, None] * N), N.T @ g)
        dp, t = N @ step, 1.0
        while np.any(p + t * dp <= 0) or f(p + t * dp) < f(p):
            t /= 2
            if t < 1e-14:
                break
        p = p + t * dp
        if np.max(np.abs(t * dp)) < 1e-14:
            break
    return f(p)


@pytest.mark.parametrize("counts", [[10, 30, 80, 40, 15], [0, 3, 20, 9, 1], [5, 1, 2, 0, 0], [0, 0, 0, 0, 7],
                                    [12, 40, 30]])
def test_logistic_llr_equals_direct_maximisation(counts):
    s0, s1 = float(expected_score(0.0)), float(expected_score(10.0))
    direct = max_loglik_given_mean(counts, s1) - max_loglik_given_mean(counts, s0)
    assert llr_logistic(counts, 0.0, 10.0) == pytest.approx(direct, abs=1e-7)


@pytest.mark.parametrize("counts", [[10, 30, 80, 40, 15], [2, 14, 50, 30, 4]])
def test_normalized_llr_equals_direct_maximisation(counts):
    # pentanomial: a pair's t-value is sqrt(2) x the per-game one; nElo = per-game t x 800/ln 10
    t0, t1 = (v / NELO_PER_T * math.sqrt(2) for v in (0.0, 5.0))

    def tval(t):
        return lambda p, a: (p @ a - 0.5) - t * math.sqrt(max(p @ (a - p @ a) ** 2, 1e-300))
    direct = direct_llr(counts, tval(t0), tval(t1))
    assert llr_normalized(counts, 0.0, 5.0) == pytest.approx(direct, abs=1e-5)


def test_llr_matches_the_brownian_approximation_for_large_samples():
    counts = [200, 1500, 4000, 1900, 300]
    n = sum(counts)
    f = np.array(counts) / n
    mu, var = f @ VALUES5, f @ (VALUES5 - f @ VALUES5) ** 2
    s0, s1 = float(expected_score(0)), float(expected_score(5))
    approx = n * (s1 - s0) * (2 * mu - s0 - s1) / (2 * var)
    assert llr_logistic(counts, 0, 5) == pytest.approx(approx, rel=0.02)


def test_bounds_and_parameter_errors():
    t = SPRT(0, 10, alpha=0.05, beta=0.1)
    assert t.lower == pytest.approx(math.log(0.1 / 0.95)) and t.upper == pytest.approx(math.log(0.9 / 0.05))
    assert t.llr([0, 0, 0, 0, 0]) == 0.0 and t.status([0] * 5).decision is None
    with pytest.raises(RatingError, match="elo1=0 must be greater than elo0=5"):
        SPRT(5, 0)
    with pytest.raises(RatingError, match="alpha=0.7"):
        SPRT(0, 5, alpha=0.7)
    with pytest.raises(RatingError, match="model 'bayes'.*logistic, normalized"):
        SPRT(0, 5, model="bayes")
    with pytest.raises(RatingError, match="3 .* or 5"):
        llr_logistic([1, 2, 3, 4], 0, 5)


def simulate_sprt(true_elo: float, seed: int, test: SPRT, max_pairs: int = 20000,
                  every: int = 4) -> tuple[str | None, int]:
    """Play pairs of two independent games with A's expected score from ``true_elo`` (some draws),
    looking at the test after every ``every`` pairs (as a runner with several workers would)."""
    rng = np.random.default_rng(seed)
    e = float(expected_score(true_elo))
    d = 0.5 * min(e, 1 - e)
    counts = [0] * 5
    for n in range(1, max_pairs + 1):
        u = rng.random(2)
        s = sum(1.0 if x < e - d / 2 else 0.5 if x < e + d / 2 else 0.0 for x in u)
        counts[int(2 * s)] += 1
        if n % every:
            continue
        st = test.status(counts)
        if st.decision:
            return st.decision, n
    return None, max_pairs


@pytest.mark.parametrize("model,elo0,elo1", [("logistic", 0.0, 10.0), ("normalized", 0.0, 10.0)])
def test_decisions_on_simulated_matches(model, elo0, elo1):
    test = SPRT(elo0, elo1, 0.05, 0.05, model=model)
    up = [simulate_sprt(45.0, seed, test) for seed in range(15)]
    down = [simulate_sprt(-35.0, 100 + seed, test) for seed in range(15)]
    assert sum(d == "H1" for d, _ in up) >= 14
    assert sum(d == "H0" for d, _ in down) >= 14
    assert all(n < 5000 for _, n in up + down)


def test_match_stats_by_hand():
    s = match_stats([1, 2, 4, 2, 1])          # symmetric: even match
    assert s.score == pytest.approx(0.5) and s.elo == pytest.approx(0.0) and s.los == pytest.approx(0.5)
    assert s.units == 10 and s.games == 20 and s.elo_low < 0 < s.elo_high
    s = match_stats([0, 0, 2, 4, 4])          # 3 LD... no: scores 1, 1.5, 2 -> 0.5, 0.75, 1 per game
    assert s.score == pytest.approx((2 * 0.5 + 4 * 0.75 + 4 * 1.0) / 10)
    assert s.elo == pytest.approx(-400 * math.log10(1 / s.score - 1)) and s.los > 0.99
    tri = match_stats([3, 4, 5])             # L D W
    assert tri.games == 12 and tri.score == pytest.approx(7 / 12)


def test_pairing_games_into_pentanomial():
    games = [RatedGame("A", "B", 1.0, pair="t:0"), RatedGame("B", "A", 0.5, pair="t:0"),   # A: 1.5
             RatedGame("B", "A", 1.0, pair="t:1"), RatedGame("A", "B", 0.0, pair="t:1"),   # A: 0
             RatedGame("A", "B", 0.5, pair="t:2"),                                          # no partner
             RatedGame("A", "C", 1.0, pair="t:3"),                                          # other player
             RatedGame("A", "B", 1.0), RatedGame("A", "B", 0.0), RatedGame("B", "A", 0.0)]  # loose: 1+1=2, 0 left
    p = pair_up(games, "A", "B")
    assert sorted(p.scores) == [0.0, 1.5, 2.0]
    assert p.counts == [1, 0, 0, 1, 1]
    assert len(p.unpaired) == 2
    assert pentanomial([0, 0.5, 1, 1, 1.5, 2]) == [1, 1, 2, 1, 1]
    with pytest.raises(RatingError, match="pair score"):
        pentanomial([0.25])
    assert trinomial([g for g in games if {g.first, g.second} == {"A", "B"}], "A") == [3, 2, 3]
    with pytest.raises(RatingError, match="two different players"):
        pair_up(games, "A", "A")


@pytest.mark.slow
def test_error_rates_at_the_hypotheses():
    """At elo = elo0 the test accepts H1 about alpha of the time; at elo1 it accepts H0 about beta
    of the time (Wald's bounds are slightly conservative; allow binomial noise)."""
    test = SPRT(0.0, 20.0, 0.05, 0.05)
    runs = 80
    false_h1 = sum(simulate_sprt(0.0, 500 + s, test, every=2)[0] == "H1" for s in range(runs))
    false_h0 = sum(simulate_sprt(20.0, 900 + s, test, every=2)[0] == "H0" for s in range(runs))
    assert false_h1 <= 10 and false_h0 <= 10, (false_h1, false_h0)
