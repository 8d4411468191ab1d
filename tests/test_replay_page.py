"""The replay page in a real headless Chromium (Debian's /usr/bin/chromium through Playwright), and the
exports that carry the analysis (PGN's %eval/%emt/NAGs read back by python-chess, JSONL's rows).

Games come from real tournaments (``run_tournament`` into a temporary SQLite file); the analysis rows
are written by the test with values it computes itself (tic-tac-toe: a plain negamax over the whole
tree).  Without Chromium these tests fail with instructions; ``PLYGROUND_NO_BROWSER=1`` skips the
browser tests instead.
"""

from __future__ import annotations

import io
import json
import os
import re
from functools import lru_cache
from pathlib import Path

import pytest

from plyground import agents, games
from plyground.arena.config import config_from_dict
from plyground.arena.export import export_jsonl, export_pgn
from plyground.arena.match import play_game
from plyground.arena.record import Record
from plyground.arena.replay_page import json_for_script, page_filename, write_game_page, write_index
from plyground.arena.runner import run_tournament
from plyground.cli.main import main

CHROMIUM = os.environ.get("PLYGROUND_CHROMIUM", "/usr/bin/chromium")   # another Chromium binary, if set
EVIL_SCRIPT = "<script>window.__pwned=1</script>"
EVIL_IMG = "<img src=x onerror=\"window.__pwned=2\">"
ANALYSIS_SQL = """CREATE TABLE IF NOT EXISTS analysis (game TEXT REFERENCES games(id), ply INTEGER, engine TEXT,
    player INTEGER, action INTEGER, best_action INTEGER, value_before REAL, value_after REAL, exact INTEGER,
    label TEXT, pv TEXT, detail TEXT, PRIMARY KEY (game, ply, engine))"""


# ------------------------------------------------------------------------------ exact values
@lru_cache(maxsize=None)
def _negamax(moves: tuple[int, ...]) -> float:
    """Tic-tac-toe's exact value for the player to move after ``moves`` (plain negamax, no solver)."""
    s = games.make("tictactoe").new_initial_state()
    for a in moves:
        s.apply_action(a)
    if s.is_terminal():
        p = len(moves) % 2           # the player who would move next
        return float(s.returns()[p])
    return max(-_negamax(moves + (a,)) for a in s.legal_actions())


def win_chance(value: float) -> float:
    """A value in -1..1 as a win chance in 0..1."""
    return (max(-1.0, min(1.0, value)) + 1.0) / 2.0


def _label(drop: float) -> str | None:
    """The test's own labels for a drop in win chance."""
    return "blunder" if drop >= 0.3 else "mistake" if drop >= 0.2 else "inaccuracy" if drop >= 0.1 else None


def _insert_analysis(rec: Record, rows: list[tuple]) -> None:
    with rec.db.conn:
        rec.db.conn.execute(ANALYSIS_SQL)
        rec.db.conn.executemany("INSERT OR REPLACE INTO analysis VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _analyse_tictactoe(rec: Record, gid: str) -> list[tuple]:
    rows, played = [], ()
    for m in rec.moves(gid):
        before = _negamax(played)
        s = games.make("tictactoe").new_initial_state()
        for a in played:
            s.apply_action(a)
        best = max(s.legal_actions(), key=lambda a: -_negamax(played + (a,)))
        played += (m["action"],)
        after = -_negamax(played) if not _terminal(played) else _final(played, m["player"])
        label = _label(win_chance(before) - win_chance(after))
        rows.append((gid, m["ply"], "test-negamax", m["player"], m["action"], best, before, after, 1, label,
                     json.dumps([best]), json.dumps({"nodes": 1, "seconds": 0.0})))
    return rows


def _terminal(moves: tuple[int, ...]) -> bool:
    s = games.make("tictactoe").new_initial_state()
    for a in moves:
        s.apply_action(a)
    return s.is_terminal()


def _final(moves: tuple[int, ...], player: int) -> float:
    s = games.make("tictactoe").new_initial_state()
    for a in moves:
        s.apply_action(a)
    return float(s.returns()[player])


# ------------------------------------------------------------------------------ the record
@pytest.fixture(scope="module")
def db(tmp_path_factory) -> dict:
    """A record of real connect-four and tic-tac-toe tournaments, an LLM game with hostile replies and a
    short chess game, with analysis rows; returns its path and game ids by kind."""
    path = tmp_path_factory.mktemp("replay") / "record.db"
    c4 = run_tournament(config_from_dict({"game": "connect4", "agents": ["random", "mcts:sims=30"], "seed": 3}), path)
    ttt = run_tournament(config_from_dict({"game": "tictactoe", "agents": ["random", "mcts:sims=30"], "seed": 4}), path)
    with Record(path) as rec:
        c4_ids = sorted(rec.finished_ids(c4.tournament_id))
        ttt_ids = sorted(rec.finished_ids(ttt.tournament_id))
        played = {g["id"]: g for g in rec.games()}
        assert all(played[g]["termination"] == "normal" and played[g]["plies"] >= 5 for g in c4_ids + ttt_ids)
        rows = []
        for gid in ttt_ids:
            rows += _analyse_tictactoe(rec, gid)
        # connect four: synthetic values (the test's own), one labelled move of each kind
        for m in rec.moves(c4_ids[0]):
            k = m["ply"]
            before = [0.2, 0.1, 0.0, -0.1][k % 4]
            drop = {3: 0.25, 5: 0.45, 7: 0.65}.get(k, 0.0)     # win-chance drops 0.125, 0.225, 0.325
            label = _label(drop / 2)
            rows.append((c4_ids[0], k, "test-values", m["player"], m["action"], m["action"], before, before - drop,
                         0, label, json.dumps([m["action"]]), json.dumps({"depth": 3})))
        _insert_analysis(rec, rows)
        llm_id = _llm_game(rec)
        chess_id = _chess_game(rec)
    return {"path": path, "c4": c4_ids, "ttt": ttt_ids, "llm": llm_id, "chess": chess_id,
            "c4_tournament": c4.tournament_id}


def _llm_game(rec: Record) -> str:
    """A tic-tac-toe game whose seat 0 is an LLM agent with hostile replies, name and fallback text."""
    llm = agents.make("llm")
    pid = rec.upsert_player(f"llm {EVIL_SCRIPT}", "llm", llm.config())
    rid = rec.upsert_player("random", "random", agents.make("random").config())
    rec.upsert_tournament("t-llm", f"hostile {EVIL_IMG}", "tictactoe", "round-robin", 0, {})
    s = games.make("tictactoe").new_initial_state()
    moves = []
    for ply, a in enumerate([4, 0, 8, 2, 6, 1]):
        seat = s.current_player()
        decision = {"action": a, "think_time": 0.5, "value": None, "search": {}, "fallback": None, "info": {}}
        if seat == 0:
            decision["llm"] = {
                "backend": "local", "model": "tiny", "calls": 2, "model_calls": 2, "prompt_tokens": 300,
                "completion_tokens": 8, "latency": 0.4, "attempts": 2, "score_methods": {"words": 1},
                "errors": [], "fallbacks": [f"propose: {EVIL_SCRIPT}"],
                "log": [{"role": "move", "op": "chat", "latency": 0.2, "raw": f"I play {EVIL_SCRIPT}",
                         "parsed": {"action": None, "text": None, "how": None, "error": f"no move in {EVIL_IMG}"}},
                        {"role": "move", "op": "chat", "latency": 0.2, "raw": f"{EVIL_IMG} {s.action_to_string(a)}",
                         "parsed": {"action": a, "text": s.action_to_string(a), "how": "exact", "error": None}}]}
            decision["fallback"] = f"score: {EVIL_SCRIPT}"
        moves.append({"ply": ply, "player": seat, "action": a, "text": s.action_to_string(a), "think_time": 0.5,
                      "decision": decision})
        s.apply_action(a)
    gid = "t-llm-r000-g0000"
    rec.insert_game({"id": gid, "tournament": "t-llm", "game": "tictactoe", "players": [pid, rid],
                     "returns": list(s.returns()), "termination": "normal", "detail": EVIL_SCRIPT}, moves)
    return gid


def _chess_game(rec: Record) -> str:
    chess_game = games.make("openspiel:chess")
    r = play_game(chess_game, [agents.make("random:seed=1"), agents.make("random:seed=2")], seed=5, max_plies=24)
    ids = [rec.upsert_player(s, s, agents.make(s).config()) for s in ("random:seed=1", "random:seed=2")]
    rec.upsert_tournament("t-chess", "chess", "openspiel:chess", "round-robin", 0, {})
    gid = "t-chess-r000-g0000"
    rec.insert_game({"id": gid, "tournament": "t-chess", "game": r.game, "players": ids, "returns": r.returns,
                     "termination": r.termination, "detail": r.detail},
                    [{"ply": m.ply, "player": m.player, "action": m.action, "text": m.text,
                      "think_time": 1.25 + m.ply, "decision": m.decision} for m in r.moves])
    rows = []
    for m in r.moves:
        v = [0.3, -0.2, 0.6, -0.9][m.ply % 4]
        label = [None, "inaccuracy", "mistake", "blunder"][m.ply % 4]
        rows.append((gid, m.ply, "test-chess", m.player, m.action, m.action, 0.0, v, 0, label, "[]", "{}"))
    _insert_analysis(rec, rows)
    return gid


def _page(db: dict, key: str, tmp_path: Path, index: int = 0) -> Path:
    gid = db[key] if isinstance(db[key], str) else db[key][index]
    with Record(db["path"]) as rec:
        return write_game_page(rec, gid, tmp_path / page_filename(gid))


def _expected_grids(db: dict, gid: str) -> tuple[str, list[list[str]]]:
    """The game name and, per ply, the grid the recorded actions give: once from the rules' state and
    once dropped by hand from the actions (rows top first), which must agree."""
    with Record(db["path"]) as rec:
        row = next(g for g in rec.games() if g["id"] == gid)
        moves = rec.moves(gid)
    name = row["game"]
    state = games.make(name).new_initial_state()
    shape = (6, 7) if name == "connect4" else (3, 3)
    hand = [["."] * shape[1] for _ in range(shape[0])]
    out = [[r for r in str(state).strip("\n").split("\n")]]
    for m in moves:
        piece = "xo"[m["player"]]
        if name == "connect4":
            r = max(i for i in range(6) if hand[i][m["action"]] == ".")
            hand[r][m["action"]] = piece
        else:
            hand[m["action"] // 3][m["action"] % 3] = piece
        state.apply_action(m["action"])
        rules = str(state).strip("\n").split("\n")
        assert rules == ["".join(r) for r in hand]
        out.append(rules)
    return name, out


# ------------------------------------------------------------------------------ the browser
@pytest.fixture(scope="module")
def browser():
    if os.environ.get("PLYGROUND_NO_BROWSER") == "1":
        pytest.skip("PLYGROUND_NO_BROWSER=1: the replay page's browser tests are skipped")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install it (apt-get install -y chromium; .ci/run does), "
                    "or set PLYGROUND_NO_BROWSER=1 to skip the browser tests", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: pip install -e '.[test]' "
                    "(never 'playwright install': the tests use the system's Chromium)", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Opened:
    """A page opened from a file, with every request the browser tried and every console error."""

    def __init__(self, browser, path: Path, fragment: str = "") -> None:
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.url = path.resolve().as_uri()

        def route(r):
            self.requests.append(r.request.url)
            if r.request.url.split("#")[0] == self.url:
                r.continue_()
            else:
                r.abort()
        self.page.route("**/*", route)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.errors.append(f"dialog {d.message}"), d.dismiss()))
        self.page.goto(self.url + fragment)
        self.page.wait_for_selector("body[data-ready='1']", timeout=10_000)

    def ply(self) -> int:
        return int(self.page.get_attribute("#board", "data-ply"))

    def grid(self) -> list[str]:
        cells = self.page.eval_on_selector_all(
            "#board .cell", "els => els.map(e => [+e.dataset.row, +e.dataset.col, e.dataset.piece])")
        n_r = max(c[0] for c in cells) + 1
        n_c = max(c[1] for c in cells) + 1
        rows = [["?"] * n_c for _ in range(n_r)]
        for r, c, p in cells:
            rows[r][c] = p
        return ["".join(r) for r in rows]

    def wait_until(self, condition, seconds: float = 5.0) -> None:
        """Poll ``condition`` (the page's Content-Security-Policy forbids wait_for_function's eval)."""
        for _ in range(int(seconds / 0.05)):
            if condition():
                return
            self.page.wait_for_timeout(50)
        raise AssertionError("the page did not get there in time")

    def close(self) -> None:
        self.page.close()


def test_the_page_loads_offline_with_no_network_request(browser, db, tmp_path):
    opened = Opened(browser, _page(db, "c4", tmp_path))
    try:
        assert opened.requests == [opened.url]           # the file itself, nothing else
        assert opened.errors == []
        assert opened.ply() == 0 and opened.page.evaluate("location.hash") == "#ply=0"
        html = (tmp_path / page_filename(db["c4"][0])).read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    finally:
        opened.close()


@pytest.mark.parametrize("key,index", [("c4", 0), ("c4", 1), ("ttt", 0), ("ttt", 1)])
def test_stepping_through_every_ply_shows_the_board_the_rules_give(browser, db, tmp_path, key, index):
    gid = db[key][index]
    name, grids = _expected_grids(db, gid)
    opened = Opened(browser, _page(db, key, tmp_path, index))
    try:
        assert int(opened.page.get_attribute("#slider", "max")) == len(grids) - 1
        for k, expected in enumerate(grids):
            assert opened.ply() == k
            assert opened.grid() == expected, f"{name} game {gid}: ply {k}"
            opened.page.keyboard.press("ArrowRight")
        assert opened.ply() == len(grids) - 1                # the last ply stays put
        for k in range(len(grids) - 2, len(grids) - 5, -1):
            opened.page.keyboard.press("ArrowLeft")
            assert opened.ply() == k and opened.grid() == grids[k]
        opened.page.keyboard.press("Home")
        assert opened.ply() == 0
        opened.page.click("#last")
        assert opened.ply() == len(grids) - 1
        assert opened.errors == []
    finally:
        opened.close()


def test_graph_click_hash_and_autoplay(browser, db, tmp_path):
    gid = db["c4"][0]
    _, grids = _expected_grids(db, gid)
    path = _page(db, "c4", tmp_path)
    opened = Opened(browser, path, "#ply=4")
    try:
        assert opened.ply() == 4 and opened.grid() == grids[4]
        assert opened.page.input_value("#slider") == "4"
        assert opened.page.input_value("#link").endswith("#ply=4")
        # the labelled moves (analysis plies 3, 5, 7) are the coloured points after them
        for label, ply in (("inaccuracy", 4), ("mistake", 6), ("blunder", 8)):
            points = opened.page.query_selector_all(f"#graph circle.label-{label}")
            assert [int(p.get_attribute("data-ply")) for p in points] == [ply]
            points[0].click()
            assert opened.ply() == ply and opened.grid() == grids[ply]
            assert opened.page.evaluate("location.hash") == f"#ply={ply}"
        opened.page.click("#graph circle.pt[data-ply='2']")
        assert opened.ply() == 2
        # a hash typed later also moves the page
        opened.page.evaluate("location.hash = '#ply=5'")
        opened.wait_until(lambda: opened.ply() == 5)
        # space starts autoplay, which steps on its own; space again stops it
        opened.page.click("#ply")
        opened.page.keyboard.press(" ")
        opened.wait_until(lambda: opened.ply() >= 6)
        opened.page.keyboard.press(" ")
        stopped = opened.ply()
        opened.page.wait_for_timeout(1200)
        assert opened.ply() == stopped
        assert opened.errors == []
    finally:
        opened.close()


def test_llm_replies_are_shown_as_text_and_run_nothing(browser, db, tmp_path):
    path = _page(db, "llm", tmp_path)
    html = path.read_text()
    assert EVIL_SCRIPT not in html and "<img src=x" not in html
    opened = Opened(browser, path, "#ply=1")
    try:
        panel = opened.page.inner_text("#panel")
        assert f"reply: I play {EVIL_SCRIPT}" in panel
        assert f"reply: {EVIL_IMG}" in panel and f"parse error: no move in {EVIL_IMG}" in panel
        assert "re-ask 1, reply" in panel and "parsed move: x(1,1)" in panel
        assert f"score: {EVIL_SCRIPT}" in panel and "score method" in panel and "words x1" in panel
        assert "prompt (rebuilt" in panel and "[system]" in panel and "[user]" in panel
        # the re-ask shows the correction the model answered, with the bad reply quoted as text
        assert "re-ask 1 (rebuilt)" in panel and f"[assistant]\nI play {EVIL_SCRIPT}" in panel
        assert EVIL_SCRIPT in opened.page.inner_text("header")
        opened.page.keyboard.press("End")
        assert opened.page.evaluate("typeof window.__pwned") == "undefined"
        assert opened.page.evaluate("document.querySelectorAll('img').length") == 0
        assert opened.page.evaluate("document.querySelectorAll('script').length") == 2
        assert opened.requests == [opened.url] and opened.errors == []
    finally:
        opened.close()


def test_chess_boards_and_a_screenshot_that_is_not_blank(browser, db, tmp_path):
    import chess
    from PIL import Image
    gid = db["chess"]
    with Record(db["path"]) as rec:
        moves = rec.moves(gid)
    state = games.make("openspiel:chess").new_initial_state()
    for m in moves[:7]:
        state.apply_action(m["action"])
    opened = Opened(browser, _page(db, "chess", tmp_path), "#ply=7")
    try:
        board = chess.Board(str(state))
        squares = dict(opened.page.eval_on_selector_all(
            "#board .cell", "els => els.map(e => [e.dataset.square, e.dataset.piece])"))
        assert len(squares) == 64
        for sq in chess.SQUARES:
            p = board.piece_at(sq)
            assert squares[chess.square_name(sq)] == (p.symbol() if p else ".")
        assert opened.page.get_attribute("#board svg", "data-fen") == str(state)
        # every <use> points at a piece drawing the page defines
        assert opened.page.evaluate("""[...document.querySelectorAll('#board use')].every(
            u => document.getElementById(u.getAttribute('href').slice(1)) !== null)""")
        png = opened.page.screenshot(full_page=True)
        img = Image.open(io.BytesIO(png)).convert("RGB")
        colours = img.getcolors(maxcolors=1 << 20)
        assert len(colours) > 50
        board_png = Image.open(io.BytesIO(opened.page.locator("#board").screenshot())).convert("RGB")
        assert len(board_png.getcolors(maxcolors=1 << 20)) > 20   # squares and drawn pieces, not a blank box
    finally:
        opened.close()


# ------------------------------------------------------------------------------ no browser
def test_data_block_cannot_be_closed_by_record_text():
    data = {"reply": "</script><script>alert(1)</script> & \u2028 <!--"}
    text = json_for_script(data)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == data
    assert json.loads(json_for_script({"v": float("nan"), "w": [float("inf"), 0.5]})) == {"v": None, "w": [None, 0.5]}


def test_index_links_every_game_and_the_cli_writes_a_page(db, tmp_path, capsys):
    with Record(db["path"]) as rec:
        index = write_index(rec, db["c4_tournament"], tmp_path / "pages")
    html = index.read_text()
    links = re.findall(r'href="([^"]+)"', html)
    assert sorted(links) == sorted(page_filename(g) for g in db["c4"])
    assert all((tmp_path / "pages" / link).is_file() for link in links)
    assert "1 inaccuracy, 1 mistake, 1 blunder" in html
    out = tmp_path / "one.html"
    assert main(["replay", "--db", str(db["path"]), db["ttt"][0], "--html", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["replay", "--db", str(db["path"]), "no-such-game", "--html", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("plyground replay: error: unknown game 'no-such-game'")
    assert main(["replay", "--db", str(db["path"]), db["ttt"][0], "--html", str(out), "--engine", "nope"]) == 2
    assert "engine 'nope' has not analysed" in capsys.readouterr().err
    assert main(["replay", "--db", str(db["path"]), db["ttt"][0], "--html", str(out), "--engine", "test"]) == 2
    assert "engine 'test' has not analysed" in capsys.readouterr().err
    assert main(["replay", "--db", str(db["path"]), db["ttt"][0], "--html", str(out), "--engine", "test-negamax"]) == 0
    with Record(db["path"]) as rec, pytest.raises(Exception, match="unknown tournament"):
        write_index(rec, "no-such-tournament", tmp_path / "x")
    # a game whose moves the rules refuse is listed without a page; the other games keep theirs
    with Record(tmp_path / "bad.db") as rec:
        rec.upsert_tournament("t-bad", "bad", "tictactoe", "round-robin", 0, {})
        for gid, actions in (("t-bad-g0", [4, 4]), ("t-bad-g1", [4, 0])):
            rec.insert_game({"id": gid, "tournament": "t-bad", "game": "tictactoe", "players": ["p0", "p1"],
                             "returns": [0.0, 0.0], "termination": "max_plies"},
                            [{"ply": k, "player": k % 2, "action": a} for k, a in enumerate(actions)])
        html = write_index(rec, "bad", tmp_path / "bad").read_text()
    assert "t-bad-g0 <em>(no page: game t-bad-g0: ply 1 action 4" in html
    assert re.findall(r'href="([^"]+)"', html) == ["t-bad-g1.html"]


def test_pgn_export_carries_eval_emt_and_nags_that_python_chess_reads(db):
    import chess.pgn
    with Record(db["path"]) as rec:
        out = io.StringIO()
        export_pgn(rec, out, tournament="t-chess")
        moves = rec.moves(db["chess"])
        rows = {r["ply"]: r for r in rec.db.query("SELECT * FROM analysis WHERE game = ?", [db["chess"]])}
    game = chess.pgn.read_game(io.StringIO(out.getvalue()))
    assert game is not None and not game.errors
    nodes = list(game.mainline())
    assert len(nodes) == len(moves)
    white = next(m["player"] for m in moves)
    for node, m in zip(nodes, moves):
        a = rows[m["ply"]]
        assert node.emt() == pytest.approx(m["think_time"], abs=1e-3)
        v = a["value_after"] if m["player"] == white else -a["value_after"]
        cp = node.eval().white().score()
        # the inverse of lichess's curve: the centipawns give back the value's win chance
        import math
        assert 2 / (1 + math.exp(-0.00368208 * cp)) - 1 == pytest.approx(v, abs=0.002)
        expected = {None: set(), "inaccuracy": {6}, "mistake": {2}, "blunder": {4}}[a["label"]]
        assert node.nags == expected
        assert node.board().fen().split()[:4] == _fen_after(moves, m["ply"]).split()[:4]
    # an engine that analysed nothing is an error naming the ones that did, not an export without evals
    assert main(["arena", "export", "--db", str(db["path"]), "--format", "pgn", "--engine", "nope"]) == 2
    with Record(db["path"]) as rec, pytest.raises(Exception, match="'nope' has not analysed any game of .*test-chess"):
        export_pgn(rec, io.StringIO(), engine="nope")


def _fen_after(moves: list[dict], ply: int) -> str:
    s = games.make("openspiel:chess").new_initial_state()
    for m in moves[:ply + 1]:
        s.apply_action(m["action"])
    return str(s)


def test_eval_text_writes_mates_from_whites_view():
    from plyground.arena.export import eval_text
    assert eval_text({"value_after": 1.0, "exact": 1, "action": 3, "pv": [3, 4, 5, 6, 7]}, True) == "#2"
    assert eval_text({"value_after": 1.0, "exact": 1, "action": 3, "pv": [3, 4, 5]}, False) == "#-1"
    assert eval_text({"value_after": 1.0, "exact": 0, "action": 3, "pv": [3, 4, 5]}, True) == "20.64"
    assert eval_text({"value_after": None}, True) is None


def test_jsonl_export_carries_every_analysis_row(db):
    with Record(db["path"]) as rec:
        out = io.StringIO()
        export_jsonl(rec, out)
        count = {g: n for g, n in rec.db.conn.execute("SELECT game, COUNT(*) FROM analysis GROUP BY game")}
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert {d["id"]: len(d["analysis"]) for d in lines} == {d["id"]: count.get(d["id"], 0) for d in lines}
    ttt = next(d for d in lines if d["id"] == db["ttt"][0])
    assert [a["ply"] for a in ttt["analysis"]] == [m["ply"] for m in ttt["moves"]]
    assert all(a["exact"] is True and isinstance(a["pv"], list) for a in ttt["analysis"])


def _record_random_game(rec: Record, tid: str, name: str, r) -> str:
    """Record ``r`` (a ``play_game`` result of random:seed=1 against random:seed=2) as game ``{tid}-g0``
    of a tournament ``tid`` called ``name``."""
    ids = [rec.upsert_player(s, s, agents.make(s).config()) for s in ("random:seed=1", "random:seed=2")]
    rec.upsert_tournament(tid, name, r.game, "round-robin", 0, {})
    rec.insert_game({"id": f"{tid}-g0", "tournament": tid, "game": r.game, "players": ids, "returns": r.returns,
                     "termination": r.termination, "detail": r.detail},
                    [{"ply": m.ply, "player": m.player, "action": m.action, "text": m.text,
                      "think_time": m.think_time, "decision": m.decision} for m in r.moves])
    return f"{tid}-g0"


def test_other_games_show_their_text_board_at_every_ply(browser, tmp_path):
    """A game with chance moves and no SVG board: the page's <pre> holds str(state) of the rules' state."""
    game = games.make("openspiel:pig(winscore=15)")
    r = play_game(game, [agents.make("random:seed=1"), agents.make("random:seed=2")], seed=2, max_plies=40)
    with Record(tmp_path / "pig.db") as rec:
        _record_random_game(rec, "t-pig", "pig", r)
        path = write_game_page(rec, "t-pig-g0", tmp_path / "pig.html")
    assert any(m.player < 0 for m in r.moves)
    opened = Opened(browser, path)
    try:
        state = game.new_initial_state()
        for k in range(len(r.moves) + 1):
            assert opened.ply() == k
            assert opened.page.text_content("#board pre") == str(state).rstrip("\n")
            if k < len(r.moves):
                state.apply_action(r.moves[k].action)
            opened.page.keyboard.press("ArrowRight")
        assert "termination" in opened.page.inner_text("#panel")      # the result, on the last ply
        assert opened.errors == [] and opened.requests == [opened.url]
    finally:
        opened.close()


def test_graph_is_the_first_movers_win_chance_at_every_ply(db):
    """The page's graph points against the test's own negamax: the position after k plies, valued for
    the seat that moved first (the other seat's values turned over; a finished game its return)."""
    from plyground.arena.replay_page import game_page_data
    for gid in db["ttt"]:
        with Record(db["path"]) as rec:
            moves = rec.moves(gid)
            data = game_page_data(rec, gid)
        first = moves[0]["player"]
        assert data["first_mover"] == first and data["engine"] == "test-negamax"
        played: tuple[int, ...] = ()
        expected = []
        for k in range(len(moves) + 1):
            if k:
                played += (moves[k - 1]["action"],)
            if _terminal(played):
                v = _final(played, first)
            else:
                to_move = len(played) % 2          # tic-tac-toe: seat 0 moves first, then they alternate
                v = _negamax(played) if to_move == first else -_negamax(played)
            expected.append((v + 1) / 2)
        assert [f["chance"] for f in data["frames"]] == pytest.approx(expected), gid


def test_opening_plies_are_not_charged_as_labelled_moves(tmp_path):
    """A tournament's random opening plies: their analysis is shown, but the page marks no label on
    them, the index does not count them and the PGN gives them no NAG."""
    import chess.pgn
    from plyground.arena.replay_page import game_page_data
    db = tmp_path / "opening.db"
    chess_game = games.make("openspiel:chess")
    first = chess_game.new_initial_state()
    opening = [first.string_to_action("f3")]                 # 1. f3: a poor move nobody chose
    s = first.clone()
    s.apply_action(opening[0])
    opening.append(s.string_to_action("e5"))
    r = play_game(chess_game, [agents.make("random:seed=1"), agents.make("random:seed=2")], seed=5, max_plies=8,
                  opening=opening)
    assert [bool((m.decision or {}).get("opening")) for m in r.moves[:3]] == [True, True, False]
    with Record(db) as rec:
        _record_random_game(rec, "t-open", "open", r)
        # every ply a blunder by the test's say-so: the two opening plies must not count as ones
        _insert_analysis(rec, [("t-open-g0", m.ply, "test", m.player, m.action, m.action, 0.0, -0.9, 0, "blunder",
                                "[]", "{}") for m in r.moves])
        data = game_page_data(rec, "t-open-g0")
        index = write_index(rec, "open", tmp_path / "pages").read_text()
        out = io.StringIO()
        export_pgn(rec, out)
    labels = [f["move"]["label"] for f in data["frames"][1:]]
    assert labels == [None, None] + ["blunder"] * (len(r.moves) - 2)
    assert "blunder" in " ".join(" ".join(map(str, row)) for s in data["frames"][1]["panel"] for row in s["rows"])
    assert f"{len(r.moves) - 2} blunders" in index
    nodes = list(chess.pgn.read_game(io.StringIO(out.getvalue())).mainline())
    assert [n.nags for n in nodes] == [set(), set()] + [{4}] * (len(r.moves) - 2)


def test_analysis_panel_lists_top_moves_with_or_without_visits():
    from plyground.arena.replay_page import _analysis_section
    state = games.make("tictactoe").new_initial_state()
    row = {"value_before": 0.1, "value_after": 0.0, "best_action": 4, "label": None, "exact": False, "pv": [4]}
    mcts = _analysis_section({**row, "detail": {"top": [[4, 0.1, 30], [0, -0.2, 5]]}}, "mcts:sims=50", state)
    assert mcts["table"] == {"head": ["move", "value", "visits"],
                             "rows": [[state.action_to_string(4), "+0.100", "30"],
                                      [state.action_to_string(0), "-0.200", "5"]]}
    solver = _analysis_section({**row, "detail": {"top": [[4, 0.0], [0, 0.0]]}}, "solver:time=1", state)
    assert solver["table"]["head"] == ["move", "value"] and len(solver["table"]["rows"]) == 2


def test_the_page_builds_no_agent_but_an_llm_one_from_a_record(monkeypatch):
    """Rebuilding a prompt makes the recorded player's agent: only an ``llm`` one, nothing else a record names."""
    from plyground.arena import replay_page
    made = []
    real = agents.make
    monkeypatch.setattr(agents, "make", lambda config, *a, **k: (made.append(config), real(config, *a, **k))[1])
    state = games.make("tictactoe").new_initial_state()
    for config in ({"name": "neural-mcts", "model": "/no/such/checkpoint.pt"}, "neural-mcts:model=/x.pt",
                   {"name": "llm-mcts", "sims": 4}):
        assert replay_page._rebuilt_prompt(config, state, 0) is None
    assert made == []
    prompt, reask = replay_page._rebuilt_prompt(real("llm").config(), state, 0)
    assert made and any(m["role"] == "user" for m in prompt)


def test_a_rebuilt_prompt_is_shown_only_when_it_is_the_prompt_sent():
    """The ``llm`` agent records a digest of the messages it sent (the real bundled model answers);
    the page shows its rebuilt prompt when the digest matches, and not when the player's templates
    now give other text (here the rebuilding agent's history is shorter, which changes the text as a
    changed template would)."""
    from plyground.agents.llm.prompts import prompt_digest
    from plyground.arena.replay_page import _llm_section, _rebuilt_prompt
    sent = []
    agent = agents.make("llm:n_threads=1,seed=1,retries=0,max_tokens=6")
    chat = agent.backend.chat
    agent.backend.chat = lambda messages, **kw: (sent.append(list(messages)), chat(messages, **kw))[1]
    state = games.make("tictactoe").new_initial_state()
    for a in (4, 0, 8):
        state.apply_action(a)
    d = agent.act(state).to_json()
    assert sent and d["info"]["prompt_digest"] == prompt_digest(sent[0])

    same = _llm_section(d, _rebuilt_prompt(agent.config(), state, 1))
    assert [b["text"] for b in same["blocks"] if b["label"].startswith("prompt (rebuilt")] == [
        "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in sent[0])]
    assert "digest matches" in same["blocks"][0]["label"]

    other = _llm_section(d, _rebuilt_prompt({**agent.config(), "history": 0}, state, 1))
    assert not any(b["label"].startswith("prompt") for b in other["blocks"])
    assert ["prompt", "not shown: rebuilt now, it differs from the one sent (the prompts changed since the "
            f"game; recorded digest {d['info']['prompt_digest']})"] in other["rows"]

    no_digest = _llm_section({**d, "info": {}}, _rebuilt_prompt(agent.config(), state, 1))
    assert "no digest" in no_digest["blocks"][0]["label"]
