"""Training plots as one PNG: loss curves (train and held-out) from a run's ``metrics.jsonl`` and, for a
self-play run (a ``generations.jsonl`` beside it), Elo per generation and per hour of training.

Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch), as ``arena.plot`` does.

``metrics.jsonl`` events (``plyground.datasets.training.METRICS``): ``train`` lines with ``step``,
``policy_loss``, ``value_loss``; ``eval`` lines with ``step``, ``policy_ce``, ``value_mse``, ``top1``.
``generations.jsonl`` rows: ``generation``, ``hours`` (training time so far), ``elo``, ``elo_lo``,
``elo_hi`` (the 95% interval); a generation written twice (a resumed run) counts once, the last line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plyground.datasets.training import METRICS_NAME, TrainingError, read_metrics

GENERATIONS_NAME = "generations.jsonl"
PLOT_NAME = "training.png"
GENERATION_FIELDS = ("generation", "hours", "elo", "elo_lo", "elo_hi")


def read_generations(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``generations.jsonl`` with every field of ``GENERATION_FIELDS`` as a number, by
    generation (the last line of a generation wins; torn or incomplete lines are skipped)."""
    rows: dict[int, dict[str, Any]] = {}
    for r in read_metrics(path):
        if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for k in GENERATION_FIELDS):
            rows[int(r["generation"])] = r
    return [rows[g] for g in sorted(rows)]


def read_references(path: str | Path) -> list[dict[str, Any]]:
    """The fixed references' rows of a ``generations.jsonl`` (``reference``, ``elo``): drawn as
    horizontal lines beside the generations."""
    out = {}
    for r in read_metrics(path):
        if isinstance(r.get("reference"), str) and isinstance(r.get("elo"), (int, float)):
            out[r["reference"]] = r
    return list(out.values())


def _series(events: list[dict[str, Any]], kind: str, key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for e in events:
        if e.get("event") == kind and isinstance(e.get("step"), (int, float)) and isinstance(e.get(key), (int, float)):
            xs.append(e["step"])
            ys.append(e[key])
    return xs, ys


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_training(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw ``run_dir``'s loss curves (and Elo, for self-play) into ``out`` (default
    ``RUN_DIR/training.png``); returns the PNG's path.  ``TrainingError`` if the directory is missing
    or has nothing to plot."""
    d = Path(run_dir)
    if not d.is_dir():
        raise TrainingError(f"no training run directory at {str(run_dir)!r}")
    events = read_metrics(d / METRICS_NAME)
    gens = read_generations(d / GENERATIONS_NAME)
    refs = read_references(d / GENERATIONS_NAME)
    curves = {
        "policy": [("train", "policy_loss", "train (minibatch mean)"), ("eval", "policy_ce", "held-out")],
        "value": [("train", "value_loss", "train (minibatch mean)"), ("eval", "value_mse", "held-out")],
        "top1": [("eval", "top1", "held-out")],
    }
    panels = [(name, [(label, *_series(events, kind, key)) for kind, key, label in spec])
              for name, spec in curves.items()]
    panels = [(name, [s for s in series if s[1]]) for name, series in panels]
    panels = [(name, series) for name, series in panels if series]
    if not panels and not gens:
        raise TrainingError(f"{str(run_dir)!r} has nothing to plot: no train or eval events in {METRICS_NAME} "
                            f"and no {GENERATIONS_NAME}")
    rows = (1 if panels else 0) + (1 if gens else 0)
    cols = max(len(panels), 2 if gens else 1)
    fig = _figure(4.2 * cols, 3.4 * rows)
    titles = {"policy": ("policy cross-entropy", "nats"), "value": ("value mean squared error", "MSE"),
              "top1": ("top-1 agreement with the target", "share of positions")}
    for i, (name, series) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for label, xs, ys in series:
            ax.plot(xs, ys, marker="o" if label == "held-out" and len(xs) < 40 else None, ms=3, label=label)
        title, unit = titles[name]
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(unit)
        if name != "top1":
            pos = [y for _, _, ys in series for y in ys if y > 0]
            if pos and max(pos) / min(pos) > 50:
                ax.set_yscale("log")
        ax.grid(color="0.92")
        ax.legend(fontsize="small")
    if gens:
        base = (cols if panels else 0)
        g = [r["generation"] for r in gens]
        h = [r["hours"] for r in gens]
        elo = [r["elo"] for r in gens]
        err = [[r["elo"] - r["elo_lo"] for r in gens], [r["elo_hi"] - r["elo"] for r in gens]]
        for k, (xs, xlabel) in enumerate(((g, "generation"), (h, "hours of training"))):
            ax = fig.add_subplot(rows, cols, base + k + 1)
            ax.errorbar(xs, elo, yerr=err, fmt="o-", ms=3, capsize=3, label="Elo, 95% interval")
            for j, ref in enumerate(refs):
                ax.axhline(ref["elo"], color=f"C{j + 1}", ls="--", lw=1, label=ref["reference"])
            ax.set_title(f"Elo per {'generation' if k == 0 else 'hour of training'}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("Elo")
            ax.grid(color="0.92")
            ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(out) if out is not None else d / PLOT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
