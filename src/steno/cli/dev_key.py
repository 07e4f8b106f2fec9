"""The local admin key of ``steno dev``: made on first start, kept where the CLI and SDK
look (``$STENO_DATA_DIR/api-key``, mode 0600), so a laptop needs no key management."""

from __future__ import annotations

import os
from pathlib import Path

from steno.client.credentials import KEY_FILE
from steno.common.api_keys import ApiKeyRepository, Role, find_key, new_api_key
from steno.common.clock import Clock
from steno.common.jobs import DEFAULT_TENANT

KEY_NAME = "steno dev"


async def ensure_dev_key(data_dir: Path, keys: ApiKeyRepository, *, clock: Clock) -> Path | None:
    """The key file, holding a key the database accepts: the file's own if it still works,
    else a new admin key of the default tenant. None if there is no file and keys exist
    already: whoever made them hands them out."""
    path = data_dir / KEY_FILE
    if path.exists():
        if await _accepted(path.read_text().strip(), keys):
            return path
    elif await keys.any_active():
        return None
    created = new_api_key(DEFAULT_TENANT, KEY_NAME, Role.ADMIN, now=clock())
    await keys.add(created.record)
    _write_private(path, created.key)
    return path


async def _accepted(key: str, keys: ApiKeyRepository) -> bool:
    record = await find_key(keys, key)
    return record is not None and record.revoke_time is None


def _write_private(path: Path, key: str) -> None:
    """Writes ``key`` readable by its owner only, from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")


def usage(path: Path, address: str, http_url: str = "") -> str:
    """How to call this ``steno dev`` with its key, for its start-up output: over gRPC, and
    over the OpenAI-compatible HTTP API at ``http_url`` if it serves one."""
    lines = [
        f"API key: {path} (the steno CLI and SDK read it)",
        f'  grpcurl -plaintext -H "authorization: Bearer $(cat {path})" '
        f"{address} steno.v1.TranscriptionService/ListJobs",
    ]
    if http_url:
        lines.append(
            f'  curl -H "Authorization: Bearer $(cat {path})" -F file=@samples/hello.ogg '
            f"-F model=whisper-1 {http_url}/v1/audio/transcriptions"
        )
    return "\n".join(lines)
