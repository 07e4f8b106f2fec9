"""Fault injection for the resilience tests: a process told to fail at a named point dies
there, at once, as if killed. Off unless STENO_FAULT_POINTS names points; never set it in
production.

STENO_FAULT_POINTS is comma-separated: ``point`` arms a point for everything that passes
it, ``point=subject`` only for that subject (a job's filename, say).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# The points the code can die at.
GATEWAY_BEFORE_PUBLISH = "gateway-before-publish"
TRANSCRIBER_BEFORE_ENGINE = "transcriber-before-engine"
POINTS = frozenset({GATEWAY_BEFORE_PUBLISH, TRANSCRIBER_BEFORE_ENGINE})
EXIT_CODE = 86


class Faults:
    def __init__(self, points: str = "") -> None:
        # Each armed point, with the subjects it is armed for (None: all of them).
        self._armed: dict[str, set[str] | None] = {}
        for spec in filter(None, (p.strip() for p in points.split(","))):
            point, _, subject = spec.partition("=")
            if point not in POINTS:
                raise ValueError(f"unknown fault point {point!r}; known: {sorted(POINTS)}")
            if not subject:
                self._armed[point] = None
            elif (subjects := self._armed.setdefault(point, set())) is not None:
                subjects.add(subject)

    def hit(self, point: str, subject: str = "") -> None:
        """Dies here, without cleanup, if ``point`` is armed (for ``subject``)."""
        if point not in self._armed:
            return
        subjects = self._armed[point]
        if subjects is None or subject in subjects:
            log.warning("fault injected: exiting", extra={"point": point, "subject": subject})
            logging.shutdown()
            os._exit(EXIT_CODE)
