"""Fault injection for the resilience tests: a process told to fail at a named point dies
there, at once, as if killed. Off unless STENO_FAULT_POINTS names points; never set it in
production."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# The points the code can die at.
GATEWAY_BEFORE_PUBLISH = "gateway-before-publish"
POINTS = frozenset({GATEWAY_BEFORE_PUBLISH})
EXIT_CODE = 86


class Faults:
    def __init__(self, points: str = "") -> None:
        self._armed = frozenset(p.strip() for p in points.split(",") if p.strip())
        unknown = self._armed - POINTS
        if unknown:
            raise ValueError(f"unknown fault points: {', '.join(sorted(unknown))}")

    def hit(self, point: str) -> None:
        """Dies here, without cleanup, if ``point`` is armed."""
        if point in self._armed:
            log.warning("fault injected: exiting", extra={"point": point})
            logging.shutdown()
            os._exit(EXIT_CODE)
