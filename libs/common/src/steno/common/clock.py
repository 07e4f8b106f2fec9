"""The one clock every component reads the time from, passed in so tests can fix it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC: the default :data:`Clock`."""
    return datetime.now(UTC)
