"""One table answers every RPC's errors: unary, client- and server-streaming alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry, Counter

from steno.common.errors import DatabaseUnavailable
from steno.gateway.request_fields import InvalidField
from steno.gateway.rpc_errors import STATUS_CODES, NotFound, rpc
from steno.gateway.uploads import UploadTooLarge, WrongOffset


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
    ("error", "code"),
    [
        (NotFound("no lexicon 1"), grpc.StatusCode.NOT_FOUND),
        (UploadTooLarge("too big"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (WrongOffset("continue from 8"), grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
async def test_a_raised_refusal_gets_its_code_and_its_message(
    error: Exception, code: grpc.StatusCode
) -> None:
    context = await call(error)
    assert context.code is code
    assert context.details == str(error)


async def test_a_bad_field_is_invalid_argument_with_a_field_violation() -> None:
    context = await call(InvalidField("page_size", "page_size must not be negative"))

    assert context.code is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(_as_call(context))
    assert status is not None
    details = error_details_pb2.BadRequest()
    status.details[0].Unpack(details)
    assert [(v.field, v.description) for v in details.field_violations] == [
        ("page_size", "page_size must not be negative")
    ]


async def test_an_outage_is_unavailable_and_says_to_try_again() -> None:
    context = await call(DatabaseUnavailable("the database is unavailable: refused"))
    assert context.code is grpc.StatusCode.UNAVAILABLE
    assert context.details == "the database is unavailable: refused; try again later"


async def test_a_bug_is_internal_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    context = await call(KeyError("SELECT secret FROM jobs"))
    assert context.code is grpc.StatusCode.INTERNAL
    assert context.details == "internal error; the server log has details"
    assert "unexpected error" in caplog.text


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
        await Counted().Call(UploadTooLarge("too big"), Aborting())

    assert outcomes.labels("OK")._value.get() == 1
    assert outcomes.labels("RESOURCE_EXHAUSTED")._value.get() == 1


def test_every_mapped_exception_is_an_exception_with_a_real_code() -> None:
    assert all(issubclass(kind, Exception) for kind in STATUS_CODES)
    assert grpc.StatusCode.OK not in STATUS_CODES.values()
    assert grpc.StatusCode.INTERNAL not in STATUS_CODES.values()


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
