"""The queues a job queue declares on RabbitMQ: the main quorum queue with its delivery limit,
its dead-letter queue, and one TTL queue per retry delay that dead-letters back into it."""

from __future__ import annotations

from aiormq.exceptions import AMQPError, ChannelInvalidStateError

from steno.common.errors import BrokerUnavailable

# Seconds a delayed retry can wait.
RETRY_DELAYS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# The exceptions of a broker that is unreachable, went away, or refused an operation.
# aiormq raises ChannelInvalidStateError (a RuntimeError) for a closed channel.
BROKER_ERRORS = (AMQPError, ChannelInvalidStateError, OSError, TimeoutError)

QueueArguments = dict[str, str | int]


def main_arguments(delivery_limit: int, dead_letter_queue: str) -> QueueArguments:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_queue,
        # At-least-once dead-lettering (quorum queues) needs reject-publish overflow.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def retry_arguments(delay: int, queue_name: str) -> QueueArguments:
    """A queue whose messages go back to ``queue_name`` after ``delay`` seconds."""
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": delay * 1000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue_name,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


class QueueArgumentsMismatch(BrokerUnavailable):
    """A queue exists on the broker with other arguments than Steno declares.

    RabbitMQ never changes the arguments of an existing queue, so this does not go away by
    retrying: someone has to delete the queue (once it is drained) or point Steno at a new
    one.
    """


def retry_delay(seconds: float) -> int:
    """The shortest delay in RETRY_DELAYS that is at least ``seconds`` (at most the longest)."""
    return next((delay for delay in RETRY_DELAYS if delay >= seconds), RETRY_DELAYS[-1])


def retry_queue_name(queue_name: str, delay: int) -> str:
    return f"{queue_name}.retry.{delay}s"


def dead_letter_queue_name(queue_name: str) -> str:
    return f"{queue_name}.dead"
