"""The record: schema, WAL, a game and its moves in one transaction, decoded reads."""

from __future__ import annotations

import sqlite3

import pytest

from plyground.arena.record import Record, RecordError, config_hash


def _game(gid, players, **kw):
    row = {"id": gid, "tournament": "t", "round": 0, "pair": 0, "game": "connect4", "players": players,
           "returns": [1.0, -1.0], "termination": "normal", "seed": 1, "opening": [3], "started": "a", "ended": "b"}
    row.update(kw)
    return row


def _moves(n):
    return [{"ply": k, "player": k % 2, "action": k % 7, "text": str(k % 7 + 1), "think_time": 0.01,
             "decision": {"action": k % 7, "search": {"nodes": k}}} for k in range(n)]


def test_roundtrip_and_schema(tmp_path):
    path = tmp_path / "r.db"
    rec = Record(path)
    a = rec.upsert_player("A", "random", {"name": "random", "seed": None})
    b = rec.upsert_player("B", "minimax:depth=2", {"name": "minimax", "depth": 2})
    assert a == config_hash({"seed": None, "name": "random"}) and len(a) == 16 and a != b
    assert rec.upsert_player("A2", "random", {"name": "random", "seed": None}) == a  # same config, same player
    rec.upsert_tournament("t", "test", "connect4", "round-robin", 7, {"x": 1})
    rec.insert_game(_game("t-r000-g0000", [a, b]), _moves(5))
    rec.insert_game(_game("t-r000-g0001", [b, a], termination="aborted", returns=[0.0, 0.0]), [])
    assert rec.finished_ids("t") == {"t-r000-g0000", "t-r000-g0001"}
    g = rec.games("t", rated_only=True)
    assert len(g) == 1 and g[0]["players"] == [a, b] and g[0]["returns"] == [1.0, -1.0]
    assert g[0]["opening"] == [3] and g[0]["plies"] == 5 and g[0]["rated"] == 1
    assert rec.games()[1]["rated"] == 0  # aborted games are unrated by default
    m = rec.moves("t-r000-g0000")
    assert [x["ply"] for x in m] == list(range(5)) and m[3]["decision"]["search"]["nodes"] == 3
    assert rec.player_names() == {a: "A2", b: "B"}
    rec.close()
    con = sqlite3.connect(path)  # an independent reader sees WAL mode and the contract's columns
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = {r[1] for r in con.execute("PRAGMA table_info(games)")}
    assert {"id", "tournament", "round", "pair", "game", "players", "returns", "termination", "detail", "rated",
            "seed", "opening", "plies", "started", "ended"} <= cols
    assert con.execute("SELECT version FROM players WHERE id = ?", (a,)).fetchone()[0]


def test_a_game_and_its_moves_are_one_transaction(tmp_path):
    rec = Record(tmp_path / "r.db")
    bad_moves = _moves(3) + [_moves(3)[1]]  # a duplicate ply violates the moves primary key
    with pytest.raises(RecordError):
        rec.insert_game(_game("g1", ["a", "b"]), bad_moves)
    assert rec.finished_ids("t") == set() and rec.moves("g1") == []
    rec.insert_game(_game("g1", ["a", "b"]), _moves(3))
    with pytest.raises(RecordError, match="g1"):
        rec.insert_game(_game("g1", ["a", "b"]), _moves(3))
    rec.insert_game(_game("g1", ["a", "b"], returns=[0.0, 0.0]), _moves(1), if_exists="ignore")
    assert rec.games()[0]["returns"] == [1.0, -1.0] and len(rec.moves("g1")) == 3
    rec.insert_game(_game("g1", ["a", "b"], returns=[0.0, 0.0]), _moves(1), if_exists="replace")
    assert rec.games()[0]["returns"] == [0.0, 0.0] and len(rec.moves("g1")) == 1


def test_bad_rows_are_refused(tmp_path):
    rec = Record(tmp_path / "r.db")
    with pytest.raises(RecordError, match="termination 'won'"):
        rec.insert_game(_game("g", ["a", "b"], termination="won"), [])
    with pytest.raises(RecordError, match="unknown columns"):
        rec.insert_game(_game("g", ["a", "b"], colour="white"), [])
    with pytest.raises(RecordError, match="returns"):
        rec.insert_game({"id": "g", "game": "connect4", "players": ["a", "b"], "termination": "normal"}, [])


def _compact(gid, n_moves, returns=(1.0, -1.0)):
    """A game in write_games' compact form, built through the public helpers."""
    from plyground.arena.record import game_values, move_values
    row = game_values(_game(gid, ["a", "b"], returns=list(returns)), n_moves)
    return row, move_values(gid, _moves(n_moves))


def test_write_games_commits_a_batch_whole(tmp_path):
    path = tmp_path / "r.db"
    rec = Record(path)
    # 40 games (more than one 16-row games statement) with 0..78 moves (several 32-row moves statements + rest)
    batch = [_compact(f"g{k:02d}", 2 * k) for k in range(40)]
    assert rec.write_games(batch) == [f"g{k:02d}" for k in range(40)]
    con = sqlite3.connect(path)  # an independent reader sees exactly what was written, row by row
    assert con.execute("SELECT id, plies, returns FROM games ORDER BY id").fetchall() == \
        [(f"g{k:02d}", 2 * k, "[1.0, -1.0]") for k in range(40)]
    got = con.execute("SELECT game, ply, player, action, text, think_time, decision FROM moves "
                      "ORDER BY game, ply").fetchall()
    assert got == [m for _, moves in batch for m in moves] and len(got) == sum(2 * k for k in range(40))
    assert rec.moves("g03")[5]["decision"] == {"action": 5, "search": {"nodes": 5}}
    # a batch with one recorded id: "error" refuses all of it, "ignore" writes only the new games
    new = [_compact("g03", 1, (0.0, 0.0)), _compact("h1", 3)]
    with pytest.raises(RecordError, match="g03"):
        rec.write_games(new)
    assert "h1" not in rec.finished_ids("t")
    assert rec.write_games(new, if_exists="ignore") == ["h1"]
    assert len(rec.moves("g03")) == 6 and rec.games()[3]["returns"] == [1.0, -1.0] and len(rec.moves("h1")) == 3
    assert rec.write_games(new, if_exists="replace") == ["g03", "h1"]
    assert len(rec.moves("g03")) == 1 and [g for g in rec.games() if g["id"] == "g03"][0]["returns"] == [0.0, 0.0]


def test_write_games_is_atomic_and_checks_its_input(tmp_path):
    rec = Record(tmp_path / "r.db")
    good, bad = _compact("ok", 4), _compact("bad", 4)
    bad = (bad[0], bad[1] + [bad[1][0]])  # a duplicate ply: the batch fails, the good game too
    with pytest.raises(RecordError):
        rec.write_games([good, bad])
    assert rec.finished_ids("t") == set() and rec.moves("ok") == []
    short = (good[0], [m[:6] for m in good[1]])
    with pytest.raises(RecordError, match="expected 7"):
        rec.write_games([short])
    with pytest.raises(RecordError, match="expected 15"):
        rec.write_games([(good[0][:-1], good[1])])
    with pytest.raises(RecordError, match="twice"):
        rec.write_games([good, good])
    with pytest.raises(RecordError, match="termination 'won'"):
        rec.write_games([(good[0][:7] + ("won",) + good[0][8:], good[1])])
    assert rec.finished_ids("t") == set()
    assert rec.write_games([good]) == ["ok"] and len(rec.moves("ok")) == 4
