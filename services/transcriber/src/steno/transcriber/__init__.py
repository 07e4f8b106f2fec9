"""Steno's transcriber: turns queued jobs into transcripts."""
