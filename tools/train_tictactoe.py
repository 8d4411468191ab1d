"""Train the bundled tic-tac-toe network (agents/neural/models/tictactoe.pt) from exact play.

The pipeline of tests/test_training.py::test_tictactoe_end_to_end with the same settings: a record of
`minimax:exact=true` against itself from random openings of 0 to 7 plies (arena tournaments), a
dataset with the proven-best set as policy target and the square's symmetries, then
`train distill examples/distill_tictactoe.toml`.

    python tools/train_tictactoe.py          # writes runs/tictactoe_exact/ and the bundled model
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OPENING_PLAN = {0: 2, 1: 20, 2: 100, 3: 300, 4: 1000, 5: 1500, 6: 1000, 7: 400}


def record_exact_play(db: Path, workers: int = 2) -> list:
    """Arena tournaments of ``minimax:exact=true`` against itself from random openings of 0 to 7 plies
    (``OPENING_PLAN``: plies -> games) into ``db``; returns the run summaries.  The two entries differ
    only by an ignored ``depth`` (the arena refuses two identical players)."""
    from plyground.arena.config import config_from_dict as tournament
    from plyground.arena.runner import run_tournament

    out = []
    for plies, n in OPENING_PLAN.items():
        cfg = tournament({"name": f"exact-{plies}", "game": "tictactoe", "seed": plies, "colour_swap": False,
                          "games_per_pairing": n,
                          "agents": [{"agent": "minimax", "exact": True, "name": "exact-a"},
                                     {"agent": "minimax", "exact": True, "depth": 9, "name": "exact-b"}],
                          **({"openings": {"random_plies": plies}} if plies else {})})
        out.append(run_tournament(cfg, db, workers=workers))
    return out


def main() -> int:
    from plyground.datasets.build import build_dataset
    from plyground.datasets.training import config_from_dict, distill

    run = REPO / "runs" / "tictactoe_exact"
    run.mkdir(parents=True, exist_ok=True)
    db = run / "exact.db"
    record_exact_play(db)
    manifest = build_dataset(db, run / "data", game="tictactoe", policy="proven", augment=True, force=True)
    cfg_path = REPO / "examples" / "distill_tictactoe.toml"
    result = distill(config_from_dict(tomllib.loads(cfg_path.read_text()), cfg_path.parent))
    dest = REPO / "agents" / "neural" / "models" / "tictactoe.pt"
    shutil.copyfile(result.model, dest)
    print(f"dataset {manifest['rows']} rows; trained {result.steps} steps; wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
