"""Inspecting and re-injecting messages parked in ``<service>.dead-letter``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shared import amqp
from shared.consumers import ATTEMPTS_HEADER


@dataclass
class DeadLetter:
    message: Any
    envelope: dict[str, Any]
    headers: dict[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.envelope.get("event_id"))

    @property
    def queue(self) -> str:
        return str(self.headers.get("x-clustergov-queue", ""))

    def summary(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.envelope.get("type"),
            "stream_id": self.envelope.get("stream_id"),
            "version": self.envelope.get("version"),
            "queue": self.queue,
            "attempts": self.headers.get(ATTEMPTS_HEADER),
            "error": self.headers.get("x-clustergov-error"),
            "failed_at": self.headers.get("x-clustergov-failed-at"),
        }


@contextmanager
def dead_letters(amqp_uri: str, service: str) -> Iterator[list[DeadLetter]]:
    """Hold every parked message (unacknowledged) while the caller looks at them.

    Messages the caller neither replays nor drops return to the queue, in order, on exit."""
    queue = amqp.dead_letter_queue(service)
    with amqp.connect(amqp_uri, confirm_each=True) as connection:
        channel = connection.channel()
        bound = queue(channel)
        bound.declare()
        held: list[DeadLetter] = []
        while (message := bound.get(no_ack=False, accept=["json"])) is not None:
            body = message.body
            envelope = json.loads(body) if isinstance(body, (bytes, str)) else body
            held.append(DeadLetter(message, envelope, dict(message.headers or {})))
        try:
            yield held
        finally:
            channel.close()  # returns whatever was not acknowledged


def select(held: list[DeadLetter], event_ids: set[str] | None) -> list[DeadLetter]:
    return [d for d in held if event_ids is None or d.event_id in event_ids]


def replay(amqp_uri: str, service: str, event_ids: set[str] | None) -> list[DeadLetter]:
    """Put parked messages back on their handler's queue with a fresh attempt count."""
    return _take(amqp_uri, service, event_ids, _republish)


def drop(amqp_uri: str, service: str, event_ids: set[str] | None) -> list[DeadLetter]:
    """Remove parked messages for good."""
    return _take(amqp_uri, service, event_ids, lambda connection, letter: None)


def _republish(connection: Any, letter: DeadLetter) -> None:
    headers = {k: v for k, v in letter.headers.items() if not k.startswith("x-clustergov-")}
    amqp.publish_raw(
        connection,
        json.dumps(letter.envelope, ensure_ascii=False).encode(),
        routing_key=letter.queue,
        headers=headers,
    )


def _take(
    amqp_uri: str,
    service: str,
    event_ids: set[str] | None,
    action: Callable[[Any, DeadLetter], None],
) -> list[DeadLetter]:
    with dead_letters(amqp_uri, service) as held:
        chosen = select(held, event_ids)
        with amqp.connect(amqp_uri, confirm_each=True) as connection:
            for letter in chosen:
                action(connection, letter)
                letter.message.ack()  # only after the republish was confirmed
    return chosen
