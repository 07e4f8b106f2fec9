"""The gateway recognises audio by its first bytes, never by what the client says."""

import pytest

from steno.gateway.sniff import HEAD_BYTES, audio_content_type
from tests.support import AUDIO


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b"RIFF\x24\x08\x00\x00WAVEfmt ", "audio/wav", id="wav"),
        pytest.param(b"ID3\x04\x00\x00\x00\x00\x00\x0a\x00\x00", "audio/mpeg", id="mp3-id3"),
        pytest.param(b"\xff\xfb\x90\x64" + b"\x00" * 8, "audio/mpeg", id="mp3-mpeg1-layer3"),
        pytest.param(b"\xff\xf3\x48\xc4" + b"\x00" * 8, "audio/mpeg", id="mp3-mpeg2-layer3"),
        pytest.param(b"\xff\xe3\x18\xc4" + b"\x00" * 8, "audio/mpeg", id="mp3-mpeg2.5-layer3"),
        pytest.param(b"\xff\xfd\x90\x64" + b"\x00" * 8, "audio/mpeg", id="mp2-mpeg1-layer2"),
        pytest.param(b"OggS\x00\x02" + b"\x00" * 6, "audio/ogg", id="ogg"),
        pytest.param(b"fLaC\x00\x00\x00\x22\x10\x00\x10\x00", "audio/flac", id="flac"),
        pytest.param(b"\x00\x00\x00\x1cftypM4A ", "audio/mp4", id="m4a"),
        pytest.param(b"\x00\x00\x00\x20ftypisom", "audio/mp4", id="mp4-isom"),
        pytest.param(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81", "audio/webm", id="webm"),
    ],
)
def test_recognises_supported_containers(head: bytes, expected: str) -> None:
    assert audio_content_type(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x00" * 5, id="adts-aac-mpeg4"),
        pytest.param(b"\xff\xf9\x50\x80\x02\x1f\xfc" + b"\x00" * 5, id="adts-aac-mpeg2"),
        pytest.param(b"\xff\xeb\x90\x64" + b"\x00" * 8, id="mpeg-reserved-version"),
        pytest.param(b"\xff\x1b" + b"\x00" * 10, id="broken-frame-sync"),
        pytest.param("\ufeffHello world".encode("utf-16-le"), id="utf16le-text-bom"),
        pytest.param(b"\xff\xfb\xf0\x64" + b"\x00" * 8, id="mpeg-reserved-bitrate"),
        pytest.param(b"\xff\xfb\x9c\x64" + b"\x00" * 8, id="mpeg-reserved-sample-rate"),
        pytest.param(b"Good morning. Please give the report", id="text"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", id="pdf"),
        pytest.param(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00", id="zip"),
        pytest.param(b"RIFF\x24\x08\x00\x00AVI LIST", id="riff-avi"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\r", id="png"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff", id="one-byte-sync"),
        pytest.param(b"RIFF", id="short-riff"),
        pytest.param(b"RIFF\x24\x08\x00\x00WAV", id="riff-cut-before-wave"),
        pytest.param(b"Ogg", id="short-ogg"),
        pytest.param(b"fLa", id="short-flac"),
        pytest.param(b"\x00\x00\x00\x1cfty", id="short-ftyp"),
        pytest.param(b"\x1a\x45\xdf", id="short-webm"),
    ],
)
def test_rejects_everything_else(head: bytes) -> None:
    assert audio_content_type(head) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("speech.wav", "audio/wav"),
        ("speech.mp3", "audio/mpeg"),
        ("speech.ogg", "audio/ogg"),
        ("speech.flac", "audio/flac"),
        ("speech.m4a", "audio/mp4"),
        ("speech.webm", "audio/webm"),
    ],
)
def test_committed_fixtures_are_recognised(name: str, expected: str) -> None:
    """The real files the integration tests upload sniff as the container they are."""
    head = (AUDIO / name).read_bytes()[:HEAD_BYTES]
    assert audio_content_type(head) == expected


def test_fixture_transcript_is_not_audio() -> None:
    head = (AUDIO / "speech.txt").read_bytes()[:HEAD_BYTES]
    assert audio_content_type(head) is None
