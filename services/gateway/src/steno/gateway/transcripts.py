"""A finished transcript as a file: plain text, SubRip (SRT), WebVTT or JSON.

Both subtitle formats get the same treatment, so that players and parsers read back the
segments that went in:

* Times are rounded to the millisecond, half up, start and end alike. A negative or
  non-finite time counts as 0, and an end before its start is moved to the start, so no
  cue runs backwards. Zero-length cues are kept as the engine timed them: parsers accept
  them, although WebVTT asks authors for an end after the start.
* Hours have at least two digits and as many more as they need (``100:00:00,000``).
* A blank line ends a cue in both formats, so cue text has none: each line is stripped
  and blank ones are dropped. Only CR, LF and CRLF break lines, as in both formats; other
  Unicode line separators stay inside the line. A segment left with no text makes no cue.
* WebVTT cue text is markup, so ``&``, ``<`` and ``>`` are written as character
  references (which also keeps ``-->`` out of it). SRT has no escapes and is written as
  spoken.

JSON and TEXT carry the transcript as data rather than for display: JSON keeps every
segment and its text as is (times rounded as above), TEXT is the transcript's text.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import assert_never

from steno.common.jobs import Segment

__all__ = ["Rendered", "TranscriptFormat", "json_segment", "render"]


class TranscriptFormat(enum.Enum):
    """The formats GetTranscript offers; member names match the ``steno.v1`` enum's."""

    TEXT = "text"
    SRT = "srt"
    VTT = "vtt"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Rendered:
    content: str
    content_type: str


# Content types. SubRip has no registered type: application/x-subrip is the one in common
# use (freedesktop.org's shared MIME database, Matroska, Apache's mime.types). The content
# is always UTF-8: it travels as a protobuf string.
TEXT_TYPE = "text/plain; charset=utf-8"
SRT_TYPE = "application/x-subrip"
VTT_TYPE = "text/vtt; charset=utf-8"
JSON_TYPE = "application/json"


def render(
    fmt: TranscriptFormat, text: str, segments: Sequence[Segment], *, language: str = ""
) -> Rendered:
    """The transcript (``text``, its timed ``segments`` and the spoken ``language``, a
    BCP-47 tag or empty if unknown) in ``fmt``."""
    match fmt:
        case TranscriptFormat.TEXT:
            return Rendered(text, TEXT_TYPE)
        case TranscriptFormat.SRT:
            return Rendered(_srt(segments), SRT_TYPE)
        case TranscriptFormat.VTT:
            return Rendered(_vtt(segments), VTT_TYPE)
        case TranscriptFormat.JSON:
            return Rendered(_json(text, segments, language), JSON_TYPE)
        case _:
            assert_never(fmt)


def _srt(segments: Sequence[Segment]) -> str:
    """Numbered cues from 1, separated by blank lines; no cues is an empty file."""
    return "\n".join(
        _block(str(number), f"{_clock(start, ',')} --> {_clock(end, ',')}", *lines)
        for number, (start, end, lines) in enumerate(_cues(segments), start=1)
    )


def _vtt(segments: Sequence[Segment]) -> str:
    """The signature line, then the cues, each after a blank line. No ``Language:``
    header: the format has no place for one after the signature (a player takes the
    language from ``<track srclang>`` or the playlist), and JSON carries it."""
    return "\n".join(
        [
            _block("WEBVTT"),
            *(
                _block(f"{_clock(start, '.')} --> {_clock(end, '.')}", *map(_escape, lines))
                for start, end, lines in _cues(segments)
            ),
        ]
    )


def _block(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


def _json(text: str, segments: Sequence[Segment], language: str) -> str:
    document = {
        "text": text,
        "language": language,
        "segments": [json_segment(segment) for segment in segments],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def json_segment(segment: Segment) -> dict[str, float | str]:
    """A segment as JSON data: start and end in seconds, rounded to the millisecond."""
    start, end = _timing(segment)
    return {"start": start / 1000, "end": end / 1000, "text": segment.text}


def _cues(segments: Sequence[Segment]) -> Iterator[tuple[int, int, list[str]]]:
    """(start ms, end ms, text lines) for each segment that has something to show."""
    for segment in segments:
        lines = _cue_lines(segment.text)
        if lines:
            yield (*_timing(segment), lines)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _cue_lines(text: str) -> list[str]:
    stripped = (line.strip() for line in _LINE_BREAK.split(text))
    return [line for line in stripped if line]


def _escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _timing(segment: Segment) -> tuple[int, int]:
    """Start and end in whole milliseconds, the end never before the start."""
    start = _milliseconds(segment.start)
    return start, max(start, _milliseconds(segment.end))


def _milliseconds(seconds: float) -> int:
    if not math.isfinite(seconds) or seconds <= 0:
        return 0
    return math.floor(seconds * 1000 + 0.5)


def _clock(milliseconds: int, separator: str) -> str:
    """``HH:MM:SS`` then the separator (``,`` in SRT, ``.`` in WebVTT) and milliseconds."""
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"
