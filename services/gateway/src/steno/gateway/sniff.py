"""Recognises an audio container from its first bytes; the client's content type is not trusted."""

from __future__ import annotations

# Bytes needed to tell every supported container apart.
HEAD_BYTES = 12


def audio_content_type(head: bytes) -> str | None:
    """The MIME type of the audio container that starts with ``head``, or None.

    Recognised: WAV, MP3 (ID3 tag or a bare MPEG audio frame), Ogg (Vorbis/Opus), FLAC,
    MP4/M4A and WebM/Matroska.
    """
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:3] == b"ID3" or _is_mpeg_audio_frame(head):
        return "audio/mpeg"
    if head[:4] == b"OggS":
        return "audio/ogg"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[4:8] == b"ftyp":
        return "audio/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "audio/webm"
    return None


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """A bare MPEG Layer II/III frame header: 11 sync bits, a real version, layer II or III
    (00 is what ADTS AAC uses; Layer I would also match a UTF-16LE byte-order mark), and
    bitrate and sample-rate indexes that are not the reserved ones."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    sample_rate = (head[2] >> 2) & 0b11
    return version != 0b01 and layer in (0b01, 0b10) and bitrate != 0b1111 and sample_rate != 0b11
