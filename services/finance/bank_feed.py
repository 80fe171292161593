"""The bank feed: guarantee-lifecycle events published to the banks they concern.

Every finance event about a loan (``LOAN_EVENTS``, each carrying ``loan_id`` and ``bank_code``)
is also published to the topic exchange ``clustergov.bank-feed`` with routing key
``<bank_code>.<EventType>``, by a second outbox relay (``finance.bank-feed``: its own checkpoint
and leadership over the same events table), persistent and confirmed, in global order and so in
order per loan. The body is a versioned envelope (``FEED_VERSION``) documented per event type in
``docs/events/bank-feed/`` with an AsyncAPI description.

``provision`` gives a bank its durable queue ``bank.<code>`` bound to ``<code>.#`` and a broker
user that may read only that queue, through the RabbitMQ management HTTP API.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kombu import Exchange
from nameko.extensions import DependencyProvider

from services.finance import events as finance_events
from shared import contracts
from shared import events as event_types
from shared.dependencies import Store
from shared.eventstore import RecordedEvent
from shared.relay import Relay

EXCHANGE_NAME = "clustergov.bank-feed"
FEED_EXCHANGE = Exchange(EXCHANGE_NAME, type="topic", durable=True)
RELAY_NAME = "finance.bank-feed"
FEED_VERSION = 1
BANK_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DOCS = contracts.DOCS / "bank-feed"
FEED_TYPES = frozenset(finance_events.LOAN_EVENTS)


def route(event: RecordedEvent) -> str | None:
    """``<bank_code>.<EventType>`` for an event about a loan, None for the rest."""
    if event.type not in FEED_TYPES:
        return None
    return f"{event.data['bank_code']}.{event.type}"


def bank_envelope(event: RecordedEvent) -> dict[str, Any]:
    """What a bank receives: the event without our internal metadata, versioned."""
    return {
        "feed_version": FEED_VERSION,
        "event_id": str(event.event_id),
        "event_type": event.type,
        "schema_version": event.schema_version,
        "bank_code": event.data["bank_code"],
        "loan_id": event.data["loan_id"],
        "position": event.position,
        "stream_id": event.stream_id,
        "stream_version": event.version,
        "occurred_at": event.recorded_at.isoformat(),
        "data": event.data,
    }


def encode(event: RecordedEvent) -> bytes:
    return json.dumps(bank_envelope(event), ensure_ascii=False, separators=(",", ":")).encode()


class BankFeedRelay(DependencyProvider):
    """Runs the bank-feed relay next to the service's own (leader-elected the same way)."""

    def __init__(self) -> None:
        self.relay: Relay | None = None
        self._thread: Any = None

    def start(self) -> None:
        config = self.container.config
        store = next((d.store for d in self.container.dependencies if isinstance(d, Store)), None)
        if store is None or not config.get("RELAY", True):
            return
        self.relay = Relay(
            store,
            config["AMQP_URI"],
            name=RELAY_NAME,
            exchange=FEED_EXCHANGE,
            route=route,
            encoder=encode,
        )
        self._thread = self.container.spawn_managed_thread(
            self.relay.run, identifier=f"relay {RELAY_NAME}"
        )

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
            self._thread.wait()
            self.relay = None

    def kill(self) -> None:
        if self.relay is not None:
            self.relay.stop()


# -- the contract: JSON Schema per event and an AsyncAPI document --------------------------------


def feed_types() -> list[type[event_types.Event]]:
    return [cls for cls in contracts.service_events("finance") if cls.TYPE in FEED_TYPES]


def envelope_schema(event_cls: type[event_types.Event]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://clustergov.example/events/bank-feed/{event_cls.TYPE}.json",
        "title": f"bank-feed.{event_cls.TYPE} v{event_cls.VERSION} (feed v{FEED_VERSION})",
        "description": (event_cls.__doc__ or "").strip(),
        "type": "object",
        "required": [
            "feed_version",
            "event_id",
            "event_type",
            "schema_version",
            "bank_code",
            "loan_id",
            "position",
            "stream_id",
            "stream_version",
            "occurred_at",
            "data",
        ],
        "properties": {
            "feed_version": {"const": FEED_VERSION},
            "event_id": {
                "type": "string",
                "format": "uuid",
                "description": "unique per event: store it and ignore a second delivery",
            },
            "event_type": {"const": event_cls.TYPE},
            "schema_version": {"const": event_cls.VERSION},
            "bank_code": {"type": "string"},
            "loan_id": {"type": "string"},
            "position": {
                "type": "integer",
                "description": "increases with every event: the order, and ?after= to catch up",
            },
            "stream_id": {"type": "string"},
            "stream_version": {"type": "integer", "minimum": 1},
            "occurred_at": {"type": "string", "format": "date-time"},
            "data": contracts.data_schema(event_cls),
        },
    }


def asyncapi() -> str:
    """The AsyncAPI 3.0 document (YAML; messages reference the JSON Schemas beside it)."""
    lines = [
        "# Generated by services/finance/bank_feed.py (export); do not edit by hand.",
        "asyncapi: 3.0.0",
        "info:",
        "  title: clustergov bank feed",
        f"  version: '{FEED_VERSION}'",
        "  description: >-",
        "    Guarantee-lifecycle events of the loans a bank makes, for the bank's own systems.",
        "    Each bank consumes its durable queue bank.<bank_code> with its own credentials",
        "    (it can read nothing else). Messages are persistent JSON, in order per loan",
        "    (position increases); a redelivery repeats an event_id, so store each event once",
        "    and acknowledge after storing. A bank that was offline catches up with",
        "    GET /api/v1/finance/bank-feed?after=<position>&limit=<n> (bank token).",
        "servers:",
        "  production:",
        "    host: rabbitmq.example:5672",
        "    protocol: amqp",
        "    protocolVersion: 0.9.1",
        "channels:",
        "  bankQueue:",
        "    address: bank.{bank_code}",
        "    parameters:",
        "      bank_code:",
        "        description: the bank's code in the alliance directory",
        "    bindings:",
        "      amqp:",
        "        is: queue",
        "        queue:",
        "          name: bank.{bank_code}",
        "          durable: true",
        "          exclusive: false",
        "          autoDelete: false",
        "    description: >-",
        f"      Bound to the topic exchange {EXCHANGE_NAME} with <bank_code>.#; routing key",
        "      <bank_code>.<EventType>.",
        "    messages:",
    ]
    for cls in feed_types():
        lines += [
            f"      {cls.TYPE}:",
            f"        $ref: '#/components/messages/{cls.TYPE}'",
        ]
    lines += [
        "operations:",
        "  receiveBankFeed:",
        "    action: receive",
        "    channel:",
        "      $ref: '#/channels/bankQueue'",
        "    bindings:",
        "      amqp:",
        "        ack: true",
        "components:",
        "  messages:",
    ]
    for cls in feed_types():
        summary = (cls.__doc__ or "").strip().splitlines()[0].replace("'", "''")
        lines += [
            f"    {cls.TYPE}:",
            f"      name: {cls.TYPE}",
            f"      summary: '{summary}'",
            "      contentType: application/json",
            "      payload:",
            f"        $ref: './{cls.TYPE}.json'",
        ]
    return "\n".join(lines) + "\n"


def rendered() -> dict[str, str]:
    files = {
        f"{cls.TYPE}.json": json.dumps(envelope_schema(cls), indent=2, ensure_ascii=False) + "\n"
        for cls in feed_types()
    }
    files["asyncapi.yaml"] = asyncapi()
    return files


def export(folder: Path = DOCS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = rendered()
    for stale in {p.name for p in folder.iterdir()} - set(files):
        (folder / stale).unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [folder / name for name in files]


def stale(folder: Path = DOCS) -> list[str]:
    files = rendered()
    present = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    problems = [f"bank-feed/{name}: no such event type any more" for name in present - set(files)]
    for name, text in sorted(files.items()):
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            problems.append(f"bank-feed/{name}: missing or differs from the code")
    return problems


# -- provisioning a bank ----------------------------------------------------------------------


class ProvisionError(Exception):
    pass


@dataclass(frozen=True)
class Provisioned:
    bank_code: str
    queue: str
    vhost: str
    username: str
    #: Set only when the password was created (or rotated) now: shown once, never again.
    password: str | None


class Management:
    """A small client of the RabbitMQ management HTTP API."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.auth = f"Basic {token}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": self.auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method == "GET":
                return None
            detail = exc.read().decode(errors="replace")
            raise ProvisionError(f"{method} {path}: HTTP {exc.code} {detail}") from None
        except OSError as exc:
            raise ProvisionError(
                f"the RabbitMQ management API at {self.base_url} is not reachable ({exc}); "
                "is the rabbitmq_management plugin enabled?"
            ) from None
        return json.loads(raw) if raw else None


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def management_for(amqp_uri: str, management_url: str | None = None) -> tuple[Management, str]:
    """The management API of the broker in ``amqp_uri`` (same credentials), and its vhost."""
    parts = urllib.parse.urlsplit(amqp_uri)
    if parts.scheme not in ("amqp", "amqps"):
        raise ProvisionError(f"needs a RabbitMQ AMQP URI, not {parts.scheme}://")
    vhost = urllib.parse.unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    base = management_url or f"http://{parts.hostname or 'localhost'}:15672"
    user = urllib.parse.unquote(parts.username or "guest")
    password = urllib.parse.unquote(parts.password or "guest")
    return Management(base, user, password), vhost


def provision(
    amqp_uri: str, bank_code: str, *, rotate: bool = False, management_url: str | None = None
) -> Provisioned:
    """Idempotently: the exchange, the bank's durable queue bound to ``<code>.#``, and a user
    ``bank-<code>`` that may read that queue and nothing else (configure and write: nothing).
    The password is made (and returned) only when the user is new or ``rotate`` asks."""
    if not BANK_CODE.match(bank_code):
        raise ProvisionError("a bank code is 1-32 characters of A-Z a-z 0-9 _ -")
    api, vhost = management_for(amqp_uri, management_url)
    v = _q(vhost)
    queue = f"bank.{bank_code}"
    username = f"bank-{bank_code}"
    api.call("PUT", f"/api/exchanges/{v}/{_q(EXCHANGE_NAME)}", {"type": "topic", "durable": True})
    api.call("PUT", f"/api/queues/{v}/{_q(queue)}", {"durable": True, "auto_delete": False})
    bindings = api.call("GET", f"/api/bindings/{v}/e/{_q(EXCHANGE_NAME)}/q/{_q(queue)}") or []
    if not any(b.get("routing_key") == f"{bank_code}.#" for b in bindings):
        api.call(
            "POST",
            f"/api/bindings/{v}/e/{_q(EXCHANGE_NAME)}/q/{_q(queue)}",
            {"routing_key": f"{bank_code}.#"},
        )
    password = None
    if api.call("GET", f"/api/users/{_q(username)}") is None or rotate:
        password = secrets.token_urlsafe(24)
        api.call("PUT", f"/api/users/{_q(username)}", {"password": password, "tags": ""})
    api.call(
        "PUT",
        f"/api/permissions/{v}/{_q(username)}",
        {"configure": "^$", "write": "^$", "read": f"^{re.escape(queue)}$"},
    )
    return Provisioned(bank_code, queue, vhost, username, password)
