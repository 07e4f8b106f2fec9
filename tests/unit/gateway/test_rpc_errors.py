"""One table answers every RPC's errors: unary, client- and server-streaming alike."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from prometheus_client import CollectorRegistry, Counter

from steno.common.errors import DatabaseUnavailable
from steno.common.quotas import QuotaExceeded
from steno.gateway.refusals import LexiconNotFound, RevokedApiKey
from steno.gateway.request_fields import InvalidField
from steno.gateway.rpc_errors import ERRORS, RETRY_PUSHBACK, SOON, rpc
from steno.gateway.uploads import UploadTooLarge, WrongOffset
from tests.rpc_details import detail_of, details_of, error_info, retry_delay

LEXICON_ID = uuid.UUID("0b7d3f44-5d2c-4f0e-9c61-2f1a7e0c9a55")


class Aborting:
    """The part of a servicer context the table uses: abort records and raises."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing: Any = ()

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing: Any = ()) -> None:
        self.code, self.details, self.trailing = code, details, trailing
        raise grpc.aio.AbortError()


class Servicer:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    @rpc()
    async def Unary(self, request: object, context: Aborting) -> str:
        if self.error is not None:
            raise self.error
        return "ok"

    @rpc(retry="watch the job again later")
    async def Stream(self, request: object, context: Aborting) -> AsyncIterator[str]:
        yield "first"
        if self.error is not None:
            raise self.error
        yield "second"


async def call(error: Exception | None) -> Aborting:
    context = Aborting()
    with pytest.raises(grpc.aio.AbortError):
        await Servicer(error).Unary(None, context)
    return context


@pytest.mark.parametrize(
    ("error", "code", "reason", "metadata"),
    [
        (
            LexiconNotFound(LEXICON_ID),
            grpc.StatusCode.NOT_FOUND,
            "LEXICON_NOT_FOUND",
            {"lexicon_id": str(LEXICON_ID)},
        ),
        (
            WrongOffset("r-1", 8388608),
            grpc.StatusCode.FAILED_PRECONDITION,
            "WRONG_OFFSET",
            {"request_id": "r-1", "committed_bytes": "8388608"},
        ),
        (
            UploadTooLarge(1000),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "UPLOAD_TOO_LARGE",
            {"limit": "1000"},
        ),
        (
            RevokedApiKey("stn_0123"),
            grpc.StatusCode.UNAUTHENTICATED,
            "API_KEY_REVOKED",
            {"key_id": "stn_0123"},
        ),
    ],
)
async def test_a_raised_refusal_gets_its_code_message_and_error_info(
    error: Exception, code: grpc.StatusCode, reason: str, metadata: dict[str, str]
) -> None:
    context = await call(error)
    assert context.code is code
    assert context.details == str(error)
    info = error_info(_as_call(context))  # type: ignore[arg-type]
    assert (info.reason, dict(info.metadata)) == (reason, metadata)


async def test_a_bad_field_is_invalid_argument_with_a_field_violation() -> None:
    context = await call(InvalidField("page_size", "page_size must not be negative"))

    assert context.code is grpc.StatusCode.INVALID_ARGUMENT
    failed: Any = _as_call(context)
    bad_request = detail_of(failed, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("page_size", "page_size must not be negative")
    ]
    assert error_info(failed).reason == "INVALID_FIELD"
    assert dict(error_info(failed).metadata) == {"field": "page_size"}


async def test_a_refusal_that_waiting_lifts_says_how_long_to_wait() -> None:
    context = await call(QuotaExceeded("acme", "concurrent_jobs", 2.0, "too many jobs"))
    failed: Any = _as_call(context)
    assert context.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_delay(failed) == timedelta(seconds=30)
    assert dict(error_info(failed).metadata) == {
        "tenant": "acme",
        "quota": "concurrent_jobs",
        "limit": "2",
    }
    assert detail_of(failed, error_details_pb2.QuotaFailure).violations[0].quota_value == 2


async def test_a_refusal_no_wait_lifts_has_no_retry_info() -> None:
    failed: Any = _as_call(await call(UploadTooLarge(1000)))
    assert details_of(failed, error_details_pb2.RetryInfo) == []
    assert RETRY_PUSHBACK not in dict(failed.trailing_metadata())


async def test_an_outage_is_unavailable_and_says_to_try_again_soon() -> None:
    context = await call(DatabaseUnavailable("the database is unavailable: refused"))
    assert context.code is grpc.StatusCode.UNAVAILABLE
    assert context.details == "the database is unavailable: refused; try again later"
    failed: Any = _as_call(context)
    assert retry_delay(failed) == SOON
    info = error_info(failed)
    assert (info.reason, dict(info.metadata)) == (
        "DEPENDENCY_UNAVAILABLE",
        {"dependency": "database"},
    )


async def test_a_bug_is_internal_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    context = await call(KeyError("SELECT secret FROM jobs"))
    assert context.code is grpc.StatusCode.INTERNAL
    assert context.details == "internal error; the server log has details"
    assert "unexpected error" in caplog.text
    info = error_info(_as_call(context))  # type: ignore[arg-type]
    assert (info.reason, dict(info.metadata)) == ("INTERNAL", {})


async def test_a_streaming_handler_is_answered_by_the_same_table() -> None:
    context = Aborting()
    received = []
    with pytest.raises(grpc.aio.AbortError):
        async for response in Servicer(DatabaseUnavailable("broker gone")).Stream(None, context):
            received.append(response)
    assert received == ["first"]
    assert context.code is grpc.StatusCode.UNAVAILABLE
    assert context.details == "broker gone; watch the job again later"


async def test_outcomes_count_every_call_by_code() -> None:
    outcomes = Counter("calls", "calls by code", ["code"], registry=CollectorRegistry())

    class Counted:
        @rpc(outcomes=outcomes)
        async def Call(self, request: Exception | None, context: Aborting) -> str:
            if request is not None:
                raise request
            return "ok"

    assert await Counted().Call(None, Aborting()) == "ok"
    with pytest.raises(grpc.aio.AbortError):
        await Counted().Call(UploadTooLarge(1000), Aborting())

    assert outcomes.labels("OK")._value.get() == 1
    assert outcomes.labels("RESOURCE_EXHAUSTED")._value.get() == 1


def test_every_mapped_exception_has_a_real_code_and_a_reason() -> None:
    assert all(issubclass(kind, Exception) for kind in ERRORS)
    codes = {kind.code for kind in ERRORS.values()}
    assert grpc.StatusCode.OK not in codes and grpc.StatusCode.INTERNAL not in codes
    # AIP-193: UPPER_SNAKE_CASE, at most 63 characters.
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]{0,61}[A-Z0-9]", k.reason) for k in ERRORS.values())


def test_every_unavailable_and_exhausted_says_when_to_retry_but_a_too_large_upload() -> None:
    waiting_helps = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
    without = {
        error
        for error, kind in ERRORS.items()
        if kind.code in waiting_helps and not kind.retry_delay
    }
    assert without == {UploadTooLarge}


class _as_call:
    """What rpc_status.from_call reads off a finished call."""

    def __init__(self, context: Aborting) -> None:
        self._context = context

    def code(self) -> grpc.StatusCode | None:
        return self._context.code

    def details(self) -> str:
        return self._context.details

    def trailing_metadata(self) -> Any:
        return self._context.trailing
