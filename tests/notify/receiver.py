"""A real local HTTP receiver for webhook tests: verifies every signature, counts each
idempotency key, and can be told to misbehave (500s, slowness, redirects, huge answers) or be
stopped and started again on the same port (an outage)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from autometa.notify.signing import SignatureError, verify


class Receiver:
    def __init__(self, secret: str, port: int = 0) -> None:
        self.secret = secret
        self.port = port
        self.mode = "ok"  # ok | error | slow | redirect | huge
        self.redirect_to = "http://10.255.255.1/hook"
        self.slow_s = 5.0
        self.keys: Counter[str] = Counter()
        self.received_at: dict[str, float] = {}
        self.bodies: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._conns: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver._conns.add(self.connection)

            def finish(self) -> None:
                with contextlib.suppress(OSError):
                    super().finish()
                with receiver.lock:
                    receiver._conns.discard(self.connection)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                mode = receiver.mode
                if mode == "slow":
                    time.sleep(receiver.slow_s)
                if mode == "redirect":
                    self._answer(307, b"", {"Location": receiver.redirect_to})
                    return
                try:
                    key = verify(receiver.secret, dict(self.headers), body)
                except SignatureError:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self._answer(401, b"bad signature")
                    return
                if mode == "error":
                    self._answer(500, b"boom")
                    return
                if mode == "huge":
                    self._answer(200, b"x" * (1024 * 1024))
                    return
                with receiver.lock:
                    receiver.keys[key] += 1
                    receiver.received_at.setdefault(key, time.time())
                    receiver.bodies[key] = json.loads(body)
                self._answer(200, b"ok")

            def _answer(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away (we time out on purpose): not worth a traceback

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down for real: the listening socket and every kept-alive connection are closed."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    @property
    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.keys.values())
