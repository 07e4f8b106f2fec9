"""What a failed request to an OpenAI-compatible transcription API means for the job: fail
it with a reason a person can act on, or try it again later (EngineUnavailable, with the
server's hint of when). No message carries the API key: OpenAI echoes part of a rejected
key back in its error bodies."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import openai

from steno.common.clock import utc_now
from steno.transcriber.engines.port import EngineError, EngineUnavailable


@dataclass(frozen=True, slots=True)
class ApiFailures:
    """The failures of requests to ``server`` (a URL safe to show) for ``model``, sent with
    the key ``secret``."""

    server: str
    model: str
    secret: str

    def classify(self, exc: openai.APIError) -> EngineError | EngineUnavailable:
        """What a failed request means for the job: fail it, or try it again later."""
        server = self.server
        if isinstance(exc, openai.APITimeoutError):
            return EngineUnavailable(f"the transcription API at {server} did not answer in time")
        if isinstance(exc, openai.APIConnectionError):
            return EngineUnavailable(f"could not reach the transcription API at {server}")
        if not isinstance(exc, openai.APIStatusError):
            return EngineError(
                f"the transcription API at {server} gave an answer that cannot be read: "
                f"{self.redact(exc.message)}",
                code="FAILED_PRECONDITION",
            )
        status = exc.status_code
        said = self.redact(_api_message(exc))
        retry_after = _retry_after(exc.response.headers)
        if status == 429 and "insufficient_quota" in (exc.code, exc.type):
            return EngineError(
                "the OpenAI account is out of quota (HTTP 429 insufficient_quota): "
                "check its billing and plan, then upload the audio again",
                code="RESOURCE_EXHAUSTED",
            )
        if status == 429:
            return EngineUnavailable(
                f"the transcription API is rate limiting requests: {said}", retry_after=retry_after
            )
        if status == 401:
            return EngineError(
                f"the transcription API at {server} rejected the API key (HTTP 401): set "
                "OPENAI_API_KEY to a valid key (and OPENAI_BASE_URL for an OpenAI-compatible "
                "server)",
                code="UNAUTHENTICATED",
            )
        if status == 403:
            return EngineError(
                f"the transcription API at {server} refused access (HTTP 403): {said}; check "
                f"that the key's project may use the model {self.model!r}",
                code="PERMISSION_DENIED",
            )
        if status == 404:
            return EngineError(
                f"the transcription API at {server} does not have the model {self.model!r} "
                f"(HTTP 404: {said}); configure a model the server provides, and check "
                "OPENAI_BASE_URL",
                code="FAILED_PRECONDITION",
            )
        if status in (400, 413, 415, 422) and exc.param not in (None, "file"):
            return EngineError(
                f"the transcription API rejected the {exc.param} (HTTP {status}: {said})",
                code="INVALID_ARGUMENT",
            )
        if status in (400, 413, 415, 422):
            return EngineError(
                f"the transcription API could not use the audio (HTTP {status}: {said}); "
                "check that the upload is a valid, supported audio file",
                code="INVALID_ARGUMENT",
            )
        if status in (408, 409, 425) or status >= 500:
            return EngineUnavailable(
                f"the transcription API at {server} failed (HTTP {status}: {said})",
                retry_after=retry_after,
            )
        return EngineError(
            f"the transcription API at {server} answered HTTP {status}: {said}",
            code="FAILED_PRECONDITION",
        )

    def redact(self, text: str) -> str:
        """``text`` without the API key, nor anything shaped like one (the API echoes keys
        back in part)."""
        if self.secret:
            text = text.replace(self.secret, "[redacted]")
        return _KEY_LIKE.sub("[redacted]", text)


_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*\-]{4,}")


def _api_message(exc: openai.APIStatusError) -> str:
    """What the server said, from the error body; the status line if it said nothing."""
    body: Any = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return exc.response.reason_phrase or f"HTTP {exc.status_code}"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The server's hint of when to try again, in seconds: ``retry-after-ms`` (OpenAI's), or
    ``retry-after`` as seconds or an HTTP date."""
    with contextlib.suppress(ValueError):
        if (millis := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(millis) / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        when = parsedate_to_datetime(value)
        return max(0.0, (when - utc_now()).total_seconds())
    return None
