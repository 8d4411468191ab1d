"""The replay page: one self-contained HTML file per recorded game, and an index of a tournament's games.

The game is replayed in Python through its rules (``games.make(name)``, the recorded actions from the
start, as ``arena.replay`` does); each ply's board (``arena.boards_svg``), its move, the mover's
statistics, the analysis row and, for LLM agents, the calls and replies become one JSON document in a
``<script type="application/json">`` block.  The page's script only switches between those frames.

Nothing leaves the file: no CDN, no font, no image, and a Content-Security-Policy of ``default-src
'none'`` that allows only the page's own script (by its hash) and styles, so even markup smuggled into
the record could fetch nothing nor run.  Record text (agent names, replies, prompts, errors, tags) is
escaped twice over: ``html.escape`` where Python writes it into markup, and in the page it is only ever
set with ``textContent``; the JSON block escapes ``<``, ``>`` and ``&`` so no string can close it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from html import escape
from pathlib import Path
from typing import Any

from plyground.arena.boards_svg import board_view, chess_piece_defs
from plyground.arena.evaluations import analysis_by_ply, engines, is_opening, pick_engine
from plyground.arena.labels import LABELS, win_percent
from plyground.arena.replay import ReplayError, _pv_text, _text, game_row, initial_state, replay_moves
from plyground.games.errors import PlygroundError

__all__ = ["game_page_data", "render_page", "write_game_page", "write_index", "page_filename", "json_for_script"]

_TOP = 8
LABEL_COLOURS = {"inaccuracy": "#e0b000", "mistake": "#f07d00", "blunder": "#d11a2a"}


def json_for_script(data: Any) -> str:
    """JSON text safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` (and the
    two JavaScript line separators) are written as ``\\uXXXX`` escapes, which JSON.parse reads back as
    the same characters, so no string in the data can end the block."""
    text = json.dumps(_finite(data), ensure_ascii=False, default=str, separators=(",", ":"), allow_nan=False)
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def _finite(x: Any) -> Any:
    """``x`` with NaN and infinities as None (JSON.parse refuses them, and one would blank the page)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def page_filename(game_id: str) -> str:
    """The file name of a game's page in an index folder: the id with anything unusual replaced."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", game_id) + ".html"


# ------------------------------------------------------------------------------ the data
def _num(v: Any, fmt: str = "{:.3g}") -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return fmt.format(v)
    return str(v)


def _chance(value: float) -> float:
    """The win chance of a value in -1..1 on 0..1 (``labels.win_percent`` / 100)."""
    return win_percent(value) / 100.0


def _pct(w: float | None) -> str:
    return "-" if w is None else f"{100 * w:.0f}%"


def _scalars(d: dict, skip: tuple = ()) -> list[list[str]]:
    return [[str(k), _num(v)] for k, v in d.items()
            if k not in skip and isinstance(v, (int, float, str)) and not isinstance(v, bool) and v != ""]


def _search_section(d: dict, state) -> dict | None:
    search = d.get("search") or {}
    rows = []
    value = d.get("value", search.get("value"))
    if value is not None:
        v = float(value)
        rows.append(["value (mover)", f"{v:+.3f}" + (f"  (win chance {_pct(_chance(v))})"
                                                    if math.isfinite(v) else "")])
    if search.get("exact"):
        rows.append(["exact", "yes" + (f", score {search['score']}" if search.get("score") is not None else "")])
    for key, name in (("engine", "engine"), ("depth", "depth"), ("nodes", "nodes"), ("seconds", "search seconds")):
        if search.get(key) not in (None, "", 0):
            label = "simulations" if key == "nodes" and "mcts" in str(search.get("engine", "")) else name
            rows.append([label, _num(search[key])])
    if search.get("pv"):
        rows.append(["principal variation", _pv_text(state, search["pv"])])
    visits = {int(k): int(v) for k, v in (search.get("visits") or {}).items()}
    values = {int(k): float(v) for k, v in (search.get("action_values") or {}).items()}
    table = None
    if visits or values:
        order = sorted(visits, key=lambda a: (-visits[a], a)) if visits else sorted(values, key=lambda a: (-values[a], a))
        head = ["move"] + (["visits"] if visits else []) + (["value"] if values else [])
        body = [[_text(state, a)] + ([str(visits.get(a, 0))] if visits else [])
                + ([f"{values[a]:+.3f}" if a in values else "-"] if values else []) for a in order[:_TOP]]
        table = {"head": head, "rows": body}
    extra = {k: v for k, v in (search.get("extra") or {}).items()} if isinstance(search.get("extra"), dict) else {}
    rows += _scalars(extra)
    if not rows and table is None:
        return None
    return {"title": "Search", "rows": rows, **({"table": table} if table else {})}


def _analysis_section(a: dict | None, engine: str | None, state, opening: bool = False) -> dict | None:
    if a is None:
        return None
    rows = []
    vb, va = a.get("value_before"), a.get("value_after")
    if vb is not None or va is not None:
        rows.append(["win chance (mover)", f"{_pct(None if vb is None else _chance(vb))} before, "
                                           f"{_pct(None if va is None else _chance(va))} after"])
    if a.get("best_action") is not None:
        rows.append(["best move", _text(state, a["best_action"])])
    rows.append(["label", (a.get("label") or "none") + (" (exact)" if a.get("exact") else "")
                 + ("; an opening ply, chosen by no agent, so not marked" if opening and a.get("label") else "")])
    if isinstance(a.get("pv"), list) and a["pv"]:
        rows.append(["principal variation", _pv_text(state, a["pv"])])
    table = None
    if isinstance(a.get("detail"), dict):
        rows += _scalars(a["detail"])
        top = a["detail"].get("top")      # [action, value] or, from a search with visits, [action, value, visits]
        if isinstance(top, list) and top and all(isinstance(t, list) and len(t) in (2, 3) for t in top):
            visits = all(len(t) == 3 for t in top)
            table = {"head": ["move", "value"] + (["visits"] if visits else []),
                     "rows": [[_text(state, t[0]), "-" if t[1] is None else _num(t[1], "{:+.3f}")]
                              + ([_num(t[2])] if visits else []) for t in top[:_TOP]]}
    return {"title": f"Analysis ({engine})", "rows": rows,
            "cls": f"label-{a.get('label')}" if a.get("label") and not opening else "",
            **({"table": table} if table else {})}


def _llm_section(d: dict, rebuilt: tuple | None) -> dict | None:
    """The LLM panel: totals, errors, role fallbacks, the rebuilt prompt and every logged call with its
    reply and parse result; a re-ask's reply follows the correction it answered (rebuilt).  A rebuilt
    prompt whose digest differs from the one the agent recorded is not shown (templates change between
    versions); one from a record without a digest is shown with that caveat."""
    llm = d.get("llm") or {}
    if not llm:
        return None
    prompt, reask = rebuilt if rebuilt else (None, None)
    rows = []
    info = d.get("info") if isinstance(d.get("info"), dict) else {}
    sent = info.get("prompt_digest")
    label = "prompt (rebuilt from the player's configuration and the position"
    if prompt is not None and sent:
        from plyground.agents.llm.prompts import prompt_digest
        if prompt_digest(prompt) == str(sent):
            label += "; its digest matches the one recorded)"
        else:   # the templates changed since the game: what the page would rebuild is not what was sent
            rows.append(["prompt", "not shown: rebuilt now, it differs from the one sent (the prompts changed since "
                                   f"the game; recorded digest {sent})"])
            prompt = reask = None
    elif prompt is not None:
        label += "; the record has no digest of the prompt sent, which may have differed)"
    for k in ("backend", "model", "calls", "model_calls", "cache_hits", "memo_hits", "prompt_tokens",
              "completion_tokens", "latency", "attempts"):
        if llm.get(k) not in (None, ""):
            rows.append([k.replace("_", " "), _num(llm[k])])
    if llm.get("score_methods"):
        rows.append(["score method", ", ".join(f"{m} x{n}" for m, n in llm["score_methods"].items())])
    for e in llm.get("errors") or []:
        rows.append(["error", str(e)])
    for f in llm.get("fallbacks") or []:
        rows.append(["role fallback", str(f)])
    if llm.get("log_dropped"):
        rows.append(["calls not logged", str(llm["log_dropped"])])
    blocks = []
    if prompt:
        blocks.append({"label": label, "text": _messages_text(prompt)})
    moves = 0
    previous = None
    for i, e in enumerate(llm.get("log") or []):
        if not isinstance(e, dict):
            continue
        role = str(e.get("role", "?"))
        if role == "move" and "raw" in e:
            moves += 1
            kind = "reply" if moves == 1 else f"re-ask {moves - 1}, reply"
            if moves > 1 and reask is not None and previous is not None:
                try:
                    blocks.append({"label": f"re-ask {moves - 1} (rebuilt): the messages added to the prompt",
                                   "text": _messages_text(reask(*previous))})
                except Exception:  # noqa: BLE001 - a template that no longer renders: the reply alone
                    pass
            parsed = e.get("parsed") if isinstance(e.get("parsed"), dict) else {}
            previous = (str(e["raw"]), str(parsed.get("error") or "")) if parsed.get("error") else None
        else:
            kind = "call"
        head = f"#{i + 1} {role} {e.get('op') or ''} {kind}".replace("  ", " ")
        facts = [f"{k} {_num(e[k])}" for k in ("latency", "prompt_tokens", "completion_tokens", "method", "cached", "attempts")
                 if e.get(k) not in (None, "", False)]
        text = []
        if "raw" in e:
            text.append(f"reply: {e['raw']}")
        parsed = e.get("parsed")
        if isinstance(parsed, dict):
            if parsed.get("error"):
                text.append(f"parse error: {parsed['error']}")
            else:
                text.append(f"parsed move: {parsed.get('text')} [action {parsed.get('action')}]"
                            + (f" ({parsed['how']})" if parsed.get("how") else ""))
        if e.get("top"):
            text.append(f"top: {e['top']}")
        if e.get("error"):
            text.append(f"error: {e['error']}")
        if e.get("retry_error"):
            text.append(f"retried after: {e['retry_error']}")
        blocks.append({"label": head + (f" ({', '.join(facts)})" if facts else ""), "text": "\n".join(text) or "-"})
    return {"title": "LLM", "rows": rows, "blocks": blocks}


def _rebuilt_prompt(config: Any, state, mover: int):
    """For the ``llm`` agent of ``config`` moving in ``state`` (its view as ``mover``): the move prompt it
    was shown and a function giving the messages a re-ask appends after a reply and its error, rebuilt
    from its configuration; None where that cannot be done (another agent, a changed configuration)."""
    try:
        from plyground import agents
        from plyground.agents.llm.prompts import move_prompt, prompt_fields, retry_message
        from plyground.games.information import player_view
        if isinstance(config, dict):     # a recorded config lists unset parameters as None
            config = {k: v for k, v in config.items() if v is not None}
        name = config.get("name") if isinstance(config, dict) else str(config).split(":")[0].strip()
        if name != "llm":                # build nothing else from a record (a model path, a checkpoint...)
            return None
        agent = agents.make(config)
        if agent.name != "llm":          # the search agents' roles use other prompts, per searched position
            return None
        view = player_view(state, mover)
        templates = agent._templates
        values = prompt_fields(view, history_plies=agent.params["history"], templates=templates)
        return (move_prompt(view, templates, values=values),
                lambda reply, error: retry_message(reply, error, values, templates))
    except Exception:  # noqa: BLE001 - a foreign or changed configuration: the page shows the calls only
        return None


def _messages_text(messages: list) -> str:
    return "\n\n".join(f"[{m.get('role')}]\n{m.get('content')}" for m in messages)


def _move_section(k: int, m: dict, mover: str, move_text: str) -> dict:
    d = m.get("decision") or {}
    rows = [["mover", mover], ["move", move_text]]
    tt = m.get("think_time")
    if isinstance(tt, (int, float)):
        rows.append(["think time", f"{tt:.3f} s"])
    if d.get("opening"):
        rows.append(["opening", "applied before the agents play"])
    if d.get("source") == "pgn":
        rows.append(["source", "imported from PGN" + (f"; NAGs {d['nags']}" if d.get("nags") else "")])
        if d.get("comment"):
            rows.append(["comment", str(d["comment"])])
    if d.get("error"):
        rows.append(["error", str(d["error"]).strip()])
    if d.get("fallback"):
        rows.append(["fallback taken", str(d["fallback"])])
    info = d.get("info") or {}
    if isinstance(info, dict):
        rows += [[f"info: {k}", v] for k, v in _scalars(info)]
    return {"title": f"Move {k}", "rows": rows}


def game_page_data(record, game_id: str, engine: str | None = None) -> dict:
    """Everything the page shows for ``game_id`` of ``record``: header, one frame per ply (board,
    move, panel sections, win chance) and the analysis engine used.  Replays the recorded moves
    through the game's rules; an action the rules refuse is a ``ReplayError`` naming the ply."""
    from plyground.arena.export import first_mover_seat, player_rows
    row = game_row(record, game_id)
    players = player_rows(record)
    seats = [players.get(pid, {}) for pid in row["players"]]
    names = [str(p.get("name") or pid) for p, pid in zip(seats, row["players"])]
    moves = record.moves(game_id)
    engine = pick_engine(record, game_id, engine)
    analysis = analysis_by_ply(record, game_id, engine)
    state = initial_state(row)
    n_players = len(row["players"])
    first = first_mover_seat(row["game"], moves)

    def view(value: float | None, mover: int | None) -> float | None:
        """A value from the mover's view as the win chance the graph shows: the first mover's in a
        two-player game, else the mover's."""
        if value is None or mover is None or mover < 0 or not math.isfinite(float(value)):
            return None
        v = float(value)
        return _chance(-v if n_players == 2 and mover != first else v)

    frames: list[dict] = [{"ply": 0, "board": board_view(row["game"], state), "move": None,
                           "panel": [{"title": "Start", "rows": [["to move", _to_move(state, names)]]}]}]
    own_values = []
    for k, (m, before) in enumerate(replay_moves(row, state, moves)):    # state: after the move
        seat = m.get("player")
        action = m.get("action")
        mover = "chance" if seat is not None and seat < 0 else \
            f"{names[seat] if seat is not None and 0 <= seat < len(names) else '?'} (seat {seat})"
        d = m.get("decision") or {}
        played = action is not None and action >= 0
        text = _text(before, action) if played else "no move"
        a = analysis.get(int(m["ply"]))
        opening = is_opening(d)
        panel = [_move_section(k + 1, m, mover, f"{text} [action {action}]" if played else text)]
        for section in (_analysis_section(a, engine, before, opening), _search_section(d, before)):
            if section:
                panel.append(section)
        rebuilt = None
        if d.get("llm") and seat is not None and 0 <= seat < len(seats) and not before.is_terminal():
            rebuilt = _rebuilt_prompt(seats[seat].get("config") or seats[seat].get("spec"), before, seat)
        llm = _llm_section(d, rebuilt)
        if llm:
            panel.append(llm)
        own = d.get("value", (d.get("search") or {}).get("value"))
        own_values.append(view(own, seat) if isinstance(own, (int, float)) and not opening else None)
        frames.append({"ply": k + 1, "board": board_view(row["game"], state, before, action if played else None),
                       "move": {"ply": m.get("ply"), "text": text, "seat": seat, "mover": mover, "opening": opening,
                                "label": None if opening else (a or {}).get("label"),
                                "exact": bool((a or {}).get("exact"))},
                       "panel": panel})
    # the graph: the analysis engine's win chance per position, else the agents' own search values
    chances: list[float | None] = [None] * len(frames)
    source = None
    if analysis:
        source = f"analysis: {engine}"
        for k, m in enumerate(moves):
            a = analysis.get(int(m["ply"]))
            if a is None:
                continue
            if chances[k] is None:
                chances[k] = view(a.get("value_before"), m.get("player"))
            chances[k + 1] = view(a.get("value_after"), m.get("player"))
    elif any(v is not None for v in own_values):
        source = "the agents' own search values (no analysis in the record)"
        chances[1:] = own_values
    for f, w in zip(frames, chances):
        f["chance"] = w
    returns = row.get("returns")
    final = None
    if state.is_terminal():
        final = [float(r) for r in state.returns()]
    end = [["termination", str(row.get("termination"))]]
    if returns is not None:
        end += [[f"return of {names[i]}", _num(r)] for i, r in enumerate(returns) if i < len(names)]
    if final is not None and returns is not None and [float(r) for r in returns] != final:
        end.append(["note", f"the rules give returns {final}, the record {returns}"])
    if row.get("detail"):
        end.append(["detail", str(row["detail"])])
    frames[-1]["panel"].append({"title": "Result", "rows": end})
    tournament = next((t for t in record.tournaments() if t["id"] == row.get("tournament")), None)
    return {
        "id": row["id"], "game": row["game"], "tournament": row.get("tournament"),
        "tournament_name": (tournament or {}).get("name"),
        "players": [{"seat": i, "name": names[i], "spec": s.get("spec")} for i, s in enumerate(seats)],
        "first_mover": first, "returns": returns, "final_returns": final, "termination": row.get("termination"),
        "detail": row.get("detail"), "started": row.get("started"), "ended": row.get("ended"),
        "engine": engine, "engines": [e["engine"] for e in engines(record, game_id)],
        "graph": {"source": source, "view": (f"{names[first]}'s win chance (moves first)" if n_players == 2
                                             else "the mover's win chance")},
        "frames": frames,
        # number moves in pairs (1. a b 2. c d) when two players alternate without chance moves
        "pair_numbers": n_players == 2 and all(m.get("player") is not None and m["player"] >= 0 for m in moves),
    }


def _to_move(state, names: list[str]) -> str:
    if state.is_terminal():
        return "nobody (the game is over)"
    p = state.current_player()
    return "chance" if p < 0 else f"{names[p] if p < len(names) else '?'} (seat {p})"


# ------------------------------------------------------------------------------ the markup
def _graph_svg(frames: list[dict]) -> str:
    """The evaluation graph: win chance (0 at the bottom, 1 at the top) over the plies, one clickable
    point per evaluated position, labelled moves as larger points in their colour, a cursor line."""
    w, h, pad = 640, 150, 8
    last = max(1, len(frames) - 1)

    def xy(i: int, c: float) -> tuple[float, float]:
        return pad + i * (w - 2 * pad) / last, pad + (1 - c) * (h - 2 * pad)

    pts = [(f["ply"], f["chance"]) for f in frames if f.get("chance") is not None]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="graph" viewBox="0 0 {w} {h}" data-last="{last}" '
           f'data-pad="{pad}" role="img" aria-label="evaluation graph">',
           f'<rect class="bg" width="{w}" height="{h}" fill="#fafafa"/>',
           f'<line x1="{pad}" x2="{w - pad}" y1="{h / 2}" y2="{h / 2}" stroke="#bbb" stroke-dasharray="4 4"/>',
           f'<text x="{w - pad}" y="{pad + 9}" font-size="10" text-anchor="end" fill="#888">100%</text>'
           f'<text x="{w - pad}" y="{h / 2 - 3}" font-size="10" text-anchor="end" fill="#888">50%</text>'
           f'<text x="{w - pad}" y="{h - pad - 2}" font-size="10" text-anchor="end" fill="#888">0%</text>']
    if pts:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, c) for i, c in pts))
        x0, _ = xy(pts[0][0], 0)
        x1, _ = xy(pts[-1][0], 0)
        out.append(f'<polygon points="{x0:.1f},{h - pad} {line} {x1:.1f},{h - pad}" fill="#e8eef8"/>')
        out.append(f'<polyline points="{line}" fill="none" stroke="#334" stroke-width="1.5"/>')
    out.append(f'<line id="cursor" x1="{pad}" x2="{pad}" y1="0" y2="{h}" stroke="#1f5fbf" stroke-width="2"/>')
    for i, c in pts:
        x, y = xy(i, c)
        label = (frames[i].get("move") or {}).get("label")
        colour = LABEL_COLOURS.get(label or "", "#334")
        r = 5.5 if label in LABEL_COLOURS else 3.2
        move = frames[i].get("move") or {}
        title = f"ply {i}" + (f": {move.get('text')}" if move else "") + f", {100 * c:.0f}%" + (f", {label}" if label else "")
        out.append(f'<circle class="pt{" label-" + escape(label, quote=True) if label in LABEL_COLOURS else ""}" '
                   f'data-ply="{i}" cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}">'
                   f'<title>{escape(title)}</title></circle>')
    out.append("</svg>")
    return "".join(out)


_CSS = """
*{box-sizing:border-box}body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fff}
header{padding:10px 16px;border-bottom:1px solid #ddd}header h1{font-size:17px;margin:0 0 4px}
.meta{color:#555}main{display:flex;flex-wrap:wrap;gap:16px;padding:12px 16px}
#left{flex:0 1 520px;min-width:300px}#right{flex:1 1 380px;min-width:300px}
#board svg{width:100%;max-width:480px;height:auto;display:block}#board pre{font:13px/1.25 monospace;background:#f6f6f6;padding:8px;overflow:auto}
.controls{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:8px 0}
.controls button{min-width:38px;padding:4px 8px}#slider{flex:1 1 160px}
#link{width:100%;font:12px monospace}#graph{width:100%;height:auto;cursor:pointer;border:1px solid #ddd}
#graph .pt:hover{stroke:#000;stroke-width:2}#moves{margin-top:8px;max-height:220px;overflow:auto;font:13px monospace}
#moves span{display:inline-block;padding:1px 4px;margin:1px;cursor:pointer;border-radius:3px}
#moves span.cur{background:#1f5fbf;color:#fff}
.label-inaccuracy{color:#a67c00}.label-mistake{color:#c05f00}.label-blunder{color:#d11a2a;font-weight:bold}
#moves span.cur.label-inaccuracy,#moves span.cur.label-mistake,#moves span.cur.label-blunder{color:#fff}
section.panel{border:1px solid #ddd;border-radius:6px;margin-bottom:10px}
section.panel h2{font-size:14px;margin:0;padding:6px 10px;background:#f3f4f6;border-bottom:1px solid #ddd}
section.panel table{border-collapse:collapse;margin:6px 10px}section.panel td,section.panel th{padding:2px 8px 2px 0;vertical-align:top;text-align:left}
section.panel td:first-child{color:#555;white-space:nowrap}section.panel pre{white-space:pre-wrap;word-break:break-word;
margin:4px 10px 8px;padding:6px;background:#f8f8f8;font:12px/1.35 monospace;max-height:320px;overflow:auto}
section.panel details{margin:0 0 2px}section.panel summary{cursor:pointer;padding:2px 10px;color:#333}
.legend span{margin-right:10px}.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:3px}
"""

_JS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("replay-data").textContent);
  var frames = data.frames, last = frames.length - 1, cur = -1, timer = null;
  var boardEl = document.getElementById("board"), panelEl = document.getElementById("panel");
  var slider = document.getElementById("slider"), plyEl = document.getElementById("ply");
  var linkEl = document.getElementById("link"), playBtn = document.getElementById("play");
  var graph = document.getElementById("graph"), cursor = document.getElementById("cursor");
  var movesEl = document.getElementById("moves"), parser = new DOMParser(), moveSpans = [];
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function boardNode(i) {
    var b = frames[i].board;
    if (b.svg) {
      var doc = parser.parseFromString(b.svg, "image/svg+xml");
      return document.importNode(doc.documentElement, true);
    }
    return el("pre", b.text, "textboard");
  }
  function section(s) {
    var sec = el("section", null, "panel" + (s.cls ? " " + s.cls : ""));
    sec.appendChild(el("h2", s.title));
    if (s.rows && s.rows.length) {
      var t = el("table");
      s.rows.forEach(function (r) {
        var tr = el("tr"); tr.appendChild(el("td", r[0])); tr.appendChild(el("td", r[1])); t.appendChild(tr);
      });
      sec.appendChild(t);
    }
    if (s.table) {
      var tt = el("table", null, "top"), hr = el("tr");
      s.table.head.forEach(function (h) { hr.appendChild(el("th", h)); });
      tt.appendChild(hr);
      s.table.rows.forEach(function (r) {
        var tr = el("tr"); r.forEach(function (c) { tr.appendChild(el("td", c)); }); tt.appendChild(tr);
      });
      sec.appendChild(tt);
    }
    (s.blocks || []).forEach(function (b) {
      var d = el("details"); d.open = true;
      d.appendChild(el("summary", b.label)); d.appendChild(el("pre", b.text));
      sec.appendChild(d);
    });
    return sec;
  }
  function link(i) { return location.href.split("#")[0] + "#ply=" + i; }
  function show(i, keepHash) {
    i = Math.max(0, Math.min(last, i | 0));
    if (i === cur) return;
    cur = i;
    var f = frames[i];
    boardEl.replaceChildren(boardNode(i));
    boardEl.setAttribute("data-ply", String(i));
    panelEl.replaceChildren.apply(panelEl, f.panel.map(section));
    slider.value = String(i);
    var m = f.move;
    plyEl.textContent = "ply " + i + " / " + last + (m ? " \\u2014 " + m.mover + " played " + m.text : " \\u2014 start")
      + (f.chance !== null && f.chance !== undefined ? " (" + Math.round(100 * f.chance) + "%)" : "");
    if (cursor) {
      var pad = +graph.getAttribute("data-pad"), w = graph.viewBox.baseVal.width;
      var x = pad + i * (w - 2 * pad) / Math.max(1, last);
      cursor.setAttribute("x1", x); cursor.setAttribute("x2", x);
    }
    moveSpans.forEach(function (s, k) { s.classList.toggle("cur", k + 1 === i); });
    if (moveSpans[i - 1]) moveSpans[i - 1].scrollIntoView({block: "nearest"});
    linkEl.value = link(i);
    if (!keepHash) {
      try { history.replaceState(null, "", "#ply=" + i); } catch (e) { /* file:// in some browsers */ }
    }
    document.title = data.title + " \\u2014 ply " + i;
  }
  function fromHash() {
    var m = /^#ply=(\\d+)$/.exec(location.hash);
    return m ? +m[1] : null;
  }
  function stop() { if (timer) { clearInterval(timer); timer = null; playBtn.textContent = "\\u25b6"; } }
  function play() {
    if (timer) { stop(); return; }
    if (cur >= last) show(0);
    playBtn.textContent = "||";
    timer = setInterval(function () { if (cur >= last) stop(); else show(cur + 1); }, 900);
  }
  frames.forEach(function (f, k) {
    if (!f.move) return;
    var num = data.pair_numbers ? (k % 2 === 1 ? Math.ceil(k / 2) + ". " : "") : k + ". ";
    var s = el("span", num + f.move.text
      + ({inaccuracy: "?!", mistake: "?", blunder: "??"}[f.move.label] || ""),
      f.move.label ? "label-" + f.move.label : "");
    s.setAttribute("data-ply", String(k));
    s.addEventListener("click", function () { stop(); show(k); });
    movesEl.appendChild(s); moveSpans.push(s);
  });
  slider.max = String(last);
  slider.addEventListener("input", function () { stop(); show(+slider.value); });
  document.getElementById("first").addEventListener("click", function () { stop(); show(0); });
  document.getElementById("prev").addEventListener("click", function () { stop(); show(cur - 1); });
  document.getElementById("next").addEventListener("click", function () { stop(); show(cur + 1); });
  document.getElementById("last").addEventListener("click", function () { stop(); show(last); });
  playBtn.addEventListener("click", play);
  document.getElementById("copy").addEventListener("click", function () {
    linkEl.select();
    if (navigator.clipboard) navigator.clipboard.writeText(linkEl.value).catch(function () { document.execCommand("copy"); });
    else document.execCommand("copy");
  });
  graph.addEventListener("click", function (ev) {
    var t = ev.target;
    if (t && t.getAttribute && t.getAttribute("data-ply") !== null) { stop(); show(+t.getAttribute("data-ply")); return; }
    var r = graph.getBoundingClientRect(), w = graph.viewBox.baseVal.width, pad = +graph.getAttribute("data-pad");
    var x = (ev.clientX - r.left) * w / r.width;
    stop(); show(Math.round((x - pad) / (w - 2 * pad) * Math.max(1, last)));
  });
  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    if (t === slider || (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "BUTTON") && ev.key === " ")) return;
    if (t && t.tagName === "INPUT" && t !== slider) return;
    if (ev.key === "ArrowRight" || ev.key === "ArrowDown") { stop(); show(cur + 1); }
    else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") { stop(); show(cur - 1); }
    else if (ev.key === "Home") { stop(); show(0); }
    else if (ev.key === "End") { stop(); show(last); }
    else if (ev.key === " ") play();
    else return;
    ev.preventDefault();
  });
  window.addEventListener("hashchange", function () { var p = fromHash(); if (p !== null) { stop(); show(p, true); } });
  var start = fromHash();
  show(start === null ? 0 : start, start !== null);
  document.body.setAttribute("data-ready", "1");
})();
"""


def _result_text(data: dict) -> str:
    ret = data.get("final_returns") or data.get("returns")
    parts = [f"{data.get('termination')}"]
    if ret is not None:
        parts.append("returns " + ", ".join(f"{p['name']} {r:+g}" for p, r in zip(data["players"], ret)))
    if data.get("detail"):
        parts.append(str(data["detail"]))
    return "; ".join(parts)


def render_page(data: dict) -> str:
    """The HTML text of a game page from ``game_page_data``."""
    data = dict(data, title=f"{data['game']} game {data['id']}")
    players = " vs ".join(f"{p['name']} (seat {p['seat']}{', ' + p['spec'] if p.get('spec') and p['spec'] != p['name'] else ''})"
                          for p in data["players"])
    script = _JS
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    chess = any("fen" in f["board"] for f in data["frames"])
    g = data["graph"]
    if g["source"]:
        legend = (f'<div class="legend">{escape(g["view"])} from {escape(g["source"])}: '
                  + "".join(f'<span><i class="dot" style="background:{c}"></i>{escape(n)}</span>'
                            for n, c in LABEL_COLOURS.items()) + "</div>")
    else:
        legend = ('<div class="legend">no evaluation recorded for this game (run '
                  '<code>plyground analyze games</code> to add one)</div>')
    engines = ""
    if data.get("engines"):
        engines = f' &middot; analysis shown: {escape(str(data["engine"]))}'
        if len(data["engines"]) > 1:
            engines += f' (also: {escape(", ".join(e for e in data["engines"] if e != data["engine"]))})'
    tour = data.get("tournament_name") or data.get("tournament")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(csp, quote=True)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(data['title'])}</title>
<style>{_CSS}</style></head>
<body>
<header><h1>{escape(data['game'])} &middot; game {escape(str(data['id']))}</h1>
<div class="meta">{escape(players)}</div>
<div class="meta">{escape(_result_text(data))}{' &middot; tournament ' + escape(str(tour)) if tour else ''}{engines}</div></header>
{chess_piece_defs() if chess else ''}
<main>
<div id="left">
<div id="board" aria-live="polite"></div>
<div class="controls">
<button id="first" title="first (Home)">&laquo;</button><button id="prev" title="previous (&#x2190;)">&lsaquo;</button>
<button id="play" title="autoplay (space)">&#x25b6;</button><button id="next" title="next (&#x2192;)">&rsaquo;</button>
<button id="last" title="last (End)">&raquo;</button>
<input id="slider" type="range" min="0" max="0" value="0" aria-label="ply">
</div>
<div id="ply"></div>
<div class="controls"><input id="link" readonly aria-label="link to this ply"><button id="copy">copy link</button></div>
{_graph_svg(data['frames'])}
{legend}
<div id="moves"></div>
</div>
<div id="right"><div id="panel"></div></div>
</main>
<script type="application/json" id="replay-data">{json_for_script(data)}</script>
<script>{script}</script>
</body></html>
"""


def write_game_page(record, game_id: str, out: str | Path, engine: str | None = None) -> Path:
    """Write the page of ``game_id`` to ``out`` (its folder must exist); returns the path."""
    path = Path(out)
    if not path.parent.is_dir():
        raise PlygroundError(f"cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise PlygroundError(f"cannot write {str(path)!r}: it is a folder; give a file name such as game.html")
    text = render_page(game_page_data(record, game_id, engine))
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise PlygroundError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    return path


_PLURAL = {"inaccuracy": "inaccuracies", "mistake": "mistakes", "blunder": "blunders"}


def write_index(record, tournament: str | None, out_dir: str | Path, engine: str | None = None) -> Path:
    """Write one page per game of ``tournament`` (an id or a name; every game if None) into ``out_dir``
    (created if missing) and ``index.html`` linking to them; returns the index's path.  ``engine``: the
    analysis to show where a game has it (default: each game's own first, as ``pick_engine``)."""
    from plyground.arena.export import player_rows, tournament_ids
    names = {t["id"]: t.get("name") or t["id"] for t in record.tournaments()}
    ids = tournament_ids(record, tournament)
    from plyground.arena.report import output_dir
    out = output_dir(out_dir)
    players = player_rows(record)
    body = []
    for row in (g for g in record.games() if ids is None or g["tournament"] in ids):
        gid = row["id"]
        have = [e["engine"] for e in engines(record, gid)]
        try:
            write_game_page(record, gid, out / page_filename(gid), engine if engine in have else None)
            link = f'<a href="{escape(page_filename(gid), quote=True)}">{escape(gid)}</a>'
        except ReplayError as e:         # one game the rules refuse does not cost the others their pages
            link = f'{escape(gid)} <em>(no page: {escape(str(e))})</em>'
        seat_names = [str(players.get(pid, {}).get("name") or pid) for pid in row["players"]]
        labels = {}
        eng = engine if engine in have else (have[0] if have else None)
        openings = {m["ply"] for m in record.moves(gid) if is_opening(m.get("decision"))}
        for a in analysis_by_ply(record, gid, eng).values():
            if a.get("label") in LABELS and a["ply"] not in openings:
                labels[a["label"]] = labels.get(a["label"], 0) + 1
        ret = row.get("returns") or []
        result = ", ".join(f"{r:+g}" for r in ret) if ret else "-"
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in (
            link, escape("-" if row.get("round") is None else str(row["round"])), escape(" vs ".join(seat_names)), escape(result),
            escape(str(row.get("termination"))), escape(str(row.get("plies"))),
            escape(", ".join(f"{labels[k]} {_PLURAL[k] if labels[k] > 1 else k}" for k in LABELS if k in labels) or
                   ("-" if eng else "not analysed"))))
                    + "</tr>")
    title = f"plyground games of {names.get(ids[0], tournament) if ids else 'every tournament'}"
    index = out / "index.html"
    index.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{escape(title)}</title>
<style>body{{font:14px/1.4 system-ui,sans-serif;margin:16px}}table{{border-collapse:collapse}}
td,th{{padding:3px 10px 3px 0;text-align:left;border-bottom:1px solid #eee}}</style></head>
<body><h1>{escape(title)}</h1>
<p>{len(body)} game(s); each page works offline.</p>
<table><tr><th>game</th><th>round</th><th>players (by seat)</th><th>returns</th><th>end</th><th>plies</th>
<th>labelled moves</th></tr>
{chr(10).join(body)}
</table></body></html>
""", encoding="utf-8")
    return index
