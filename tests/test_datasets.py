"""Datasets from arena records, checked against independent truth: targets recomputed by hand from the
recorded decisions, positions replayed through the rules, symmetries written out in the test, the
proven-best set from a plain negamax of tic-tac-toe; readers (pyarrow, HF datasets, polars, DuckDB);
the CLI."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from plyground import games
from plyground.arena.record import Record
from plyground.datasets import DatasetError, build_dataset, load_arrays, read_manifest
from plyground.datasets.build import DEFAULT_TEMPERATURE, policy_target

TTT = games.make("tictactoe")


# ------------------------------------------------------------------------------------- helpers
def _replay(game, position: str):
    state = game.new_initial_state()
    for tok in position.split():
        a = int(tok)
        assert a in state.legal_actions(), (position, a)
        state.apply_action(a)
    return state


def _mask(state, n: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[state.legal_actions()] = True
    return m


def _softmax(values: dict[int, float], t: float, n: int) -> np.ndarray:
    """The softmax of per-move values at temperature ``t``, written out (no numpy vector ops)."""
    top = max(values.values())
    w = {a: math.exp((v - top) / t) for a, v in values.items()}
    s = sum(w.values())
    out = np.zeros(n)
    for a, x in w.items():
        out[a] = x / s
    return out


def _mcts_decision(action: int, legal: list[int], rng) -> dict:
    visits = {str(a): int(rng.integers(1, 30)) for a in legal}
    visits[str(action)] += 50
    return {"action": action, "search": {"engine": "mcts", "visits": visits, "value": float(rng.uniform(-1, 1)),
                                         "action_values": {str(a): 0.0 for a in legal}, "exact": False}}


def _ab_decision(action: int, legal: list[int], rng) -> dict:
    vals = {str(a): round(float(rng.uniform(-0.3, 0.3)), 3) for a in legal}
    vals[str(action)] = 0.5
    return {"action": action, "search": {"engine": "alphabeta-numba", "action_values": vals, "value": 0.5,
                                         "exact": False, "extra": {}}}


def _write_game(rec: Record, gid: str, tournament: str, seats: list[str], kinds: list[str], seq: list[int],
                rng, ended: str, termination: str = "normal", opening: int = 1, game=TTT) -> list[dict]:
    """Record a game: the first ``opening`` plies are opening plies, then each seat's decisions are
    made by its kind (mcts, ab, none); returns from the rules (forfeits: -1 for seat 1)."""
    state = game.new_initial_state()
    moves = []
    for ply, a in enumerate(seq):
        p = state.current_player()
        legal = state.legal_actions()
        assert a in legal
        if ply < opening:
            d = {"opening": True}
        elif kinds[p] == "mcts":
            d = _mcts_decision(a, legal, rng)
        elif kinds[p] == "ab":
            d = _ab_decision(a, legal, rng)
        else:
            d = {"action": a, "search": {}}
        moves.append({"ply": ply, "player": p, "action": a, "text": state.action_to_string(a), "think_time": 0.0,
                      "decision": d})
        state.apply_action(a)
    returns = list(state.returns()) if termination == "normal" else [1.0, -1.0]
    if termination == "normal":
        assert state.is_terminal()
    rec.insert_game({"id": gid, "tournament": tournament, "game": game.name, "players": seats, "returns": returns,
                     "termination": termination, "ended": ended, "started": ended}, moves)
    return moves


@pytest.fixture
def ttt_record(tmp_path):
    """A hand-built tic-tac-toe record: two tournaments, three agents, a repeated game, a forfeit."""
    db = tmp_path / "ttt.db"
    rec = Record(db)
    rng = np.random.default_rng(3)
    ids = {n: rec.upsert_player(n, spec, {"name": n, "spec": spec}) for n, spec in
           (("mcts-a", "mcts:sims=10"), ("ab-a", "minimax:depth=3"), ("rand", "random"))}
    rec.upsert_tournament("t1id", "first", "tictactoe", "round-robin", 1, {"n": 1})
    rec.upsert_tournament("t2id", "second", "tictactoe", "round-robin", 2, {"n": 2})
    games_ = {}
    # X (seat 0) wins the top row
    games_["g1"] = _write_game(rec, "g1", "t1id", [ids["mcts-a"], ids["ab-a"]], ["mcts", "ab"],
                               [0, 3, 1, 4, 2], rng, "2026-01-01T00:00:01")
    # a draw
    games_["g2"] = _write_game(rec, "g2", "t1id", [ids["ab-a"], ids["mcts-a"]], ["ab", "mcts"],
                               [4, 0, 8, 2, 1, 7, 6, 3, 5], rng, "2026-01-01T00:00:02")
    # the same moves as g1 in another tournament, the second seat without a search
    games_["g3"] = _write_game(rec, "g3", "t2id", [ids["mcts-a"], ids["rand"]], ["mcts", "none"],
                               [0, 3, 1, 4, 2], rng, "2026-01-01T00:00:03")
    # a forfeit on time after two plies
    games_["g4"] = _write_game(rec, "g4", "t1id", [ids["mcts-a"], ids["ab-a"]], ["mcts", "ab"],
                               [4, 0], rng, "2026-01-01T00:00:04", termination="timeout")
    rec.close()
    return db, ids, games_


def _expected(moves: list[dict], returns: list[float], seats_kept=None, t: float = DEFAULT_TEMPERATURE):
    """The rows a build must give for one game, computed here from the recorded decisions."""
    out, history = [], []
    for m in moves:
        d, p, a = m["decision"], m["player"], m["action"]
        s = d.get("search") or {}
        if not d.get("opening") and s and (seats_kept is None or p in seats_kept):
            if s["engine"] == "mcts":
                total = sum(s["visits"].values())
                pol = np.zeros(9)
                for k, v in s["visits"].items():
                    pol[int(k)] = v / total
            else:
                pol = _softmax({int(k): v for k, v in s["action_values"].items()}, t, 9)
            out.append({"position": " ".join(map(str, history)), "player": p, "policy": pol,
                        "outcome": returns[p], "root_value": s["value"]})
        history.append(a)
    return out


def _rows(manifest_dir) -> list[str]:
    """The position column (move sequences) of a dataset, read with pyarrow."""
    import pyarrow.parquet as pq
    return pq.read_table(Path(manifest_dir) / "data.parquet", columns=["position"]).column("position").to_pylist()


# ------------------------------------------------------------------------------------- targets
def test_targets_equal_hand_computed_values(ttt_record, tmp_path):
    db, _ids, recorded = ttt_record
    m = build_dataset([db], tmp_path / "ds", augment=False, merge=False)
    arrays = load_arrays(tmp_path / "ds")
    positions = _rows(tmp_path / "ds")
    returns = {"g1": [1.0, -1.0], "g2": [0.0, 0.0], "g3": [1.0, -1.0]}
    expected = [row for g in ("g1", "g2", "g3") for row in _expected(recorded[g], returns[g])]
    assert len(arrays) == len(expected) == m["rows"] == m["recorded_positions"]
    for i, e in enumerate(expected):
        assert positions[i] == e["position"]
        assert arrays.player[i] == e["player"]
        np.testing.assert_allclose(arrays.policy[i], e["policy"], rtol=1e-5, atol=1e-7)
        assert arrays.outcome[i] == pytest.approx(e["outcome"])
        assert arrays.root_value[i] == pytest.approx(e["root_value"], abs=1e-6)
        state = _replay(TTT, e["position"])  # the observation and legal set are the rules' own
        assert np.array_equal(arrays.obs[i], np.asarray(state.observation_tensor(), np.float32))
        assert np.array_equal(arrays.legal[i], _mask(state, 9))
        assert state.current_player() == e["player"]
    assert arrays.count.tolist() == [1] * len(expected)
    # the outcome sign follows the mover: X won g1, so X's rows say +1 and O's -1
    g1 = _expected(recorded["g1"], returns["g1"])
    assert [r["outcome"] for r in g1] == [-1.0, 1.0, -1.0, 1.0]
    # the counts in the manifest
    assert m["skipped_moves"]["opening"] == 3 and m["skipped_moves"]["no_search"] == 2
    assert m["excluded_games"] == {"timeout": 1}
    assert m["policy"]["kind"] == "auto" and m["policy"]["temperature"] == DEFAULT_TEMPERATURE
    n_scores = sum(1 for g in ("g1", "g2") for mv in recorded[g]
                   if (mv["decision"].get("search") or {}).get("engine") == "alphabeta-numba")
    assert m["policy"]["used"] == {"scores": n_scores, "visits": len(expected) - n_scores}
    assert [s["games"] for s in m["sources"]] == [3]


def test_scores_temperature_and_policy_kinds(ttt_record, tmp_path):
    db, _ids, recorded = ttt_record
    build_dataset(db, tmp_path / "t", agents=["ab-a"], temperature=0.3, augment=False, merge=False)
    arrays = load_arrays(tmp_path / "t")
    expected = [r for g, seats in (("g1", {1}), ("g2", {0})) for r in
                _expected(recorded[g], [0.0, 0.0], seats, t=0.3)]
    np.testing.assert_allclose(arrays.policy, np.stack([e["policy"] for e in expected]), rtol=1e-5, atol=1e-7)
    # visits asked of alpha-beta moves: nothing to learn; proven asked of unproven searches: skipped
    with pytest.raises(DatasetError, match="no positions"):
        build_dataset(db, tmp_path / "v", agents=["ab-a"], policy="visits")
    with pytest.raises(DatasetError, match="proved nothing|not proven|no positions"):
        build_dataset(db, tmp_path / "p", agents=["ab-a"], policy="proven")


def test_policy_target_rules():
    # temperature 0: uniform over the best-scored moves
    p, kind = policy_target({"engine": "alphabeta-generic", "action_values": {"0": 0.2, "1": 0.5, "3": 0.5}},
                            [0, 1, 2, 3], 4, "scores", 0.0)
    assert kind == "scores" and p.tolist() == [0.0, 0.5, 0.0, 0.5]
    # proven: a legal move the search did not score, or a non-exact search, gives no target
    s = {"engine": "alphabeta-numba", "exact": True, "action_values": {"0": 1.0, "1": 0.0}}
    assert policy_target(s, [0, 1, 2], 3, "proven") == (None, "not_proven")
    assert policy_target(dict(s, exact=False), [0, 1], 3, "proven") == (None, "not_proven")
    # ties in value broken by the exact distance-to-win scores: the faster win only
    s = {"engine": "alphabeta-numba-solver", "exact": True, "action_values": {"0": 1.0, "1": 1.0, "2": -1.0},
         "extra": {"action_scores": {"0": 2, "1": 3, "2": -1}}}
    assert policy_target(s, [0, 1, 2], 3, "proven")[0].tolist() == [0.0, 1.0, 0.0]
    # an MCTS proof names no best set
    assert policy_target({"engine": "mcts", "exact": True, "visits": {"0": 1}}, [0], 1, "proven")[1] == "not_proven"
    # a visit on an illegal action is the record's fault, named
    with pytest.raises(ValueError, match=r"not legal"):
        policy_target({"engine": "mcts", "visits": {"5": 3}}, [0, 1], 9)


# ------------------------------------------------------------------------------------- filters
def test_filters_pick_exactly_the_named_agent_and_tournament(ttt_record, tmp_path):
    db, _ids, recorded = ttt_record
    m = build_dataset([db], tmp_path / "a", agents=["mcts-a"], augment=False, merge=False)
    got = list(zip(_rows(tmp_path / "a"), load_arrays(tmp_path / "a").player.tolist()))
    want = [(r["position"], r["player"]) for g, seats in (("g1", {0}), ("g2", {1}), ("g3", {0}))
            for r in _expected(recorded[g], [0.0, 0.0], seats)]
    assert got == want
    assert m["filters"]["agents"] == ["mcts-a"] and m["skipped_moves"]["other_agents"] > 0
    # a tournament by name and by id: only g3 is in "second"
    for t in ("second", "t2id"):
        m = build_dataset([db], tmp_path / t, tournaments=[t], augment=False, merge=False)
        assert [s["games"] for s in m["sources"]] == [1]
        assert _rows(tmp_path / t) == [r["position"] for r in _expected(recorded["g3"], [0.0, 0.0])]
    # forfeits on request
    m = build_dataset([db], tmp_path / "f", include_forfeits=True, augment=False, merge=False)
    assert m["excluded_games"] == {} and sum(s["games"] for s in m["sources"]) == 4


def test_refusals_are_clear(ttt_record, tmp_path):
    db, _ids, _ = ttt_record
    with pytest.raises(DatasetError, match=r"no agent named 'nobody'.*ab-a, mcts-a, rand"):
        build_dataset(db, tmp_path / "x", agents=["nobody"])
    with pytest.raises(DatasetError, match=r"no tournament 'zzz'.*first \(t1id\)"):
        build_dataset(db, tmp_path / "x", tournaments=["zzz"])
    with pytest.raises(DatasetError, match=r"no games of 'connect4'.*tictactoe \(4 games\)"):
        build_dataset(db, tmp_path / "x", game="connect4")
    with pytest.raises(DatasetError, match="no record at"):
        build_dataset(tmp_path / "missing.db", tmp_path / "x")
    with pytest.raises(DatasetError, match="policy 'best'"):
        build_dataset(db, tmp_path / "x", policy="best")
    with pytest.raises(DatasetError, match="temperature"):
        build_dataset(db, tmp_path / "x", temperature=-1)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match="not empty.*--force"):
        build_dataset(db, tmp_path / "busy")
    build_dataset(db, tmp_path / "busy", force=True)
    assert (tmp_path / "busy" / "keep.txt").exists() and read_manifest(tmp_path / "busy")["rows"] > 0
    # a record holding two games needs --game; a game without an observation tensor is refused
    other = tmp_path / "mixed.db"
    rec = Record(other)
    pid = rec.upsert_player("p", "random", {"n": "p"})
    rng = np.random.default_rng(0)
    _write_game(rec, "a", "t", [pid, pid], ["mcts", "mcts"], [0, 3, 1, 4, 2], rng, "2026-01-01T00:00:01")
    rec.insert_game({"id": "b", "tournament": "t", "game": "openspiel:battleship", "players": [pid, pid],
                     "returns": [0.0, 0.0], "termination": "normal"}, [])
    rec.close()
    with pytest.raises(DatasetError, match=r"several games.*openspiel:battleship.*--game"):
        build_dataset(other, tmp_path / "y")
    with pytest.raises(DatasetError, match="provides no observation tensor"):
        build_dataset(other, tmp_path / "y", game="openspiel:battleship")
    assert build_dataset(other, tmp_path / "y", game="tictactoe", augment=False)["rows"] == 4
    # a file that is not an arena record is not touched
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(DatasetError, match="not a SQLite arena record|not an arena record"):
        build_dataset(junk, tmp_path / "z")


# ------------------------------------------------------------------------------------- symmetry and merging
# The square's symmetries written out here as maps of a cell (r, c), independent of games.symmetry.
D4 = [lambda r, c: (r, c), lambda r, c: (c, 2 - r), lambda r, c: (2 - r, 2 - c), lambda r, c: (2 - c, r),
      lambda r, c: (r, 2 - c), lambda r, c: (2 - r, c), lambda r, c: (c, r), lambda r, c: (2 - c, 2 - r)]


def _cell_perm(g) -> list[int]:
    return [g(a // 3, a % 3)[0] * 3 + g(a // 3, a % 3)[1] for a in range(9)]


def _board(state) -> list[str]:
    return [("x" if ch == "x" else "o" if ch == "o" else ".") for ch in str(state).replace("\n", "")]


def test_augmented_tictactoe_rows_are_legal_positions_with_transformed_targets(ttt_record, tmp_path):
    db, _ids, recorded = ttt_record
    base_dir, aug_dir = tmp_path / "base", tmp_path / "aug"
    build_dataset(db, base_dir, tournaments=["first"], augment=False, merge=False)
    m = build_dataset(db, aug_dir, tournaments=["first"], augment=True, merge=False)
    base, aug = load_arrays(base_dir), load_arrays(aug_dir)
    base_pos, aug_pos = _rows(base_dir), _rows(aug_dir)
    assert len(m["augment"]) == 7 and len(aug) == 8 * len(base) == m["positions"]
    for i in range(len(aug)):
        state = _replay(TTT, aug_pos[i])  # every augmented row is a legal position ...
        assert np.array_equal(aug.obs[i], np.asarray(state.observation_tensor(), np.float32))
        assert np.array_equal(aug.legal[i], _mask(state, 9))
        assert state.current_player() == aug.player[i]
        assert aug.policy[i][~aug.legal[i]].sum() == 0
    # ... and each original row's 8 copies are its images under the 8 symmetries, targets moved along
    for j in range(len(base)):
        orig_board = _board(_replay(TTT, base_pos[j]))
        images = []
        for g in D4:
            perm = _cell_perm(g)
            board = ["."] * 9
            for a in range(9):
                board[perm[a]] = orig_board[a]
            pol = np.zeros(9, np.float32)
            pol[perm] = base.policy[j]
            images.append((board, pol))
        copies = [i for i in range(len(aug)) if i % len(base) == j]
        assert len(copies) == 8
        for i in copies:
            board = _board(_replay(TTT, aug_pos[i]))
            assert any(board == b and np.allclose(aug.policy[i], p) for b, p in images), aug_pos[i]
            assert aug.outcome[i] == base.outcome[j]
            assert aug.root_value[i] == base.root_value[j]


def test_connect4_mirror_rows(tmp_path):
    """Connect four: the mirrored copy of each row is the position reached by the mirrored moves
    (column c -> 6 - c, written out here), with the policy mirrored."""
    db = tmp_path / "c4.db"
    rec = Record(db)
    pid = rec.upsert_player("m", "mcts", {"n": "m"})
    game = games.make("connect4")
    rng = np.random.default_rng(5)
    seq, state = [], game.new_initial_state()
    while not state.is_terminal():
        a = int(rng.choice(state.legal_actions()))
        seq.append(a)
        state.apply_action(a)
    _write_game(rec, "c", "t", [pid, pid], ["mcts", "mcts"], seq, rng, "2026-01-01T00:00:01", game=game)
    rec.close()
    m = build_dataset(db, tmp_path / "d", merge=False)
    arrays, pos = load_arrays(tmp_path / "d"), _rows(tmp_path / "d")
    n = len(arrays) // 2
    assert m["augment"] == ["mirror"] and len(arrays) == 2 * n == 2 * (len(seq) - 1)
    for j in range(n):
        mirrored = " ".join(str(6 - int(a)) for a in pos[j].split())
        assert pos[n + j] == mirrored
        state = _replay(game, mirrored)
        assert np.array_equal(arrays.obs[n + j], np.asarray(state.observation_tensor(), np.float32))
        assert np.array_equal(arrays.legal[n + j], _mask(state, 7))
        assert np.allclose(arrays.policy[n + j], arrays.policy[j][::-1])


def test_merge_averages_targets_and_sums_counts(ttt_record, tmp_path):
    db, _ids, recorded = ttt_record
    # g1 and g3 play the same moves: X's positions appear twice with different recorded targets
    build_dataset(db, tmp_path / "u", agents=["mcts-a"], augment=False, merge=False)
    m = build_dataset(db, tmp_path / "m", agents=["mcts-a"], augment=False, merge=True)
    u, mm = load_arrays(tmp_path / "u"), load_arrays(tmp_path / "m")
    up, mp = _rows(tmp_path / "u"), _rows(tmp_path / "m")
    assert m["positions"] == len(u) and m["rows"] == len(mm) == len(set(up))
    assert int(mm.count.sum()) == len(u)
    for i, p in enumerate(mp):
        same = [j for j, q in enumerate(up) if q == p]
        assert mm.count[i] == len(same)
        np.testing.assert_allclose(mm.policy[i], u.policy[same].mean(axis=0), rtol=1e-5, atol=1e-7)
        assert mm.outcome[i] == pytest.approx(u.outcome[same].mean())
        assert mm.root_value[i] == pytest.approx(u.root_value[same].mean(), abs=1e-6)
    assert any(c == 2 for c in mm.count)
    # with augmentation, the 8 images of the position after the centre opening (g2: mcts-a plays O there)
    # are one position: its row counts all 8 and its policy is the average of the 8 images of the
    # recorded policy: each corner the mean of the four corners, each edge the mean of the four edges
    build_dataset(db, tmp_path / "c", tournaments=["first"], agents=["mcts-a"])
    c, cp = load_arrays(tmp_path / "c"), _rows(tmp_path / "c")
    centre = [i for i, p in enumerate(cp) if p == "4"]
    assert len(centre) == 1
    k = centre[0]
    orig = _expected(recorded["g2"], [0.0, 0.0], {1})[0]
    assert orig["position"] == "4" and c.count[k] == 8
    corners, edges = [0, 2, 6, 8], [1, 3, 5, 7]
    np.testing.assert_allclose(c.policy[k][corners], orig["policy"][corners].mean(), rtol=1e-5)
    np.testing.assert_allclose(c.policy[k][edges], orig["policy"][edges].mean(), rtol=1e-5)
    assert c.policy[k][4] == 0 and not c.legal[k][4]


# ------------------------------------------------------------------------------------- storage and readers
def test_manifest_hash_and_determinism(ttt_record, tmp_path):
    db, _ids, _ = ttt_record
    m1 = build_dataset(db, tmp_path / "a")
    m2 = build_dataset(db, tmp_path / "b")
    data = (tmp_path / "a" / "data.parquet").read_bytes()
    assert m1["content_hash"] == hashlib.sha256(data).hexdigest() == m2["content_hash"]
    on_disk = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert on_disk == m1 == read_manifest(tmp_path / "a")
    for key in ("format", "version", "game", "obs_shape", "num_actions", "num_players", "rows", "positions", "sources",
                "filters", "policy", "augment", "content_hash", "created", "plyground_version"):
        assert key in m1, key
    assert m1["obs_shape"] == [3, 3, 3] and m1["num_actions"] == 9 and m1["game"] == "tictactoe"
    # a changed file is caught
    with open(tmp_path / "a" / "data.parquet", "ab") as f:
        f.write(b"\0")
    with pytest.raises(DatasetError, match="content_hash"):
        load_arrays(tmp_path / "a")
    with pytest.raises(DatasetError, match="no manifest.json|not a dataset directory"):
        load_arrays(tmp_path)


def _hf_datasets():
    """Hugging Face ``datasets`` (this checkout's root, which holds plyground's own ``datasets``
    folder, may be on sys.path as the current directory)."""
    import importlib
    root = os.path.realpath(Path(games.__file__).parent.parent)
    saved = list(sys.path)
    mod = sys.modules.get("datasets")
    if mod is not None and os.path.realpath(getattr(mod, "__file__", "") or "").startswith(root + os.sep):
        del sys.modules["datasets"]
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.getcwd()) != root]
    try:
        return importlib.import_module("datasets")
    finally:
        sys.path[:] = saved


def test_readers_see_the_same_data(ttt_record, tmp_path, monkeypatch):
    db, _ids, _ = ttt_record
    build_dataset(db, tmp_path / "d")
    arrays = load_arrays(tmp_path / "d")
    path = str(tmp_path / "d" / "data.parquet")
    n, width = len(arrays), 27
    assert arrays.obs.dtype == np.float32 and arrays.player.dtype == np.int64 and arrays.legal.dtype == bool
    assert arrays.policy.dtype == np.float32 and arrays.count.dtype == np.int32
    assert np.allclose(arrays.policy.sum(axis=1), 1.0, atol=1e-5)

    import polars as pl
    df = pl.read_parquet(path)
    assert df.height == n
    assert np.array_equal(np.array(df["obs"].to_list(), np.float32).reshape(n, 3, 3, 3), arrays.obs)
    assert np.array_equal(np.array(df["policy"].to_list(), np.float32), arrays.policy)
    assert df["count"].to_list() == arrays.count.tolist()

    import duckdb
    rows = duckdb.sql(f"SELECT count(*), sum(count), min(len(obs)), max(len(legal)) FROM read_parquet('{path}')")
    assert rows.fetchall() == [(n, int(arrays.count.sum()), width, 9)]

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf = _hf_datasets()
    ds = hf.load_dataset("parquet", data_files=path, split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == n
    assert np.allclose(np.array(ds["outcome"], np.float32), arrays.outcome)
    assert np.array_equal(np.array(ds[:5]["legal"]), arrays.legal[:5])
    # torch without a loop over rows
    import torch
    t = torch.from_numpy(arrays.obs)
    assert tuple(t.shape) == (n, 3, 3, 3)
    assert len(arrays.take(np.arange(n) % 2 == 0)) == (n + 1) // 2


# ------------------------------------------------------------------------------------- the arena end to end
def _negamax_keys():
    """Every tic-tac-toe position's exact value for the mover with its distance, by a plain memoised
    negamax over the board: key > key' when a result is better (a faster win, a slower loss)."""
    lines = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
    memo: dict[tuple, int] = {}

    def won(b, who):
        return any(all(b[i] == who for i in ln) for ln in lines)

    def value(b: tuple, me: str) -> int:
        """From ``me``'s view, ``me`` to move: +(10 - n) for a win with n stones at the end, -(10 - n) a loss."""
        if b in memo:
            return memo[b]
        other = "o" if me == "x" else "x"
        empty = [i for i in range(9) if b[i] == "."]
        if not empty:
            return 0
        best = -100
        for i in empty:
            nb = b[:i] + (me,) + b[i + 1:]
            n = 9 - len(empty) + 1
            v = (10 - n) if won(nb, me) else -value(nb, other)
            best = max(best, v)
        memo[b] = best
        return best

    return value, won


def test_arena_record_end_to_end_and_proven_set_against_negamax(tmp_path):
    from plyground.arena.config import config_from_dict
    from plyground.arena.runner import run_tournament
    cfg = config_from_dict({"game": "tictactoe", "seed": 4, "games_per_pairing": 4, "name": "e2e",
                            "agents": [{"agent": "mcts", "sims": 40, "name": "mcts-40"},
                                       {"agent": "minimax", "exact": True, "name": "solver"}],
                            "openings": {"random_plies": 1}})
    db = tmp_path / "arena.db"
    run_tournament(cfg, db, workers=1)
    # auto: MCTS rows are the recorded visit distributions, solver rows the softmax of its values
    m = build_dataset(db, tmp_path / "auto", augment=False, merge=False)
    arrays, pos = load_arrays(tmp_path / "auto"), _rows(tmp_path / "auto")
    rec = Record(db)
    names = rec.player_names()
    expected = []
    for g in rec.games():
        seq = []
        for mv in rec.moves(g["id"]):
            s = (mv["decision"] or {}).get("search")
            if s:
                if names[g["players"][mv["player"]]] == "mcts-40":
                    tot = sum(s["visits"].values())
                    pol = np.zeros(9)
                    for k, v in s["visits"].items():
                        pol[int(k)] = v / tot
                else:
                    pol = _softmax({int(k): v for k, v in s["action_values"].items()}, DEFAULT_TEMPERATURE, 9)
                expected.append((" ".join(map(str, seq)), pol, g["returns"][mv["player"]], s["value"]))
            seq.append(mv["action"])
    rec.close()
    assert len(arrays) == len(expected) == m["rows"]
    for i, (p, pol, ret, val) in enumerate(expected):
        assert pos[i] == p
        np.testing.assert_allclose(arrays.policy[i], pol, rtol=1e-5, atol=1e-7)
        assert arrays.outcome[i] == pytest.approx(ret) and arrays.root_value[i] == pytest.approx(val, abs=1e-6)
    # proven: the solver's rows are uniform over exactly the moves that keep the exact result
    m = build_dataset(db, tmp_path / "proven", agents=["solver"], policy="proven", augment=False, merge=False)
    arrays, pos = load_arrays(tmp_path / "proven"), _rows(tmp_path / "proven")
    assert m["policy"]["used"] == {"proven": len(arrays)} and len(arrays) > 5
    value, won = _negamax_keys()
    for i, p in enumerate(pos):
        state = _replay(TTT, p)
        b = tuple(_board(state))
        me = "x" if state.current_player() == 0 else "o"
        other = "o" if me == "x" else "x"
        keys = {}
        for a in state.legal_actions():
            nb = b[:a] + (me,) + b[a + 1:]
            n = sum(ch != "." for ch in nb)
            keys[a] = (10 - n) if won(nb, me) else -value(nb, other)
        top = max(keys.values())
        best = sorted(a for a, k in keys.items() if k == top)
        assert sorted(np.flatnonzero(arrays.policy[i]).tolist()) == best, p
        np.testing.assert_allclose(arrays.policy[i][best], 1.0 / len(best), rtol=1e-6)


# ------------------------------------------------------------------------------------- the CLI
def test_cli_build_and_info(ttt_record, tmp_path, capsys):
    from plyground.cli.main import main
    db, _ids, _ = ttt_record
    out = tmp_path / "cli"
    assert main(["datasets", "build", "--db", str(db), "--agent", "mcts-a", "--tournament", "first",
                 "--no-augment", "--out", str(out), "--quiet"]) == 0
    m = read_manifest(out)
    assert m["filters"]["agents"] == ["mcts-a"] and m["filters"]["tournaments"] == ["first"] and m["augment"] == []
    err = capsys.readouterr().err
    assert f"{m['rows']} rows of tictactoe" in err
    assert main(["datasets", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"tictactoe, {m['rows']} rows" in text and "policy auto" in text and "content hash" in text and "ok" in text
    assert main(["datasets", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["manifest"]["content_hash"] == m["content_hash"] and info["stats"]["rows"] == m["rows"]
    # errors: one line naming the problem, exit status 2
    assert main(["datasets", "build", "--db", str(db), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["datasets", "build", "--db", str(tmp_path / "nope.db"), "--out", str(tmp_path / "n")]) == 2
    assert "no record at" in capsys.readouterr().err
    assert main(["datasets", "build", "--db", str(db), "--agent", "zed", "--out", str(tmp_path / "n")]) == 2
    assert "agents present: ab-a, mcts-a, rand" in capsys.readouterr().err
    assert main(["datasets", "build", "--db", str(db), "--policy", "scores", "--temperature", "0.5", "--no-merge",
                 "--out", str(out), "--force", "--quiet"]) == 0
    assert read_manifest(out)["policy"]["temperature"] == 0.5
    assert main(["datasets", "info", str(tmp_path / "nothing")]) == 2
