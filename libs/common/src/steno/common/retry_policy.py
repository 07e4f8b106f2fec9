"""How long a failed piece of work waits before it is tried again: a job whose engine is
only temporarily unavailable, a webhook whose receiver did not take it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a job whose engine is temporarily unavailable is tried again: after ``first``
    seconds, doubling up to ``ceiling`` (or the provider's own hint, if longer), until it has
    run ``max_attempts`` times."""

    max_attempts: int = 5
    first: float = 10.0
    ceiling: float = 600.0

    def delay(self, attempt: int, hint: float | None) -> float:
        backoff = min(self.ceiling, self.first * 2.0 ** max(0, attempt - 1))
        return max(backoff, hint or 0.0)
