"""The network agents and their search: lockstep PUCT against the rules and against single searches,
the evaluator's numba encoding against the states' own, the agents' choices against the network's
outputs computed here, and clear refusals of bad checkpoints."""

import numpy as np
import pytest
import torch

from plyground import agents, games
from plyground.agents.neural.checkpoint import CheckpointError, load_network, save_network
from plyground.agents.neural.evaluator import NetEvaluator, net_hooks
from plyground.agents.neural.network import NetConfig, NetConfigError, PolicyValueNet
from plyground.games.errors import PlygroundError, UnsupportedGameError
from plyground.search.native.lockstep import LockstepPUCT


def _net(game, seed=0, width=8, blocks=1):
    torch.manual_seed(seed)
    return PolicyValueNet(NetConfig(tuple(game.observation_tensor_shape()), game.num_distinct_actions(),
                                    width=width, blocks=blocks)).eval()


@pytest.fixture(scope="module")
def c4_model(tmp_path_factory):
    g = games.make("connect4")
    path = tmp_path_factory.mktemp("nets") / "c4.pt"
    save_network(path, _net(g), "connect4", {"note": "random"})
    return str(path)


def _negamax(state, memo):
    """Exact value of a tic-tac-toe state for the player to move (plain recursion over the rules)."""
    key = str(state)
    if key not in memo:
        me, best = state.current_player(), -2.0
        for a in state.legal_actions():
            c = state.clone()
            c.apply_action(a)
            best = max(best, c.returns()[me] if c.is_terminal() else -_negamax(c, memo))
        memo[key] = best
    return memo[key]


def _exact_moves(state):
    memo = {}
    vals = {}
    for a in state.legal_actions():
        c = state.clone()
        c.apply_action(a)
        vals[a] = c.returns()[state.current_player()] if c.is_terminal() else -_negamax(c, memo)
    best = max(vals.values())
    return {a for a, v in vals.items() if v == best}, best


def test_lockstep_finds_forced_wins_and_blocks_with_uninformed_priors():
    g = games.make("tictactoe")
    uniform = lambda s: (np.ones((len(s), 9)), np.zeros(len(s)))  # noqa: E731
    engine = LockstepPUCT(g, uniform, sims=400, seed=1)
    positions = ["0 4 1 8", "0 4 8 1", "4 0 8 2", "0 3 1 4"]   # x wins at 2; o must block; ...
    roots = [games.play_moves(g, p) for p in positions]
    results = engine.search([s.array for s in roots])
    for s, r in zip(roots, results):
        best, value = _exact_moves(s)
        assert r.best_action in best, (str(s), r.visits, best)
        assert sum(r.visits.values()) >= 1


def test_lockstep_trees_do_not_interact():
    """Searching many roots in lockstep gives each root the search it gets alone (no noise, a
    deterministic evaluator): one network call serves many games without changing any of them."""
    g = games.make("connect4")
    ev = NetEvaluator(_net(g, seed=3), g)
    roots = [games.play_moves(g, m).array for m in ("44", "4453", "1234567", "")]
    together = LockstepPUCT(g, ev.evaluate_native, sims=150, leaves_per_tree=4).search(roots)
    for root, r in zip(roots, together):
        alone = LockstepPUCT(g, ev.evaluate_native, sims=150, leaves_per_tree=4).search([root])[0]
        assert alone.visits == r.visits and alone.best_action == r.best_action
        assert sum(r.visits.values()) == 149 or r.exact


def test_native_and_generic_evaluation_agree():
    g = games.make("connect4")
    ev = NetEvaluator(_net(g, seed=5), g)
    states = [games.play_moves(g, m) for m in ("4", "4453", "112233", "7777")]
    p1, v1 = ev.evaluate_native(np.stack([s.array for s in states]))
    p2, v2 = ev.evaluate_states(states)
    assert np.array_equal(p1, p2) and np.array_equal(v1, v2)
    for i, s in enumerate(states):
        assert set(np.flatnonzero(p1[i] > 0)) == set(s.legal_actions())
        assert abs(p1[i].sum() - 1) < 1e-5 and -1 <= v1[i] <= 1


def test_neural_agent_plays_the_policy_argmax(c4_model):
    g = games.make("connect4")
    net, _ = load_network(c4_model, game=g)
    a = agents.make(f"neural:model={c4_model}")
    for moves in ("", "44", "4453", "1111"):
        s = games.play_moves(g, moves)
        with torch.no_grad():
            logits, value = net(torch.tensor(s.observation_tensor())[None], torch.tensor([s.current_player()]))
        legal = s.legal_actions()
        expect = max(legal, key=lambda x: float(logits[0, x]))
        d = a.act(s)
        assert d.action == expect
        assert d.value == pytest.approx(float(value[0]), abs=1e-6)


def test_neural_mcts_on_native_and_openspiel_states(c4_model, tmp_path):
    g = games.make("connect4")
    a = agents.make(f"neural-mcts:model={c4_model},sims=64,leaves=4,seed=1")
    a.check_game(g)
    d = a.act(games.play_moves(g, "4453"))
    assert d.action in range(7) and sum(d.search["visits"].values()) == 63
    # the same network plays OpenSpiel's connect_four through the plain-Python PUCT with the network hooks
    os_game = games.make("openspiel:connect_four")
    b = agents.make(f"neural-mcts:model={c4_model},sims=64,leaves=4,seed=1")
    b.check_game(os_game)
    s = os_game.new_initial_state()
    for x in (3, 3, 4, 2):
        s.apply_action(x)
    d2 = b.act(s)
    assert d2.action in s.legal_actions() and sum(d2.search["visits"].values()) >= 60


def test_network_hooks_share_one_call():
    g = games.make("tictactoe")
    ev = NetEvaluator(_net(g), g)
    proposer, value = net_hooks(ev)
    states = [games.play_moves(g, m) for m in ("0", "4 0", "0 1 2")]
    proposer.propose_batch(states)
    value.evaluate(states)
    assert ev.calls == 1
    done = games.play_moves(g, "0 3 1 4 2")    # x has won; the mover (o) has lost
    assert value.evaluate([done]) == [-1.0]


def test_bad_checkpoints_are_refused_before_play(c4_model, tmp_path):
    c4, ttt = games.make("connect4"), games.make("tictactoe")
    with pytest.raises(UnsupportedGameError, match="is a network for connect4, not for tictactoe"):
        agents.make(f"neural:model={c4_model}").check_game(ttt)
    with pytest.raises(UnsupportedGameError, match="no network checkpoint at"):
        agents.make(f"neural-mcts:model={tmp_path / 'missing.pt'}").check_game(c4)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UnsupportedGameError, match="not a torch checkpoint"):
        agents.make(f"neural:model={junk}").check_game(c4)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(open(c4_model, "rb").read()[:2000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_network(trunc)

    class Evil:
        def __reduce__(self):
            return (print, ("executed",))
    evil = tmp_path / "evil.pt"
    torch.save({"format": "plyground-network", "x": Evil()}, evil)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_network(evil)
    with pytest.raises(UnsupportedGameError, match="hidden information"):
        agents.make(f"neural-mcts:model={c4_model}").check_game(games.make("openspiel:kuhn_poker"))
    with pytest.raises(NetConfigError, match="kind 'resnet' needs"):
        NetConfig((9,), 9, kind="resnet")


def test_minimax_with_network_hooks(c4_model):
    g = games.make("connect4")
    a = agents.make(f"minimax:depth=2,value=network,proposer=network,proposer_k=2,model={c4_model}")
    a.check_game(g)
    d = a.act(games.play_moves(g, "4453"))
    assert d.action in range(7)
    assert len([v for v in d.search["action_values"].values()]) <= 7


def test_bundled_tictactoe_network_plays_optimally_everywhere():
    """The shipped network's move keeps the game-theoretic value in every reachable non-terminal
    position (exact values by negamax over OpenSpiel's rules)."""
    import pyspiel

    root = pyspiel.load_game("tic_tac_toe").new_initial_state()
    stack, positions = [root], {}
    while stack:
        s = stack.pop()
        if s.is_terminal() or str(s) in positions:
            continue
        positions[str(s)] = s
        for a in s.legal_actions():
            stack.append(s.child(a))
    assert len(positions) == 4520
    g = games.make("tictactoe")
    a = agents.make("neural")
    wrong = []
    for s in positions.values():
        best, _ = _exact_moves(s)
        ours = games.play_moves(g, " ".join(str(x) for x in s.history()))
        if a.act(ours).action not in best:
            wrong.append(s.history())
    assert not wrong, f"{len(wrong)} positions with a non-optimal move, e.g. {wrong[:3]}"


def test_neural_plays_hidden_information_from_the_players_view(tmp_path):
    """In Kuhn poker the network reads only its player's view: deals that differ in the opponent's card
    alone give the same decision; the whole game runs through the arena's match."""
    from plyground.arena.match import play_game
    from plyground.games.information import player_view

    g = games.make("openspiel:kuhn_poker")
    path = tmp_path / "kuhn.pt"
    save_network(path, _net(g, seed=2), g.name)
    a = agents.make(f"neural:model={path}")
    a.check_game(g)
    a.warm_up(g)
    decisions = set()
    for opp in (0, 2):             # we hold the queen (1); the opponent holds the jack or the king
        s = g.new_initial_state()
        s.apply_action(1)
        s.apply_action(opp)
        d = a.act(player_view(s, 0))
        decisions.add((d.action, round(d.value, 6)))
    assert len(decisions) == 1
    r = play_game(g, [a, agents.make("random:seed=1")], seed=3)
    assert r.termination == "normal"


def test_bundled_connect4_network_plays_without_a_model():
    g = games.make("connect4")
    for spec in ("neural", "neural-mcts:sims=32"):
        a = agents.make(spec)
        a.check_game(g)
        s = games.play_moves(g, "4445")
        d = a.act(s)
        assert d.action in s.legal_actions()
    # a forced win in one is found by the search whatever the network says
    s = games.play_moves(g, "112233")
    assert agents.make("neural-mcts:sims=64").act(s).action == 3


def test_a_bundled_network_by_name_and_an_unknown_name():
    from plyground.arena.suite import load_suite
    g = games.make("connect4")
    a = agents.make("neural:model=connect4-distilled")
    a.check_game(g)
    # against the exact scores of the shipped solved positions: far above a random mover's share
    positions = load_suite()
    hits = 0
    for p in positions:
        s = games.play_moves(g, p.moves)
        hits += a.act(s).action in p.best
    assert hits / len(positions) >= 0.65, hits
    bad = agents.make("neural:model=connect4-nope")
    with pytest.raises(PlygroundError, match="connect4-nope"):
        bad.check_game(g)
        bad.act(g.new_initial_state())
