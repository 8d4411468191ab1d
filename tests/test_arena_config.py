"""Tournament configs: good ones parse, every bad field is named with its value and what is allowed."""

from __future__ import annotations

import pytest

from plyground.arena.config import ConfigError, config_from_dict, load_config

BASE = {"game": "connect4", "agents": ["random", "minimax:depth=2"]}


def cfg(**kw):
    return config_from_dict({**BASE, **kw})


def test_example_configs_parse(tmp_path):
    from pathlib import Path
    c = load_config(Path(__file__).parent.parent / "examples" / "default.toml")
    assert c.game == "connect4" and c.format == "round-robin" and len(c.agents) >= 5
    assert c.games_per_pairing % 2 == 0 and c.colour_swap


def test_agent_tables_and_names():
    c = cfg(agents=["random", {"agent": "mcts", "sims": 50, "name": "m50"}, {"spec": "minimax:depth=3"},
                    {"name": "minimax", "depth": 4}])
    assert [a.name for a in c.agents] == ["random", "m50", "minimax:depth=3", "minimax:depth=4"]
    assert c.agents[1].canonical == "mcts:sims=50" and c.agents[1].config["sims"] == 50


def test_the_id_depends_on_what_is_played_not_on_the_display_name():
    assert cfg(name="a").id == cfg(name="b").id
    assert cfg(seed=1).id != cfg(seed=2).id
    assert cfg(move_time=1.0).id != cfg().id


def test_opening_list_in_game_notation():
    c = cfg(openings={"moves": ["44", "4 5 3", ["1", "2"]]})
    assert c.opening_moves == ((3, 3), (3, 4, 2), (0, 1))


@pytest.mark.parametrize("data, words", [
    ({"gmae": "x"}, ["'gmae'", "allowed fields", "games_per_pairing"]),
    ({"format": "knockout"}, ["'format'", "'knockout'", "round-robin", "swiss"]),
    ({"games_per_pairing": 3}, ["'games_per_pairing'", "3", "even"]),
    ({"games_per_pairing": 0}, ["'games_per_pairing'", "0", ">= 1"]),
    ({"games_per_pairing": "2"}, ["'games_per_pairing'", "'2'", "integer"]),
    ({"move_time": -1}, ["'move_time'", "-1", "> 0"]),
    ({"seed": 1.5}, ["'seed'", "1.5", "integer"]),
    ({"colour_swap": "yes"}, ["'colour_swap'", "'yes'", "true or false"]),
    ({"game": "chess9"}, ["'game'", "chess9", "allowed"]),
    ({"agents": ["random"]}, ["'agents'", "at least two"]),
    ({"agents": ["random", "minimx:depth=2"]}, ["agents[1]", "minimx", "allowed"]),
    ({"agents": ["random", "minimax:dpth=2"]}, ["agents[1]", "dpth", "allowed"]),
    ({"agents": ["random", 7]}, ["agents[1]", "7", "spec string"]),
    ({"agents": ["random", "random"]}, ["agents[0]", "agents[1]", "unique"]),
    ({"agents": ["random", {"agent": "random", "name": "r2"}]}, ["same configuration"]),
    ({"rounds": 3}, ["'rounds'", "3", "swiss"]),
    ({"format": "gauntlet", "gauntlet": "nobody"}, ["'gauntlet'", "nobody", "names: random"]),
    ({"openings": {"moves": ["48"]}}, ["openings.moves[0]", "'48'", "illegal"]),
    ({"openings": {"moves": ["4545454"]}}, ["openings.moves[0]", "unfinished"]),
    ({"openings": {"random_plies": -1}}, ["openings.random_plies", "-1"]),
    ({"openings": {"plies": 2}}, ["openings.plies", "allowed keys"]),
    ({"openings": {"random_plies": 2, "order": "shuffled"}}, ["openings.order", "shuffled", "sequential"]),
    ({"game": "openspiel:kuhn_poker(players=3)"}, ["'game'", "two-player"]),
])
def test_bad_fields_name_the_field_the_value_and_what_is_allowed(data, words):
    with pytest.raises(ConfigError) as e:
        cfg(**data)
    msg = str(e.value)
    for w in words:
        assert w in msg, (w, msg)


def test_toml_errors(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text('game = "connect4"\nagents = [random]\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    p.write_text('game = "connect4"\n')
    with pytest.raises(ConfigError, match="'agents' is missing"):
        load_config(p)


def test_cli_reports_a_bad_config_field(tmp_path, capsys):
    from plyground.cli.main import main
    p = tmp_path / "bad.toml"
    p.write_text('game = "connect4"\nagents = ["random", "minimax"]\nformat = "ladder"\n')
    assert main(["arena", "run", str(p), "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "'format'" in err and "'ladder'" in err and "round-robin" in err
