"""CLI: ``plyground datasets build --db FILE [...] --out DIR``, ``plyground datasets llm --db FILE
--format sft|dpo --out DIR`` and ``plyground datasets info DIR`` (the logic lives in
plyground.datasets)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from plyground.datasets.build import DEFAULT_TEMPERATURE, POLICIES


def add_parsers(top_sub: argparse._SubParsersAction) -> None:
    """Add ``plyground datasets`` with its commands ``build``, ``llm`` and ``info``."""
    q = top_sub.add_parser("datasets", help="training data from arena records (Parquet + manifest)",
                           description="Build training datasets from recorded arena games and describe them.",
                           epilog="Run 'plyground datasets COMMAND --help' for a command's options.")
    sub = q.add_subparsers(dest="datasets_command", metavar="COMMAND", required=True)

    b = sub.add_parser(
        "build", help="build a dataset directory from one or more arena records",
        description="Replay the recorded games of --db through the rules and write one row per searched move: "
                    "the observation, the legal mask, a policy target from the recorded search, the mover's "
                    "final outcome and the search's root value.  Output: DIR/data.parquet and DIR/manifest.json.",
        epilog="Policy targets: visits (MCTS root visits), scores (softmax of alpha-beta's per-move values at "
               f"--temperature, default {DEFAULT_TEMPERATURE:g}), proven (uniform over an exact search's best moves), "
               "auto (scores for alpha-beta, visits for MCTS).  Opening plies, moves without a recorded search and "
               "games not ended normally are left out and counted in the manifest.  Example: plyground datasets "
               "build --db arena.db --agent mcts-2000 --out data/c4-mcts")
    b.add_argument("--db", action="append", required=True, metavar="FILE",
                   help="an arena record (SQLite); repeat for several")
    b.add_argument("--game", default=None, help="the recorded game name (needed when the records hold several)")
    b.add_argument("--tournament", action="append", default=None, metavar="T",
                   help="keep only this tournament (id or name); repeat for several")
    b.add_argument("--agent", action="append", default=None, metavar="NAME",
                   help="keep only the moves of this player name (e.g. mcts-2000); repeat for several")
    b.add_argument("--policy", choices=POLICIES, default="auto", help="policy target kind (default auto)")
    b.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                   help=f"softmax temperature of the scores target (default {DEFAULT_TEMPERATURE:g}; 0: uniform over "
                        "the best-scored moves)")
    b.add_argument("--no-augment", action="store_true", help="no symmetric copies of positions")
    b.add_argument("--no-merge", action="store_true", help="keep repeated positions as separate rows")
    b.add_argument("--include-forfeits", action="store_true",
                   help="also use games ended by a forfeit or a ply limit (aborted games never)")
    b.add_argument("--out", required=True, metavar="DIR", help="the dataset directory to write")
    b.add_argument("--force", action="store_true", help="write into a non-empty --out (its dataset is replaced)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build)

    add_llm_parser(sub)

    i = sub.add_parser("info", help="summarise a dataset directory",
                       description="Print a dataset's manifest summary (game, rows, sources, filters, policy kind, "
                                   "augmentation) and statistics of its targets; checks its content hash.")
    i.add_argument("dir", metavar="DIR")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(func=run_info)


class _StageBar:
    """One rich progress bar over a build's stages: ``progress(stage, done, total)`` counts the stages
    in ``counted`` and relabels the bar for the others.  The bar starts with the first report, so a
    refusal (a missing record, an unknown agent, a non-empty --out) prints its error alone."""

    def __init__(self, console, labels: dict[str, str], counted: tuple[str, ...], quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.labels, self.counted, self.task = labels, counted, None
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=False, disable=quiet)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task(self.labels[self.counted[0]], total=total)
        if stage in self.counted:
            self.bar.update(self.task, description=self.labels[stage], completed=done, total=total)
        else:
            self.bar.update(self.task, description=self.labels.get(stage, stage))

    def stop(self) -> None:
        if self.task is not None:
            self.bar.stop()


def run_build(args: argparse.Namespace) -> int:
    from rich.console import Console

    from plyground.datasets.build import build_dataset

    console = Console(stderr=True)
    progress = _StageBar(console, {"games": "replaying games", "augment": "adding symmetric copies",
                                   "merge": "merging positions", "write": "writing Parquet"}, ("games",), args.quiet)
    try:
        manifest = build_dataset(args.db, args.out, game=args.game, tournaments=args.tournament, agents=args.agent,
                                 policy=args.policy, temperature=args.temperature, augment=not args.no_augment,
                                 merge=not args.no_merge, include_forfeits=args.include_forfeits, force=args.force,
                                 progress=progress)
    finally:
        progress.stop()
    games = sum(s["games"] for s in manifest["sources"])
    console.print(f"{args.out}: {manifest['rows']} rows of {manifest['game']} from {manifest['recorded_positions']} "
                  f"recorded positions in {games} games ({_policy_text(manifest)}"
                  + (f", augmented by {', '.join(manifest['augment'])}" if manifest["augment"] else "")
                  + (", merged" if manifest["merged"] else "") + ")")
    left = _left_out(manifest)
    if left:
        console.print("left out: " + left)
    return 0


_SKIPPED = {"opening": "opening plies", "chance": "chance moves", "no_search": "moves without a recorded search",
            "no_target": "moves whose search gives no target of the policy kind",
            "not_proven": "moves of searches that proved nothing", "other_agents": "moves of other agents",
            "no_values": "moves whose search valued fewer than two moves",
            "no_pair": "positions with no pair past the margin and floor",
            "small_spread": "positions whose move values spread less than --min-spread"}


def _left_out(manifest: dict) -> str:
    """The moves and games a build left out, in words ('' if none)."""
    parts = [f"{v} {_SKIPPED.get(k, k)}" for k, v in (manifest.get("skipped_moves") or {}).items() if v]
    parts += [f"{v} {k} game{'s' if v != 1 else ''}" for k, v in (manifest.get("excluded_games") or {}).items()]
    if manifest.get("duplicate_games"):
        parts.append(f"{manifest['duplicate_games']} games seen twice (used once)")
    return ", ".join(parts)


def _policy_text(manifest: dict) -> str:
    p = manifest["policy"]
    used = ", ".join(f"{v} by {k}" for k, v in p.get("used", {}).items())
    t = f" at temperature {p['temperature']:g}" if p["kind"] in ("auto", "scores") and "scores" in p.get("used", {}) \
        else ""
    return f"policy {p['kind']}{t}" + (f": {used}" if used else "")


def _stats(x, weights=None) -> dict:
    import numpy as np
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x)
    if not ok.any():
        return {"n": 0}
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[ok]
    v = x[ok]
    mean = float(np.average(v, weights=w))
    return {"n": int(ok.sum()), "mean": mean, "std": float(math.sqrt(np.average((v - mean) ** 2, weights=w))),
            "min": float(v.min()), "max": float(v.max())}


def dataset_summary(path: str | Path) -> dict:
    """The manifest plus statistics of a dataset's targets (the numbers ``datasets info`` prints)."""
    import numpy as np

    from plyground.datasets.store import DatasetError, load_arrays, read_manifest
    manifest = read_manifest(path)
    try:
        arrays = load_arrays(path)
        hash_ok = True
    except DatasetError as e:
        if "content_hash" not in str(e):
            raise
        arrays, hash_ok = load_arrays(path, verify=False), False
    c = arrays.count
    p = arrays.policy.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
    legal_n = arrays.legal.sum(axis=1)
    out = arrays.outcome.astype(np.float64)
    stats = {
        "rows": len(arrays), "positions": int(c.sum()),
        "count": {"mean": float(c.mean()) if len(c) else 0.0, "max": int(c.max()) if len(c) else 0},
        "players": {str(int(k)): int(v) for k, v in zip(*np.unique(arrays.player, return_counts=True))},
        "outcome": _stats(out, c) | {"win": float(c[out > 0].sum() / max(1, c.sum())),
                                     "draw": float(c[out == 0].sum() / max(1, c.sum())),
                                     "loss": float(c[out < 0].sum() / max(1, c.sum()))},
        "root_value": _stats(arrays.root_value, c),
        "policy_entropy": _stats(entropy, c),
        "legal_moves": _stats(legal_n, c),
        "content_hash_ok": hash_ok,
    }
    rv, ok = arrays.root_value.astype(np.float64), ~np.isnan(arrays.root_value)
    if ok.sum() > 1 and np.std(rv[ok]) > 0 and np.std(out[ok]) > 0:
        stats["root_value"]["corr_outcome"] = float(np.corrcoef(rv[ok], out[ok])[0, 1])
    return {"manifest": manifest, "stats": stats}


def run_info(args: argparse.Namespace) -> int:
    summary = dataset_summary(args.dir)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    m, s = summary["manifest"], summary["stats"]
    print(f"dataset {args.dir}: {m['game']}, {m['rows']} rows ({m.get('positions', '?')} positions before merging, "
          f"{m.get('recorded_positions', '?')} recorded)")
    print(f"  observation {m['obs_shape']}, {m['num_actions']} actions, {m.get('num_players', '?')} players")
    for src in m.get("sources", []):
        print(f"  source {src['db']}: {src['games']} games, {src['moves']} moves")
    f = m.get("filters", {})
    print(f"  filters: game {f.get('game')}, tournaments {f.get('tournaments') or 'all'}, "
          f"agents {f.get('agents') or 'all'}, terminations {f.get('terminations')}")
    print(f"  {_policy_text(m)}")
    print(f"  augment: {', '.join(m.get('augment') or []) or 'none'}; merged: {m.get('merged')}")
    left = _left_out(m)
    if left:
        print(f"  left out: {left}")

    def line(name: str, st: dict, extra: str = "") -> None:
        if not st.get("n"):
            print(f"  {name}: none recorded")
            return
        print(f"  {name}: mean {st['mean']:+.3f}, std {st['std']:.3f}, min {st['min']:+.3f}, max {st['max']:+.3f}"
              + extra)

    o = s["outcome"]
    line("outcome (mover)", o, f"; win {o['win']:.1%}, draw {o['draw']:.1%}, loss {o['loss']:.1%}")
    rv = s["root_value"]
    line("root value (mover)", rv, f"; correlation with outcome {rv['corr_outcome']:+.3f}" if "corr_outcome" in rv
         else "")
    pe, lm = s["policy_entropy"], s["legal_moves"]
    if pe.get("n"):
        print(f"  policy entropy: mean {pe['mean']:.3f} nats over {lm['mean']:.1f} legal moves on average")
    print(f"  count per row: mean {s['count']['mean']:.2f}, max {s['count']['max']}; rows by player to move: "
          f"{s['players']}")
    print(f"  content hash {m.get('content_hash', '?')[:16]}...: " + ("ok" if s["content_hash_ok"] else
                                                                     "DOES NOT MATCH data.parquet"))
    print(f"  created {m.get('created')} by plyground {m.get('plyground_version')}")
    return 0


def add_llm_parser(sub: argparse._SubParsersAction) -> None:
    """``plyground datasets llm``: SFT or DPO rows of the llm agent's prompts (datasets/llm.py)."""
    from plyground.datasets.llm import DEFAULT_FLOOR, DEFAULT_MARGIN, DEFAULT_PAIRS_PER_POSITION, FORMATS
    b = sub.add_parser(
        "llm", help="SFT or DPO data for an LLM: the llm agent's prompts with the recorded search's moves",
        description="Replay the recorded games of --db and write, for every searched move of the selected agents, "
                    "the chat messages the llm agent sends for that position (prompt) with the recorded move "
                    "(sft: completion) or pairs of legal moves ranked by the search's per-move values (dpo: chosen, "
                    "rejected), in TRL's conversational formats.  Output: DIR/data.parquet (DIR/data.jsonl with "
                    "--jsonl) and DIR/manifest.json.",
        epilog="The completion is the move in the game's notation, the reply the llm agent parses.  DPO keeps pairs "
               f"whose values differ by at least --margin (default {DEFAULT_MARGIN:g}) and whose chosen value is "
               f"above --floor (default {DEFAULT_FLOOR:g}), at most --pairs-per-position (default "
               f"{DEFAULT_PAIRS_PER_POSITION}; 0: all) per position, best chosen and worst rejected first.  Example: "
               "plyground datasets llm --db arena.db --agent mcts-2000 --format sft --out data/c4-sft")
    b.add_argument("--db", action="append", required=True, metavar="FILE",
                   help="an arena record (SQLite); repeat for several")
    b.add_argument("--format", required=True, choices=FORMATS, help="sft (prompt, completion) or dpo (prompt, "
                   "chosen, rejected)")
    b.add_argument("--game", default=None, help="the recorded game name (needed when the records hold several)")
    b.add_argument("--tournament", action="append", default=None, metavar="T",
                   help="keep only this tournament (id or name); repeat for several")
    b.add_argument("--agent", action="append", default=None, metavar="NAME",
                   help="keep only the moves of this player name (the teacher, e.g. mcts-2000); repeat for several")
    b.add_argument("--llm", default="llm", metavar="SPEC",
                   help="the llm agent whose prompts are written (its templates and history; default: llm)")
    b.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help=f"dpo: least value gap between chosen and rejected (default {DEFAULT_MARGIN:g})")
    b.add_argument("--floor", type=float, default=DEFAULT_FLOOR,
                   help=f"dpo: the chosen move's value must be above this (default {DEFAULT_FLOOR:g})")
    b.add_argument("--min-spread", type=float, default=0.0, metavar="S",
                   help="sft: keep only positions whose recorded move values span at least S, best minus worst "
                        "(positions where the choice matters; default 0: all)")
    b.add_argument("--pairs-per-position", type=int, default=DEFAULT_PAIRS_PER_POSITION, metavar="N",
                   help=f"dpo: most pairs per position (default {DEFAULT_PAIRS_PER_POSITION}; 0: all)")
    b.add_argument("--ref-model", default=None, metavar="MODEL",
                   help="dpo: add ref_chosen_logps and ref_rejected_logps from this causal LM (a transformers model "
                        "directory, a .gguf file, or 'bundled' for the bundled SmolLM2)")
    b.add_argument("--ref-batch-size", type=int, default=8, metavar="N",
                   help="sequences per forward pass of --ref-model (default 8)")
    b.add_argument("--include-forfeits", action="store_true",
                   help="also use games ended by a forfeit or a ply limit (aborted games never)")
    b.add_argument("--jsonl", action="store_true", help="also write DIR/data.jsonl")
    b.add_argument("--out", required=True, metavar="DIR", help="the dataset directory to write")
    b.add_argument("--force", action="store_true", help="write into a non-empty --out (its dataset is replaced)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run_llm)


def run_llm(args: argparse.Namespace) -> int:
    from rich.console import Console

    from plyground.datasets.llm import build_llm_dataset

    console = Console(stderr=True)
    progress = _StageBar(console, {"games": "replaying games", "reference": "reference log-likelihoods",
                                   "write": "writing Parquet"}, ("games", "reference"), args.quiet)
    try:
        manifest = build_llm_dataset(args.db, args.out, format=args.format, game=args.game,
                                     tournaments=args.tournament, agents=args.agent, llm=args.llm,
                                     margin=args.margin, floor=args.floor, min_spread=args.min_spread,
                                     pairs_per_position=args.pairs_per_position, ref_model=args.ref_model,
                                     ref_batch_size=args.ref_batch_size,
                                     include_forfeits=args.include_forfeits, jsonl=args.jsonl, force=args.force,
                                     progress=progress)
    finally:
        progress.stop()
    games = sum(s["games"] for s in manifest["sources"])
    what = "prompt/completion" if manifest["kind"] == "sft" else "prompt/chosen/rejected"
    console.print(f"{args.out}: {manifest['rows']} {manifest['kind']} rows ({what}) of {manifest['game']} from {games} "
                  f"games, prompts of {manifest['prompt']['agent']}")
    left = _left_out(manifest)
    if left:
        console.print("left out: " + left)
    return 0
