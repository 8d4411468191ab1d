"""Information-set MCTS: the search for games the other MCTS engines cannot search honestly.

``plyground.search.mcts.MCTS.search`` sends a state here when its game has chance events
(dice, card deals), hidden information (the state is a ``PlayerView``), other than two players,
or utilities that are not zero-sum (general-sum, identical-interest, asymmetric bounds).  Plain
Python over any state with OpenSpiel's method names.

The algorithm
-------------
Single-observer information-set MCTS (SO-ISMCTS; Cowling, Powley & Whitehouse 2012,
"Information Set Monte Carlo Tree Search", IEEE Trans. Computational Intelligence and AI in Games
4(2)) over an open-loop tree (Bubeck & Munos 2010, "Open Loop Optimistic Planning"; Perez
Liebana et al. 2015, "Open Loop Search for General Video Game Playing"):

- **Determinization.**  Each simulation starts from a full state: ``view.sample(rng)`` when the
  root is a ``PlayerView`` (a state drawn among those consistent with what the player to move
  knows; see ``plyground.games.information``), else a clone of the state itself (whatever it
  holds, the caller chose to hand it over).  The search never reads the true state behind a view.
- **Open loop.**  A tree node is a sequence of *player* actions from the root, whoever made them.
  Chance nodes are not tree nodes: when the determinization reaches one, an outcome is drawn with
  its probability and the descent goes on.  So one node stands for every state that sequence of
  actions reaches under every determinization and every chance outcome.
- **Availability.**  The legal actions at a node depend on the determinization and on the chance
  outcomes drawn (backgammon's moves depend on the dice), so a node's children are the actions
  seen legal so far, added as they appear.  Selection considers only the children legal in the
  current determinization, and each child counts how often it was available; UCB uses that count
  in place of the parent's visits (the subset-armed bandit of SO-ISMCTS):
  ``Q + c*sqrt(ln(avail)/n)`` (UCT; an available child never tried is tried first, drawn at random
  among such), or ``Q + c*P*sqrt(avail)/(1 + n)`` (PUCT, priors ``P`` from the proposer).
- **Expansion and evaluation.**  A node reached for the first time is a leaf: its state is
  evaluated (``rollouts`` random playouts, chance drawn with its probabilities, or the
  ``ValueEstimator``), and its children are added when a later simulation passes through it (all
  legal actions of that determinization, then any action first seen legal later).  A finished
  game is scored exactly.
- **One value per player.**  Every evaluation is a vector: each player's return scaled to [-1, 1]
  by the game's min/max utility (``games.traits``).  Each node accumulates the value of the
  player who acted into it, so every player maximises its own value (max^n backup; Luckhardt &
  Irani 1986; Sturtevant 2008, "An Analysis of UCT in Multi-Player Games"): general-sum,
  identical-interest and n-player games need no special case.  A ``ValueEstimator`` gives one
  value, for the player to move, so it is taken only in two-player zero-/constant-sum games (the
  other player gets its negative); elsewhere it is an error (use rollouts).

Priors: the root's come from the proposer asked about the state as given (a view answers only
what the player sees); deeper nodes' from the proposer asked about the determinization in hand.

Options (``MCTS``): ``sims``, ``time_limit``, ``max_nodes``, ``c``, ``variant`` (uct/puct),
``proposer``, ``value``, ``rollouts``, ``dirichlet_alpha``/``dirichlet_frac`` (PUCT root noise),
``batch_size`` with ``virtual_loss``, ``seed`` (a fixed seed gives the same search; the draws of
determinizations, chance outcomes, rollouts and ties all come from it).  Two options are declined,
not errors (the agents set them by default), and the result says so in ``extra``:

- ``solver``: nothing is proven.  A value here is an average over determinizations and chance
  outcomes, not a game-theoretic value, so a "proven win" under one determinization proves
  nothing about the information set;
- ``reuse_tree``: every search starts a new tree.  The kept statistics were gathered for
  determinizations drawn from the previous information (what was hidden then may be known now),
  and a view does not say which moves were made since.

If a view's sampler finds no consistent state (``SamplingError``), the search stops with what it
has (``extra["stop_reason"] == "sampling_failed"``, the error in ``extra["sampling_error"]``);
with nothing searched it plays a uniformly random legal move and says so in ``extra["fallback"]``.

Known limits of the method (Cowling et al. discuss them): statistics are shared across
determinizations, so the search can fuse strategies that need to know the hidden part
(strategy fusion), and the samplers assume a uniform opponent model (hidden cards are not made
likelier by the opponent's bets).  Open loop also means the tree cannot plan a different reply
for each future chance outcome; the statistics below a chance event average over its outcomes.
"""

from __future__ import annotations

import math
import random
import time

from plyground.games.errors import PlygroundError
from plyground.games.information import SamplingError
from plyground.search.generic_mcts import UnsupportedStateError, budget_spent, check_proposal, check_values
from plyground.search.hooks import CHANCE_PLAYER, RolloutValue, UniformProposer, game_of, sample_chance
from plyground.search.result import SearchResult

SIMULTANEOUS_PLAYER = -2


def _raw(state):
    """(the pyspiel state behind an ``OpenSpielState``, or the state itself; its adapter game or None)."""
    ps = getattr(state, "pyspiel_state", None)
    if ps is not None:
        return ps, state.game
    return state, None


def _draw_chance(s, rng: random.Random) -> None:
    """Play chance outcomes, each drawn with its probability, until a player node or the end."""
    while s.current_player() == CHANCE_PLAYER:
        s.apply_action(sample_chance(s, rng))


class ISMCTS:
    """The engine; ``search(cfg, state, seed, rng)`` with the options of ``cfg`` (an ``MCTS``).

    One instance may serve many searches; each starts a new tree (see the module docstring)."""

    def __init__(self) -> None:
        self._clear(0)

    def reset(self) -> None:
        self._clear(0)

    def _clear(self, root_player: int) -> None:
        self.mover: list[int] = [root_player]    # the player who acted into the node (root: to move)
        self.vis: list[int] = [0]
        self.wsum: list[float] = [0.0]           # sum of the mover's scaled values
        self.avail: list[int] = [0]              # simulations in which the node's action was legal
        self.prior: list[float] = [1.0]
        self.act: list[int] = [-1]
        self.kids: list[dict[int, int]] = [{}]   # action -> child node
        self.evaluated: list[bool] = [False]

    # ------------------------------------------------------------ the search
    def search(self, cfg, state, seed: int | None, rng) -> SearchResult:
        from plyground.games.traits import CONSTANT_SUM, ZERO_SUM, traits

        t0 = time.perf_counter()
        game = game_of(state)
        if game is None:
            raise UnsupportedStateError(f"MCTS cannot tell which game {type(state).__name__} belongs to "
                                        "(no .game or get_game())")
        tr = traits(game)
        root_player = int(state.current_player())
        if root_player == CHANCE_PLAYER:
            raise UnsupportedStateError(
                f"MCTS searches from a player's turn; the state of {tr.name} is a chance node (the game "
                "draws its outcome): apply an outcome first")
        if root_player == SIMULTANEOUS_PLAYER or tr.simultaneous:
            raise UnsupportedStateError(
                f"MCTS does not search simultaneous-move nodes ({tr.name}); wrap the game in turns: "
                "openspiel:turn_based_simultaneous_game(game=...)")
        if not 0 <= root_player < tr.num_players:
            raise UnsupportedStateError(f"MCTS: current_player() returned {root_player}; {tr.name} has "
                                        f"players 0..{tr.num_players - 1}")
        root_legal = [int(a) for a in state.legal_actions()]
        if not root_legal:
            raise PlygroundError(f"MCTS: the player to move in {tr.name} has no legal action")
        is_view = bool(getattr(state, "is_view", False))

        value = cfg.value
        if value is None or type(value) is RolloutValue:
            n_roll = cfg.rollouts if value is None else int(value.n)
            hook = None
        else:
            if not (tr.num_players == 2 and tr.utility in (ZERO_SUM, CONSTANT_SUM)):
                raise PlygroundError(
                    f"MCTS value={type(value).__name__}: a ValueEstimator gives one value, for the player to "
                    f"move; {tr.name} is {tr.utility.replace('_', '-')} with {tr.num_players} player(s), so its "
                    "leaves need every player's own value: use rollouts (value=None or RolloutValue)")
            n_roll = 0
            hook = value
        proposer = cfg.proposer
        use_proposer = proposer is not None and type(proposer) is not UniformProposer
        pname = type(proposer).__name__ if proposer is not None else "UniformProposer"
        vname = type(value).__name__ if value is not None else "RolloutValue"

        py_rng = random.Random(seed) if seed is not None else random.Random()
        scale = tr.scale
        self._clear(root_player)
        self.evaluated[0] = True
        root_prop = None
        if use_proposer:
            root_prop = self._proposals([state], [root_legal], tr.name, proposer, pname)[0]
        self._add_children(0, root_player, root_legal, root_legal, root_prop, None)
        if cfg.variant == "puct" and cfg.dirichlet_alpha is not None:
            self._apply_noise(cfg, rng)

        if is_view:
            def determinize():
                return _raw(state.sample(py_rng))
        else:
            src, src_game = _raw(state)

            def determinize():
                return src.clone(), src_game

        puct = cfg.variant == "puct"
        c = float(cfg.c)
        vl = float(cfg.virtual_loss)
        sims = cfg.sims
        deadline = None if cfg.time_limit is None else t0 + cfg.time_limit
        done = batches = leaves_evaluated = maxd = 0
        reason = "sims"
        full = False
        sampling_error = None
        while True:
            remaining = (sims - done) if sims is not None else 1 << 62
            stop = (budget_spent(remaining, done, deadline, len(self.vis), cfg.max_nodes)
                    or ("max_nodes" if full else None))
            if stop:
                reason = stop
                break
            want = min(cfg.batch_size, remaining)
            leaves = []
            pending: set[int] = set()
            n_exact = 0
            while len(leaves) + n_exact < want and not full:
                try:
                    det, det_game = determinize()
                except SamplingError as e:     # the view's sampler found no consistent state
                    sampling_error = str(e)
                    break
                path, kind, full_now = self._descend(det, py_rng, c, puct, use_proposer, proposer, pname, tr.name,
                                                     cfg.max_nodes, det_game)
                full = full or full_now
                maxd = max(maxd, len(path) - 1)
                if kind == "terminal":     # a finished game: its exact value, at once
                    self._backup(path, [scale(r) for r in det.returns()], 1, 0.0)
                    n_exact += 1
                    continue
                node = path[-1]
                if node in pending:        # its first evaluation is already in this batch
                    break
                pending.add(node)
                for i in path:             # virtual loss: the next descents of this batch look elsewhere
                    self.vis[i] += 1
                    self.wsum[i] -= vl
                leaves.append((node, path, det, det_game))
            done += n_exact
            if sampling_error is not None:
                reason = "sampling_failed"
            if leaves:
                vectors = self._evaluate(leaves, hook, vname, n_roll, py_rng, scale, tr.num_players)
                for (node, path, _det, _g), vec in zip(leaves, vectors):
                    self.evaluated[node] = True
                    self._backup(path, vec, 0, vl)
                batches += 1
                leaves_evaluated += len(leaves)
                done += len(leaves)
            if sampling_error is not None:
                break

        result = self._result(cfg, root_player, root_legal, t0, done, maxd, reason, batches, leaves_evaluated,
                              is_view)
        if sampling_error is not None:
            result.extra["sampling_error"] = sampling_error
            if done == 0:     # nothing searched: a move that uses no information at all, said so
                result.best_action = root_legal[int(py_rng.random() * len(root_legal))]
                result.pv = [result.best_action]
                result.extra["fallback"] = "uniformly random legal move: no determinization could be sampled"
        return result

    # ------------------------------------------------------------ one descent
    def _descend(self, det, rng, c, puct, use_proposer, proposer, pname, game_name, max_nodes, det_game):
        """Walk the tree on the determinization ``det`` (changed in place) to a leaf or the end.

        Returns (path of nodes, "leaf" or "terminal", whether the tree ran out of room)."""
        vis, wsum, avail, prior, kids, evaluated = self.vis, self.wsum, self.avail, self.prior, self.kids, \
            self.evaluated
        node = 0
        path = [0]
        full = False
        while True:
            if det.is_terminal():
                return path, "terminal", full
            if not evaluated[node]:
                return path, "leaf", full
            p = det.current_player()
            if p < 0:
                raise UnsupportedStateError(f"MCTS does not search simultaneous-move nodes (current_player() "
                                            f"returned {p} in {game_name})")
            legal = det.legal_actions()
            ch = kids[node]
            missing = [a for a in legal if a not in ch]
            if missing:
                prop = None
                if puct and use_proposer:
                    s = det_game.wrap_state(det) if det_game is not None else det
                    prop = self._proposals([s], [list(legal)], game_name, proposer, pname)[0]
                if not self._add_children(node, p, missing, legal, prop, max_nodes):
                    full = True
            best, bs = -1, -math.inf
            fresh = []
            for a in legal:
                i = ch.get(a)
                if i is None:      # no room for it in the tree
                    continue
                avail[i] += 1
                v = vis[i]
                if puct:
                    q = wsum[i] / v if v else 0.0
                    sc = q + c * prior[i] * math.sqrt(avail[i]) / (1 + v)
                elif v == 0:
                    fresh.append(i)
                    continue
                else:
                    sc = wsum[i] / v + c * math.sqrt(math.log(avail[i]) / v)
                if sc > bs:
                    bs, best = sc, i
            if fresh:
                best = fresh[0] if len(fresh) == 1 else fresh[int(rng.random() * len(fresh))]
            if best < 0:           # every legal action is new here and the tree is full: evaluate this state
                return path, "leaf", True
            det.apply_action(self.act[best])
            _draw_chance(det, rng)
            node = best
            path.append(node)

    def _add_children(self, node: int, mover: int, actions, legal, proposal, max_nodes) -> bool:
        """Children of ``node`` for ``actions`` (moved into by ``mover``); False if they do not fit."""
        if max_nodes is not None and len(self.vis) + len(actions) > max_nodes:
            return False
        if proposal is not None:
            total = sum(proposal.get(a, 0.0) for a in legal)
            priors = [proposal.get(a, 0.0) / total if total > 0 else 1.0 / len(legal) for a in actions]
        else:
            priors = [1.0 / len(legal)] * len(actions)
        ch = self.kids[node]
        for a, pr in zip(actions, priors):
            ch[int(a)] = len(self.vis)
            self.mover.append(mover)
            self.vis.append(0)
            self.wsum.append(0.0)
            self.avail.append(0)
            self.prior.append(pr)
            self.act.append(int(a))
            self.kids.append({})
            self.evaluated.append(False)
        return True

    @staticmethod
    def _proposals(states, legals, game_name, proposer, pname) -> list[dict[int, float]]:
        answers = proposer.propose_batch(states)
        if len(answers) != len(states):
            raise PlygroundError(f"{pname}.propose_batch returned {len(answers)} answers for {len(states)} states")
        return [check_proposal(game_name, legal, a, pname) for legal, a in zip(legals, answers)]

    # ------------------------------------------------------------ evaluation and backup
    def _evaluate(self, leaves, hook, vname, n_roll, rng, scale, n_players) -> list[list[float]]:
        """One scaled value per player for each leaf state."""
        if hook is not None:
            states = [g.wrap_state(d) if g is not None else d for _n, _p, d, g in leaves]
            values = check_values(hook.evaluate(states), len(states), vname)
            out = []
            for s, v in zip(states, values):
                p = int(s.current_player())
                out.append([v, -v] if p == 0 else [-v, v])
            return out
        out = []
        for _node, _path, det, _g in leaves:
            total = [0.0] * n_players
            for k in range(n_roll):
                s = det if k == n_roll - 1 else det.clone()
                while not s.is_terminal():
                    if s.current_player() == CHANCE_PLAYER:
                        s.apply_action(sample_chance(s, rng))
                    else:
                        legal = s.legal_actions()
                        s.apply_action(legal[int(rng.random() * len(legal))])
                for i, r in enumerate(s.returns()):
                    total[i] += scale(r)
            out.append([x / n_roll for x in total])
        return out

    def _backup(self, path: list[int], vec: list[float], inc: int, vl: float) -> None:
        """Add each node's mover's value (undoing ``vl`` of virtual loss)."""
        vis, wsum, mover = self.vis, self.wsum, self.mover
        for i in path:
            vis[i] += inc
            wsum[i] += vec[mover[i]] + vl

    def _apply_noise(self, cfg, rng) -> None:
        ids = list(self.kids[0].values())
        eta = rng.dirichlet([cfg.dirichlet_alpha] * len(ids))
        frac = cfg.dirichlet_frac
        for i, e in zip(ids, eta):
            self.prior[i] = (1 - frac) * self.prior[i] + frac * float(e)

    # ------------------------------------------------------------ the answer
    def _result(self, cfg, root_player, root_legal, t0, done, maxd, reason, batches, leaves, is_view) -> SearchResult:
        vis, wsum, kids = self.vis, self.wsum, self.kids
        visits, values = {}, {}
        best, best_key = root_legal[0], None
        for a in root_legal:
            i = kids[0].get(a)
            if i is None:
                continue
            visits[a] = vis[i]
            values[a] = wsum[i] / vis[i] if vis[i] else 0.0
            key = (vis[i], values[a])
            if best_key is None or key > best_key:
                best, best_key = a, key
        pv = [best] if best_key is not None and best_key[0] > 0 else []
        node = kids[0].get(best) if pv else None
        while node is not None and kids[node]:
            nxt = max(kids[node].values(), key=lambda i: vis[i])
            if vis[nxt] == 0:
                break
            pv.append(self.act[nxt])
            node = nxt
        extra = {"impl": "ismcts", "variant": cfg.variant, "root_visits": vis[0], "reused_visits": 0,
                 "tree_nodes": len(vis), "stop_reason": reason, "batches": batches, "evaluated_leaves": leaves,
                 "determinization": "view.sample" if is_view else "state",
                 "availability": {str(a): self.avail[i] for a, i in kids[0].items()}}
        if cfg.solver:
            extra["solver"] = "off: information-set search proves nothing"
        if cfg.reuse_tree:
            extra["reuse_tree"] = "off: each information-set search starts a new tree"
        return SearchResult(
            best_action=int(best), value=float(wsum[0] / vis[0]) if vis[0] else 0.0, engine="mcts", nodes=done,
            depth=maxd, pv=pv, action_values=values, visits=visits, seconds=time.perf_counter() - t0,
            exact=False, extra=extra)
