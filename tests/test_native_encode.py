"""The numba batch encoder gives exactly what the state API (and OpenSpiel) gives, position by position."""

import random

import numpy as np
import pyspiel
import pytest

from plyground import games
from plyground.games.native.encode import encode


@pytest.mark.parametrize("name,os_name", [("connect4", "connect_four"), ("tictactoe", "tic_tac_toe")])
def test_encoder_matches_openspiel_on_random_games(name, os_name):
    game, ref = games.make(name), pyspiel.load_game(os_name)
    rng = random.Random(7)
    rows, expect = [], []
    for _ in range(60):
        s, r = game.new_initial_state(), ref.new_initial_state()
        while not r.is_terminal():
            rows.append(s.array.copy())
            expect.append((np.asarray(r.observation_tensor(), np.float32), r.current_player(), r.legal_actions()))
            a = rng.choice(r.legal_actions())
            s.apply_action(a)
            r.apply_action(a)
    states = np.stack(rows)
    n, A = len(rows), game.num_distinct_actions()
    obs = np.full((n, *game.observation_tensor_shape()), 7.0, np.float32)  # garbage: every cell must be written
    player, mask = np.full(n, 9, np.int64), np.ones((n, A), np.bool_)
    encode(name, states, obs, player, mask)
    for b, (o, p, legal) in enumerate(expect):
        assert (obs[b].ravel() == o).all()
        assert player[b] == p
        assert mask[b].nonzero()[0].tolist() == legal


def test_unknown_game_is_named():
    with pytest.raises(KeyError, match="no native encoder for 'chess'"):
        encode("chess", np.zeros((1, 4), np.int64), None, None, None)
