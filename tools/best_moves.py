"""Compute the best-move sets of the 280 solved connect-four positions with our exact solver.

For every position (`MOVES SCORE`, ../search/data/connect4_solved_positions.txt) each legal move's
child is solved exactly; a move is best when it keeps the score (the child's score is -SCORE).  The
largest -child score must equal the file's SCORE (an independent solver's): that check is made for
every position and the run fails on any mismatch.  Writes `MOVES SCORE BEST` lines (BEST: the best
columns, 1-based) to search/data/connect4_best_moves.txt.

    python tools/best_moves.py            # resumable: positions already written are kept
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from plyground import games
from plyground.search import alphabeta as ab
from plyground.search.bench_alphabeta import load_positions

OUT = Path(__file__).resolve().parent.parent / "search" / "data" / "connect4_best_moves.txt"


def main() -> int:
    game = games.make("connect4")
    done = {}
    if OUT.exists():
        for line in OUT.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                m, s, b = line.split()
                done[m] = (int(s), b)
    rows = load_positions()
    t0 = time.time()
    with open(OUT, "a") as f:
        if not done:
            f.write("# MOVES SCORE BEST: the 280 solved positions with the columns (1-based) that keep the exact score,\n"
                    "# from plyground's exact solver (tools/best_moves.py); every SCORE re-derived from the children.\n")
        for k, (moves, score) in enumerate(rows):
            if moves in done:
                continue
            state = games.play_moves(game, moves)
            child: dict[int, int] = {}
            for a in state.legal_actions():
                c = state.clone()
                c.apply_action(a)
                if c.is_terminal():
                    raise SystemExit(f"{moves}: move {a + 1} ends the game; the file promises no immediate win")
                child[a] = -ab.solve(c, all_values=False).score
            best = max(child.values())
            if best != score:
                raise SystemExit(f"{moves}: the children give {best}, the file says {score}")
            cols = "".join(str(a + 1) for a in sorted(child) if child[a] == score)
            f.write(f"{moves} {score} {cols}\n")
            f.flush()
            print(f"{k + 1}/{len(rows)} {moves} {score} best {cols} ({time.time() - t0:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
