"""Alpha-beta (negamax) search and the exact solver: one entry point over every kind of state.

>>> from plyground import games
>>> from plyground.search.alphabeta import search, solve
>>> state = games.make("tictactoe").new_initial_state()
>>> r = solve(state)
>>> r.exact, r.score, r.value
(True, 0, 0.0)
>>> search(games.play_moves(games.make("connect4"), "4453"), depth=6).best_action in range(7)
True

``search`` runs the numba engine (``plyground.search.native.alphabeta``) for a native state whose
hooks have numba equivalents (no proposer or a ``UniformProposer``, no opponent or a
``FullWidthOpponent`` in mode ``"full"``, no value or ``HeuristicValue``/``RolloutValue``), and the
plain-Python engine (``plyground.search.generic_alphabeta``) for any other state (OpenSpiel or
PettingZoo adapter states) or hook (an LLM role).  Both take the same options.

Scores: with ``exact=True`` the result's ``score`` is the distance-to-win score of
``shared/data/README.md`` for the player to move (connect four: ``+-floor((43 - n) / 2)`` where
``n`` stones are on the board when the winning stone is played; tic-tac-toe:
``floor((10 - n) / 2)``; 0 a draw) and ``value`` its sign.  Otherwise ``value`` is the leaf
estimate backed up by minimax, in [-1, 1]; a proven win or loss found within the depth is exact
too.  ``action_values`` are in value units for every searched root action;
``extra["action_scores"]`` holds the engine's raw per-action scores (the exact distance-to-win
scores when solving).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from plyground.games.errors import PlygroundError
from plyground.search.hooks import (
    ActionProposer, FullWidthOpponent, HeuristicValue, OpponentModel, RolloutValue,
    UniformProposer, ValueEstimator,
)
from plyground.search.native.layout import (  # (plain Python: no numba imported here)
    ABORT, ALL_VALUES, BEST_MOVE, DEADLINE, DONE_DEPTH, GEN, LEAF_HEURISTIC, LEAF_MODE,
    LEAF_ROLLOUT, MAX_DEPTH, N_BOUNDS, N_OUT, N_ROLL, NODE_LIMIT, NODES, OUT, PV_LEN, REMAINING,
    TT_SHIFT, TT_SIZE, WIN,
)
from plyground.search.result import SearchResult

__all__ = ["search", "solve", "clear_tables", "zero_solver_tables", "warm_up"]

DEFAULT_TIME_LIMIT = 1.0   # seconds, when neither depth nor any budget is given (and not exact)
SOLVER_SHARE = 0.8         # exact mode with a budget: the solver's share, the rest for a fallback
GROW_FACTOR = 8            # the solver moves to a 4x bigger table after this many nodes per slot
MIN_TT_BITS, MAX_TT_BITS = 10, 30
# Small games need no big table (tic-tac-toe has 5,478 positions); a small one stays in cache.
TT_BITS_CAP = {"tictactoe": 13}  # 2**13 x 16 bytes (128 KiB): measured the fastest solve (14: 2% slower)


# ---------------------------------------------------------------- validation
def _check_options(depth, max_nodes, time_limit, exact, tt_bits, proposer_k) -> None:
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, (int, np.integer))
                              or depth < 1):
        raise PlygroundError(f"depth must be an integer >= 1 or None, got {depth!r}")
    if max_nodes is not None and (isinstance(max_nodes, bool)
                                  or not isinstance(max_nodes, (int, np.integer)) or max_nodes < 1):
        raise PlygroundError(f"max_nodes must be an integer >= 1 or None, got {max_nodes!r}")
    if time_limit is not None and (isinstance(time_limit, bool)
                                   or not isinstance(time_limit, (int, float)) or not time_limit > 0):
        raise PlygroundError(f"time_limit must be a number of seconds > 0 or None, got {time_limit!r}")
    if exact and depth is not None:
        raise PlygroundError(f"exact=True solves without a depth limit; got depth={depth!r} too "
                             "(drop one of them)")
    if (isinstance(tt_bits, bool) or not isinstance(tt_bits, (int, np.integer))
            or not MIN_TT_BITS <= tt_bits <= MAX_TT_BITS):
        raise PlygroundError(f"tt_bits must be an integer in [{MIN_TT_BITS}, {MAX_TT_BITS}], got {tt_bits!r}")
    if proposer_k is not None and (isinstance(proposer_k, bool)
                                   or not isinstance(proposer_k, (int, np.integer)) or proposer_k < 1):
        raise PlygroundError(f"proposer_k must be an integer >= 1 or None, got {proposer_k!r}")


def _check_hooks(proposer, opponent, value) -> None:
    if proposer is not None and not isinstance(proposer, ActionProposer):
        raise PlygroundError(f"proposer must be an ActionProposer or None, got {type(proposer).__name__}")
    if opponent is not None and not isinstance(opponent, OpponentModel):
        raise PlygroundError(f"opponent must be an OpponentModel or None, got {type(opponent).__name__}")
    if value is not None and not isinstance(value, ValueEstimator):
        raise PlygroundError(f"value must be a ValueEstimator or None, got {type(value).__name__}")


_LAZY: dict[str, Any] = {}


def _lazy_modules():
    """(NativeState, the numba engine module), imported on first use and kept (an import
    statement per search costs about a microsecond; tic-tac-toe searches take ~100)."""
    mods = _LAZY.get("mods")
    if mods is None:
        from plyground.games.native.state import NativeState
        from plyground.search.native import alphabeta as nab
        mods = _LAZY["mods"] = (NativeState, nab)
    return mods


def _native_leaf(state, proposer, proposer_k, opponent, value):
    """(leaf_mode, rollouts) if the numba engine can run these hooks on ``state``, else None."""
    NativeState, nab = _lazy_modules()
    if not isinstance(state, NativeState) or state.game.name not in nab.ENTRY_POINTS:
        return None
    if proposer is not None and not (type(proposer) is UniformProposer and proposer_k is None):
        return None
    if opponent is not None and not (type(opponent) is FullWidthOpponent and opponent.mode == "full"):
        return None
    if value is None or type(value) is HeuristicValue:
        return _HEURISTIC_LEAF
    if type(value) is RolloutValue:
        return LEAF_ROLLOUT, int(value.n)
    return None


_HEURISTIC_LEAF = (LEAF_HEURISTIC, 1)


# ---------------------------------------------------------------- public API
def search(state, *, depth: int | None = None, max_nodes: int | None = None,
           time_limit: float | None = None, exact: bool = False,
           proposer: ActionProposer | None = None, opponent: OpponentModel | None = None,
           value: ValueEstimator | None = None, tt_bits: int = 22,
           proposer_k: int | None = None, all_values: bool = True,
           engine: str = "auto", iterative: bool = True) -> SearchResult:
    """Negamax alpha-beta with iterative deepening from ``state`` (the player to move's view).

    ``depth`` caps the iterations (default: to the end of the game); ``max_nodes`` and
    ``time_limit`` (seconds) stop the search cleanly, returning the last finished iteration (with
    none finished: a legal move in the engine's order and ``extra["budget_exhausted"]``).  With
    no depth and no budget a ``DEFAULT_TIME_LIMIT`` applies, unless ``exact``.  ``exact=True``
    solves the position (no depth limit).  ``proposer_k``: search only the proposer's k most
    likely moves.  ``all_values=False`` spends less on moves that cannot be best (they get only
    an upper bound, listed in ``extra["upper_bound_actions"]``).  ``tt_bits``: the transposition
    table holds about ``2**tt_bits`` positions.  ``engine``: ``"auto"``, ``"native"`` or
    ``"generic"`` (the plain-Python engine works on native states too).  ``iterative=False``
    searches ``depth`` at once, without the shallower iterations (the generic engine only: saves
    the hook calls of those iterations, e.g. LLM leaf values; with a budget that runs out first
    the result is the no-iteration fallback).

    >>> from plyground import games
    >>> s = games.play_moves(games.make("tictactoe"), "0 3 1 4")  # x to move, wins at cell 2
    >>> r = search(s, depth=2); (r.best_action, r.value, r.exact, r.score)
    (2, 1.0, True, 3)
    """
    _check_options(depth, max_nodes, time_limit, exact, tt_bits, proposer_k)
    _check_hooks(proposer, opponent, value)
    if engine not in ("auto", "native", "generic"):
        raise PlygroundError(f"engine must be 'auto', 'native' or 'generic', got {engine!r}")
    if not exact and depth is None and max_nodes is None and time_limit is None:
        time_limit = DEFAULT_TIME_LIMIT
    leaf = _native_leaf(state, proposer, proposer_k, opponent, value)
    if engine == "native" and leaf is None:
        raise PlygroundError("engine='native' needs a native tictactoe/connect4 state and non-LLM "
                             "hooks (UniformProposer without proposer_k, FullWidthOpponent "
                             "mode 'full', HeuristicValue or RolloutValue)")
    native = leaf is not None and engine != "generic"
    if native:
        cap = TT_BITS_CAP.get(state.game.name)
        if cap is not None and tt_bits > cap:
            tt_bits = cap
        if not exact:  # the numba depth-limited search checks for a finished game itself
            return _native_search(state, depth, max_nodes, time_limit, leaf, tt_bits, all_values)
    if state.is_terminal():
        raise _finished(state)
    if native:
        return _native_exact(state, max_nodes, time_limit, leaf, tt_bits, all_values)
    from plyground.search.generic_alphabeta import GenericAlphaBeta
    return GenericAlphaBeta(depth=depth, max_nodes=max_nodes, time_limit=time_limit, exact=exact,
                            proposer=proposer, proposer_k=proposer_k, opponent=opponent,
                            value=value, tt_bits=tt_bits, all_values=all_values,
                            iterative=iterative).run(state)


def _finished(state) -> PlygroundError:
    return PlygroundError("cannot search a finished game: the state is terminal "
                          f"(returns {list(state.returns())})")


def solve(state, **options: Any) -> SearchResult:
    """Solve ``state`` exactly: ``search(state, exact=True, ...)``; see ``search``.

    >>> from plyground import games
    >>> r = solve(games.play_moves(games.make("connect4"), "44444422222"))  # 11 stones
    >>> r.exact and r.score == -solve(games.play_moves(games.make("connect4"),
    ...                                                "44444422222" + str(r.best_action + 1))).score
    True
    """
    return search(state, exact=True, **options)


# ---------------------------------------------------------------- numba driver
_TABLES: dict[tuple[str, str, int], np.ndarray] = {}
# (game, bits) -> [depth-limited table, its last search generation]
_DEPTH_TABLES: dict[tuple[str, int], list] = {}


def clear_tables() -> None:
    """Free the transposition tables the numba engine keeps between searches."""
    _TABLES.clear()
    _DEPTH_TABLES.clear()


def zero_solver_tables() -> None:
    """Empty the exact solver's kept tables (benchmarks that time cold solves use this)."""
    for (_game, kind, _bits), table in _TABLES.items():
        if kind == "solve":
            table.fill(0)


def _solver_table(game: str, bits: int) -> np.ndarray:
    """The exact solver's table for ``game``: kept across searches (its bounds never go stale)."""
    from plyground.search.native import alphabeta as nab
    key = (game, "solve", bits)
    if key not in _TABLES:
        _TABLES[key] = _touched(nab.make_solver_tt(bits))
    return _TABLES[key]


def _touched(table: np.ndarray) -> np.ndarray:
    """Fault the table's pages in now, not inside a timed search (huge-page faults can stall)."""
    table.fill(0)
    return table


def _depth_table(game: str, bits: int) -> tuple[np.ndarray, int]:
    """The depth-limited table and a fresh generation number (older entries are ignored)."""
    entry = _DEPTH_TABLES.get((game, bits))
    if entry is None or entry[1] >= (1 << 15) - 1:   # (15 bits of generation in an entry)
        entry = _DEPTH_TABLES[(game, bits)] = [_touched(_lazy_modules()[1].make_depth_tt(bits)), 0]
    entry[1] += 1
    return entry[0], entry[1]


_WARM: set[tuple[str, str]] = set()  # (game, "depth" | "solve"): entry points loaded in this process


def _warm_up(name: str, kernel, part: str = "depth") -> None:
    """Load (or compile, the first time ever) the game's numba entry points before any clock
    starts, so a time budget is spent searching: each runs one node on the initial state.  ``part``
    "depth" is the depth-limited search, "solve" the exact solver's two (a depth-limited search never
    needs them, and they take over a quarter of a cold compile)."""
    if (name, part) in _WARM:
        return
    from plyground.search.native import alphabeta as nab
    ab_iterate, solve_fn, solve_pv = nab.ENTRY_POINTS[name]
    F = np.zeros((kernel.MAX_PLIES + 2, nab.frame_width(kernel)), dtype=np.int64)
    F[0, :kernel.STATE_LEN] = kernel.new_state()
    Wk = nab.make_work(kernel)
    ctr = nab.make_ctr(kernel)
    ctr[NODE_LIMIT] = 1
    if part == "depth":
        tt = nab.make_depth_tt(MIN_TT_BITS)
        ctr[[TT_SHIFT, GEN, MAX_DEPTH]] = 64 - MIN_TT_BITS, 1, 1
        ab_iterate(F[0, :kernel.STATE_LEN].copy(), F, tt, ctr, Wk, nab.make_values(kernel))
    else:
        pv = np.zeros(kernel.MAX_PLIES + 1, dtype=np.int64)
        stt = nab.make_solver_tt(MIN_TT_BITS)
        ctr[TT_SIZE] = stt.shape[0]
        solve_fn(F, stt, ctr, Wk, np.zeros(2, dtype=np.int64))
        solve_pv(F, stt, ctr, Wk, 0, pv)
        nab.solver_tt_migrate(stt, nab.make_solver_tt(MIN_TT_BITS + 1))  # the solver's table growth
    _WARM.add((name, part))


def warm_up(game, *, exact: bool = False, tt_bits: int = 22) -> None:
    """Load (or compile, on a cold numba cache) everything a native search of ``game`` may run, so
    that no timed search pays for it: the game's rules kernels, the depth-limited entry point and
    its transposition table (``tt_bits`` as ``search`` takes it), the kernel helpers the driver
    calls on a position (the no-search fallback), and with ``exact`` the solver's entry points and
    helpers.  A no-op for games without a numba engine (their searches compile nothing)."""
    warm_rules = getattr(game, "warm_up", None)
    if warm_rules is not None:
        warm_rules()
    name, kernel = getattr(game, "name", None), getattr(game, "kernel", None)
    if kernel is None or name not in _lazy_modules()[1].ENTRY_POINTS:
        return
    _warm_up(name, kernel)
    _depth_table(name, min(tt_bits, TT_BITS_CAP.get(name, tt_bits)))
    root = np.array(kernel.new_state(), dtype=np.int64)
    legal = game.new_initial_state().legal_actions()
    _first_in_order(kernel, root, legal)
    float(kernel.heuristic(root))
    if exact:
        _warm_up(name, kernel, "solve")
        int(kernel.move_count(root))
        child = np.array(kernel.play(root, legal[0]), dtype=np.int64)
        kernel.is_terminal(child)
        kernel.returns0(child)


_SCRATCH = threading.local()


def _depth_scratch(name: str, kernel, nab):
    """The depth-limited engine's entry point and work arrays for ``name`` (function, F, Wk, Wv,
    ctr, and ``slot``, a memoryview of ctr: setting a slot through it costs half of numpy's item
    assignment), kept per thread: the engine writes every cell of F, Wk and Wv before it reads
    it, and resets its counters and results in ctr, so none needs clearing."""
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    b = bufs.get(name)
    if b is None:
        if (name, "depth") not in _WARM:
            _warm_up(name, kernel)
        ctr = nab.make_ctr(kernel)
        b = bufs[name] = (nab.ENTRY_POINTS[name][0],
                          np.zeros((kernel.MAX_PLIES + 2, nab.frame_width(kernel)), dtype=np.int64),
                          nab.make_work(kernel), nab.make_values(kernel), ctr, memoryview(ctr))
    return b


def _native_search(state, depth, max_nodes, time_limit, leaf, bits, all_values) -> SearchResult:
    """The numba depth-limited search.  A tic-tac-toe solve takes ~40 us in the kernel, so the
    Python around it is kept to a few microseconds: the kernel resets its counters, checks the
    root and leaves its results compact, read with two ``tolist`` calls (the int array ``ctr``:
    counters and result lists; the values)."""
    game = state.game
    name, kernel = game.name, game.kernel
    ab_iterate, F, Wk, Wv, ctr, slot = _depth_scratch(name, kernel, _lazy_modules()[1])
    tt, gen = _depth_table(name, bits)
    slot[TT_SHIFT] = 64 - bits
    slot[GEN] = gen
    slot[MAX_DEPTH] = 0 if depth is None else depth
    slot[LEAF_MODE], slot[N_ROLL] = leaf
    slot[ALL_VALUES] = 1 if all_values else 0
    slot[NODE_LIMIT] = 0 if max_nodes is None else max_nodes
    t0 = time.perf_counter()  # the clock starts once the code and the tables are ready
    # CLOCK_MONOTONIC, as numba's
    slot[DEADLINE] = 0 if time_limit is None else time.monotonic_ns() + int(time_limit * 1e9)
    ab_iterate(state.array, F, tt, ctr, Wk, Wv)
    seconds = time.perf_counter() - t0
    c = ctr.tolist()  # plain ints: numpy scalars are slow here
    nodes, d = c[NODES], c[DONE_DEPTH]
    if d <= 0:
        if d < 0:
            raise _finished(state)
        best = _first_in_order(kernel, state.array, state.legal_actions())
        return SearchResult(best_action=best, value=float(kernel.heuristic(state.array)),
                            engine="alphabeta-numba", nodes=nodes, depth=0, pv=[best],
                            seconds=seconds, extra={"budget_exhausted": True})
    best, n, na = c[BEST_MOVE], c[N_OUT], kernel.NUM_ACTIONS
    acts = c[OUT:OUT + n]
    scores = dict(zip(acts, c[OUT + na:OUT + na + n]))
    values = dict(zip(acts, Wv.tolist()))
    score = scores[best]
    won_or_lost = score >= WIN or score <= -WIN
    extra: dict[str, Any] = {"action_scores": scores,
                             "leaf": "heuristic" if leaf[0] == LEAF_HEURISTIC else "rollout"}
    if c[N_BOUNDS]:
        extra["upper_bound_actions"] = c[OUT + 2 * na:OUT + 2 * na + c[N_BOUNDS]]
    proven = won_or_lost or d >= c[REMAINING]
    exact_score = None
    if proven:  # the distance-to-win score, or a draw found at the end of the tree
        exact_score = (score - WIN if score > 0 else score + WIN) if won_or_lost else 0
    pv = c[OUT + 3 * na:OUT + 3 * na + c[PV_LEN]]
    # positional: keyword arguments cost 0.5 us more here (SearchResult's field order)
    return SearchResult(best, values[best], "alphabeta-numba", nodes, d, pv, values, {}, seconds,
                        proven, exact_score, extra)


def _native_exact(state, max_nodes, time_limit, leaf, bits, all_values) -> SearchResult:
    """Exact mode: the solver; with a budget it gets most of it, and if it cannot finish, a
    depth-limited search spends the rest choosing a sensible move (the result is then not exact)."""
    nab = _lazy_modules()[1]
    kernel = state.game.kernel
    name = state.game.name
    if (name, "solve") not in _WARM:
        _warm_up(name, kernel, "solve")
    solve_fn, solve_pv = nab.ENTRY_POINTS[name][1:]
    F = np.zeros((kernel.MAX_PLIES + 2, nab.frame_width(kernel)), dtype=np.int64)
    Wk = nab.make_work(kernel)
    F[0, :kernel.STATE_LEN] = state.array
    ctr = nab.make_ctr(kernel)  # (the solver picks its own table: it grows)
    t0 = time.perf_counter()
    n = int(kernel.move_count(state.array))
    legal = state.legal_actions()
    if max_nodes is None and time_limit is None:
        return _native_solve(state, kernel, solve_fn, solve_pv, F, Wk, ctr, bits, n, legal,
                             all_values, t0)
    if max_nodes is not None:
        ctr[NODE_LIMIT] = max(1, int(max_nodes * SOLVER_SHARE))
    if time_limit is not None:
        ctr[DEADLINE] = time.monotonic_ns() + int(time_limit * SOLVER_SHARE * 1e9)
    res = _native_solve(state, kernel, solve_fn, solve_pv, F, Wk, ctr, bits, n, legal,
                        all_values, t0)
    if res.exact:
        return res
    spent = res.nodes
    rest_nodes = None if max_nodes is None else max(1, int(max_nodes) - spent)
    rest_time = None if time_limit is None else max(1e-3, time_limit - (time.perf_counter() - t0))
    fallback = _native_search(state, None, rest_nodes, rest_time, leaf, bits, all_values)
    fallback.nodes += spent
    fallback.seconds = time.perf_counter() - t0
    fallback.extra["budget_exhausted"] = True
    fallback.extra["score_bounds"] = res.extra.get("score_bounds")
    return fallback


def _first_in_order(kernel, array, legal) -> int:
    """The kernel's preferred legal move (an immediate win first): the no-search fallback."""
    w = int(kernel.immediate_win(array))
    if w >= 0:
        return w
    acts = np.array(legal, dtype=np.int64)
    scores = np.zeros(len(acts), dtype=np.int64)
    kernel.order_scores(array, acts, len(acts), scores)
    return int(acts[int(np.argmax(scores))])


def _solver_start_bits(remaining: int, max_bits: int) -> int:
    """First table size for a position with ``remaining`` plies left: small tables stay in the
    CPU caches (measured: 16 stones of connect four solve about twice as fast with 2**16 slots
    as with 2**24), and the table grows when the search outgrows it."""
    return max(MIN_TT_BITS, min(max_bits, remaining // 2 + 3))


def _grow_and_solve(name, solve_fn, F, Wk, ctr, out, remaining: int, max_bits: int):
    """Solve ``F[0]`` starting with a small table; whenever the search outgrows its table
    (``GROW_FACTOR`` x its slots in nodes) move the entries to a 4x bigger one and go on.
    Returns (score, table, bits)."""
    from plyground.search.native import alphabeta as nab
    user_limit = int(ctr[NODE_LIMIT])
    bits = _solver_start_bits(remaining, max_bits)
    tt = _solver_table(name, bits)
    while True:
        ctr[TT_SIZE] = tt.shape[0]
        growth_limit = 0 if bits >= max_bits else int(ctr[NODES]) + GROW_FACTOR * tt.shape[0]
        limits = [x for x in (user_limit, growth_limit) if x > 0]
        ctr[NODE_LIMIT] = min(limits) if limits else 0
        score = int(solve_fn(F, tt, ctr, Wk, out))
        outgrown = bool(ctr[ABORT] and growth_limit and ctr[NODES] >= growth_limit
                        and (user_limit == 0 or growth_limit < user_limit)
                        and not (ctr[DEADLINE] and time.monotonic_ns() >= ctr[DEADLINE]))
        if not outgrown:
            ctr[NODE_LIMIT] = user_limit
            return score, tt, bits
        bits = min(max_bits, bits + 2)
        bigger = _solver_table(name, bits)
        nab.solver_tt_migrate(tt, bigger)
        tt = bigger
        ctr[ABORT] = 0


def _native_solve(state, kernel, solve_fn, solve_pv, F, Wk, ctr, max_bits, n, legal, all_values, t0):
    """Exact mode: the root score, every move's score (``all_values``), the best move and a PV."""
    SL, MAXP = kernel.STATE_LEN, kernel.MAX_PLIES
    out = np.zeros(2, dtype=np.int64)
    root = state.array.copy()
    t_solve = time.perf_counter()
    score, tt, bits = _grow_and_solve(state.game.name, solve_fn, F, Wk, ctr, out, MAXP - n, max_bits)
    solve_seconds = time.perf_counter() - t_solve
    engine_name = "alphabeta-numba-solver"
    if ctr[ABORT]:
        lo, hi = int(out[0]), int(out[1])
        best = _first_in_order(kernel, root, legal)
        value = 0.0 if lo <= 0 <= hi else (1.0 if lo > 0 else -1.0)
        return SearchResult(best_action=best, value=value, engine=engine_name,
                            nodes=int(ctr[NODES]), depth=0, pv=[best],
                            seconds=time.perf_counter() - t0,
                            extra={"budget_exhausted": True, "score_bounds": (lo, hi)})
    root_nodes = int(ctr[NODES])
    # The principal variation first (cheap on the warm table): it gives a best move even if the
    # budget runs out while scoring the other moves below.
    F[0, :SL] = root
    pv_buf = np.zeros(MAXP + 1, dtype=np.int64)
    pv = pv_buf[:int(solve_pv(F, tt, ctr, Wk, score, pv_buf))].tolist() if not ctr[ABORT] else []
    action_scores: dict[int, int] = {}
    if all_values and not ctr[ABORT]:
        for a in legal:
            child = np.array(kernel.play(root, a), dtype=np.int64)
            if kernel.is_terminal(child):
                action_scores[a] = (MAXP + 1 - n) // 2 if kernel.returns0(child) != 0 else 0
                continue
            F[0, :SL] = child
            action_scores[a] = -int(solve_fn(F, tt, ctr, Wk, out))
            if ctr[ABORT]:
                del action_scores[a]
                break
    F[0, :SL] = root
    if pv:
        best = pv[0]
    elif action_scores and max(action_scores.values()) == score:
        best = max(action_scores, key=action_scores.get)
    else:  # aborted before a best move was known: the score is exact, the move is not
        best = _first_in_order(kernel, root, legal)
    value = 0.0 if score == 0 else (1.0 if score > 0 else -1.0)
    extra: dict[str, Any] = {"action_scores": action_scores, "root_nodes": root_nodes,
                             "solve_seconds": solve_seconds, "tt_bits": bits}
    if ctr[ABORT]:
        extra["budget_exhausted"] = True  # the score is exact; some action scores / the PV are missing
        extra["best_action_proven"] = bool(pv) or (bool(action_scores) and max(action_scores.values()) == score)
    return SearchResult(
        best_action=int(best), value=value, engine=engine_name, nodes=int(ctr[NODES]),
        depth=len(pv), pv=pv,
        action_values={a: (0.0 if s == 0 else (1.0 if s > 0 else -1.0)) for a, s in action_scores.items()},
        seconds=time.perf_counter() - t0, exact=True, score=score, extra=extra)
