"""The per-agent report of an analysed record: for each agent, the moves analysed, accuracy %,
average loss, inaccuracies / mistakes / blunders per 100 moves and the exact error rate where the
positions were solved, overall and by game phase; for LLM agents also illegal first answers, re-asks,
fallbacks, tokens and latency per move.  ``build_report`` computes it, ``print_report`` shows it as a
table, ``write_report`` writes ``report.json`` and PNG plots into a directory.

Rules:

- Only the agents' own moves count: random opening plies (``decision.opening``) are left out.
- Phases are thirds of each game by ply: ply k of a game of n plies is in the opening when
  ``3k < n``, in the middle when ``3k < 2n``, else in the end.
- Accuracy is lichess's per-move accuracy (``arena.labels.accuracy``) averaged over an agent's moves
  in each game, then over its games (each game weighs the same).
- The exact error rate is the share of an agent's moves whose label is exact (both values proven)
  that lower or throw away the game-theoretic outcome; ``None`` when none of its moves was exact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plyground.arena import labels as L
from plyground.arena.evaluations import AnalysisError, is_opening, resolve_engine
from plyground.arena.export import open_record, tournament_ids
from plyground.games.errors import PlygroundError

__all__ = ["PHASES", "Report", "build_report", "print_report", "write_report", "phase_of", "output_dir"]

PHASES = ("opening", "middle", "end")


def phase_of(ply: int, plies: int) -> str:
    """The phase of ``ply`` (0-based) in a game of ``plies`` plies: thirds by ply.

    >>> [phase_of(k, 9) for k in range(9)]
    ['opening', 'opening', 'opening', 'middle', 'middle', 'middle', 'end', 'end', 'end']
    """
    n = max(1, int(plies))
    return PHASES[min(2, 3 * int(ply) // n)]


@dataclass
class _Acc:
    """Running sums for one agent (and one phase)."""

    moves: int = 0
    loss: float = 0.0
    labels: dict = field(default_factory=lambda: {k: 0 for k in L.LABELS})
    exact: int = 0
    exact_errors: int = 0
    per_game: dict = field(default_factory=dict)  # game -> [sum of accuracies, moves]

    def add(self, game: str, label: str | None, loss: float, accuracy: float, exact: bool) -> None:
        self.moves += 1
        self.loss += loss
        if label in self.labels:
            self.labels[label] += 1
        if exact:
            self.exact += 1
            self.exact_errors += label is not None
        g = self.per_game.setdefault(game, [0.0, 0])
        g[0] += accuracy
        g[1] += 1

    def summary(self) -> dict[str, Any]:
        n = self.moves
        games = [s / k for s, k in self.per_game.values() if k]
        out: dict[str, Any] = {
            "moves": n, "games": len(games),
            "accuracy": sum(games) / len(games) if games else None,
            "average_loss": self.loss / n if n else None,
        }
        for k in L.LABELS:
            out[f"{k}_count"] = self.labels[k]
            out[f"{k}_per_100"] = 100.0 * self.labels[k] / n if n else None
        out.update(exact_moves=self.exact, exact_errors=self.exact_errors,
                   exact_error_rate=self.exact_errors / self.exact if self.exact else None)
        return out


@dataclass
class Report:
    """The report: the engine whose analysis it reads, the games, and one dict per agent."""

    engine: str
    tournament: str | None
    games: int
    moves: int
    exact_moves: int
    agents: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "tournament": self.tournament, "games": self.games, "moves": self.moves,
                "exact_moves": self.exact_moves,
                "exact_share": self.exact_moves / self.moves if self.moves else None, "agents": self.agents}


def _engines(rec, tids: list[str] | None) -> list[tuple[str, int]]:
    sql = "SELECT a.engine, COUNT(*) FROM analysis a JOIN games g ON g.id = a.game"
    args: list = []
    if tids is not None:
        sql += f" WHERE g.tournament IN ({', '.join('?' * len(tids))})"
        args = list(tids)
    return [(e, n) for e, n in rec.db.conn.execute(sql + " GROUP BY a.engine ORDER BY a.engine", args)]


def _loads(text: str | None) -> dict:
    if not text:
        return {}
    try:
        v = json.loads(text)
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


def _llm_stats(decisions: list[dict]) -> dict[str, Any] | None:
    """Per-move LLM figures from the moves' decisions (None when no move called an LLM)."""
    llm_moves = [d for d in decisions if isinstance(d.get("llm"), dict) and d["llm"]]
    if not llm_moves:
        return None
    n = len(decisions)
    asked = illegal = reasks = fallbacks = tokens = 0
    latency = 0.0
    for d in decisions:
        llm = d.get("llm") or {}
        fallbacks += bool(d.get("fallback"))
        tokens += int(llm.get("prompt_tokens") or 0) + int(llm.get("completion_tokens") or 0)
        latency += float(llm.get("latency") or 0.0)
        answers = [e for e in llm.get("log") or [] if isinstance(e, dict) and e.get("role") == "move" and "parsed" in e]
        info = d.get("info") or {}
        if answers:
            asked += 1
            parsed = answers[0].get("parsed") or {}
            illegal += parsed.get("action") is None
        n_asked = info.get("asked") if isinstance(info.get("asked"), int) else len(answers)
        reasks += max(0, n_asked - 1)
    return {"moves": n, "moves_asked": asked, "illegal_first_answers": illegal,
            "illegal_first_rate": illegal / asked if asked else None, "reasks": reasks,
            "reasks_per_move": reasks / n, "fallbacks": fallbacks, "fallback_rate": fallbacks / n,
            "tokens_per_move": tokens / n, "latency_per_move": latency / n}


def build_report(db: str | Path, tournament: str | None = None, engine: str | None = None) -> Report:
    """The per-agent report of ``engine``'s analysis of the record's games (one tournament's if given).
    Without ``engine``, the only engine that analysed them; several is an error naming them."""
    rec = open_record(db)
    try:
        tids = tournament_ids(rec, tournament)
        have = _engines(rec, tids)
        names = [e for e, _ in have]
        if engine is None:
            if not have:
                raise AnalysisError("no move of these games is analysed yet: run 'plyground analyze games --db "
                                    f"{rec.path}' first")
            if len(have) > 1:
                raise AnalysisError("several engines analysed these games; choose one with --engine: "
                                    + ", ".join(f"{e} ({n} moves)" for e, n in have))
            engine = names[0]
        else:
            engine = resolve_engine(names, engine, "these games")
        players = rec.player_names()
        where, args = "", [engine]
        if tids is not None:
            where = f" AND g.tournament IN ({', '.join('?' * len(tids))})"
            args += tids
        rows = rec.db.conn.execute(
            "SELECT a.game, a.ply, a.player, a.label, a.exact, a.value_before, a.value_after, a.detail, g.players, "
            "g.plies FROM analysis a JOIN games g ON g.id = a.game WHERE a.engine = ?" + where
            + " ORDER BY a.game, a.ply", args).fetchall()
        overall: dict[str, _Acc] = {}
        phases: dict[tuple[str, str], _Acc] = {}
        games, moves, exact_moves = set(), 0, 0
        seat_cache: dict[str, list] = {}
        for gid, ply, seat, label, exact, vb, va, detail, seats, plies in rows:
            d = _loads(detail)
            if is_opening(d):
                continue
            ids = seat_cache.get(gid)
            if ids is None:
                ids = seat_cache[gid] = json.loads(seats) if seats else []
            name = players.get(ids[seat], ids[seat]) if 0 <= seat < len(ids) else f"seat {seat}"
            accuracy = d.get("accuracy")
            if accuracy is None:
                accuracy = L.accuracy(L.win_percent(vb), L.win_percent(va))
            loss = d.get("loss", L.loss(vb, va))
            for acc in (overall.setdefault(name, _Acc()), phases.setdefault((name, phase_of(ply, plies)), _Acc())):
                acc.add(gid, label, float(loss), float(accuracy), bool(exact))
            games.add(gid)
            moves += 1
            exact_moves += bool(exact)
        # LLM figures from every move of the same games (an LLM move needs no analysis to be counted)
        decisions: dict[str, list[dict]] = {}
        if games:
            for gid, seat, decision, seats in rec.db.conn.execute(
                    "SELECT m.game, m.player, m.decision, g.players FROM moves m JOIN games g ON g.id = m.game "
                    "WHERE m.game IN (SELECT DISTINCT game FROM analysis WHERE engine = ?)"
                    + where, args):
                d = _loads(decision)
                if is_opening(d) or seat is None or seat < 0:
                    continue
                ids = json.loads(seats) if seats else []
                name = players.get(ids[seat], ids[seat]) if seat < len(ids) else f"seat {seat}"
                decisions.setdefault(name, []).append(d)
        agents = []
        for name in sorted(overall, key=lambda n: (-(overall[n].summary()["accuracy"] or 0.0), n)):
            entry = {"agent": name, **overall[name].summary(),
                     "phases": {p: phases[(name, p)].summary() for p in PHASES if (name, p) in phases},
                     "llm": _llm_stats(decisions.get(name, []))}
            agents.append(entry)
        return Report(engine=engine, tournament=tournament, games=len(games), moves=moves, exact_moves=exact_moves,
                      agents=agents)
    finally:
        rec.close()


def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_report(report: Report, console=None) -> None:
    """The report as rich tables: one line per agent, then one per agent and phase, then LLM figures."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    share = f"{100 * report.exact_moves / report.moves:.1f}%" if report.moves else "-"
    t = Table(title=f"Move analysis by {report.engine}: {report.moves} moves of {report.games} games, "
                    f"{share} exactly labelled")
    for col in ("agent", "moves", "accuracy %", "avg loss", "inacc/100", "mist/100", "blund/100", "exact err %",
                "exact moves"):
        t.add_column(col, justify="left" if col == "agent" else "right")

    def cells(s: dict) -> list[str]:
        rate = s["exact_error_rate"]
        return [str(s["moves"]), _pct(s["accuracy"]), _pct(s["average_loss"], 3), _pct(s["inaccuracy_per_100"]),
                _pct(s["mistake_per_100"]), _pct(s["blunder_per_100"]),
                "-" if rate is None else f"{100 * rate:.1f}", str(s["exact_moves"])]

    for a in report.agents:
        t.add_row(a["agent"], *cells(a))
    console.print(t)
    t = Table(title="By game phase (thirds of each game by ply)")
    t.add_column("agent")
    t.add_column("phase")
    for col in ("moves", "accuracy %", "avg loss", "inacc/100", "mist/100", "blund/100", "exact err %",
                "exact moves"):
        t.add_column(col, justify="right")
    for a in report.agents:
        for p, s in a["phases"].items():
            t.add_row(a["agent"], p, *cells(s))
    console.print(t)
    llm = [a for a in report.agents if a["llm"]]
    if llm:
        t = Table(title="LLM agents, per move")
        for col in ("agent", "moves", "illegal 1st %", "re-asks", "fallback %", "tokens", "latency s"):
            t.add_column(col, justify="left" if col == "agent" else "right")
        for a in llm:
            x = a["llm"]
            t.add_row(a["agent"], str(x["moves"]),
                      "-" if x["illegal_first_rate"] is None else f"{100 * x['illegal_first_rate']:.1f}",
                      f"{x['reasks_per_move']:.2f}", f"{100 * x['fallback_rate']:.1f}", f"{x['tokens_per_move']:.0f}",
                      f"{x['latency_per_move']:.3f}")
        console.print(t)
    console.print("Labels are exact (the move keeps, lowers or throws away the solved outcome) where both values "
                  "are proven; elsewhere they follow the engine's win-chance drop (0.1 / 0.2 / 0.3).")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def output_dir(path: str | Path) -> Path:
    """``path`` as a folder to write into, created if missing; a file there, or a folder that cannot be
    made, is a ``PlygroundError``."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise PlygroundError(f"--out {str(out)!r} is a file; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PlygroundError(f"cannot create the folder {str(out)!r}: {e.strerror or e}") from None
    return out


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """Write ``report.json``, ``accuracy_by_phase.png`` and ``errors_per_100.png`` into ``out_dir``
    (created if missing); returns the paths written."""
    import numpy as np

    out = output_dir(out_dir)
    paths = []
    p = out / "report.json"
    p.write_text(json.dumps(report.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    paths.append(p)
    names = [a["agent"] for a in report.agents]
    x = np.arange(len(names))

    fig = _figure(max(5.0, 1.3 * len(names) + 2.5), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / (len(PHASES) + 1)
    for i, ph in enumerate(("all",) + PHASES):
        vals = [(a["accuracy"] if ph == "all" else a["phases"].get(ph, {}).get("accuracy")) for a in report.agents]
        ax.bar(x + (i - len(PHASES) / 2) * width, [np.nan if v is None else v for v in vals], width, label=ph)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize="small")
    ax.set_ylim(0, 118)   # room for the legend above the 100% bars
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("accuracy % (lichess, per game)")
    ax.set_title(f"Accuracy by game phase ({report.engine})")
    ax.legend(fontsize="small", ncol=4, loc="upper center")
    ax.grid(axis="y", color="0.92")
    fig.tight_layout()
    p = out / "accuracy_by_phase.png"
    fig.savefig(p, format="png")
    paths.append(p)

    fig = _figure(max(5.0, 1.1 * len(names) + 2.5), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    bottom = np.zeros(len(names))
    for lab, colour in zip(L.LABELS, ("#e6c229", "#f17105", "#d11149")):
        vals = np.array([a[f"{lab}_per_100"] or 0.0 for a in report.agents])
        ax.bar(x, vals, 0.6, bottom=bottom, label=lab, color=colour)
        bottom += vals
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize="small")
    ax.set_ylabel("per 100 moves")
    ax.set_title(f"Inaccuracies, mistakes and blunders ({report.engine})")
    ax.legend(fontsize="small")
    ax.grid(axis="y", color="0.92")
    fig.tight_layout()
    p = out / "errors_per_100.png"
    fig.savefig(p, format="png")
    paths.append(p)
    return paths
