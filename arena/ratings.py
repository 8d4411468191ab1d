"""Ratings from game results: a joint Bradley-Terry maximum-likelihood fit on the Elo scale,
bootstrap intervals, likelihood of superiority, online Elo.  Pure functions over a list of
:class:`RatedGame`; no database in here (arena/leaderboard.py reads the record).

The model: the player seated first scores against the second with expectation
``1 / (1 + 10 ** (-(r_first - r_second + h) / 400))`` (400 Elo = 10:1 odds), ``h`` being the
optional first-move advantage.  A draw counts as half a point: the log-likelihood of a game is
``s log p + (1 - s) log(1 - p)`` with ``s`` in {0, 1/2, 1}, which is also what OpenSpiel's
``pyspiel.elo`` maximises (by MM iterations; we use damped Newton steps).

Identifiability.  Finite maximum-likelihood ratings exist only when every group of players has
conceded at least half a point to the rest and taken half a point from it (the "scored against"
graph is strongly connected).  When that fails -- a player who won every game, one who lost every
game, groups that never met -- :func:`fit_bradley_terry` adds a weak Gaussian prior (mean 0, sd
``WEAK_PRIOR_ELO``) so every estimate is finite, marks the players whose rating is only a bound
(``bound = "lower"`` or ``"upper"``; where a group splits into a one-sided top and bottom, the
smaller side is marked) and explains it in ``notes``.  Groups that never met are
listed in ``groups``: ratings compare only within a group.

>>> games = [RatedGame("a", "b", 1.0), RatedGame("b", "a", 0.5), RatedGame("a", "b", 0.0)]
>>> fit = fit_bradley_terry(games)
>>> round(fit.rating("a") - fit.rating("b"), 1)
0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from plyground.games.errors import PlygroundError

ELO_PER_NAT = 400.0 / math.log(10.0)  # 173.7...: Elo points per unit of natural log-odds
WEAK_PRIOR_ELO = 500.0                # sd of the prior used only when the MLE does not exist
DEFAULT_K = 16.0                      # online Elo K-factor


class RatingError(PlygroundError, ValueError):
    """Bad input to the ratings: an unknown anchor player, no rated games, a malformed result."""


@dataclass(frozen=True)
class RatedGame:
    """One rated two-player game: who sat first (moved first), who second, and the first's score."""

    first: str
    second: str
    score: float          # first's score: 1 win, 0.5 draw, 0 loss
    id: str | None = None
    pair: str | None = None  # key shared by the two games of a colour-swapped pair (for the SPRT)


def score_from_returns(returns: Sequence[float]) -> float:
    """Score of seat 0 in a two-player game from per-seat returns: 1, 0.5 (equal) or 0.  Only zero- and
    constant-sum games are rated: the leaderboard leaves out games with no win/draw/loss."""
    if len(returns) != 2:
        raise RatingError(f"a rated game needs returns for 2 seats; got {list(returns)!r}")
    a, b = float(returns[0]), float(returns[1])
    return 1.0 if a > b else 0.5 if a == b else 0.0


def expected_score(elo_diff: float | np.ndarray) -> float | np.ndarray:
    """Expected score at an Elo difference (400 points = 10:1 odds)."""
    return 1.0 / (1.0 + np.power(10.0, -np.asarray(elo_diff, dtype=float) / 400.0))


def elo_from_score(score: float) -> float:
    """The Elo difference whose expected score is ``score`` (+-inf at 1 and 0)."""
    if score <= 0.0:
        return -math.inf
    if score >= 1.0:
        return math.inf
    return -400.0 * math.log10(1.0 / score - 1.0)


def parse_anchor(text: str, players: Iterable[str] | None = None) -> tuple[str, float]:
    """Parse ``NAME=ELO`` (split at the last '='); with ``players`` given the name must be one of them."""
    name, sep, value = str(text).rpartition("=")
    if not sep or not name:
        raise RatingError(f"anchor {text!r} must look like NAME=ELO, e.g. random=0")
    try:
        elo = float(value)
    except ValueError:
        raise RatingError(f"anchor {text!r}: {value!r} is not a number; use NAME=ELO, e.g. random=0") from None
    if not math.isfinite(elo):
        raise RatingError(f"anchor {text!r}: the Elo must be finite")
    if players is not None:
        check_player(name, players, what="anchor player")
    return name, elo


def check_player(name: str, players: Iterable[str], what: str = "player") -> None:
    """Raise a RatingError naming the known players if ``name`` is not one of them."""
    known = sorted(set(players))
    if name not in known:
        raise RatingError(f"unknown {what} {name!r}; players with rated games: {', '.join(known) or '(none)'}")


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------

@dataclass
class _Data:
    """Games aggregated by ordered (first, second) pair."""

    players: list[str]
    first: np.ndarray          # per game: index of the first player
    second: np.ndarray
    score: np.ndarray          # per game: first's score
    pair_of_game: np.ndarray   # per game: index into the pair arrays
    pi: np.ndarray             # per pair: first index
    pj: np.ndarray             # per pair: second index


def _index(games: Sequence[RatedGame], players: Sequence[str] | None) -> _Data:
    if players is None:
        seen: dict[str, None] = {}
        for g in games:
            seen.setdefault(g.first)
            seen.setdefault(g.second)
        players = sorted(seen)
    players = list(players)
    idx = {p: i for i, p in enumerate(players)}
    n = len(games)
    first = np.empty(n, dtype=np.int64)
    second = np.empty(n, dtype=np.int64)
    score = np.empty(n, dtype=float)
    for k, g in enumerate(games):
        if g.first == g.second:
            raise RatingError(f"game {g.id or k}: {g.first!r} cannot play itself in a rated game")
        if g.score not in (0.0, 0.5, 1.0):
            raise RatingError(f"game {g.id or k}: score {g.score!r} is not one of 0, 0.5, 1")
        try:
            first[k], second[k] = idx[g.first], idx[g.second]
        except KeyError as e:
            raise RatingError(f"game {g.id or k}: player {e.args[0]!r} is not in the player list") from None
        score[k] = g.score
    P = len(players)
    code = first * max(P, 1) + second
    uniq, pair_of_game = np.unique(code, return_inverse=True)
    return _Data(players, first, second, score, pair_of_game.astype(np.int64),
                 (uniq // max(P, 1)).astype(np.int64), (uniq % max(P, 1)).astype(np.int64))


def _aggregate(d: _Data, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Games and first-player points per ordered pair (optionally weighted, for the bootstrap)."""
    npairs = len(d.pi)
    w = np.ones(len(d.score)) if weights is None else weights
    n = np.bincount(d.pair_of_game, weights=w, minlength=npairs)
    s = np.bincount(d.pair_of_game, weights=w * d.score, minlength=npairs)
    return n, s


# ---------------------------------------------------------------------------------------------
# Identifiability
# ---------------------------------------------------------------------------------------------

def _components(P: int, pi: np.ndarray, pj: np.ndarray, n: np.ndarray) -> list[list[int]]:
    """Connected components of the 'played each other' graph."""
    parent = list(range(P))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, c in zip(pi, pj, n):
        if c > 0:
            parent[find(int(a))] = find(int(b))
    groups: dict[int, list[int]] = {}
    for p in range(P):
        groups.setdefault(find(p), []).append(p)
    return sorted(groups.values(), key=lambda g: (-len(g), g))


def _scored_edges(P: int, pi: np.ndarray, pj: np.ndarray, n: np.ndarray, s: np.ndarray) -> list[set[int]]:
    """out[i] = players j that i took at least some points from."""
    out: list[set[int]] = [set() for _ in range(P)]
    for a, b, c, pts in zip(pi, pj, n, s):
        if c <= 0:
            continue
        if pts > 1e-12:
            out[int(a)].add(int(b))
        if c - pts > 1e-12:
            out[int(b)].add(int(a))
    return out


def _sccs(P: int, out: list[set[int]]) -> list[list[int]]:
    """Strongly connected components (Kosaraju, iterative)."""
    order, seen = [], [False] * P
    for root in range(P):
        if seen[root]:
            continue
        stack = [(root, iter(sorted(out[root])))]
        seen[root] = True
        while stack:
            v, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                order.append(v)
            elif not seen[nxt]:
                seen[nxt] = True
                stack.append((nxt, iter(sorted(out[nxt]))))
    rev: list[set[int]] = [set() for _ in range(P)]
    for v in range(P):
        for w in out[v]:
            rev[w].add(v)
    comp = [-1] * P
    result: list[list[int]] = []
    for root in reversed(order):
        if comp[root] >= 0:
            continue
        c = len(result)
        members, stack = [], [root]
        comp[root] = c
        while stack:
            v = stack.pop()
            members.append(v)
            for w in rev[v]:
                if comp[w] < 0:
                    comp[w] = c
                    stack.append(w)
        result.append(sorted(members))
    return result


def _bounds(P: int, out: list[set[int]], groups: list[list[int]]) -> dict[int, str]:
    """Players whose ML rating is infinite: 'lower' (nobody outside their scoring cycle took a point
    from them: the estimate is a lower bound) or 'upper' (they took no point from outside it)."""
    marks: dict[int, str] = {}
    sccs = _sccs(P, out)
    if len(sccs) == len(groups):
        return marks
    comp = {v: c for c, members in enumerate(sccs) for v in members}
    group_of = {v: g for g, members in enumerate(groups) for v in members}
    for members in sccs:
        if len(groups[group_of[members[0]]]) == len(members):
            continue  # the whole group is one scoring cycle: finite
        c = comp[members[0]]
        has_out = any(comp[w] != c for v in members for w in out[v])
        has_in = any(comp[v] == c for u in range(P) if comp[u] != c for v in out[u])
        for v in members:
            if not has_in:
                marks[v] = "lower"
            elif not has_out:
                marks[v] = "upper"
            # a block in between is finite relative to itself; the notes explain the rest
    lower = [v for v, m in marks.items() if m == "lower"]
    upper = [v for v, m in marks.items() if m == "upper"]
    if lower and upper and len(lower) != len(upper):
        # the gap between the two sides is what is unbounded; mark the smaller side, the outlier
        # (e.g. the one player who lost every game, not all those who beat it)
        keep = "lower" if len(lower) < len(upper) else "upper"
        marks = {v: m for v, m in marks.items() if m == keep}
    return marks


# ---------------------------------------------------------------------------------------------
# The fit: damped Newton on the (optionally penalised) log-likelihood
# ---------------------------------------------------------------------------------------------

def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def _objective(x: np.ndarray, P: int, fma: bool, pi, pj, n, s, prec: float, mu: np.ndarray | None = None) -> float:
    d = x[pi] - x[pj] + (x[P] if fma else 0.0)
    ll = float(np.sum(s * _log_sigmoid(d) + (n - s) * _log_sigmoid(-d)))
    if prec > 0:
        dev = x if mu is None else x - mu
        ll -= 0.5 * prec * float(np.dot(dev, dev))
    return ll


def _grad_hess(x: np.ndarray, P: int, fma: bool, pi, pj, n, s, prec: float,
               mu: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and NEGATIVE Hessian (the observed information) in natural-log-odds units."""
    m = len(x)
    d = x[pi] - x[pj] + (x[P] if fma else 0.0)
    p = 1.0 / (1.0 + np.exp(-d))
    r = s - n * p               # residual of the first player per pair
    w = n * p * (1.0 - p)       # information per pair
    g = np.zeros(m)
    np.add.at(g, pi, r)
    np.add.at(g, pj, -r)
    H = np.zeros((m, m))
    np.add.at(H, (pi, pi), w)
    np.add.at(H, (pj, pj), w)
    np.add.at(H, (pi, pj), -w)
    np.add.at(H, (pj, pi), -w)
    if fma:
        g[P] = r.sum()
        H[P, P] = w.sum()
        col = np.zeros(P)
        np.add.at(col, pi, w)
        np.add.at(col, pj, -w)
        H[P, :P] = col
        H[:P, P] = col
    if prec > 0:
        g -= prec * (x if mu is None else x - mu)
        H[np.diag_indices(m)] += prec
    return g, H


def _newton(x0: np.ndarray, P: int, fma: bool, pi, pj, n, s, prec: float, mu: np.ndarray | None = None,
            max_iter: int = 200, tol: float = 1e-10) -> tuple[np.ndarray, int, bool]:
    """Maximise the log-likelihood (plus a Gaussian prior of precision ``prec`` around ``mu``,
    default 0) from ``x0``; returns (x, iterations, converged).  Without a prior the ratings are
    kept at mean 0 (the likelihood only sees differences)."""
    x = x0.copy()
    if prec == 0:
        x[:P] -= x[:P].mean()
    f = _objective(x, P, fma, pi, pj, n, s, prec, mu)
    ones = np.zeros(len(x))
    ones[:P] = 1.0 / math.sqrt(P)
    for it in range(1, max_iter + 1):
        g, H = _grad_hess(x, P, fma, pi, pj, n, s, prec, mu)
        A = H + (np.outer(ones, ones) if prec == 0 else 0.0)  # fixes the free shift of all ratings
        try:
            step = np.linalg.solve(A, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(A, g, rcond=None)[0]
        t = 1.0
        while True:
            xn = x + t * step
            if prec == 0:
                xn[:P] -= xn[:P].mean()
            fn = _objective(xn, P, fma, pi, pj, n, s, prec, mu)
            if fn >= f - 1e-12 * abs(f) or t < 1e-8:
                break
            t *= 0.5
        x, f = xn, fn
        if np.max(np.abs(t * step)) * ELO_PER_NAT < 1e-7 or np.max(np.abs(g)) < tol:
            return x, it, True
    return x, max_iter, False


@dataclass
class BTFit:
    """A Bradley-Terry fit: anchored Elo per player, the first-move advantage, and what to trust.

    ``elo`` holds anchored ratings in ``players`` order; ``covariance`` (Elo^2) is the inverse
    observed information of the anchored ratings (the normal approximation behind ``los``);
    ``prior_sd`` is None for a pure maximum-likelihood fit, else the sd (Elo) of the weak prior
    that was needed; ``bound`` maps players whose rating is only a bound to "lower"/"upper"."""

    players: list[str]
    elo: np.ndarray
    first_move_advantage: float | None
    log_likelihood: float
    iterations: int
    converged: bool
    prior_sd: float | None
    anchor: tuple[str, float] | None
    groups: list[list[str]]
    bound: dict[str, str]
    covariance: np.ndarray
    fma_sd: float | None = None
    notes: list[str] = field(default_factory=list)
    raw: np.ndarray | None = None  # natural-unit parameters (warm start for the bootstrap)

    def rating(self, player: str) -> float:
        """Anchored Elo of ``player``."""
        check_player(player, self.players)
        return float(self.elo[self.players.index(player)])

    def ratings(self) -> dict[str, float]:
        """player -> anchored Elo."""
        return {p: float(e) for p, e in zip(self.players, self.elo)}

    def sd(self) -> np.ndarray:
        """Normal-approximation standard errors (Elo) of the anchored ratings."""
        return np.sqrt(np.maximum(np.diag(self.covariance), 0.0))


def _anchor_matrix(P: int, anchor_index: int | None) -> np.ndarray:
    """Linear map from raw ratings to anchored ones (before adding the anchor's Elo)."""
    if anchor_index is None:
        return np.eye(P) - np.full((P, P), 1.0 / P)
    T = np.eye(P)
    T[:, anchor_index] -= 1.0
    return T


def _needs_prior(P: int, d: _Data, n: np.ndarray, s: np.ndarray) -> tuple[list[list[int]], dict[int, str]]:
    groups = _components(P, d.pi, d.pj, n)
    out = _scored_edges(P, d.pi, d.pj, n, s)
    return groups, _bounds(P, out, groups)


def fit_bradley_terry(games: Sequence[RatedGame], *, players: Sequence[str] | None = None,
                      first_move_advantage: bool = False, anchor: tuple[str, float] | None = None,
                      prior_sd: float | None | str = "auto") -> BTFit:
    """Joint Bradley-Terry fit of all ``games`` on the Elo scale (draws = half points).

    ``anchor=(name, elo)`` pins one player; the default centres the ratings at mean 0.
    ``prior_sd="auto"`` fits the pure MLE when it exists and a weak N(0, WEAK_PRIOR_ELO^2)
    prior otherwise; a number always uses that prior; None never does (raising if the MLE
    does not exist)."""
    if not games:
        raise RatingError("no rated games to fit")
    d = _index(games, players)
    P = len(d.players)
    if anchor is not None:
        check_player(anchor[0], d.players, what="anchor player")
    n, s = _aggregate(d)
    groups, bound = _needs_prior(P, d, n, s)
    notes: list[str] = []
    if prior_sd == "auto":
        use_sd = WEAK_PRIOR_ELO if (len(groups) > 1 or bound) else None
    else:
        use_sd = None if prior_sd is None else float(prior_sd)
        if prior_sd is None and (len(groups) > 1 or bound):
            raise RatingError("the maximum-likelihood ratings are infinite or undefined for these results "
                              "(some players won or lost everything, or groups never met); use a prior")
    x, its, ok, use_sd = _fit(d, n, s, P, first_move_advantage, use_sd, prior_sd == "auto")
    prec = 0.0 if use_sd is None else (ELO_PER_NAT / use_sd) ** 2
    ll = _objective(x, P, first_move_advantage, d.pi, d.pj, n, s, 0.0)

    _, H = _grad_hess(x, P, first_move_advantage, d.pi, d.pj, n, s, prec)
    cov_nat = np.linalg.pinv(H) if prec == 0 else np.linalg.inv(H)
    ai = None if anchor is None else d.players.index(anchor[0])
    T = _anchor_matrix(P, ai)
    raw_elo = x[:P] * ELO_PER_NAT
    elo = T @ raw_elo + (0.0 if anchor is None else anchor[1])
    cov = T @ (cov_nat[:P, :P] * ELO_PER_NAT ** 2) @ T.T
    fma = float(x[P] * ELO_PER_NAT) if first_move_advantage else None
    fma_sd = float(math.sqrt(max(cov_nat[P, P], 0.0)) * ELO_PER_NAT) if first_move_advantage else None

    names = d.players
    if len(groups) > 1:
        desc = "; ".join("{" + ", ".join(names[i] for i in g) + "}" for g in groups)
        notes.append(f"the players form {len(groups)} groups that never met ({desc}): ratings compare only "
                     "within a group")
    if bound:
        lower = [names[i] for i, b in sorted(bound.items()) if b == "lower"]
        upper = [names[i] for i, b in sorted(bound.items()) if b == "upper"]
        parts = []
        if lower:
            parts.append(f"{', '.join(lower)} conceded no point to the rest of their group (rating is a lower bound)")
        if upper:
            parts.append(f"{', '.join(upper)} took no point from the rest of their group (rating is an upper bound)")
        if parts:
            notes.append("; ".join(parts))
    if use_sd is not None and not bound and len(groups) == 1 and prior_sd == "auto":
        notes.append("the maximum-likelihood first-move advantage is infinite for these results "
                     "(e.g. the first mover won every game)")
    if use_sd is not None:
        what = "every rating and the first-move advantage" if first_move_advantage else "every rating"
        notes.append(f"finite ratings need a weak prior here: N(0, {use_sd:g}^2) Elo on {what} "
                     "(the pure maximum-likelihood ratings would be infinite or undefined)")
    if not ok:
        notes.append(f"the fit did not converge in {its} iterations")
    return BTFit(players=names, elo=elo, first_move_advantage=fma, log_likelihood=ll, iterations=its,
                 converged=ok, prior_sd=use_sd, anchor=anchor,
                 groups=[[names[i] for i in g] for g in groups],
                 bound={names[i]: b for i, b in bound.items()}, covariance=cov, fma_sd=fma_sd,
                 notes=notes, raw=x)


def _fit(d: _Data, n: np.ndarray, s: np.ndarray, P: int, fma: bool, use_sd: float | None,
         auto: bool, x0: np.ndarray | None = None,
         mu: np.ndarray | None = None) -> tuple[np.ndarray, int, bool, float | None]:
    """Run Newton; in auto mode fall back to the weak prior if the unpenalised fit runs away
    (possible with a first-move advantage that is itself unbounded, e.g. seat 0 always wins)."""
    m = P + (1 if fma else 0)
    start = np.zeros(m) if x0 is None else x0
    prec = 0.0 if use_sd is None else (ELO_PER_NAT / use_sd) ** 2
    x, its, ok = _newton(start, P, fma, d.pi, d.pj, n, s, prec, mu)
    if use_sd is None and auto and (not ok or _runaway(x, P, fma, d.pi, d.pj, n)):
        use_sd = WEAK_PRIOR_ELO
        prec = (ELO_PER_NAT / use_sd) ** 2
        x, its, ok = _newton(np.zeros(m) if mu is None else mu.copy(), P, fma, d.pi, d.pj, n, s, prec, mu)
    return x, its, ok, use_sd


RUNAWAY_ELO = 2500.0  # a fitted difference beyond this between players who met means "infinite"


def _runaway(x: np.ndarray, P: int, fma: bool, pi, pj, n) -> bool:
    """True if the unpenalised fit is heading to infinity: some pair that played is predicted
    further apart than RUNAWAY_ELO (a finite MLE would need ~10^6 games per point for that)."""
    d = x[pi] - x[pj] + (x[P] if fma else 0.0)
    played = n > 0
    return bool(np.any(np.abs(d[played]) * ELO_PER_NAT > RUNAWAY_ELO))


# ---------------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------------

@dataclass
class Bootstrap:
    """Bootstrap replicates of the anchored ratings (rows = replicates, columns = players)."""

    players: list[str]
    samples: np.ndarray
    fma_samples: np.ndarray | None
    level: float
    low: np.ndarray
    high: np.ndarray
    fma_low: float | None = None
    fma_high: float | None = None
    prior_replicates: int = 0   # replicates that needed the weak prior although the full data did not
    open_low: dict[str, int] = field(default_factory=dict)   # player -> replicates where it took no point
    open_high: dict[str, int] = field(default_factory=dict)  # player -> replicates where it conceded none

    def open_ends(self) -> dict[str, str]:
        """Players whose interval end is only a bound: "below"/"above"/"both" -- more than the
        tail probability of the resamples had no finite rating for them on that side."""
        tail = (1 - self.level) / 2 * len(self.samples)
        out = {}
        for p in self.players:
            lo, hi = self.open_low.get(p, 0) > tail, self.open_high.get(p, 0) > tail
            if lo or hi:
                out[p] = "both" if lo and hi else "below" if lo else "above"
        return out


def bootstrap_ratings(games: Sequence[RatedGame], fit: BTFit, n: int = 200, seed: int = 0,
                      level: float = 0.95,
                      progress: Callable[[int, int], None] | None = None) -> Bootstrap:
    """Percentile intervals from ``n`` refits on games resampled with replacement (seeded),
    anchored like ``fit``; ``progress(done, n)`` is called after each replicate.

    A resample in which some player won or lost everything (no finite MLE) although the full data
    has one is refitted with the weak prior centred on the full-data estimate, so only the
    unidentified direction is regularised; such players are counted in ``open_low``/``open_high``."""
    if n < 1:
        raise RatingError(f"bootstrap needs at least 1 replicate; got {n}")
    if not 0 < level < 1:
        raise RatingError(f"interval level {level} must be between 0 and 1")
    d = _index(games, fit.players)
    P = len(d.players)
    fma = fit.first_move_advantage is not None
    rng = np.random.default_rng(seed)
    G = len(d.score)
    ai = None if fit.anchor is None else d.players.index(fit.anchor[0])
    T = _anchor_matrix(P, ai)
    shift = 0.0 if fit.anchor is None else fit.anchor[1]
    samples = np.empty((n, P))
    fsamples = np.empty(n) if fma else None
    extra = 0
    open_low: dict[str, int] = {}
    open_high: dict[str, int] = {}
    m = P + (1 if fma else 0)
    centre = fit.raw if fit.raw is not None else np.zeros(m)
    for b in range(n):
        w = np.bincount(rng.integers(0, G, G), minlength=G).astype(float)
        nb, sb = _aggregate(d, w)
        use_sd = fit.prior_sd
        if use_sd is None:
            groups, bound = _needs_prior(P, d, nb, sb)
            if len(groups) > 1 or bound:
                use_sd = WEAK_PRIOR_ELO
                extra += 1
                for i, side in bound.items():
                    tally = open_low if side == "upper" else open_high
                    tally[d.players[i]] = tally.get(d.players[i], 0) + 1
        # the full data's own prior stays centred at 0; a prior only this resample needs is centred
        # at the full-data estimate
        prior_mean = None if (fit.prior_sd is not None) else centre
        x, _, _, used = _fit(d, nb, sb, P, fma, use_sd, auto=use_sd is None, x0=centre.copy(), mu=prior_mean)
        if used is not None and use_sd is None:
            extra += 1
        samples[b] = T @ (x[:P] * ELO_PER_NAT) + shift
        if fma:
            fsamples[b] = x[P] * ELO_PER_NAT
        if progress is not None:
            progress(b + 1, n)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    low, high = np.percentile(samples, q, axis=0)
    out = Bootstrap(d.players, samples, fsamples, level, low, high, prior_replicates=extra,
                    open_low=open_low, open_high=open_high)
    if fma:
        out.fma_low, out.fma_high = (float(v) for v in np.percentile(fsamples, q))
    return out


# ---------------------------------------------------------------------------------------------
# Descriptive statistics
# ---------------------------------------------------------------------------------------------

@dataclass
class PlayerRecord:
    """Games and wins/draws/losses of one player (as first mover and overall)."""

    games: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0
    first: int = 0  # games played in the first seat

    @property
    def points(self) -> float:
        return self.wins + 0.5 * self.draws

    @property
    def score(self) -> float:
        """Fraction of the points available."""
        return self.points / self.games if self.games else float("nan")


def player_records(games: Iterable[RatedGame]) -> dict[str, PlayerRecord]:
    """player -> PlayerRecord over ``games``."""
    out: dict[str, PlayerRecord] = {}
    for g in games:
        a, b = out.setdefault(g.first, PlayerRecord()), out.setdefault(g.second, PlayerRecord())
        a.games += 1
        b.games += 1
        a.first += 1
        if g.score == 1.0:
            a.wins += 1
            b.losses += 1
        elif g.score == 0.0:
            a.losses += 1
            b.wins += 1
        else:
            a.draws += 1
            b.draws += 1
    return out


def head_to_head(games: Iterable[RatedGame], players: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(points, games): points[i, j] = points player i took from player j; games[i, j] = games between them."""
    idx = {p: i for i, p in enumerate(players)}
    P = len(players)
    pts = np.zeros((P, P))
    cnt = np.zeros((P, P), dtype=np.int64)
    for g in games:
        i, j = idx[g.first], idx[g.second]
        pts[i, j] += g.score
        pts[j, i] += 1.0 - g.score
        cnt[i, j] += 1
        cnt[j, i] += 1
    return pts, cnt


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    from math import erf
    return 0.5 * (1.0 + np.vectorize(erf)(np.asarray(z, dtype=float) / math.sqrt(2.0)))


def los_matrix(fit: BTFit) -> np.ndarray:
    """Likelihood of superiority: los[i, j] = P(rating_i > rating_j), from the normal approximation
    of the joint fit (its covariance; differences do not depend on the anchor).  Diagonal: NaN."""
    e = fit.elo
    C = fit.covariance
    diff = e[:, None] - e[None, :]
    var = np.diag(C)[:, None] + np.diag(C)[None, :] - 2 * C
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, diff / np.sqrt(np.maximum(var, 1e-300)), np.sign(diff) * np.inf)
    out = _normal_cdf(z)
    np.fill_diagonal(out, np.nan)
    return out


def online_elo(games: Iterable[RatedGame], k: float = DEFAULT_K, players: Sequence[str] | None = None,
               first_move_advantage: float = 0.0) -> dict[str, float]:
    """Sequential Elo: every player starts at 0 and after each game (in the given order) moves by
    ``k * (score - expected)``.  Order-dependent by design; shown beside the joint fit."""
    r: dict[str, float] = {p: 0.0 for p in (players or [])}
    for g in games:
        a, b = r.setdefault(g.first, 0.0), r.setdefault(g.second, 0.0)
        e = float(expected_score(a - b + first_move_advantage))
        r[g.first] = a + k * (g.score - e)
        r[g.second] = b - k * (g.score - e)
    return r


def anchor_shift(ratings: Mapping[str, float], anchor: tuple[str, float] | None) -> dict[str, float]:
    """Shift ``ratings`` so the anchor player has the anchor Elo (or so they average 0)."""
    if not ratings:
        return {}
    if anchor is None:
        off = -float(np.mean(list(ratings.values())))
    else:
        check_player(anchor[0], ratings, what="anchor player")
        off = anchor[1] - ratings[anchor[0]]
    return {p: v + off for p, v in ratings.items()}
