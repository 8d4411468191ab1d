"""Re-analysis of recorded games, labels, accuracy, resume, the per-agent report, position suites and
their commands, each checked against truth computed independently of the project's engines."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from functools import lru_cache

import pytest

from plyground.arena import labels as L
from plyground.arena.analysis import AnalysisError, analyse_games, analyse_task, analysis_rows, parse_engine
from plyground.arena.config import config_from_dict
from plyground.arena.record import Record
from plyground.arena.runner import run_tournament
from plyground.cli.main import main

TTT_AGENTS = ["random", "minimax:depth=2", "mcts:sims=30"]


# --------------------------------------------------------------------------- independent truth
@lru_cache(maxsize=None)
def _negamax(key: str) -> int:
    """The exact value (-1, 0, 1) of a tic-tac-toe position for the player to move: plain minimax over
    the whole tree under OpenSpiel's rules (pyspiel), the position given by its action history."""
    import pyspiel
    state = pyspiel.load_game("tic_tac_toe").new_initial_state()
    for a in (int(x) for x in key.split(",") if x):
        state.apply_action(a)
    me = state.current_player()
    best = -2
    for a in state.legal_actions():
        child = state.clone()
        child.apply_action(a)
        v = int(child.returns()[me]) if child.is_terminal() else -_negamax(key + f"{a},")
        best = max(best, v)
    return best


def _truth_label(before: int, after: int) -> str | None:
    """The exact label written out here: outcome steps lost (win 2, draw 1, loss 0); one step is a
    mistake, two a blunder."""
    drop = (before + 1) - (after + 1)
    return None if drop <= 0 else "mistake" if drop == 1 else "blunder"


@pytest.fixture(scope="module")
def ttt_db(tmp_path_factory):
    """A recorded tic-tac-toe tournament of random, minimax and mcts agents, colour-swapped, with
    random 1-ply openings."""
    db = tmp_path_factory.mktemp("ttt") / "record.db"
    cfg = config_from_dict({"game": "tictactoe", "agents": TTT_AGENTS, "seed": 5, "games_per_pairing": 6,
                            "openings": {"random_plies": 1}})
    summary = run_tournament(cfg, db, workers=1)
    assert summary.played == 18
    return db


def _copy(db, tmp_path, name="copy.db"):
    out = tmp_path / name
    shutil.copy(db, out)
    return out


def _count(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM analysis").fetchone()[0]


def _moves(db) -> dict[str, list[tuple[int, int, int]]]:
    with Record(db) as rec:
        return {g["id"]: [(m["ply"], m["player"], m["action"]) for m in rec.moves(g["id"])] for g in rec.games()}


# --------------------------------------------------------------------------- tic-tac-toe: exact labels
def test_tictactoe_labels_match_a_full_minimax_written_here(ttt_db, tmp_path):
    db = _copy(ttt_db, tmp_path)
    summary = analyse_games(db, ["solver"], workers=1)
    moves = _moves(db)
    n_moves = sum(len(v) for v in moves.values())
    assert summary.total == summary.analysed == n_moves and summary.exact == n_moves
    rows = analysis_rows(db, summary.game_ids, summary.engines)
    assert len(rows) == n_moves
    labels = set()
    for r in rows:
        history = moves[r["game"]][:r["ply"]]
        key = "".join(f"{a}," for _, _, a in history)
        before = _negamax(key)
        import pyspiel
        s = pyspiel.load_game("tic_tac_toe").new_initial_state()
        for _, _, a in history:
            s.apply_action(a)
        assert s.current_player() == r["player"]
        s.apply_action(r["action"])
        after = int(s.returns()[r["player"]]) if s.is_terminal() else -_negamax(key + f"{r['action']},")
        assert r["exact"] is True, r
        assert (r["value_before"], r["value_after"]) == (before, after), r
        assert r["label"] == _truth_label(before, after), r
        assert r["detail"]["exact_change"] == {None: "keeps", "mistake": "lowers", "blunder": "throws away"}[r["label"]]
        # the engine's best move keeps the value
        assert _after(key, r["best_action"]) == before, r
        labels.add(r["label"])
    assert {None, "mistake"} <= labels   # random and mcts:sims=30 do lose value in these games


def _after(key: str, action: int) -> int:
    """The exact value after ``action`` from the mover's view (its return if the move ends the game)."""
    import pyspiel
    s = pyspiel.load_game("tic_tac_toe").new_initial_state()
    for a in (int(x) for x in key.split(",") if x):
        s.apply_action(a)
    me = s.current_player()
    s.apply_action(action)
    return int(s.returns()[me]) if s.is_terminal() else -_negamax(key + f"{action},")


# --------------------------------------------------------------------------- connect four: the solved file
def _positions(min_stones: int, count: int):
    from plyground.arena.suite import load_suite
    picked = [p for p in load_suite() if p.stones >= min_stones]
    # every outcome class: wins, draws and losses for the player to move
    out = [p for p in picked if p.score > 0][:count] + [p for p in picked if p.score == 0][:count] \
        + [p for p in picked if p.score < 0][:count]
    return out


def test_connect4_labels_agree_with_the_solved_scores():
    """The analysed ply is the one after a solved position: its value before is the file's score's
    sign, a best move keeps the score (no label), and a draw thrown into a loss is a mistake."""
    checked = {"best": 0, "draw_lost": 0, "other": 0}
    for pos in _positions(24, 4):
        moves = [[k, k % 2, int(c) - 1, False] for k, c in enumerate(pos.moves)]
        n = len(moves)
        import plyground.games as G
        state = G.play_moves(G.make("connect4"), pos.moves)
        for a in state.legal_actions():
            task = {"game_id": f"p{pos.moves}-{a}", "game": "connect4", "engine": "solver:exact",
                    "moves": moves + [[n, n % 2, a, False]], "plies": [n]}
            (row,) = analyse_task(task)
            detail = json.loads(row[11])
            _, ply, engine, player, action, best, vb, va, exact, label, pv, _ = row
            assert (ply, engine, player, action, exact) == (n, "solver:exact", n % 2, a, 1)
            assert vb == (pos.score > 0) - (pos.score < 0)
            assert detail["score_before"] == pos.score
            assert best in pos.best
            if a in pos.best:
                assert label is None and detail["score_after"] == pos.score
                checked["best"] += 1
            else:
                assert detail["score_after"] < pos.score
                sign_after = (detail["score_after"] > 0) - (detail["score_after"] < 0)
                assert va == sign_after
                # outcome steps lost, written out here: win -> draw or draw -> loss a mistake, win -> loss a blunder
                assert label == _truth_label(int(vb), int(va))
                if pos.score == 0:
                    assert (va, label) == (-1.0, "mistake")
                    checked["draw_lost"] += 1
                elif pos.score < 0:
                    assert label is None     # a faster loss keeps the outcome
                else:
                    checked["other"] += 1
        # the move INTO the solved position: its value after is the file's score seen by the other player
        task = {"game_id": f"into{pos.moves}", "game": "connect4", "engine": "solver:exact", "moves": moves,
                "plies": [n - 1]}
        (row,) = analyse_task(task)
        sign = (pos.score > 0) - (pos.score < 0)
        assert (row[7], row[8], json.loads(row[11])["score_after"]) == (-sign, 1, -pos.score)
        assert row[9] == _truth_label(int(row[6]), -sign)
        checked["into"] = checked.get("into", 0) + 1
    assert all(checked.values()), checked


# --------------------------------------------------------------------------- accuracy and labels
@pytest.mark.parametrize("before,after,expected", [
    (50.0, 50.0, 100.0),                                   # no drop: 100 (the curve gives 99.9999)
    (60.0, 70.0, 100.0),                                   # a gain: 100
    (60.0, 50.0, 103.1668 * math.exp(-0.4354) - 3.1669),   # 10 points: 63.58
    (80.0, 50.0, 103.1668 * math.exp(-1.3062) - 3.1669),   # 30 points: 24.77
    (100.0, 50.0, 103.1668 * math.exp(-2.1770) - 3.1669),  # 50 points: 8.53
    (100.0, 0.0, 0.0),                                     # 100 points: the curve is below 0, clamped
])
def test_accuracy_formula_by_hand(before, after, expected):
    assert L.accuracy(before, after) == pytest.approx(expected, abs=0.01)


def test_labels_at_the_thresholds_and_win_percent():
    assert [L.label(0.6, 0.6 - d) for d in (0.05, 0.1, 0.2, 0.3, 1.0)] == [
        None, "inaccuracy", "mistake", "blunder", "blunder"]
    assert L.label(-0.2, 0.4) is None
    assert (L.win_percent(1.0), L.win_percent(0.0), L.win_percent(-1.0), L.win_percent(3.0)) == (100, 50, 0, 100)
    j = L.judge(0.2, 0.0, exact=False)
    assert j["accuracy"] == pytest.approx(L.accuracy(60.0, 50.0)) and j["loss"] == pytest.approx(0.2)
    assert L.judge(1.0, -1.0, exact=True)["label"] == "blunder"


def test_engine_strings_and_budget_errors():
    assert parse_engine("solver:time=2").canonical == "solver:time=2"
    assert parse_engine("solver", "exact").canonical == "solver:exact"
    assert parse_engine("minimax", "time=0.5,depth=4").canonical == "minimax:depth=4,time=0.5"
    assert parse_engine("neural-mcts:sims=64").canonical == "neural-mcts:sims=64"
    for text, budget, words in [("alphazero", None, "allowed: solver, minimax, mcts, neural-mcts"),
                                ("mcts", "depth=3", "does not apply to engine mcts"),
                                ("solver", "time=-1", "must be a positive number"),
                                ("minimax", "depth=2.5", "whole number"),
                                ("solver", "exact,time=1", "cannot be combined")]:
        with pytest.raises(AnalysisError, match=words):
            parse_engine(text, budget)


# --------------------------------------------------------------------------- resume
def test_stopped_analysis_resumes_without_redoing_or_missing_a_move(ttt_db, tmp_path):
    db = _copy(ttt_db, tmp_path)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 5     # five games' tasks, then stop

    first = analyse_games(db, ["mcts:sims=200"], workers=1, should_stop=stop)
    assert first.stopped and 0 < first.analysed < first.total
    kept = {(r["game"], r["ply"]): r["detail"] for r in analysis_rows(db, first.game_ids, first.engines)}
    assert len(kept) == first.analysed == _count(db)
    second = analyse_games(db, ["mcts:sims=200"], workers=1)
    assert second.already == first.analysed and second.analysed == first.total - first.analysed
    rows = analysis_rows(db, second.game_ids, second.engines)
    assert sorted((r["game"], r["ply"]) for r in rows) == sorted(
        (g, p) for g, ms in _moves(db).items() for p, _, _ in ms)
    assert all(r["detail"] == kept[(r["game"], r["ply"])] for r in rows if (r["game"], r["ply"]) in kept)
    assert analyse_games(db, ["mcts:sims=200"], workers=1).analysed == 0   # finished: nothing redone


def test_killed_analysis_process_resumes(tmp_path):
    """A real SIGKILL of the analysing process after its first commits, then the same command again."""
    db = tmp_path / "c4.db"
    cfg = config_from_dict({"game": "connect4", "agents": ["random", "mcts:sims=50"], "seed": 2,
                            "games_per_pairing": 4})
    run_tournament(cfg, db, workers=1)
    cmd = [sys.executable, "-m", "plyground.cli.main", "analyze", "games", "--db", str(db), "--engine",
           "solver:time=0.05", "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                if _count(db) > 0:
                    break
            except sqlite3.OperationalError:
                pass          # the table appears with the first Record() of the child
            time.sleep(0.02)
        assert proc.poll() is None, "the analysis finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = _count(db)
    total = sum(len(v) for v in _moves(db).values())
    assert 0 < done < total
    out = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert sorted((r["game"], r["ply"]) for r in lines) == sorted(
        (g, p) for g, ms in _moves(db).items() for p, _, _ in ms)
    said = " ".join(out.stderr.split())
    assert f"{total - done} moves analysed" in said and f"{done} already recorded" in said


def test_two_workers_give_every_row_once(ttt_db, tmp_path):
    db = _copy(ttt_db, tmp_path)
    s = analyse_games(db, ["solver", "minimax:depth=3"], workers=2)
    assert s.analysed == s.total == _count(db) == 2 * sum(len(v) for v in _moves(db).values())


def test_a_dead_worker_is_an_analysis_error_and_the_rows_before_it_stay(ttt_db, tmp_path, monkeypatch):
    from plyground.arena import runner
    db = _copy(ttt_db, tmp_path)
    real, calls = runner.LocalBackend.result, {"n": 0}

    def result(self, handle):
        calls["n"] += 1
        if calls["n"] == 3:
            raise runner._Crashed("worker process died (killed by the test)")
        return real(self, handle)

    monkeypatch.setattr(runner.LocalBackend, "result", result)
    with pytest.raises(AnalysisError, match="worker process died .*run the command again to resume"):
        analyse_games(db, ["minimax:depth=2"], workers=2)
    kept = _count(db)
    assert kept > 0
    monkeypatch.setattr(runner.LocalBackend, "result", real)
    again = analyse_games(db, ["minimax:depth=2"], workers=2)
    assert again.already == kept and again.analysed + kept == again.total == _count(db)


# --------------------------------------------------------------------------- report
def test_report_per_agent(ttt_db, tmp_path):
    from plyground.arena.report import build_report, write_report
    db = _copy(ttt_db, tmp_path)
    analyse_games(db, ["solver"], workers=1)
    rep = build_report(db)
    assert rep.engine == "solver:time=1" and rep.exact_moves == rep.moves
    with Record(db) as rec:
        own = sum(1 for g in rec.games() for m in rec.moves(g["id"]) if not (m["decision"] or {}).get("opening"))
    by = {a["agent"]: a for a in rep.agents}
    assert set(by) == set(TTT_AGENTS) and sum(a["moves"] for a in rep.agents) == rep.moves == own
    for a in rep.agents:
        assert sum(p["moves"] for p in a["phases"].values()) == a["moves"]
        assert a["exact_moves"] == a["moves"] and 0 <= a["exact_error_rate"] <= 1
        assert a["llm"] is None
    assert by["random"]["exact_error_rate"] > 0 and by["random"]["accuracy"] < 100
    # the figures again from the rows, with lichess's formula and the aggregation written out here
    expected = _report_by_hand(db, "solver:time=1")
    assert set(expected) == set(by)
    for name, e in expected.items():
        a = by[name]
        assert a["moves"] == e["moves"] and a["games"] == len(e["games"])
        assert a["accuracy"] == pytest.approx(sum(sum(v) / len(v) for v in e["games"].values()) / len(e["games"]))
        assert a["mistake_per_100"] == pytest.approx(100 * e["mistake"] / e["moves"])
        assert a["blunder_per_100"] == pytest.approx(100 * e["blunder"] / e["moves"])
        assert a["exact_error_rate"] == pytest.approx((e["mistake"] + e["blunder"]) / e["moves"])
        assert {p: s["moves"] for p, s in a["phases"].items()} == {p: n for p, n in e["phases"].items() if n}
    paths = write_report(rep, tmp_path / "out")
    assert [p.name for p in paths] == ["report.json", "accuracy_by_phase.png", "errors_per_100.png"]
    assert json.loads(paths[0].read_text())["agents"][0]["agent"] == rep.agents[0]["agent"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths[1:])
    analyse_games(db, ["mcts:sims=100"], workers=1)
    with pytest.raises(AnalysisError, match="several engines analysed these games"):
        build_report(db)
    assert build_report(db, engine="mcts").engine == "mcts:sims=100"


def _report_by_hand(db, engine: str) -> dict[str, dict]:
    """Per agent, from the analysis rows of its own moves (opening plies left out): its moves, per-game
    lists of lichess accuracies, label counts and moves per phase (thirds of the game by ply)."""
    def acc(before: float, after: float) -> float:
        wb, wa = 50 + 50 * before, 50 + 50 * after
        if wa >= wb:
            return 100.0
        return min(100.0, max(0.0, 103.1668100711649 * math.exp(-0.04354415386753951 * (wb - wa)) - 3.166924740191411))

    out: dict[str, dict] = {}
    with sqlite3.connect(db) as conn:
        names = dict(conn.execute("SELECT id, name FROM players"))
        for gid, ply, seat, vb, va, label, seats, plies, decision in conn.execute(
                "SELECT a.game, a.ply, a.player, a.value_before, a.value_after, a.label, g.players, g.plies, m.decision "
                "FROM analysis a JOIN games g ON g.id = a.game JOIN moves m ON m.game = a.game AND m.ply = a.ply "
                "WHERE a.engine = ?", (engine,)):
            if decision and json.loads(decision).get("opening"):
                continue
            e = out.setdefault(names[json.loads(seats)[seat]], {"moves": 0, "games": {}, "mistake": 0, "blunder": 0,
                                                                "phases": {"opening": 0, "middle": 0, "end": 0}})
            e["moves"] += 1
            e["games"].setdefault(gid, []).append(acc(vb, va))
            if label in ("mistake", "blunder"):
                e[label] += 1
            e["phases"][("opening", "middle", "end")[3 * ply // plies]] += 1
    return out


def test_llm_figures_from_decisions():
    from plyground.arena.report import _llm_stats
    bad = {"role": "move", "parsed": {"action": None, "error": "no move"}}
    good = {"role": "move", "parsed": {"action": 3, "error": None}}
    decisions = [
        {"llm": {"prompt_tokens": 100, "completion_tokens": 5, "latency": 0.5, "log": [bad, good]}, "info": {"asked": 2}},
        {"llm": {"prompt_tokens": 90, "completion_tokens": 5, "latency": 0.3, "log": [good]}, "info": {"asked": 1}},
        {"llm": {"prompt_tokens": 120, "completion_tokens": 10, "latency": 0.7, "log": [bad, bad, bad]},
         "info": {"asked": 3}, "fallback": "move: highest-scored legal move"},
    ]
    s = _llm_stats(decisions)
    assert (s["illegal_first_answers"], s["reasks"], s["fallbacks"]) == (2, 3, 1)
    assert s["tokens_per_move"] == pytest.approx(110) and s["latency_per_move"] == pytest.approx(0.5)
    assert _llm_stats([{"search": {}}]) is None


# --------------------------------------------------------------------------- suites
def test_suite_best_moves_from_the_solver_match_the_shipped_file(tmp_path):
    from plyground.arena.suite import SuiteError, load_suite, run_suite, solve_best
    late = [p for p in load_suite() if p.stones == 32][:5]
    assert [solve_best(p.moves, p.score) for p in late] == [p.best for p in late]
    f = tmp_path / "p.txt"
    f.write_text("# two columns: best moves looked up\n" + "".join(f"{p.moves} {p.score}\n" for p in late))
    assert load_suite(f) == late
    r = run_suite("minimax:depth=12", late)
    assert r["positions"] == 5 and list(r["by_stones"]) == [32] and r["errors"] == 0
    lo, hi = r["interval"]
    assert lo <= r["share"] <= hi and len(r["answers"]) == 5
    f.write_text(f"{late[0].moves} {late[0].score + 2}\n")
    with pytest.raises(SuiteError, match="the file says"):
        load_suite(f)
    f.write_text("4453 x\n")
    with pytest.raises(SuiteError, match="expected 'MOVES SCORE"):
        load_suite(f)
    with pytest.raises(SuiteError, match="move time must be a positive number"):
        run_suite("random", late, move_time=-1)


# --------------------------------------------------------------------------- CLI
def test_cli_json_lines_and_report(ttt_db, tmp_path, capsys):
    db = _copy(ttt_db, tmp_path)
    gid = next(iter(_moves(db)))
    assert main(["analyze", "games", "--db", str(db), "--game-id", gid, "--game-id", gid, "--json", "--workers", "1",
                 "--quiet"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == len(_moves(db)[gid])
    for r in lines:
        assert {"game", "ply", "player", "action", "best_action", "value_before", "value_after", "exact",
                "label"} <= set(r)
        assert r["game"] == gid and isinstance(r["exact"], bool) and r["label"] in (None, *L.LABELS)
        assert r["opening"] == (r["ply"] == 0)     # the tournament's one random opening ply
        assert -1 <= r["value_before"] <= 1 and -1 <= r["value_after"] <= 1
    assert main(["arena", "report", "--db", str(db), "--json", "--out", str(tmp_path / "rep")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["moves"] > 0 and (tmp_path / "rep" / "errors_per_100.png").is_file()
    # --out also writes a page per game and an index linking every game of the record
    from plyground.arena.replay_page import page_filename
    index = (tmp_path / "rep" / "index.html").read_text()
    for g in _moves(db):
        assert f'href="{page_filename(g)}"' in index and (tmp_path / "rep" / page_filename(g)).is_file(), g
    # outputs that cannot be written are one-line errors, not tracebacks
    a_file = tmp_path / "rep" / "report.json"
    for argv, words in ((["arena", "report", "--db", str(db), "--out", str(a_file)], "is a file"),
                        (["arena", "report", "--db", str(db), "--out", str(a_file / "sub")], "cannot create the folder"),
                        (["replay", "--db", str(db), gid, "--html", str(tmp_path / "rep")], "it is a folder")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err


@pytest.mark.parametrize("args,words", [
    (["--engine", "stockfish"], "unknown analysis engine 'stockfish'; allowed: solver, minimax, mcts, neural-mcts"),
    (["--engine", "mcts", "--budget", "depth=4"], "budget item 'depth=4' does not apply to engine mcts"),
    (["--budget", "time=soon"], "budget time='soon' is not a number"),
    (["--game-id", "no-such-game"], "unknown game id 'no-such-game'"),
    (["--tournament", "nope"], "unknown tournament 'nope'"),
])
def test_cli_errors_are_one_line(ttt_db, args, words, capsys):
    assert main(["analyze", "games", "--db", str(ttt_db), "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("plyground analyze: error:") and words in err and "\n" not in err


def test_cli_missing_db(tmp_path, capsys):
    assert main(["analyze", "games", "--db", str(tmp_path / "none.db")]) == 2
    assert "no arena record at" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    assert main(["arena", "report", "--db", str(tmp_path / "none.db")]) == 2
    capsys.readouterr()
    text = tmp_path / "notes.txt"
    text.write_text("not an SQLite file\n" * 20)
    for argv in (["analyze", "games", "--db", str(text)], ["arena", "report", "--db", str(text)],
                 ["replay", "--db", str(text), "g", "--html", str(tmp_path / "g.html")],
                 ["arena", "export", "--db", str(text), "--format", "pgn"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "is not an arena record" in err and "\n" not in err, argv


def test_old_analyze_form_still_works(capsys):
    assert main(["analyze", "tictactoe", "--moves", "4", "--budget", "exact", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exact"] is True


# --------------------------------------------------------------------------- LLM agents (a fake OpenAI server)
def _llm_spec(base_url: str) -> str:
    return (f"llm:backend=openai,base_url={base_url},model=fake,timeout=2,call_retries=0,retries=2,"
            "fallback=random,seed=1")


def test_report_counts_llm_illegal_answers_reasks_and_fallbacks(tmp_path):
    sys.path.insert(0, os.path.dirname(__file__))
    from fake_openai import FakeOpenAI

    from plyground.arena.report import build_report
    db = tmp_path / "llm.db"
    with FakeOpenAI(reply="no idea") as srv:   # never a move: every first answer is illegal, two re-asks, fallback
        spec = _llm_spec(srv.base_url)
        table = dict(kv.split("=", 1) for kv in spec.split(":", 1)[1].split(","))
        cfg = config_from_dict({"game": "tictactoe", "agents": [{"agent": "llm", **table, "name": "chatty"}, "random"],
                                "seed": 1, "games_per_pairing": 2})
        run_tournament(cfg, db, workers=1)
    analyse_games(db, ["solver"], workers=1)
    by = {a["agent"]: a for a in build_report(db).agents}
    llm = by["chatty"]["llm"]
    assert llm["moves"] == by["chatty"]["moves"] > 0 and by["random"]["llm"] is None
    assert (llm["illegal_first_rate"], llm["reasks_per_move"], llm["fallback_rate"]) == (1.0, 2.0, 1.0)
    assert llm["tokens_per_move"] > 0 and llm["latency_per_move"] > 0


def test_suite_runs_an_llm_agent():
    sys.path.insert(0, os.path.dirname(__file__))
    from fake_openai import FakeOpenAI

    from plyground.arena.suite import load_suite, run_suite
    positions = [p for p in load_suite() if p.stones == 32][:4]
    with FakeOpenAI(reply="4") as srv:       # always column 4 (a fallback where it is full)
        r = run_suite(_llm_spec(srv.base_url), positions)
    assert r["positions"] == 4 and r["errors"] == 0
    for a, p in zip(r["answers"], positions):
        assert a["hit"] == (a["played"] - 1 in p.best)
        assert a["played"] == 4 or p.moves.count("4") == 6


def test_games_that_cannot_be_analysed_are_left_out_or_refused(ttt_db, tmp_path):
    db = _copy(ttt_db, tmp_path)
    cfg = config_from_dict({"game": "openspiel:kuhn_poker", "agents": ["random", "mcts:sims=10"], "seed": 1})
    run_tournament(cfg, db, workers=1)
    poker = [gid for gid, ms in _moves(db).items() if any(p == -1 for _, p, _ in ms)]
    s = analyse_games(db, ["solver"], workers=1)
    assert "openspiel:kuhn_poker" in s.skipped and "hidden information" in s.skipped["openspiel:kuhn_poker"]
    assert s.skipped_games == len(poker) > 0 and s.analysed == s.total > 0
    with pytest.raises(AnalysisError, match="hidden information"):
        analyse_games(db, ["solver"], game_ids=poker[:1], workers=1)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_game_the_rules_refuse_is_left_out_of_a_tournament_and_refused_by_id(tmp_path, workers):
    db = tmp_path / "bad.db"
    games = {"t-bad-g0": [4, 4], "t-bad-g1": [4, 0, 8], "t-bad-g2": [0, 1, 2, 3]}
    with Record(db) as rec:
        rec.upsert_tournament("t-bad", "bad", "tictactoe", "round-robin", 0, {})
        for gid, actions in games.items():
            rec.insert_game({"id": gid, "tournament": "t-bad", "game": "tictactoe", "players": ["p0", "p1"],
                             "returns": [0.0, 0.0], "termination": "max_plies"},
                            [{"ply": k, "player": k % 2, "action": a} for k, a in enumerate(actions)])
    s = analyse_games(db, ["solver"], tournament="bad", workers=workers)
    assert s.unplayable == {"t-bad-g0": "game t-bad-g0: the recorded action 4 at ply 1 is illegal"}
    with sqlite3.connect(db) as conn:
        done = {(g, p) for g, p in conn.execute("SELECT game, ply FROM analysis WHERE game != 't-bad-g0'")}
    assert done == {(g, p) for g, actions in games.items() if g != "t-bad-g0" for p in range(len(actions))}
    with pytest.raises(AnalysisError, match="the recorded action 4 at ply 1 is illegal"):
        analyse_games(db, ["solver"], game_ids=["t-bad-g0"], workers=workers)
