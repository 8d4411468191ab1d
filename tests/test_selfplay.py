"""Self-play: every game recorded once, the config checked, and the run killed with SIGKILL at a random
moment resumes to the same generations, games and (one worker, fixed seed) the same weights bit for bit."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from plyground.arena.record import Record
from plyground.datasets.selfplay import SelfPlayError, config_from_dict, load_selfplay_config, selfplay

CONFIG = """
game = "tictactoe"
out = "{out}"
name = "t"
seed = 5
generations = 3
[network]
width = 8
blocks = 1
[selfplay]
games = 12
lockstep = 6
sims = 16
leaves = 4
temperature_plies = 4
[buffer]
positions = 2000
[train]
steps = 15
batch_size = 32
threads = 1
[evaluate]
games = 0
"""


def _write(tmp_path, name, **extra):
    text = CONFIG.format(out=str(tmp_path / name))
    for k, v in extra.items():
        text = text.replace(k, v)
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


def _run(cfg_path, timeout=300):
    return subprocess.run([sys.executable, "-m", "plyground.cli.main", "train", "selfplay", str(cfg_path), "--quiet"],
                          capture_output=True, text=True, timeout=timeout)


def _state(out):
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    with Record(out / "record.db") as rec:
        ids = [g["id"] for g in rec.games()]
        plies = sum(g["plies"] for g in rec.games())
        n_moves = rec.db.conn.execute("SELECT count(*) FROM moves").fetchone()[0]
    return ck, ids, plies, n_moves


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(SelfPlayError, match="unknown key 'simz'.*allowed: games"):
        config_from_dict({"game": "tictactoe", "out": "x", "selfplay": {"simz": 3}})
    with pytest.raises(SelfPlayError, match="unknown config key 'generation'"):
        config_from_dict({"game": "tictactoe", "out": "x", "generation": 3})
    with pytest.raises(SelfPlayError, match="'selfplay.games': 0 must be >= 1"):
        config_from_dict({"game": "tictactoe", "out": "x", "selfplay": {"games": 0}})
    with pytest.raises(SelfPlayError, match="kuhn_poker is not one"):
        config_from_dict({"game": "openspiel:kuhn_poker", "out": "x"})
    with pytest.raises(SelfPlayError, match="no self-play config at"):
        load_selfplay_config(tmp_path / "none.toml")
    with pytest.raises(SelfPlayError, match="'train.lr'.*not a finite number"):
        config_from_dict({"game": "tictactoe", "out": "x", "train": {"lr": "fast"}})


def test_games_are_recorded_with_their_search_and_rated(tmp_path):
    cfg = load_selfplay_config(_write(tmp_path, "rated", **{"generations = 3": "generations = 1",
                                                           "games = 0": 'games = 2\nsims = 8\nreferences = ["random"]'}))
    res = selfplay(cfg)
    assert res.generations == 1 and res.games == 12
    with Record(cfg.out / "record.db") as rec:
        games = rec.games()
        assert len(games) == 12 + 2 * 2   # self-play, then gen 1 against random and gen 0
        sp = [g for g in games if g["tournament"] == "t-selfplay-g000"]
        assert len(sp) == 12 and all(g["termination"] == "normal" for g in sp)
        for g in sp[:3]:
            moves = rec.moves(g["id"])
            assert len(moves) == g["plies"]
            for m in moves:
                visits = m["decision"]["search"]["visits"]
                assert m["decision"]["action"] == m["action"] and str(m["action"]) in visits
    rows = [json.loads(x) for x in (cfg.out / "generations.jsonl").read_text().splitlines()]
    gens = {r["generation"] for r in rows if "generation" in r}
    assert gens == {0, 1} and all(r["elo_lo"] <= r["elo"] <= r["elo_hi"] for r in rows if "generation" in r)


def test_sigkill_at_a_random_moment_resumes_to_the_same_run(tmp_path):
    whole = _write(tmp_path, "whole")
    r = _run(whole)
    assert r.returncode == 0, r.stderr
    ck_a, ids_a, plies_a, moves_a = _state(tmp_path / "whole")

    killed = _write(tmp_path, "killed")
    delay = random.Random().uniform(2.0, 9.0)
    p = subprocess.Popen([sys.executable, "-m", "plyground.cli.main", "train", "selfplay", str(killed), "--quiet"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = _run(killed)
    assert r.returncode == 0, r.stderr
    ck_b, ids_b, plies_b, moves_b = _state(tmp_path / "killed")

    assert ck_a["state"]["generation"] == ck_b["state"]["generation"] == 3
    assert len(ids_b) == len(set(ids_b)) == 3 * 12 and sorted(ids_a) == sorted(ids_b)
    assert plies_b == moves_b and (plies_a, moves_a) == (plies_b, moves_b)
    for k, v in ck_a["state_dict"].items():
        assert torch.equal(v, ck_b["state_dict"][k]), f"{k} differs after the resume (killed after {delay:.1f}s)"
    assert ck_a["trainer"]["step"] == ck_b["trainer"]["step"] == 45


def test_an_openspiel_game_self_plays_through_the_plain_python_search(tmp_path):
    cfg = config_from_dict({"game": "openspiel:hex(board_size=3)", "out": str(tmp_path / "hex"), "generations": 1,
                            "network": {"width": 4, "blocks": 1},
                            "selfplay": {"games": 4, "lockstep": 2, "sims": 8, "leaves": 4},
                            "train": {"steps": 3, "batch_size": 8}, "evaluate": {"games": 0}})
    res = selfplay(cfg)
    assert res.generations == 1 and res.games == 4
    with Record(cfg.out / "record.db") as rec:
        games = rec.games()
        assert len(games) == 4
        for g in games:
            moves = rec.moves(g["id"])
            assert moves and all(str(m["action"]) in m["decision"]["search"]["visits"] for m in moves)
    assert (cfg.out / "generations" / "gen-001.pt").exists()


@pytest.mark.slow
def test_selfplay_on_a_local_ray_instance(tmp_path):
    ray = pytest.importorskip("ray")
    cfg = load_selfplay_config(_write(tmp_path, "ray", **{"generations = 3": "generations = 1",
                                                         "leaves = 4": 'leaves = 4\nworkers = 2\nbackend = "ray"'}))
    try:
        res = selfplay(cfg)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert res.generations == 1 and res.games == 12
    with Record(cfg.out / "record.db") as rec:
        ids = [g["id"] for g in rec.games()]
        assert len(ids) == len(set(ids)) == 12
        pids = {m["decision"]["info"]["pid"] for g in ids for m in rec.moves(g)}
    assert pids and os.getpid() not in pids   # the tasks ran in Ray's worker processes
