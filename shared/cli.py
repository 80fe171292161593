"""The ``clustergov`` command: up, migrate, token."""

from __future__ import annotations

import argparse
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
    }
    if settings.embedded_broker:
        # kombu's memory transport polls; the default second would make every event a second late.
        config["TRANSPORT_OPTIONS"] = {"polling_interval": 0.005}
    return config


def _services(value: str | None) -> list[str]:
    from shared.config import SERVICES

    if not value or value == "all":
        return list(SERVICES)
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVICES]
    if unknown:
        raise SystemExit(f"unknown service(s) {', '.join(unknown)}; one of {', '.join(SERVICES)}")
    return names


def stop_on_signal(runner: Any) -> None:
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
        runner.stop()

    eventlet.spawn_n(waiter)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: raw_os.write(write_fd, bytes([number])))


def cmd_up(args: argparse.Namespace) -> int:
    from nameko.runners import ServiceRunner

    from services import service_class
    from shared.config import Settings

    settings = Settings.from_env()
    settings.check()
    names = _services(args.services)
    # Embedded mode owns its SQLite files, so it creates and migrates them itself.
    migrate = args.migrate or settings.database_url.startswith("sqlite")
    runner = ServiceRunner(nameko_config(settings, migrate=migrate))
    for name in names:
        runner.add_service(service_class(name))

    stop_on_signal(runner)
    runner.start()
    mode = "embedded" if settings.embedded_broker else settings.amqp_uri.split("@")[-1]
    log.info("clustergov up: %s on http://%s (%s)", ", ".join(names), settings.http_address, mode)
    runner.wait()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from shared.config import Settings
    from shared.migrate import upgrade

    settings = Settings.from_env()
    settings.check()
    for name in _services(args.services):
        upgrade(settings.database_url_for(name))
        log.info("migrated %s", name)
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


def parser() -> argparse.ArgumentParser:
    from shared.auth import ROLES

    root = argparse.ArgumentParser(prog="clustergov", description=__doc__)
    root.add_argument("--log-level", default="INFO")
    commands = root.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run services in this process (default: all, embedded)")
    up.add_argument("--services", help="comma-separated services, e.g. land,finance (default all)")
    up.add_argument("--migrate", action="store_true", help="apply migrations before starting")
    up.set_defaults(handler=cmd_up)

    migrate = commands.add_parser("migrate", help="create or upgrade each service's database")
    migrate.add_argument("--services", help="comma-separated services (default all)")
    migrate.set_defaults(handler=cmd_migrate)

    token = commands.add_parser("token", help="mint a bearer token for local use")
    token.add_argument("--role", required=True, choices=sorted(ROLES))
    token.add_argument("--subject", help="who the token is for (default: the role)")
    token.add_argument("--district")
    token.add_argument("--cluster")
    token.add_argument("--village")
    token.add_argument("--bank", help="bank code, for bank tokens")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    token.set_defaults(handler=cmd_token)
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
