"""Reading a request's fields: a field that is wrong is refused with its name, which the
client sees as a ``google.rpc.BadRequest`` field violation."""

from __future__ import annotations

import uuid

from steno.common import tenants


class InvalidField(ValueError):
    """A request field is wrong; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_id(field: str, value: str) -> uuid.UUID:
    """The UUID in a request's id field; InvalidField naming the field if it is not one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidField(field, f"{field} {value!r} is not a UUID") from None


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """AIP-158 page size: 0 means the default, larger than ``maximum`` is capped, negative
    is INVALID_ARGUMENT."""
    if requested < 0:
        raise InvalidField("page_size", "page_size must not be negative")
    return min(requested or default, maximum)


def tenant_name(field: str, value: str, *, required: bool = True) -> str | None:
    """A tenant named in a request (an operator's: callers never name their own); None when
    it may be and is empty."""
    if not value and not required:
        return None
    if not tenants.is_tenant_name(value):
        raise InvalidField(field, f"{field} must be {tenants.RULE}")
    return value
