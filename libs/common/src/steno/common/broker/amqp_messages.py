"""What a job request looks like on RabbitMQ: a ``steno.v1.TranscriptionRequested``
protobuf with ``content_type=application/x-protobuf`` and a ``type`` header, and what
RabbitMQ adds to a message it dead-letters."""

from __future__ import annotations

import uuid
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError

from steno.common.broker.job_queue import TranscriptionRequest
from steno.v1 import events_pb2

CONTENT_TYPE = "application/x-protobuf"
MESSAGE_TYPE = events_pb2.TranscriptionRequested.DESCRIPTOR.full_name


def encode(request: TranscriptionRequest) -> aio_pika.Message:
    body = events_pb2.TranscriptionRequested(
        job_id=str(request.job_id), tenant=request.tenant
    ).SerializeToString()
    return aio_pika.Message(
        body,
        content_type=CONTENT_TYPE,
        type=MESSAGE_TYPE,
        message_id=str(request.job_id),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def decode(message: AbstractIncomingMessage) -> TranscriptionRequest:
    """The request in ``message``; ValueError if it is not one Steno can read."""
    if message.type != MESSAGE_TYPE:
        raise ValueError(f"unexpected message type {message.type!r}")
    try:
        proto = events_pb2.TranscriptionRequested.FromString(message.body)
        return TranscriptionRequest(job_id=uuid.UUID(proto.job_id), tenant=proto.tenant)
    except DecodeError as exc:
        raise ValueError(f"undecodable {MESSAGE_TYPE}: {exc}") from exc


def death_reason(headers: dict[str, Any]) -> str | None:
    """Why RabbitMQ dead-lettered a message (``delivery_limit``, ``rejected``, ``expired``,
    ``maxlen``), from the headers it adds when it does; None if there are none."""
    reason = headers.get("x-first-death-reason")
    if reason is None:
        deaths = headers.get("x-death")
        if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
            reason = deaths[0].get("reason")
    if isinstance(reason, bytes):
        reason = reason.decode(errors="replace")
    return None if reason is None else str(reason)
