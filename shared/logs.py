"""JSON logs, each line carrying the service and the request's correlation id."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

#: Set per request (greenlets each have their own context), read by every log line.
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
service: ContextVar[str | None] = ContextVar("service", default=None)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        record.service = service.get()
        return True


class ExpectedRefusals(logging.Filter):
    """nameko logs every exception a worker raises, with its traceback. A refused command (a
    4xx problem: a broken rule, a missing aggregate) is an answer, not an error: the HTTP layer
    already counts it; keep it out of the error log, at debug and without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from shared.errors import Problem

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, Problem) and exc.status < 500:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info = record.exc_text = None
            record.msg, record.args = "refused %s: %s", (record.args or ("", ""))[:2]
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def configure(level: str = "INFO", stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(correlation_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("nameko.containers").addFilter(ExpectedRefusals())
    # Alembic announces each of its plugins at INFO on every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
