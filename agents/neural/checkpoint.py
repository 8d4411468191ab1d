"""Network checkpoints: one ``torch.save`` file holding the game, the ``NetConfig``, the weights and
a free-form ``info`` table (how it was trained).  Files are read with ``weights_only=True``: a
checkpoint is untrusted input, never unpickled into arbitrary objects.

A training checkpoint (``plyground.datasets``) is a superset of this format (optimizer, step, RNG
states beside the same keys), so ``load_network`` plays either.

>>> import tempfile, os
>>> from plyground.agents.neural.network import NetConfig, PolicyValueNet
>>> net = PolicyValueNet(NetConfig((3, 3, 3), 9, width=4, blocks=1))
>>> path = os.path.join(tempfile.mkdtemp(), "ttt.pt")
>>> save_network(path, net, game="tictactoe", info={"note": "untrained"})
>>> loaded, ckpt = load_network(path, game="tictactoe")
>>> ckpt.game, ckpt.info["note"], loaded.config == net.config
('tictactoe', 'untrained', True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plyground.agents.neural.network import NetConfig, NetConfigError, PolicyValueNet
from plyground.games.errors import PlygroundError

FORMAT = "plyground-network"
VERSION = 1


class CheckpointError(PlygroundError, ValueError):
    """A checkpoint that is missing, unreadable, not a plyground network, or made for another game."""


@dataclass
class Checkpoint:
    """What a network file says about itself."""

    path: str
    game: str
    config: NetConfig
    info: dict[str, Any] = field(default_factory=dict)


def network_payload(net: PolicyValueNet, game: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint table (also the core of a training checkpoint)."""
    return {"format": FORMAT, "version": VERSION, "game": str(game), "net": net.config.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            "info": dict(info or {})}


def atomic_save(payload: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename: a kill at any moment
    leaves either the old file or the new one, never half of one."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_network(path: str | Path, net: PolicyValueNet, game: str, info: dict[str, Any] | None = None) -> None:
    """Write ``net`` for ``game`` (a game name as ``games.make`` takes it) to ``path``."""
    atomic_save(network_payload(net, game, info), path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint table, read safely; ``CheckpointError`` names what is wrong."""
    import pickle

    import torch

    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"no network checkpoint at {str(path)!r}")
    if not p.is_file():
        raise CheckpointError(f"{str(path)!r} is not a file (a network checkpoint is one .pt file)")
    with open(p, "rb") as f:
        head = f.read(4)
    if head[:2] != b"PK":  # torch.save writes a zip archive
        raise CheckpointError(f"{str(path)!r} is not a torch checkpoint (not a torch.save archive: corrupt, "
                              "truncated or another kind of file)")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{str(path)!r} holds Python objects other than tensors and plain values; refused "
                              "(checkpoints are untrusted input, read with weights_only=True)") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{str(path)!r} is not a readable network checkpoint (corrupt or truncated): "
                              f"{first}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a plyground network checkpoint (no format {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{str(path)!r} has checkpoint version {payload.get('version')!r}; "
                              f"this plyground reads version {VERSION}")
    for key in ("game", "net", "state_dict"):
        if key not in payload:
            raise CheckpointError(f"{str(path)!r} lacks {key!r}: not a complete network checkpoint")
    return payload


def game_signature(game) -> tuple[tuple[int, ...], int, int]:
    """(observation shape, distinct actions, players) of a game object."""
    return (tuple(int(d) for d in game.observation_tensor_shape()), int(game.num_distinct_actions()),
            int(game.num_players()))


def load_network(path: str | Path, game=None) -> tuple[PolicyValueNet, Checkpoint]:
    """The network in ``path`` (in eval mode) and its description.  ``game``: a game object or name
    the network must fit (same observation shape and number of actions), else ``CheckpointError``."""
    payload = read_checkpoint(path)
    try:
        config = NetConfig.from_dict(dict(payload["net"]))
    except (NetConfigError, TypeError) as e:
        raise CheckpointError(f"{str(path)!r} has a bad network description: {e}") from None
    ckpt = Checkpoint(str(path), str(payload["game"]), config, dict(payload.get("info") or {}))
    if game is not None:
        check_fits(ckpt, game)
    net = PolicyValueNet(config)
    try:
        net.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{str(path)!r}: the weights do not fit its network description: {first}") from None
    net.eval()
    return net, ckpt


def check_fits(ckpt: Checkpoint, game) -> None:
    """``CheckpointError`` unless the network of ``ckpt`` can play ``game`` (object or name)."""
    if isinstance(game, str):
        from plyground import games
        game = games.make(game)
    shape, actions, players = game_signature(game)
    c = ckpt.config
    name = getattr(game, "name", str(game))
    if _canonical(ckpt.game) != _canonical(name):
        raise CheckpointError(f"{ckpt.path!r} is a network for {ckpt.game}, not for {name}")
    if (tuple(c.obs_shape), c.num_actions, c.num_players) != (shape, actions, players):
        raise CheckpointError(
            f"{ckpt.path!r} is a network for {ckpt.game} (observation {list(c.obs_shape)}, {c.num_actions} actions, "
            f"{c.num_players} players); {name} has observation {list(shape)}, {actions} actions, {players} players")


def _canonical(name: str) -> str:
    """A native game and its OpenSpiel twin share observations and actions: one name for both."""
    from plyground.games.native.state import NATIVE_GAMES

    for spec in NATIVE_GAMES.values():
        if name == f"openspiel:{spec.openspiel_name}":
            return spec.name
    return name
