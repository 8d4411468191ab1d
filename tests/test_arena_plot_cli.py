"""The ratings commands end to end: `plyground arena ratings / plot / sprt` on records written
through arena.record (synthetic results from known ratings) and on a real A/B match."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from plyground.arena.ratings import expected_score
from plyground.arena.record import Record
from plyground.cli.main import main

TRUE = {"alpha": 150.0, "beta": 50.0, "gamma": -50.0, "delta": -150.0}


def write_record(path: Path, players: dict[str, float], games: int, seed: int = 0, tid: str = "t1") -> dict:
    """A record with colour-swapped pairs between random pairs of ``players``, results drawn from
    their true ratings (with draws); returns W/D/L counted independently of the ratings code."""
    rng = np.random.default_rng(seed)
    names = list(players)
    wdl = {n: [0, 0, 0] for n in names}
    with Record(path) as rec:
        ids = {n: rec.upsert_player(n, n, {"name": n}) for n in names}
        rec.upsert_tournament(tid, tid, "connect4", "round-robin", seed, {})
        for k in range(0, games, 2):
            i, j = rng.choice(len(names), 2, replace=False)
            for half, (a, b) in enumerate(((names[i], names[j]), (names[j], names[i]))):
                e = float(expected_score(players[a] - players[b]))
                u = rng.random()
                ret = [1.0, -1.0] if u < e - 0.1 else [0.0, 0.0] if u < e + 0.1 else [-1.0, 1.0]
                for seat, n in enumerate((a, b)):
                    r = ret[seat]
                    wdl[n][0 if r > 0 else 1 if r == 0 else 2] += 1
                rec.insert_game({"id": f"{tid}-r000-g{k + half:04d}", "tournament": tid, "round": 0,
                                 "pair": k // 2, "game": "connect4", "players": [ids[a], ids[b]],
                                 "returns": ret, "termination": "normal", "ended": f"t{k + half:06d}"}, [])
    return wdl


@pytest.fixture(scope="module")
def record4(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("arena") / "four.db"
    return path, write_record(path, TRUE, 1200)


def test_ratings_json(record4, capsys):
    path, wdl = record4
    assert main(["arena", "ratings", "--db", str(path), "--json", "--bootstrap", "100"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["player"] for r in rows] == ["alpha", "beta", "gamma", "delta"]  # far enough apart to order
    for r in rows:
        assert {"player", "elo", "ci_low", "ci_high", "games", "wins", "draws", "losses"} <= set(r)
        assert [r["wins"], r["draws"], r["losses"]] == wdl[r["player"]]
        assert r["games"] == sum(wdl[r["player"]])
        assert r["ci_low"] <= r["elo"] <= r["ci_high"]
        assert abs(r["elo"] - TRUE[r["player"]]) < 80
    assert abs(sum(r["elo"] for r in rows)) < 0.1          # default: mean 0


def test_ratings_anchor_table_csv_markdown(record4, capsys):
    path, _ = record4
    assert main(["arena", "ratings", "--db", str(path), "--json", "--anchor", "delta=1000",
                 "--bootstrap", "0", "--first-move-advantage"]) == 0
    rows = {r["player"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["delta"]["elo"] == 1000.0 and rows["delta"]["note"] == "anchor"
    assert main(["arena", "ratings", "--db", str(path), "--bootstrap", "20"]) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "Likelihood of superiority" in out and "1200 rated games" in out
    assert main(["arena", "ratings", "--db", str(path), "--bootstrap", "20", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("rank,player,elo,ci_low,ci_high,games,wins,draws,losses") and len(lines) == 5
    assert main(["arena", "ratings", "--db", str(path), "--bootstrap", "20", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| # | Player | Elo |") and md.count("\n| ") == 4  # one row per player


def test_ratings_errors(record4, tmp_path, capsys):
    path, _ = record4
    assert main(["arena", "ratings", "--db", str(path), "--anchor", "omega=0"]) == 2
    err = capsys.readouterr().err
    assert "unknown anchor player 'omega'" in err and "alpha, beta, delta, gamma" in err
    assert main(["arena", "ratings", "--db", str(path), "--anchor", "alpha"]) == 2
    assert "NAME=ELO" in capsys.readouterr().err
    empty = tmp_path / "empty.db"
    Record(empty).close()
    assert main(["arena", "ratings", "--db", str(empty)]) == 2
    assert "no rated games" in capsys.readouterr().err
    assert main(["arena", "ratings", "--db", str(tmp_path / "missing.db")]) == 2
    assert "no record database" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()
    assert main(["arena", "ratings", "--db", str(path), "--tournament", "nope"]) == 2
    assert "unknown tournament 'nope'" in capsys.readouterr().err


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_writes_pngs(record4, tmp_path, capsys):
    path, _ = record4
    out = tmp_path / "plots" / "here"
    assert main(["arena", "plot", "--db", str(path), "--out", str(out), "--bootstrap", "30"]) == 0
    printed = capsys.readouterr().out.split()
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == ["head_to_head.png", "ratings.png"]
    assert sorted(printed) == sorted(str(f) for f in files)
    for f in files:
        w, h = png_size(f)
        assert w >= 300 and h >= 200
        assert f.stat().st_size > 10_000        # drawn content, not an empty canvas


def test_sprt_report_from_record(tmp_path, capsys):
    path = tmp_path / "ab.db"
    write_record(path, {"new": 120.0, "old": 0.0}, 400, seed=3, tid="ab")
    assert main(["arena", "sprt", "--db", str(path), "--elo0", "0", "--elo1", "20", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["pairs"] == 200 and sum(d["pentanomial"]) == 200 and d["unpaired_games"] == 0
    assert {d["player_a"], d["player_b"]} == {"new", "old"}
    a_is_new = d["player_a"] == "new"
    assert d["decision"] == ("H1" if a_is_new else "H0")
    assert main(["arena", "sprt", "--db", str(path), "--player-a", "new"]) == 0
    out = capsys.readouterr().out
    assert "A = new" in out and "H1 accepted" in out and "pentanomial LL" in out
    assert main(["arena", "sprt", "--db", str(path), "--player-a", "nobody"]) == 2
    assert "unknown --player-a 'nobody'" in capsys.readouterr().err


def test_sprt_report_needs_two_players(record4, capsys):
    path, _ = record4
    assert main(["arena", "sprt", "--db", str(path)]) == 2
    assert "exactly two players" in capsys.readouterr().err
    assert main(["arena", "sprt", "tictactoe", "random", "--db", str(path)]) == 2
    assert "GAME AGENT_A AGENT_B" in capsys.readouterr().err
    assert main(["arena", "sprt", "tictactoe", "random", "random", "--db", str(path)]) == 2
    assert "the same agent ('random')" in capsys.readouterr().err


def test_sprt_plays_until_decided_and_resumes(tmp_path, capsys):
    db = tmp_path / "match.db"
    args = ["arena", "sprt", "tictactoe", "minimax:depth=9", "random", "--db", str(db), "--elo0", "0",
            "--elo1", "50", "--max-pairs", "200", "--json"]
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["decision"] == "H1" and d["player_a"] == "minimax:depth=9"
    assert d["llr"] >= d["upper"] and d["pairs"] < 200
    with Record(db) as rec:
        n = len(rec.games(d["tournament"]))
        # independent recount of the pentanomial from the raw rows
        names = rec.player_names()
        by_pair: dict = {}
        for g in rec.games(d["tournament"]):
            a_seat = [names[p] for p in g["players"]].index("minimax:depth=9")
            mine, theirs = g["returns"][a_seat], g["returns"][1 - a_seat]
            by_pair.setdefault(g["pair"], []).append(1.0 if mine > theirs else 0.5 if mine == theirs else 0.0)
    counts = [0] * 5
    for scores in by_pair.values():
        if len(scores) == 2:
            counts[int(2 * sum(scores))] += 1
    assert counts == d["pentanomial"]
    assert n >= 2 * d["pairs"]
    # the same command again: already decided, nothing more is played
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["pentanomial"] == d["pentanomial"]
    with Record(db) as rec:
        assert len(rec.games(d["tournament"])) == n
    # and the ratings of that record agree with the joint fit on the same games
    assert main(["arena", "ratings", "--db", str(db), "--json", "--bootstrap", "10"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["player"] == "minimax:depth=9" and rows[0]["games"] == n


def test_plot_to_a_file_is_a_one_line_error(record4, tmp_path, capsys):
    path, _ = record4
    a_file = tmp_path / "x.png"
    a_file.write_bytes(b"")
    assert main(["arena", "plot", "--db", str(path), "--out", str(a_file), "--bootstrap", "30"]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err
