"""Game text, template overrides and reply parsing for the LLM agents (no model needed)."""

from __future__ import annotations

import math
import random

import pytest

from conftest import after_random_plies, random_positions
from plyground import games
from plyground.agents.llm.parsing import parse_move, parse_value
from plyground.agents.llm.prompts import (
    FIELDS, PromptTemplateError, PromptTemplates, board_text, load_templates, move_continuations,
    move_prompt, prompt_fields, retry_message, spaced_grid, templates_from, value_continuations,
    VALUE_PROMPTS, tactics_text, value_prompt,
)
from plyground.agents.llm.roles import shape_distribution, softmax

GAMES = ["tictactoe", "connect4", "openspiel:connect_four", "openspiel:tic_tac_toe", "openspiel:breakthrough",
         "openspiel:chess", "pettingzoo:classic/connect_four_v3", "pettingzoo:classic/tictactoe_v3"]


# ----------------------------------------------------------------------------- prompts
@pytest.mark.parametrize("name", GAMES)
def test_prompt_has_rules_board_turn_legal_moves_and_history(name):
    s = after_random_plies(name, 3)
    sys_msg, user = move_prompt(s)
    assert sys_msg["role"] == "system" and user["role"] == "user"
    f = prompt_fields(s)
    assert f["rules"] in sys_msg["content"]
    assert str(s).strip() in user["content"] or f["board"] in user["content"]
    notation = [s.action_to_string(a) for a in s.legal_actions()]
    assert f["legal_moves"] == ", ".join(notation) and f["legal_moves"] in user["content"]
    assert f["player"] + " to move" in user["content"]
    # the last two moves, in the notation they had when they were played
    replay = games.make(name).new_initial_state()
    said = []
    for a in s.history():
        said.append(replay.action_to_string(a))
        replay.apply_action(a)
    assert f["history"] == " ".join(said[-2:])
    # the continuations are exactly the legal moves' notation
    assert move_continuations(s) == notation


@pytest.mark.parametrize("name", ["connect4", "openspiel:chess", "pettingzoo:classic/connect_four_v3"])
def test_system_message_is_the_same_for_every_position_of_a_game(name):
    """The unchanging part comes first, so llama.cpp reuses its cache across calls."""
    systems = {move_prompt(after_random_plies(name, n, seed=n))[0]["content"] for n in range(0, 8, 2)}
    systems |= {value_prompt(after_random_plies(name, n, seed=n))[0]["content"] for n in range(1, 8, 2)}
    assert len(systems) == 1


def test_player_names_follow_the_game():
    assert prompt_fields(games.make("connect4").new_initial_state())["player"] == "x"
    chess = games.make("openspiel:chess").new_initial_state()          # white moves first
    assert prompt_fields(chess)["player"] == "white"
    pz = games.make("pettingzoo:classic/chess_v6").new_initial_state()
    assert prompt_fields(pz)["player"] == "white"
    pz.apply_action(pz.legal_actions()[0])
    assert prompt_fields(pz)["player"] == "black"


def test_imperfect_information_prompt_hides_the_opponents_cards():
    s = games.make("openspiel:kuhn_poker").new_initial_state()
    s.apply_action(0)   # player 0 gets the jack
    s.apply_action(2)   # player 1 gets the king
    text = move_prompt(s)[1]["content"]
    f = prompt_fields(s)
    assert f["board"] == s.observation_string(0).rstrip()
    assert "Deal" not in f["history"] and "Deal" not in text


def test_value_prompt_asks_for_the_outcome_words():
    s = after_random_plies("connect4", 4)
    assert value_continuations() == ["win", "draw", "loss"]
    assert "outcome?" in value_prompt(s)[1]["content"] and "win, draw or loss" in value_prompt(s)[0]["content"]


def test_grid_boards_are_spaced_one_cell_per_token():
    # x in column 4, o on top of it, x in column 3: drawn by hand, top row first
    s = games.play_moves(games.make("connect4"), "443")
    rows = [". . . . . . ."] * 4 + [". . . o . . .", ". . x x . . ."]
    assert board_text(s) == "\n".join(rows)
    assert ("Board:\n" + "\n".join(rows) + "\nWinning moves: none\nSafe moves: 1, 2, 3, 4, 5, 6, 7\no to move"
            in move_prompt(s)[1]["content"])
    # the spaced cells are what the tokenizer cannot merge: each cell is its own token
    assert all(len(line.split(" ")) == 7 for line in board_text(s).split("\n"))
    # text that is not a grid of one-character cells is left as it is
    for text in ["x.o", "ab\ncd\nef", "x . o\n. . .\n. . .", "abc\nabcd\nabc", "8/8/8 w - 0 1"]:
        assert spaced_grid(text) == text


# ----------------------------------------------------------------------------- templates
def _pyspiel_tactics(moves: list[int]) -> tuple[list[int], list[int]]:
    """Winning and safe columns (0-based) of the connect-four position after ``moves``, by pyspiel's rules."""
    import pyspiel
    game = pyspiel.load_game("connect_four")
    s = game.new_initial_state()
    for a in moves:
        s.apply_action(a)
    me = s.current_player()
    winning, safe = [], []
    for a in s.legal_actions():
        t = s.child(a)
        if t.is_terminal():
            if t.returns()[me] > 0:
                winning.append(a)
            safe.append(a)
        elif not any(t.child(b).is_terminal() and t.child(b).returns()[1 - me] > 0 for b in t.legal_actions()):
            safe.append(a)
    return winning, safe


def test_tactics_lines_match_pyspiel_on_random_connect4_positions():
    seen_win = seen_unsafe = 0
    for s in random_positions(games.make("connect4"), 250, (4, 30), seed=7):
        moves = [int(a) for a in s.history()]
        winning, safe = _pyspiel_tactics(moves)
        cols = lambda acts: ", ".join(str(a + 1) for a in acts) or "none"  # noqa: E731
        assert tactics_text(s) == f"Winning moves: {cols(winning)}\nSafe moves: {cols(safe)}\n", moves
        seen_win += bool(winning)
        seen_unsafe += len(safe) < len(s.legal_actions())
    assert seen_win > 20 and seen_unsafe > 20   # the sample exercised both lines


def test_tactics_by_hand_and_where_there_are_none():
    # x in cells 0 and 1, o in the centre: o cannot win yet, and every o move but cell 2 lets x win
    s = games.make("tictactoe").new_initial_state()
    for a in (0, 4, 1):
        s.apply_action(a)
    text = tactics_text(s)
    assert text.startswith("Winning moves: none\nSafe moves: ")
    assert text.split("Safe moves: ")[1].strip() == s.action_to_string(2)
    # a hidden-information game gets no lookahead (its player cannot see the positions)
    kuhn = games.make("openspiel:kuhn_poker").new_initial_state()
    while kuhn.is_chance_node():
        kuhn.apply_action(kuhn.legal_actions()[0])
    assert tactics_text(kuhn) == "" and prompt_fields(kuhn)["tactics"] == ""
    # a template without {tactics} does not pay for it
    assert prompt_fields(s, templates=PromptTemplates(move="{board} Move?"))["tactics"] == ""
    # nor does a value call under the built-in templates (only the move prompt shows the lines)...
    assert prompt_fields(s, prompts=VALUE_PROMPTS)["tactics"] == "" and prompt_fields(s)["tactics"] == text
    assert "Safe moves" not in value_prompt(s)[1]["content"] and "Safe moves" in move_prompt(s)[1]["content"]
    # ...unless its value template asks for them
    asks = PromptTemplates(value="{board}\n{tactics}Who wins?")
    assert value_prompt(s, asks)[1]["content"].endswith(text + "Who wins?")


def test_template_override_from_a_toml_file(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('move = "Play {game}. Board:\\n{board}\\nYou are {player}; pick from {legal_moves}."\n'
                    'outcomes = ["good", "even", "bad"]\n'
                    'value = "{player}: {outcomes}?"\n')
    t = load_templates(path)
    s = after_random_plies("connect4", 2)
    user = move_prompt(s, t)[1]["content"]
    assert user == f"Play connect four. Board:\n{board_text(s)}\nYou are x; pick from 1, 2, 3, 4, 5, 6, 7."
    assert value_continuations(t) == ["good", "even", "bad"]
    assert value_prompt(s, t)[1]["content"] == "x: good, even or bad?"
    # keys not given keep the built-ins (which use the new outcome words)
    assert t.system == PromptTemplates().system and t.retry == PromptTemplates().retry
    assert "good, even or bad" in move_prompt(s, t)[0]["content"]


def test_template_override_from_a_plain_text_file_replaces_the_move_prompt(tmp_path):
    path = tmp_path / "move.txt"
    path.write_text("{board}\n{{literal braces}} {player} to play; moves {legal_moves}")
    s = after_random_plies("tictactoe", 1)
    user = move_prompt(s, load_templates(path))[1]
    assert user["content"] == f"{board_text(s)}\n{{literal braces}} o to play; moves " + \
        ", ".join(s.action_to_string(a) for a in s.legal_actions())


@pytest.mark.parametrize("text, fragment", [
    ("{board} {secret}", "unknown placeholder {secret}"),
    ("{board.__class__}", "unknown placeholder {board.__class__}"),
    ("{board[0]}", "unknown placeholder {board[0]}"),
    ("{} {board}", "positional placeholder"),
    ("{board", "write a literal brace"),
    ("{board:{player}}", "nested placeholders"),
])
def test_bad_template_placeholders_are_clear_errors(tmp_path, text, fragment):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(PromptTemplateError) as e:
        load_templates(path)
    msg = str(e.value)
    assert fragment in msg and str(path) in msg
    if "unknown placeholder" in fragment:
        for name in FIELDS:          # the error names every allowed placeholder
            assert "{" + name + "}" in msg


def test_retry_template_may_use_reply_and_error_but_the_others_may_not():
    templates_from({"retry": "You said {reply}: {error}"})
    with pytest.raises(PromptTemplateError, match=r"unknown placeholder \{reply\}.*allowed"):
        templates_from({"move": "You said {reply}"})
    s = after_random_plies("connect4", 2)
    msgs = retry_message("9", "'9' is not legal", prompt_fields(s))
    assert msgs[0] == {"role": "assistant", "content": "9"}
    assert "'9' is not legal" in msgs[1]["content"] and "1, 2, 3, 4, 5, 6, 7" in msgs[1]["content"]


@pytest.mark.parametrize("content, fragment", [
    ('move = "x"\nrules = "y"\n', "unknown key(s) ['rules']"),
    ('outcomes = ["win", "win", "loss"]\n', "three different non-empty words"),
    ('outcomes = "win"\n', "must be a list of three words"),
    ('move = 3\n', "must be a string"),
    ('move = "unterminated\n', "not valid TOML"),
])
def test_bad_template_files_name_the_problem(tmp_path, content, fragment):
    path = tmp_path / "t.toml"
    path.write_text(content)
    with pytest.raises(PromptTemplateError) as e:
        load_templates(path)
    assert fragment in str(e.value)


def test_missing_template_file_is_a_clear_error(tmp_path):
    with pytest.raises(PromptTemplateError, match="cannot read prompt templates"):
        load_templates(tmp_path / "nope.toml")


def test_templates_never_execute_code(tmp_path):
    """Only str.format_map over plain strings: no attribute access, so no way into Python."""
    for evil in ("{board.__init__.__globals__}", "{player.__class__.__mro__[1].__subclasses__}"):
        with pytest.raises(PromptTemplateError):
            PromptTemplates(move=evil)


# ----------------------------------------------------------------------------- parsing
def _c4(moves: str):
    return games.play_moves(games.make("connect4"), moves)


C4 = "444444"     # column 4 is full: 1 2 3 5 6 7 are legal


@pytest.mark.parametrize("reply, expected", [
    ("5", "5"), ("5.", "5"), (" 5 \n", "5"), ("**5**", "5"), ("`5`", "5"), ("```\n6\n```", "6"),
    ("Move: 2", "2"), ("column 3", "3"), ("Column 3!", "3"), ("I play 7", "7"), ("I will play column 1.", "1"),
    ("My move is 6", "6"), ("The answer is: 2", "2"), ('{"move": 2}', "2"),
    ("I drop my stone in column five", "5"), ("Best move: column seven, because it blocks.", "7"),
    ("I would not play 3; I play 5", "5"), ("play 5 instead of 3", "5"), ("Avoid 1. Column 2.", "2"),
    ("2\nBecause the center is full, 2 is best.", "2"),
])
def test_replies_that_name_one_legal_move(reply, expected):
    s = _c4(C4)
    p = parse_move(reply, s)
    assert p.ok, p.error
    assert p.action == s.string_to_action(expected)     # the game's own parser is the truth
    assert p.text == expected


@pytest.mark.parametrize("reply, fragment", [
    ("4", "'4' is not a legal move"),                   # the column is full
    ("I play 4", "'4' is not a legal move"),
    ("Column 9", "'9' is not a legal move"),
    ("play 0", "'0' is not a legal move"),
    ("1, 2, 3", "names several moves (1, 2, 3)"),
    ("Legal moves: 1, 2, 3, 5, 6, 7", "names several moves"),
    ("either 2 or 6", "names several moves (2, 6)"),
    ("", "the reply is empty"),
    ("   ", "the reply is empty"),
    ("I don't know", "names no legal move"),
    ("5555", "'5555' is not a legal move"),
    ("__import__('os').system('echo pwned')", "names no legal move"),
    ("eval('2+3')", "names several moves (2, 3)"),      # not evaluated to 5
    ("x" * 100_000, "names no legal move"),
])
def test_replies_without_exactly_one_legal_move_are_errors(reply, fragment):
    s = _c4(C4)
    p = parse_move(reply, s)
    assert not p.ok and p.action is None
    assert fragment in p.error
    assert "legal moves: 1, 2, 3, 5, 6, 7" in p.error or "several" in p.error
    assert len(p.error) < 400       # a huge reply is not echoed back in full


def test_parsing_never_evaluates_the_reply(monkeypatch):
    import builtins
    called = []
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: called.append(a))
    monkeypatch.setattr(builtins, "exec", lambda *a, **k: called.append(a))
    parse_move("eval('1+1'); exec('x=1'); 3", _c4(""))
    assert not called


@pytest.mark.parametrize("reply, cell", [
    ("x(1,1)", 4), ("(1, 1)", 4), ("1,1", 4), ("I place my mark at (2,0).", 6), ("row 0, column 2", 2),
    ("cell 8", 8), ("Move: x(0,1)", 1),
])
def test_tictactoe_replies(reply, cell):
    s = games.make("tictactoe").new_initial_state()
    p = parse_move(reply, s)
    assert p.action == cell, p.error


def test_tictactoe_occupied_cell_is_not_legal():
    s = games.play_moves(games.make("tictactoe"), "4")
    p = parse_move("x(1,1)", s)
    assert not p.ok and "not a legal move" in p.error


@pytest.mark.parametrize("name, reply", [
    ("openspiel:chess", "I play e4"), ("openspiel:chess", "Nf3"), ("openspiel:chess", "1. e4"),
    ("openspiel:go(board_size=5)", "B c3"), ("openspiel:go(board_size=5)", "c3"),
    ("openspiel:connect_four", "x3"), ("pettingzoo:classic/connect_four_v3", "Column 4"),
    ("openspiel:hex(board_size=5)", "c3"), ("openspiel:breakthrough", "move a7a6"),
])
def test_other_notations(name, reply):
    s = games.make(name).new_initial_state()
    p = parse_move(reply, s)
    assert p.ok, p.error
    assert p.action in s.legal_actions()
    assert s.action_to_string(p.action).lower().endswith(
        reply.split()[-1].lower().replace("column", "").strip()) or name.startswith("pettingzoo")


def test_parse_on_random_positions_returns_only_legal_moves():
    """Every reply that names a move's notation parses to exactly that legal move."""
    rng = random.Random(3)
    for name in ("connect4", "tictactoe", "openspiel:chess", "pettingzoo:classic/connect_four_v3"):
        for _ in range(10):
            s = after_random_plies(name, rng.randrange(0, 6), seed=rng.randrange(1000))
            if s.is_terminal():
                continue
            for a in s.legal_actions()[:8]:
                text = s.action_to_string(a)
                for reply in (text, f"I play {text}.", f"Move: {text}"):
                    p = parse_move(reply, s)
                    assert p.action == a, (name, reply, p)


def test_terminal_state_has_no_move():
    s = _c4("1212121")
    assert s.is_terminal()
    assert "game is over" in parse_move("1", s).error


@pytest.mark.parametrize("reply, value", [
    ("0.5", 0.5), ("-1", -1.0), ("+0.25 for x", 0.25), ("70%", 0.4), ("win", 1.0), ("It's a draw", 0.0),
    ("loss, clearly", -1.0), ("the chance is 80 percent", 0.6), ("nonsense", None), ("7", None), ("", None),
])
def test_parse_value(reply, value):
    got = parse_value(reply)
    assert (got is None and value is None) or math.isclose(got, value)


# ----------------------------------------------------------------------------- distributions
def test_softmax_and_shaping_cover_the_legal_set_and_sum_to_one():
    lp = [-1.0, -2.0, -0.5, -math.inf, -3.0]
    p = softmax(lp)
    assert math.isclose(sum(p), 1.0) and p[3] == 0.0 and max(p) == p[2]
    assert softmax([-math.inf, float("nan")]) == [0.5, 0.5]
    assert math.isclose(sum(softmax(lp, temperature=0.1)), 1.0)
    dist = dict(zip([10, 11, 12, 13, 14], p))
    full = shape_distribution(dist)
    assert set(full) == set(dist) and math.isclose(sum(full.values()), 1.0)
    mixed = shape_distribution(dist, mix=0.5)
    assert math.isclose(sum(mixed.values()), 1.0) and all(v >= 0.1 - 1e-12 for v in mixed.values())
    top = shape_distribution(dist, k=2)
    assert list(top) == [12, 10] and math.isclose(sum(top.values()), 1.0)
    assert math.isclose(top[12] / top[10], dist[12] / dist[10])
