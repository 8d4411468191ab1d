"""A/B matches: pentanomial statistics over colour-swapped pairs and a sequential probability
ratio test (SPRT) that stops as soon as the evidence decides between two Elo hypotheses.

A pair is two games between A and B with the colours swapped (same opening); A's pair score is
0, 1/2, 1, 3/2 or 2, counted as the pentanomial LL, LD, DD+WL, WD, WW.  Pairs remove most of
the opening's bias and their variance is what the SPRT should use (games inside a pair are
correlated, so a per-game trinomial overstates the noise).

The test is the generalised SPRT used by Fishtest: under each hypothesis the outcome
distribution is the maximum-likelihood multinomial whose expected score (logistic Elo) or
t-value (normalised Elo) equals the hypothesis; the LLR is the log-ratio of the two fitted
likelihoods, compared with Wald's bounds ``log(beta / (1 - alpha))`` and ``log((1 - beta) / alpha)``.
Empty cells are regularised with 1e-3 pseudo-counts so both fits exist from the first pair.

>>> t = SPRT(elo0=0, elo1=10)
>>> round(t.lower, 3), round(t.upper, 3)
(-2.944, 2.944)
>>> t.status([0, 0, 10, 0, 0]).decision is None
True
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from plyground.arena.ratings import RatedGame, RatingError, elo_from_score, expected_score

PENTANOMIAL = ("LL", "LD", "DD+WL", "WD", "WW")
TRINOMIAL = ("L", "D", "W")
NELO_PER_T = 800.0 / math.log(10.0)  # normalised Elo per unit of per-game t-value (347.4)
MODELS = ("logistic", "normalized")
_EPS = 1e-3


def _values(k: int) -> np.ndarray:
    if k not in (3, 5):
        raise RatingError(f"results must have 3 (L, D, W) or 5 (pentanomial) counts; got {k}")
    return np.linspace(0.0, 1.0, k)


def _freqs(counts: Sequence[float]) -> tuple[float, np.ndarray, np.ndarray]:
    c = np.asarray(counts, dtype=float)
    if np.any(c < 0):
        raise RatingError(f"counts must be non-negative; got {list(counts)}")
    a = _values(len(c))
    c = np.where(c == 0, _EPS, c)
    n = float(c.sum())
    return n, c / n, a


def _secular(f: np.ndarray, h: np.ndarray) -> float:
    """The x with sum f_i h_i / (1 + x h_i) = 0 and all 1 + x h_i > 0.  The sum falls strictly in
    x on that interval, so safeguarded Newton (bisection whenever a step leaves the bracket) converges."""
    if not (h.min() < 0 < h.max()):
        raise RatingError("the hypothesis lies outside the possible scores")
    fl, hl = [float(v) for v in f], [float(v) for v in h]
    lo, hi = -1.0 / max(hl), -1.0 / min(hl)
    x = 0.0
    for _ in range(200):
        val = der = 0.0
        for fi, hi_ in zip(fl, hl):
            q = 1.0 + x * hi_
            val += fi * hi_ / q
            der -= fi * hi_ * hi_ / (q * q)
        if val > 0:
            lo = x
        else:
            hi = x
        if abs(val) < 1e-15:
            break
        nx = x - val / der
        if not lo < nx < hi:
            nx = 0.5 * (lo + hi)
        if abs(nx - x) < 1e-15 * max(1.0, abs(x)):
            x = nx
            break
        x = nx
    return x


def mle_given_mean(freqs: Sequence[float], values: Sequence[float], mean: float) -> np.ndarray:
    """Maximum-likelihood distribution on ``values`` with expectation ``mean`` given observed ``freqs``."""
    f, a = np.asarray(freqs, float), np.asarray(values, float)
    h = a - mean
    x = _secular(f, h)
    return f / (1.0 + x * h)


def mle_given_t(freqs: Sequence[float], values: Sequence[float], ref: float, t: float,
                max_iter: int = 100) -> np.ndarray:
    """Maximum-likelihood distribution on ``values`` with t-value ``(mean - ref) / sd == t``.

    Fixed point of the Lagrange conditions p_i = f_i / (1 + x h_i) with
    h_i = a_i - ref - t (sd^2 + (a_i - mean)^2) / (2 sd) evaluated at the current p."""
    f, a = np.asarray(freqs, float), np.asarray(values, float)
    p = f.copy()
    for _ in range(max_iter):
        mu = float(np.dot(p, a))
        sd = math.sqrt(float(np.dot(p, (a - mu) ** 2)))
        h = a - ref - t * (sd * sd + (a - mu) ** 2) / (2.0 * sd)
        new = f / (1.0 + _secular(f, h) * h)
        if np.max(np.abs(new - p)) < 1e-12:
            p = new
            break
        p = new
    return p


def llr_logistic(counts: Sequence[float], elo0: float, elo1: float) -> float:
    """Generalised log-likelihood ratio of "A is elo1 stronger" vs "elo0" (logistic Elo) for
    trinomial (L, D, W) or pentanomial counts."""
    n, f, a = _freqs(counts)
    s0, s1 = float(expected_score(elo0)), float(expected_score(elo1))
    p0, p1 = mle_given_mean(f, a, s0), mle_given_mean(f, a, s1)
    return float(n * np.dot(f, np.log(p1) - np.log(p0)))


def llr_normalized(counts: Sequence[float], nelo0: float, nelo1: float) -> float:
    """Generalised LLR for normalised-Elo hypotheses (nElo = per-game t-value * 800/ln 10; a
    pair's t-value is sqrt(2) times the per-game one)."""
    n, f, a = _freqs(counts)
    scale = math.sqrt(2.0) if len(a) == 5 else 1.0
    t0, t1 = (nelo / NELO_PER_T * scale for nelo in (nelo0, nelo1))
    p0, p1 = mle_given_t(f, a, 0.5, t0), mle_given_t(f, a, 0.5, t1)
    return float(n * np.dot(f, np.log(p1) - np.log(p0)))


@dataclass(frozen=True)
class MatchStats:
    """Score, Elo and normalised Elo (with 95% intervals) and LOS of A over B from counts."""

    counts: tuple[int, ...]
    units: int            # pairs (pentanomial) or games (trinomial)
    games: int
    score: float          # A's mean score per game
    elo: float
    elo_low: float
    elo_high: float
    nelo: float
    nelo_ci: float        # half-width of the 95% interval of nElo
    los: float

    def as_dict(self) -> dict:
        return dict(self.__dict__, counts=list(self.counts))


def match_stats(counts: Sequence[int], z: float = 1.959964) -> MatchStats:
    """Summary statistics of A vs B from trinomial or pentanomial counts (no regularisation)."""
    c = np.asarray(counts, dtype=float)
    a = _values(len(c))
    N = float(c.sum())
    games = int(N * (2 if len(c) == 5 else 1))
    if N == 0:
        nan = float("nan")
        return MatchStats(tuple(int(v) for v in counts), 0, 0, nan, nan, nan, nan, nan, nan, nan)
    mu = float(np.dot(c, a) / N)
    var = float(np.dot(c, (a - mu) ** 2) / N)
    se = math.sqrt(var / N) if N > 1 else float("inf")
    per_game_sd = math.sqrt(var * (2.0 if len(c) == 5 else 1.0))
    if per_game_sd > 0:
        nelo = (mu - 0.5) / per_game_sd * NELO_PER_T
    else:
        nelo = 0.0 if mu == 0.5 else math.copysign(math.inf, mu - 0.5)
    nelo_ci = z * NELO_PER_T / math.sqrt(games) if games else float("inf")
    if se > 0:
        los = 0.5 * (1.0 + math.erf((mu - 0.5) / se / math.sqrt(2.0)))
    else:
        los = 1.0 if mu > 0.5 else 0.0 if mu < 0.5 else 0.5
    lo, hi = max(mu - z * se, 0.0), min(mu + z * se, 1.0)
    return MatchStats(tuple(int(v) for v in counts), int(N), games, mu, elo_from_score(mu),
                      elo_from_score(lo), elo_from_score(hi), nelo, nelo_ci, los)


@dataclass(frozen=True)
class SPRTStatus:
    """Where the test stands: LLR, its bounds, and the decision (None while undecided)."""

    llr: float
    lower: float
    upper: float
    decision: str | None  # "H0" (A is not elo1 better: reject), "H1" (accept), None
    elo0: float
    elo1: float
    alpha: float
    beta: float
    model: str
    stats: MatchStats

    def describe(self) -> str:
        """One line: LLR (bounds) [elo0, elo1] and the decision."""
        unit = "nElo" if self.model == "normalized" else "Elo"
        verdict = {"H1": "H1 accepted", "H0": "H0 accepted"}.get(self.decision or "", "undecided")
        return (f"LLR {self.llr:.2f} ({self.lower:.2f}, {self.upper:.2f}) [{self.elo0:g}, {self.elo1:g}] {unit}: "
                f"{verdict}")

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "stats"}
        d["stats"] = self.stats.as_dict()
        return d


class SPRT:
    """SPRT of H0: elo = elo0 against H1: elo = elo1 (logistic or normalised Elo) with error
    rates alpha (accepting H1 when H0 holds) and beta (accepting H0 when H1 holds)."""

    def __init__(self, elo0: float = 0.0, elo1: float = 10.0, alpha: float = 0.05, beta: float = 0.05,
                 model: str = "logistic") -> None:
        if model not in MODELS:
            raise RatingError(f"SPRT model {model!r} is not allowed; choose one of {', '.join(MODELS)}")
        for name, v in (("alpha", alpha), ("beta", beta)):
            if not 0.0 < v < 0.5:
                raise RatingError(f"{name}={v} must be between 0 and 0.5")
        if not elo1 > elo0:
            raise RatingError(f"elo1={elo1} must be greater than elo0={elo0}")
        if max(abs(elo0), abs(elo1)) >= 2000:
            raise RatingError(f"Elo bounds [{elo0}, {elo1}] are out of range (|elo| < 2000)")
        self.elo0, self.elo1, self.alpha, self.beta, self.model = float(elo0), float(elo1), alpha, beta, model
        self.lower = math.log(beta / (1.0 - alpha))
        self.upper = math.log((1.0 - beta) / alpha)

    def llr(self, counts: Sequence[float]) -> float:
        """The log-likelihood ratio for trinomial or pentanomial ``counts``."""
        if sum(counts) == 0:
            return 0.0
        f = llr_normalized if self.model == "normalized" else llr_logistic
        return f(counts, self.elo0, self.elo1)

    def status(self, counts: Sequence[float]) -> SPRTStatus:
        """LLR, bounds and decision for ``counts``."""
        llr = self.llr(counts)
        decision = "H1" if llr >= self.upper else "H0" if llr <= self.lower else None
        return SPRTStatus(llr, self.lower, self.upper, decision, self.elo0, self.elo1, self.alpha, self.beta,
                          self.model, match_stats(counts))


# ---------------------------------------------------------------------------------------------
# From games to pairs
# ---------------------------------------------------------------------------------------------

def pentanomial(pair_scores: Iterable[float]) -> list[int]:
    """Counts [LL, LD, DD+WL, WD, WW] of A's pair scores (each 0, 0.5, 1, 1.5 or 2)."""
    out = [0] * 5
    for s in pair_scores:
        k = int(round(2 * s))
        if abs(2 * s - k) > 1e-9 or not 0 <= k <= 4:
            raise RatingError(f"a pair score must be 0, 0.5, 1, 1.5 or 2; got {s!r}")
        out[k] += 1
    return out


def trinomial(games: Iterable[RatedGame], a: str) -> list[int]:
    """Counts [L, D, W] of ``a``'s games."""
    out = [0, 0, 0]
    for g in games:
        s = g.score if g.first == a else 1.0 - g.score
        out[int(round(2 * s))] += 1
    return out


@dataclass(frozen=True)
class Pairs:
    """A's pair scores over complete colour-swapped pairs, plus games that found no partner."""

    a: str
    b: str
    scores: list[float]
    unpaired: list[RatedGame]

    @property
    def counts(self) -> list[int]:
        return pentanomial(self.scores)


def pair_up(games: Sequence[RatedGame], a: str, b: str) -> Pairs:
    """Group the A-vs-B games into colour-swapped pairs.  Games with a ``pair`` key pair with the
    other game of that key; games without one pair in order (an A-first game with the next
    B-first game).  Games between other players are ignored; leftovers are returned unpaired."""
    if a == b:
        raise RatingError(f"an A/B match needs two different players; got {a!r} twice")
    keyed: dict[str, list[RatedGame]] = defaultdict(list)
    loose: list[RatedGame] = []
    for g in games:
        if {g.first, g.second} != {a, b}:
            continue
        (keyed[g.pair] if g.pair is not None else loose).append(g)
    scores: list[float] = []
    unpaired: list[RatedGame] = []

    def sa(g: RatedGame) -> float:
        return g.score if g.first == a else 1.0 - g.score

    for key, gs in keyed.items():
        firsts = [g for g in gs if g.first == a]
        seconds = [g for g in gs if g.first == b]
        for x, y in zip(firsts, seconds):
            scores.append(sa(x) + sa(y))
        k = min(len(firsts), len(seconds))
        unpaired.extend(firsts[k:] + seconds[k:])
    waiting: dict[str, list[RatedGame]] = {a: [], b: []}
    for g in loose:
        other = b if g.first == a else a
        if waiting[other]:
            scores.append(sa(waiting[other].pop(0)) + sa(g))
        else:
            waiting[g.first].append(g)
    unpaired.extend(waiting[a] + waiting[b])
    return Pairs(a, b, scores, unpaired)
