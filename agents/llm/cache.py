"""A persistent SQLite cache of deterministic LLM answers, shared by threads and processes.

Keyed by a hash of (backend, model, operation, prompt, sampling parameters[, continuations]).
Only deterministic calls are stored (temperature 0 or a fixed seed); the caller decides.  No
secret ever enters a key or a row: backends pass only the name of the key's environment variable.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_CACHE_PATH = Path("~/.cache/plyground/llm_cache.sqlite")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    op TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(**parts: Any) -> str:
    """A stable sha256 hex key for the given JSON-serialisable parts (order-independent)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LLMCache:
    """SQLite answer cache (WAL, short transactions).  ``LLMCache(path)``; ``None`` -> default path.

    >>> c = LLMCache("/tmp/x.sqlite"); k = cache_key(op="chat", prompt="hi")
    >>> c.put(k, {"text": "hello"}, backend="local", model="m", op="chat"); c.get(k)["text"]
    'hello'
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path if path is not None else DEFAULT_CACHE_PATH).expanduser()
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    # one connection per process (re-opened after fork); guarded by a lock for threads
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer for ``key`` or None; counts hits and misses."""
        with self._lock:
            row = self._connection().execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, value: dict[str, Any], *, backend: str, model: str, op: str) -> None:
        """Store (or replace) one answer in a single short transaction."""
        blob = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO answers (key, backend, model, op, value, created) "
                "VALUES (?, ?, ?, ?, ?, ?)", (key, backend, model, op, blob, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return self._connection().execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def clear(self) -> None:
        """Delete every stored answer."""
        with self._lock:
            self._connection().execute("DELETE FROM answers")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __getstate__(self) -> dict[str, Any]:      # picklable for process pools / Ray
        return {"path": str(self.path)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])

    def __repr__(self) -> str:
        return f"LLMCache({str(self.path)!r})"


def open_cache(cache: "LLMCache | str | os.PathLike | bool | None") -> LLMCache | None:
    """Normalise a user's ``cache`` option: an LLMCache, a path, True (default path), or None/False (off)."""
    if cache is None or cache is False:
        return None
    if isinstance(cache, LLMCache):
        return cache
    if cache is True:
        return LLMCache()
    if isinstance(cache, str) and cache.lower() in ("", "none", "off", "false", "0"):
        return None
    if isinstance(cache, str) and cache.lower() in ("on", "true", "1", "default"):
        return LLMCache()
    return LLMCache(cache)
