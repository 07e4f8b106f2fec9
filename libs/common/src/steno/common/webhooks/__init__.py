"""Signed completion webhooks: when a job that named a ``webhook_url`` ends, Steno POSTs a
JSON event about it there, signed by the Standard Webhooks scheme, retried with backoff
through the broker, each attempt recorded on the job. :mod:`.addresses` keeps the requests
off the operator's own network, :mod:`.signing` signs them, :mod:`.events` says what they
carry, and :mod:`.delivery` sends them."""
