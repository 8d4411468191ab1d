"""Plots of a leaderboard as PNG files: ratings with their 95% intervals, and the head-to-head
score matrix.  Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch), so it
works headless and inside other programs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plyground.arena.leaderboard import Leaderboard


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_ratings(board: Leaderboard, path: str | Path) -> Path:
    """Horizontal bars: each player's Elo (best at the top) with its 95% interval and online Elo."""
    rows = board.rows
    n = len(rows)
    fig = _figure(8.0, max(2.2, 0.45 * n + 1.4))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(n)[::-1]
    elo = np.array([r.elo for r in rows])
    lo = np.array([r.ci_low for r in rows])
    hi = np.array([r.ci_high for r in rows])
    ax.errorbar(elo, y, xerr=[elo - lo, hi - elo], fmt="o", color="tab:blue", ecolor="tab:blue",
                capsize=4, label="Bradley-Terry Elo, 95% interval")
    ax.scatter([r.online_elo for r in rows], y, marker="x", color="tab:orange", zorder=3,
               label=f"online Elo (K={board.online_k:g})")
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r.player}  ({r.games} g)" for r in rows])
    ax.axvline(0.0 if board.fit.anchor is None else board.fit.anchor[1], color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel(f"Elo ({board.anchor_text()})")
    ax.set_title(f"Ratings from {board.games} rated games")
    ax.grid(axis="x", color="0.92")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def plot_head_to_head(board: Leaderboard, path: str | Path) -> Path:
    """Matrix of the row player's score against the column player (with the number of games)."""
    n = len(board.rows)
    names = board.players
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(board.meetings > 0, board.points / np.maximum(board.meetings, 1), np.nan)
    size = max(3.5, 0.7 * n + 2.2)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot(1, 1, 1)
    masked = np.ma.masked_invalid(frac)
    from matplotlib import colormaps
    cmap = colormaps["RdYlGn"].with_extremes(bad="0.93")
    im = ax.imshow(masked, cmap=cmap, vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="score of row vs column")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize="small")
    ax.set_yticklabels(names, fontsize="small")
    if n <= 16:
        for i in range(n):
            for j in range(n):
                if board.meetings[i, j] > 0:
                    ax.text(j, i, f"{100 * frac[i, j]:.0f}%\n{int(board.meetings[i, j])}", ha="center",
                            va="center", fontsize=7 if n > 8 else 8)
    ax.set_title("Head-to-head score (games below)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def write_plots(board: Leaderboard, out_dir: str | Path) -> list[Path]:
    """Write ratings.png and head_to_head.png into ``out_dir`` (created if missing); return the paths."""
    from plyground.arena.report import output_dir

    out = output_dir(out_dir)    # a file there, or a folder that cannot be made, is a one-line error
    return [plot_ratings(board, out / "ratings.png"), plot_head_to_head(board, out / "head_to_head.png")]
