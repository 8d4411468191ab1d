"""The plyground command: help, play, analyze and errors, through its real entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from plyground.cli.main import build_parser, main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plyground.cli.main", *args], capture_output=True, text=True,
                          timeout=300)


def test_help_lists_every_command_with_a_description():
    text = build_parser().format_help()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        assert name in text
    for action in sub._choices_actions:
        assert action.help, f"command {action.dest} has no one-line description"


def test_play_prints_score_and_moves(capsys):
    assert main(["play", "tictactoe", "minimax:depth=9", "random:seed=1", "--games", "2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("moves:") == 2
    assert "score A" in out
    # perfect play never loses at tic-tac-toe
    assert "-0," in out.split("(A:")[1]


def test_analyze_json_gives_the_exact_score(c4_solved):
    moves, score = next((m, s) for m, s in c4_solved if len(m) == 32)
    out = run("analyze", "position", "connect4", "--moves", moves, "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["exact"] is True and d["score"] == score


@pytest.mark.parametrize("args, fragment", [
    (["analyze", "position", "chess", "--moves", ""], "unknown game 'chess'"),
    (["analyze", "position", "connect4", "--moves", "48"], "illegal action '8'"),
    (["analyze", "position", "connect4", "--budget", "depth=x"], "is not a number"),
    (["analyze", "position", "connect4", "--budget", "sims=10"], "does not apply to --engine minimax"),
    (["play", "connect4", "random", "mcts:foo=1"], "no parameter 'foo'"),
])
def test_bad_input_is_a_clear_error_not_a_traceback(args, fragment):
    out = run(*args)
    assert out.returncode == 2
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args, ratio_key", [
    (["bench", "mcts", "--game", "tictactoe", "--sims", "500", "--repeats", "1"], "ratio"),
    (["bench", "alphabeta", "--game", "tictactoe"], "nodes_per_s_ratio"),
])
def test_bench_runs_ours_and_the_peer_and_reports_a_ratio(args, ratio_key):
    out = run(*args, "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d[ratio_key] > 0
