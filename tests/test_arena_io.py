"""Export (JSONL, PGN), the PGN reader, import-pgn and replay, checked against OpenSpiel's rules."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pyspiel
import pytest

from plyground import agents, games
from plyground.arena.export import export_jsonl, export_pgn, game_to_json, player_rows
from plyground.arena.importer import import_pgn
from plyground.arena.match import play_game
from plyground.arena.pgn import PGNError, parse_pgn, read_pgn
from plyground.arena.record import Record
from plyground.arena.replay import load_replay, run_interactive
from plyground.cli.main import main

TID = "t0000000000000001"


def record_result(rec: Record, gid: str, result, specs: list[str], rnd: int = 0) -> None:
    """Write a match.GameResult as the arena does: players, the game row and its moves."""
    ids = [rec.upsert_player(s, agents.make(s).spec, agents.make(s).config()) for s in specs]
    row = {"id": gid, "tournament": TID, "round": rnd, "pair": None, "game": result.game, "players": ids,
           "returns": result.returns, "termination": result.termination, "detail": result.detail,
           "seed": result.seed, "opening": [m.action for m in result.moves if m.decision.get("opening")],
           "started": "2024-05-06T07:08:09.000+00:00", "ended": "2024-05-06T07:08:10.000+00:00"}
    rec.insert_game(row, [{"ply": m.ply, "player": m.player, "action": m.action, "text": m.text,
                           "think_time": m.think_time, "decision": m.decision} for m in result.moves])


def new_record(path) -> Record:
    rec = Record(path)
    rec.upsert_tournament(TID, "io-test", "mixed", "round-robin", 0, {"test": True})
    return rec


def pyspiel_chess_after(sans: list[str]):
    """OpenSpiel's own chess state after SAN moves (its parser, not ours)."""
    state = pyspiel.load_game("chess").new_initial_state()
    for san in sans:
        state.apply_action(state.string_to_action(san))
    return state


# ------------------------------------------------------------------------------------- PGN reader
SAMPLE = textwrap.dedent("""\
    % an escape line the reader ignores
    [Event "Casual \\"blitz\\""]
    [Site "?"]
    [Date "2024.01.02"]
    [Round "1"]
    [White "Alice"]
    [Black "Bob"]
    [Result "1-0"]

    {Scholar's mate} 1. e4 e5 2. Bc4 {aiming at f7} Nc6 3. Qh5 Nf6?? $4 (3... g6 4. Qf3 Nf6)
    4. Qxf7# 1-0

    [Event "Casual"]
    [White "Bob"]
    [Black "Carol"]
    [Result "0-1"]

    1.f3 e5 2.g4?! (2. e4 (2. Kf2) d5) 2...Qh4# ; fool's mate
    0-1

    [White "Carol"]
    [Black "Alice"]
    [Result "1/2-1/2"]

    1. d4 d5 2. c4 e6 3. Nc3 Nf6 $10 1/2-1/2

    [White "Alice"]
    [Black "Carol"]
    [Result "*"]

    1. e4 c5 *

    [White "Dave"]
    [Black "Alice"]
    [Result "0-1"]

    1. e4 e5 2. Ke3 Nc6 0-1
    """)


def test_pgn_reader_reads_tags_comments_variations_nags_and_results():
    gs = parse_pgn(SAMPLE)
    assert [g.result for g in gs] == ["1-0", "0-1", "1/2-1/2", "*", "0-1"]
    g = gs[0]
    assert g.tags["Event"] == 'Casual "blitz"' and g.white == "Alice" and g.black == "Bob"
    assert g.sans() == ["e4", "e5", "Bc4", "Nc6", "Qh5", "Nf6", "Qxf7#"]
    assert g.comments == ["Scholar's mate"] and g.moves[2].comments == ["aiming at f7"]
    assert g.moves[5].nags == [4, 4] and g.moves[5].variations == 1  # '??' and $4, then one variation
    assert g.line == 2 and g.moves[6].line == 11
    fool = gs[1]
    assert fool.sans() == ["f3", "e5", "g4", "Qh4#"]  # nested variations are not the main line
    assert fool.moves[2].nags == [6] and fool.moves[2].variations == 1
    assert fool.moves[3].comments == ["fool's mate"]
    # the main lines are real chess: OpenSpiel's parser plays them to the recorded results
    for game, returns in ((gs[0], [-1.0, 1.0]), (fool, [1.0, -1.0])):
        state = pyspiel_chess_after(game.sans())
        assert state.is_terminal() and state.returns() == returns  # OpenSpiel: player 1 is White


@pytest.mark.parametrize("text, line, fragment", [
    ("1. e4 e5", 1, "has no result"),
    ("[White \"A\"]\n\n1. e4 (1. d4 d5\n1-0", 4, "inside the variation opened at line 3"),
    ("[White \"A\"]\n\n1. e4 (1. d4 d5", 3, "never closed by ')'"),
    ("1. e4 {unclosed\n comment 1-0", 1, "never closed by '}'"),
    ("[White \"A\"]\n[Black \"B\"]\n1. e4 Zz9 1-0", 3, "'Zz9' is not a move"),
    ("[White A]\n1. e4 1-0", 1, "malformed tag pair"),
    ("1. e4 e5\n[White \"B\"]\n1. d4 1-0", 2, "has no result"),
    ("[Result \"1-0\"]\n\n1. e4 0-1", 3, "Result tag"),
    ("1. e4 e5 2. Nf3 @ 1-0", 1, "unexpected character '@'"),
    ("1. e4 ) 1-0", 1, "closes no variation"),
])
def test_pgn_reader_bad_input_is_an_error_naming_the_line(text, line, fragment):
    with pytest.raises(PGNError) as e:
        parse_pgn(text, source="bad.pgn")
    assert e.value.line == line and f"bad.pgn, line {line}:" in str(e.value)
    assert fragment in str(e.value)


def test_pgn_reader_keeps_text_as_text(tmp_path):
    g = parse_pgn('[White "__import__(\'os\')"]\n1. e4 {eval("1+1")} 1-0')[0]
    assert g.white == "__import__('os')" and g.moves[0].comments == ['eval("1+1")']
    with pytest.raises(PGNError, match="line 2: unexpected character '_'"):
        parse_pgn('[White "A"]\n1. __import__ 1-0')
    with pytest.raises(Exception, match="no PGN file"):
        read_pgn(tmp_path / "missing.pgn")


# ------------------------------------------------------------------------------------- chess PGN
def test_chess_pgn_export_replays_in_openspiel_to_the_same_position_and_result(tmp_path):
    rec = new_record(tmp_path / "a.db")
    chess = games.make("openspiel:chess")
    results = [play_game(chess, [agents.make("random"), agents.make("random")], seed=s) for s in (1, 2)]
    # an opening applied before the agents play is part of the game's moves
    opening = [pyspiel_chess_after([]).string_to_action("e4")]
    results.append(play_game(chess, [agents.make("random"), agents.make("random")], seed=2, opening=opening))
    assert {r.returns[1] for r in results} & {1.0, -1.0}, "need a decisive game among the seeds"
    for i, r in enumerate(results):
        record_result(rec, f"{TID}-r000-g{i:04d}", r, ["random", "random"])
    out = io.StringIO()
    assert export_pgn(rec, out).written == 3
    parsed = parse_pgn(out.getvalue())
    assert len(parsed) == 3
    for g, r in zip(parsed, results):
        assert all(g.tags[t] for t in ("Event", "Site", "Date", "Round", "White", "Black", "Result"))
        assert g.tags["Termination"] == "normal" and g.tags["Date"] == "2024.05.06"
        assert int(g.tags["PlyCount"]) == len(r.moves) == len(g.moves)
        state = pyspiel_chess_after(g.sans())  # OpenSpiel's SAN parser
        ours = chess.new_initial_state()
        for m in r.moves:
            ours.apply_action(m.action)
        assert str(state) == str(ours)  # the same FEN
        assert state.is_terminal()
        white_return = state.returns()[1]  # OpenSpiel chess: player 1 is White
        assert g.result == {1.0: "1-0", -1.0: "0-1", 0.0: "1/2-1/2"}[white_return]
        assert white_return == r.returns[1]
    assert parsed[2].sans()[0] == "e4"


def test_pettingzoo_chess_exports_white_as_seat_0(tmp_path):
    rec = new_record(tmp_path / "pz.db")
    game = games.make("pettingzoo:classic/chess_v6")
    r = play_game(game, [agents.make("random"), agents.make("random")], seed=3, max_plies=12)
    record_result(rec, f"{TID}-r000-g0000", r, ["random:seed=1", "random:seed=2"])
    out = io.StringIO()
    export_pgn(rec, out)
    g = parse_pgn(out.getvalue())[0]
    assert g.white == "random:seed=1" and g.tags["Termination"] == "adjudication"
    state = pyspiel_chess_after(g.sans())
    assert len(g.sans()) == 12 and not state.is_terminal()
    assert state.to_string().split()[1] == "w"  # 12 plies: White to move again


# ------------------------------------------------------------------------------------- results-only PGN
def _connect4_record(tmp_path) -> tuple[Record, list]:
    rec = new_record(tmp_path / "c4.db")
    c4 = games.make("connect4")
    played = []
    specs = [("minimax:depth=3", "random:seed=5"), ("random:seed=5", "minimax:depth=3"),
             ("random:seed=5", "random:seed=6")]
    for i, pair in enumerate(specs):
        r = play_game(c4, [agents.make(s) for s in pair], seed=i)
        record_result(rec, f"{TID}-r000-g{i:04d}", r, list(pair))
        played.append((pair, r))
    return rec, played


def test_results_only_pgn_for_other_games_round_trips_through_import(tmp_path):
    rec, played = _connect4_record(tmp_path)
    out = io.StringIO()
    assert export_pgn(rec, out).written == 3
    path = tmp_path / "c4.pgn"
    path.write_text(out.getvalue())
    parsed = read_pgn(path)
    for g, (pair, r) in zip(parsed, played):
        assert g.tags["Game"] == "connect4" and g.sans() == []
        assert (g.white, g.black) == (agents.make(pair[0]).spec, agents.make(pair[1]).spec)  # seat 0 moves first
        a, b = r.returns
        assert g.result == ("1-0" if a > b else "0-1" if a < b else "1/2-1/2")
    # import into a fresh record: same scores by name and seat
    with Record(tmp_path / "imp.db") as rec2:
        s = import_pgn(path, rec2)
        assert (s.added, s.skipped) == (3, 0)
        names = rec2.player_names()
        got = [([names[p] for p in row["players"]], row["returns"], row["game"]) for row in rec2.games()]
        want = [([agents.make(x).spec for x in pair], r.returns, "connect4") for pair, r in played]
        assert got == want


def test_unrated_and_forfeited_games_in_pgn(tmp_path):
    rec = new_record(tmp_path / "f.db")
    ids = [rec.upsert_player(n, n, {"name": n}) for n in ("a", "b")]
    base = {"tournament": TID, "game": "connect4", "players": ids, "round": 1}
    rec.insert_game({**base, "id": "g-aborted", "returns": [0.0, 0.0], "termination": "aborted",
                     "detail": "endpoint down"}, [])
    rec.insert_game({**base, "id": "g-timeout", "returns": [-1.0, 1.0], "termination": "timeout",
                     "detail": "seat 0 (a) took 2.0s > 1.0s"}, [])
    out = io.StringIO()
    export_pgn(rec, out)
    by_id = {g.tags["GameId"]: g for g in parse_pgn(out.getvalue())}
    assert by_id["g-aborted"].result == "*" and by_id["g-aborted"].tags["Termination"] == "unterminated"
    assert by_id["g-timeout"].result == "0-1" and by_id["g-timeout"].tags["Termination"] == "time forfeit"
    assert "took 2.0s" in out.getvalue()


# ------------------------------------------------------------------------------------- import-pgn
def test_import_pgn_adds_rated_games_once_and_skips_unfinished(tmp_path):
    path = tmp_path / "match.pgn"
    path.write_text(SAMPLE)
    notices = []
    with Record(tmp_path / "r.db") as rec:
        s = import_pgn(path, rec, notify=notices.append)
        assert (s.added, s.already, s.skipped) == (4, 0, 1)
        assert any("game 4" in n and "not finished" in n for n in notices)
        assert any("game 5" in n and "moves not recorded" in n and "Ke3" in n for n in notices)
        rated = rec.games(rated_only=True)
        assert len(rated) == 4 and all(g["rated"] == 1 and g["termination"] == "pgn" for g in rated)
        assert all(g["tournament"] == s.tournament and g["tournament"].startswith("pgn-") for g in rated)
        t = rec.tournaments()[0]
        assert t["format"] == "pgn-import" and t["id"] == s.tournament
        names = rec.player_names()
        specs = {r["spec"] for r in rec.db.query("SELECT spec FROM players")}
        assert specs == {"pgn:Alice", "pgn:Bob", "pgn:Carol", "pgn:Dave"}
        # White's score from the PGN results, read back through the seats (OpenSpiel chess: White = seat 1)
        white_scores = []
        for g in rated:
            assert g["game"] == "openspiel:chess"
            white, black = names[g["players"][1]], names[g["players"][0]]
            w = g["returns"][1]
            white_scores.append((white, black, w))
        assert white_scores == [("Alice", "Bob", 1.0), ("Bob", "Carol", -1.0), ("Carol", "Alice", 0.0),
                                ("Dave", "Alice", -1.0)]
        # legal chess moves are kept: the replay reaches OpenSpiel's own mate
        first = load_replay(rec, rated[0]["id"])
        assert first.final_returns == [-1.0, 1.0] and first.last == 7
        assert rec.moves(rated[3]["id"]) == []  # Ke3 is illegal: only the result
        # the ratings read them
        from plyground.arena.ratings import RatedGame, fit_bradley_terry, score_from_returns
        fit = fit_bradley_terry([RatedGame(names[g["players"][0]], names[g["players"][1]],
                                           score_from_returns(g["returns"]), g["id"]) for g in rated])
        assert set(fit.players) == {"Alice", "Bob", "Carol", "Dave"}
        # importing the same file again adds nothing
        again = import_pgn(path, rec)
        assert (again.added, again.already) == (0, 4)
        assert rec.db["games"].count == 4 and rec.db["players"].count == 4


# ------------------------------------------------------------------------------------- JSONL
def test_jsonl_export_matches_the_record_and_replays_to_the_returns(tmp_path):
    rec, _ = _connect4_record(tmp_path)
    ttt = games.make("openspiel:tic_tac_toe")
    r = play_game(ttt, [agents.make("mcts:sims=50,seed=1"), agents.make("random:seed=2")], seed=9)
    record_result(rec, f"{TID}-r001-g0000", r, ["mcts:sims=50,seed=1", "random:seed=2"], rnd=1)
    out = io.StringIO()
    assert export_jsonl(rec, out) == 4
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    players = player_rows(rec)
    for line in lines:
        d = json.loads(line)
        row = next(g for g in rec.games() if g["id"] == d["id"])
        assert d["game"] == row["game"] and d["returns"] == row["returns"] and d["termination"] == row["termination"]
        assert [p["id"] for p in d["players"]] == row["players"]
        assert [p["spec"] for p in d["players"]] == [players[p]["spec"] for p in row["players"]]
        moves = rec.moves(d["id"])
        assert [(m["ply"], m["action"], m["text"]) for m in d["moves"]] == \
            [(m["ply"], m["action"], m["text"]) for m in moves]
        assert all("decision" in m and "think_time" in m for m in d["moves"])
        state = games.make(d["game"]).new_initial_state()
        for m in d["moves"]:
            state.apply_action(m["action"])
        assert state.is_terminal() and [float(x) for x in state.returns()] == d["returns"]
    mm = [json.loads(x) for x in lines if "minimax" in x][0]
    searched = [m for m in mm["moves"] if m["decision"].get("search")]
    assert searched and all(m["decision"]["search"]["depth"] >= 1 for m in searched)
    assert game_to_json(rec.games()[0], [], players)["moves"] == []


def test_cli_export_writes_files_and_rejects_unknown_tournament(tmp_path, capsys):
    rec, _ = _connect4_record(tmp_path)
    rec.close()
    db = str(tmp_path / "c4.db")
    out = tmp_path / "all.jsonl"
    assert main(["arena", "export", "--db", db, "--format", "jsonl", "--out", str(out), "--tournament", TID]) == 0
    assert len(out.read_text().splitlines()) == 3
    assert main(["arena", "export", "--db", db, "--format", "pgn"]) == 0
    assert capsys.readouterr().out.count("[Result ") == 3
    assert main(["arena", "export", "--db", db, "--format", "pgn", "--tournament", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown tournament 'nope'" in err and TID in err
    assert main(["arena", "export", "--db", str(tmp_path / "none.db"), "--format", "jsonl"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_cli_import_pgn_reports_and_is_idempotent(tmp_path, capsys):
    path = tmp_path / "m.pgn"
    path.write_text(SAMPLE)
    db = str(tmp_path / "m.db")
    assert main(["arena", "import-pgn", str(path), "--db", db]) == 0
    cap = capsys.readouterr()
    assert "4 game(s) added" in cap.out and "not finished" in cap.err
    assert main(["arena", "import-pgn", str(path), "--db", db]) == 0
    assert "0 game(s) added, 4 already recorded" in capsys.readouterr().out
    bad = tmp_path / "bad.pgn"
    bad.write_text("[White \"A\"]\n[Black \"B\"]\n\n1. e4 e5 2. Nf3\n")
    assert main(["arena", "import-pgn", str(bad), "--db", str(tmp_path / "b.db")]) == 2
    assert "line 1" in capsys.readouterr().err and not (tmp_path / "b.db").exists()


# ------------------------------------------------------------------------------------- replay
def test_replay_prints_every_ply_with_the_movers_statistics(tmp_path):
    rec, played = _connect4_record(tmp_path)
    rec.close()
    gid = f"{TID}-r000-g0000"
    n = len(played[0][1].moves)
    out = subprocess.run([sys.executable, "-m", "plyground.cli.main", "replay", "--db", str(tmp_path / "c4.db"), gid],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    for k in range(n + 1):
        assert f"ply {k}/{n}:" in out.stdout
    assert out.stdout.count("seat 0 (minimax:depth=3) played") == (n + 1) // 2
    assert "pv: " in out.stdout and "top: " in out.stdout and "depth 3" in out.stdout
    final = games.make("connect4").new_initial_state()
    for m in played[0][1].moves:
        final.apply_action(m.action)
    assert out.stdout.rstrip().endswith(f"end: normal, returns {[float(x) for x in final.returns()]}")
    assert str(final) in out.stdout


def test_replay_errors_name_the_problem(tmp_path, capsys):
    rec, _ = _connect4_record(tmp_path)
    rec.close()
    db = str(tmp_path / "c4.db")
    assert main(["replay", "--db", db, f"{TID}-r000-g0099"]) == 2
    err = capsys.readouterr().err
    assert "unknown game" in err and f"{TID}-r000-g0000" in err and "3 games in all" in err
    assert main(["replay", "--db", str(tmp_path / "missing.db"), "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["replay", "--db", db, f"{TID}-r000-g0000", "--ply", "999"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_replay_rejects_moves_the_rules_refuse(tmp_path):
    rec = new_record(tmp_path / "x.db")
    ids = [rec.upsert_player(n, n, {"name": n}) for n in ("a", "b")]
    rec.insert_game({"id": "bad", "tournament": TID, "game": "tictactoe", "players": ids, "returns": [1.0, -1.0],
                     "termination": "normal"},
                    [{"ply": 0, "player": 0, "action": 4, "text": "x(1,1)"}, {"ply": 1, "player": 1, "action": 4}])
    with pytest.raises(Exception, match="ply 1 action 4"):
        load_replay(rec, "bad")


def test_interactive_replay_steps_forward_back_and_jumps(tmp_path):
    rec, played = _connect4_record(tmp_path)
    replay = load_replay(rec, f"{TID}-r000-g0000")
    shown: list[str] = []
    keys = iter(["n", "", "p", "g 5", "g 999", "zz", "q", "n"])
    run_interactive(replay, read=lambda prompt: next(keys), write=shown.append)
    plies = [int(s.split("/")[0].split()[1]) for s in shown if s.startswith("ply ")]
    assert plies == [0, 1, 2, 1, 5]
    assert any("give a number from 0 to" in s for s in shown) and any("unknown command 'zz'" in s for s in shown)
    assert next(keys) == "n"  # 'q' stopped reading
    eof: list[str] = []
    run_interactive(replay, start=replay.last, read=lambda p: (_ for _ in ()).throw(EOFError), write=eof.append)
    assert replay.footer in eof[1]


def test_replay_shows_llm_usage_fallback_and_errors(tmp_path):
    rec = new_record(tmp_path / "llm.db")
    ids = [rec.upsert_player(n, n, {"name": n}) for n in ("llm", "random")]
    state = games.make("tictactoe").new_initial_state()
    llm = {"model": "smollm2", "calls": [{"prompt_tokens": 100, "completion_tokens": 3, "reply": "I play 5"},
                                         {"prompt_tokens": 120, "completion_tokens": 2, "reply": "x9"}]}
    rec.insert_game({"id": "g", "tournament": TID, "game": "tictactoe", "players": ids, "returns": [-1.0, 1.0],
                     "termination": "agent_error", "detail": "seat 0 (llm) raised ValueError: boom"},
                    [{"ply": 0, "player": 0, "action": 4, "text": state.action_to_string(4), "think_time": 0.5,
                      "decision": {"action": 4, "llm": llm, "fallback": "random legal move", "search": {}}},
                     {"ply": 1, "player": 1, "action": 0, "text": "x", "think_time": 0.0, "decision": {}},
                     {"ply": 2, "player": 0, "action": -1, "text": "", "think_time": 0.1,
                      "decision": {"error": "Traceback ...\nValueError: boom\n"}}])
    replay = load_replay(rec, "g")
    first, third = replay.render(1), replay.render(3)
    assert "llm calls: 2," in first and "prompt_tokens 220" in first and "completion_tokens 5" in first
    assert "reply 'x9'" in first
    assert "fallback: random legal move" in first and "model 'smollm2'" in first
    assert "recorded as 'x', the rules write" in replay.render(2)
    assert "made no move" in third and "error: ValueError: boom" in third and "agent_error" in third
    assert replay.frames[3].board == replay.frames[2].board
