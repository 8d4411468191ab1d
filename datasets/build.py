"""Training data from arena records: every searched move becomes a (position, policy, value) row.

``build_dataset(dbs, out_dir, ...)`` reads one or more arena records (SQLite), keeps the games and
moves the filters select, replays each game's recorded actions from the game's initial state (so
every observation and legal set is what the rules give, never a stored picture) and writes a
dataset directory (``datasets.store``: Parquet + manifest).

Per kept move (a move of a selected agent whose Decision holds a search):

* ``obs``, ``legal``: ``state.observation_tensor()`` (the mover's view) and the legal mask of the
  position before the move; ``player``: the mover.
* ``policy``: from the recorded search (``decision["search"]``), by ``policy``:

  - ``visits``: the root visit distribution (MCTS);
  - ``scores``: a softmax of the per-move scores ``action_values`` (mover's view, in [-1, 1]) at
    ``temperature``; moves the search did not score get 0.  Temperature 0 is the limit: uniform
    over the best-scored moves;
  - ``proven``: uniform over the proven-best moves of an exact alpha-beta search (``exact`` true,
    every legal move scored): the moves that keep the exact score (ties of ``action_values``
    broken by the engine's raw ``extra["action_scores"]``, which are distance-to-win scores when
    solving); a move of a search that proved nothing is skipped;
  - ``auto`` (default): ``scores`` for alpha-beta engines (engine names starting with
    ``alphabeta``), ``visits`` for any engine that recorded visits.

  ``DEFAULT_TEMPERATURE`` is 0.05: the values are in [-1, 1], so a move 0.05 worse in a
  heuristic evaluation gets 1/e of the best move's weight (depth-limited heuristic values of
  sensible moves lie close together, so a larger temperature spreads the target over them almost
  evenly), and a move one full value unit worse (a draw beside a proven win) practically none
  (e^-20).
* ``outcome``: the game's recorded final return for the mover, scaled to [-1, 1]
  (``games.traits.traits(game).scale``); ``root_value``: the search's root ``value`` (mover's
  view; NaN if it recorded none).

Skipped and counted in the manifest: opening plies (``{"opening": true}``), chance moves, moves
without a recorded search, moves whose search gives no target of the chosen kind, and moves of
agents the filter leaves out.  Games not ended ``normal`` (forfeits on time, errors or illegal
moves, ``max_plies`` cut-offs) are left out unless ``include_forfeits``; ``aborted`` games (no
result) always are.  A game id seen in two records is used once.

Symmetry augmentation (``augment``) adds the transformed copy of every row for each symmetry the
game declares (``games.symmetry``): observation, legal mask, policy and move sequence
transformed, values unchanged.  Merging (``merge``) joins rows with the same observation, player
to move and legal set: targets averaged weighted by count, counts summed, the first move sequence
seen kept.

Games: any turn-based game that provides an observation tensor (native, OpenSpiel games whose
type provides ``observation_tensor``, PettingZoo envs through their twin); others are refused.
In a hidden-information game the observation is the mover's own view.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from plyground.datasets.store import DATA_FILE, MANIFEST_FILE, DatasetError, write_dataset

__all__ = ["build_dataset", "select_games", "Selection", "sources_manifest", "policy_target", "POLICIES", "DEFAULT_TEMPERATURE"]

POLICIES = ("auto", "visits", "scores", "proven")
DEFAULT_TEMPERATURE = 0.05
CHANCE = -1
NO_RESULT = ("aborted",)  # terminations with no result to learn from, left out even with include_forfeits

Progress = Callable[[str, int, int], None]


# --------------------------------------------------------------------------------- policy targets
def _int_keyed(d: Any) -> dict[int, float]:
    if not isinstance(d, dict):
        return {}
    return {int(k): float(v) for k, v in d.items() if v is not None}


def policy_target(search: dict, legal: Sequence[int], num_actions: int, kind: str = "auto",
                  temperature: float = DEFAULT_TEMPERATURE) -> tuple[np.ndarray | None, str]:
    """The policy target of one recorded search: ``(vector, kind used)``, or ``(None, reason)``
    when this search gives no target of ``kind`` (reason ``no_target`` or ``not_proven``).

    ``search`` is a Decision's ``search`` dict (``SearchResult.to_json()``); ``legal`` the legal
    actions of the position.  A visit or score on an illegal action is a ``ValueError``.

    >>> policy_target({"engine": "mcts", "visits": {"0": 3, "2": 1}}, [0, 1, 2], 3)[0].tolist()
    [0.75, 0.0, 0.25]
    >>> p, kind = policy_target({"engine": "alphabeta-numba", "action_values": {"0": 0.0, "1": 0.1}}, [0, 1], 2)
    >>> kind, [round(x, 4) for x in p.tolist()]  # softmax of (0, 0.1) / 0.05
    ('scores', [0.1192, 0.8808])
    >>> policy_target({"engine": "alphabeta-numba", "exact": True, "action_values": {"0": 1.0, "1": 0.0, "2": 1.0},
    ...                "extra": {"action_scores": {"0": 3, "1": 0, "2": 3}}}, [0, 1, 2], 3, "proven")[0].tolist()
    [0.5, 0.0, 0.5]
    """
    engine = str(search.get("engine") or "")
    if kind == "auto":
        if engine.startswith("alphabeta"):
            kind = "scores"
        elif search.get("visits"):
            kind = "visits"
        else:
            return None, "no_target"
    legal_set = set(int(a) for a in legal)
    out = np.zeros(num_actions, dtype=np.float64)
    if kind == "visits":
        visits = {a: v for a, v in _int_keyed(search.get("visits")).items() if v > 0}
        _check_legal(visits, legal_set, "visits")
        total = sum(visits.values())
        if not total > 0:
            return None, "no_target"
        for a, v in visits.items():
            out[a] = v / total
        return out.astype(np.float32), kind
    values = _int_keyed(search.get("action_values"))
    _check_legal(values, legal_set, "action_values")
    if kind == "scores":
        if not values:
            return None, "no_target"
        acts = np.array(sorted(values), dtype=np.int64)
        v = np.array([values[a] for a in acts], dtype=np.float64)
        if temperature > 0:
            w = np.exp((v - v.max()) / temperature)
        else:
            w = (v == v.max()).astype(np.float64)
        out[acts] = w / w.sum()
        return out.astype(np.float32), kind
    if kind == "proven":
        extra = search.get("extra") if isinstance(search.get("extra"), dict) else {}
        if not (engine.startswith("alphabeta") and search.get("exact")) or extra.get("budget_exhausted"):
            return None, "not_proven"
        raw = _int_keyed(extra.get("action_scores"))
        upper = set(int(a) for a in extra.get("upper_bound_actions") or ())
        if not legal_set or not legal_set <= set(values):
            return None, "not_proven"  # a legal move the search did not score: its rank is unknown
        key = {a: (values[a], raw.get(a, 0.0)) for a in legal_set}
        best = max(key[a] for a in legal_set if a not in upper) if legal_set - upper else None
        if best is None or any(key[a] >= best for a in upper):
            return None, "not_proven"  # only a bound that may tie the best move
        chosen = [a for a in legal_set if a not in upper and key[a] == best]
        out[chosen] = 1.0 / len(chosen)
        return out.astype(np.float32), kind
    raise DatasetError(f"policy {kind!r} is not one of {', '.join(POLICIES)}")


def _check_legal(d: dict[int, float], legal: set[int], what: str) -> None:
    bad = sorted(set(d) - legal)
    if bad:
        raise ValueError(f"the search's {what} name actions {bad} that are not legal here (legal: {sorted(legal)})")


# --------------------------------------------------------------------------------- reading records
def _open_record(path: Path):
    """An arena ``Record`` for an existing record file, checked read-only first (opening a
    ``Record`` would add the arena's tables to any other SQLite file)."""
    from plyground.arena.record import Record
    if not path.exists():
        raise DatasetError(f"no record at {str(path)!r} (pass the SQLite file 'plyground arena run' wrote)")
    if not path.is_file():
        raise DatasetError(f"{str(path)!r} is not a file (an arena record is one SQLite file)")
    try:
        con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise DatasetError(f"{str(path)!r} is not a SQLite arena record: {e}") from None
    missing = {"games", "moves", "players", "tournaments"} - tables
    if missing:
        raise DatasetError(f"{str(path)!r} is not an arena record (no {', '.join(sorted(missing))} table)")
    return Record(path)


def _resolve_tournaments(records: list, wanted: Sequence[str]) -> list[set[str]]:
    """For each record, the tournament ids that ``wanted`` (ids or names) select."""
    per, found = [], set()
    present: list[str] = []
    for rec in records:
        ids = set()
        for t in rec.tournaments():
            present.append(f"{t['name']} ({t['id']})")
            for w in wanted:
                if w in (t["id"], t["name"]):
                    ids.add(t["id"])
                    found.add(w)
        per.append(ids)
    unknown = [w for w in wanted if w not in found]
    if unknown:
        raise DatasetError(f"no tournament {', '.join(map(repr, unknown))} in the record(s); present: "
                           + (", ".join(sorted(set(present))) or "none"))
    return per


def _resolve_agents(records: list, wanted: Sequence[str]) -> list[set[str]]:
    """For each record, the player ids whose display name is one of ``wanted``."""
    per, present = [], set()
    for rec in records:
        names = rec.player_names()
        present.update(names.values())
        per.append({pid for pid, name in names.items() if name in wanted})
    unknown = [w for w in wanted if w not in present]
    if unknown:
        raise DatasetError(f"no agent named {', '.join(map(repr, unknown))} in the record(s); agents present: "
                           + (", ".join(sorted(present)) or "none"))
    return per


def _check_game(game) -> tuple[list[int], int]:
    """The observation shape and number of actions of a game datasets can be built for, else a refusal."""
    from plyground.games.traits import traits
    t = traits(game)
    if t.simultaneous:
        raise DatasetError(f"{game.name} is a simultaneous-move game; datasets are built from turn-based games")
    try:
        shape = [int(d) for d in game.observation_tensor_shape()]
    except Exception as e:  # noqa: BLE001 - each adapter says it its own way
        raise DatasetError(f"{game.name} provides no observation tensor ({e}); datasets need one: the native "
                           "games, and OpenSpiel or PettingZoo games whose game provides observation_tensor") from None
    if not shape or any(d < 1 for d in shape):
        raise DatasetError(f"{game.name} has an empty observation tensor {shape}")
    return shape, int(game.num_distinct_actions())


# --------------------------------------------------------------------------------- the build
class _Rows:
    """Rows collected while replaying (flat observations, per-action arrays, scalars, sequences)."""

    def __init__(self) -> None:
        self.obs: list[np.ndarray] = []
        self.legal: list[np.ndarray] = []
        self.policy: list[np.ndarray] = []
        self.player: list[int] = []
        self.outcome: list[float] = []
        self.root_value: list[float] = []
        self.position: list[tuple[int, ...]] = []


def _root_value(search: dict) -> float:
    v = search.get("value")
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


@dataclass(frozen=True)
class SearchedMove:
    """One recorded move that carries a search, as ``searched_moves`` yields it: ``state`` is the
    position before the move (not to be changed), ``legal`` its legal actions, ``history`` the
    actions that led to it."""

    state: Any
    ply: int
    mover: int
    action: int
    legal: list[int]
    search: dict
    history: tuple[int, ...]


def searched_moves(game, row: dict, moves: list[dict], seats: set[int] | None, skipped: dict[str, int],
                   strict: bool) -> Iterator[SearchedMove]:
    """Replay one recorded game through the rules, checking every move, and yield each move of the
    ``seats`` (None: every seat) with a recorded search; chance moves, other seats' moves, opening
    plies and moves without a search are counted in ``skipped``.  ``strict`` (a game ended normally):
    a record that stops short or runs past the end is an error, not a forfeit's cut-off."""
    state = game.new_initial_state()
    history: list[int] = []
    for m in moves:
        ply, player, action = m.get("ply"), m.get("player"), m.get("action")
        if action is None or state.is_terminal():
            if strict:
                raise DatasetError(f"game {row['id']!r}: ply {ply} has no action to replay"
                                   if action is None else f"game {row['id']!r}: ply {ply} comes after the end")
            return  # a forfeited game's record may stop mid-move
        action = int(action)
        mover = int(state.current_player())
        if player is not None and int(player) != mover:
            raise DatasetError(f"game {row['id']!r} ({row['game']}): ply {ply} was recorded for player {player} "
                               f"but the rules give player {mover}; the record does not replay")
        legal = [int(a) for a in state.legal_actions()]
        if action not in legal:
            raise DatasetError(f"game {row['id']!r} ({row['game']}): recorded action {action} at ply {ply} is "
                               f"illegal by the rules (legal: {legal})")
        decision = m.get("decision") if isinstance(m.get("decision"), dict) else {}
        search = decision.get("search")
        if mover == CHANCE or mover < 0:
            skipped["chance"] += 1
        elif seats is not None and mover not in seats:
            skipped["other_agents"] += 1
        elif decision.get("opening"):
            skipped["opening"] += 1
        elif not isinstance(search, dict) or not search:
            skipped["no_search"] += 1
        else:
            yield SearchedMove(state, int(ply if ply is not None else len(history)), mover, action, legal, search,
                               tuple(history))
        state.apply_action(action)
        history.append(action)


def _replay_game(game, row: dict, moves: list[dict], seats: set[int] | None, kind: str, temperature: float,
                 width: int, num_actions: int, scale: Callable[[float], float], rows: _Rows,
                 skipped: dict[str, int], used: dict[str, int], strict: bool) -> int:
    """Replay one game, adding a row per kept move; returns the number of rows added."""
    returns = row.get("returns") or []
    added = 0
    for mv in searched_moves(game, row, moves, seats, skipped, strict):
        try:
            target, why = policy_target(mv.search, mv.legal, num_actions, kind, temperature)
        except ValueError as e:
            raise DatasetError(f"game {row['id']!r} ({row['game']}), ply {mv.ply}: {e}") from None
        if target is None:
            skipped[why] += 1
            continue
        obs = np.asarray(mv.state.observation_tensor(), dtype=np.float32).reshape(-1)
        if obs.size != width:
            raise DatasetError(f"game {row['id']!r}, ply {mv.ply}: the observation has {obs.size} values; "
                               f"the game's shape gives {width}")
        mask = np.zeros(num_actions, dtype=bool)
        mask[mv.legal] = True
        if mv.mover >= len(returns):
            raise DatasetError(f"game {row['id']!r}: no recorded return for player {mv.mover} ({returns})")
        rows.obs.append(obs)
        rows.legal.append(mask)
        rows.policy.append(target)
        rows.player.append(mv.mover)
        rows.outcome.append(scale(float(returns[mv.mover])))
        rows.root_value.append(_root_value(mv.search))
        rows.position.append(mv.history)
        used[why] = used.get(why, 0) + 1
        added += 1
    return added


def _augment(obs, legal, policy, player, outcome, root_value, positions, syms):
    """Every row followed, block by block, by its transform under each symmetry (originals first)."""
    obs_parts, legal_parts, pol_parts, pos = [obs], [legal], [policy], list(positions)
    for sym in syms:
        obs_parts.append(sym.apply_obs(obs))
        legal_parts.append(sym.apply_legal(legal))
        pol_parts.append(sym.apply_policy(policy))
        perm = sym.action_perm.tolist()
        pos.extend(tuple(map(perm.__getitem__, seq)) for seq in positions)
    k = len(syms) + 1
    return (np.concatenate(obs_parts), np.concatenate(legal_parts), np.concatenate(pol_parts),
            np.tile(player, k), np.tile(outcome, k), np.tile(root_value, k), pos)


def _group_sum(x: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of ``x``'s rows per group, given the rows sorted by group (``order``) and each group's
    first position in that order (``starts``)."""
    return np.add.reduceat(x[order], starts, axis=0)


def _merge(obs, legal, policy, player, outcome, root_value, count):
    """Rows with equal (observation, player, legal set) joined: targets weighted by count, counts
    summed; returns the arrays and, per merged row, the index of its first source row."""
    n = obs.shape[0]
    key = np.concatenate([(obs + np.float32(0.0)).view(np.uint8).reshape(n, -1),  # + 0.0: -0.0 keys as 0.0
                          player.astype(np.int8).view(np.uint8).reshape(n, 1),
                          np.packbits(legal, axis=1)], axis=1)
    key = np.ascontiguousarray(key).view(np.dtype((np.void, key.shape[1]))).reshape(n)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    rank = np.empty(len(first), dtype=np.int64)  # groups in the order they were first seen
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    group = rank[inverse]
    first = np.sort(first)
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(len(first)))
    c = count.astype(np.float64)
    csum = _group_sum(c, order, starts)
    pol = _group_sum(policy.astype(np.float64) * c[:, None], order, starts) / csum[:, None]
    pol /= pol.sum(axis=1, keepdims=True)
    out = _group_sum(outcome.astype(np.float64) * c, order, starts) / csum
    has = ~np.isnan(root_value)
    rv_w = _group_sum(np.where(has, c, 0.0), order, starts)
    rv_sum = _group_sum(np.where(has, root_value.astype(np.float64) * c, 0.0), order, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        rv = np.where(rv_w > 0, rv_sum / np.where(rv_w > 0, rv_w, 1.0), np.nan)
    return (obs[first], legal[first], pol.astype(np.float32), player[first], out.astype(np.float32),
            rv.astype(np.float32), csum.astype(np.int32), first)


def _out_dir_check(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {str(out)!r} is a file; a dataset is a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise DatasetError(f"--out {str(out)!r} exists and is not empty; choose a new directory or pass --force "
                           "to replace its dataset")


@dataclass
class Selection:
    """The games the filters select from open arena records (``select_games``); the caller closes
    ``records`` (``close()``)."""

    records: list                                    # arena.record.Record, one per path
    paths: list[Path]
    game: str                                        # the recorded game name
    gm: Any                                          # games.make(game)
    checked: Any                                     # what ``check(gm)`` returned
    selected: list[tuple[int, dict, set[int] | None]]  # (record index, game row, seats kept or None = all)
    excluded: dict[str, int]                         # games left out, by termination
    duplicates: int                                  # game ids seen in an earlier record
    tournaments: list[str] | None
    agents: list[str] | None
    include_forfeits: bool

    def filters(self) -> dict[str, Any]:
        """The manifest's ``filters`` entry."""
        return {"game": self.game, "tournaments": self.tournaments, "agents": self.agents,
                "include_forfeits": self.include_forfeits,
                "terminations": ["normal"] if not self.include_forfeits else "all but " + ", ".join(NO_RESULT)}

    def sources(self) -> list[dict[str, Any]]:
        """One per record, for the caller to fill in (``games``, ``moves``, ``_ids``) and pass to
        ``sources_manifest``."""
        return [{"db": str(p.resolve()), "games": 0, "moves": 0, "_ids": []} for p in self.paths]

    def close(self) -> None:
        for rec in self.records:
            rec.close()


def sources_manifest(per_source: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The manifest's ``sources``: each record's path, games and moves used, and the sha256 of the
    sorted ids of the games used (``_ids``, removed here)."""
    sources = []
    for src in per_source:
        ids = sorted(src.pop("_ids"))
        src["game_ids_sha256"] = hashlib.sha256("\n".join(ids).encode()).hexdigest()
        sources.append(src)
    return sources


def select_games(paths: Sequence[Path], *, game: str | None, tournaments: Sequence[str] | None,
                 agents: Sequence[str] | None, include_forfeits: bool,
                 check: Callable[[Any], Any] = lambda gm: None) -> Selection:
    """Open the records ``paths`` and select the games of ``game`` (required when they hold several)
    in ``tournaments`` (ids or names) with ``agents`` (display names: only their seats are kept),
    ended normally (any but aborted with ``include_forfeits``), each game id once, in id order.
    ``check(gm)`` refuses a game the caller cannot use (raise) before any game is read; what it
    returns is ``Selection.checked``.  Refusals are ``DatasetError`` naming the bad value."""
    from plyground import games as games_mod

    tournaments = list(tournaments) if tournaments else None
    agents = list(agents) if agents else None
    records = [_open_record(p) for p in paths]
    try:
            tids = _resolve_tournaments(records, tournaments) if tournaments else [None] * len(records)
            pids = _resolve_agents(records, agents) if agents else [None] * len(records)
            # the games each record contributes, before the game and termination filters
            candidates = []
            for rec, tset in zip(records, tids):
                rows = sorted(rec.games(), key=lambda r: r["id"])  # by id: the same record gives the same rows
                candidates.append([r for r in rows if tset is None or r["tournament"] in tset])
            names: dict[str, int] = {}
            for rows in candidates:
                for r in rows:
                    names[r["game"]] = names.get(r["game"], 0) + 1
            listing = ", ".join(f"{k} ({v} games)" for k, v in sorted(names.items()))
            where = "the record(s)" + (f" (tournaments {', '.join(tournaments)})" if tournaments else "")
            if not names:
                raise DatasetError(f"no games in {where}")
            if game is None:
                if len(names) > 1:
                    raise DatasetError(f"{where} hold games of several games: {listing}; choose one with --game")
                game = next(iter(names))
            elif game not in names:
                raise DatasetError(f"no games of {game!r} in {where}; present: {listing}")
            gm = games_mod.make(game)
            checked = check(gm)

            excluded: dict[str, int] = {}
            selected: list[tuple[int, dict, set[int] | None]] = []  # (record index, game row, seats kept)
            seen: set[str] = set()
            duplicates = 0
            for i, rows in enumerate(candidates):
                for r in rows:
                    if r["game"] != game:
                        continue
                    term = r["termination"]
                    if term in NO_RESULT or (term != "normal" and not include_forfeits):
                        excluded[term] = excluded.get(term, 0) + 1
                        continue
                    if r["id"] in seen:
                        duplicates += 1
                        continue
                    seats = None
                    if pids[i] is not None:
                        seats = {s for s, pid in enumerate(r["players"] or []) if pid in pids[i]}
                        if not seats:
                            continue
                    seen.add(r["id"])
                    selected.append((i, r, seats))
            if not selected:
                detail = f" ({', '.join(f'{v} {k}' for k, v in sorted(excluded.items()))} left out" \
                         + ("; --include-forfeits keeps forfeited games" if set(excluded) - set(NO_RESULT) else "") \
                         + ")" if excluded else ""
                who = f" with {', '.join(agents)}" if agents else ""
                raise DatasetError(f"no {game} games{who} to use in {where}{detail}")

    except BaseException:
        for rec in records:
            rec.close()
        raise
    return Selection(records, list(paths), game, gm, checked, selected, excluded, duplicates, tournaments, agents,
                     include_forfeits)


def build_dataset(dbs: str | Path | Iterable[str | Path], out_dir: str | Path, *, game: str | None = None,
                  tournaments: Sequence[str] | None = None, agents: Sequence[str] | None = None,
                  policy: str = "auto", temperature: float = DEFAULT_TEMPERATURE, augment: bool = True,
                  merge: bool = True, include_forfeits: bool = False, force: bool = False,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Build a dataset directory at ``out_dir`` from the arena record(s) ``dbs``; returns its manifest.

    ``game``: the recorded game name to use (required when the records hold several);
    ``tournaments``: tournament ids or names; ``agents``: player display names (only their moves
    are kept); ``policy``: auto | visits | scores | proven with ``temperature`` for scores (see the
    module docstring); ``augment``: add the game's symmetric copies; ``merge``: join repeated
    positions; ``include_forfeits``: keep games not ended normally (not aborted ones); ``force``:
    write into a non-empty ``out_dir`` (its dataset files are replaced); ``progress(stage, done,
    total)`` is called as games are replayed (stage ``"games"``) and once per later stage
    (``"augment"``, ``"merge"``, ``"write"``).
    """
    from plyground import __version__
    from plyground.arena.record import now_iso
    from plyground.games.symmetry import symmetries
    from plyground.games.traits import traits

    if policy not in POLICIES:
        raise DatasetError(f"policy {policy!r} is not one of {', '.join(POLICIES)}")
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise DatasetError(f"temperature {temperature!r} is not a number") from None
    if not (math.isfinite(temperature) and temperature >= 0):
        raise DatasetError(f"temperature {temperature!r} must be a finite number >= 0 (0: uniform over the best)")
    paths = [Path(dbs)] if isinstance(dbs, (str, Path)) else [Path(p) for p in dbs]
    if not paths:
        raise DatasetError("no record given (pass at least one --db FILE)")
    out = Path(out_dir)
    _out_dir_check(out, force)
    tournaments = list(tournaments) if tournaments else None
    agents = list(agents) if agents else None

    sel = select_games(paths, game=game, tournaments=tournaments, agents=agents, include_forfeits=include_forfeits,
                       check=_check_game)
    records, game, gm, selected, excluded, duplicates = (sel.records, sel.game, sel.gm, sel.selected, sel.excluded,
                                                         sel.duplicates)
    try:
        obs_shape, num_actions = sel.checked
        width = int(np.prod(obs_shape))
        t = traits(gm)
        skipped = {k: 0 for k in ("opening", "chance", "no_search", "no_target", "not_proven", "other_agents")}
        used: dict[str, int] = {}
        rows = _Rows()
        per_source = sel.sources()
        total, last = len(selected), 0.0
        for k, (i, r, seats) in enumerate(selected):
            added = _replay_game(gm, r, records[i].moves(r["id"]), seats, policy, temperature, width, num_actions,
                                 t.scale, rows, skipped, used, strict=r["termination"] == "normal")
            src = per_source[i]
            src["games"] += 1
            src["moves"] += added
            src["_ids"].append(r["id"])
            if progress is not None and (time.monotonic() - last > 0.05 or k + 1 == total):
                last = time.monotonic()
                progress("games", k + 1, total)
    finally:
        for rec in records:
            rec.close()

    recorded = len(rows.player)
    if not recorded:
        reasons = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items() if v) or "none"
        raise DatasetError(f"no positions to write: {total} {game} games matched but none of their moves gives a "
                           f"{policy} policy target (skipped moves: {reasons})")
    obs = np.stack(rows.obs)
    legal = np.stack(rows.legal)
    pol = np.stack(rows.policy)
    player = np.asarray(rows.player, dtype=np.int64)
    outcome = np.asarray(rows.outcome, dtype=np.float32)
    root_value = np.asarray(rows.root_value, dtype=np.float32)
    positions = rows.position
    del rows

    syms = symmetries(gm) if augment else []
    if syms:
        if progress is not None:
            progress("augment", 0, 1)
        obs, legal, pol, player, outcome, root_value, positions = _augment(
            obs, legal, pol, player, outcome, root_value, positions, syms)
    count = np.ones(len(player), dtype=np.int32)
    before = len(player)
    if merge:
        if progress is not None:
            progress("merge", 0, 1)
        obs, legal, pol, player, outcome, root_value, count, first = _merge(
            obs, legal, pol, player, outcome, root_value, count)
        positions = [positions[j] for j in first.tolist()]
    if progress is not None:
        progress("write", 0, 1)

    sources = sources_manifest(per_source)
    manifest = {
        "game": game,
        "num_players": t.num_players,
        "positions": before,
        "recorded_positions": recorded,
        "sources": sources,
        "filters": sel.filters(),
        "excluded_games": dict(sorted(excluded.items())),
        "duplicate_games": duplicates,
        "skipped_moves": skipped,
        "policy": {"kind": policy, "temperature": temperature, "used": dict(sorted(used.items()))},
        "augment": [s.name for s in syms],
        "merged": bool(merge),
        "outcome": "the game's final return for the mover, scaled to [-1, 1]",
        "root_value": "the recorded search's root value for the mover (NaN if none)",
        "created": now_iso(),
        "plyground_version": __version__,
    }
    if force and (out / MANIFEST_FILE).exists():
        (out / MANIFEST_FILE).unlink()  # no stale manifest beside new data if the write below fails
        if (out / DATA_FILE).exists():
            (out / DATA_FILE).unlink()
    written = write_dataset(out, obs=obs.reshape([len(player)] + obs_shape), player=player, legal=legal, policy=pol,
                            outcome=outcome, root_value=root_value, count=count,
                            position=[" ".join(map(str, p)) for p in positions], manifest=manifest)
    if progress is not None:
        progress("write", 1, 1)
    return written
