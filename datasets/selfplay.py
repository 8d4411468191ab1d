"""Expert iteration (AlphaZero-style self-play) with every game recorded, exact resume and rated generations.

``selfplay(load_selfplay_config("run.toml"))`` repeats, for each generation ``g``:

1. **Self-play.** The generation's network (``OUT/generations/gen-<g>.pt``) plays
   ``selfplay.games`` games against itself with PUCT (network prior and value; Dirichlet noise at
   the root; moves sampled in proportion to visits for the first ``temperature_plies`` plies, then
   the most visited).  On native games the games of a task (``lockstep`` of them) advance in
   lockstep, so one network call evaluates the leaves of all of them (``search.native.lockstep``);
   other games (any two-player zero-sum OpenSpiel game with an observation tensor) play one after
   another with the plain-Python PUCT, ``leaves`` leaves per network call.  Tasks run on the arena's
   backends (a local process pool or Ray).  Every game and move, with its search's visits and
   values, is recorded in the run's SQLite record (``OUT/record.db``, tournament
   ``<name>-selfplay-g<g>``), exactly like an arena game: it can be replayed, exported, turned into
   datasets and rated.
2. **Training.** The generation's games become a dataset (``datasets.build_dataset``: visit
   distributions, the mover's outcome, symmetric copies) under ``OUT/data/gen-<g>``; the replay
   buffer is the latest ``buffer.positions`` rows of the newest generations (a FIFO window); the
   ``Trainer`` takes ``train.steps`` steps on it and the result is generation ``g + 1``.
3. **Evaluation.** Generation ``g + 1`` (as ``neural-mcts`` with ``evaluate.sims``) meets the
   fixed references and the previous generation in an arena gauntlet recorded in the same
   record; all evaluation games so far are rated jointly (Bradley-Terry with bootstrap
   intervals, the first reference at 0) and ``OUT/generations.jsonl`` is rewritten with one line
   per generation: Elo, interval, hours of training, games, positions.

**Resume.** ``OUT/checkpoint.pt`` (written atomically at each phase boundary) holds the network,
the trainer (optimizer, minibatch generator, step), the generation and phase, and the config.
Killed at any moment (SIGKILL included), the same command resumes from the last completed step:
self-play games already recorded are kept and not replayed (game ids are fixed by generation,
task and index; a task's games commit together), the buffer is rebuilt from the record, an
interrupted training phase restarts from its start state (deterministic), and an interrupted
evaluation resumes as any arena tournament.  With one worker and a fixed seed the final weights
equal an uninterrupted run's bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from plyground.games.errors import PlygroundError

CHECKPOINT_NAME = "checkpoint.pt"
RECORD_NAME = "record.db"
GENERATIONS_NAME = "generations.jsonl"
METRICS_NAME = "metrics.jsonl"


class SelfPlayError(PlygroundError, ValueError):
    """A self-play config or run that cannot go on (names the field or file and what is allowed)."""


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True)
class SelfPlaySettings:
    """``[selfplay]``: games per generation, games per lockstep task, the search, the exploration."""

    games: int = 128
    lockstep: int = 64
    sims: int = 100
    c: float = 1.5
    leaves: int = 8
    dirichlet_alpha: float = 1.0
    dirichlet_frac: float = 0.25
    temperature_plies: int = 10
    workers: int = 1
    backend: str = "local"


@dataclass(frozen=True)
class BufferSettings:
    """``[buffer]``: the FIFO window of the latest positions trained on, and symmetry augmentation."""

    positions: int = 100_000
    augment: bool = True


@dataclass(frozen=True)
class EvaluateSettings:
    """``[evaluate]``: each generation's gauntlet (``games`` per pairing, colour-swapped; 0 = none)."""

    games: int = 20
    sims: int = 200
    references: tuple = ("mcts:sims=200", "mcts:sims=2000", "minimax:depth=5")
    previous: bool = True
    every: int = 1
    workers: int = 1
    move_time: float = 0.0   # seconds per move (0: no clock)


@dataclass(frozen=True)
class SelfPlayConfig:
    game: str
    out: Path
    name: str = "selfplay"
    seed: int = 0
    generations: int = 10
    hours: float = 0.0       # stop once self-play and training have taken this long (0: no limit)
    lr_by_generation: tuple = ()   # ((generation, lr), ...): the learning rate from that generation on
    network: Any = None
    selfplay: SelfPlaySettings = SelfPlaySettings()
    buffer: BufferSettings = BufferSettings()
    train: Any = None
    evaluate: EvaluateSettings = EvaluateSettings()

    def to_dict(self) -> dict[str, Any]:
        d = {"game": self.game, "out": str(self.out), "name": self.name, "seed": self.seed,
             "generations": self.generations, "hours": self.hours,
             "lr_by_generation": [list(p) for p in self.lr_by_generation]}
        for k in ("network", "selfplay", "buffer", "train", "evaluate"):
            v = asdict(getattr(self, k))
            d[k] = {a: (list(b) if isinstance(b, tuple) else str(b) if isinstance(b, Path) else b) for a, b in v.items()}
        return d


TOP_KEYS = {"game": "game name (connect4, tictactoe; other games with observations use the plain-Python search)",
            "out": "run directory (checkpoint, record, datasets, generations)", "name": "run name (record tournaments)",
            "seed": "seed of the network's initialisation, the self-play and the training",
            "generations": "generations to run (raise it and run again to go on)",
            "hours": "stop at the first generation boundary after this many hours of self-play and training "
                     "(evaluation not counted; 0: no limit)",
            "lr_by_generation": "[[generation, lr], ...]: the learning rate from that generation's training on "
                                "(before the first: train.lr); may change on resume, for generations not yet trained"}


def _check_value(where: str, default: Any, v: Any) -> Any:
    """``v`` converted to the type of ``default``, or SelfPlayError naming ``where``."""
    if isinstance(default, bool):
        if not isinstance(v, bool):
            raise SelfPlayError(f"config field {where!r}: {v!r} is not true/false")
        return v
    if isinstance(default, int):
        if isinstance(v, bool) or not isinstance(v, int):
            raise SelfPlayError(f"config field {where!r}: {v!r} is not an integer")
        return v
    if isinstance(default, float):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SelfPlayError(f"config field {where!r}: {v!r} is not a finite number")
        return float(v)
    if isinstance(default, tuple):
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise SelfPlayError(f"config field {where!r}: {v!r} is not a list of agent specs (strings)")
        return tuple(v)
    if isinstance(default, str):
        if not isinstance(v, str):
            raise SelfPlayError(f"config field {where!r}: {v!r} is not a string")
        return v
    return v


def _lr_steps(raw: Any) -> tuple:
    ok = isinstance(raw, list) and all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[0], int) and not isinstance(p[0], bool) and p[0] >= 0
        and isinstance(p[1], (int, float)) and not isinstance(p[1], bool) and math.isfinite(p[1]) and p[1] > 0
        for p in raw)
    if not ok:
        raise SelfPlayError(f"config field 'lr_by_generation': {raw!r} is not a list of [generation, lr] pairs "
                            "(generation >= 0, lr > 0)")
    return tuple(sorted((int(g), float(lr)) for g, lr in raw))


def lr_for(cfg: "SelfPlayConfig", generation: int) -> float:
    """The learning rate of the training that turns ``generation`` into the next one."""
    lr = cfg.train.lr
    for g, value in cfg.lr_by_generation:
        if generation >= g:
            lr = value
    return lr


def _section(cls, data: Mapping[str, Any], name: str):
    raw = data.get(name, {})
    if not isinstance(raw, Mapping):
        raise SelfPlayError(f"config section [{name}] must be a table; got {raw!r}")
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise SelfPlayError(f"config section [{name}]: unknown key {unknown[0]!r}; allowed: {', '.join(names)}")
    defaults = cls()
    kw = {k: _check_value(f"{name}.{k}", getattr(defaults, k), v) for k, v in raw.items()}
    return cls(**kw)


def config_from_dict(data: Mapping[str, Any], base_dir: str | Path = ".") -> SelfPlayConfig:
    """Check a parsed TOML table and return the config (relative ``out`` resolves against ``base_dir``)."""
    from plyground.datasets.training import NetworkSettings, TrainSettings

    allowed = set(TOP_KEYS) | {"network", "selfplay", "buffer", "train", "evaluate"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SelfPlayError(f"unknown config key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    for k in ("game", "out"):
        if not isinstance(data.get(k), str) or not data.get(k):
            raise SelfPlayError(f"config field {k!r} is required: {TOP_KEYS[k]}")
    out = Path(data["out"]).expanduser()
    if not out.is_absolute():
        out = Path(base_dir) / out
    cfg = SelfPlayConfig(
        game=data["game"], out=out.resolve(), name=_check_value("name", "", data.get("name", "selfplay")),
        seed=_check_value("seed", 0, data.get("seed", 0)),
        generations=_check_value("generations", 0, data.get("generations", 10)),
        hours=_check_value("hours", 0.0, data.get("hours", 0.0)),
        lr_by_generation=_lr_steps(data.get("lr_by_generation", [])),
        network=_section(NetworkSettings, data, "network"), selfplay=_section(SelfPlaySettings, data, "selfplay"),
        buffer=_section(BufferSettings, data, "buffer"), train=_section(TrainSettings, data, "train"),
        evaluate=_section(EvaluateSettings, data, "evaluate"))
    sp = cfg.selfplay
    for where, v, lo in (("generations", cfg.generations, 1), ("selfplay.games", sp.games, 1),
                         ("selfplay.lockstep", sp.lockstep, 1), ("selfplay.sims", sp.sims, 1),
                         ("selfplay.leaves", sp.leaves, 1), ("selfplay.workers", sp.workers, 1),
                         ("selfplay.temperature_plies", sp.temperature_plies, 0),
                         ("buffer.positions", cfg.buffer.positions, 1), ("evaluate.games", cfg.evaluate.games, 0),
                         ("evaluate.sims", cfg.evaluate.sims, 1), ("evaluate.every", cfg.evaluate.every, 1),
                         ("evaluate.workers", cfg.evaluate.workers, 1), ("train.steps", cfg.train.steps, 0)):
        if v < lo:
            raise SelfPlayError(f"config field {where!r}: {v} must be >= {lo}")
    if cfg.hours < 0:
        raise SelfPlayError(f"config field 'hours': {cfg.hours} must be >= 0 (0: no limit)")
    if getattr(cfg.train, "lr_schedule", "constant") != "constant":
        raise SelfPlayError(f"config field 'train.lr_schedule': {cfg.train.lr_schedule!r}; self-play trains a "
                            "constant rate per generation (a cosine decay spans one distill run): use constant")
    if sp.backend not in ("local", "ray"):
        raise SelfPlayError(f"config field 'selfplay.backend': {sp.backend!r} is not one of local, ray")
    if not 0.0 <= sp.dirichlet_frac <= 1.0 or sp.dirichlet_alpha <= 0:
        raise SelfPlayError("config fields 'selfplay.dirichlet_alpha' must be > 0 and 'selfplay.dirichlet_frac' in [0, 1]")
    if cfg.evaluate.games % 2:
        raise SelfPlayError(f"config field 'evaluate.games': {cfg.evaluate.games} must be even (colour-swapped pairs)")
    from plyground import games
    try:
        g = games.make(cfg.game)
    except PlygroundError as e:
        raise SelfPlayError(f"config field 'game': {e}") from None
    from plyground.games.traits import traits
    t = traits(g)
    if t.num_players != 2 or not t.perfect_information or t.chance or not t.win_draw_loss or t.simultaneous:
        raise SelfPlayError(f"config field 'game': self-play searches two-player zero-sum games of perfect "
                            f"information without chance; {cfg.game} is not one")
    try:
        g.observation_tensor_shape()
        g.new_initial_state().observation_tensor()
    except Exception as e:  # noqa: BLE001 - any adapter's way of saying it has none
        raise SelfPlayError(f"config field 'game': {cfg.game} has no observation tensor for a network ({e})") from None
    if cfg.evaluate.games:
        from plyground import agents
        for spec in cfg.evaluate.references:
            try:
                agents.make(spec)
            except PlygroundError as e:
                raise SelfPlayError(f"config field 'evaluate.references': {e}") from None
    return cfg


def load_selfplay_config(path: str | Path) -> SelfPlayConfig:
    p = Path(path)
    if not p.is_file():
        raise SelfPlayError(f"no self-play config at {str(path)!r}")
    try:
        data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SelfPlayError(f"{str(path)!r} is not valid TOML: {e}") from None
    return config_from_dict(data, base_dir=p.parent)


# ---------------------------------------------------------------- one self-play task (runs in a worker)
_NETS: dict[tuple, Any] = {}


def _evaluator(model: str, game):
    from plyground.agents.neural.checkpoint import load_network
    from plyground.agents.neural.evaluator import NetEvaluator

    st = os.stat(model)
    key = (model, st.st_mtime_ns, st.st_size)
    ev = _NETS.get(key)
    if ev is None:
        _NETS.clear()
        net, _ = load_network(model, game=game)
        ev = NetEvaluator(net, game, threads=1)
        _NETS[key] = ev
    return ev


def play_selfplay_task(task: dict) -> dict:
    """Play ``task["ids"]`` games in lockstep with the network ``task["model"]``; returns their record
    rows (``Record.write_games`` form) and timing.  Deterministic for a fixed task seed."""
    from plyground import games
    from plyground.arena.record import dumps_json, now_iso
    from plyground.search.native.lockstep import LockstepPUCT

    game = games.make(task["game"])
    ev = _evaluator(task["model"], game)
    sp = task["settings"]
    seed = int(task["seed"])
    rng = np.random.default_rng(seed)
    calls0, positions0, seconds0 = ev.calls, ev.positions, ev.seconds
    if game.name in _native():
        engine = LockstepPUCT(game, ev.evaluate_native, sims=sp["sims"], c=sp["c"], leaves_per_tree=sp["leaves"],
                              dirichlet_alpha=sp["dirichlet_alpha"], dirichlet_frac=sp["dirichlet_frac"],
                              solver=True, seed=seed)

        def run_search(states):
            return engine.search([s.array for s in states])
    else:   # the plain-Python PUCT, one game at a time, its leaves in batches of `leaves`
        from plyground.agents.neural.evaluator import net_hooks
        from plyground.search.mcts import MCTS
        proposer, value = net_hooks(ev)
        mcts = MCTS(sims=sp["sims"], c=sp["c"], variant="puct", solver=True, batch_size=sp["leaves"],
                    proposer=proposer, value=value, dirichlet_alpha=sp["dirichlet_alpha"],
                    dirichlet_frac=sp["dirichlet_frac"], reuse_tree=False, seed=seed)

        def run_search(states):
            return [_tree_result(mcts.search(s)) for s in states]
    ids = task["ids"]
    pid = os.getpid()   # the process that played (tells workers apart in the record)
    states = [game.new_initial_state() for _ in ids]
    moves: list[list[tuple]] = [[] for _ in ids]
    started = [time.time()] * len(ids)
    ended = [0.0] * len(ids)
    t0 = time.perf_counter()
    positions = 0
    while True:
        active = [i for i, s in enumerate(states) if not s.is_terminal()]
        if not active:
            break
        ts = time.perf_counter()
        results = run_search([states[i] for i in active])
        share = (time.perf_counter() - ts) / len(active)
        for i, r in zip(active, results):
            s = states[i]
            ply = len(s.history())
            acts = sorted(r.visits)
            sampled = ply < sp["temperature_plies"] and not r.exact
            if sampled:
                w = np.array([r.visits[a] for a in acts], dtype=np.float64)
                action = int(acts[int(rng.choice(len(acts), p=w / w.sum()))]) if w.sum() > 0 else r.best_action
            else:
                action = r.best_action
            player = s.current_player()
            search = {"engine": "mcts", "best_action": r.best_action, "value": r.value, "nodes": r.sims,
                      "depth": r.depth, "pv": [r.best_action], "exact": r.exact, "seconds": share,
                      "visits": {str(a): int(n) for a, n in r.visits.items()},
                      "action_values": {str(a): float(v) for a, v in r.action_values.items()},
                      "score": None, "extra": {"impl": "numba-lockstep", "variant": "puct", "network": True}}
            decision = {"action": action, "think_time": share, "value": r.value, "search": search, "llm": {},
                        "fallback": None, "info": {"selfplay": True, "sampled": sampled, "pid": pid}}
            moves[i].append((ids[i], ply, player, action, s.action_to_string(player, action), share,
                             dumps_json(decision)))
            s.apply_action(action)
            positions += 1
            if s.is_terminal():
                ended[i] = time.time()
    rows = []
    for i, s in enumerate(states):
        returns = [float(x) for x in s.returns()]
        row = (ids[i], task["tournament"], int(task["generation"]), int(task["index"]), task["game"],
               dumps_json(task["players"]), dumps_json(returns), "normal", "", 1, seed, dumps_json([]),
               len(moves[i]), now_iso(started[i]), now_iso(ended[i]))
        rows.append((row, moves[i]))
    return {"games": rows, "positions": positions, "evaluations": ev.positions - positions0,
            "network_calls": ev.calls - calls0, "eval_seconds": ev.seconds - seconds0,
            "seconds": time.perf_counter() - t0}


def _native() -> set[str]:
    from plyground.games.native.encode import ENCODERS
    return set(ENCODERS)


def _tree_result(r):
    """A plain-Python MCTS ``SearchResult`` in the lockstep engine's ``TreeResult`` form."""
    from plyground.search.native.lockstep import TreeResult
    return TreeResult(best_action=int(r.best_action), visits={int(a): int(n) for a, n in r.visits.items()},
                      action_values={int(a): float(v) for a, v in r.action_values.items()}, value=float(r.value),
                      exact=bool(r.exact), sims=int(r.nodes), depth=int(r.depth))


# ---------------------------------------------------------------- the run
@dataclass
class GenerationStatus:
    """Progress handed to the ``progress`` callback."""

    generation: int
    generations: int
    phase: str
    done: int = 0
    total: int = 0
    detail: str = ""


@dataclass
class SelfPlayResult:
    out: Path
    generations: int
    games: int
    positions_per_second: float = 0.0
    evaluations_per_second: float = 0.0
    resumed: bool = False
    rows: list = field(default_factory=list)


_COMPARED = ("game", "name", "seed", "network", "selfplay", "buffer", "train")


def _gen_path(out: Path, g: int) -> Path:
    return out / "generations" / f"gen-{g:03d}.pt"


def _tournament(cfg: SelfPlayConfig, g: int) -> str:
    return f"{cfg.name}-selfplay-g{g:03d}"


def _task_seed(seed: int, g: int, k: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, g, k, 7]).generate_state(1)[0]) & 0x7FFFFFFF


def _save(cfg: SelfPlayConfig, net, trainer, state: dict) -> None:
    from plyground.agents.neural.checkpoint import atomic_save, network_payload

    payload = network_payload(net, cfg.game, {"trained_by": "plyground train selfplay", "generation": state["generation"]})
    payload.update({"trainer": trainer.state_dict(), "state": dict(state), "config": json.loads(json.dumps(cfg.to_dict()))})
    atomic_save(payload, cfg.out / CHECKPOINT_NAME)


def _log(cfg: SelfPlayConfig, event: dict) -> None:
    with open(cfg.out / METRICS_NAME, "a") as f:
        f.write(json.dumps(event, sort_keys=True) + "\n")


def selfplay(cfg: SelfPlayConfig, *, progress: Callable[[GenerationStatus], None] | None = None,
             stop_after: Callable[[str, int], bool] | None = None) -> SelfPlayResult:
    """Run (or resume) the self-play run of ``cfg``; see the module docstring.  ``stop_after(phase,
    generation)`` is asked after each phase (tests use it to stop early)."""
    import torch

    from plyground import games
    from plyground.agents.neural.checkpoint import load_network, read_checkpoint, save_network
    from plyground.agents.neural.network import NetConfig, PolicyValueNet
    from plyground.arena.record import Record
    from plyground.datasets.training import Trainer, _Deterministic

    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    game = games.make(cfg.game)
    ckpt_path = out / CHECKPOINT_NAME
    resumed = ckpt_path.exists()
    net_cfg = NetConfig(tuple(game.observation_tensor_shape()), game.num_distinct_actions(), game.num_players(),
                        kind=cfg.network.kind, width=cfg.network.width, blocks=cfg.network.blocks)
    with _Deterministic(cfg.train.threads):
        if resumed:
            payload = read_checkpoint(ckpt_path)
            old = payload.get("config", {})
            new = json.loads(json.dumps(cfg.to_dict()))
            diff = [k for k in _COMPARED if old.get(k) != new.get(k)]
            if diff:
                raise SelfPlayError(f"{ckpt_path} was made with a different config ({', '.join(diff)} differ); "
                                    "only generations and [evaluate] may change on resume: use a new out directory")
            net, _ = load_network(ckpt_path, game=game)
            trainer = Trainer(net, cfg.train, seed=cfg.seed)
            trainer.load_state_dict(payload["trainer"])
            state = dict(payload["state"])
        else:
            torch.manual_seed(cfg.seed)
            net = PolicyValueNet(net_cfg)
            trainer = Trainer(net, cfg.train, seed=cfg.seed)
            state = {"generation": 0, "phase": "selfplay", "train_seconds": 0.0, "selfplay_seconds": 0.0,
                     "games": 0, "positions": 0}
            save_network(_gen_path(out, 0), net, cfg.game, {"generation": 0, "trained_by": "initialisation"})
            _save(cfg, net, trainer, state)
        rec = Record(out / RECORD_NAME)
        try:
            rates = []
            while True:
                g = state["generation"]
                if state["phase"] == "selfplay":
                    spent = (state["selfplay_seconds"] + state["train_seconds"]) / 3600.0
                    if g >= cfg.generations or (cfg.hours > 0 and spent >= cfg.hours):
                        break
                    st = _selfplay_generation(cfg, rec, g, progress)
                    rates.append(st)
                    state["selfplay_seconds"] += st["seconds"]
                    state["games"] = state.get("games", 0) + st["games"]
                    state["positions"] = state.get("positions", 0) + st["positions"]
                    _build_generation_data(cfg, g)
                    state["phase"] = "train"
                    _save(cfg, net, trainer, state)
                    if stop_after and stop_after("selfplay", g):
                        break
                if state["phase"] == "train":
                    t0 = time.perf_counter()
                    buffer = _buffer(cfg, g)
                    if progress:
                        progress(GenerationStatus(g, cfg.generations, "train", 0, cfg.train.steps,
                                                  f"{len(buffer.obs)} positions in the buffer"))
                    lr = lr_for(cfg, g)
                    trainer.settings = dataclasses.replace(cfg.train, lr=lr)   # the trainer sets it each step
                    stats = trainer.train_steps(buffer, cfg.train.steps)
                    state["train_seconds"] += time.perf_counter() - t0
                    save_network(_gen_path(out, g + 1), net, cfg.game,
                                 {"generation": g + 1, "trained_by": "plyground train selfplay",
                                  "steps": trainer.step, "buffer_rows": len(buffer.obs)})
                    _log(cfg, {"event": "train", "generation": g + 1, "step": trainer.step, "loss": stats.loss,
                               "policy_loss": stats.policy_loss, "value_loss": stats.value_loss,
                               "buffer": len(buffer.obs), "seconds": stats.seconds, "lr": lr})
                    state["generation"] = g + 1
                    state["phase"] = "evaluate"
                    _save(cfg, net, trainer, state)
                    if stop_after and stop_after("train", g):
                        break
                if state["phase"] == "evaluate":
                    g = state["generation"]
                    if cfg.evaluate.games and g % cfg.evaluate.every == 0:
                        _evaluate_generation(cfg, g, progress)
                        _write_generations(cfg, state)
                    state["phase"] = "selfplay"
                    _save(cfg, net, trainer, state)
                    if stop_after and stop_after("evaluate", g):
                        break
        finally:
            rec.close()
            _close_backend()
    ev = sum(r["evaluations"] for r in rates)
    es = sum(r["eval_seconds"] for r in rates)
    secs = sum(r["seconds"] for r in rates)
    pos = sum(r["positions"] for r in rates)
    return SelfPlayResult(out, state["generation"], state.get("games", 0),
                          positions_per_second=pos / secs if secs else 0.0,
                          evaluations_per_second=ev / es if es else 0.0, resumed=resumed)


def _players(cfg: SelfPlayConfig, rec, g: int) -> list[str]:
    sp = cfg.selfplay
    spec = (f"neural-mcts:model={_gen_path(cfg.out, g)},sims={sp.sims},c={sp.c},leaves={sp.leaves},"
            f"dirichlet={sp.dirichlet_alpha}")
    conf = {"name": "neural-mcts", "model": str(_gen_path(cfg.out, g)), "run": cfg.name, "generation": g,
            "selfplay": asdict(sp)}
    pid = rec.upsert_player(f"{cfg.name}-g{g:03d}-selfplay", spec, conf)
    return [pid, pid]


def _selfplay_generation(cfg: SelfPlayConfig, rec, g: int, progress) -> dict:
    """Play the generation's missing self-play games (tasks whose games are all recorded are skipped)."""
    from plyground.arena.runner import make_backend

    sp = cfg.selfplay
    tid = _tournament(cfg, g)
    rec.upsert_tournament(tid, tid, cfg.game, "selfplay", cfg.seed, {"run": cfg.name, "generation": g,
                                                                     "selfplay": asdict(sp)})
    players = _players(cfg, rec, g)
    done_ids = rec.finished_ids(tid)
    tasks = []
    for k, start in enumerate(range(0, sp.games, sp.lockstep)):
        ids = [f"{tid}-t{k:04d}-{j:04d}" for j in range(start, min(start + sp.lockstep, sp.games))]
        if all(i in done_ids for i in ids):
            continue
        tasks.append({"game": cfg.game, "model": str(_gen_path(cfg.out, g)), "settings": asdict(sp), "ids": ids,
                      "seed": _task_seed(cfg.seed, g, k), "tournament": tid, "generation": g, "index": k,
                      "players": players})
    stats = {"games": 0, "positions": 0, "evaluations": 0, "eval_seconds": 0.0, "seconds": 0.0}
    total = sum(len(t["ids"]) for t in tasks)
    if progress:
        progress(GenerationStatus(g, cfg.generations, "selfplay", 0, total))
    if not tasks:
        return stats
    t0 = time.perf_counter()
    if sp.workers == 1 and sp.backend == "local":
        results = (play_selfplay_task(t) for t in tasks)   # in this process: deterministic and cheap to start
    else:
        if _BACKEND.get("key") != (sp.backend, sp.workers):
            _close_backend()
            _BACKEND.update(key=(sp.backend, sp.workers), backend=make_backend(sp.backend, sp.workers))
        results = _run_on_backend(_BACKEND["backend"], tasks)
    try:
        for res in results:
            rec.write_games(res["games"], if_exists="ignore")   # a task's games commit together
            stats["games"] += len(res["games"])
            for k in ("positions", "evaluations", "eval_seconds"):
                stats[k] += res[k]
            if progress:
                progress(GenerationStatus(g, cfg.generations, "selfplay", stats["games"], total))
    except BaseException:
        _close_backend()   # a failed task may leave the pool broken: the next generation starts a fresh one
        raise
    stats["seconds"] = time.perf_counter() - t0
    _log(cfg, {"event": "selfplay", "generation": g, **stats,
               "positions_per_second": stats["positions"] / stats["seconds"] if stats["seconds"] else None,
               "evaluations_per_second_in_network": (stats["evaluations"] / stats["eval_seconds"]
                                                     if stats["eval_seconds"] else None)})
    return stats


# The self-play workers live across generations (each loads the new network file when it changes);
# ``selfplay`` closes them when the run ends.
_BACKEND: dict[str, Any] = {}


def _close_backend() -> None:
    backend = _BACKEND.pop("backend", None)
    _BACKEND.clear()
    if backend is not None:
        backend.shutdown()


def _run_on_backend(backend, tasks: list[dict]):
    """Submit every task to the arena backend (local pool or Ray); yield results as they finish."""
    handles = {backend.call(play_selfplay_task, t): t for t in tasks}
    while handles:
        for h in backend.wait(list(handles), timeout=0.5):
            handles.pop(h)
            yield backend.result(h)


def _data_dir(cfg: SelfPlayConfig, g: int) -> Path:
    return cfg.out / "data" / f"gen-{g:03d}"


def _build_generation_data(cfg: SelfPlayConfig, g: int) -> None:
    """The generation's games as a dataset (rebuilt from the record, so a resumed run gets the same)."""
    from plyground.datasets.build import build_dataset

    build_dataset(cfg.out / RECORD_NAME, _data_dir(cfg, g), game=cfg.game, tournaments=[_tournament(cfg, g)],
                  policy="visits", augment=cfg.buffer.augment, merge=False, force=True)


def _buffer(cfg: SelfPlayConfig, g: int):
    """The latest ``buffer.positions`` rows of generations g, g-1, ... (oldest rows dropped first)."""
    from plyground.datasets.store import TrainingArrays, load_arrays

    parts, n = [], 0
    for k in range(g, -1, -1):
        d = _data_dir(cfg, k)
        if not (d / "manifest.json").exists():
            _build_generation_data(cfg, k)
        a = load_arrays(d)
        parts.append(a)
        n += len(a.obs)
        if n >= cfg.buffer.positions:
            break
    parts.reverse()
    cat = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(TrainingArrays)}
    keep = min(n, cfg.buffer.positions)
    return TrainingArrays(**{k: v[len(v) - keep:] for k, v in cat.items()})


# ---------------------------------------------------------------- evaluation
def _eval_name(cfg: SelfPlayConfig, g: int) -> str:
    return f"{cfg.name}-g{g:03d}"


def _evaluate_generation(cfg: SelfPlayConfig, g: int, progress) -> None:
    """Generation ``g`` against the references and generation ``g - 1``, as an arena gauntlet."""
    from plyground.arena.config import config_from_dict as arena_config
    from plyground.arena.runner import run_tournament

    ev = cfg.evaluate
    me = {"agent": "neural-mcts", "model": str(_gen_path(cfg.out, g)), "sims": ev.sims, "name": _eval_name(cfg, g)}
    opponents = [{"agent": s, "name": s} if ":" not in s else _spec_table(s) for s in ev.references]
    if ev.previous and g >= 1:
        opponents.append({"agent": "neural-mcts", "model": str(_gen_path(cfg.out, g - 1)), "sims": ev.sims,
                          "name": _eval_name(cfg, g - 1)})
    data = {"name": f"{cfg.name}-eval-g{g:03d}", "game": cfg.game, "format": "gauntlet", "games_per_pairing": ev.games,
            "colour_swap": True, "seed": cfg.seed * 1000 + g, "agents": [me] + opponents,
            "openings": {"random_plies": 2}}
    if ev.move_time > 0:
        data["move_time"] = ev.move_time
    tcfg = arena_config(data)

    def report(status) -> None:
        if progress:
            progress(GenerationStatus(g, cfg.generations, "evaluate", status.done, status.total))

    run_tournament(tcfg, cfg.out / RECORD_NAME, workers=ev.workers, progress=report)


def _spec_table(spec: str) -> dict:
    from plyground.agents.params import parse_spec
    name, params = parse_spec(spec)
    return {"agent": name, **params, "name": spec}


def _write_generations(cfg: SelfPlayConfig, state: dict) -> list[dict]:
    """Rate every evaluation game so far jointly and rewrite ``generations.jsonl`` (one line per
    evaluated generation: Elo with its bootstrap interval, the first reference at 0)."""
    from plyground.arena.leaderboard import games_from_rows
    from plyground.arena.ratings import bootstrap_ratings, fit_bradley_terry
    from plyground.arena.record import Record

    with Record(cfg.out / RECORD_NAME) as rec:
        tids = {t["id"] for t in rec.tournaments() if t["name"].startswith(f"{cfg.name}-eval-g")}
        rows = [r for r in rec.games() if r["tournament"] in tids]
        games = games_from_rows(rows, rec.player_names()).games if rows else []
    if not games:
        return []
    players = sorted({p for gm in games for p in (gm.first, gm.second)})
    anchor = cfg.evaluate.references[0] if cfg.evaluate.references else players[0]
    fit = fit_bradley_terry(games, anchor=(anchor, 0.0) if anchor in players else None)
    boot = bootstrap_ratings(games, fit, n=200, seed=0)
    lines = []
    from plyground.datasets.training import read_metrics
    metrics = read_metrics(cfg.out / METRICS_NAME)   # a torn last line (a kill mid-write) is skipped
    # hours of training when generation g was made: self-play and training wall time of the
    # generations before it (evaluation is not training); a resumed phase counts its last run
    spent: dict[tuple[str, int], float] = {}
    for m in metrics:
        if m.get("event") in ("selfplay", "train"):
            spent[(m["event"], m["generation"])] = m.get("seconds", 0.0)
    train_s = {}
    acc = 0.0
    for g in range(0, state["generation"] + 1):
        acc += spent.get(("selfplay", g - 1), 0.0) + spent.get(("train", g), 0.0)
        train_s[g] = acc
    for g in range(0, state["generation"] + 1):
        name = _eval_name(cfg, g)
        if name not in players:
            continue
        i = boot.players.index(name)
        lo, hi = float(boot.low[i]), float(boot.high[i])
        lines.append({"generation": g, "elo": fit.rating(name), "elo_lo": lo, "elo_hi": hi,
                      "hours": train_s.get(g, 0.0) / 3600.0, "anchor": anchor})
    for r in cfg.evaluate.references:
        if r in players:
            i = boot.players.index(r)
            lo, hi = float(boot.low[i]), float(boot.high[i])
            lines.append({"reference": r, "elo": fit.rating(r), "elo_lo": lo, "elo_hi": hi})
    tmp = cfg.out / (GENERATIONS_NAME + ".tmp")
    tmp.write_text("".join(json.dumps(x, sort_keys=True) + "\n" for x in lines))
    os.replace(tmp, cfg.out / GENERATIONS_NAME)
    return lines
