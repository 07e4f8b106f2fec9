"""Failures of the services Steno depends on, as one family a caller can map to UNAVAILABLE."""


class DependencyUnavailable(Exception):
    """A backing service is down or refused the request; retrying later may succeed.

    The message says which service and what happened, for a person; ``dependency`` says
    which for a program.
    """

    dependency = "dependency"


class DatabaseUnavailable(DependencyUnavailable):
    """The database could not be reached or lost the connection."""

    dependency = "database"


class StorageUnavailable(DependencyUnavailable):
    """The object store could not be reached or refused the operation."""

    dependency = "object_store"


class BrokerUnavailable(DependencyUnavailable):
    """The broker could not be reached or did not confirm a publish."""

    dependency = "broker"


class CannotStart(Exception):
    """The process cannot serve as configured (a taken port, an unprotected gateway); the
    message says what to change."""
