"""What every service class inherits: its event store and its notification log."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from shared.dependencies import Store
from shared.http import query

#: How long a notification log read waits for transactions running at the time of the call,
#: so that a client sees what it has just committed.
READ_YOUR_WRITES_SECONDS = 0.5


class NotificationLogArgs(ma.Schema):
    after = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=1000))
    stream_id = ma.fields.String(
        load_default=None, metadata={"description": "only this stream, in version order"}
    )
    after_version = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))


class ServiceBase:
    """Base of the six nameko services. ``name`` is set by each subclass."""

    name: str
    store = Store()

    @query("/api/v1/{service}/events", args=NotificationLogArgs, roles=["ops", "service"])
    def notification_log(self, request: Any, args: dict[str, int]) -> dict[str, Any]:
        """Page this service's events in global order, after a position (or one stream's)."""
        if args["stream_id"] is not None:
            stream = self.store.events.load(args["stream_id"], after_version=args["after_version"])
            return {"events": [event.envelope() for event in stream[: args["limit"]]]}
        page = self.store.events.read_all(
            after=args["after"], limit=args["limit"], settle=READ_YOUR_WRITES_SECONDS
        )
        return {
            "events": [event.envelope() for event in page],
            "next_after": page[-1].position if page else args["after"],
        }
