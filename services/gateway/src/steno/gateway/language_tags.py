"""Language tags as clients send them."""

from __future__ import annotations

import re

# BCP-47's common shape: a 2 or 3 letter language, then up to three subtags (script, region,
# variant). Whether an engine knows the language is the engine's to say.
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")


def is_language_tag(value: str) -> bool:
    return _LANGUAGE_TAG.match(value) is not None
