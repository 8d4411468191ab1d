"""The LLM benchmark command names bad arguments before it loads any model."""

from __future__ import annotations

import pytest

from plyground.agents.llm import bench
from plyground.agents.llm.bench_agents import pair_interval


@pytest.mark.parametrize("argv, message", [
    (["strength", "nope"], "unknown matchup 'nope'; allowed: llm, llm-minimax, llm-mcts"),
    (["score", "llm"], "a matchup ('llm') is only taken by 'strength'"),
    (["strength", "--games", "0"], "--games 0: must be 1 or more"),
    (["strength", "--first-pair", "0"], "--first-pair 0: must be 1 or more"),
    (["speed", "--model", "x.gguf"], "--model is taken by score and tree only"),
])
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_pair_interval_is_a_normal_interval_over_pair_scores():
    # pairs scoring 1, 0.5, 1, 0: mean 0.625, sample sd 0.4787, se 0.2394
    m, lo, hi = pair_interval([1.0, 0.5, 1.0, 0.0])
    assert m == 0.625
    assert lo == pytest.approx(0.625 - 1.96 * 0.23936, abs=1e-4)
    assert hi == pytest.approx(min(1.0, 0.625 + 1.96 * 0.23936), abs=1e-4)


def test_a_match_split_over_runs_plays_the_same_pairs():
    """Pair 2 of a two-pair run and a run starting at pair 2 play the same games (the same seeds and
    the deterministic bundled model): a long match can be split over processes and its pairs joined."""
    from plyground.agents.llm.bench_agents import strength
    whole = strength("llm", games=4, verbose=False)
    second = strength("llm", games=2, first_pair=2, verbose=False)
    assert len(whole["pairs"]) == 2 and second["pairs"] == whole["pairs"][1:]
    assert second["first_pair"] == 2 and second["games"] == 2
