"""A bank's consumer of the clustergov bank feed, with a plain AMQP 0-9-1 client (py-amqp).

Copy and adapt. What it shows:

* it consumes only its own queue ``bank.<bank_code>`` with the credentials ``clustergov bank
  provision <bank_code>`` printed (it may read that queue and nothing else, so it declares
  nothing: the queue already exists);
* it stores each event and only then acknowledges it; a crash before the ack means the broker
  delivers the message again, so storing ignores an ``event_id`` it already has;
* events of one loan arrive in order (``position`` increases); after being offline it can also
  catch up from ``GET /api/v1/finance/bank-feed?after=<last position>`` with a bank token.

    python examples/bank_consumer.py --uri amqp://bank-ABC:<password>@mq.example:5672/clustergov \
        --bank ABC --db bank-events.sqlite3
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import amqp


class EventStore:
    """The bank's own storage: one row per event id (a redelivery changes nothing)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS feed_events ("
            " event_id TEXT PRIMARY KEY, position INTEGER NOT NULL, loan_id TEXT NOT NULL,"
            " event_type TEXT NOT NULL, body TEXT NOT NULL)"
        )
        self.db.commit()

    def store(self, envelope: dict[str, Any]) -> bool:
        """True if the event is new. Committed before the caller acknowledges."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO feed_events VALUES (?, ?, ?, ?, ?)",
            (
                envelope["event_id"],
                envelope["position"],
                envelope["loan_id"],
                envelope["event_type"],
                json.dumps(envelope, ensure_ascii=False),
            ),
        )
        self.db.commit()
        return cursor.rowcount == 1

    def last_position(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(position), 0) FROM feed_events").fetchone()[0]

    def events(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT body FROM feed_events ORDER BY position")
        return [json.loads(body) for (body,) in rows]


def connect(uri: str) -> amqp.Connection:
    parts = urlsplit(uri)
    connection = amqp.Connection(
        host=f"{parts.hostname}:{parts.port or 5672}",
        userid=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        virtual_host=unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
    )
    connection.connect()
    return connection


def consume(
    uri: str,
    bank_code: str,
    store: EventStore,
    *,
    until: Callable[[], bool] = lambda: False,
    idle_timeout: float = 1.0,
    queue: str | None = None,
) -> None:
    """Consume ``bank.<bank_code>`` until ``until()`` is true (or forever)."""
    with connect(uri) as connection:
        channel = connection.channel()
        channel.basic_qos(prefetch_size=0, prefetch_count=50, a_global=False)

        def on_message(message: amqp.Message) -> None:
            envelope = json.loads(message.body)
            if envelope.get("feed_version") != 1:
                # A newer contract version: stop and upgrade rather than misread it.
                raise RuntimeError(f"unsupported feed_version {envelope.get('feed_version')}")
            if not store.store(envelope):
                print(f"duplicate {envelope['event_id']} ignored")
            channel.basic_ack(message.delivery_tag)  # only after it is stored

        channel.basic_consume(queue or f"bank.{bank_code}", callback=on_message)
        while not until():
            try:
                connection.drain_events(timeout=idle_timeout)
            except TimeoutError:
                continue


def catch_up(base_url: str, token: str, store: EventStore, page: int = 500) -> int:
    """Fetch what was missed from the notification log (only this bank's events)."""
    fetched = 0
    while True:
        url = f"{base_url}/api/v1/finance/bank-feed?after={store.last_position()}&limit={page}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            events = json.loads(response.read())["events"]
        for envelope in events:
            fetched += store.store(envelope)
        if len(events) < page:
            return fetched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True, help="amqp://bank-<code>:<password>@host/vhost")
    parser.add_argument("--bank", required=True, help="your bank code")
    parser.add_argument("--db", default="bank-events.sqlite3")
    parser.add_argument("--api", help="clustergov base URL, to catch up first")
    parser.add_argument("--token", help="a bank token for --api")
    args = parser.parse_args()
    store = EventStore(args.db)
    if args.api and args.token:
        print(f"caught up {catch_up(args.api, args.token, store)} event(s)")
    consume(args.uri, args.bank, store)


if __name__ == "__main__":
    main()
