"""A webhook receiver for the tests: an HTTP server on 127.0.0.1 that records every POST
(its headers and body) and answers with the statuses it is told, then 204. It can be
stopped and started again on the same port, as a receiver that was down for a while."""

from __future__ import annotations

import http.server
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class WebhookReceiver:
    """``answers`` are the statuses of the next requests, in order; then 204."""

    port: int = 0
    answers: deque[int] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/steno"

    def answer_with(self, statuses: Iterable[int]) -> None:
        self.answers.extend(statuses)

    def delivered(self) -> list[Received]:
        """The requests it took (answered 2xx)."""
        return [r for r in self.received if 200 <= r.status < 300]

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.answers.popleft() if receiver.answers else 204
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.received.append(Received(headers, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None
