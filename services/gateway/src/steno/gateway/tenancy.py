"""Who is calling: every read and write is scoped to the caller's tenant.

The authentication interceptor sets the caller for the RPC it lets through; the servicers
read it here, so a handler cannot forget to ask.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from steno.common.api_keys import Role
from steno.gateway.rpc_errors import Context

_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("steno_caller")


@dataclass(frozen=True, slots=True)
class Caller:
    tenant: str
    role: Role
    # The public id of the key the call came with; empty with authentication disabled.
    key_id: str = ""


def set_caller(caller: Caller) -> contextvars.Token[Caller]:
    return _CALLER.set(caller)


def caller_of(context: Context) -> Caller:
    """The caller of the RPC being served; a LookupError if none was authenticated, which
    only a servicer run without the interceptor can see."""
    return _CALLER.get()


def tenant_of(context: Context) -> str:
    """The caller's tenant."""
    return caller_of(context).tenant
