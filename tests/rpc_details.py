"""The rich status a failed call carries (``google.rpc.Status`` in grpc-status-details-bin),
read as a client does: the ErrorInfo every gateway error has, and the other details."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from steno.gateway.rpc_errors import DOMAIN, RETRY_PUSHBACK

_Detail = TypeVar("_Detail")


def status_of(error: grpc.RpcError) -> status_pb2.Status:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"{error.code()} without google.rpc.Status details"
    return status


def details_of(error: grpc.RpcError, kind: type[_Detail]) -> list[_Detail]:
    """Every detail of type ``kind``."""
    found = []
    for packed in status_of(error).details:
        detail: Any = kind()
        if packed.Is(detail.DESCRIPTOR):
            packed.Unpack(detail)
            found.append(detail)
    return found


def detail_of(error: grpc.RpcError, kind: type[_Detail]) -> _Detail:
    """The one detail of type ``kind``."""
    [detail] = details_of(error, kind)
    return detail


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo, checked to be in Steno's domain."""
    info: error_details_pb2.ErrorInfo = detail_of(error, error_details_pb2.ErrorInfo)
    assert info.domain == DOMAIN
    return info


def reason_of(error: grpc.RpcError) -> str:
    reason: str = error_info(error).reason
    return reason


def facts(error: grpc.RpcError) -> tuple[str, dict[str, str]]:
    """The ErrorInfo's reason and metadata."""
    info = error_info(error)
    return info.reason, dict(info.metadata)


def retry_delay(error: grpc.RpcError) -> timedelta:
    """The RetryInfo's delay, checked to be the pushback trailer's too."""
    info: error_details_pb2.RetryInfo = detail_of(error, error_details_pb2.RetryInfo)
    delay: timedelta = info.retry_delay.ToTimedelta()
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    assert trailers.get(RETRY_PUSHBACK) == str(delay // timedelta(milliseconds=1))
    return delay


def field_violations(error: grpc.RpcError) -> list[str]:
    """The fields the BadRequest names."""
    bad_request: error_details_pb2.BadRequest = detail_of(error, error_details_pb2.BadRequest)
    return [violation.field for violation in bad_request.field_violations]


async def call_facts(call: grpc.aio.Call) -> tuple[str, dict[str, str], timedelta | None]:
    """A finished asyncio call's ErrorInfo reason and metadata, and its RetryInfo's delay
    (None without one), read as an asyncio client does."""
    status = await rpc_status.aio.from_call(call)
    assert status is not None, f"{await call.code()} without google.rpc.Status details"
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    delay = None
    for packed in status.details:
        if packed.Is(retry.DESCRIPTOR):
            packed.Unpack(retry)
            delay = retry.retry_delay.ToTimedelta()
        elif packed.Is(info.DESCRIPTOR):
            packed.Unpack(info)
    assert info.domain == DOMAIN, "no ErrorInfo in Steno's domain"
    return info.reason, dict(info.metadata), delay
