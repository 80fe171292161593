"""A small HTTP client for the services' public API, as any outside caller would use it."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import auth

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, path: str, body: Any) -> None:
        super().__init__(f"{status} from {path}: {body}")
        self.status, self.path, self.body = status, path, body

    @property
    def already(self) -> bool:
        """The refusal says the thing exists (or the step was done) by an earlier run."""
        if self.status == 409:
            return True
        if self.status != 422:
            return False
        text = json.dumps(self.body, ensure_ascii=False).lower()
        return any(
            word in text
            for word in ("already", "exists", "reused with a different request", "duplicate")
        )


@dataclass
class Client:
    base_url: str
    secret: str
    district: str
    timeout: float = 30
    calls: int = 0
    _tokens: dict[tuple[str, tuple[tuple[str, str], ...]], str] = field(default_factory=dict)

    def token(self, role: str, ttl_seconds: int = 30 * 24 * 3600, **scope: str) -> str:
        key = (role, tuple(sorted(scope.items())))
        if key not in self._tokens:
            self._tokens[key] = auth.mint(
                self.secret,
                role=role,
                subject=f"demo-{role}",
                ttl_seconds=ttl_seconds,
                district=self.district,
                **scope,
            )
        return self._tokens[key]

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        role: str,
        key: str | None = None,
        **scope: str,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token(role, **scope)}"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if method == "POST":
            # The same key on a re-run makes a repeated setup step answer its first result.
            headers["Idempotency-Key"] = key or str(uuid.uuid4())
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        self.calls += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                detail: Any = json.loads(raw)
            except ValueError:
                detail = raw.decode(errors="replace")
            raise ApiError(exc.code, path, detail) from None
        return json.loads(raw) if raw else None

    def post(self, path: str, body: Any, *, role: str, key: str | None = None, **scope: str) -> Any:
        return self.request("POST", path, body, role=role, key=key, **scope)

    def get(self, path: str, *, role: str = "ops", **scope: str) -> Any:
        return self.request("GET", path, role=role, **scope)

    def ensure(
        self, path: str, body: Any, *, role: str, key: str | None = None, **scope: str
    ) -> Any:
        """Create something that may exist from an earlier run: 'already exists' is fine.

        The Idempotency-Key is fixed per path and id, so a re-run answers the first response and
        appends nothing; a refusal that says 'exists already' is logged and passed over; any
        other refusal is raised."""
        key = key or f"demo:{path}:{body.get('id')}"
        try:
            return self.post(path, body, role=role, key=key, **scope)
        except ApiError as exc:
            if exc.already:
                log.debug("demo: %s exists already (%s)", path, exc.body)
                return None
            raise

    def wait_for(self, path: str, *, timeout: float = 60, role: str = "ops") -> Any:
        """GET ``path`` until it answers 200 (another service's directory catching up)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.get(path, role=role)
            except ApiError as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)


def attempt(what: str, action: Callable[[], Any]) -> Any:
    """Run one demo step; a refusal is logged (debug for 4xx, warning for 5xx), never raised."""
    try:
        return action()
    except ApiError as exc:
        if exc.status >= 500:
            log.warning("demo %s failed: %s", what, exc)
        else:
            log.debug("demo %s refused: %s", what, exc)
    except OSError as exc:  # connection refused while the process stops
        log.debug("demo %s: %s", what, exc)
    return None
