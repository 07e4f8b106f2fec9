"""``steno tenants``: tenants' quota overrides for operators, straight against the
configured database like ``steno keys``. AdminService offers the same over the API."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from steno.cli.operator import run_on_database, tenant_argument
from steno.client.output import add_json_option, to_json
from steno.common.clock import utc_now
from steno.common.db import SqlQuotaRepository
from steno.common.messages import tenant_quota_to_proto
from steno.common.quotas import QUOTA_NAMES
from steno.common.settings import QuotaSettings
from steno.common.settings.webhooks import WebhookSettings
from steno.common.webhooks.signing import tenant_secret

# What ``set-quota`` takes for a limit to fall back to the server's default.
DEFAULT = "default"


def add_tenants_command(subcommands: Any) -> None:
    tenants = subcommands.add_parser("tenants", help="show and set tenants' quotas")
    actions = tenants.add_subparsers(required=True, metavar="ACTION")

    show = actions.add_parser(
        "get-quota", help="a tenant's quota overrides, the limits in force, and its usage"
    )
    show.add_argument("tenant", metavar="TENANT", type=tenant_argument, help="the tenant")
    add_json_option(show, "the tenant's quota, as AdminService.GetTenantQuota has it")
    show.set_defaults(command=_get_quota, local=True)

    change = actions.add_parser(
        "set-quota",
        help="override a tenant's quotas (0 is no limit, 'default' drops the override); "
        "limits not given keep their current override",
    )
    change.add_argument("tenant", metavar="TENANT", type=tenant_argument, help="the tenant")
    change.add_argument(
        "--stored-audio-bytes",
        type=_limit(int),
        metavar="BYTES",
        help="audio stored at once: its jobs' not yet deleted, and unfinished uploads",
    )
    change.add_argument(
        "--concurrent-jobs",
        type=_limit(int),
        metavar="JOBS",
        help="jobs QUEUED or PROCESSING at once",
    )
    change.add_argument(
        "--audio-hours-per-day",
        type=_limit(float),
        metavar="HOURS",
        help="hours of audio of the jobs created in the last 24 hours",
    )
    add_json_option(change, "the tenant's quota after the change, as get-quota --json")
    change.set_defaults(command=_set_quota, local=True)

    secret = actions.add_parser(
        "webhook-secret",
        help="the secret a tenant verifies its webhooks with (derived from "
        "STENO_WEBHOOK_SECRET: changing that rotates every tenant's)",
    )
    secret.add_argument("tenant", metavar="TENANT", type=tenant_argument, help="the tenant")
    secret.set_defaults(command=_webhook_secret, local=True)


def _limit(kind: Callable[[str], float]) -> Callable[[str], float | str]:
    def parse(value: str) -> float | str:
        if value == DEFAULT:
            return DEFAULT
        try:
            limit = kind(value)
        except ValueError:
            limit = -1
        if limit < 0:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a limit: a number >= 0 (0 is no limit) or {DEFAULT!r}"
            )
        return limit

    return parse


def _webhook_secret(args: argparse.Namespace) -> int:
    master = WebhookSettings().secret
    if master is None:
        print("steno: STENO_WEBHOOK_SECRET is not set: webhooks are off", file=sys.stderr)
        return 2
    print(tenant_secret(master.get_secret_value(), args.tenant))
    return 0


def _get_quota(args: argparse.Namespace) -> int:
    return run_on_database(lambda engine: _show(args, SqlQuotaRepository(engine)))


def _set_quota(args: argparse.Namespace) -> int:
    return run_on_database(lambda engine: _change(args, SqlQuotaRepository(engine)))


async def _change(args: argparse.Namespace, quotas: SqlQuotaRepository) -> int:
    given = {
        name: None if value == DEFAULT else value
        for name in QUOTA_NAMES
        if (value := getattr(args, name)) is not None
    }
    overrides = dataclasses.replace(await quotas.overrides(args.tenant), **given)
    await quotas.set_overrides(args.tenant, overrides, utc_now())
    return await _show(args, quotas)


async def _show(args: argparse.Namespace, quotas: SqlQuotaRepository) -> int:
    """The tenant's quotas as a table (or ``--json``); "in force" takes the defaults from
    this shell's STENO_QUOTA_*, which should be the gateway's."""
    tenant = args.tenant
    overrides = await quotas.overrides(tenant)
    in_force = overrides.over(QuotaSettings().limits)
    usage = await quotas.usage(tenant, utc_now())
    if args.json:
        print(to_json(tenant_quota_to_proto(tenant, overrides, in_force, usage)))
        return 0
    print(f"tenant {tenant}")
    print("\t".join(("QUOTA", "OVERRIDE", "IN FORCE", "USED")))
    for name in QUOTA_NAMES:
        used = getattr(usage, name)
        columns = (_limit_text(getattr(overrides, name)), _limit_text(getattr(in_force, name)))
        print("\t".join((name, *columns, f"{used:g}")))
    return 0


def _limit_text(limit: float | None) -> str:
    if limit is None:
        return DEFAULT
    return f"{limit:g}" if limit else "unlimited"
