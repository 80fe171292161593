"""The ``clustergov`` command: up, relay, migrate, replay, dlq, events, bank, token."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from shared import green

log = logging.getLogger("clustergov")


def nameko_config(settings: Any, *, migrate: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "AMQP_URI": settings.amqp_uri,
        "WEB_SERVER_ADDRESS": settings.http_address,
        "DATABASE_URL": settings.database_url,
        "SECRET": settings.secret,
        "ENV": settings.env,
        "AUTO_MIGRATE": migrate,
        "SERVICE_URL": settings.service_url,
        "RELAY": settings.relay,
        "CATCH_UP_INTERVAL": settings.catch_up_interval,
    }
    if settings.embedded_broker:
        # kombu's memory transport polls; the default second would make every event a second late.
        config["TRANSPORT_OPTIONS"] = {"polling_interval": 0.005}
    return config


def _services(value: str | None) -> list[str]:
    """Service names (or ``module:Class`` paths of other nameko services) from --services."""
    from shared.config import SERVICES

    if not value or value == "all":
        return list(SERVICES)
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVICES and ":" not in name]
    if unknown:
        raise SystemExit(f"unknown service(s) {', '.join(unknown)}; one of {', '.join(SERVICES)}")
    return names


def _service_class(name: str) -> type:
    from importlib import import_module

    from services import service_class

    if ":" in name:
        module, _, attribute = name.partition(":")
        return getattr(import_module(module), attribute)
    return service_class(name)


def stop_on_signal(runner: Any, before: Any = None) -> None:
    """Stop the runner gracefully on SIGTERM/SIGINT.

    A Python signal handler cannot use eventlet, and since PEP 475 it does not wake the hub from
    epoll either. The handler writes to a pipe; a green thread reading that pipe wakes at once and
    stops the runner, which lets running workers finish."""
    import eventlet
    from eventlet.green import os as green_os

    raw_os = eventlet.patcher.original("os")  # the handler must not trampoline
    read_fd, write_fd = raw_os.pipe()

    def waiter() -> None:
        signum = green_os.read(read_fd, 1)[0]
        log.info("received signal %s; stopping after running workers finish", signum)
        if before is not None:
            before()
        runner.stop()

    eventlet.spawn_n(waiter)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: raw_os.write(write_fd, bytes([number])))


def cmd_up(args: argparse.Namespace) -> int:
    from nameko.runners import ServiceRunner

    from shared.config import Settings

    settings = Settings.from_env()
    settings.check()
    names = _services(args.services)
    # Embedded mode owns its SQLite files, so it creates and migrates them itself.
    migrate = args.migrate or settings.database_url.startswith("sqlite")
    runner = ServiceRunner(nameko_config(settings, migrate=migrate))
    classes = [_service_class(name) for name in names]
    for cls in classes:
        runner.add_service(cls)

    demo = DemoThread() if args.demo else None
    stop_on_signal(runner, before=demo.stop if demo else None)
    runner.start()
    mode = "embedded" if settings.embedded_broker else settings.amqp_uri.split("@")[-1]
    log.info("clustergov up: %s on http://%s (%s)", ", ".join(names), settings.http_address, mode)
    if demo:
        demo.start(f"http://{settings.http_address}", settings.secret, args.demo_interval)
    runner.wait()
    if demo:
        demo.stop()
    return 0


class DemoThread:
    """The demo driver in a green thread of this process, stopped before the runner."""

    def __init__(self) -> None:
        self.stopping = False
        self.thread: Any = None

    def start(self, base_url: str, secret: str, interval: float) -> None:
        import eventlet

        from demo.client import Client
        from demo.district import DISTRICT
        from demo.driver import run

        api = Client(base_url.replace("0.0.0.0", "127.0.0.1"), secret, DISTRICT)
        log_screen(api)
        self.thread = eventlet.spawn(run, api, interval=interval, stop=lambda: self.stopping)

    def stop(self) -> None:
        self.stopping = True
        if self.thread is not None:
            self.thread.kill()
            self.thread = None


def log_screen(api: Any) -> None:
    """One line with the big screen's address and a read token (in the fragment: never sent)."""
    from demo.ranking import CLUSTER_RACE

    token = api.token("screen", ttl_seconds=365 * 24 * 3600)
    log.info("screen: %s/screen/%s#token=%s", api.base_url, CLUSTER_RACE, token)


def cmd_demo(args: argparse.Namespace) -> int:
    """Drive a deployed system with the demo district (secret from CLUSTERGOV_SECRET)."""
    from demo.client import Client
    from demo.district import DISTRICT
    from demo.driver import run
    from shared.config import Settings

    settings = Settings.from_env()
    settings.check()
    api = Client(args.url.rstrip("/"), settings.secret, DISTRICT)
    log_screen(api)
    with contextlib.suppress(KeyboardInterrupt):
        run(api, interval=args.demo_interval, stop=lambda: False)
    return 0


class RelayGroup:
    """The outbox relays of some services, run without their APIs (``clustergov relay``)."""

    def __init__(self, relays: list[Any]) -> None:
        import eventlet

        self.relays = relays
        self.threads = [eventlet.spawn(relay.run) for relay in relays]

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()

    def wait(self) -> None:
        for thread in self.threads:
            thread.wait()


def cmd_relay(args: argparse.Namespace) -> int:
    from functools import partial

    from shared.config import ConfigurationError, Settings
    from shared.dependencies import database_probe
    from shared.eventstore import EventStore
    from shared.relay import relays_for
    from shared.web import FrontDoor, bind_address, broker_probe

    settings = Settings.from_env()
    settings.check()
    if settings.embedded_broker:
        raise ConfigurationError(
            "clustergov relay publishes to a real broker: set CLUSTERGOV_AMQP_URI "
            "(the embedded broker lives inside `clustergov up`, which relays itself)"
        )
    door = FrontDoor.at(bind_address(settings.http_address))
    door.add_probe("broker", partial(broker_probe, settings.amqp_uri))
    relays, stores = [], []
    for cls in map(_service_class, _services(args.services)):
        store = EventStore.from_url(settings.database_url_for(cls.name), cls.name)
        stores.append(store)
        door.add_probe(f"{cls.name}.database", partial(database_probe, store))
        relays.extend(relays_for(store, settings.amqp_uri, getattr(cls, "feeds", ())))
    door.open()
    group = RelayGroup(relays)
    stop_on_signal(group)
    log.info("clustergov relay: %s", ", ".join(relay.service for relay in relays))
    group.wait()
    door.close()
    for store in stores:
        store.dispose()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from shared.config import Settings
    from shared.migrate import upgrade

    settings = Settings.from_env()
    settings.check()
    for cls in map(_service_class, _services(args.services)):
        upgrade(settings.database_url_for(cls.name))
        log.info("migrated %s", cls.name)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from shared.config import Settings
    from shared.eventstore import EventStore
    from shared.projections import rebuild

    settings = Settings.from_env()
    settings.check()
    cls = _service_class(args.service)
    store = EventStore.from_url(settings.database_url_for(cls.name), cls.name)
    projections = list(getattr(cls, "projections", ()))
    for projection in projections:
        projection.create_tables(store.engine)
    with Progress() as bar:
        task = bar.add_task(f"rebuilding {cls.name}", total=None)
        count = rebuild(
            store, projections, lambda done, total: bar.update(task, completed=done, total=total)
        )
    store.dispose()
    inline = sum(1 for p in projections if p.source is None)
    print(f"{cls.name}: {count} events re-applied to {inline} projection(s)")
    if inline < len(projections):
        print(
            f"{len(projections) - inline} projection(s) fed by other services were left as they are"
        )
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from shared import dead_letters
    from shared.config import Settings

    settings = Settings.from_env()
    settings.check()
    cls = _service_class(args.service)
    ids = None if getattr(args, "all", False) else set(getattr(args, "event_id", None) or [])
    if args.action in {"replay", "drop"} and not ids and ids is not None:
        raise SystemExit("name the messages: --event-id ID (repeatable) or --all")
    console = Console()
    if args.action == "list":
        with dead_letters.dead_letters(settings.amqp_uri, cls.name) as held:
            if args.json:
                print(json.dumps([d.summary() for d in held], ensure_ascii=False, default=str))
                return 0
            table = Table(title=f"{cls.name}.dead-letter: {len(held)} message(s)")
            for column in (
                "event_id",
                "type",
                "stream_id",
                "version",
                "queue",
                "attempts",
                "error",
                "failed_at",
            ):
                table.add_column(column)
            for letter in held:
                table.add_row(*(str(v) for v in letter.summary().values()))
            console.print(table)
        return 0
    action = dead_letters.replay if args.action == "replay" else dead_letters.drop
    done = action(settings.amqp_uri, cls.name, ids)
    verb = "replayed" if args.action == "replay" else "dropped"
    console.print(f"{verb} {len(done)} message(s): {', '.join(d.event_id for d in done)}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from shared import auth
    from shared.config import Settings

    settings = Settings.from_env()
    settings.check()
    token = auth.mint(
        settings.secret,
        role=args.role,
        subject=args.subject,
        ttl_seconds=args.ttl,
        district=args.district,
        cluster=args.cluster,
        village=args.village,
        bank=args.bank,
    )
    print(token)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from shared import contracts

    services = tuple(_services(args.services))
    if args.check:
        problems = contracts.stale(services=services)
        for problem in problems:
            print(f"docs/events/{problem}", file=sys.stderr)
        if problems:
            print("run `clustergov events export` and commit the result", file=sys.stderr)
        return 1 if problems else 0
    for path in contracts.export(services=services):
        log.info("wrote %s", path)
    return 0


def cmd_bank(args: argparse.Namespace) -> int:
    from services.finance.bank_feed import ProvisionError, provision
    from shared.config import Settings

    settings = Settings.from_env()
    if settings.embedded_broker:
        raise SystemExit("bank provision needs RabbitMQ: set CLUSTERGOV_AMQP_URI")
    try:
        done = provision(
            settings.amqp_uri,
            args.code,
            rotate=args.rotate,
            management_url=settings.rabbitmq_management_url,
        )
    except ProvisionError as exc:
        raise SystemExit(f"clustergov bank provision: {exc}") from None
    print(f"queue {done.queue} on vhost {done.vhost!r}, bound to {args.code}.#")
    if done.password is None:
        print(f"user {done.username} exists; its password is unchanged (--rotate for a new one)")
    else:
        print(f"user {done.username}  password {done.password}")
        print("store the password now: it is not shown again")
    return 0


def parser() -> argparse.ArgumentParser:
    from shared.auth import ROLES

    root = argparse.ArgumentParser(prog="clustergov", description=__doc__)
    root.add_argument("--log-level", default="INFO")
    commands = root.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run services in this process (default: all, embedded)")
    up.add_argument("--services", help="comma-separated services, e.g. land,finance (default all)")
    up.add_argument("--migrate", action="store_true", help="apply migrations before starting")
    up.add_argument(
        "--demo", action="store_true", help="create the demo district and keep activity flowing"
    )
    up.add_argument(
        "--demo-interval", type=float, default=1.0, help="seconds between demo facts (default 1)"
    )
    up.set_defaults(handler=cmd_up)

    demo = commands.add_parser("demo", help="drive a running system with the demo district")
    demo.add_argument("--url", required=True, help="the system's HTTP address, http://host:port")
    demo.add_argument("--demo-interval", type=float, default=1.0, help="seconds between facts")
    demo.set_defaults(handler=cmd_demo)

    relay = commands.add_parser(
        "relay", help="run services' outbox relays only (their API processes set RELAY=off)"
    )
    relay.add_argument("--services", help="comma-separated services (default all)")
    relay.set_defaults(handler=cmd_relay)

    migrate = commands.add_parser("migrate", help="create or upgrade each service's database")
    migrate.add_argument("--services", help="comma-separated services (default all)")
    migrate.set_defaults(handler=cmd_migrate)

    replay = commands.add_parser("replay", help="rebuild a service's projections from its store")
    replay.add_argument("service")
    replay.set_defaults(handler=cmd_replay)

    dlq = commands.add_parser("dlq", help="inspect, replay or drop dead-lettered messages")
    dlq_actions = dlq.add_subparsers(dest="action", required=True)
    dlq_list = dlq_actions.add_parser("list", help="show parked messages (they stay parked)")
    dlq_list.add_argument("service")
    dlq_list.add_argument("--json", action="store_true")
    for name, text in (
        ("replay", "put messages back on their handler's queue"),
        ("drop", "discard messages for good"),
    ):
        sub = dlq_actions.add_parser(name, help=text)
        sub.add_argument("service")
        sub.add_argument("--event-id", action="append", help="a message's event id (repeatable)")
        sub.add_argument("--all", action="store_true", help="every parked message")
    dlq.set_defaults(handler=cmd_dlq)

    event_docs = commands.add_parser("events", help="event contracts as JSON Schema")
    event_actions = event_docs.add_subparsers(dest="action", required=True)
    export = event_actions.add_parser("export", help="write docs/events/<service>/<Type>.json")
    export.add_argument("--check", action="store_true", help="only report stale contracts")
    export.add_argument("--services", help="comma-separated services (default all)")
    event_docs.set_defaults(handler=cmd_events)

    token = commands.add_parser("token", help="mint a bearer token for local use")
    token.add_argument("--role", required=True, choices=sorted(ROLES))
    token.add_argument("--subject", help="who the token is for (default: the role)")
    token.add_argument("--district")
    token.add_argument("--cluster")
    token.add_argument("--village")
    token.add_argument("--bank", help="bank code, for bank tokens")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    token.set_defaults(handler=cmd_token)

    bank = commands.add_parser("bank", help="bank feed: provision a bank's queue and user")
    bank_actions = bank.add_subparsers(dest="action", required=True)
    bank_provision = bank_actions.add_parser(
        "provision", help="create (idempotently) queue bank.<code> and a user that reads only it"
    )
    bank_provision.add_argument("code", help="the bank's code")
    bank_provision.add_argument("--rotate", action="store_true", help="set a new password")
    bank.set_defaults(handler=cmd_bank)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    green.patch()
    from shared import logs
    from shared.config import ConfigurationError

    args = parser().parse_args(argv)
    logs.configure(args.log_level)
    try:
        return args.handler(args)
    except ConfigurationError as exc:
        print(f"clustergov: refusing to start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
