"""Opaque page tokens for the List methods: the keyset position of the last item returned,
and which listing it belongs to, so a token from one List method is refused by another."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

from steno.common.paging import PageCursor
from steno.gateway.request_fields import InvalidField


class InvalidPageToken(InvalidField):
    def __init__(self, message: str) -> None:
        super().__init__("page_token", message)


def encode_page_token(last: PageCursor, listing: str) -> str:
    payload = {"l": listing, "t": last.create_time.isoformat(), "id": str(last.id)}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_page_token(token: str, listing: str) -> PageCursor | None:
    """The cursor in ``token``; None for the first page; InvalidPageToken if it is garbled
    or was issued for another listing."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        cursor = PageCursor(datetime.fromisoformat(payload["t"]), uuid.UUID(payload["id"]))
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidPageToken("page_token is not one this server issued") from exc
    if cursor.create_time.tzinfo is None or payload.get("l") != listing:
        raise InvalidPageToken("page_token is not one this server issued")
    return cursor
