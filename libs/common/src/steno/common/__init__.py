"""Steno's shared core: the ports every service talks through, and their adapters."""
