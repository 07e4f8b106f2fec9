"""Job events: the port (:mod:`.job_events`), the per-process fan-out to watchers
(:mod:`.fanout`), the repository wrapper that publishes every change (:mod:`.publishing`),
and the adapters, RabbitMQ (:mod:`.amqp`) and in-process (:mod:`.memory`)."""

from steno.common.errors import BrokerUnavailable
from steno.common.events.fanout import Fanout, Subscription
from steno.common.events.job_events import JobEvents, JobUpdate

__all__ = ["BrokerUnavailable", "Fanout", "JobEvents", "JobUpdate", "Subscription"]
