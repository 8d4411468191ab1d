"""LLM training data from arena records: the ``llm`` agent's prompt for each searched position, with
the search's move (SFT) or pairs of its moves ranked by the search's values (DPO), in the
conversational formats TRL documents.

``build_llm_dataset(dbs, out_dir, format="sft"|"dpo", ...)`` selects games like ``build_dataset``
(``datasets.build.select_games``: game, tournaments, agents, terminations), replays each kept game's
recorded actions through the rules and, for every kept move (a move of a selected agent, not an
opening ply or a chance move, whose Decision holds a search), writes rows whose ``prompt`` is the
list of chat messages (``{"role", "content"}``) that the ``llm`` agent sends for that position:
``LLMAgent.move_messages``, the very code ``act`` calls, with the templates and history length of
the ``llm`` spec given (default the agent's defaults).  A hidden-information game's prompt is built
from the mover's view, as in play.

* ``sft``: ``completion`` = ``[{"role": "assistant", "content": MOVE}]`` where MOVE is the recorded
  move in the game's notation (``state.action_to_string``), which is the reply the agent parses
  exactly.  The teacher is the recorded move of the selected agents (``agents``: e.g. only
  ``mcts-2000``), i.e. what their search chose at that time, not a value recomputed here: a search
  that picks the most-visited move and one that picks the best-valued move are each imitated as
  they played.
* ``dpo``: ``chosen`` and ``rejected`` (each an assistant message as above) from two legal moves
  of the same position whose recorded per-move values (``search["action_values"]``, the mover's
  view, in [-1, 1]) differ by at least ``margin`` and whose chosen value is above ``floor``.  Per
  position at most ``pairs_per_position`` pairs (0: all): candidates are ordered by chosen value
  (highest first), then rejected value (lowest first), then action numbers, so the first pair is
  the best move against the worst.

Extra columns (TRL ignores them): ``game_id``, ``ply``, ``player``, ``position`` (the action
sequence reaching the position, space-separated), ``action`` (SFT) or ``chosen_action``,
``rejected_action``, ``chosen_value``, ``rejected_value`` (DPO).

Output: ``DIR/data.parquet`` (and ``DIR/data.jsonl`` on request), then ``DIR/manifest.json`` (format
``plyground-llm-dataset``: kind, options, the ``llm`` spec and its system prompt, sources with the
hash of the game ids used, filters, skipped counts, ``content_hash`` of the Parquet file) written
last, so a directory with a manifest is complete.  Read it with Hugging Face
``datasets.load_dataset("parquet", data_files=DIR + "/data.parquet")``.

With ``ref_model`` (a model directory, a ``.gguf`` file or ``bundled``), DPO rows also get
``ref_chosen_logps`` and ``ref_rejected_logps``: the reference model's log-likelihoods of each
completion, tokenised as TRL's DPOTrainer tokenises the row (``datasets.llm_ref``; they equal the
values DPOTrainer computes itself).  TRL 1.x's DPOTrainer computes its own either way: it accepts
these rows and ignores the columns when it runs its ``ref_model`` during training, and refuses them
as duplicate columns with ``precompute_ref_log_probs=True`` (drop them first).  They are for
training code that reads them instead of keeping a reference model in memory.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from plyground.datasets.build import _int_keyed, _out_dir_check, searched_moves, select_games, sources_manifest
from plyground.datasets.store import DATA_FILE, MANIFEST_FILE, DatasetError, file_sha256

__all__ = ["build_llm_dataset", "dpo_pairs", "FORMATS", "LLM_FORMAT", "JSONL_FILE", "DEFAULT_MARGIN",
           "DEFAULT_FLOOR", "DEFAULT_PAIRS_PER_POSITION"]

FORMATS = ("sft", "dpo")
LLM_FORMAT = "plyground-llm-dataset"
LLM_VERSION = 1
JSONL_FILE = "data.jsonl"
# Values are in [-1, 1] (a win is 1): a gap of 0.1 is a twentieth of the range, clear of the
# noise between sibling moves of a depth-limited search that are equally good.
DEFAULT_MARGIN = 0.1
# The chosen move must be valued above this: the default keeps every pair except those whose
# "better" move is itself a certain loss (nothing worth imitating).
DEFAULT_FLOOR = -1.0
DEFAULT_PAIRS_PER_POSITION = 2

Progress = Callable[[str, int, int], None]


def dpo_pairs(values: dict[int, float], *, margin: float = DEFAULT_MARGIN, floor: float = DEFAULT_FLOOR,
              limit: int = DEFAULT_PAIRS_PER_POSITION) -> list[tuple[int, int]]:
    """The (chosen, rejected) action pairs of one position from its per-move values: chosen value
    above ``floor``, gap at least ``margin``; at most ``limit`` (0: all), best chosen first, then
    worst rejected first, then by action numbers.

    >>> dpo_pairs({0: 1.0, 1: 0.0, 2: -1.0}, margin=0.5, limit=0)
    [(0, 2), (0, 1), (1, 2)]
    >>> dpo_pairs({0: 1.0, 1: 0.0, 2: -1.0}, margin=1.5, limit=0)
    [(0, 2)]
    >>> dpo_pairs({0: 0.0, 1: -1.0}, margin=0.5, floor=0.0)
    []
    """
    order = sorted(values, key=lambda a: (-values[a], a))
    pairs = [(c, r) for c in order if values[c] > floor
             for r in sorted(values, key=lambda a: (values[a], a))
             if r != c and values[c] - values[r] >= margin]
    return pairs if limit <= 0 else pairs[:limit]


def _prompt_agent(spec: str | dict):
    """The ``llm`` agent whose prompts are exported (built, never called: no model is loaded)."""
    from plyground import agents
    from plyground.agents.llm_agents import LLMAgent
    agent = agents.make(spec)
    if not isinstance(agent, LLMAgent):
        raise DatasetError(f"--llm {spec!r} is a {agent.name!r} agent; the prompts exported are those of the "
                           "'llm' agent (e.g. llm, llm:history=4, llm:templates=FILE)")
    return agent


def _checker(agent) -> Callable[[Any], None]:
    def check(gm) -> None:
        try:
            agent.check_game(gm)
        except Exception as e:  # noqa: BLE001 - the agent's refusal, said as the dataset's
            raise DatasetError(f"the llm agent cannot play {gm.name}, so it has no prompts to export: {e}") from None
    return check


def _message(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _replay(gm, row: dict, moves: list[dict], seats: set[int] | None, agent, fmt: str, opts: dict,
            out: list[dict], skipped: dict[str, int], strict: bool) -> int:
    """Replay one game, appending its rows to ``out``; returns the number of rows added."""
    from plyground.agents.llm.parsing import parse_move
    added = 0
    for mv in searched_moves(gm, row, moves, seats, skipped, strict):
        state, ply, legal = mv.state, mv.ply, mv.legal

        def text(action: int) -> str:
            return _move_text(state, action, legal, parse_move, row, ply)

        if fmt == "sft" and opts["spread"] <= 0:
            rows = [{"completion": _message(text(mv.action)), "action": mv.action}]
        else:
            values = _search_values(mv.search, legal, row, ply)
            if len(values) < 2:
                skipped["no_values"] += 1
                continue
            if fmt == "sft":
                if max(values.values()) - min(values.values()) < opts["spread"]:
                    skipped["small_spread"] += 1
                    continue
                rows = [{"completion": _message(text(mv.action)), "action": mv.action}]
            else:
                pairs = dpo_pairs(values, margin=opts["margin"], floor=opts["floor"], limit=opts["pairs"])
                if not pairs:
                    skipped["no_pair"] += 1
                    continue
                rows = [{"chosen": _message(text(c)), "rejected": _message(text(r)),
                         "chosen_action": c, "rejected_action": r,
                         "chosen_value": float(values[c]), "rejected_value": float(values[r])}
                        for c, r in pairs]
        _values, prompt = agent.move_messages(state)
        meta = {"game_id": row["id"], "ply": ply, "player": mv.mover, "position": " ".join(map(str, mv.history))}
        out.extend({"prompt": prompt, **r, **meta} for r in rows)
        added += len(rows)
    return added


def _search_values(search: dict, legal: list[int], row: dict, ply) -> dict[int, float]:
    """The recorded per-move values of one search (mover's view), finite ones only."""
    values = _int_keyed(search.get("action_values"))
    bad = sorted(set(values) - set(legal))
    if bad:
        raise DatasetError(f"game {row['id']!r} ({row['game']}), ply {ply}: the search's action_values "
                           f"name actions {bad} that are not legal here (legal: {legal})")
    return {a: v for a, v in values.items() if math.isfinite(v)}


def _move_text(state, action: int, legal: list[int], parse_move, row: dict, ply) -> str:
    """``action`` in the game's notation, checked to be read back as ``action`` by the agent's parser
    (a reply the agent would misread is no target to train on)."""
    text = state.action_to_string(action)
    parsed = parse_move(text, state, legal)
    if parsed.action != action:
        raise DatasetError(f"game {row['id']!r} ({row['game']}), ply {ply}: move {action} is written {text!r}, "
                           f"which the llm agent's parser reads as {parsed.action!r} ({parsed.error or parsed.how})")
    return text


def _table(rows: list[dict], fmt: str, ref: bool = False):
    import pyarrow as pa
    msgs = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    fields = [("prompt", msgs)]
    if fmt == "sft":
        fields += [("completion", msgs), ("action", pa.int32())]
    else:
        fields += [("chosen", msgs), ("rejected", msgs), ("chosen_action", pa.int32()),
                   ("rejected_action", pa.int32()), ("chosen_value", pa.float32()), ("rejected_value", pa.float32())]
        if ref:
            fields += [("ref_chosen_logps", pa.float64()), ("ref_rejected_logps", pa.float64())]
    fields += [("game_id", pa.string()), ("ply", pa.int32()), ("player", pa.int8()), ("position", pa.string())]
    schema = pa.schema(fields)
    return pa.Table.from_pylist(rows, schema=schema)


def build_llm_dataset(dbs: str | Path | Iterable[str | Path], out_dir: str | Path, *, format: str = "sft",
                      game: str | None = None, tournaments: Sequence[str] | None = None,
                      agents: Sequence[str] | None = None, llm: str | dict = "llm",
                      margin: float = DEFAULT_MARGIN, floor: float = DEFAULT_FLOOR, min_spread: float = 0.0,
                      pairs_per_position: int = DEFAULT_PAIRS_PER_POSITION, include_forfeits: bool = False,
                      ref_model: str | os.PathLike | None = None, ref_batch_size: int = 8, jsonl: bool = False,
                      force: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Write an SFT or DPO dataset directory at ``out_dir`` from the arena record(s) ``dbs``; returns
    its manifest.  Filters as ``build_dataset``; ``llm``: the ``llm`` agent spec whose prompts are
    exported; ``margin``, ``floor``, ``pairs_per_position``: the DPO pair rules (module docstring);
    ``ref_model``: add reference log-likelihoods (DPO only; ``ref_batch_size`` sequences per
    forward pass); ``jsonl``: also write ``data.jsonl``; ``progress(stage, done, total)`` as games
    are replayed (stage ``"games"``), as reference log-likelihoods are computed (``"reference"``)
    and once for ``"write"``."""
    from plyground import __version__
    from plyground.arena.record import now_iso

    if format not in FORMATS:
        raise DatasetError(f"format {format!r} is not one of {', '.join(FORMATS)}")
    try:
        margin, floor = float(margin), float(floor)
    except (TypeError, ValueError):
        raise DatasetError(f"margin {margin!r} and floor {floor!r} must be numbers") from None
    if not (math.isfinite(margin) and margin >= 0):
        raise DatasetError(f"margin {margin!r} must be a finite number >= 0 (values are in [-1, 1])")
    if math.isnan(floor):
        raise DatasetError("floor must be a number, not NaN")
    try:
        min_spread = float(min_spread)
    except (TypeError, ValueError):
        raise DatasetError(f"min spread {min_spread!r} must be a number") from None
    if not (math.isfinite(min_spread) and 0 <= min_spread <= 2):
        raise DatasetError(f"min spread {min_spread!r} must be between 0 and 2 (values are in [-1, 1])")
    if min_spread > 0 and format != "sft":
        raise DatasetError(f"min spread {min_spread:g} filters sft positions; dpo pairs are filtered by margin "
                           f"and floor (format {format!r})")
    if isinstance(pairs_per_position, bool) or not isinstance(pairs_per_position, int) or pairs_per_position < 0:
        raise DatasetError(f"pairs per position {pairs_per_position!r} must be an integer >= 0 (0: all pairs)")
    paths = [Path(dbs)] if isinstance(dbs, (str, Path)) else [Path(p) for p in dbs]
    if not paths:
        raise DatasetError("no record given (pass at least one --db FILE)")
    out = Path(out_dir)
    _out_dir_check(out, force)
    agent = _prompt_agent(llm)
    if ref_model is not None and format != "dpo":
        raise DatasetError(f"--ref-model {str(ref_model)!r} adds reference log-likelihoods of chosen and rejected "
                           f"moves, which only dpo rows have (format {format!r})")
    if isinstance(ref_batch_size, bool) or not isinstance(ref_batch_size, int) or ref_batch_size < 1:
        raise DatasetError(f"reference batch size {ref_batch_size!r} must be an integer >= 1")
    reference = None
    if ref_model is not None:
        from plyground.datasets.llm_ref import load_reference
        reference = load_reference(ref_model)   # before the replay: a model that does not load fails first

    sel = select_games(paths, game=game, tournaments=tournaments, agents=agents, include_forfeits=include_forfeits,
                       check=_checker(agent))
    opts = {"margin": margin, "floor": floor, "pairs": pairs_per_position, "spread": min_spread}
    skipped = {k: 0 for k in ("opening", "chance", "no_search", "other_agents")}
    if format == "dpo":
        skipped.update(no_values=0, no_pair=0)
    elif min_spread > 0:
        skipped.update(no_values=0, small_spread=0)
    rows: list[dict] = []
    per_source = sel.sources()
    try:
        total, last = len(sel.selected), 0.0
        for k, (i, r, seats) in enumerate(sel.selected):
            added = _replay(sel.gm, r, sel.records[i].moves(r["id"]), seats, agent, format, opts, rows, skipped,
                            strict=r["termination"] == "normal")
            src = per_source[i]
            src["games"] += 1
            src["moves"] += added
            src["_ids"].append(r["id"])
            if progress is not None and (time.monotonic() - last > 0.05 or k + 1 == total):
                last = time.monotonic()
                progress("games", k + 1, total)
    finally:
        sel.close()
    if not rows:
        reasons = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items() if v) or "none"
        raise DatasetError(f"no {format} rows to write: {total} {sel.game} games matched but none of their moves "
                           f"gives one (skipped moves: {reasons})"
                           + (f"; no pair is {margin:g} apart (margin) with a chosen value above {floor:g} (floor): "
                              "try a smaller --margin or a lower --floor" if format == "dpo" else ""))
    if reference is not None:
        from plyground.datasets.llm_ref import reference_logps
        chosen, rejected = reference_logps(rows, *reference, batch_size=ref_batch_size, progress=progress)
        for row, c, r in zip(rows, chosen, rejected):
            row["ref_chosen_logps"], row["ref_rejected_logps"] = c, r
    if progress is not None:
        progress("write", 0, 1)

    import pyarrow.parquet as pq
    if force:
        for name in (MANIFEST_FILE, DATA_FILE, JSONL_FILE):  # no stale manifest beside new data
            if (out / name).exists():
                (out / name).unlink()
    out.mkdir(parents=True, exist_ok=True)
    table = _table(rows, format, ref=reference is not None)
    tmp = out / (DATA_FILE + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out / DATA_FILE)
    files = {DATA_FILE: file_sha256(out / DATA_FILE)}
    if jsonl:
        jtmp = out / (JSONL_FILE + ".tmp")
        with open(jtmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(jtmp, out / JSONL_FILE)
        files[JSONL_FILE] = file_sha256(out / JSONL_FILE)
    system = rows[0]["prompt"][0]["content"] if rows[0]["prompt"] and rows[0]["prompt"][0]["role"] == "system" \
        else None
    manifest = {
        "format": LLM_FORMAT, "version": LLM_VERSION, "kind": format,
        "game": sel.game, "rows": len(rows),
        "columns": table.column_names,
        "prompt": {"agent": agent.spec,
                   "history": agent.params["history"], "templates": agent.params["templates"] or "built-in",
                   "system": system},
        "target": ("the recorded move of the selected agents, as their search chose it" if format == "sft" else
                   "pairs of legal moves ranked by the recorded search's action_values (mover's view)"),
        "sources": sources_manifest(per_source),
        "filters": sel.filters(),
        "excluded_games": dict(sorted(sel.excluded.items())),
        "duplicate_games": sel.duplicates,
        "skipped_moves": skipped,
        "content_hash": files[DATA_FILE],
        "files": files,
        "created": now_iso(),
        "plyground_version": __version__,
    }
    if format == "sft":
        manifest["sft"] = {"min_spread": min_spread}
    if format == "dpo":
        manifest["dpo"] = {"margin": margin, "floor": floor, "pairs_per_position": pairs_per_position,
                           "reference_logps": {"model": str(ref_model)} if ref_model is not None else
                           "not computed (DPOTrainer computes them from its reference model)"}
    mtmp = out / (MANIFEST_FILE + ".tmp")
    mtmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(mtmp, out / MANIFEST_FILE)
    if progress is not None:
        progress("write", 1, 1)
    return manifest
