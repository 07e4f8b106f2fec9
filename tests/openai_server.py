"""A local HTTP server that speaks the OpenAI transcription API, for the OpenAI engine's tests.

``POST /v1/audio/transcriptions`` takes the multipart form the official client sends. By
default the server decodes the uploaded audio with PyAV, as the real API does, and answers
``verbose_json`` with one segment every :attr:`FakeOpenAI.segment_seconds` covering it, or 400
if the audio does not decode. A test can queue canned replies instead (rate limits, errors)
and stall a request to provoke a timeout. Like the real API it refuses a body over 25 MB with
413. Every request is recorded, so tests can assert what the engine sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import av
import pytest

MAX_BODY_BYTES = 25 * 1024 * 1024
TRANSCRIPTIONS = "/v1/audio/transcriptions"


def error_body(message: str, *, type: str, code: str | None = None) -> dict[str, Any]:
    """An error as the OpenAI API writes it."""
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


@dataclass(frozen=True)
class Reply:
    """A canned answer to the next request."""

    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)
    # Hold the request unanswered until the server stops (to provoke a client timeout).
    stall: bool = False


@dataclass(frozen=True)
class Received:
    """A request the server received."""

    path: str
    size: int  # bytes of the request body
    authorization: str | None
    fields: dict[str, list[str]]
    filename: str | None = None
    file_size: int = 0
    sha256: str = ""  # of the file
    # The audio's duration when the server decoded it (default replies only).
    audio_seconds: float | None = None
    # When it arrived (time.monotonic).
    at: float = field(default_factory=time.monotonic)

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


class FakeOpenAI:
    """The server: start it, point the engine at :attr:`base_url`, inspect :attr:`requests`."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.segment_seconds = 5.0
        # Seconds each default or canned reply takes, as a real API's would.
        self.latency = 0.0
        self.language = "english"
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai"
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def reply(
        self,
        status: int,
        body: dict[str, Any] | str,
        headers: dict[str, str] | None = None,
        *,
        stall: bool = False,
    ) -> None:
        """Answers the next request that has no earlier canned reply with this one."""
        with self._lock:
            self._replies.append(Reply(status, body, headers or {}, stall))

    def fail(
        self,
        status: int,
        message: str,
        *,
        type: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answers the next request with an error, as the OpenAI API writes one."""
        self.reply(status, error_body(message, type=type, code=code), headers)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _next_reply(self) -> Reply | None:
        with self._lock:
            return self._replies.popleft() if self._replies else None

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def _transcribe(self, fields: dict[str, list[str]], audio: bytes) -> tuple[Reply, float | None]:
        """The default reply: segments covering the decoded audio."""
        try:
            seconds = _decoded_seconds(audio)
        except av.error.FFmpegError:
            message = "The audio file could not be decoded or its format is not supported."
            return Reply(400, error_body(message, type="invalid_request_error")), None
        segments: list[dict[str, Any]] = []
        start = 0.0
        while start < seconds:
            end = min(start + self.segment_seconds, seconds)
            segments.append(_segment(len(segments), start, end, f" Part {len(segments) + 1}."))
            start = end
        text = "".join(s["text"] for s in segments).strip()
        body: dict[str, Any] = {"text": text}
        if fields.get("response_format") == ["verbose_json"]:
            body = {
                "task": "transcribe",
                "language": self.language,
                "duration": seconds,
                "text": text,
                "segments": segments,
            }
        return Reply(200, body), seconds


def _handler(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            size = int(self.headers.get("content-length") or 0)
            authorization = self.headers.get("authorization")
            if size > MAX_BODY_BYTES:
                self._drain(size)
                server._record(Received(self.path, size, authorization, fields={}))
                message = f"Maximum content size limit ({MAX_BODY_BYTES}) exceeded ({size} bytes)"
                self._send(Reply(413, error_body(message, type="invalid_request_error")))
                return
            body = self.rfile.read(size)
            fields, files = _parse_form(self.headers.get("content-type", ""), body)
            filename, audio = files.get("file", (None, b""))
            reply = server._next_reply()
            seconds = None
            if self.path != TRANSCRIPTIONS:
                reply = Reply(404, error_body(f"Unknown path {self.path}", type="not_found"))
            elif reply is None:
                reply, seconds = server._transcribe(fields, audio)
            server._record(
                Received(
                    self.path,
                    size,
                    authorization,
                    fields,
                    filename,
                    len(audio),
                    hashlib.sha256(audio).hexdigest(),
                    seconds,
                )
            )
            if reply.stall:
                server._release.wait()
                self.close_connection = True
                return
            if server.latency:
                server._release.wait(server.latency)
            self._send(reply)

        def _drain(self, size: int) -> None:
            """Reads and drops a body, so the client sees the answer and not a reset."""
            while size > 0 and (block := self.rfile.read(min(size, 1 << 20))):
                size -= len(block)

        def _send(self, reply: Reply) -> None:
            if isinstance(reply.body, str):
                payload, content_type = reply.body.encode(), "text/plain"
            else:
                payload, content_type = json.dumps(reply.body).encode(), "application/json"
            self.send_response(reply.status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            # A client that gave up (its worker was stopped) is not the server's problem.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


def _parse_form(
    content_type: str, body: bytes
) -> tuple[dict[str, list[str]], dict[str, tuple[str | None, bytes]]]:
    """The fields and files of a multipart/form-data body."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    fields: dict[str, list[str]] = {}
    files: dict[str, tuple[str | None, bytes]] = {}
    if not isinstance(boundary, str):
        return fields, files
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers = BytesHeaderParser().parsebytes(head)
        name = headers.get_param("name", header="content-disposition")
        filename = headers.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            continue
        if filename is None:
            fields.setdefault(name, []).append(content.decode())
        else:
            files[name] = (str(filename), content)
    return fields, files


def _decoded_seconds(audio: bytes) -> float:
    with av.open(io.BytesIO(audio), "r") as container:
        frames = container.decode(container.streams.audio[0])
        return sum(frame.samples / frame.sample_rate for frame in frames)


def _segment(index: int, start: float, end: float, text: str) -> dict[str, Any]:
    return {
        "id": index,
        "seek": int(start * 100),
        "start": start,
        "end": end,
        "text": text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": -0.2,
        "compression_ratio": 1.2,
        "no_speech_prob": 0.01,
    }


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    """A fake OpenAI transcription API on a free port of 127.0.0.1, for this test."""
    server = FakeOpenAI()
    server.start()
    try:
        yield server
    finally:
        server.stop()
