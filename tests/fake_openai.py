"""A small fake OpenAI-compatible HTTP server for fault tests (no model behind it).

    with FakeOpenAI(reply="4") as srv:              # serves on 127.0.0.1:<free port>
        srv.base_url                                 # "http://127.0.0.1:PORT/v1"
        srv.script(["500", "500", "ok"])             # the next requests' behaviours, then `mode`
        srv.mode = "garbage"                         # default behaviour once the script is used up
        srv.requests                                 # list of (path, json body or None, headers)

Behaviours: "ok" (a well-formed reply whose text is ``reply``; completions with ``echo`` carry
prompt logprobs, chat with ``logprobs`` carries top_logprobs), "500" (HTTP 500), "garbage" (HTTP
200 with a non-JSON body), "badjson" (HTTP 200 JSON without ``choices``), "hang" (never answers
until the server closes), "401" (auth failure), "400" (bad request).
Completions carry consistent fake logprobs: -0.5 per character of an echoed prompt (one "token"
per character) and -0.5 for the reply, so the ``logprobs`` scoring path can be exercised.
``reply`` may be a callable ``(path, body) -> str`` to answer per request.  ``delay`` slows every
answer (``max_inflight`` then shows the client's concurrency); ``leak_auth`` copies the request's
Authorization header into error messages (to test that clients redact it).
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

BEHAVIOURS = ("ok", "500", "garbage", "badjson", "hang", "401", "400")


class FakeOpenAI:
    """The fake server; a context manager that starts it in a daemon thread and stops it."""

    def __init__(self, reply: str | Callable[[str, dict], str] = "4", mode: str = "ok",
                 host: str = "127.0.0.1", port: int = 0, delay: float = 0.0,
                 leak_auth: bool = False) -> None:
        if mode not in BEHAVIOURS:
            raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(BEHAVIOURS)}")
        self.reply = reply
        self.mode = mode
        self.delay = delay              # seconds to wait before each answer
        self.leak_auth = leak_auth      # put the received Authorization header into error bodies
        self.inflight = 0
        self.max_inflight = 0           # most requests handled at the same time
        self.requests: list[tuple[str, Any, dict[str, str]]] = []
        self._script: list[str] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:   # keep test output quiet
                pass

            def do_GET(self) -> None:
                fake._record(self, None)
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                behaviour = fake._record(self, body)
                with fake._lock:
                    fake.inflight += 1
                    fake.max_inflight = max(fake.max_inflight, fake.inflight)
                try:
                    if fake.delay:
                        time.sleep(fake.delay)
                    self._behave(behaviour, body)
                finally:
                    with fake._lock:
                        fake.inflight -= 1

            def _behave(self, behaviour: str, body: Any) -> None:
                auth = f" (got {self.headers.get('Authorization')})" if fake.leak_auth else ""
                if behaviour == "hang":
                    while not fake._closing.wait(0.05):
                        pass
                    return
                if behaviour == "500":
                    return self._send(500, {"error": {"message": "internal error (fake)" + auth}})
                if behaviour == "401":
                    return self._send(401, {"error": {"message": "invalid api key (fake)" + auth}})
                if behaviour == "400":
                    return self._send(400, {"error": {"message": "bad request (fake)" + auth}})
                if behaviour == "garbage":
                    return self._send_raw(200, b"<html>this is not json{{{", "application/json")
                if behaviour == "badjson":
                    return self._send(200, {"id": "x", "object": "chat.completion", "nothing": True})
                self._send(200, fake._answer(self.path, body or {}))

            def _send(self, code: int, obj: dict) -> None:
                self._send_raw(code, json.dumps(obj).encode(), "application/json")

            def _send_raw(self, code: int, data: bytes, ctype: str) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def script(self, behaviours: list[str]) -> None:
        """Queue behaviours for the next requests (then ``mode`` applies again)."""
        for b in behaviours:
            if b not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {b!r}; allowed: {', '.join(BEHAVIOURS)}")
        with self._lock:
            self._script.extend(behaviours)

    @property
    def n_posts(self) -> int:
        return sum(1 for p, b, _ in self.requests if b is not None)

    def _record(self, handler: BaseHTTPRequestHandler, body: Any) -> str:
        with self._lock:
            self.requests.append((handler.path, body, dict(handler.headers)))
            return self._script.pop(0) if self._script else self.mode

    def _text(self, path: str, body: dict) -> str:
        return self.reply(path, body) if callable(self.reply) else self.reply

    def _answer(self, path: str, body: dict) -> dict:
        text = self._text(path, body)
        usage = {"prompt_tokens": 11, "completion_tokens": max(1, len(text.split())), "total_tokens": 0}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if path.endswith("/chat/completions"):
            choice: dict[str, Any] = {"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}
            if body.get("logprobs"):
                k = int(body.get("top_logprobs") or 1)
                first = text[:1] or " "
                tops = [{"token": first, "logprob": math.log(0.6), "bytes": None}]
                tops += [{"token": t, "logprob": math.log(0.4 / k), "bytes": None}
                         for t in "ABCDEFGHIJ"[: max(0, k - 1)] if t != first]
                choice["logprobs"] = {"content": [{"token": first, "logprob": math.log(0.6),
                                                   "bytes": None, "top_logprobs": tops}]}
            return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "fake-model"), "choices": [choice], "usage": usage}
        prompt = body.get("prompt", "")
        prompt = prompt[0] if isinstance(prompt, list) and prompt else prompt
        choice = {"index": 0, "finish_reason": "stop", "text": text, "logprobs": None}
        if body.get("echo"):
            choice["text"] = prompt + text
            if body.get("logprobs") is not None:      # one fake "token" per character
                toks = list(prompt) + [text]
                offs, o = [], 0
                for t in toks:
                    offs.append(o)
                    o += len(t)
                choice["logprobs"] = {"tokens": toks, "text_offset": offs,
                                      "token_logprobs": [None] + [-0.5] * (len(toks) - 1),
                                      "top_logprobs": [None] + [{t: -0.5} for t in toks[1:]]}
        elif body.get("logprobs") is not None:
            choice["logprobs"] = {"tokens": [text], "text_offset": [len(prompt)],
                                  "token_logprobs": [-0.5], "top_logprobs": [{text: -0.5}]}
        return {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                "model": body.get("model", "fake-model"), "choices": [choice], "usage": usage}

    def start(self) -> "FakeOpenAI":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port nobody listens on right now (for connection-refused tests and real servers)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":       # python tests/fake_openai.py [port] [mode]
    import sys
    srv = FakeOpenAI(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                     mode=sys.argv[2] if len(sys.argv) > 2 else "ok")
    print(srv.base_url, flush=True)
    try:
        srv._server.serve_forever()
    except KeyboardInterrupt:
        pass
