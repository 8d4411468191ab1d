"""The policy-value network: built from a game's observation shape and number of distinct actions.

``PolicyValueNet(NetConfig(obs_shape, num_actions, num_players))`` is a residual convolutional
network for board-shaped observations (``[C, H, W]``, as AlphaZero: Silver et al. 2018) and an MLP
for any other shape.  Its input is the game's observation tensor plus the player to move (one-hot
constant planes, or one-hot features for the MLP): OpenSpiel's board observations are absolute
(planes of x and o stones), and the value head answers from the mover's view.

``forward(obs, player, mask)`` returns ``(logits, value)``: logits of illegal actions are set to
``ILLEGAL_LOGIT`` (their softmax is exactly 0 in float32, and a soft-target cross-entropy stays
finite), and the value is ``tanh``-squashed into [-1, 1].

>>> import torch
>>> net = PolicyValueNet(NetConfig((3, 6, 7), 7, width=8, blocks=1))
>>> obs = torch.zeros(2, 3, 6, 7); mask = torch.ones(2, 7, dtype=torch.bool); mask[1, 3] = False
>>> logits, value = net(obs, torch.tensor([0, 1]), mask)
>>> tuple(logits.shape), tuple(value.shape), float(torch.softmax(logits, -1)[1, 3])
((2, 7), (2,), 0.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from plyground.games.errors import PlygroundError

ILLEGAL_LOGIT = -1e9
KINDS = ("auto", "resnet", "mlp")


class NetConfigError(PlygroundError, ValueError):
    """A network configuration that cannot be built (names the field, its value and what is allowed)."""


@dataclass(frozen=True)
class NetConfig:
    """What a network is built from; stored in every checkpoint.

    ``kind``: ``resnet`` (residual convolutional, needs a ``[C, H, W]`` observation), ``mlp``, or
    ``auto`` (resnet for 3-D observations, else mlp).  ``width``: channels (resnet) or hidden units
    (mlp); ``blocks``: residual blocks (resnet) or hidden layers (mlp).
    """

    obs_shape: tuple[int, ...]
    num_actions: int
    num_players: int = 2
    kind: str = "auto"
    width: int = 64
    blocks: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "obs_shape", tuple(int(d) for d in self.obs_shape))
        if not self.obs_shape or any(d < 1 for d in self.obs_shape):
            raise NetConfigError(f"obs_shape {list(self.obs_shape)} must be non-empty with positive sizes")
        if self.kind not in KINDS:
            raise NetConfigError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "resnet" and len(self.obs_shape) != 3:
            raise NetConfigError(f"kind 'resnet' needs a [C, H, W] observation; this one is {list(self.obs_shape)}")
        for name, lo in (("num_actions", 1), ("num_players", 1), ("width", 1), ("blocks", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise NetConfigError(f"{name} {v!r} must be an integer >= {lo}")

    @property
    def resolved_kind(self) -> str:
        if self.kind != "auto":
            return self.kind
        return "resnet" if len(self.obs_shape) == 3 else "mlp"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["obs_shape"] = list(self.obs_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NetConfig":
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise NetConfigError(f"unknown network field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(**d)


class _Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(ch)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.b1(self.c1(x)))
        return torch.relu(x + self.b2(self.c2(y)))


class PolicyValueNet(nn.Module):
    """Policy logits over the game's distinct actions (illegal ones masked) and a tanh value."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        A, P, w = config.num_actions, config.num_players, config.width
        self.kind = config.resolved_kind
        if self.kind == "resnet":
            C, H, W = config.obs_shape
            self.stem = nn.Sequential(nn.Conv2d(C + P, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
            self.body = nn.Sequential(*[_Residual(w) for _ in range(config.blocks)])
            self.policy_head = nn.Sequential(nn.Conv2d(w, 2, 1, bias=False), nn.BatchNorm2d(2), nn.ReLU(),
                                             nn.Flatten(), nn.Linear(2 * H * W, A))
            self.value_head = nn.Sequential(nn.Conv2d(w, 1, 1, bias=False), nn.BatchNorm2d(1), nn.ReLU(),
                                            nn.Flatten(), nn.Linear(H * W, w), nn.ReLU(), nn.Linear(w, 1))
        else:
            n_in = 1
            for d in config.obs_shape:
                n_in *= d
            layers: list[nn.Module] = []
            prev = n_in + P
            for _ in range(config.blocks):
                layers += [nn.Linear(prev, w), nn.ReLU()]
                prev = w
            self.stem = nn.Identity()
            self.body = nn.Sequential(*layers)
            self.policy_head = nn.Linear(prev, A)
            self.value_head = nn.Sequential(nn.Linear(prev, w), nn.ReLU(), nn.Linear(w, 1))

    def _input(self, obs: torch.Tensor, player: torch.Tensor) -> torch.Tensor:
        P = self.config.num_players
        onehot = torch.nn.functional.one_hot(player.long().clamp(0, P - 1), P).to(obs.dtype)
        if self.kind == "resnet":
            B, _, H, W = obs.shape
            return torch.cat([obs, onehot[:, :, None, None].expand(B, P, H, W)], dim=1)
        return torch.cat([obs.reshape(obs.shape[0], -1), onehot], dim=1)

    def forward(self, obs: torch.Tensor, player: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs`` ``[B, *obs_shape]`` float, ``player`` ``[B]`` (the mover), ``mask`` ``[B, A]`` bool
        (True = legal); returns logits ``[B, A]`` and values ``[B]`` in [-1, 1]."""
        h = self.body(self.stem(self._input(obs, player)))
        logits = self.policy_head(h)
        if mask is not None:
            logits = logits.masked_fill(~mask, ILLEGAL_LOGIT)
        value = torch.tanh(self.value_head(h).squeeze(-1))
        return logits, value

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
