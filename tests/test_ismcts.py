"""The information-set MCTS (search/ismcts.py) through ``MCTS.search`` and the ``mcts`` agent:
honest play in hidden-information games, strength against random play with the significance
computed here, and the engine's contract (budgets, determinism, values in [-1, 1])."""

from __future__ import annotations

import itertools
import math

import pytest

from plyground import agents, games
from plyground.arena.match import play_game
from plyground.games.errors import PlygroundError
from plyground.games.information import player_view
from plyground.search.generic_mcts import UnsupportedStateError
from plyground.search.hooks import ActionProposer, ValueEstimator
from plyground.search.mcts import MCTS

Z95 = 1.959963984540054     # two-sided 95% normal quantile


def score_interval(scores: list[float]) -> tuple[float, float]:
    """Mean of win=1 / draw=0.5 / loss=0 scores and its 95% normal (Wald) interval's lower end."""
    n = len(scores)
    mean = sum(scores) / n
    var = sum((x - mean) ** 2 for x in scores) / (n - 1)
    return mean, mean - Z95 * math.sqrt(var / n)


def result_score(mine: float, theirs: float) -> float:
    return 1.0 if mine > theirs else 0.5 if mine == theirs else 0.0


def duplicate_match(game_name: str, spec: str, pairs: int):
    """``pairs`` pairs of games of ``spec`` against random, the seats swapped within a pair.  The
    arena draws chance from the game seed, so both games of a pair deal the same cards to the
    same seats: card luck cancels (duplicate poker).  Returns (pair scores, per-game returns)."""
    game = games.make(game_name)
    pair_scores, returns = [], []
    for i in range(pairs):
        total = 0.0
        for seat in (0, 1):
            me, rnd = agents.make(f"{spec},seed={i}"), agents.make(f"random:seed={i}")
            res = play_game(game, [me, rnd] if seat == 0 else [rnd, me], seed=1000 + i)
            assert res.termination == "normal", res.detail
            returns.append(res.returns[seat])
            total += res.returns[seat]
        pair_scores.append(result_score(total, -total))
    return pair_scores, returns


def seat_match(game_name: str, spec: str, n: int) -> list[float]:
    """``n`` games against random, alternating seats; the mcts seat's win/draw/loss scores."""
    game = games.make(game_name)
    scores = []
    for i in range(n):
        seat = i % 2
        me, rnd = agents.make(f"{spec},seed={i}"), agents.make(f"random:seed={i}")
        res = play_game(game, [me, rnd] if seat == 0 else [rnd, me], seed=2000 + i)
        assert res.termination == "normal", res.detail
        scores.append(result_score(res.returns[seat], res.returns[1 - seat]))
    return scores


# ------------------------------------------------------------------ strength
def test_mcts_beats_random_at_leduc_poker():
    # 120 duplicate pairs, ~3 s.  Measured: pair score 0.767 (95% low 0.699), +2.1 chips a game.
    pair_scores, returns = duplicate_match("openspiel:leduc_poker", "mcts:sims=300", 120)
    score, low = score_interval(pair_scores)
    chips, chips_low = score_interval(returns)
    print(f"leduc: pair score {score:.3f} (95% low {low:.3f}), chips/game {chips:.2f} (95% low {chips_low:.2f})")
    assert low > 0.5, (score, low)
    assert chips_low > 0.0, (chips, chips_low)


@pytest.mark.slow
def test_mcts_beats_random_at_leduc_poker_long():
    pair_scores, returns = duplicate_match("openspiel:leduc_poker", "mcts:sims=1000", 400)
    score, low = score_interval(pair_scores)
    print(f"leduc long: pair score {score:.3f} (95% low {low:.3f})")
    assert low > 0.55


def test_mcts_beats_random_at_pig():
    # pig to 20 points: dice on every turn.  Measured: 0.817 (95% low 0.718) in 60 games, ~1 s.
    scores = seat_match("openspiel:pig(winscore=20)", "mcts:sims=50", 60)
    score, low = score_interval(scores)
    print(f"pig: score {score:.3f} (95% low {low:.3f})")
    assert low > 0.5, (score, low)


@pytest.mark.slow
def test_mcts_beats_random_at_backgammon():
    scores = seat_match("openspiel:backgammon", "mcts:sims=100", 30)
    score, low = score_interval(scores)
    print(f"backgammon: score {score:.3f} (95% low {low:.3f})")
    assert low > 0.5, (score, low)


# ------------------------------------------------------------------ honesty
def deal(game_name: str, cards: tuple[int, ...], actions: tuple[int, ...] = ()):
    s = games.make(game_name).new_initial_state()
    for a in cards + actions:
        s.apply_action(a)
    return s


# (game, the viewer's seat, pairs of deals differing only in the opponent's card, betting so far)
HIDDEN_CARD_CASES = [
    ("openspiel:kuhn_poker", 0, [((c, o1), (c, o2)) for c in range(3)
                                 for o1, o2 in itertools.combinations([x for x in range(3) if x != c], 2)], ()),
    ("openspiel:kuhn_poker", 1, [((o1, c), (o2, c)) for c in range(3)
                                 for o1, o2 in itertools.combinations([x for x in range(3) if x != c], 2)], (1,)),
    ("openspiel:leduc_poker", 0, [((0, 2), (0, 5)), ((3, 1), (3, 4)), ((5, 0), (5, 2))], ()),
    ("openspiel:leduc_poker", 1, [((2, 0), (5, 0)), ((1, 4), (2, 4))], (2,)),
]


@pytest.mark.parametrize("game_name,seat,pairs,betting", HIDDEN_CARD_CASES)
def test_decision_does_not_depend_on_the_opponents_hidden_card(game_name, seat, pairs, betting):
    leaks_when_handed_the_full_state = 0
    for deal_a, deal_b in pairs:
        a, b = deal(game_name, deal_a, betting), deal(game_name, deal_b, betting)
        assert a.current_player() == b.current_player() == seat
        va, vb = player_view(a, seat), player_view(b, seat)
        assert va.information_key() == vb.information_key()
        # the agent, as the arena calls it (same seed): the same decision and the same search
        da = agents.make("mcts:sims=300,seed=7").act(va)
        db = agents.make("mcts:sims=300,seed=7").act(vb)
        assert da.action == db.action
        assert da.search["visits"] == db.search["visits"]
        assert da.search["action_values"] == db.search["action_values"]
        # the control: handed the full states, the same search does see the card
        fa = agents.make("mcts:sims=300,seed=7").act(a)
        fb = agents.make("mcts:sims=300,seed=7").act(b)
        leaks_when_handed_the_full_state += fa.search["visits"] != fb.search["visits"]
    assert leaks_when_handed_the_full_state > 0, "the test could not tell a leak from honest play"


def test_the_arena_hands_mcts_a_view_in_poker():
    seen = []
    mcts = agents.make("mcts:sims=50,seed=1")
    act = mcts.act

    def spying_act(state, clock=None):
        seen.append(getattr(state, "is_view", False))
        return act(state, clock)

    mcts.act = spying_act
    play_game(games.make("openspiel:leduc_poker"), [mcts, agents.make("random:seed=1")], seed=5)
    assert seen and all(seen)


# ------------------------------------------------------------------ the engine's contract
def kuhn_view():
    return player_view(deal("openspiel:kuhn_poker", (1, 2)), 0)


def test_a_fixed_seed_gives_the_same_search_and_the_budget_is_kept():
    for variant in ("uct", "puct"):
        r1 = MCTS(sims=400, seed=11, variant=variant).search(kuhn_view())
        r2 = MCTS(sims=400, seed=11, variant=variant).search(kuhn_view())
        assert (r1.best_action, r1.visits, r1.action_values, r1.value) == \
            (r2.best_action, r2.visits, r2.action_values, r2.value)
        assert r1.extra["impl"] == "ismcts" and r1.nodes == 400
        assert sum(r1.visits.values()) == 400          # every simulation passes a root action
        assert r1.best_action == max(r1.visits, key=r1.visits.get)
        assert -1.0 <= r1.value <= 1.0 and all(-1.0 <= v <= 1.0 for v in r1.action_values.values())
    r = MCTS(sims=None, time_limit=0.05, seed=1).search(kuhn_view())
    assert r.extra["stop_reason"] == "time" and r.nodes > 0
    r = MCTS(sims=10_000, max_nodes=30, seed=1).search(player_view(deal("openspiel:leduc_poker", (0, 3)), 0))
    assert r.extra["stop_reason"] == "max_nodes" and r.extra["tree_nodes"] <= 30


def test_solver_and_tree_reuse_are_declined_not_faked():
    r = MCTS(sims=100, seed=1, solver=True, reuse_tree=True).search(kuhn_view())
    assert not r.exact and r.extra["reused_visits"] == 0
    assert "proves nothing" in r.extra["solver"] and "new tree" in r.extra["reuse_tree"]


def test_availability_counts_in_backgammon():
    # the legal moves depend on the dice: deeper children are available in only some simulations
    g = games.make("openspiel:backgammon")
    s = g.new_initial_state()
    s.apply_action(s.legal_actions()[0])
    engine = MCTS(sims=150, seed=2)
    r = engine.search(s)
    tree = engine._ismcts
    assert r.extra["impl"] == "ismcts" and sum(r.visits.values()) == 150
    # a root child is available in every simulation; a grandchild (after the opponent's roll) in fewer
    assert set(r.extra["availability"].values()) == {150}
    depth2 = [i for k in tree.kids[0].values() for i in tree.kids[k].values()]
    assert depth2 and min(tree.avail[i] for i in depth2) < max(tree.vis[k] for k in tree.kids[0].values())
    assert all(tree.vis[i] <= tree.avail[i] for i in range(1, len(tree.vis)))


def test_three_players_and_general_sum_games():
    three = deal("openspiel:kuhn_poker(players=3)", (0, 1, 2))
    r = MCTS(sims=300, seed=0).search(player_view(three, 0))
    assert r.extra["impl"] == "ismcts" and sum(r.visits.values()) == 300
    assert all(-1.0 <= v <= 1.0 for v in r.action_values.values())
    # a general-sum game: each node maximises its own player's value
    g = games.make("openspiel:first_sealed_auction")
    s = g.new_initial_state()
    while s.is_chance_node():
        s.apply_action(s.legal_actions()[-1])
    r = MCTS(sims=200, seed=0).search(player_view(s, s.current_player()))
    assert all(-1.0 <= v <= 1.0 for v in r.action_values.values())


def test_value_hooks_and_proposers_in_information_set_search():
    class Half(ValueEstimator):
        def __init__(self):
            self.calls = []

        def evaluate(self, states):
            self.calls.append(len(states))
            for s in states:
                assert not getattr(s, "is_view", False) and s.current_player() >= 0
            return [0.5] * len(states)

    class PreferBet(ActionProposer):
        def propose(self, state):
            legal = state.legal_actions()
            return {a: (0.9 if a == 1 else 0.1) for a in legal}

    hook = Half()
    r = MCTS(sims=64, seed=0, value=hook, batch_size=8, variant="puct", proposer=PreferBet()).search(kuhn_view())
    assert max(hook.calls) > 1 and sum(r.visits.values()) == 64
    assert all(-1.0 <= v <= 1.0 for v in r.action_values.values())
    # one value for the player to move cannot stand for three players' own values
    three = deal("openspiel:kuhn_poker(players=3)", (0, 1, 2))
    with pytest.raises(PlygroundError, match="every player's own value"):
        MCTS(sims=10, value=Half()).search(player_view(three, 0))

    class Wild(ValueEstimator):
        def evaluate(self, states):
            return [-7.0] * len(states)

    with pytest.raises(PlygroundError, match="-7.0.*in \\[-1, 1\\]"):
        MCTS(sims=10, value=Wild()).search(kuhn_view())


def test_chance_roots_and_finished_views_are_clear_errors():
    with pytest.raises(UnsupportedStateError, match="chance node"):
        MCTS(sims=10).search(games.make("openspiel:leduc_poker").new_initial_state())
    done = player_view(deal("openspiel:kuhn_poker", (0, 1), (0, 0)), 0)
    with pytest.raises(PlygroundError, match="terminal"):
        MCTS(sims=10).search(done)


def test_a_view_that_cannot_be_sampled_stops_the_search_cleanly():
    from plyground.games.information import SamplingError

    class Unsamplable:
        """A real view whose sampler always fails."""
        is_view = True

        def __init__(self, view):
            self._view = view
            self.game = view.game

        def __getattr__(self, name):
            return getattr(self._view, name)

        def sample(self, rng):
            raise SamplingError("no consistent state (a stand-in)")

    r = MCTS(sims=50, seed=4).search(Unsamplable(kuhn_view()))
    assert r.nodes == 0 and r.extra["stop_reason"] == "sampling_failed"
    assert r.best_action in (0, 1) and "random" in r.extra["fallback"] and "stand-in" in r.extra["sampling_error"]
