"""Tenant names: who owns a job, a lexicon, a key or a quota."""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_tenant_name(value: str) -> bool:
    return _NAME.fullmatch(value) is not None
