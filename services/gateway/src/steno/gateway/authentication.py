"""API-key authentication: an interceptor that lets an RPC through only with a key it knows,
and tells the servicer whose call it is.

Health and reflection stay open (probes and grpcurl's discovery carry no key); every other
method needs ``authorization: Bearer <key>``, and AdminService's need an admin key.
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import grpc

from steno.common.api_keys import ApiKeyRepository, Role, find_key, hash_key, key_id_of
from steno.common.clock import Clock, utc_now
from steno.common.errors import CannotStart
from steno.common.jobs import DEFAULT_TENANT
from steno.gateway.refusals import AdminKeyRequired, MissingApiKey, RevokedApiKey, UnknownApiKey
from steno.gateway.rpc_errors import refuse
from steno.gateway.settings import AccessSettings
from steno.gateway.tenancy import Caller, set_caller

log = logging.getLogger(__name__)

OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
ADMIN_SERVICE = "steno.v1.AdminService"
# A key's last use is written at most this often, not on every call.
LAST_USE_RESOLUTION = timedelta(minutes=1)
_HOW = (
    "send 'authorization: Bearer <key>' as gRPC metadata (grpcurl -H) or an HTTP header "
    "(the OpenAI client's api_key)"
)


class StaticKeys:
    """Keys from settings (``STENO_API_KEYS``: ``<tenant>:<user|admin>:<key>``, comma
    separated), held only as hashes."""

    def __init__(self, spec: str) -> None:
        self._callers: dict[str, Caller] = {}
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            tenant, role, key = _parse_entry(entry)
            digest = hash_key(key)
            self._callers[digest] = Caller(tenant, role, key_id=f"static:{digest[:12]}")

    def __len__(self) -> int:
        return len(self._callers)

    def find(self, key: str) -> Caller | None:
        # A lookup by the key's hash reveals nothing about the keys held: timing tells at
        # most a hash prefix, not a key.
        return self._callers.get(hash_key(key))


def _parse_entry(entry: str) -> tuple[str, Role, str]:
    tenant, _, rest = entry.partition(":")
    role, _, key = rest.partition(":")
    if not tenant or role not in {r.value for r in Role} or len(key) < 32:
        raise ValueError(
            "STENO_API_KEYS takes comma-separated '<tenant>:<user|admin>:<key>' entries with "
            "keys of at least 32 characters (e.g. from `steno keys create`)"
        )
    return tenant, Role(role), key


class Authenticator:
    """Who a call's metadata says it is: a key from the database or from settings."""

    def __init__(
        self, keys: ApiKeyRepository, static: StaticKeys, *, clock: Clock = utc_now
    ) -> None:
        self._keys = keys
        self._static = static
        self._clock = clock

    async def caller(self, metadata: Mapping[str, str]) -> Caller:
        key = _bearer(metadata.get("authorization"))
        static = self._static.find(key)
        if static is not None:
            return static
        record = await find_key(self._keys, key)
        if record is None:
            raise UnknownApiKey(f"unknown API key: it is not one this server issued; {_HOW}")
        if record.revoke_time is not None:
            raise RevokedApiKey(record.key_id)
        now = self._clock()
        await self._keys.touch(record.id, now=now, unless_since=now - LAST_USE_RESOLUTION)
        return Caller(record.tenant, record.role, key_id=key_id_of(record.id))


def _bearer(value: str | None) -> str:
    if not value:
        raise MissingApiKey(f"missing API key: {_HOW}")
    scheme, _, key = value.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise MissingApiKey(f"malformed authorization metadata: {_HOW}")
    return key.strip()


def may_call(caller: Caller, method: str) -> bool:
    """Whether ``caller`` may call the full method name ``/package.Service/Method``."""
    return caller.role is Role.ADMIN or _service_of(method) != ADMIN_SERVICE


def _service_of(method: str) -> str:
    return method.strip("/").partition("/")[0]


AUTH_DISABLED = Caller(DEFAULT_TENANT, Role.ADMIN)


async def identify(authenticator: Authenticator | None, authorization: str | None) -> Caller:
    """Who an ``authorization`` value (gRPC metadata or HTTP header) says is calling; with
    authentication disabled (no ``authenticator``), everyone is one admin."""
    if authenticator is None:
        return AUTH_DISABLED
    return await authenticator.caller({"authorization": authorization or ""})


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every application method so it first authenticates its call and sets the
    caller (None for ``authenticator``: authentication disabled, everyone is one admin)."""

    def __init__(self, authenticator: Authenticator | None) -> None:
        self._authenticator = authenticator

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or _service_of(method) in OPEN_SERVICES:
            return handler
        guarded: grpc.RpcMethodHandler[Any, Any] = _guarded(handler, method, self._authorize)
        return guarded

    async def _authorize(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        try:
            caller = await identify(self._authenticator, metadata.get("authorization"))
            if not may_call(caller, method):
                raise AdminKeyRequired(_service_of(method), caller.key_id)
        except Exception as exc:
            # Answered as the servicers' errors are: the same codes, ErrorInfo and RetryInfo.
            await refuse(context, exc, rpc=method)
        set_caller(caller)


_Authorize = Callable[[str, grpc.aio.ServicerContext[Any, Any]], Awaitable[None]]


def _guarded(handler: Any, method: str, authorize: _Authorize) -> Any:
    """``handler`` with each of its behaviours authorizing the call first, in the same task
    as the behaviour, so the caller it sets is the one the behaviour sees."""
    if handler.unary_unary:

        async def unary_unary(request: Any, context: Any) -> Any:
            await authorize(method, context)
            return await handler.unary_unary(request, context)

        return handler._replace(unary_unary=unary_unary)
    if handler.stream_unary:

        async def stream_unary(requests: Any, context: Any) -> Any:
            await authorize(method, context)
            return await handler.stream_unary(requests, context)

        return handler._replace(stream_unary=stream_unary)
    behaviour = handler.unary_stream or handler.stream_stream
    assert inspect.isasyncgenfunction(behaviour), "streaming handlers are async generators"

    async def streaming(request: Any, context: Any) -> Any:
        await authorize(method, context)
        async for response in behaviour(request, context):
            yield response

    if handler.unary_stream:
        return handler._replace(unary_stream=streaming)
    return handler._replace(stream_stream=streaming)


class Unprotected(CannotStart):
    """The gateway would serve other hosts with nobody able to authenticate."""


async def refuse_unprotected(
    access: AccessSettings, host: str, keys: ApiKeyRepository, static: StaticKeys
) -> None:
    """Unprotected if the gateway listens beyond loopback with authentication on but no
    key to authenticate with: nobody could use it, and the likely cause is an operator who
    meant to turn authentication off, or has not created a key yet."""
    if not access.enabled or is_loopback(host):
        return
    if len(static) or await keys.any_active():
        return
    raise Unprotected(
        f"the gateway listens on {host} but no API key exists: create one "
        "with `steno keys create --tenant T --name N --admin`, set STENO_API_KEYS, or set "
        "STENO_AUTH=disabled if a proxy in front authenticates callers"
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
