"""Keyset pagination shared by every newest-first listing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Position in a newest-first listing: the last item of the previous page, by its
    creation time and, to break ties, its id."""

    create_time: datetime
    id: uuid.UUID
