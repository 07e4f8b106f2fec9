"""The first step of an upload: the chunks as they arrive, recognised as audio, counted
against the size limit and hashed on the way through."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from steno.common.quotas import Admission
from steno.gateway.sniff import HEAD_BYTES, audio_content_type
from steno.gateway.uploads.refusals import InvalidUpload, UploadTooLarge


async def sniff(chunks: AsyncIterator[bytes]) -> tuple[str, AsyncIterator[bytes]]:
    """The content type of the audio, recognised from its first bytes, and the whole stream
    again, those bytes included; InvalidUpload if it is not a supported audio file."""
    pending: list[bytes] = []
    buffered = 0
    async for chunk in chunks:
        if not chunk:
            continue
        pending.append(chunk)
        buffered += len(chunk)
        if buffered >= HEAD_BYTES:
            break
    if not pending:
        raise InvalidUpload("chunk", "the upload has no audio: send chunks after the metadata")
    if buffered < HEAD_BYTES:
        raise InvalidUpload("chunk", f"{buffered} bytes is too short to be an audio file")
    content_type = audio_content_type(b"".join(pending)[:HEAD_BYTES])
    if content_type is None:
        raise InvalidUpload(
            "chunk",
            "the data is not a supported audio file; "
            "send WAV, MP3, OGG/Opus, FLAC, M4A/MP4 or WebM",
        )
    return content_type, _chain(pending, chunks)


class IncomingAudio:
    """The rest of an upload's chunks from ``offset`` on, counted as they pass (UploadTooLarge
    past ``max_bytes``, QuotaExceeded past what ``admission`` leaves of the tenant's stored
    audio quota) and, when ``hashed``, fed to a SHA-256 of the whole file."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        max_bytes: int,
        admission: Admission,
        offset: int = 0,
        hashed: bool,
    ) -> None:
        self._chunks = chunks
        self._max_bytes = max_bytes
        self._admission = admission
        self._digest = hashlib.sha256() if hashed else None
        # Bytes of the file received so far, from its start.
        self.size = offset

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of what has passed, or "" when not hashed (a continued upload,
        whose first bytes another stream sent)."""
        return self._digest.hexdigest() if self._digest is not None else ""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            self.size += len(chunk)
            if self.size > self._max_bytes:
                raise UploadTooLarge(self._max_bytes)
            self._admission.check_size(self.size)
            if self._digest is not None:
                self._digest.update(chunk)
            yield chunk

    async def drain(self) -> None:
        """Receives the rest without storing it: only counted and hashed."""
        async for _ in self:
            pass


async def _chain(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in first:
        yield chunk
    async for chunk in rest:
        if chunk:
            yield chunk
