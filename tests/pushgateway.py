"""A stand-in for a Prometheus Pushgateway: an HTTP server on a free port that records
every push (its method, path and body) and answers 200."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Push:
    method: str
    path: str
    body: str


@dataclass
class FakePushgateway:
    address: str
    pushes: list[Push] = field(default_factory=list)


@contextlib.contextmanager
def fake_pushgateway() -> Iterator[FakePushgateway]:
    gateway = FakePushgateway("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length).decode()
            gateway.pushes.append(Push(self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        do_PUT = do_POST = _record

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gateway.address = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
