"""Who is calling: every read and write is scoped to the caller's tenant."""

from __future__ import annotations

from steno.common.jobs import DEFAULT_TENANT
from steno.gateway.rpc_errors import Context


def tenant_of(context: Context) -> str:
    """The caller's tenant. Until API keys map callers to tenants, everyone shares one."""
    return DEFAULT_TENANT
