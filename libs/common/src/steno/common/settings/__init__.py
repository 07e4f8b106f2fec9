"""Process configuration, read once from ``STENO_*`` environment variables.

Every process builds one frozen settings object in its ``__main__`` and passes it down;
nothing else reads the environment. Settings are split by concern (:mod:`.process`,
:mod:`.infrastructure`, :mod:`.retention`, :mod:`.engines`), nested in the settings of each
service, which compose only the concerns that service reads; the variable names are flat
whatever the nesting. An unset database, object store or broker URL means the embedded
default (SQLite, a directory, an in-process queue) under ``data_dir``.
"""

from steno.common.settings.base import StenoSettings
from steno.common.settings.disks import DiskSettings
from steno.common.settings.engines import ENGINE_NAMES, EngineChoice, EngineName, LocalModel
from steno.common.settings.infrastructure import BrokerSettings, DatabaseSettings, StoreSettings
from steno.common.settings.process import ProcessSettings
from steno.common.settings.quotas import QuotaSettings
from steno.common.settings.retention import RetentionSettings
from steno.common.settings.services import ServiceSettings

__all__ = [
    "ENGINE_NAMES",
    "BrokerSettings",
    "DatabaseSettings",
    "DiskSettings",
    "EngineChoice",
    "EngineName",
    "LocalModel",
    "ProcessSettings",
    "QuotaSettings",
    "RetentionSettings",
    "ServiceSettings",
    "StenoSettings",
    "StoreSettings",
]
