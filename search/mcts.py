"""Monte Carlo tree search: one entry point, numba for native games, plain Python for any other State.

>>> from plyground import games
>>> from plyground.search.mcts import MCTS
>>> state = games.play_moves(games.make("tictactoe"), "0 4 1 8")  # x: 0 1, o: 4 8
>>> MCTS(sims=2000, seed=1).search(state).best_action      # completes the top row
2

``MCTS.search(state)`` runs the numba engine (``plyground.search.native.mcts``) on a native
state whose game has an entry there; the information-set engine (``plyground.search.ismcts``)
on a state the other two cannot search honestly: a ``PlayerView`` (hidden information), or a
game with chance nodes, other than two players, or utilities that are not zero-sum with bounds
``-m..m``; and the generic engine (``plyground.search.generic_mcts``) on anything else with
OpenSpiel's method names (two-player zero-sum perfect-information games without chance).  Every
value they report is in [-1, 1]: returns are scaled by the game's min/max utility.  They share
every option (the information-set engine declines ``solver`` and ``reuse_tree``: see its docstring):

- ``variant``: ``"uct"`` (UCB1: ``Q + c*sqrt(ln N / n)``, unvisited children first) or ``"puct"``
  (AlphaZero: ``Q + c*P*sqrt(N)/(1+n)`` with priors ``P`` from the ``proposer``, uniform by default);
- ``solver``: MCTS-Solver; proven wins/losses/draws propagate up the tree, a proven root stops
  the search (``result.exact``) and the root plays a proven win when there is one;
- ``dirichlet_alpha`` / ``dirichlet_frac``: root-prior noise (PUCT only: UCT ignores priors);
- ``reuse_tree``: a state whose history extends the last searched root's keeps that subtree
  (``result.extra["reused_visits"]``);
- budgets: ``sims``, ``time_limit`` (seconds), ``max_nodes`` (tree size; the search stops
  cleanly when the tree is full, ``extra["stop_reason"] == "max_nodes"``);
- evaluation: ``value`` (a ``ValueEstimator``; default ``RolloutValue(rollouts)``) and ``proposer``
  (an ``ActionProposer``; its priors drive PUCT and the actions it leaves out are pruned), called
  with ``batch_size`` leaves at a time selected under virtual loss.  On a native game the default
  rollouts and ``HeuristicValue`` run inside numba; custom hooks get ``NativeState`` objects.
"""

from __future__ import annotations

import numpy as np

from plyground.games.errors import PlygroundError
from plyground.search.hooks import ActionProposer, ValueEstimator
from plyground.search.result import SearchResult

VARIANTS = ("uct", "puct")


def _check_number(name: str, value, *, minimum=None, integer=False, allow_none=False, strict=False):
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"MCTS {name} must be given; got None")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"MCTS {name} must be a number; got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"MCTS {name} must be an integer; got {value!r}")
    if value != value:  # NaN
        raise ValueError(f"MCTS {name} must not be NaN")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"MCTS {name} must be {'>' if strict else '>='} {minimum}; got {value!r}")
    return int(value) if integer else float(value)


def needs_information_sets(state) -> bool:
    """True if ``state`` is for the information-set engine: a ``PlayerView``, or a game with chance,
    hidden information, other than two players, or utilities other than zero-sum in ``-m..m``."""
    if getattr(state, "is_view", False):
        return True
    from plyground.search.hooks import game_of
    game = game_of(state)
    if game is None:
        return False
    from plyground.games.traits import ZERO_SUM, traits
    try:
        t = traits(game)
    except (AttributeError, TypeError):  # not a game traits() knows: the generic engine's own checks apply
        return False
    return (t.chance or not t.perfect_information or t.num_players != 2 or t.utility != ZERO_SUM
            or t.min_utility != -t.max_utility)


def _derive_seed(seed: int, k: int) -> int:
    """A 31-bit seed for search number ``k`` of an engine seeded with ``seed``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, k]).generate_state(1)[0]) & 0x7FFFFFFF


class MCTS:
    """Monte Carlo tree search with UCT/PUCT, MCTS-Solver, root noise, tree reuse and batched hooks.

    Options may be changed between searches (e.g. ``mcts.time_limit = 0.5``); changing the variant,
    the solver flag or a hook discards the kept tree.  ``reset()`` forgets the tree and restarts the seeds.
    """

    def __init__(self, *, sims: int | None = 1000, c: float = 1.4, variant: str = "uct", solver: bool = True,
                 dirichlet_alpha: float | None = None, dirichlet_frac: float = 0.25,
                 time_limit: float | None = None, max_nodes: int | None = None, batch_size: int = 1,
                 rollouts: int = 1, proposer: ActionProposer | None = None, value: ValueEstimator | None = None,
                 reuse_tree: bool = True, seed: int | None = None, virtual_loss: float = 1.0) -> None:
        self.sims = sims
        self.c = c
        self.variant = variant
        self.solver = solver
        self.dirichlet_alpha = dirichlet_alpha
        self.dirichlet_frac = dirichlet_frac
        self.time_limit = time_limit
        self.max_nodes = max_nodes
        self.batch_size = batch_size
        self.rollouts = rollouts
        self.proposer = proposer
        self.value = value
        self.reuse_tree = reuse_tree
        self.seed = seed
        self.virtual_loss = virtual_loss
        self._validate()
        self._native: dict[str, object] = {}
        self._generic = None
        self._ismcts = None
        self._searches = 0

    def _validate(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"MCTS variant {self.variant!r} is not one of {VARIANTS}")
        self.sims = _check_number("sims", self.sims, minimum=1, integer=True, allow_none=True)
        self.time_limit = _check_number("time_limit", self.time_limit, minimum=0.0, allow_none=True)
        if self.sims is None and self.time_limit is None:
            raise ValueError("MCTS needs a budget: sims (an integer >= 1) or time_limit (seconds); both are None")
        self.c = _check_number("c", self.c, minimum=0.0)
        self.max_nodes = _check_number("max_nodes", self.max_nodes, minimum=2, integer=True, allow_none=True)
        self.batch_size = _check_number("batch_size", self.batch_size, minimum=1, integer=True)
        self.rollouts = _check_number("rollouts", self.rollouts, minimum=1, integer=True)
        self.dirichlet_alpha = _check_number("dirichlet_alpha", self.dirichlet_alpha, minimum=0.0, strict=True,
                                             allow_none=True)
        self.dirichlet_frac = _check_number("dirichlet_frac", self.dirichlet_frac, minimum=0.0)
        if self.dirichlet_frac > 1.0:
            raise ValueError(f"MCTS dirichlet_frac must be in [0, 1]; got {self.dirichlet_frac!r}")
        self.virtual_loss = _check_number("virtual_loss", self.virtual_loss, minimum=0.0)
        if self.seed is not None:
            self.seed = _check_number("seed", self.seed, integer=True)
        if self.proposer is not None and not hasattr(self.proposer, "propose_batch"):
            raise TypeError(f"MCTS proposer must be an ActionProposer (with propose_batch); got {self.proposer!r}")
        if self.value is not None and not hasattr(self.value, "evaluate"):
            raise TypeError(f"MCTS value must be a ValueEstimator (with evaluate); got {self.value!r}")

    def reset(self) -> None:
        """Forget the kept tree and restart the seed sequence."""
        self._native.clear()
        self._generic = None
        self._ismcts = None
        self._searches = 0

    def _engine(self, state):
        from plyground.search.native import mcts as native

        game = getattr(state, "game", None)
        kernel = getattr(game, "kernel", None)
        if kernel is not None and hasattr(state, "array") and getattr(game, "name", None) in native.ENTRIES:
            eng = self._native.get(game.name)
            if eng is None:
                eng = self._native[game.name] = native.NativeMCTS(game)
            return eng
        if needs_information_sets(state):
            if self._ismcts is None:
                from plyground.search.ismcts import ISMCTS
                self._ismcts = ISMCTS()
            return self._ismcts
        if self._generic is None:
            from plyground.search.generic_mcts import GenericMCTS
            self._generic = GenericMCTS()
        return self._generic

    def search(self, state) -> SearchResult:
        """Search from ``state`` (not modified) and return the most visited action and statistics."""
        self._validate()
        if state.is_terminal():
            after = "" if getattr(state, "is_view", False) else f" (after {list(state.history())})"
            raise PlygroundError(f"cannot search a terminal state{after}: it has no legal actions")
        engine = self._engine(state)
        k = self._searches
        self._searches += 1
        seed = None if self.seed is None else _derive_seed(self.seed, k)
        rng = np.random.default_rng(None if seed is None else [seed, 1])
        return engine.search(self, state, seed, rng)

    def __repr__(self) -> str:
        return (f"MCTS(sims={self.sims}, c={self.c}, variant={self.variant!r}, solver={self.solver}, "
                f"batch_size={self.batch_size}, seed={self.seed})")


def warm_up(game, *, batched: bool = False) -> None:
    """Load (or compile, on a cold numba cache) everything a native MCTS of ``game`` may run, so that
    no timed search pays for it: the game's rules kernels, whole simulations inside numba (rollout
    and heuristic leaves, every variant), seeding numba's generator and moving the kept tree to a
    child (tree reuse), and with ``batched`` the select/backup pair that batches leaves for Python
    hooks.  Tiny searches from the initial state; a no-op for games without a numba engine."""
    import secrets

    from plyground.search.hooks import HeuristicValue

    warm_rules = getattr(game, "warm_up", None)
    if warm_rules is not None:
        warm_rules()
    kernel = getattr(game, "kernel", None)
    if kernel is None:
        return
    from plyground.search.native import mcts as native
    if getattr(game, "name", None) not in native.ENTRIES:
        return
    state = game.new_initial_state()
    sims = 2 * kernel.NUM_ACTIONS + 2  # enough to expand the root and visit its children
    # a fresh random seed: numba's generator stays as unpredictable as an unseeded search expects
    engine = MCTS(sims=sims, seed=secrets.randbits(31))
    child = state.child(engine.search(state).best_action)
    engine.search(child)  # re-roots the kept tree
    MCTS(sims=sims, value=HeuristicValue(), seed=secrets.randbits(31)).search(state)
    if batched:
        MCTS(sims=sims, batch_size=2, value=HeuristicValue(), seed=secrets.randbits(31)).search(state)
