"""multipart/form-data bodies written by hand, for the HTTP API's tests that need an order
or a size the clients would not send."""

from __future__ import annotations

BOUNDARY = "steno-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
END = f"--{BOUNDARY}--\r\n".encode()


def part_head(name: str, filename: str = "") -> bytes:
    """What comes before a part's content (each part's content ends with CRLF)."""
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()


def field(name: str, value: str) -> bytes:
    return part_head(name) + value.encode() + b"\r\n"
