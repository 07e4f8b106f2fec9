"""Steno's janitor: deletes audio whose retention has run out."""
