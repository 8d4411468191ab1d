"""Tournament configuration: a TOML file (read with ``tomllib``, never evaluated) checked field by field.

Every bad field raises ``ConfigError`` naming the field, the value given and what is allowed.

Example (``examples/default.toml``)::

    name = "default"
    game = "connect4"
    format = "round-robin"        # round-robin | gauntlet | swiss
    games_per_pairing = 2         # with colour_swap: an even number (colour-swapped pairs)
    colour_swap = true
    seed = 1
    move_time = 5.0               # seconds per move; over it the mover forfeits (optional)
    max_plies = 200               # stop a game as a draw after this many plies (optional)
    agents = ["random", "minimax:depth=2", { agent = "mcts", sims = 200, name = "mcts-200" }]

    [openings]                    # optional
    random_plies = 2              # or: moves = ["44", "4453"] in the game's notation

Agents are spec strings (``"mcts:sims=200"``) or tables: ``{agent = "mcts", sims = 200}`` or
``{spec = "mcts:sims=200"}``, each with an optional display ``name``; a table with neither
``agent`` nor ``spec`` takes ``name`` as the agent (the ``plyground.agents.make`` convention).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from plyground.games.errors import PlygroundError

FORMATS = ("round-robin", "gauntlet", "swiss")
KEYS = {
    "name": "display name of the tournament (default: the file's stem)",
    "game": "game name as plyground.games.make takes it (required)",
    "agents": "list of agent specs or tables, at least two (required)",
    "format": "round-robin | gauntlet | swiss (default round-robin)",
    "games_per_pairing": "games each pairing plays (default 2)",
    "colour_swap": "play games in colour-swapped pairs with the same opening (default true)",
    "rounds": "swiss only: number of rounds (default ceil(log2(agents)))",
    "gauntlet": "gauntlet only: name (or list of names) of the agent(s) playing all others (default the first)",
    "openings": "table: random_plies = N, or moves = [sequences in the game's notation], optional order",
    "move_time": "seconds per move (default: no limit)",
    "grace": "extra seconds past move_time before a thinking agent is interrupted (default 2)",
    "max_plies": "plies after which a game stops as a draw (default: none)",
    "seed": "integer seed fixing the schedule, openings and agents' randomness (default 0)",
    "retries": "retries of a game hit by an infrastructure error before it is recorded aborted (default 3)",
    "backoff": "seconds before the first retry; doubles each time (default 2)",
}
OPENING_KEYS = {"random_plies": "number of random plies played before the agents take over",
                "moves": "list of move sequences in the game's notation",
                "order": "sequential | random: how sequences are assigned to pairs (default sequential)"}


class ConfigError(PlygroundError, ValueError):
    """A tournament config field with a bad value."""


@dataclass(frozen=True)
class AgentEntry:
    """One configured agent: display name, the spec as given (string or table), and its canonical spec/config."""

    name: str
    spec: Any
    canonical: str
    config: dict


@dataclass(frozen=True)
class TournamentConfig:
    """A checked tournament config; ``to_dict()`` is what is hashed into the tournament id."""

    name: str
    game: str
    agents: tuple[AgentEntry, ...]
    format: str = "round-robin"
    games_per_pairing: int = 2
    colour_swap: bool = True
    rounds: int | None = None
    gauntlet: tuple[str, ...] = ()
    opening_plies: int = 0
    opening_moves: tuple[tuple[int, ...], ...] = ()
    opening_texts: tuple[str, ...] = ()
    opening_order: str = "sequential"
    move_time: float | None = None
    grace: float = 2.0
    max_plies: int | None = None
    seed: int = 0
    retries: int = 3
    backoff: float = 2.0
    source: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        """The parsed config as plain JSON-able data (agents by name and canonical spec)."""
        return {
            "name": self.name, "game": self.game, "format": self.format,
            "agents": [{"name": a.name, "spec": a.canonical} for a in self.agents],
            "games_per_pairing": self.games_per_pairing, "colour_swap": self.colour_swap,
            "rounds": self.rounds, "gauntlet": list(self.gauntlet),
            "openings": {"random_plies": self.opening_plies, "moves": list(self.opening_texts),
                         "order": self.opening_order},
            "move_time": self.move_time, "grace": self.grace, "max_plies": self.max_plies, "seed": self.seed,
            "retries": self.retries, "backoff": self.backoff,
        }

    @property
    def id(self) -> str:
        """The tournament id: a hash of ``to_dict()`` (which includes the seed) without the display
        name, so renaming the file or the tournament still resumes the same games."""
        from plyground.arena.record import config_hash
        d = self.to_dict()
        del d["name"]
        return config_hash(d)


def _bad(field_name: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"config field {field_name!r}: {value!r} is not allowed; {allowed}")


def _int(d: Mapping, key: str, default: Any, lo: int | None = None, required: bool = False) -> Any:
    if key not in d:
        if required:
            raise ConfigError(f"config field {key!r} is missing; {KEYS.get(key, '')}")
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(key, v, f"expected an integer{'' if lo is None else f' >= {lo}'}")
    if lo is not None and v < lo:
        raise _bad(key, v, f"expected an integer >= {lo}")
    return v


def _float(d: Mapping, key: str, default: Any, lo: float = 0.0, strict: bool = True) -> Any:
    if key not in d:
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or (v <= lo if strict else v < lo):
        raise _bad(key, v, f"expected a number {'>' if strict else '>='} {lo}")
    return float(v)


def load_config(path: str | Path) -> TournamentConfig:
    """Read and check a TOML tournament config."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read tournament config {str(p)!r}: {e.strerror or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    return config_from_dict(data, default_name=p.stem, source=str(p))


def _agent_entries(raw: Any) -> tuple[AgentEntry, ...]:
    from plyground import agents as agents_mod
    if not isinstance(raw, list) or len(raw) < 2:
        raise _bad("agents", raw, "expected a list of at least two agent specs or tables")
    out: list[AgentEntry] = []
    for i, item in enumerate(raw):
        where = f"agents[{i}]"
        display = None
        if isinstance(item, str):
            spec: Any = item
        elif isinstance(item, Mapping):
            table = dict(item)
            if "spec" in table:
                spec = table.pop("spec")
                display = table.pop("name", None)
                extra = sorted(set(table) - {"agent"})
                if extra or not isinstance(spec, str):
                    raise _bad(where, item, "a table with 'spec' takes only 'spec' (a string) and 'name'")
            elif "agent" in table:
                display = table.pop("name", None)
                spec = {"name": table.pop("agent"), **table}
            elif "name" in table:
                spec = table
            else:
                raise _bad(where, item, "a table needs 'agent' (the agent's kind, e.g. \"mcts\") or 'spec'")
            if display is not None and (not isinstance(display, str) or not display.strip()):
                raise _bad(f"{where}.name", display, "expected a non-empty string")
        else:
            raise _bad(where, item, "expected a spec string like \"mcts:sims=200\" or a table")
        try:
            agent = agents_mod.make(spec)
        except PlygroundError as e:
            raise ConfigError(f"config field {where!r}: {e}") from None
        try:
            canonical, config = agent.spec, agent.config()
        finally:
            agent.close()
        out.append(AgentEntry(name=(display or canonical).strip(), spec=spec, canonical=canonical, config=config))
    from plyground.arena.record import config_hash
    for i, a in enumerate(out):
        for j in range(i):
            if out[j].name == a.name:
                raise ConfigError(f"config field 'agents': agents[{j}] and agents[{i}] are both named {a.name!r}; "
                                  "names must be unique (give one a different 'name')")
            if config_hash(out[j].config) == config_hash(a.config):
                raise ConfigError(f"config field 'agents': agents[{j}] ({out[j].name}) and agents[{i}] ({a.name}) "
                                  "have the same configuration, so they would be the same player; drop one")
    return tuple(out)


def _openings(raw: Any, game_name: str) -> tuple[int, tuple, tuple, str]:
    if raw is None:
        return 0, (), (), "sequential"
    if not isinstance(raw, Mapping):
        raise _bad("openings", raw, "expected a table: random_plies = N or moves = [\"...\"]")
    unknown = sorted(set(raw) - set(OPENING_KEYS))
    if unknown:
        raise _bad(f"openings.{unknown[0]}", raw[unknown[0]],
                   "allowed keys: " + "; ".join(f"{k} ({h})" for k, h in OPENING_KEYS.items()))
    if "random_plies" in raw and "moves" in raw:
        raise ConfigError("config field 'openings': give either random_plies or moves, not both")
    order = raw.get("order", "sequential")
    if order not in ("sequential", "random"):
        raise _bad("openings.order", order, "allowed: sequential, random")
    plies = 0
    if "random_plies" in raw:
        try:
            plies = _int(raw, "random_plies", 0, lo=0)
        except ConfigError as e:
            raise ConfigError(str(e).replace("'random_plies'", "'openings.random_plies'")) from None
    moves: list[tuple[int, ...]] = []
    texts: list[str] = []
    if "moves" in raw:
        seqs = raw["moves"]
        if not isinstance(seqs, list) or not seqs:
            raise _bad("openings.moves", seqs, "expected a non-empty list of move sequences (strings)")
        from plyground import games
        game = games.make(game_name)
        for k, seq in enumerate(seqs):
            if isinstance(seq, list) and all(isinstance(x, str) for x in seq):
                seq = " ".join(seq)
            if not isinstance(seq, str):
                raise _bad(f"openings.moves[{k}]", seq, "expected a string of moves in the game's notation")
            try:
                state = games.play_moves(game, seq)
            except PlygroundError as e:
                raise ConfigError(f"config field 'openings.moves[{k}]': {seq!r}: {e}") from None
            if state.is_terminal():
                raise _bad(f"openings.moves[{k}]", seq, "an opening must leave the game unfinished")
            moves.append(tuple(int(a) for a in state.history()))
            texts.append(seq)
    return plies, tuple(moves), tuple(texts), order


def config_from_dict(data: Mapping[str, Any], default_name: str = "tournament",
                     source: str | None = None) -> TournamentConfig:
    """Check a config given as plain data (a parsed TOML table) and return it."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a tournament config is a table of fields; got {data!r}")
    data = dict(data)
    if "color_swap" in data:
        if "colour_swap" in data:
            raise ConfigError("config: give colour_swap or color_swap, not both")
        data["colour_swap"] = data.pop("color_swap")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(f"config field {unknown[0]!r} is unknown; allowed fields: "
                          + "; ".join(f"{k} ({h})" for k, h in KEYS.items()))
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise _bad("name", name, "expected a non-empty string")
    if "game" not in data:
        raise ConfigError(f"config field 'game' is missing; {KEYS['game']}")
    game = data["game"]
    from plyground import games
    if not isinstance(game, str):
        raise _bad("game", game, "expected a game name string, e.g. \"connect4\"")
    try:
        g = games.make(game)
    except PlygroundError as e:
        raise ConfigError(f"config field 'game': {e}") from None
    if "agents" not in data:
        raise ConfigError(f"config field 'agents' is missing; {KEYS['agents']}")
    agents = _agent_entries(data["agents"])
    if g.num_players() != 2:
        raise _bad("game", game, f"the arena plays two-player games; this one has {g.num_players()} players")
    fmt = data.get("format", "round-robin")
    if fmt not in FORMATS:
        raise _bad("format", fmt, f"allowed: {', '.join(FORMATS)}")
    if fmt == "swiss":
        from plyground.games.traits import traits
        t = traits(g)
        if not t.win_draw_loss:   # Swiss pairs by points, which only wins, draws and losses give
            raise _bad("format", fmt, f"{game} is {t.utility.replace('_', '-')}: its games have no win/draw/loss "
                                      "to pair players by; use round-robin or gauntlet")
    colour_swap = data.get("colour_swap", True)
    if not isinstance(colour_swap, bool):
        raise _bad("colour_swap", colour_swap, "expected true or false")
    gpp = _int(data, "games_per_pairing", 2, lo=1)
    if colour_swap and gpp % 2:
        raise _bad("games_per_pairing", gpp, "with colour_swap = true it must be even (games come in "
                                               "colour-swapped pairs); use an even number or colour_swap = false")
    rounds = None
    if "rounds" in data:
        if fmt != "swiss":
            raise _bad("rounds", data["rounds"], "only the swiss format takes 'rounds'")
        rounds = _int(data, "rounds", None, lo=1)
    elif fmt == "swiss":
        rounds = max(1, math.ceil(math.log2(len(agents))))
    names = [a.name for a in agents]
    gauntlet: tuple[str, ...] = ()
    if "gauntlet" in data:
        if fmt != "gauntlet":
            raise _bad("gauntlet", data["gauntlet"], "only the gauntlet format takes 'gauntlet'")
        gv = data["gauntlet"]
        gl = [gv] if isinstance(gv, str) else gv
        if not isinstance(gl, list) or not gl or not all(isinstance(x, str) for x in gl):
            raise _bad("gauntlet", gv, "expected an agent name or a list of agent names")
        for x in gl:
            if x not in names:
                raise _bad("gauntlet", x, f"not an agent's name; names: {', '.join(names)}")
        if len(set(gl)) == len(names):
            raise _bad("gauntlet", gv, "at least one agent must be outside the gauntlet")
        gauntlet = tuple(dict.fromkeys(gl))
    elif fmt == "gauntlet":
        gauntlet = (names[0],)
    plies, moves, texts, order = _openings(data.get("openings"), game)
    seed = _int(data, "seed", 0)
    return TournamentConfig(
        name=name.strip(), game=game, agents=agents, format=fmt, games_per_pairing=gpp, colour_swap=colour_swap,
        rounds=rounds, gauntlet=gauntlet, opening_plies=plies, opening_moves=moves, opening_texts=texts,
        opening_order=order, move_time=_float(data, "move_time", None), grace=_float(data, "grace", 2.0, strict=False),
        max_plies=_int(data, "max_plies", None, lo=1), seed=seed, retries=_int(data, "retries", 3, lo=0),
        backoff=_float(data, "backoff", 2.0, strict=False), source=source)
