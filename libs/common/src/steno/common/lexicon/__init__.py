"""Lexicons: the words a tenant's domain depends on, stored per tenant and applied to
transcripts after the engine has run."""

from steno.common.lexicon.model import Lexicon, LexiconEntry, LexiconRepository, Replacement

__all__ = ["Lexicon", "LexiconEntry", "LexiconRepository", "Replacement"]
