"""The share of the 280 solved connect-four positions where an agent's move keeps the exact score.

    python tools/bench_positions.py --agent neural --agent mcts:sims=2000

A thin wrapper kept for old notes: the logic is ``plyground.arena.suite`` and the command is
``plyground analyze suite --agent SPEC [--agent SPEC ...] [--positions FILE]``.
"""

from __future__ import annotations

import sys

from plyground.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["analyze", "suite", *sys.argv[1:]]))
