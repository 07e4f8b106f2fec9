"""Reading a request's fields: a field that is wrong is refused with its name, which the
client sees as a ``google.rpc.BadRequest`` field violation."""

from __future__ import annotations

import uuid
from typing import TypeVar

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from steno.common import tenants

_Number = TypeVar("_Number", bound=int)


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


def known_enum(field: str, value: _Number, enum: EnumTypeWrapper) -> _Number:
    """``value`` if ``enum`` names it (proto3 keeps numbers it does not know); else
    InvalidField naming the field and the values it takes."""
    if value not in enum.values():
        names = [name for name, _ in enum.items() if not name.endswith("_UNSPECIFIED")]
        raise InvalidField(field, f"{field} {value} is not one of {', '.join(names)}")
    return value


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
