"""Where a client finds its API key: given explicitly, in ``STENO_API_KEY``, or in the key
file ``steno dev`` writes, ``$STENO_DATA_DIR/api-key`` (``.steno/api-key`` by default)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_DATA_DIR = ".steno"
KEY_FILE = "api-key"


def dev_key_file(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("STENO_DATA_DIR") or DEFAULT_DATA_DIR) / KEY_FILE


def find_api_key(
    explicit: str | None = None, environ: Mapping[str, str] = os.environ
) -> str | None:
    """The first key found, or None (the call then goes without one)."""
    if explicit:
        return explicit
    if environ.get("STENO_API_KEY"):
        return environ["STENO_API_KEY"]
    try:
        return dev_key_file(environ).read_text().strip() or None
    except FileNotFoundError:
        return None
