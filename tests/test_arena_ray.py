"""The Ray backend, on a local Ray instance: the same results as the local pool for deterministic agents,
and the same fault handling (a hung agent's task is cancelled, the game recorded as a timeout)."""

from __future__ import annotations

import pytest

from plyground.arena.config import config_from_dict
from plyground.arena.record import Record
from plyground.arena.runner import run_tournament

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a local Ray instance takes ~10 s to start on 2 cores

CFG = {"game": "connect4", "agents": ["random", "minimax:depth=2", "mcts:sims=30"], "seed": 11,
       "openings": {"random_plies": 2}}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _snapshot(db):
    with Record(db) as rec:
        return {g["id"]: (tuple(g["players"]), tuple(g["returns"]), g["termination"],
                          tuple(m["action"] for m in rec.moves(g["id"]))) for g in rec.games()}


def test_ray_backend_records_the_same_results_as_the_local_pool(tmp_path, local_ray):
    cfg = config_from_dict(CFG)
    s_ray = run_tournament(cfg, tmp_path / "ray.db", workers=2, backend="ray")
    s_loc = run_tournament(cfg, tmp_path / "local.db", workers=2, backend="local")
    assert s_ray.played == s_loc.played == 6
    a, b = _snapshot(tmp_path / "ray.db"), _snapshot(tmp_path / "local.db")
    assert a == b and all(v[2] == "normal" for v in a.values())
    assert ray.is_initialized()  # a Ray the caller started is left running


def test_ray_backend_turns_faults_into_results(tmp_path, local_ray):
    cfg = config_from_dict({"game": "tictactoe", "format": "gauntlet", "move_time": 0.3, "grace": 0.3,
                            "agents": ["random", "faulty:mode=sleep,after=1,seconds=60",
                                       "faulty:mode=block,after=1,seconds=60", "faulty:mode=illegal"]})
    s = run_tournament(cfg, tmp_path / "f.db", workers=2, backend="ray")
    assert s.killed == 2
    with Record(tmp_path / "f.db") as rec:
        names = rec.player_names()
        got = sorted((names[p], g["termination"]) for g in rec.games() for p in g["players"] if names[p] != "random")
    assert got == sorted([("faulty:after=1,mode=block,seconds=60.0", "timeout")] * 2
                         + [("faulty:after=1,mode=sleep,seconds=60.0", "timeout")] * 2
                         + [("faulty:mode=illegal", "illegal_move")] * 2)
