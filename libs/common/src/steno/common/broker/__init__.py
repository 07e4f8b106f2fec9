"""The job queue: the port (:mod:`.job_queue`), the delivery rules every adapter shares
(:mod:`.delivery`), and its adapters, RabbitMQ (:mod:`.amqp`) and in-process
(:mod:`.memory`)."""

from steno.common.broker.delivery import FailurePause, Outcome, deliver, deliver_dead_letter
from steno.common.broker.job_queue import (
    DEFAULT_DELIVERY_LIMIT,
    GAVE_UP_REASON,
    DeadLetter,
    DeadLetterHandler,
    GiveUp,
    Handler,
    JobQueue,
    RetryLater,
    TranscriptionRequest,
    delivery_limit_reason,
)
from steno.common.errors import BrokerUnavailable

__all__ = [
    "DEFAULT_DELIVERY_LIMIT",
    "GAVE_UP_REASON",
    "BrokerUnavailable",
    "DeadLetter",
    "DeadLetterHandler",
    "FailurePause",
    "GiveUp",
    "Handler",
    "JobQueue",
    "Outcome",
    "RetryLater",
    "TranscriptionRequest",
    "deliver",
    "deliver_dead_letter",
    "delivery_limit_reason",
]
