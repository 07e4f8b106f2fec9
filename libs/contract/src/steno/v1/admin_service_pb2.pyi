import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from steno.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApiKeyRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    API_KEY_ROLE_UNSPECIFIED: _ClassVar[ApiKeyRole]
    API_KEY_ROLE_USER: _ClassVar[ApiKeyRole]
    API_KEY_ROLE_ADMIN: _ClassVar[ApiKeyRole]
API_KEY_ROLE_UNSPECIFIED: ApiKeyRole
API_KEY_ROLE_USER: ApiKeyRole
API_KEY_ROLE_ADMIN: ApiKeyRole

class GetStorageStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStorageStatsResponse(_message.Message):
    __slots__ = ("total", "tenants", "disks")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    DISKS_FIELD_NUMBER: _ClassVar[int]
    total: StorageStats
    tenants: _containers.RepeatedCompositeFieldContainer[StorageStats]
    disks: _containers.RepeatedCompositeFieldContainer[DiskUsage]
    def __init__(self, total: _Optional[_Union[StorageStats, _Mapping]] = ..., tenants: _Optional[_Iterable[_Union[StorageStats, _Mapping]]] = ..., disks: _Optional[_Iterable[_Union[DiskUsage, _Mapping]]] = ...) -> None: ...

class StorageStats(_message.Message):
    __slots__ = ("tenant", "audio_objects", "audio_bytes", "partial_uploads", "partial_upload_bytes", "jobs", "oldest_audio_time", "next_expire_time")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_BYTES_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_UPLOADS_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_UPLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    OLDEST_AUDIO_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    audio_objects: int
    audio_bytes: int
    partial_uploads: int
    partial_upload_bytes: int
    jobs: _containers.RepeatedCompositeFieldContainer[JobStateCount]
    oldest_audio_time: _timestamp_pb2.Timestamp
    next_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant: _Optional[str] = ..., audio_objects: _Optional[int] = ..., audio_bytes: _Optional[int] = ..., partial_uploads: _Optional[int] = ..., partial_upload_bytes: _Optional[int] = ..., jobs: _Optional[_Iterable[_Union[JobStateCount, _Mapping]]] = ..., oldest_audio_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JobStateCount(_message.Message):
    __slots__ = ("state", "count")
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    state: _job_pb2.JobState
    count: int
    def __init__(self, state: _Optional[_Union[_job_pb2.JobState, str]] = ..., count: _Optional[int] = ...) -> None: ...

class DiskUsage(_message.Message):
    __slots__ = ("name", "path", "free_bytes", "total_bytes", "warning_free_bytes", "critical_free_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    WARNING_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    free_bytes: int
    total_bytes: int
    warning_free_bytes: int
    critical_free_bytes: int
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., free_bytes: _Optional[int] = ..., total_bytes: _Optional[int] = ..., warning_free_bytes: _Optional[int] = ..., critical_free_bytes: _Optional[int] = ...) -> None: ...

class RunCleanupRequest(_message.Message):
    __slots__ = ("dry_run", "older_than", "tenant")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    OLDER_THAN_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    older_than: _duration_pb2.Duration
    tenant: str
    def __init__(self, dry_run: _Optional[bool] = ..., older_than: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., tenant: _Optional[str] = ...) -> None: ...

class RunCleanupResponse(_message.Message):
    __slots__ = ("scanned", "deleted", "failed", "bytes_freed", "failures", "job_ids")
    SCANNED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    scanned: int
    deleted: int
    failed: int
    bytes_freed: int
    failures: _containers.RepeatedCompositeFieldContainer[CleanupFailure]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, scanned: _Optional[int] = ..., deleted: _Optional[int] = ..., failed: _Optional[int] = ..., bytes_freed: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[CleanupFailure, _Mapping]]] = ..., job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CleanupFailure(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("key_id", "tenant", "name", "role", "create_time", "last_use_time", "revoke_time")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_USE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    tenant: str
    name: str
    role: ApiKeyRole
    create_time: _timestamp_pb2.Timestamp
    last_use_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., tenant: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[_Union[ApiKeyRole, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_use_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("tenant", "name", "role")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    role: ApiKeyRole
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[_Union[ApiKeyRole, str]] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "key")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    key: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., key: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "tenant")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    tenant: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys", "next_page_token")
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    next_page_token: str
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class RevokeApiKeyResponse(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class QuotaLimits(_message.Message):
    __slots__ = ("stored_audio_bytes", "concurrent_jobs", "audio_hours_per_day")
    STORED_AUDIO_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONCURRENT_JOBS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_HOURS_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    stored_audio_bytes: int
    concurrent_jobs: int
    audio_hours_per_day: float
    def __init__(self, stored_audio_bytes: _Optional[int] = ..., concurrent_jobs: _Optional[int] = ..., audio_hours_per_day: _Optional[float] = ...) -> None: ...

class QuotaUsage(_message.Message):
    __slots__ = ("stored_audio_bytes", "concurrent_jobs", "audio_hours_per_day")
    STORED_AUDIO_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONCURRENT_JOBS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_HOURS_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    stored_audio_bytes: int
    concurrent_jobs: int
    audio_hours_per_day: float
    def __init__(self, stored_audio_bytes: _Optional[int] = ..., concurrent_jobs: _Optional[int] = ..., audio_hours_per_day: _Optional[float] = ...) -> None: ...

class TenantQuota(_message.Message):
    __slots__ = ("tenant", "overrides", "limits", "usage")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    overrides: QuotaLimits
    limits: QuotaLimits
    usage: QuotaUsage
    def __init__(self, tenant: _Optional[str] = ..., overrides: _Optional[_Union[QuotaLimits, _Mapping]] = ..., limits: _Optional[_Union[QuotaLimits, _Mapping]] = ..., usage: _Optional[_Union[QuotaUsage, _Mapping]] = ...) -> None: ...

class GetTenantQuotaRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class GetTenantQuotaResponse(_message.Message):
    __slots__ = ("quota",)
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    quota: TenantQuota
    def __init__(self, quota: _Optional[_Union[TenantQuota, _Mapping]] = ...) -> None: ...

class SetTenantQuotaRequest(_message.Message):
    __slots__ = ("tenant", "overrides")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    overrides: QuotaLimits
    def __init__(self, tenant: _Optional[str] = ..., overrides: _Optional[_Union[QuotaLimits, _Mapping]] = ...) -> None: ...

class SetTenantQuotaResponse(_message.Message):
    __slots__ = ("quota",)
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    quota: TenantQuota
    def __init__(self, quota: _Optional[_Union[TenantQuota, _Mapping]] = ...) -> None: ...
