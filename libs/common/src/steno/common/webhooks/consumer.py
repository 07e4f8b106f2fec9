"""The webhook queue's consumer, as a service runs it: the transcriber (it already consumes
the broker, and scales with the work), and ``steno dev``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from steno.common.adapters import Adapters
from steno.common.settings.webhooks import WebhookSettings
from steno.common.webhooks.delivery import WebhookDispatcher
from steno.common.webhooks.sending import WebhookSender

log = logging.getLogger(__name__)


def webhook_consumers(
    settings: WebhookSettings, adapters: Adapters
) -> list[Coroutine[Any, Any, None]]:
    """What delivers webhooks, until cancelled; nothing when webhooks are off (no master
    secret to sign with: events wait in their queue until a consumer has one)."""
    if settings.secret is None:
        log.info("webhooks off: STENO_WEBHOOK_SECRET is not set")
        return []
    return [_consume(settings, settings.secret.get_secret_value(), adapters)]


async def _consume(settings: WebhookSettings, secret: str, adapters: Adapters) -> None:
    sender = WebhookSender(settings.policy, timeout=settings.timeout_seconds)
    dispatcher = WebhookDispatcher(
        adapters.jobs(),
        sender,
        master_secret=secret,
        backoff_seconds=settings.backoff_seconds,
        retry_for=timedelta(hours=settings.retry_hours),
        clock=adapters.clock,
    )
    try:
        await asyncio.gather(
            adapters.webhooks.consume(dispatcher.handle),
            adapters.webhooks.consume_dead_letters(dispatcher.give_up),
        )
    finally:
        await sender.close()
