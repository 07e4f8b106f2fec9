"""``steno.v1.AdminService``: the operator's controls. The interceptor lets only admin keys
in; each RPC here acts across tenants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from steno.common.api_keys import ApiKeyRepository, Role, new_api_key, parse_key_id
from steno.common.clock import Clock, utc_now
from steno.common.disk_space import Disk
from steno.common.jobs import AudioExpiry, JobRepository
from steno.common.messages import (
    api_key_to_proto,
    role_from_proto,
    state_to_proto,
    tenant_quota_to_proto,
    timestamp,
)
from steno.common.paging import PageCursor
from steno.common.quotas import QUOTA_NAMES, QuotaLimits, TenantQuotas
from steno.common.storage import ObjectStore
from steno.common.storage_stats import StorageStatsReader, TenantStorage, total
from steno.common.sweep import sweep_expired_audio
from steno.gateway.page_tokens import decode_page_token, encode_page_token
from steno.gateway.refusals import ApiKeyNotFound
from steno.gateway.request_fields import InvalidField, page_size, tenant_name
from steno.gateway.rpc_errors import Context, rpc
from steno.v1 import admin_service_pb2 as pb
from steno.v1 import admin_service_pb2_grpc

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_KEY_NAME = 200
CLEANUP_BATCH_SIZE = 500


class AdminApi(admin_service_pb2_grpc.AdminServiceServicer):
    def __init__(
        self,
        api_keys: ApiKeyRepository,
        jobs: JobRepository,
        store: ObjectStore,
        stats: StorageStatsReader,
        quotas: TenantQuotas,
        *,
        disks: Sequence[Disk] = (),
        clock: Clock = utc_now,
    ) -> None:
        self._keys = api_keys
        self._quotas = quotas
        self._jobs = jobs
        self._store = store
        self._stats = stats
        self._disks = disks
        self._clock = clock

    @rpc()
    async def GetStorageStats(
        self, request: pb.GetStorageStatsRequest, context: Context
    ) -> pb.GetStorageStatsResponse:
        tenants = await self._stats.by_tenant(self._clock())
        return pb.GetStorageStatsResponse(
            total=_stats_to_proto(total(tenants)),
            tenants=[_stats_to_proto(tenant) for tenant in tenants],
            disks=[_disk_to_proto(disk) for disk in self._disks],
        )

    @rpc()
    async def RunCleanup(
        self, request: pb.RunCleanupRequest, context: Context
    ) -> pb.RunCleanupResponse:
        older_than = None
        if request.HasField("older_than"):
            older_than = request.older_than.ToTimedelta()
            if older_than < timedelta(0):
                raise InvalidField("older_than", "older_than must not be negative")
        tenant = tenant_name("tenant", request.tenant, required=False)
        summary = await sweep_expired_audio(
            self._jobs,
            self._store,
            now=self._clock(),
            batch_size=CLEANUP_BATCH_SIZE,
            expiry=AudioExpiry(self._clock(), older_than=older_than, tenant=tenant),
            dry_run=request.dry_run,
        )
        return pb.RunCleanupResponse(
            scanned=summary.scanned,
            deleted=summary.deleted,
            failed=summary.failed,
            bytes_freed=summary.bytes_freed,
            failures=[
                pb.CleanupFailure(job_id=f.job_id, reason=f.reason) for f in summary.failures
            ],
            job_ids=summary.job_ids,
        )

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
            raise ApiKeyNotFound(request.key_id)
        return pb.RevokeApiKeyResponse(api_key=api_key_to_proto(revoked))

    @rpc()
    async def GetTenantQuota(
        self, request: pb.GetTenantQuotaRequest, context: Context
    ) -> pb.GetTenantQuotaResponse:
        tenant = tenant_name("tenant", request.tenant)
        assert tenant is not None
        return pb.GetTenantQuotaResponse(quota=await self._tenant_quota(tenant))

    @rpc()
    async def SetTenantQuota(
        self, request: pb.SetTenantQuotaRequest, context: Context
    ) -> pb.SetTenantQuotaResponse:
        tenant = tenant_name("tenant", request.tenant)
        assert tenant is not None
        overrides = _limits_from_proto(request.overrides)
        await self._quotas.repository.set_overrides(tenant, overrides, self._clock())
        return pb.SetTenantQuotaResponse(quota=await self._tenant_quota(tenant))

    async def _tenant_quota(self, tenant: str) -> pb.TenantQuota:
        overrides = await self._quotas.repository.overrides(tenant)
        usage = await self._quotas.repository.usage(tenant, self._clock())
        in_force = overrides.over(self._quotas.defaults)
        return tenant_quota_to_proto(tenant, overrides, in_force, usage)


def _limits_from_proto(limits: pb.QuotaLimits) -> QuotaLimits:
    """The limits set in the message; InvalidField for a negative one."""
    values = {}
    for name in QUOTA_NAMES:
        if limits.HasField(name):
            value = getattr(limits, name)
            if value < 0:
                raise InvalidField(f"overrides.{name}", f"{name} must be >= 0 (0 is no limit)")
            values[name] = value
    return QuotaLimits(**values)


def _role(role: int) -> Role:
    try:
        return role_from_proto(role)
    except ValueError as exc:
        raise InvalidField("role", str(exc)) from None


def _stats_to_proto(stats: TenantStorage) -> pb.StorageStats:
    return pb.StorageStats(
        tenant=stats.tenant,
        audio_objects=stats.audio_objects,
        audio_bytes=stats.audio_bytes,
        partial_uploads=stats.partial_uploads,
        partial_upload_bytes=stats.partial_upload_bytes,
        jobs=[
            pb.JobStateCount(state=state_to_proto(state), count=count)
            for state, count in sorted(stats.jobs.items())
        ],
        oldest_audio_time=timestamp(stats.oldest_audio_time),
        next_expire_time=timestamp(stats.next_expire_time),
    )


def _disk_to_proto(disk: Disk) -> pb.DiskUsage:
    free, size = disk.usage()
    return pb.DiskUsage(
        name=disk.name,
        path=str(disk.path),
        free_bytes=free,
        total_bytes=size,
        warning_free_bytes=disk.warning_free_bytes,
        critical_free_bytes=disk.critical_free_bytes,
    )
