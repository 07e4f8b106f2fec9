"""The database adapter: schema, repositories and migrations, on Postgres or SQLite."""

from steno.common.db.api_keys import SqlApiKeyRepository
from steno.common.db.connection import create_engine
from steno.common.db.jobs import SqlJobRepository
from steno.common.db.lexicons import SqlLexiconRepository
from steno.common.db.partial_uploads import SqlPartialUploadRepository
from steno.common.db.quotas import SqlQuotaRepository

__all__ = [
    "SqlApiKeyRepository",
    "SqlJobRepository",
    "SqlLexiconRepository",
    "SqlPartialUploadRepository",
    "SqlQuotaRepository",
    "create_engine",
]
