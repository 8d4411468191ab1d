"""The arena throughput benchmark runs end to end on a tiny
tournament: every game recorded, worker counts alternated over the rounds, speed-ups taken
against the same round's first count."""

from __future__ import annotations

import math

import pytest

from plyground.arena import bench
from plyground.games.errors import PlygroundError


def test_steady_rate_skips_the_warm_up():
    commits = [(0.0, 5), (1.0, 10), (2.0, 60), (3.0, 110)]  # 10% of 100 games recorded at t=1
    rate, start = bench.steady_rate(commits, 100)
    assert (rate, start) == (50.0, 1.0)
    assert math.isnan(bench.steady_rate([(0.0, 1)], 100)[0])


def test_bench_alternates_worker_counts_and_takes_medians():
    res = bench.run_bench(games=40, workers=(1, 2), repeats=2)
    assert [(r["round"], r["workers"]) for r in res["runs"]] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    for r in res["runs"]:
        first = next(x for x in res["runs"] if x["round"] == r["round"])
        assert r["speedup"] == pytest.approx(r["games_per_s"] / first["games_per_s"])
    twos = sorted(r["speedup"] for r in res["runs"] if r["workers"] == 2)
    assert res["median_speedup"][2] == pytest.approx(sum(twos) / 2)
    assert res["median_speedup"][1] == 1.0
    assert all(r["games_per_s"] > 0 and r["record_ms_per_game"] > 0 for r in res["runs"])


@pytest.mark.parametrize("kwargs, match", [({"repeats": 0}, "repeats"), ({"workers": (0,)}, "worker counts")])
def test_bench_rejects_bad_settings(kwargs, match):
    with pytest.raises(PlygroundError, match=match):
        bench.run_bench(games=20, **kwargs)
