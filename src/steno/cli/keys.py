"""``steno keys``: API key management for operators, straight against the configured
database (``STENO_DATABASE_URL``, or the embedded SQLite file), like ``steno migrate``.
AdminService offers the same over the API to admin keys."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from steno.cli.operator import run_on_database, tenant_argument
from steno.client.output import add_json_option, to_json
from steno.common.api_keys import ApiKey, ApiKeyRepository, Role, new_api_key, parse_key_id
from steno.common.clock import utc_now
from steno.common.db import SqlApiKeyRepository
from steno.common.messages import api_key_to_proto
from steno.common.paging import PageCursor

_Action = Callable[[argparse.Namespace, ApiKeyRepository], Coroutine[Any, Any, int]]


def add_keys_command(subcommands: Any) -> None:
    keys = subcommands.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a key; prints it, once, as the last line")
    create.add_argument(
        "--tenant",
        required=True,
        type=tenant_argument,
        help="whose jobs and lexicons the key reaches",
    )
    create.add_argument("--name", required=True, help="a name for people, e.g. 'ci uploader'")
    create.add_argument("--admin", action="store_true", help="may also call AdminService")
    create.set_defaults(command=_run(_create), local=True)

    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--tenant", default=None, help="only this tenant's")
    add_json_option(listing, "one key a line, as AdminService.ListApiKeys has them")
    listing.set_defaults(command=_run(_list), local=True)

    revoke = actions.add_parser("revoke", help="revoke a key: it is refused from now on")
    revoke.add_argument("key_id", metavar="ID", help="the key's id, stn_<32 hex digits>")
    revoke.set_defaults(command=_run(_revoke), local=True)


def _run(action: _Action) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        return run_on_database(lambda engine: action(args, SqlApiKeyRepository(engine)))

    return command


async def _create(args: argparse.Namespace, keys: ApiKeyRepository) -> int:
    role = Role.ADMIN if args.admin else Role.USER
    created = new_api_key(args.tenant, args.name, role, now=utc_now())
    await keys.add(created.record)
    print(f"created {role} key {created.record.key_id} for tenant {args.tenant}")
    print("the key is shown this once; keep it secret:")
    print(created.key)
    return 0


async def _list(args: argparse.Namespace, keys: ApiKeyRepository) -> int:
    if not args.json:
        print("\t".join(("ID", "TENANT", "ROLE", "NAME", "CREATED", "LAST USED", "REVOKED")))
    after = None
    while page := await keys.list_keys(args.tenant, limit=100, after=after):
        for key in page:
            if args.json:
                print(to_json(api_key_to_proto(key), one_line=True))
            else:
                print("\t".join(_columns(key)))
        after = _cursor(page[-1])
    return 0


def _columns(key: ApiKey) -> tuple[str, ...]:
    def when(value: datetime | None) -> str:
        return value.isoformat(timespec="seconds") if value else "-"

    return (
        key.key_id,
        key.tenant,
        str(key.role),
        key.name,
        when(key.create_time),
        when(key.last_use_time),
        when(key.revoke_time),
    )


def _cursor(key: ApiKey) -> PageCursor:
    return PageCursor(key.create_time, key.id)


async def _revoke(args: argparse.Namespace, keys: ApiKeyRepository) -> int:
    id = parse_key_id(args.key_id)
    revoked = await keys.revoke(id, now=utc_now()) if id is not None else None
    if revoked is None:
        print(f"steno keys revoke: no API key {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked {revoked.key_id} (tenant {revoked.tenant}, {revoked.name})")
    return 0
