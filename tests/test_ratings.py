"""Ratings against independent truth: results simulated from known Elo ratings, OpenSpiel's
``pyspiel.elo`` (an MM solver) for the point estimates, and hand-computable small cases."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from plyground.arena.leaderboard import build_leaderboard, load_games
from plyground.arena.ratings import (ELO_PER_NAT, RatedGame, RatingError, bootstrap_ratings, expected_score,
                                     fit_bradley_terry, head_to_head, los_matrix, online_elo, parse_anchor,
                                     player_records, score_from_returns)

SEEDS = range(10)


def simulate(seed: int, players: int = 8, games: int = 2000, spread: float = 150.0, fma: float = 0.0,
             draw_share: float = 0.6) -> tuple[list[str], np.ndarray, list[RatedGame]]:
    """Games between random pairs (random colours) whose expected score follows the true Elo;
    a share of the non-decisive mass is drawn, so draws happen but E[score] is exact."""
    rng = np.random.default_rng(1000 + seed)
    true = rng.normal(0.0, spread, players)
    true -= true.mean()
    names = [f"p{i}" for i in range(players)]
    out = []
    for k in range(games):
        i, j = rng.choice(players, 2, replace=False)
        e = float(expected_score(true[i] - true[j] + fma))
        d = draw_share * min(e, 1.0 - e)
        u = rng.random()
        s = 1.0 if u < e - d / 2 else 0.5 if u < e + d / 2 else 0.0
        out.append(RatedGame(names[i], names[j], s, id=f"g{k}"))
    return names, true, out


def openspiel_elo(names: list[str], games: list[RatedGame]) -> np.ndarray:
    pyspiel = pytest.importorskip("pyspiel")
    idx = {n: i for i, n in enumerate(names)}
    P = len(names)
    W = [[0] * P for _ in range(P)]
    D = [[0] * P for _ in range(P)]
    for g in games:
        i, j = idx[g.first], idx[g.second]
        if g.score == 1.0:
            W[i][j] += 1
        elif g.score == 0.0:
            W[j][i] += 1
        else:
            D[i][j] += 1
            D[j][i] += 1
    opts = pyspiel.elo.default_elo_options()
    opts.smoothing_factor = 0.0   # the plain MLE (its default adds 0.01 pseudo-wins per cell)
    r = np.array(pyspiel.elo.compute_ratings_from_matrices(W, D, opts))
    return r - r.mean()          # OpenSpiel pins the minimum at 0; we centre at mean 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_estimates_equal_openspiel_mle(seed):
    names, _, games = simulate(seed)
    fit = fit_bradley_terry(games, players=names)
    assert fit.prior_sd is None and fit.converged and not fit.notes
    ref = openspiel_elo(names, games)
    assert np.max(np.abs(fit.elo - ref)) < 1.0
    # and anchoring only shifts: pin p3 at 1500, differences stay those of OpenSpiel
    pinned = fit_bradley_terry(games, players=names, anchor=("p3", 1500.0))
    assert pinned.rating("p3") == pytest.approx(1500.0)
    assert np.max(np.abs((pinned.elo - pinned.elo.mean()) - ref)) < 1.0


def test_true_ratings_inside_bootstrap_intervals():
    hits = total = 0
    for seed in SEEDS:
        names, true, games = simulate(seed)
        fit = fit_bradley_terry(games, players=names)
        boot = bootstrap_ratings(games, fit, n=200, seed=seed)
        assert np.all(boot.low <= fit.elo) and np.all(fit.elo <= boot.high)
        hits += int(np.sum((boot.low <= true) & (true <= boot.high)))
        total += len(names)
    assert total == 80
    assert hits / total >= 0.90, f"coverage {hits}/{total}"


def test_first_move_advantage_recovered_and_score_equations_hold():
    inside = 0
    for seed in range(5):
        names, true, games = simulate(seed, fma=40.0)
        fit = fit_bradley_terry(games, players=names, first_move_advantage=True)
        boot = bootstrap_ratings(games, fit, n=200, seed=seed)
        inside += boot.fma_low <= 40.0 <= boot.fma_high
        # independent optimality check: at the MLE each player's points equal their expected
        # points, and the first movers' points equal theirs (the likelihood's score equations)
        r = dict(zip(fit.players, fit.elo))
        pts = {p: 0.0 for p in names}
        exp = {p: 0.0 for p in names}
        first_pts = first_exp = 0.0
        for g in games:
            e = float(expected_score(r[g.first] - r[g.second] + fit.first_move_advantage))
            pts[g.first] += g.score
            pts[g.second] += 1 - g.score
            exp[g.first] += e
            exp[g.second] += 1 - e
            first_pts += g.score
            first_exp += e
        assert max(abs(pts[p] - exp[p]) for p in names) < 1e-6
        assert abs(first_pts - first_exp) < 1e-6
    assert inside >= 4
    # ignoring a real first-move advantage does not bias the ratings when colours are random
    _, true, games = simulate(0, fma=40.0)
    plain = fit_bradley_terry(games)
    assert np.max(np.abs(plain.elo - true)) < 80


def test_anchor_parsing_and_errors():
    assert parse_anchor("minimax:depth=2=1500", ["minimax:depth=2"]) == ("minimax:depth=2", 1500.0)
    with pytest.raises(RatingError, match=r"unknown anchor player 'zz'.*a, b"):
        parse_anchor("zz=0", ["a", "b"])
    with pytest.raises(RatingError, match="NAME=ELO"):
        parse_anchor("random", ["random"])
    with pytest.raises(RatingError, match="not a number"):
        parse_anchor("a=high", ["a"])
    games = [RatedGame("a", "b", 1.0), RatedGame("b", "a", 1.0)]
    with pytest.raises(RatingError, match="unknown anchor player 'c'; players with rated games: a, b"):
        fit_bradley_terry(games, anchor=("c", 0.0))
    with pytest.raises(RatingError, match="no rated games"):
        fit_bradley_terry([])
    with pytest.raises(RatingError, match="cannot play itself"):
        fit_bradley_terry([RatedGame("a", "a", 1.0)])


def test_two_players_closed_form():
    # 7 wins, 2 draws, 3 losses for a: score 8/12, so the MLE difference is 400 log10(8/4)
    games = ([RatedGame("a", "b", 1.0)] * 4 + [RatedGame("b", "a", 0.0)] * 3 + [RatedGame("a", "b", 0.5)] * 2
             + [RatedGame("b", "a", 1.0)] * 3)
    fit = fit_bradley_terry(games)
    assert fit.rating("a") - fit.rating("b") == pytest.approx(400 * math.log10(2.0), abs=1e-6)
    assert fit.rating("a") == pytest.approx(-fit.rating("b"))
    rec = player_records(games)
    assert (rec["a"].games, rec["a"].wins, rec["a"].draws, rec["a"].losses) == (12, 7, 2, 3)
    assert (rec["b"].wins, rec["b"].draws, rec["b"].losses) == (3, 2, 7)
    # the normal-approximation sd of the difference: 1/sqrt(n p (1-p)) in natural units
    p = 8 / 12
    sd = ELO_PER_NAT / math.sqrt(12 * p * (1 - p))
    var = fit.covariance[0, 0] + fit.covariance[1, 1] - 2 * fit.covariance[0, 1]
    assert math.sqrt(var) == pytest.approx(sd, rel=1e-6)
    los = los_matrix(fit)
    assert los[0, 1] == pytest.approx(0.5 * (1 + math.erf(400 * math.log10(2.0) / sd / math.sqrt(2))))
    assert los[0, 1] + los[1, 0] == pytest.approx(1.0)


def test_all_wins_all_losses_and_disconnected_groups_get_finite_marked_ratings():
    games = ([RatedGame("top", "mid", 1.0)] * 3 + [RatedGame("mid", "top", 0.0)] * 3
             + [RatedGame("mid", "low", 0.5), RatedGame("low", "mid", 1.0), RatedGame("mid", "low", 1.0)]
             + [RatedGame("bottom", "mid", 0.0)] * 2
             + [RatedGame("x", "y", 1.0), RatedGame("y", "x", 0.5)])
    with pytest.raises(RatingError, match="infinite or undefined"):
        fit_bradley_terry(games, prior_sd=None)
    fit = fit_bradley_terry(games)
    assert fit.prior_sd is not None and np.all(np.isfinite(fit.elo))
    assert fit.bound == {"top": "lower", "bottom": "upper"}
    assert sorted(map(sorted, fit.groups)) == [["bottom", "low", "mid", "top"], ["x", "y"]]
    r = fit.ratings()
    assert r["top"] > r["mid"] > r["bottom"] and r["x"] > r["y"]
    text = " ".join(fit.notes)
    assert "2 groups that never met" in text and "top conceded no point" in text and "prior" in text
    board = build_leaderboard(games, bootstrap=30)
    notes = {row.player: row.note for row in board.rows}
    assert notes["top"] == "lower bound, group 1" and notes["bottom"] == "upper bound, group 1"
    assert notes["x"] == "group 2"
    # a first mover who won every game: the first-move advantage is unbounded
    swap = [RatedGame("a", "b", 1.0), RatedGame("b", "a", 1.0)] * 3
    f2 = fit_bradley_terry(swap, first_move_advantage=True)
    assert f2.prior_sd is not None and 100 < f2.first_move_advantage < 2500
    assert f2.rating("a") == pytest.approx(f2.rating("b"), abs=1e-6)
    assert any("first-move advantage is infinite" in n for n in f2.notes)


def test_online_elo_by_hand():
    games = [RatedGame("a", "b", 1.0), RatedGame("b", "a", 0.5)]
    r = online_elo(games, k=32)
    # game 1: equal, a wins -> a +16, b -16; game 2: b (-16) first vs a (+16), draw
    e = 1 / (1 + 10 ** (32 / 400))
    assert r["a"] == pytest.approx(16 - 32 * (0.5 - e))
    assert r["b"] == pytest.approx(-16 + 32 * (0.5 - e))
    assert r["a"] + r["b"] == pytest.approx(0.0)


def test_los_agrees_with_bootstrap_frequencies():
    names, _, games = simulate(4, spread=40.0)
    fit = fit_bradley_terry(games, players=names)
    boot = bootstrap_ratings(games, fit, n=400, seed=1)
    los = los_matrix(fit)
    freq = (boot.samples[:, :, None] > boot.samples[:, None, :]).mean(axis=0)
    mask = ~np.eye(len(names), dtype=bool)
    assert np.max(np.abs(los[mask] - freq[mask])) < 0.12
    assert np.allclose(los[mask] + los.T[mask], 1.0)


def test_head_to_head_and_scores():
    assert [score_from_returns(r) for r in ([1, -1], [0, 0], [-1, 1], [0.5, 0.25])] == [1.0, 0.5, 0.0, 1.0]
    with pytest.raises(RatingError, match="2 seats"):
        score_from_returns([1, 0, 0])
    games = [RatedGame("a", "b", 1.0), RatedGame("b", "a", 0.5), RatedGame("c", "a", 0.0)]
    pts, cnt = head_to_head(games, ["a", "b", "c"])
    assert pts.tolist() == [[0, 1.5, 1.0], [0.5, 0, 0], [0.0, 0, 0]]
    assert cnt.tolist() == [[0, 2, 1], [2, 0, 0], [1, 0, 0]]


def test_bootstrap_is_seeded():
    names, _, games = simulate(5, games=400)
    fit = fit_bradley_terry(games)
    a = bootstrap_ratings(games, fit, n=50, seed=7)
    b = bootstrap_ratings(games, fit, n=50, seed=7)
    c = bootstrap_ratings(games, fit, n=50, seed=8)
    assert np.array_equal(a.samples, b.samples) and not np.array_equal(a.samples, c.samples)
    seen = []
    bootstrap_ratings(games, fit, n=5, seed=0, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 5) for i in range(1, 6)]


def test_leaderboard_from_record_rows(tmp_path):
    from plyground.arena.record import Record
    rec = Record(tmp_path / "r.db")
    ids = {n: rec.upsert_player(n, n, {"name": n}) for n in ("alpha", "beta", "gamma")}
    rec.upsert_tournament("t1", "t1", "connect4", "round-robin", 0, {})
    rows = [("alpha", "beta", [1, -1], "normal"), ("beta", "alpha", [0, 0], "normal"),
            ("gamma", "alpha", [-1, 1], "timeout"), ("alpha", "gamma", [0, 0], "aborted"),
            ("beta", "gamma", [1, -1], "normal"), ("gamma", "beta", [1, -1], "agent_error")]
    for k, (a, b, ret, term) in enumerate(rows):
        rec.insert_game({"id": f"t1-r000-g{k:04d}", "tournament": "t1", "pair": k // 2, "game": "connect4",
                         "players": [ids[a], ids[b]], "returns": ret, "termination": term,
                         "ended": f"2024-01-01T00:00:0{k}"}, [])
    loaded = load_games(rec)
    assert len(loaded.games) == 5 and loaded.skipped == {"unrated (aborted)": 1}
    assert loaded.games[0] == RatedGame("alpha", "beta", 1.0, "t1-r000-g0000", "t1:0")
    board = build_leaderboard(str(tmp_path / "r.db"), bootstrap=50, anchor="beta=1000")
    recs = {r["player"]: r for r in board.to_records()}
    assert recs["beta"]["elo"] == 1000.0
    assert (recs["alpha"]["wins"], recs["alpha"]["draws"], recs["alpha"]["losses"]) == (2, 1, 0)
    assert sum(r["games"] for r in recs.values()) == 2 * 5
    assert "1 unrated (aborted)" in " ".join(board.summary_lines())
    with pytest.raises(RatingError, match="unknown tournament 'nope'.*t1"):
        build_leaderboard(rec, tournament="nope")
    rec.close()


def test_bootstrap_marks_interval_ends_a_resample_cannot_pin_down():
    # 'weak' draws once in 30 games and loses the rest: its MLE is finite, but a resample that
    # misses the draw has none; such resamples are regularised and its lower end marked open
    names, _, strong = simulate(6, players=3, games=300, spread=60.0)
    weak = [RatedGame("weak", names[k % 3], 0.0) if k % 2 else RatedGame(names[k % 3], "weak", 1.0)
            for k in range(29)] + [RatedGame("weak", names[0], 0.5)]
    games = strong + weak
    fit = fit_bradley_terry(games)
    assert fit.prior_sd is None and not fit.bound
    boot = bootstrap_ratings(games, fit, n=200, seed=0)
    assert boot.prior_replicates > 20
    assert boot.open_ends() == {"weak": "below"}
    assert np.all(np.isfinite(boot.low)) and np.all(boot.low <= fit.elo) and np.all(fit.elo <= boot.high)
    board = build_leaderboard(games, bootstrap=200)
    assert {r.player: r.note for r in board.rows}["weak"] == "CI open below"
    assert all(r.note == "" for r in board.rows if r.player != "weak")


def test_first_mover_is_the_seat_of_the_first_move_not_seat_0(tmp_path):
    # OpenSpiel chess: seat 1 is White and moves first (pyspiel is the truth here).  White wins 3
    # games in 4 whoever plays it; the advantage must come out for White, not for seat 0.
    import pyspiel
    from plyground.arena.record import Record
    white = pyspiel.load_game("chess").new_initial_state().current_player()
    assert white == 1
    rec = Record(tmp_path / "c.db")
    ids = {n: rec.upsert_player(n, n, {"name": n}) for n in ("p", "q")}
    rec.upsert_tournament("t", "t", "openspiel:chess", "round-robin", 0, {})
    for k in range(40):
        seats = [ids["p"], ids["q"]] if k % 2 == 0 else [ids["q"], ids["p"]]
        ret = [-1.0, 1.0] if (k // 2) % 4 != 3 else [1.0, -1.0]  # White (seat 1) wins 3 of 4
        moves = [] if k % 3 == 0 else [{"ply": 0, "player": white, "action": 1, "text": "e4",
                                         "think_time": 0.0, "decision": {}}]
        rec.insert_game({"id": f"t-r000-g{k:04d}", "tournament": "t", "pair": k // 2,
                         "game": "openspiel:chess", "players": seats, "returns": ret,
                         "termination": "normal", "ended": f"2024-01-01T00:00:{k:02d}"}, moves)
    for source in (rec, str(tmp_path / "c.db")):
        loaded = load_games(source)
        by_id = {g.id: g for g in loaded.games}
        # game 0: p in seat 0 (Black), q in seat 1 (White) won -> q listed first with score 1
        assert by_id["t-r000-g0000"] == RatedGame("q", "p", 1.0, "t-r000-g0000", "t:0")
        assert statistics.fmean(g.score for g in loaded.games) == 0.75
        board = build_leaderboard(source, bootstrap=0, first_move_advantage=True)
        h = board.first_move_advantage[0]
        assert abs(h - 400 * math.log10(3)) < 1.0  # 3:1 odds for the first mover
    rec.close()
