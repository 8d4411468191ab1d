"""Batched evaluation of a policy-value network, and the network as search hooks.

``NetEvaluator(net, game)`` turns network outputs into what search uses: priors (a softmax over the
legal actions, 0 elsewhere) and values in [-1, 1] for the player to move, as ``float64`` numpy
arrays.  Three ways in:

- ``evaluate_arrays(obs, player, mask)``: already-encoded inputs (datasets, benchmarks);
- ``evaluate_native(states)``: native state arrays, encoded inside numba (``games.native.encode``);
  this is the evaluator ``search.native.lockstep.LockstepPUCT`` calls;
- ``evaluate_states(states)``: any states with ``observation_tensor()``, ``legal_actions()`` and
  ``current_player()``.

``NetProposer`` and ``NetValue`` are the ``ActionProposer`` and ``ValueEstimator`` hooks over one
evaluator, for ``minimax`` and the plain-Python MCTS: the engines ask the proposer and then the
value about the same batch of leaves, so the value of the batch just proposed is answered from
that one network call.

>>> import torch
>>> from plyground import games
>>> from plyground.agents.neural.network import NetConfig, PolicyValueNet
>>> g = games.make("tictactoe")
>>> torch.manual_seed(0) and None
>>> ev = NetEvaluator(PolicyValueNet(NetConfig((3, 3, 3), 9, width=4, blocks=1)).eval(), g)
>>> s = games.play_moves(g, "4 0")
>>> priors, values = ev.evaluate_states([s])
>>> round(float(priors[0].sum()), 6), float(priors[0, 4]), -1 <= float(values[0]) <= 1
(1.0, 0.0, True)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from plyground.search.hooks import ActionProposer, ValueEstimator


class NetEvaluator:
    """A network in eval mode answering batches; counts its calls and positions."""

    def __init__(self, net, game, threads: int | None = None) -> None:
        import torch

        if threads is not None:
            torch.set_num_threads(int(threads))
        self.net = net.eval()
        self.game = game
        self.shape = tuple(int(d) for d in game.observation_tensor_shape())
        self.num_actions = int(game.num_distinct_actions())
        self.calls = 0
        self.positions = 0
        self.seconds = 0.0   # inside the network (forward and softmax), over all calls
        self._buffers: dict[int, tuple] = {}

    def evaluate_arrays(self, obs: np.ndarray, player: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Priors ``[B, A]`` (softmax over the legal actions) and values ``[B]`` for encoded inputs."""
        import time

        import torch

        t = time.perf_counter()
        self.calls += 1
        self.positions += len(obs)
        try:
            return self._forward(torch, obs, player, mask)
        finally:
            self.seconds += time.perf_counter() - t

    def _forward(self, torch, obs, player, mask) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.bool_))
            logits, value = self.net(torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32)),
                                     torch.from_numpy(np.ascontiguousarray(player, dtype=np.int64)), m)
            priors = torch.softmax(logits, dim=-1).masked_fill(~m, 0.0)
        return priors.double().numpy(), value.double().numpy()

    def _buffer(self, n: int) -> tuple:
        cap = 1 << max(0, (n - 1).bit_length())
        buf = self._buffers.get(cap)
        if buf is None:
            buf = (np.empty((cap, *self.shape), np.float32), np.empty(cap, np.int64),
                   np.empty((cap, self.num_actions), np.bool_))
            self._buffers[cap] = buf
        return buf

    def evaluate_native(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate native state arrays (``int64[n, STATE_LEN]``), encoded in numba."""
        from plyground.games.native.encode import encode

        n = len(states)
        obs, player, mask = self._buffer(n)
        encode(self.game.name, states, obs[:n], player[:n], mask[:n])
        return self.evaluate_arrays(obs[:n], player[:n], mask[:n])

    def encode_states(self, states: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(states)
        obs = np.empty((n, *self.shape), np.float32)
        player = np.empty(n, np.int64)
        mask = np.zeros((n, self.num_actions), np.bool_)
        for i, s in enumerate(states):
            obs[i] = np.asarray(s.observation_tensor(), dtype=np.float32).reshape(self.shape)
            player[i] = s.current_player()
            mask[i, s.legal_actions()] = True
        return obs, player, mask

    def evaluate_states(self, states: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate states through their own ``observation_tensor()`` and ``legal_actions()``."""
        if not len(states):
            return np.zeros((0, self.num_actions)), np.zeros(0)
        return self.evaluate_arrays(*self.encode_states(states))


class _Shared:
    """The last batch one network call answered, shared by a proposer and a value hook."""

    def __init__(self, evaluator: NetEvaluator) -> None:
        self.evaluator = evaluator
        self.states: Sequence | None = None
        self.answer: tuple[np.ndarray, np.ndarray] | None = None

    def get(self, states: Sequence) -> tuple[np.ndarray, np.ndarray]:
        if self.states is not states:
            self.answer = self.evaluator.evaluate_states(states)
            self.states = states
        return self.answer


class NetProposer(ActionProposer):
    """The network's policy as priors over the legal actions (nothing pruned)."""

    def __init__(self, evaluator: NetEvaluator, shared: _Shared | None = None) -> None:
        self.shared = shared or _Shared(evaluator)

    def propose(self, state) -> dict[int, float]:
        return self.propose_batch([state])[0]

    def propose_batch(self, states: Sequence) -> list[dict[int, float]]:
        priors, _ = self.shared.get(states)
        return [{int(a): float(priors[i, a]) for a in s.legal_actions()} for i, s in enumerate(states)]


class NetValue(ValueEstimator):
    """The network's value head: the player to move's value in [-1, 1]; terminal states by the rules."""

    def __init__(self, evaluator: NetEvaluator, shared: _Shared | None = None) -> None:
        self.shared = shared or _Shared(evaluator)

    def evaluate(self, states: Sequence) -> list[float]:
        from plyground.search.hooks import terminal_value

        out = [0.0] * len(states)
        live = [i for i, s in enumerate(states) if not s.is_terminal()]
        if len(live) == len(states):
            _, values = self.shared.get(states)
            return [float(v) for v in values]
        for i, s in enumerate(states):
            if s.is_terminal():
                out[i] = float(terminal_value(s))
        if live:
            _, values = self.shared.evaluator.evaluate_states([states[i] for i in live])
            for j, i in enumerate(live):
                out[i] = float(values[j])
        return out


def net_hooks(evaluator: NetEvaluator) -> tuple[NetProposer, NetValue]:
    """A proposer and a value hook sharing one network call per batch."""
    shared = _Shared(evaluator)
    return NetProposer(evaluator, shared), NetValue(evaluator, shared)
