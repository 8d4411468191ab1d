"""What plyground play and the arena's leaderboard say at the end: scores from both agents' returns,
mean returns where win/draw/loss does not apply, forfeits by kind with the first forfeit's detail,
games that cannot be loaded, and the solved positions shipped with the package."""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
from io import StringIO

import pytest

from plyground import games
from plyground.arena.match import GameResult
from plyground.arena.outcomes import MatchTally
from plyground.cli.main import main


def _hand_interval(values: list[float]) -> tuple[float, float, float]:
    m = sum(values) / len(values)
    half = 1.959964 * statistics.stdev(values) / math.sqrt(len(values))
    return m, m - half, m + half


def _per_game_returns(out: str, spec_a: str, spec_b: str) -> dict[str, list[float]]:
    """Each agent's return per game, read from play's per-game lines ``game N: P0 vs P1  returns r0, r1``."""
    got: dict[str, list[float]] = {"A": [], "B": []}
    for p0, p1, r0, r1 in re.findall(r"^game \d+: (\S+) vs (\S+)  returns (\S+), (\S+)", out, re.M):
        seats = {p0: float(r0), p1: float(r1)}
        got["A"].append(seats[spec_a])
        got["B"].append(seats[spec_b])
    return got


# ---- plyground play: the score -------------------------------------------------------------------

def test_play_general_sum_game_prints_mean_returns_not_a_score(capsys):
    a, b = "random:seed=1", "random:seed=2"
    assert main(["play", "openspiel:first_sealed_auction", a, b, "--games", "6"]) == 0
    out = capsys.readouterr().out
    rets = _per_game_returns(out, a, b)
    assert len(rets["A"]) == 6
    assert "score A" not in out and "a win/draw/loss score does not apply" in out and "general-sum" in out
    for side in ("A", "B"):
        m, lo, hi = _hand_interval(rets[side])
        assert f"  {side}  {m:+.3f} [{lo:+.3f}, {hi:+.3f}]" in out


def test_play_identical_interest_game_is_no_win_for_either(capsys):
    a, b = "random:seed=3", "random:seed=4"
    assert main(["play", "openspiel:tiny_hanabi", a, b, "--games", "4"]) == 0
    out = capsys.readouterr().out
    rets = _per_game_returns(out, a, b)
    assert rets["A"] == rets["B"] and len(rets["A"]) == 4          # both always get the same return
    assert "identical-interest" in out and "score A" not in out
    m, lo, hi = _hand_interval(rets["A"])
    assert out.count(f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]") == 2


def test_a_general_sum_payoff_of_0_and_7_is_not_a_draw():
    tally = MatchTally(games.make("openspiel:first_sealed_auction"), "x", "y")
    for _ in range(2):
        tally.add(GameResult("g", ["x", "y"], [0.0, 7.0], "normal"), a_seat=0)
    lines = "\n".join(tally.summary_lines())
    assert "score A" not in lines and "1/2-1/2" not in lines and "a win/draw/loss score does not apply" in lines
    assert "  A  +0.000 [+0.000, +0.000]" in lines and "  B  +7.000 [+7.000, +7.000]" in lines


def test_zero_sum_game_where_seat_1_wins_counts_for_the_agent_in_seat_1():
    tally = MatchTally(games.make("openspiel:leduc_poker"), "x", "y")
    r1 = tally.add(GameResult("g", ["y", "x"], [-3.0, 3.0], "normal"), a_seat=1)   # A (x) in seat 1 wins
    r2 = tally.add(GameResult("g", ["x", "y"], [-5.0, 5.0], "normal"), a_seat=0)   # B (y) in seat 1 wins
    r3 = tally.add(GameResult("g", ["y", "x"], [2.0, -2.0], "normal"), a_seat=1)   # B (y) in seat 0 wins
    assert (r1["score"], r2["score"], r3["score"]) == ({"A": 1.0, "B": 0.0}, {"A": 0.0, "B": 1.0},
                                                        {"A": 0.0, "B": 1.0})
    assert "score A 1 - 2 B over 3 games (A: +1 =0 -2, 33.3%)" in tally.summary_lines()


def test_play_scores_by_comparing_the_agents_returns(capsys):
    a, b = "random:seed=5", "random:seed=6"
    args = ["play", "tictactoe", a, b, "--games", "6", "--seed", "2"]
    assert main(args + ["--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    points = {"A": 0.0, "B": 0.0}
    for r in rows:
        ra, rb = (r["returns"][r["players"].index(a)], r["returns"][r["players"].index(b)])
        hand = {"A": 1.0, "B": 0.0} if ra > rb else {"A": 0.0, "B": 1.0} if ra < rb else {"A": 0.5, "B": 0.5}
        assert r["score"] == hand and r["forfeit"] is None and r["agents"] == {"A": a, "B": b}
        for k in points:
            points[k] += hand[k]
    assert main(args) == 0
    assert f"score A {points['A']:g} - {points['B']:g} B over 6 games" in capsys.readouterr().out


# ---- plyground play: forfeits ----------------------------------------------------------------

def test_play_shows_forfeits_by_kind_per_agent(capsys):
    # game 1: A (seat 0) sleeps past the move time on its second move; game 2: B (seat 0) plays an
    # illegal second move before A's second move comes
    a, b = "faulty:after=1,mode=sleep,seconds=0.3", "faulty:after=1,mode=illegal"
    assert main(["play", "tictactoe", a, b, "--games", "2", "--move-time", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "score A 1 - 1 B over 2 games (A: +0 =0 -0, 50.0%)" in out
    assert re.search(r"^forfeits .*: A timeout 1; B illegal_move 1$", out, re.M)
    assert re.search(rf"^A \({re.escape(a)}\) forfeited 1 game on time; first: seat 0 \({re.escape(a)}\) "
                     r"took 0\.\d+s > 0\.1s$", out, re.M)
    assert re.search(rf"^B \({re.escape(b)}\) forfeited 1 game by an illegal move; first: seat 0 \({re.escape(b)}\) "
                     r"played -1; legal: ", out, re.M)


def test_play_says_when_an_agent_could_not_play_the_game(capsys):
    assert main(["play", "connect4", "random", "faulty", "--games", "2"]) == 0
    out = capsys.readouterr().out
    assert "score A 2 - 0 B over 2 games (A: +0 =0 -0, 100.0%)" in out
    assert ("B (faulty) forfeited all 2 of its games by an agent error: it could not play connect4; "
            "first: seat 1 (faulty) raised RuntimeError: faulty agent: deliberate failure on move 1") in out


def test_play_checks_and_warms_up_both_agents_before_the_first_game(capsys, monkeypatch):
    from plyground.agents.basic import RandomAgent
    from plyground.games.errors import UnsupportedGameError
    calls = []
    monkeypatch.setattr(RandomAgent, "check_game", lambda self, game: calls.append(("check", self.spec)))
    monkeypatch.setattr(RandomAgent, "warm_up", lambda self, game: calls.append(("warm", self.spec)))
    assert main(["play", "tictactoe", "random:seed=1", "random:seed=2", "--games", "1"]) == 0
    assert calls == [("check", "random:seed=1"), ("check", "random:seed=2"),
                     ("warm", "random:seed=1"), ("warm", "random:seed=2")]
    assert "warming up" in capsys.readouterr().err

    def refuse(self, game):
        raise UnsupportedGameError(f"{self.spec} cannot play {game.name}: it has no moves it likes")
    monkeypatch.setattr(RandomAgent, "check_game", refuse)
    assert main(["play", "tictactoe", "random", "random", "--games", "1"]) == 2
    err = capsys.readouterr().err
    assert "random cannot play tictactoe: it has no moves it likes" in err and "Traceback" not in err


# ---- the leaderboard ------------------------------------------------------------------------------

def _record(tmp_path, game: str, results: list[tuple]) -> tuple:
    """A record with players a, b, c and ``results``: (seat names, returns, termination, detail)."""
    from plyground.arena.record import Record
    path = tmp_path / "r.db"
    rec = Record(path)
    ids = {n: rec.upsert_player(n, "random", {"name": "random", "seed": i}) for i, n in enumerate("abc")}
    rec.upsert_tournament("t", "t", game, "round-robin", 0, {})
    for k, (seats, returns, term, detail) in enumerate(results):
        rec.insert_game({"id": f"t-g{k:02d}", "tournament": "t", "game": game, "players": [ids[s] for s in seats],
                         "returns": returns, "termination": term, "detail": detail,
                         "ended": f"2026-01-01T00:00:{k:02d}"}, [])
    rec.close()
    return path


FORFEITS = [
    (("a", "b"), [1.0, -1.0], "normal", ""),
    (("b", "a"), [1.0, -1.0], "timeout", "seat 1 (a) took 9.000s > 5.0s"),
    (("a", "c"), [-1.0, 1.0], "timeout", "seat 0 (a) took 8.000s > 5.0s"),
    (("c", "b"), [-1.0, 1.0], "agent_error", "seat 0 (c) raised RuntimeError: boom\n  File \"x.py\", line 1"),
    (("b", "c"), [-1.0, 1.0], "illegal_move", "seat 0 (b) played 99; legal: [1, 2]"),
    (("c", "a"), [0.0, 0.0], "normal", ""),
]


def test_leaderboard_counts_forfeits_by_kind_and_names_the_first(tmp_path):
    from rich.console import Console

    from plyground.arena.leaderboard import build_leaderboard, print_leaderboard
    board = build_leaderboard(str(_record(tmp_path, "tictactoe", FORFEITS)), bootstrap=0)
    rows = {r.player: r for r in board.rows}
    # by hand: a won g00, forfeited g01 and g02 on time, drew g05; b forfeited g04; c g03
    assert (rows["a"].wins, rows["a"].draws, rows["a"].losses) == (1, 1, 2)
    assert [(rows[p].forfeits_time, rows[p].forfeits_error, rows[p].forfeits_illegal) for p in "abc"] == \
        [(2, 0, 0), (0, 0, 1), (0, 1, 0)]
    assert board.to_csv().splitlines()[0].split(",")[10:13] == ["forfeits_time", "forfeits_error", "forfeits_illegal"]
    buf = StringIO()
    print_leaderboard(board, Console(file=buf, width=200), los=False)
    text = buf.getvalue()
    assert "Forfeits t/e/i" in text and "2/0/0" in text
    assert "a forfeited 2 games on time; first: seat 1 (a) took 9.000s > 5.0s" in text
    assert "c forfeited 1 game by an agent error; first: seat 0 (c) raised RuntimeError: boom\n" in text
    assert "b forfeited 1 game by an illegal move; first: seat 0 (b) played 99; legal: [1, 2]" in text


def test_general_sum_games_are_not_rated_and_get_mean_returns(tmp_path):
    from plyground.arena.leaderboard import build_leaderboard, returns_table
    from plyground.arena.ratings import RatingError
    path = _record(tmp_path, "openspiel:first_sealed_auction", [
        (("a", "b"), [0.0, 7.0], "normal", ""),
        (("b", "a"), [3.0, 1.0], "normal", ""),
        (("a", "b"), [1.0, -1.0], "agent_error", "seat 1 (b) raised ValueError: no"),
    ])
    with pytest.raises(RatingError, match="3 general-sum games: no win/draw/loss, so Bradley-Terry ratings "
                                          "do not apply"):
        build_leaderboard(str(path), bootstrap=0)
    rows, kind = returns_table(path)
    assert kind == "general_sum"
    got = {r.player: r for r in rows}
    for p, rets in (("a", [0.0, 1.0]), ("b", [7.0, 3.0])):
        m, lo, hi = _hand_interval(rets)
        assert (got[p].games, got[p].played_out) == (3, 2)
        assert got[p].mean == pytest.approx(m) and (got[p].ci_low, got[p].ci_high) == pytest.approx((lo, hi))
    assert got["b"].forfeits.get("agent_error") == 1 and got["a"].forfeits.total == 0


# ---- games that cannot be loaded, shipped data ---------------------------------------------------

def test_nfg_game_is_a_clear_error_through_the_cli():
    out = subprocess.run([sys.executable, "-m", "plyground.cli.main", "play", "openspiel:nfg_game", "random",
                          "random"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "map::at" not in out.stderr
    assert "openspiel:nfg_game reads its game from a file: give the parameter filename" in out.stderr


@pytest.mark.parametrize("name, fragment", [
    ("openspiel:zerosum", "is built on another game: give the parameter(s) game"),
    ("openspiel:efg_game(filename=/no/such/file.efg)", "no file at filename='/no/such/file.efg'"),
    ("openspiel:add_noise(game=kuhn_poker())", "needs the parameter(s) epsilon, seed"),
])
def test_games_needing_parameters_say_which(name, fragment):
    from plyground.games.errors import PlygroundError
    with pytest.raises(PlygroundError) as e:
        games.make(name)
    assert fragment in str(e.value)


def test_play_refuses_games_that_do_not_seat_two_agents(capsys):
    assert main(["play", "openspiel:bridge", "random", "random"]) == 2
    assert "openspiel:bridge is a 4-player game; a match seats two agents" in capsys.readouterr().err


def test_solved_positions_ship_with_the_package():
    from importlib.resources import files
    text = files("plyground.search").joinpath("data", "connect4_solved_positions.txt").read_text()
    rows = [line.split() for line in text.splitlines() if line.strip()]
    assert len(rows) == 280
    assert all(len(r) == 2 and r[0].isdigit() and re.fullmatch(r"-?\d+", r[1]) for r in rows)
    assert sorted({len(r[0]) for r in rows}) == [8, 12, 16, 20, 24, 28, 32]
