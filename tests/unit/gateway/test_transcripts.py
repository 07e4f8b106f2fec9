# ruff: noqa: RUF001
# (Cyrillic letters that look like Latin ones are meant.)
"""Transcript files, read back by independent parsers."""

from __future__ import annotations

import html
import json
from datetime import timedelta

import pytest
import srt
import webvtt

from steno.common.jobs import Segment
from steno.gateway.transcripts import Rendered, TranscriptFormat, render
from steno.v1 import transcription_service_pb2 as pb

TEXT = " Hello, world.\nПривет, мир! 你好 & <goodbye> --> ok  "

SEGMENTS = [
    Segment(0.0, 1.5, " Hello, world."),
    Segment(1.5, 3.25, "Привет, мир! 你好 😀"),
    Segment(3.25, 4.0, "a --> b, x < y & y > z, <b>not bold</b> &amp;"),
    Segment(4.0, 4.0, "zero length"),
    Segment(5.0, 6.0, ""),  # nothing to show: no cue
    Segment(6.0, 7.0, " \n\t "),  # nor here
    Segment(7.0, 9.0, "first line\n\n\nsecond line\r\n  \r\nthird line"),
    Segment(3725.4994, 3725.5005, "over an hour"),
    Segment(360_000.25, 360_001.0, "over a hundred hours"),
]

# What each cue must read back as: (start ms, end ms, text).
CUES = [
    (0, 1500, "Hello, world."),
    (1500, 3250, "Привет, мир! 你好 😀"),
    (3250, 4000, "a --> b, x < y & y > z, <b>not bold</b> &amp;"),
    (4000, 4000, "zero length"),
    (7000, 9000, "first line\nsecond line\nthird line"),
    (3_725_499, 3_725_501, "over an hour"),
    (360_000_250, 360_001_000, "over a hundred hours"),
]


def milliseconds(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def test_text_is_the_transcript_text() -> None:
    assert render(TranscriptFormat.TEXT, TEXT, SEGMENTS) == Rendered(
        TEXT, "text/plain; charset=utf-8"
    )


def test_srt_reads_back_as_the_segments() -> None:
    rendered = render(TranscriptFormat.SRT, TEXT, SEGMENTS)
    assert rendered.content_type == "application/x-subrip"
    subtitles = list(srt.parse(rendered.content))
    assert [s.index for s in subtitles] == list(range(1, len(CUES) + 1))
    assert [(milliseconds(s.start), milliseconds(s.end), s.content) for s in subtitles] == CUES


def test_vtt_reads_back_as_the_segments() -> None:
    rendered = render(TranscriptFormat.VTT, TEXT, SEGMENTS, language="en")
    assert rendered.content_type == "text/vtt; charset=utf-8"
    captions = webvtt.from_string(rendered.content, strict=True).captions
    # webvtt-py leaves character references in cue text as written; a player decodes them.
    assert [
        (c.start_time.in_milliseconds(), c.end_time.in_milliseconds(), html.unescape(c.text))
        for c in captions
    ] == CUES


def test_vtt_cue_text_has_no_markup_and_no_arrow() -> None:
    content = render(TranscriptFormat.VTT, "", [Segment(1, 2, "a --> b <i>&")]).content
    assert content == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na --&gt; b &lt;i&gt;&amp;\n"


def test_srt_layout() -> None:
    segments = [Segment(0.5, 1.0, " One."), Segment(61.0, 3662.123, "Two,\nlines.")]
    assert render(TranscriptFormat.SRT, "", segments).content == (
        "1\n00:00:00,500 --> 00:00:01,000\nOne.\n\n2\n00:01:01,000 --> 01:01:02,123\nTwo,\nlines.\n"
    )


def test_no_segments_still_make_valid_files() -> None:
    assert render(TranscriptFormat.SRT, "", []).content == ""
    assert list(srt.parse("")) == []
    vtt = render(TranscriptFormat.VTT, "", []).content
    assert vtt == "WEBVTT\n"
    assert webvtt.from_string(vtt, strict=True).captions == []


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (1.0004, 1.0006, (1000, 1001)),  # each end rounded on its own, half up
        (2.0005, 2.0005, (2001, 2001)),  # the same rounding for start and end
        (5.0, 4.0, (5000, 5000)),  # an end before its start is moved to it
        (-0.5, 0.25, (0, 250)),  # nothing before zero
        (float("nan"), float("inf"), (0, 0)),
    ],
)
def test_times_are_whole_milliseconds_and_never_run_backwards(
    start: float, end: float, expected: tuple[int, int]
) -> None:
    content = render(TranscriptFormat.SRT, "", [Segment(start, end, "x")]).content
    (subtitle,) = srt.parse(content)
    assert (milliseconds(subtitle.start), milliseconds(subtitle.end)) == expected
    document = json.loads(render(TranscriptFormat.JSON, "", [Segment(start, end, "x")]).content)
    times = document["segments"][0]
    assert (round(times["start"] * 1000), round(times["end"] * 1000)) == expected


def test_json_round_trips_and_keeps_non_ascii() -> None:
    rendered = render(TranscriptFormat.JSON, TEXT, SEGMENTS, language="ru")
    assert rendered.content_type == "application/json"
    assert "Привет" in rendered.content
    assert "\\u" not in rendered.content
    assert json.loads(rendered.content) == {
        "text": TEXT,
        "language": "ru",
        # Every segment as the engine gave it, empty ones included; times in seconds,
        # rounded like the cues.
        "segments": [
            {"start": 0.0, "end": 1.5, "text": " Hello, world."},
            {"start": 1.5, "end": 3.25, "text": "Привет, мир! 你好 😀"},
            {"start": 3.25, "end": 4.0, "text": SEGMENTS[2].text},
            {"start": 4.0, "end": 4.0, "text": "zero length"},
            {"start": 5.0, "end": 6.0, "text": ""},
            {"start": 6.0, "end": 7.0, "text": " \n\t "},
            {"start": 7.0, "end": 9.0, "text": SEGMENTS[6].text},
            {"start": 3725.499, "end": 3725.501, "text": "over an hour"},
            {"start": 360000.25, "end": 360001.0, "text": "over a hundred hours"},
        ],
    }


def test_every_api_format_has_a_renderer() -> None:
    # GetTranscript looks formats up by name.
    values = pb.TranscriptFormat.DESCRIPTOR.values
    names = {value.name.removeprefix("TRANSCRIPT_FORMAT_") for value in values}
    assert names - {"UNSPECIFIED"} == {f.name for f in TranscriptFormat}
