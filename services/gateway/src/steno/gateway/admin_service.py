"""``steno.v1.AdminService``: the operator's controls. The interceptor lets only admin keys
in; each RPC here acts across tenants."""

from __future__ import annotations

from steno.common.api_keys import ApiKeyRepository, Role, new_api_key, parse_key_id
from steno.common.clock import Clock, utc_now
from steno.common.paging import PageCursor
from steno.gateway.convert import api_key_to_proto, role_from_proto
from steno.gateway.page_tokens import decode_page_token, encode_page_token
from steno.gateway.request_fields import InvalidField, page_size, tenant_name
from steno.gateway.rpc_errors import Context, NotFound, Unimplemented, rpc
from steno.v1 import admin_service_pb2 as pb
from steno.v1 import admin_service_pb2_grpc

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_KEY_NAME = 200


class AdminApi(admin_service_pb2_grpc.AdminServiceServicer):
    def __init__(self, api_keys: ApiKeyRepository, *, clock: Clock = utc_now) -> None:
        self._keys = api_keys
        self._clock = clock

    @rpc()
    async def GetStorageStats(
        self, request: pb.GetStorageStatsRequest, context: Context
    ) -> pb.GetStorageStatsResponse:
        raise Unimplemented("GetStorageStats is not implemented yet")

    @rpc()
    async def RunCleanup(
        self, request: pb.RunCleanupRequest, context: Context
    ) -> pb.RunCleanupResponse:
        raise Unimplemented("RunCleanup is not implemented yet")

    @rpc()
    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: Context
    ) -> pb.CreateApiKeyResponse:
        tenant = tenant_name("tenant", request.tenant)
        assert tenant is not None
        name = request.name.strip()
        if not 0 < len(name) <= MAX_KEY_NAME:
            raise InvalidField("name", f"name is required, at most {MAX_KEY_NAME} characters")
        role = _role(request.role)
        created = new_api_key(tenant, name, role, now=self._clock())
        await self._keys.add(created.record)
        return pb.CreateApiKeyResponse(api_key=api_key_to_proto(created.record), key=created.key)

    @rpc()
    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: Context
    ) -> pb.ListApiKeysResponse:
        size = page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        tenant = tenant_name("tenant", request.tenant, required=False)
        listing = f"api-keys/{tenant or ''}"
        cursor = decode_page_token(request.page_token, listing)
        found = await self._keys.list_keys(tenant, limit=size + 1, after=cursor)
        page = found[:size]
        next_token = ""
        if len(found) > size:
            next_token = encode_page_token(PageCursor(page[-1].create_time, page[-1].id), listing)
        return pb.ListApiKeysResponse(
            api_keys=[api_key_to_proto(key) for key in page], next_page_token=next_token
        )

    @rpc()
    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: Context
    ) -> pb.RevokeApiKeyResponse:
        id = parse_key_id(request.key_id)
        if id is None:
            raise InvalidField(
                "key_id", f"key_id {request.key_id!r} is not an id like stn_<32 hex>"
            )
        revoked = await self._keys.revoke(id, now=self._clock())
        if revoked is None:
            raise NotFound(f"no API key {request.key_id}")
        return pb.RevokeApiKeyResponse(api_key=api_key_to_proto(revoked))

    @rpc()
    async def GetTenantQuota(
        self, request: pb.GetTenantQuotaRequest, context: Context
    ) -> pb.GetTenantQuotaResponse:
        raise Unimplemented("GetTenantQuota is not implemented yet")

    @rpc()
    async def SetTenantQuota(
        self, request: pb.SetTenantQuotaRequest, context: Context
    ) -> pb.SetTenantQuotaResponse:
        raise Unimplemented("SetTenantQuota is not implemented yet")


def _role(role: int) -> Role:
    try:
        return role_from_proto(role)
    except ValueError as exc:
        raise InvalidField("role", str(exc)) from None
