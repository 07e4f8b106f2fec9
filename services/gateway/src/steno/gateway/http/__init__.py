"""The OpenAI-compatible HTTP API: ``POST /v1/audio/transcriptions`` and ``GET /v1/models``
in front of the same upload pipeline, job watches, keys and refusals as the gRPC API.

:mod:`.form` streams the multipart body, :mod:`.transcriptions` turns its fields into an
upload, :mod:`.answers` renders the finished job, :mod:`.errors` answers refusals in
OpenAI's error shape, :mod:`.app` routes, and :mod:`.server` runs it on the gateway's loop.
"""
