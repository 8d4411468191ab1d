"""Agents built on our engines (minimax = alpha-beta, mcts) and OpenSpiel's C++ MCTSBot as a peer."""

from __future__ import annotations

import time

from plyground.agents.base import Agent, merged_seed
from plyground.agents.decision import Decision
from plyground.agents.params import AgentSpecError, Param
from plyground.games.errors import PlygroundError, UnsupportedGameError


def _traits(game):
    from plyground.games.traits import traits
    return traits(game)


def _hidden(t) -> str:
    """What a hidden-information game hides, in words, for a refusal."""
    return ("cards or chance outcomes some players do not see" if t.chance
            else "moves or pieces some players do not see")


def _refuse_simultaneous(agent: str, t) -> None:
    if t.simultaneous:
        raise UnsupportedGameError(f"{agent} plays games whose moves come in turns; {t.name} is a "
                                   "simultaneous-move game")


def _pyspiel_game(game):
    """The pyspiel game behind ``game`` (OpenSpiel adapter, PettingZoo twin, native twin), or None."""
    ps = getattr(game, "pyspiel_game", None)
    if ps is not None:
        return ps
    twin = getattr(game, "twin_game", None)
    if twin is not None:
        return _pyspiel_game(twin)
    if hasattr(game, "get_type"):
        return game
    name = getattr(getattr(game, "spec", None), "openspiel_name", None)
    if name:
        import pyspiel
        return pyspiel.load_game(name)
    return None


def _budget(own: float | None, clock: float | None) -> float | None:
    """The tighter of an agent's own time limit and the move's clock (a little held back)."""
    limits = [x for x in (own, None if clock is None else 0.9 * clock) if x is not None]
    return min(limits) if limits else None


# A depth-limited search with no time limit and no move clock stops after this many seconds (at the
# deepest iteration it finished): depth 6 is milliseconds in connect four but hours in chess, or in
# backgammon where every ply multiplies the tree by 21 dice rolls.
UNCLOCKED_SECONDS = 10.0


class MinimaxAgent(Agent):
    name = "minimax"
    summary = "alpha-beta negamax with iterative deepening and a transposition table (numba for native games)"
    PARAMS = {
        "depth": Param(int, 6, "maximum search depth in plies", min=1),
        "time": Param(float, None, "seconds per move (iterative deepening stops in time); unset with no "
                      f"move clock: at most {UNCLOCKED_SECONDS:g} s unless exact", min=0.0),
        "nodes": Param(int, None, "node budget per move", min=1),
        "exact": Param(bool, False, "solve exactly (ignores depth); use on small games or late positions"),
        "value": Param(str, "heuristic", "leaf evaluator at the depth limit (network: a policy-value network's "
                       "value head)", choices=("heuristic", "rollout", "network")),
        "proposer": Param(str, "all", "moves searched at the player's nodes: all, or ordered by a network's policy "
                          "(network; with proposer_k only its k most likely)", choices=("all", "network")),
        "proposer_k": Param(int, None, "with proposer=network: search only the k most likely moves", min=1),
        "model": Param(str, None, "network checkpoint for value=network / proposer=network (unset: the game's "
                       "bundled network)"),
    }

    def __init__(self, **params) -> None:
        super().__init__(**params)
        if self.params["proposer_k"] is not None and self.params["proposer"] != "network":
            raise AgentSpecError("agent 'minimax': proposer_k limits a network proposer's moves; add proposer=network")
        if self.params["model"] is not None and not self._uses_network():
            raise AgentSpecError("agent 'minimax': model is the network of value=network or proposer=network; "
                                 "set one of them, or drop model")
        self._hooks = None

    def _uses_network(self) -> bool:
        return self.params["value"] == "network" or self.params["proposer"] == "network"

    def _network_hooks(self, game):
        """The network's proposer and value hooks (one network call per batch of leaves), loaded once."""
        if self._hooks is None or self._hooks[0] != game.name:
            from plyground.agents.neural.agents import resolve_model
            from plyground.agents.neural.checkpoint import load_network
            from plyground.agents.neural.evaluator import NetEvaluator, net_hooks
            net, _ = load_network(resolve_model(self.params["model"], game), game=game)
            self._hooks = (game.name, *net_hooks(NetEvaluator(net, game, threads=1)))
        return self._hooks[1], self._hooks[2]

    def check_game(self, game) -> None:
        """Alpha-beta plays two-player zero-/constant-sum games of perfect information, with chance
        nodes as expectation nodes.  It refuses hidden information (it would read the hidden cards),
        other player counts and general-sum or identical-interest utilities (its opponent minimises
        the player's own return, which those games do not promise)."""
        super().check_game(game)
        t = _traits(game)
        _refuse_simultaneous(self.name, t)
        if not t.perfect_information:
            raise UnsupportedGameError(f"minimax searches full states; {t.name} has hidden information "
                                       f"({_hidden(t)}): use mcts, which searches information sets")
        if t.num_players != 2:
            players = f"{t.num_players} player" + ("s" if t.num_players != 1 else "")
            raise UnsupportedGameError(f"minimax is a two-player search; {t.name} has {players}: "
                                       "use mcts, which backs up each player's own value")
        if not t.win_draw_loss:
            raise UnsupportedGameError(
                f"minimax assumes the opponent minimises the player's return (zero- or constant-sum "
                f"utilities); {t.name} is {t.utility.replace('_', '-')}: use mcts, which backs up each "
                "player's own value")
        if self._uses_network():
            from plyground.agents.neural.agents import resolve_model
            from plyground.agents.neural.checkpoint import CheckpointError, check_fits, load_network
            try:
                _, ckpt = load_network(resolve_model(self.params["model"], game))
                check_fits(ckpt, game)
            except CheckpointError as e:
                raise UnsupportedGameError(f"minimax cannot use its network on {game.name}: {e}") from None

    def warm_up(self, game) -> None:
        """Load (or compile) the alpha-beta engine's numba code for ``game``: the depth-limited
        search, and the exact solver when ``exact`` is set."""
        from plyground.search import alphabeta
        alphabeta.warm_up(game, exact=self.params["exact"])
        if self._uses_network():
            self._network_hooks(game)

    def act(self, state, clock: float | None = None) -> Decision:
        from plyground.search import alphabeta
        from plyground.search.hooks import HeuristicValue, RolloutValue

        p = self.params
        t = time.perf_counter()
        proposer = None
        if self._uses_network():
            net_proposer, net_value = self._network_hooks(state.game if hasattr(state, "game") else state.get_game())
            proposer = net_proposer if p["proposer"] == "network" else None
        if p["value"] == "network":
            value = net_value
        else:
            value = HeuristicValue() if p["value"] == "heuristic" else RolloutValue()
        limit = _budget(p["time"], clock)
        if limit is None and not p["exact"]:
            limit = UNCLOCKED_SECONDS
        result = alphabeta.search(state, depth=None if p["exact"] else p["depth"], max_nodes=p["nodes"],
                                  time_limit=limit, exact=p["exact"], value=value, proposer=proposer,
                                  proposer_k=p["proposer_k"])
        return Decision(action=result.best_action, think_time=time.perf_counter() - t,
                        value=result.value, search=result.to_json())


class MCTSAgent(Agent):
    name = "mcts"
    summary = "Monte Carlo tree search: UCT/PUCT, MCTS-Solver, random rollouts in numba for native games"
    PARAMS = {
        "sims": Param(int, 1000, "simulations per move", min=1),
        "c": Param(float, 1.4, "exploration constant", min=0.0),
        "variant": Param(str, "uct", "selection rule", choices=("uct", "puct")),
        "solver": Param(bool, True, "MCTS-Solver: propagate proven wins and losses"),
        "rollouts": Param(int, 1, "random rollouts per leaf", min=1),
        "time": Param(float, None, "seconds per move", min=0.0),
        "reuse": Param(bool, True, "keep the subtree between moves"),
        "dirichlet": Param(float, None, "Dirichlet root-noise alpha, PUCT only (unset: no noise)", min=0.0),
        "seed": Param(int, None, "random seed; unset = nondeterministic"),
    }

    def __init__(self, **params) -> None:
        super().__init__(**params)
        if self.params["dirichlet"] is not None and self.params["variant"] != "puct":
            raise AgentSpecError("agent 'mcts': dirichlet noise perturbs PUCT priors; "
                                 "UCT has none (add variant=puct, or drop dirichlet)")
        self._engine = None
        self._seed = self.params["seed"]

    def _make_engine(self):
        from plyground.search.mcts import MCTS
        p = self.params
        return MCTS(sims=p["sims"], c=p["c"], variant=p["variant"], solver=p["solver"], rollouts=p["rollouts"],
                    time_limit=p["time"], reuse_tree=p["reuse"], dirichlet_alpha=p["dirichlet"], seed=self._seed)

    def reset(self, seed: int | None = None) -> None:
        self._seed = merged_seed(self.params["seed"], seed)
        self._engine = None

    def check_game(self, game) -> None:
        """MCTS plays every turn-based game: perfect-information two-player zero-sum games in the
        numba or generic engine, anything else (chance, hidden information, any number of players,
        general-sum or identical-interest utilities) in the information-set engine, which needs the
        players' views of a hidden-information game to be samplable."""
        super().check_game(game)
        t = _traits(game)
        _refuse_simultaneous(self.name, t)
        if not t.perfect_information:
            from plyground.games.information import samplable
            why = samplable(game)
            if why is not None:
                raise UnsupportedGameError(
                    f"mcts searches a hidden-information game by sampling the states a player's view allows; "
                    f"{t.name} has hidden information ({_hidden(t)}) and its views cannot be sampled: {why}")

    def warm_up(self, game) -> None:
        """Load (or compile) the MCTS engine's numba code for ``game`` (a few tiny searches)."""
        from plyground.search import mcts
        mcts.warm_up(game)

    def act(self, state, clock: float | None = None) -> Decision:
        if self._engine is None:
            self._engine = self._make_engine()
        engine = self._engine
        engine.time_limit = _budget(self.params["time"], clock)
        t = time.perf_counter()
        result = engine.search(state)
        return Decision(action=result.best_action, think_time=time.perf_counter() - t,
                        value=result.value, search=result.to_json())


def to_pyspiel(state):
    """``(pyspiel state, to_own)`` behind any of our states (OpenSpiel adapter, PettingZoo twin,
    native replay); ``to_own`` maps a pyspiel action to the same move in ``state``'s numbering
    (PettingZoo envs number moves their own way)."""
    import pyspiel

    inner = getattr(state, "pyspiel_state", None)
    if inner is not None:
        return inner.clone(), int
    twin = getattr(state, "twin", None)
    if twin is not None:
        ps, twin_own = to_pyspiel(twin)
        return ps, lambda a: state.env_action(twin_own(a))
    spec = getattr(getattr(state, "game", None), "spec", None)
    if spec is not None and getattr(spec, "openspiel_name", None):
        ps = pyspiel.load_game(spec.openspiel_name).new_initial_state()
        for a in state.history():
            ps.apply_action(a)
        return ps, int
    raise PlygroundError(f"openspiel-mcts cannot play {type(state).__name__}: it has no OpenSpiel equivalent")


class OpenSpielMCTSAgent(Agent):
    name = "openspiel-mcts"
    summary = "OpenSpiel's C++ MCTSBot with random-rollout evaluation (the peer for benchmarks)"
    PARAMS = {
        "sims": Param(int, 1000, "simulations per move", min=1),
        "c": Param(float, 2.0, "UCT exploration constant", min=0.0),
        "rollouts": Param(int, 1, "random rollouts per leaf", min=1),
        "solve": Param(bool, False, "OpenSpiel's MCTS-Solver"),
        "memory_mb": Param(int, 1000, "the bot's tree memory limit in MB", min=1),
        "seed": Param(int, None, "random seed; unset = nondeterministic"),
    }

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._seed = self.params["seed"]
        self._bots: dict = {}

    def reset(self, seed: int | None = None) -> None:
        self._seed = merged_seed(self.params["seed"], seed)
        self._bots = {}

    def check_game(self, game) -> None:
        """OpenSpiel's MCTSBot searches full states (chance, any number of players, general-sum
        utilities are fine): it refuses hidden information, rewards paid before the end (the bot
        requires terminal rewards) and games without an OpenSpiel equivalent."""
        super().check_game(game)
        t = _traits(game)
        _refuse_simultaneous(self.name, t)
        if not t.perfect_information:
            raise UnsupportedGameError(f"openspiel-mcts runs OpenSpiel's MCTSBot over full states; {t.name} has "
                                       f"hidden information ({_hidden(t)}): use mcts, which searches "
                                       "information sets")
        ps = _pyspiel_game(game)
        if ps is None:
            raise UnsupportedGameError(f"openspiel-mcts plays OpenSpiel games and their twins; {t.name} has no "
                                       "OpenSpiel equivalent")
        import pyspiel
        if ps.get_type().reward_model != pyspiel.GameType.RewardModel.TERMINAL:
            raise UnsupportedGameError(f"openspiel-mcts: OpenSpiel's MCTSBot needs a game that pays only at the "
                                       f"end; {t.name} pays rewards along the way: use mcts")

    def warm_up(self, game) -> None:
        """Import OpenSpiel, load ``game``'s OpenSpiel equivalent and run a two-simulation search with
        a throwaway bot, so the first move pays for none of it."""
        import pyspiel

        warm_rules = getattr(game, "warm_up", None)
        if warm_rules is not None:
            warm_rules()
        ps, _ = to_pyspiel(game.new_initial_state())
        evaluator = pyspiel.RandomRolloutEvaluator(1, 0)
        bot = pyspiel.MCTSBot(ps.get_game(), evaluator, self.params["c"], 2, self.params["memory_mb"], False,
                              0, False, pyspiel.ChildSelectionPolicy.UCT, -1.0)
        bot.mcts_search(ps)

    def act(self, state, clock: float | None = None) -> Decision:
        import random

        import pyspiel

        ps, to_own = to_pyspiel(state)
        game = ps.get_game()
        key = str(game)
        if key not in self._bots:
            p = self.params
            seed = self._seed if self._seed is not None else random.randrange(2**31)
            evaluator = pyspiel.RandomRolloutEvaluator(p["rollouts"], seed)
            self._bots[key] = (pyspiel.MCTSBot(game, evaluator, p["c"], p["sims"], p["memory_mb"], p["solve"],
                                               seed, False, pyspiel.ChildSelectionPolicy.UCT,
                                               -1.0 if clock is None else 0.9 * clock), evaluator)
        bot = self._bots[key][0]
        t = time.perf_counter()
        root = bot.mcts_search(ps)
        best = to_own(root.best_child().action)
        elapsed = time.perf_counter() - t
        visits = {to_own(c.action): int(c.explore_count) for c in root.children}
        scale = _traits(game).scale     # the bot averages raw returns; the record holds values in [-1, 1]
        values = {to_own(c.action): (scale(c.total_reward / c.explore_count) if c.explore_count else 0.0)
                  for c in root.children}
        stats = {"engine": "openspiel-mcts", "nodes": int(root.explore_count),
                 "visits": {str(k): v for k, v in visits.items()},
                 "action_values": {str(k): v for k, v in values.items()}, "best_action": best,
                 "value": values.get(best, 0.0), "seconds": elapsed}
        return Decision(action=best, think_time=elapsed, value=stats["value"], search=stats)
