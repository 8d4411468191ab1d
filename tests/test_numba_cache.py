"""numba compiles with cache=True: after a first run, a fresh process recompiles nothing."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, sys
from numba.core.registry import CPUDispatcher
from plyground.cli.main import main
main(["analyze", "position", "connect4", "--moves", "4453", "--budget", "depth=6", "--json"])
main(["analyze", "position", "tictactoe", "--moves", "4", "--budget", "exact", "--json"])
main(["analyze", "position", "connect4", "--moves", "4453", "--engine", "mcts", "--budget", "sims=2000", "--json"])
misses = {}
for name, mod in list(sys.modules.items()):
    if not name.startswith("plyground"):
        continue
    for attr, obj in vars(mod).items():
        if isinstance(obj, CPUDispatcher) and obj.stats.cache_misses:
            misses[f"{name}.{attr}"] = sum(obj.stats.cache_misses.values())
print("MISSES=" + json.dumps(misses))
"""


def _run() -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("MISSES="))
    return json.loads(line[len("MISSES="):])


def test_a_second_process_loads_every_compiled_function_from_the_cache():
    _run()  # the first run may compile (a fresh checkout) and writes the cache
    assert _run() == {}
