"""Supervised distillation of recorded search into a policy-value network, with checkpoints and exact resume.

``distill(load_config("run.toml"))`` trains a ``PolicyValueNet`` on a dataset directory
(``plyground.datasets.store``): the loss is the soft-target cross-entropy of the masked policy plus
``value_weight`` times the value's mean squared error, optimised by AdamW on minibatches drawn by a
seeded ``torch.Generator`` from the training split; a held-out split is evaluated every
``eval_every`` steps.  Everything lands in the config's ``out`` directory:

- ``metrics.jsonl``: one JSON object per event, appended as it happens (see ``METRICS``);
- ``checkpoint.pt``: every ``checkpoint_every`` steps and at the end, written atomically: the
  network (``agents.neural.checkpoint.network_payload``, so ``load_network`` plays it) plus the
  optimizer, the step, every RNG state (torch, the minibatch generator, numpy, Python), the config
  and the dataset's content hash;
- ``model.pt``: the final network, with how it was trained in its ``info``.

Running the same config again resumes from ``checkpoint.pt``; the final weights equal those of an
uninterrupted run bit for bit (CPU torch with the config's thread count and deterministic
algorithms), and the metrics lines written after the checkpoint's step are dropped first, so no
step is counted twice.  A checkpoint made from another dataset or config refuses to resume (only
``train.steps`` may be raised, to train on); a finished run says so.

The optimisation itself is ``Trainer``, reusable on in-memory arrays (self-play trains it on its
replay buffer between generations)::

    trainer = Trainer(net, TrainSettings(batch_size=256, lr=1e-3), seed=0)
    stats = trainer.train_steps(arrays, 100)        # any object with TrainingArrays' numpy fields
    held_out = trainer.evaluate(other_arrays)       # policy_ce, value_mse, top1
    state = trainer.state_dict()                    # optimizer + generator + step (weights_only-safe)
    trainer.load_state_dict(state)

>>> import numpy as np, types
>>> from plyground.agents.neural.network import NetConfig, PolicyValueNet
>>> import torch; _ = torch.manual_seed(0)
>>> legal = np.array([[True, True, False]] * 4)
>>> arrays = types.SimpleNamespace(obs=np.eye(4, dtype=np.float32), player=np.zeros(4, np.int64), legal=legal,
...     policy=np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]], np.float32),
...     outcome=np.array([1, -1, 1, -1], np.float32), root_value=np.full(4, np.nan, np.float32))
>>> net = PolicyValueNet(NetConfig((4,), 3, width=16, blocks=1))
>>> trainer = Trainer(net, TrainSettings(batch_size=4, lr=1e-2), seed=0)
>>> _ = trainer.train_steps(arrays, 200)
>>> ev = trainer.evaluate(arrays); (trainer.step, ev["top1"], ev["value_mse"] < 0.05)
(200, 1.0, True)
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from plyground.games.errors import PlygroundError

VALUE_TARGETS = ("outcome", "root", "mix")
LR_SCHEDULES = ("constant", "cosine")
CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"
METRICS_NAME = "metrics.jsonl"
TRAINED_BY = "plyground train distill"
EVAL_CHUNK = 4096  # rows per forward pass when evaluating a split

# The metrics file's events (one JSON object a line; every line has "event", "step", "time" = seconds
# of training so far, summed over resumed runs, and "wall" = Unix time).  Self-play writes the same
# "train" and "eval" events, so `plyground train plot` draws either.
METRICS = {
    "train": "loss, policy_loss, value_loss: means over the steps since the previous train event; "
             "lr; steps_per_second",
    "eval": "held-out split: policy_ce (cross-entropy against the policy target), value_mse, top1 (share "
            "of rows where the network's argmax move has the target's largest probability), rows",
}


class TrainingError(PlygroundError, ValueError):
    """A training run that cannot start or continue: names the file, field or value and what is allowed."""


class TrainConfigError(TrainingError):
    """A distillation config with an unknown section or key, or a bad value."""


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True)
class DataSettings:
    """``[data]``: the dataset directory, the share of rows held out, the seed of the split."""

    dir: Path
    holdout: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class NetworkSettings:
    """``[network]``: the ``NetConfig`` fields a user chooses (the shape comes from the dataset)."""

    kind: str = "auto"
    width: int = 64
    blocks: int = 4


@dataclass(frozen=True)
class TrainSettings:
    """``[train]``: the optimisation.  ``value_target``: ``outcome`` (the game's result for the mover),
    ``root`` (the recorded search's root value; rows without one use the outcome) or ``mix``
    (``value_mix * root + (1 - value_mix) * outcome``).  ``lr_schedule``: ``constant``, or ``cosine``
    (from ``lr`` down to 0 over ``steps``, half a cosine: the last steps fine-tune).  ``threads``: torch
    CPU threads (the bit-exact resume holds for a fixed count)."""

    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    lr_schedule: str = "constant"
    weight_decay: float = 1e-4
    value_weight: float = 1.0
    value_target: str = "outcome"
    value_mix: float = 0.5
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 500
    seed: int = 0
    threads: int = 1


@dataclass(frozen=True)
class DistillConfig:
    """A whole ``train distill`` config; paths are absolute (relative ones resolve against the file's
    directory)."""

    data: DataSettings
    network: NetworkSettings
    train: TrainSettings
    out: Path
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (paths as strings): what checkpoints and ``model.pt`` store."""
        d = {"data": asdict(self.data), "network": asdict(self.network), "train": asdict(self.train),
             "out": str(self.out)}
        d["data"]["dir"] = str(self.data.dir)
        return d


HELP = {
    "out": "directory for checkpoint.pt, metrics.jsonl and model.pt (required)",
    "data": {
        "dir": "dataset directory written by 'plyground datasets build' (required)",
        "holdout": "share of rows held out for evaluation, in [0, 1) (default 0.1)",
        "seed": "integer seed of the held-out split (default 0)",
    },
    "network": {
        "kind": "auto | resnet | mlp (default auto: resnet for [C, H, W] observations)",
        "width": "channels (resnet) or hidden units (mlp), >= 1 (default 64)",
        "blocks": "residual blocks (resnet) or hidden layers (mlp), >= 0 (default 4)",
    },
    "train": {
        "steps": "optimizer steps in all, >= 1 (default 1000)",
        "batch_size": "rows per minibatch, >= 1 (default 256)",
        "lr": "AdamW learning rate, > 0 (default 0.001)",
        "lr_schedule": "constant | cosine (from lr down to 0 over steps; default constant)",
        "weight_decay": "AdamW weight decay, >= 0 (default 0.0001)",
        "value_weight": "weight of the value MSE beside the policy cross-entropy, >= 0 (default 1)",
        "value_target": "outcome | root | mix (default outcome)",
        "value_mix": "mix: weight of the root value, in [0, 1] (default 0.5)",
        "log_every": "steps between train events in metrics.jsonl, >= 1 (default 50)",
        "eval_every": "steps between held-out evaluations, >= 1 (default 500)",
        "checkpoint_every": "steps between checkpoints, >= 1 (default 500)",
        "seed": "integer seed of the initial weights and the minibatches (default 0)",
        "threads": "torch CPU threads, >= 1 (default 1)",
    },
}


def _allowed(table: Mapping[str, Any]) -> str:
    return "; ".join(f"{k} ({v if isinstance(v, str) else 'a table'})" for k, v in table.items())


def _bad(where: str, value: Any, allowed: str) -> TrainConfigError:
    return TrainConfigError(f"config field {where} = {value!r}: {allowed}")


def _int(where: str, v: Any, lo: int | None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
        raise _bad(where, v, "expected an integer" + (f" >= {lo}" if lo is not None else ""))
    return v


def _num(where: str, v: Any, lo: float, hi: float | None = None, lo_open: bool = False,
         hi_open: bool = False) -> float:
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    if ok:
        ok = (v > lo if lo_open else v >= lo) and (hi is None or (v < hi if hi_open else v <= hi))
    if not ok:
        rng = ("(" if lo_open else "[") + f"{lo:g}, " + ("inf)" if hi is None else f"{hi:g}" + (")" if hi_open else "]"))
        raise _bad(where, v, f"expected a number in {rng}")
    return float(v)


def _table(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    raw = data.get(name, {})
    if not isinstance(raw, Mapping):
        raise _bad(f"[{name}]", raw, "expected a table: " + _allowed(HELP[name]))
    unknown = sorted(set(raw) - set(HELP[name]))
    if unknown:
        raise TrainConfigError(f"config field {name}.{unknown[0]} is unknown; allowed in [{name}]: "
                               + _allowed(HELP[name]))
    return dict(raw)


def _path(value: Any, where: str, base: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _bad(where, value, "expected a path string")
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def config_from_dict(data: Mapping[str, Any], base_dir: str | Path = ".", source: str | None = None) -> DistillConfig:
    """Check a config given as plain data (a parsed TOML table); relative paths resolve against
    ``base_dir``.  Every bad section, key or value is a ``TrainConfigError`` naming it and what is
    allowed.

    >>> c = config_from_dict({"out": "run", "data": {"dir": "ds"}, "train": {"steps": 10}}, "/tmp")
    >>> (str(c.out), c.train.steps, c.network.kind)
    ('/tmp/run', 10, 'auto')
    >>> try:
    ...     config_from_dict({"out": "run", "data": {"dir": "ds"}, "train": {"stpes": 10}})
    ... except TrainConfigError as e:
    ...     print(str(e)[:64])
    config field train.stpes is unknown; allowed in [train]: steps (
    """
    if not isinstance(data, Mapping):
        raise TrainConfigError(f"a distill config is a table of sections; got {data!r}")
    unknown = sorted(set(data) - set(HELP))
    if unknown:
        raise TrainConfigError(f"config field {unknown[0]!r} is unknown; allowed: {_allowed(HELP)}")
    base = Path(base_dir).expanduser().resolve()
    if "out" not in data:
        raise TrainConfigError(f"config field 'out' is missing: {HELP['out']}")
    out = _path(data["out"], "out", base)

    d = _table(data, "data")
    if "dir" not in d:
        raise TrainConfigError(f"config field data.dir is missing: {HELP['data']['dir']}")
    ds = DataSettings(dir=_path(d["dir"], "data.dir", base),
                      holdout=_num("data.holdout", d.get("holdout", 0.1), 0.0, 1.0, hi_open=True),
                      seed=_int("data.seed", d.get("seed", 0), None))

    n = _table(data, "network")
    kind = n.get("kind", "auto")
    from plyground.agents.neural.network import KINDS
    if kind not in KINDS:
        raise _bad("network.kind", kind, f"allowed: {', '.join(KINDS)}")
    ns = NetworkSettings(kind=kind, width=_int("network.width", n.get("width", 64), 1),
                         blocks=_int("network.blocks", n.get("blocks", 4), 0))

    t = _table(data, "train")
    dflt = TrainSettings()
    sched = t.get("lr_schedule", dflt.lr_schedule)
    if sched not in LR_SCHEDULES:
        raise _bad("train.lr_schedule", sched, f"allowed: {', '.join(LR_SCHEDULES)}")
    vt = t.get("value_target", dflt.value_target)
    if vt not in VALUE_TARGETS:
        raise _bad("train.value_target", vt, f"allowed: {', '.join(VALUE_TARGETS)}")
    ts = TrainSettings(
        steps=_int("train.steps", t.get("steps", dflt.steps), 1),
        batch_size=_int("train.batch_size", t.get("batch_size", dflt.batch_size), 1),
        lr=_num("train.lr", t.get("lr", dflt.lr), 0.0, lo_open=True),
        lr_schedule=sched,
        weight_decay=_num("train.weight_decay", t.get("weight_decay", dflt.weight_decay), 0.0),
        value_weight=_num("train.value_weight", t.get("value_weight", dflt.value_weight), 0.0),
        value_target=vt,
        value_mix=_num("train.value_mix", t.get("value_mix", dflt.value_mix), 0.0, 1.0),
        log_every=_int("train.log_every", t.get("log_every", dflt.log_every), 1),
        eval_every=_int("train.eval_every", t.get("eval_every", dflt.eval_every), 1),
        checkpoint_every=_int("train.checkpoint_every", t.get("checkpoint_every", dflt.checkpoint_every), 1),
        seed=_int("train.seed", t.get("seed", dflt.seed), None),
        threads=_int("train.threads", t.get("threads", dflt.threads), 1))
    return DistillConfig(data=ds, network=ns, train=ts, out=out, source=source)


def load_config(path: str | Path) -> DistillConfig:
    """Read and check a distill config (TOML, never evaluated); relative paths in it resolve against
    the file's directory."""
    p = Path(path)
    if not p.is_file():
        raise TrainConfigError(f"no config file at {str(path)!r}" if not p.exists()
                               else f"{str(path)!r} is not a file (a distill config is one TOML file)")
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise TrainConfigError(f"{str(path)!r} is not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TrainConfigError(f"cannot read {str(path)!r}: {e}") from None
    return config_from_dict(data, p.resolve().parent, source=str(p))


# ---------------------------------------------------------------- tensors and the trainer
@dataclass
class TensorData:
    """Training rows as torch tensors, built once from numpy arrays (no per-row Python): ``obs``
    float32 ``[N, *obs_shape]``, ``player`` int64 ``[N]``, ``legal`` bool ``[N, A]``, ``policy``
    float32 ``[N, A]``, ``value`` float32 ``[N]`` (the value target chosen by the settings)."""

    obs: Any
    player: Any
    legal: Any
    policy: Any
    value: Any

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @classmethod
    def from_arrays(cls, arrays: Any, settings: "TrainSettings", rows: np.ndarray | None = None) -> "TensorData":
        """From an object with ``TrainingArrays``' numpy fields (``obs``, ``player``, ``legal``,
        ``policy``, ``outcome``, ``root_value``); ``rows``: the row indices to take (default all)."""
        import torch

        def take(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a)
            return a if rows is None else a[rows]

        outcome = take(arrays.outcome).astype(np.float32)
        if settings.value_target == "outcome":
            value = outcome
        else:
            root = take(arrays.root_value).astype(np.float32)
            root = np.where(np.isnan(root), outcome, root)  # no recorded search value: the outcome
            value = root if settings.value_target == "root" else (
                settings.value_mix * root + (1.0 - settings.value_mix) * outcome).astype(np.float32)
        return cls(obs=torch.from_numpy(np.ascontiguousarray(take(arrays.obs), dtype=np.float32)),
                   player=torch.from_numpy(np.ascontiguousarray(take(arrays.player), dtype=np.int64)),
                   legal=torch.from_numpy(np.ascontiguousarray(take(arrays.legal), dtype=np.bool_)),
                   policy=torch.from_numpy(np.ascontiguousarray(take(arrays.policy), dtype=np.float32)),
                   value=torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))


@dataclass
class StepStats:
    """Means over the steps of one ``Trainer.train_steps`` call."""

    steps: int
    loss: float
    policy_loss: float
    value_loss: float
    seconds: float


def losses(net, batch: TensorData, value_weight: float):
    """(total, policy cross-entropy, value MSE) of ``net`` on ``batch``, as tensors.  The policy
    term is the soft-target cross-entropy over the masked logits (illegal actions have target 0 and
    a finite logit, so they add exactly 0)."""
    import torch

    logits, value = net(batch.obs, batch.player, batch.legal)
    policy_loss = -(batch.policy * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
    value_loss = torch.mean((value - batch.value) ** 2)
    return policy_loss + value_weight * value_loss, policy_loss, value_loss


class Trainer:
    """AdamW on a ``PolicyValueNet`` with minibatches drawn (with replacement) by its own seeded
    ``torch.Generator``; everything it needs to continue exactly is in ``state_dict()``.

    ``train_steps(data, n)`` runs ``n`` steps on ``data`` (a ``TensorData`` or an object with
    ``TrainingArrays``' fields, turned into tensors once per call) and returns their mean losses;
    ``evaluate(data)`` measures a split without changing anything (eval mode, no gradients, no random
    numbers).  ``step`` counts every step taken, over calls and resumes.  A ``cosine`` schedule spans
    ``settings.steps`` steps in all; a trainer asked to go past them refuses (``constant`` trains on).
    """

    def __init__(self, net, settings: TrainSettings, seed: int = 0) -> None:
        import torch

        self.net = net
        self.settings = settings
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.step = 0

    def lr_at(self, step: int) -> float:
        """The learning rate of the update that follows ``step`` updates (a function of the step only,
        so a resumed run uses the same rates)."""
        s = self.settings
        if s.lr_schedule == "cosine":
            return s.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, s.steps) / s.steps))
        return s.lr

    def tensors(self, data: Any) -> TensorData:
        return data if isinstance(data, TensorData) else TensorData.from_arrays(data, self.settings)

    def train_steps(self, data: Any, n_steps: int,
                    on_step: Callable[[int, float, float, float], None] | None = None) -> StepStats:
        """``n_steps`` optimizer steps on minibatches of ``data``; ``on_step(step, loss, policy_loss,
        value_loss)`` after each (``step`` is the trainer's count after it)."""
        import torch

        data = self.tensors(data)
        n = len(data)
        if n < 1:
            raise TrainingError("cannot train on an empty set of rows")
        if n_steps < 0:
            raise TrainingError(f"n_steps must be >= 0; got {n_steps}")
        s = self.settings
        if s.lr_schedule != "constant" and self.step + n_steps > s.steps:
            raise TrainingError(f"the {s.lr_schedule} learning-rate schedule spans train.steps = {s.steps} steps; "
                                f"this trainer is at step {self.step} and was asked for {n_steps} more (use "
                                "lr_schedule = \"constant\" to train on indefinitely)")
        self.net.train()
        t0 = time.perf_counter()
        tot = pol = val = 0.0
        for _ in range(n_steps):
            lr = self.lr_at(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            idx = torch.randint(n, (s.batch_size,), generator=self.generator)
            batch = TensorData(data.obs[idx], data.player[idx], data.legal[idx], data.policy[idx], data.value[idx])
            loss, pl, vl = losses(self.net, batch, s.value_weight)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            lf, pf, vf = loss.item(), pl.item(), vl.item()
            tot, pol, val = tot + lf, pol + pf, val + vf
            if on_step is not None:
                on_step(self.step, lf, pf, vf)
        k = max(n_steps, 1)
        return StepStats(n_steps, tot / k, pol / k, val / k, time.perf_counter() - t0)

    def evaluate(self, data: Any) -> dict[str, float]:
        """``policy_ce``, ``value_mse``, ``top1`` (share of rows where the network's argmax move has
        the target's largest probability: ties in the target, e.g. a set of proven-best moves, all
        count) and ``rows`` on ``data``."""
        import torch

        data = self.tensors(data)
        n = len(data)
        if n == 0:
            return {"policy_ce": float("nan"), "value_mse": float("nan"), "top1": float("nan"), "rows": 0}
        was_training = self.net.training
        self.net.eval()
        ce = mse = hits = 0.0
        with torch.no_grad():
            for a in range(0, n, EVAL_CHUNK):
                sl = slice(a, a + EVAL_CHUNK)
                logits, value = self.net(data.obs[sl], data.player[sl], data.legal[sl])
                target = data.policy[sl]
                ce += float(-(target * torch.log_softmax(logits, dim=-1)).sum())
                mse += float(((value - data.value[sl]) ** 2).sum())
                chosen = target.gather(1, logits.argmax(dim=-1, keepdim=True)).squeeze(1)
                hits += float((chosen >= target.max(dim=-1).values).sum())
        self.net.train(was_training)
        return {"policy_ce": ce / n, "value_mse": mse / n, "top1": hits / n, "rows": n}

    def state_dict(self) -> dict[str, Any]:
        """Optimizer state, minibatch generator state and step (loadable with ``weights_only=True``)."""
        return {"step": int(self.step), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.step = int(state["step"])


# ---------------------------------------------------------------- RNG states (weights_only-safe)
def rng_states(generator=None) -> dict[str, Any]:
    """Every RNG state a run touches, as tensors, lists and numbers: torch's global generator,
    ``generator`` (the minibatch sampler), numpy's and Python's global generators."""
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, pstate, gauss_next = random.getstate()
    out = {"torch": torch.get_rng_state(),
           "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                     "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
           "python": {"version": int(version), "state": [int(x) for x in pstate], "gauss_next": gauss_next}}
    if generator is not None:
        out["generator"] = generator.get_state()
    return out


def set_rng_states(states: Mapping[str, Any], generator=None) -> None:
    import torch

    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if generator is not None and "generator" in states:
        generator.set_state(states["generator"])


# ---------------------------------------------------------------- metrics file
def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The events of a metrics file (a torn last line, left by a kill mid-write, is skipped)."""
    out = []
    p = Path(path)
    if not p.exists():
        return out
    with open(p, encoding="utf-8") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(ev, dict):
                out.append(ev)
    return out


def _truncate_metrics(path: Path, keep_through: int | None) -> None:
    """Keep only the events at steps <= ``keep_through`` (None: none), rewritten atomically."""
    if not path.exists():
        return
    kept = [] if keep_through is None else [e for e in read_metrics(path)
                                            if isinstance(e.get("step"), int) and e["step"] <= keep_through]
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for e in kept:
            f.write(json.dumps(e) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _Metrics:
    def __init__(self, path: Path) -> None:
        self.f = open(path, "a", encoding="utf-8")

    def write(self, event: dict[str, Any]) -> None:
        self.f.write(json.dumps(event) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()


# ---------------------------------------------------------------- distill
@dataclass
class TrainStatus:
    """What a progress callback sees: after loading (``phase="start"``), after every step
    (``"train"``), after each held-out evaluation (``"eval"``) and at the end (``"done"``)."""

    phase: str
    step: int
    steps: int
    start_step: int
    loss: float | None = None
    eval: dict[str, float] | None = None
    rows_train: int = 0
    rows_holdout: int = 0


@dataclass
class DistillResult:
    """How a ``distill`` call ended.  ``already_finished``: the checkpoint had reached ``steps``
    before this call (nothing was trained); ``start_step``: the step it began from (0: a fresh run)."""

    out: Path
    model: Path
    checkpoint: Path
    metrics: Path
    game: str
    steps: int
    start_step: int
    already_finished: bool
    rows_train: int
    rows_holdout: int
    dataset_hash: str
    seconds: float
    final_loss: float | None = None
    final_eval: dict[str, float] | None = None
    info: dict[str, Any] = field(default_factory=dict)


_COMPARED = ("data.holdout", "data.seed", "network.kind", "network.width", "network.blocks") + tuple(
    f"train.{f.name}" for f in fields(TrainSettings) if f.name != "steps")


def _flat(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{sec}.{k}": v for sec, tab in cfg.items() if isinstance(tab, Mapping) for k, v in tab.items()}


def _check_resumable(payload: Mapping[str, Any], config: DistillConfig, dataset_hash: str, ckpt: Path) -> None:
    old_hash = payload.get("dataset_hash")
    if old_hash != dataset_hash:
        raise TrainingError(
            f"{ckpt} was trained on a dataset with content hash {str(old_hash)[:16]}…, but {config.data.dir} "
            f"now has {dataset_hash[:16]}…; it cannot resume on other data: set a new out directory "
            f"(or delete {config.out})")
    old, new = _flat(payload.get("config") or {}), _flat(config.to_dict())
    # a setting added after the checkpoint was made ran with its default there
    defaults = {f"train.{f.name}": f.default for f in fields(TrainSettings)}
    for k in _COMPARED:
        if k not in old and k in defaults:
            old[k] = defaults[k]
    diff = [k for k in _COMPARED if old.get(k) != new.get(k)]
    if not diff and config.train.lr_schedule != "constant" and old.get("train.steps") != config.train.steps:
        diff = ["train.steps"]  # the schedule's rates depend on the number of steps
    if diff:
        shown = ", ".join(f"{k} = {old.get(k)!r} there, {new.get(k)!r} here" for k in diff)
        raise TrainingError(f"{ckpt} was trained with another config ({shown}); it resumes only with the same "
                            "settings (train.steps may be raised when train.lr_schedule is constant): set a new out "
                            f"directory (or delete {config.out})")


class _Deterministic:
    """Fix torch's CPU threads and ask for deterministic algorithms for the run; restore both after."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def __enter__(self):
        import torch
        self.old = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
        torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(True)
        return self

    def __exit__(self, *exc) -> None:
        import torch
        torch.set_num_threads(self.old[0])
        torch.use_deterministic_algorithms(self.old[1])


def _dataset_summary(manifest: Mapping[str, Any], data_dir: Path) -> dict[str, Any]:
    keys = ("game", "obs_shape", "num_actions", "rows", "positions", "sources", "filters", "policy", "augment",
            "content_hash", "created")
    s = {k: manifest[k] for k in keys if k in manifest}
    s["dir"] = str(data_dir)
    return json.loads(json.dumps(s))  # plain JSON data only: the checkpoint is read with weights_only


def _load_dataset(config: DistillConfig):
    from plyground.datasets.store import load_arrays, read_manifest

    d = config.data.dir
    if not d.exists():
        raise TrainingError(f"config field data.dir: no dataset directory at {str(d)!r} "
                            "(build one with 'plyground datasets build')")
    if not d.is_dir():
        raise TrainingError(f"config field data.dir: {str(d)!r} is not a directory (a dataset is a directory "
                            "with manifest.json and data.parquet)")
    manifest = read_manifest(d)
    arrays = load_arrays(d)
    return manifest, arrays


def split_rows(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows): a seeded permutation, ``round(holdout * n)`` rows held out (at
    least one when ``holdout > 0`` and ``n >= 2``); both sorted.

    >>> tr, ho = split_rows(10, 0.2, 0); (len(tr), len(ho), sorted(set(tr) | set(ho)) == list(range(10)))
    (8, 2, True)
    """
    perm = np.random.default_rng(seed).permutation(n)
    k = int(round(holdout * n))
    if holdout > 0 and n >= 2:
        k = max(k, 1)
    k = min(k, n - 1) if n >= 1 else 0
    return np.sort(perm[k:]), np.sort(perm[:k])


def distill(config: DistillConfig, progress: Callable[[TrainStatus], None] | None = None) -> DistillResult:
    """Train (or resume, or report finished) the run ``config`` describes; see the module docstring.
    ``progress(status)`` is called as it goes (a progress bar's hook)."""
    import torch

    from plyground.agents.neural.checkpoint import (
        CheckpointError, atomic_save, network_payload, read_checkpoint, save_network,
    )
    from plyground.agents.neural.network import NetConfig, NetConfigError, PolicyValueNet

    t_start = time.perf_counter()
    manifest, arrays = _load_dataset(config)
    dataset_hash = str(manifest.get("content_hash") or "")
    game = str(manifest["game"])
    out = config.out
    if out.exists() and not out.is_dir():
        raise TrainingError(f"config field out: {str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, model_path, metrics_path = out / CHECKPOINT_NAME, out / MODEL_NAME, out / METRICS_NAME
    for name in (CHECKPOINT_NAME, MODEL_NAME, METRICS_NAME):  # temporaries of a write a kill interrupted
        for stale in out.glob(name + ".tmp*"):
            stale.unlink(missing_ok=True)
    ts = config.train
    try:
        net_config = NetConfig(obs_shape=tuple(manifest["obs_shape"]), num_actions=int(manifest["num_actions"]),
                               num_players=int(manifest.get("num_players", 2)), kind=config.network.kind,
                               width=config.network.width, blocks=config.network.blocks)
    except NetConfigError as e:
        raise TrainConfigError(f"config section [network]: {e}") from None

    train_rows, hold_rows = split_rows(len(arrays.outcome), config.data.holdout, config.data.seed)
    if len(train_rows) == 0:
        raise TrainingError(f"the dataset in {config.data.dir} has no rows to train on")
    summary = _dataset_summary(manifest, config.data.dir)

    with _Deterministic(ts.threads):
        torch.manual_seed(ts.seed)
        net = PolicyValueNet(net_config)
        trainer = Trainer(net, ts, seed=ts.seed)
        elapsed = 0.0
        start_step = 0
        if ckpt_path.exists():
            try:
                payload = read_checkpoint(ckpt_path)
            except CheckpointError as e:
                raise TrainingError(f"cannot resume: {e}; set a new out directory (or delete {ckpt_path})") from None
            _check_resumable(payload, config, dataset_hash, ckpt_path)
            net.load_state_dict(payload["state_dict"])
            trainer.load_state_dict({"step": payload["step"], "optimizer": payload["optimizer"],
                                     "generator": payload["rng"]["generator"]})
            set_rng_states(payload["rng"])
            elapsed = float(payload.get("elapsed", 0.0))
            start_step = trainer.step

        def model_info(final_eval: dict | None, final_loss: float | None) -> dict[str, Any]:
            return {"trained_by": TRAINED_BY, "steps": int(trainer.step), "dataset": summary,
                    "dataset_hash": dataset_hash, "config": config.to_dict(), "rows_train": int(len(train_rows)),
                    "rows_holdout": int(len(hold_rows)), "final_loss": final_loss,
                    "final_eval": None if final_eval is None else dict(final_eval),
                    "torch": str(torch.__version__), "plyground": _version()}

        def result(finished: bool, final_eval=None, final_loss=None) -> DistillResult:
            return DistillResult(out=out, model=model_path, checkpoint=ckpt_path, metrics=metrics_path, game=game,
                                 steps=trainer.step, start_step=start_step, already_finished=finished,
                                 rows_train=len(train_rows), rows_holdout=len(hold_rows), dataset_hash=dataset_hash,
                                 seconds=time.perf_counter() - t_start, final_loss=final_loss,
                                 final_eval=final_eval, info=model_info(final_eval, final_loss))

        if start_step >= ts.steps:
            # Finished before: (re)write model.pt if a kill came between the last checkpoint and it.
            info = dict(payload.get("info") or {})
            final_eval, final_loss = info.get("final_eval"), info.get("final_loss")
            if not _model_matches(model_path, start_step):
                save_network(model_path, net, game, model_info(final_eval, final_loss))
            if progress:
                progress(TrainStatus("done", start_step, ts.steps, start_step, final_loss, final_eval))
            return result(True, final_eval, final_loss)

        _truncate_metrics(metrics_path, start_step if start_step > 0 else None)
        train_data = TensorData.from_arrays(arrays, ts, train_rows)
        hold_data = TensorData.from_arrays(arrays, ts, hold_rows) if len(hold_rows) else None
        metrics = _Metrics(metrics_path)
        status = TrainStatus("start", start_step, ts.steps, start_step, rows_train=len(train_rows),
                             rows_holdout=len(hold_rows))
        if progress:
            progress(status)
        seg_start = time.perf_counter()

        def now() -> float:
            return elapsed + (time.perf_counter() - seg_start)

        def evaluate() -> dict[str, float]:
            ev = trainer.evaluate(hold_data)
            metrics.write({"event": "eval", "step": trainer.step, "time": round(now(), 4), "wall": time.time(), **ev})
            status.phase, status.eval = "eval", ev
            if progress:
                progress(status)
            return ev

        def save_checkpoint(final_eval, final_loss) -> None:
            payload = network_payload(net, game, model_info(final_eval, final_loss))
            payload.update({"step": int(trainer.step), "optimizer": trainer.optimizer.state_dict(),
                            "rng": rng_states(trainer.generator), "config": config.to_dict(),
                            "dataset_hash": dataset_hash, "elapsed": now()})
            atomic_save(payload, ckpt_path)

        last_eval: dict[str, float] | None = None
        last_loss: float | None = None
        window = [0.0, 0.0, 0.0, 0]
        window_t = time.perf_counter()

        def on_step(step: int, lf: float, pf: float, vf: float) -> None:
            window[0] += lf
            window[1] += pf
            window[2] += vf
            window[3] += 1
            status.phase, status.step, status.loss = "train", step, lf
            if progress:
                progress(status)

        try:
            if start_step == 0 and hold_data is not None:
                last_eval = evaluate()
            while trainer.step < ts.steps:
                # run up to the next step where something is logged, evaluated or saved
                s = trainer.step
                nxt = min(ts.steps, *(s + e - s % e for e in (ts.log_every, ts.eval_every, ts.checkpoint_every)))
                trainer.train_steps(train_data, nxt - s, on_step=on_step)
                step = trainer.step
                final = step >= ts.steps
                if step % ts.log_every == 0 or final:
                    k = max(window[3], 1)
                    dt = time.perf_counter() - window_t
                    last_loss = window[0] / k
                    metrics.write({"event": "train", "step": step, "time": round(now(), 4), "wall": time.time(),
                                   "loss": last_loss, "policy_loss": window[1] / k, "value_loss": window[2] / k,
                                   "lr": trainer.lr_at(step - 1), "steps_per_second": window[3] / dt if dt > 0 else None})
                    window[:] = [0.0, 0.0, 0.0, 0]
                    window_t = time.perf_counter()
                if hold_data is not None and (step % ts.eval_every == 0 or final):
                    last_eval = evaluate()
                if step % ts.checkpoint_every == 0 or final:
                    save_checkpoint(last_eval if final else None, last_loss if final else None)
            save_network(model_path, net, game, model_info(last_eval, last_loss))
        finally:
            metrics.close()
        status.phase = "done"
        if progress:
            progress(status)
        return result(False, last_eval, last_loss)


def _model_matches(path: Path, step: int) -> bool:
    from plyground.agents.neural.checkpoint import CheckpointError, read_checkpoint
    if not path.exists():
        return False
    try:
        return (read_checkpoint(path).get("info") or {}).get("steps") == step
    except CheckpointError:
        return False


def _version() -> str:
    from plyground import __version__
    return __version__
