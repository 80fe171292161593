"""RabbitMQ topology and publishing, the one place that knows exchange and queue names.

* ``<service>.events`` — topic exchange, routing key = event type, body = the stored envelope.
* ``<service>.<handler>`` — a consumer's durable queue, bound to the event types it handles.
* ``<service>.<handler>.retry`` — where a failed message waits (per-message TTL), then is
  dead-lettered back to the handler's queue.
* ``<service>.dead-letter`` — messages that failed every attempt, kept for ops to inspect.

On the embedded broker (kombu's memory transport) there are no confirms, TTLs or dead-letter
exchanges; the same calls degrade to plain publishing and in-process timers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from amqp import spec
from amqp.basic_message import Message as AmqpMessage
from kombu import Connection, Exchange, Producer, Queue, binding

from shared import metrics
from shared.eventstore import RecordedEvent

log = logging.getLogger(__name__)

JSON = "application/json"
CONFIRM_TIMEOUT = 30.0


def is_embedded(amqp_uri: str) -> bool:
    return amqp_uri.startswith("memory://")


def events_exchange(service: str) -> Exchange:
    return Exchange(f"{service}.events", type="topic", durable=True)


def dead_letter_queue(service: str) -> Queue:
    return Queue(f"{service}.dead-letter", durable=True)


def handler_queue(
    service: str, handler: str, source: str, types: Sequence[str], *, ordered: bool
) -> Queue:
    # One active consumer per queue keeps a stream's order across replicas.
    arguments = {"x-single-active-consumer": True} if ordered else {}
    return Queue(
        f"{service}.{handler}",
        bindings=[binding(events_exchange(source), routing_key=t) for t in types],
        durable=True,
        queue_arguments=arguments or None,
    )


def retry_queue(queue_name: str) -> Queue:
    return Queue(
        f"{queue_name}.retry",
        durable=True,
        queue_arguments={
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue_name,
        },
    )


def encode(event: RecordedEvent) -> bytes:
    return json.dumps(event.envelope(), ensure_ascii=False, separators=(",", ":")).encode()


def connect(amqp_uri: str, *, confirm_each: bool = False) -> Connection:
    """A broker connection. ``confirm_each`` makes every publish wait for the broker's ack (for
    the occasional retry or dead letter; the relay confirms whole batches instead)."""
    options = {"confirm_publish": True} if confirm_each and not is_embedded(amqp_uri) else {}
    connection = Connection(amqp_uri, connect_timeout=5, transport_options=options)
    connection.ensure_connection(max_retries=1)
    return connection


class PublishFailed(Exception):
    """The broker did not confirm every message of a batch."""


#: Where an event goes on an exchange: its routing key, or None to leave it out.
Router = Callable[[RecordedEvent], str | None]
#: The message body of an event.
Encoder = Callable[[RecordedEvent], bytes]


def by_type(event: RecordedEvent) -> str:
    return event.type


class EventPublisher:
    """Publishes stored events to ``<service>.events``: persistent, mandatory and, on RabbitMQ,
    confirmed per batch (all published, then one wait for the acks).

    Another exchange, routing and body can be given (e.g. a feed for outside consumers):
    ``route`` returns None for events that do not go there."""

    def __init__(
        self,
        amqp_uri: str,
        service: str,
        *,
        exchange: Exchange | None = None,
        route: Router = by_type,
        encoder: Encoder = encode,
    ) -> None:
        self.amqp_uri = amqp_uri
        self.service = service
        self.exchange = exchange or events_exchange(service)
        self.route = route
        self.encoder = encoder
        self.connection: Connection | None = None
        self._channel: Any = None
        self._producer: Producer | None = None
        self._outstanding: set[int] = set()
        self._nacked = False
        self._next_tag = 1

    def _open(self) -> None:
        self.connection = connect(self.amqp_uri)
        channel = self.connection.channel()
        self.exchange(channel).declare()
        if is_embedded(self.amqp_uri):
            self._producer = Producer(channel, exchange=self.exchange)
        else:
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            channel.confirm_select()
            self._next_tag = 1
        self._channel = channel

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.release()
            except Exception:  # closing a dead connection must not mask the original error
                log.debug("error closing publisher connection", exc_info=True)
        self.connection = self._channel = self._producer = None

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._outstanding = {t for t in self._outstanding if t > tag}
        else:
            self._outstanding.discard(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._nacked = True
        self._on_ack(tag, multiple)

    def _on_return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        # Nobody subscribes to this type yet. A subscriber that appears later catches up from
        # the notification log, so the event is not lost to it.
        metrics.RELAY_UNROUTABLE.labels(self.service).inc()

    def publish(self, events: Sequence[RecordedEvent]) -> None:
        """Publish a batch; returns once the broker has confirmed all of it, or raises."""
        if self._channel is None:
            self._open()
        routed = [(event, key) for event in events if (key := self.route(event)) is not None]
        if self._producer is not None:
            for event, key in routed:
                self._producer.publish(
                    self.encoder(event),
                    routing_key=key,
                    content_type=JSON,
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=str(event.event_id),
                )
            return
        channel = self._channel
        self._nacked = False
        for event, key in routed:
            message = AmqpMessage(
                body=self.encoder(event),
                content_type=JSON,
                content_encoding="utf-8",
                delivery_mode=2,
                message_id=str(event.event_id),
                type=event.type,
                timestamp=int(event.recorded_at.timestamp()),
            )
            # basic.publish without py-amqp's per-message check for connection.blocked frames
            # (a non-blocking read before every message); draining the confirms reads them.
            channel.send_method(
                spec.Basic.Publish,
                "Bssbb",
                (0, self.exchange.name, key, True, False),
                message,
            )
            self._outstanding.add(self._next_tag)
            self._next_tag += 1
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        while self._outstanding:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishFailed(f"{len(self._outstanding)} messages not confirmed in time")
            try:
                self.connection.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
        if self._nacked:
            raise PublishFailed("the broker refused (nacked) part of the batch")


def publish_raw(
    connection: Connection,
    body: bytes,
    *,
    routing_key: str,
    exchange: str = "",
    headers: dict[str, Any] | None = None,
    expiration_ms: int | None = None,
    declare: Sequence[Queue] = (),
) -> None:
    """Publish one persistent message (retries, dead letters, replays), confirmed on RabbitMQ."""
    producer = Producer(connection.default_channel)
    producer.publish(
        body,
        exchange=exchange,
        routing_key=routing_key,
        content_type=JSON,
        content_encoding="utf-8",
        delivery_mode=2,
        headers=headers or {},
        expiration=expiration_ms / 1000 if expiration_ms is not None else None,
        declare=list(declare),
        retry=True,
        retry_policy={"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5},
    )
