"""Player views of hidden-information games (``games.information``), with pyspiel as the oracle."""

from __future__ import annotations

import math
import random

import pytest

from plyground import games
from plyground.games.errors import PlygroundError
from plyground.games.information import PlayerView, player_view, samplable, sampler_kind

# (game, sampler the probe should pick)
SAMPLED = [
    ("kuhn_poker", "resample"), ("leduc_poker", "resample"), ("liars_dice", "replay"),
    ("phantom_ttt", "replay"), ("dark_hex", "replay"), ("gin_rummy", "resample"),
    ("latent_ttt", "replay"), ("tiny_hanabi", "replay"),
]


def random_player_node(game, rng: random.Random, max_moves: int):
    """A state after up to ``max_moves`` random player moves (chance drawn with its probabilities),
    stopped at a player node; None if the game ended."""
    s = game.new_initial_state()
    moves = rng.randrange(max_moves + 1)
    while not s.is_terminal():
        if s.is_chance_node():
            outcomes = s.chance_outcomes()
            s.apply_action(rng.choices([a for a, _ in outcomes], weights=[p for _, p in outcomes])[0])
            continue
        if moves == 0:
            return s
        s.apply_action(rng.choice(s.legal_actions()))
        moves -= 1
    return None


def positions(name: str, count: int, max_moves: int, seed: int):
    game = games.make("openspiel:" + name)
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        s = random_player_node(game, rng, max_moves)
        if s is not None:
            out.append(s)
    return game, out


def info(ps, player):
    """The viewer's information according to pyspiel (information state, else observation)."""
    gt = ps.get_game().get_type()
    return ps.information_state_string(player) if gt.provides_information_state_string \
        else ps.observation_string(player)


def kuhn(cards: tuple[int, int], *moves: int):
    s = games.make("openspiel:kuhn_poker").new_initial_state()
    for a in (*cards, *moves):
        s.apply_action(a)
    return s


# ------------------------------------------------------------------------------------ the API
def test_perfect_information_games_get_a_clone():
    s = games.play_moves(games.make("connect4"), "44")
    v = player_view(s, s.current_player())
    assert not getattr(v, "is_view", False) and str(v) == str(s) and v is not s
    o = games.make("openspiel:tic_tac_toe").new_initial_state()
    assert not getattr(player_view(o, 0), "is_view", False)


def test_view_answers_for_its_viewer_only_and_is_read_only():
    s = kuhn((2, 0), 1)                        # player 0 holds the king, player 1 the jack; 0 bets
    v = player_view(s, 1)
    assert isinstance(v, PlayerView) and v.is_view and v.player == 1 and v.game is s.game
    assert v.current_player() == 1 and not v.is_terminal() and not v.is_chance_node()
    assert v.legal_actions() == [0, 1] and v.action_to_string(1) == "Bet" and v.action_to_string(1, 0) == "Pass"
    assert v.string_to_action("Pass") == 0
    assert v.move_number() == 0                # the viewer has not moved yet
    assert v.information_state_string() == s.pyspiel_state.information_state_string(1) == "0b"
    assert v.information_key() == "0b"
    assert list(v.observation_tensor()) == list(s.observation_tensor(1).ravel())
    assert list(v.information_state_tensor()) == list(s.pyspiel_state.information_state_tensor(1))
    assert str(v) == s.observation_string(1) == str(player_view(kuhn((1, 0), 1), 1))  # the king is not shown
    assert "king" not in repr(v).lower() and "2 0" not in repr(v)
    assert v.clone() == v
    # what the viewer cannot see is an error that says so
    for call in (lambda: v.history(), lambda: v.apply_action(0), lambda: v.information_state_string(0),
                 lambda: v.observation_string(0), lambda: v.legal_actions(0), lambda: v.action_to_string(0, 1),
                 lambda: v.returns()):
        with pytest.raises(PlygroundError):
            call()
    with pytest.raises(PlygroundError, match="information_key"):
        v.history()
    with pytest.raises(PlygroundError, match="not one of"):
        player_view(s, 2)
    with pytest.raises(PlygroundError, match="random.Random"):
        v.sample(3)
    # not the viewer's turn: its legal actions are not shown either
    with pytest.raises(PlygroundError, match="player 1 is to move"):
        player_view(s, 0).legal_actions()


def test_observed_moves_leave_out_the_hidden_card():
    s = kuhn((2, 0), 1)
    assert player_view(s, 1).observed_moves() == [(-1, 0, "Deal:0"), (0, 1, "Bet")]
    assert player_view(s, 0).observed_moves() == [(-1, 2, "Deal:2"), (0, 1, "Bet")]


def test_view_of_a_finished_game():
    s = kuhn((2, 0), 1, 0)                     # 0 bets, 1 folds
    v = player_view(s, 1)
    assert v.is_terminal() and v.legal_actions() == [] and v.returns() == s.returns()


@pytest.mark.parametrize("name", ["kuhn_poker", "leduc_poker", "liars_dice", "phantom_ttt", "dark_hex",
                                  "gin_rummy", "battleship"])
def test_view_exposes_exactly_the_viewers_observation(name):
    game, states = positions(name, 12, 12, seed=5)
    for s in states:
        ps = s.pyspiel_state
        for p in range(game.num_players()):
            v = player_view(s, p)
            gt = game.game_type
            if gt.provides_observation_string:
                assert str(v) == ps.observation_string(p) == v.observation_string()
            else:
                assert str(v) == ps.information_state_string(p)
            if gt.provides_information_state_string:
                assert v.information_key() == ps.information_state_string(p)


# ------------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize("name, kind", SAMPLED)
def test_probe_picks_the_sampler(name, kind):
    game = games.make("openspiel:" + name)
    assert samplable(game) is None and sampler_kind(game) == kind


@pytest.mark.parametrize("name, kind", SAMPLED)
def test_every_sample_has_the_viewers_true_information(name, kind):
    game, states = positions(name, 25, 30, seed=11)
    rng = random.Random(7)
    for s in states:
        p = s.current_player()
        v = player_view(s, p)
        want = info(s.pyspiel_state, p)
        for _ in range(4):
            x = v.sample(rng)
            assert x.current_player() == p
            assert info(x.pyspiel_state, p) == want
            assert x.legal_actions() == s.legal_actions()
            x.clone().apply_action(x.legal_actions()[0])          # a full state an engine can play


@pytest.mark.parametrize("name, kind", SAMPLED)
def test_samples_depend_only_on_the_viewers_information(name, kind):
    """A second true state with the same information (itself a sample: other hidden cards, other
    unseen moves) gives the same samples for the same seed."""
    game, states = positions(name, 10, 30, seed=13)
    for s in states:
        p = s.current_player()
        other = player_view(s, p).sample(random.Random(99))
        a = [player_view(s, p).sample(random.Random(seed)).history() for seed in range(3)]
        b = [player_view(other, p).sample(random.Random(seed)).history() for seed in range(3)]
        assert a == b


@pytest.mark.parametrize("viewer", [0, 1])
def test_kuhn_samples_are_identical_when_only_the_opponents_card_differs(viewer):
    mine = 1                                          # the viewer holds the queen
    deal = {0: [(mine, 0), (mine, 2)], 1: [(0, mine), (2, mine)]}[viewer]
    moves = (0,) if viewer == 1 else (0, 1)            # 1 to move after a pass; 0 after pass, bet
    s1, s2 = (kuhn(d, *moves) for d in deal)
    assert s1.current_player() == viewer and str(s1) != str(s2)
    for seed in range(20):
        x1 = player_view(s1, viewer).sample(random.Random(seed))
        x2 = player_view(s2, viewer).sample(random.Random(seed))
        assert x1.history() == x2.history()


def test_phantom_ttt_samples_ignore_the_opponents_unseen_attempts():
    """Same information for player 1, but in one game player 0 first tried a cell player 1 held."""
    game = games.make("openspiel:phantom_ttt")

    def play(*moves):
        s = game.new_initial_state()
        for a in moves:
            s.apply_action(a)
        return s
    s1 = play(0, 4, 1, 8)                # x at 0, o at 4, x at 1, o at 8
    s2 = play(0, 4, 4, 2, 8)             # x at 0, o at 4, x tries 4 (taken), x at 2, o at 8
    assert s1.current_player() == s2.current_player() == 0
    assert s1.history() != s2.history()
    # player 1 saw the same thing in both
    assert s1.pyspiel_state.information_state_string(1) == s2.pyspiel_state.information_state_string(1)
    # ... so its samples are the same (the view is for player 1 although 0 is to move)
    for seed in range(5):
        h1 = player_view(s1, 1).sample(random.Random(seed)).history()
        h2 = player_view(s2, 1).sample(random.Random(seed)).history()
        assert h1 == h2


def test_kuhn_opponent_card_is_uniform_over_the_cards_the_viewer_does_not_hold():
    n = 3000
    for viewer, mine in ((0, 1), (1, 0), (1, 2)):
        deal = (mine, (mine + 1) % 3) if viewer == 0 else ((mine + 1) % 3, mine)
        s = kuhn(deal) if viewer == 0 else kuhn(deal, 1)   # viewer 1 faces a bet
        v = player_view(s, viewer)
        rng = random.Random(viewer * 10 + mine)
        counts = {0: 0, 1: 0, 2: 0}
        for _ in range(n):
            counts[v.sample(rng).history()[1 - viewer]] += 1
        assert counts[mine] == 0
        # each of the two other cards has probability 1/2: allow 4.5 standard deviations
        tol = 4.5 * math.sqrt(n * 0.25)
        for c in {0, 1, 2} - {mine}:
            assert abs(counts[c] - n / 2) <= tol, (viewer, mine, counts)


def test_unsamplable_games_say_why():
    why = samplable(games.make("openspiel:negotiation"))
    assert why is not None and "sample" in why
    assert "perfect-information" in samplable(games.make("openspiel:tic_tac_toe"))
    with pytest.raises(PlygroundError, match="cannot be sampled"):
        s = games.make("openspiel:negotiation").new_initial_state()
        while s.is_chance_node():
            s.apply_action(s.legal_actions()[0])
        player_view(s, s.current_player()).sample(random.Random(0))


def test_replay_sampler_on_kuhn_keeps_the_opponents_card_uniform(monkeypatch):
    """The replay sampler (forced here; kuhn has resample_from_infostate) backs up when the
    opponent was dealt the viewer's card, which leaves the two other cards equally likely."""
    from plyground.games import information
    game = games.make("openspiel:kuhn_poker")
    monkeypatch.setitem(information._KIND, game.name, ("replay", None))
    s = kuhn((0, 1), 1)                                  # viewer 1 holds the queen, faces a bet
    v = player_view(s, 1)
    rng = random.Random(4)
    n = 2000
    counts = {0: 0, 1: 0, 2: 0}
    for _ in range(n):
        x = v.sample(rng)
        assert x.history()[1:] == [1, 1]
        counts[x.history()[0]] += 1
    tol = 4.5 * math.sqrt(n * 0.25)
    assert counts[1] == 0 and abs(counts[0] - n / 2) <= tol and abs(counts[2] - n / 2) <= tol, counts
