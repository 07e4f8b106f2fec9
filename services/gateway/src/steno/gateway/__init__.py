"""Steno's gateway: the gRPC API in front of storage, the database and the broker."""
