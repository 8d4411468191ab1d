"""``neural`` and ``neural-mcts``: players that play from a policy-value network.

- ``neural:model=PATH`` plays the network's policy with no search: one network call a move, the
  most probable legal move (``temperature=0``) or a move sampled from the policy sharpened or
  flattened by ``temperature``.
- ``neural-mcts:model=PATH,sims=N`` is PUCT (AlphaZero's selection rule) with the network's policy
  as priors and its value at the leaves.  Native games search in numba, ``leaves`` leaves per
  network call (``search.native.lockstep``); other perfect-information games use the plain-Python
  MCTS with the network as its proposer and value hooks.

Without ``model`` both play the network bundled for the game (connect four and tic-tac-toe); a
bundled network may also be named (``model=connect4-distilled``: the connect-four network distilled
from ``mcts:sims=2000``); ``models/README.md`` says how each was trained.

>>> from plyground import agents, games
>>> a = agents.make("neural")
>>> s = games.play_moves(games.make("tictactoe"), "0 4 1")     # x: 0 1; o must block at 2
>>> a.act(s).action
2
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import numpy as np

from plyground.agents.base import Agent, merged_seed
from plyground.agents.decision import Decision
from plyground.agents.params import Param
from plyground.games.errors import PlygroundError, UnsupportedGameError


def bundled_model(game_name: str) -> Path | None:
    """The network shipped for ``game_name`` (a native game or its OpenSpiel twin), or None."""
    from plyground.agents.neural.checkpoint import _canonical

    p = resources.files("plyground.agents.neural") / "models" / f"{_canonical(game_name)}.pt"
    return Path(str(p)) if p.is_file() else None


def bundled_names() -> list[str]:
    """Every bundled network by name: a game's default (``connect4``) and named others
    (``connect4-distilled``), each ``models/<name>.pt``."""
    d = resources.files("plyground.agents.neural") / "models"
    return sorted(p.name[:-3] for p in d.iterdir() if p.name.endswith(".pt")) if d.is_dir() else []


def bundled_games() -> list[str]:
    """The games with a default bundled network."""
    return [n for n in bundled_names() if "-" not in n]


def resolve_model(model: str | None, game) -> Path:
    """The checkpoint an agent plays on ``game``: ``model`` (a path, or the name of a bundled network
    such as ``connect4-distilled``), else the game's bundled network."""
    if model:
        path = Path(model).expanduser()
        if not path.exists() and "/" not in model and not model.endswith(".pt") and model in bundled_names():
            return Path(str(resources.files("plyground.agents.neural") / "models" / f"{model}.pt"))
        return path
    path = bundled_model(game.name)
    if path is None:
        have = ", ".join(bundled_games()) or "none"
        raise UnsupportedGameError(f"no network is bundled for {game.name} (bundled: {have}); give model=PATH, "
                                   "a checkpoint from `plyground train distill` or `plyground train selfplay`")
    return path


class _NetworkAgent(Agent):
    """Loads the network on first use (or in ``warm_up``) and checks it fits the game."""

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._evaluator = None
        self._engine = None
        self._game_name: str | None = None
        self._seed = self.params["seed"]
        self._rng = np.random.default_rng(self._seed)

    def check_game(self, game) -> None:
        """The network must be made for this game (same observation shape and actions): a missing,
        corrupt or foreign checkpoint is refused before play, naming the file and what is wrong."""
        super().check_game(game)
        from plyground.agents.neural.checkpoint import CheckpointError, check_fits, load_network
        from plyground.games.traits import traits

        t = traits(game)
        if t.simultaneous:
            raise UnsupportedGameError(f"{self.name} plays games whose moves come in turns; {t.name} is a "
                                       "simultaneous-move game")
        path = resolve_model(self.params["model"], game)
        try:
            _, ckpt = load_network(path)
            check_fits(ckpt, game)
        except CheckpointError as e:
            raise UnsupportedGameError(f"{self.name} cannot play {game.name}: {e}") from None

    def _load(self, game):
        if self._evaluator is None or self._game_name != game.name:
            from plyground.agents.neural.checkpoint import load_network
            from plyground.agents.neural.evaluator import NetEvaluator

            net, self.checkpoint = load_network(resolve_model(self.params["model"], game), game=game)
            self._evaluator = NetEvaluator(net, game, threads=self.params["threads"])
            self._game_name = game.name
            self._engine = None
        return self._evaluator

    def reset(self, seed: int | None = None) -> None:
        self._seed = merged_seed(self.params["seed"], seed)
        self._rng = np.random.default_rng(self._seed)
        self._engine = None     # re-seeded for the new game

    def warm_up(self, game) -> None:
        """Load the network (and compile the native encoder / search) before the first move."""
        ev = self._load(game)
        state = game.new_initial_state()
        while state.is_chance_node():   # the network answers at player nodes only
            state.apply_action(state.chance_outcomes()[0][0])
        if game.name in _native_games():
            ev.evaluate_native(state.array[None, :])
        else:
            ev.evaluate_states([state])

    def _pick(self, probs: dict[int, float]) -> int:
        """argmax (temperature 0) or a draw from ``probs`` ** (1/temperature)."""
        acts = list(probs)
        p = np.array([probs[a] for a in acts], dtype=np.float64)
        tau = self.params["temperature"]
        if tau <= 0 or len(acts) == 1:
            return acts[int(np.argmax(p))]
        w = np.power(np.maximum(p, 0.0), 1.0 / tau)
        w = w / w.sum() if w.sum() > 0 else np.full(len(p), 1.0 / len(p))
        return acts[int(self._rng.choice(len(acts), p=w))]


def _native_games() -> set[str]:
    from plyground.games.native.encode import ENCODERS
    return set(ENCODERS)


_COMMON = {
    "model": Param(str, None, "network checkpoint (.pt) or a bundled network's name (connect4-distilled); "
                              "unset: the network bundled for the game"),
    "temperature": Param(float, 0.0, "0: play the best move; >0: sample (policy or visits) ** (1/temperature)",
                         min=0.0),
    "threads": Param(int, 1, "torch threads for the network", min=1),
    "seed": Param(int, None, "random seed (sampling, search noise); unset = nondeterministic"),
}


class NeuralAgent(_NetworkAgent):
    name = "neural"
    summary = "a policy-value network's policy, no search (one network call a move)"
    PARAMS = dict(_COMMON)

    def act(self, state, clock: float | None = None) -> Decision:
        game = state.game if hasattr(state, "game") else state.get_game()
        t = time.perf_counter()
        ev = self._load(game)
        priors, values = ev.evaluate_states([state])
        legal = [int(a) for a in state.legal_actions()]
        probs = {a: float(priors[0, a]) for a in legal}
        action = self._pick(probs)
        value = float(values[0])
        return Decision(action=action, think_time=time.perf_counter() - t, value=value,
                        search={"engine": "network", "best_action": max(probs, key=probs.get), "value": value,
                                "policy": probs, "nodes": 1})


class NeuralMCTSAgent(_NetworkAgent):
    name = "neural-mcts"
    summary = "PUCT guided by a policy-value network (numba tree, batched leaf evaluation for native games)"
    PARAMS = {
        "sims": Param(int, 200, "simulations per move", min=1),
        "c": Param(float, 1.5, "PUCT exploration constant", min=0.0),
        "leaves": Param(int, 8, "leaves evaluated per network call", min=1),
        "solver": Param(bool, True, "MCTS-Solver: propagate proven wins and losses"),
        "dirichlet": Param(float, None, "root Dirichlet-noise alpha (unset: no noise)", min=0.0),
        **_COMMON,
    }

    def check_game(self, game) -> None:
        """PUCT here searches full states: perfect-information games without chance."""
        from plyground.games.traits import traits

        t = traits(game)
        if not t.perfect_information or t.chance or t.num_players != 2 or not t.win_draw_loss:
            what = ("hidden information" if not t.perfect_information else "chance nodes" if t.chance
                    else f"{t.num_players} players" if t.num_players != 2 else f"{t.utility.replace('_', '-')} utilities")
            raise UnsupportedGameError(f"neural-mcts searches two-player zero-sum games of perfect information "
                                       f"without chance; {t.name} has {what}: use neural, which plays the "
                                       "network's policy from the player's own observation")
        super().check_game(game)

    def warm_up(self, game) -> None:
        """Load the network and compile the search: a tiny search from the initial state."""
        super().warm_up(game)
        self.act(game.new_initial_state())
        self._engine = None

    def act(self, state, clock: float | None = None) -> Decision:
        from plyground.search.result import SearchResult

        game = state.game if hasattr(state, "game") else state.get_game()
        t = time.perf_counter()
        ev = self._load(game)
        p = self.params
        if game.name in _native_games():
            if self._engine is None:
                from plyground.search.native.lockstep import LockstepPUCT
                self._engine = LockstepPUCT(game, ev.evaluate_native, sims=p["sims"], c=p["c"],
                                            leaves_per_tree=p["leaves"], solver=p["solver"],
                                            dirichlet_alpha=p["dirichlet"],
                                            seed=None if self._seed is None else int(self._seed))
            r = self._engine.search([state.array])[0]
            result = SearchResult(best_action=r.best_action, value=r.value, engine="mcts", nodes=r.sims,
                                  depth=r.depth, pv=[r.best_action], action_values=r.action_values, visits=r.visits,
                                  seconds=time.perf_counter() - t, exact=r.exact,
                                  extra={"impl": "numba-lockstep", "variant": "puct", "network": True,
                                         "tree_nodes": r.extra["tree_nodes"]})
        else:
            if self._engine is None:
                from plyground.agents.neural.evaluator import net_hooks
                from plyground.search.mcts import MCTS
                proposer, value = net_hooks(ev)
                self._engine = MCTS(sims=p["sims"], c=p["c"], variant="puct", solver=p["solver"],
                                    batch_size=p["leaves"], proposer=proposer, value=value,
                                    dirichlet_alpha=p["dirichlet"], reuse_tree=False, seed=self._seed)
            result = self._engine.search(state)
        action = result.best_action
        if p["temperature"] > 0 and result.visits:
            action = self._pick({int(a): float(n) for a, n in result.visits.items()})
        if action not in state.legal_actions():
            raise PlygroundError(f"neural-mcts chose {action}, not legal here")
        return Decision(action=action, think_time=time.perf_counter() - t, value=result.value,
                        search=result.to_json())


NEURAL_AGENTS = (NeuralAgent, NeuralMCTSAgent)
