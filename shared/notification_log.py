"""Reading another service's notification log over HTTP: for catch-up and for filling gaps."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from shared import auth
from shared.eventstore import RecordedEvent


class NotificationLogClient:
    def __init__(self, url_template: str, secret: str, *, timeout: float = 10.0) -> None:
        self.url_template = url_template.rstrip("/")
        self.secret = secret
        self.timeout = timeout

    def _get(self, source: str, params: dict[str, Any]) -> dict[str, Any]:
        base = self.url_template.replace("{service}", source)
        url = f"{base}/api/v1/{source}/events?{urllib.parse.urlencode(params)}"
        token = auth.mint(
            self.secret, role="service", subject="clustergov-consumer", ttl_seconds=300
        )
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def page(self, source: str, after: int, limit: int = 500) -> list[RecordedEvent]:
        body = self._get(source, {"after": after, "limit": limit})
        return [RecordedEvent.from_envelope(e) for e in body["events"]]

    def stream(self, source: str, stream_id: str, after_version: int) -> list[RecordedEvent]:
        body = self._get(source, {"stream_id": stream_id, "after_version": after_version})
        return [RecordedEvent.from_envelope(e) for e in body["events"]]
