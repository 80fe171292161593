"""A small HTTP client for the services' public API, as any outside caller would use it."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

from shared import auth

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, path: str, body: Any) -> None:
        super().__init__(f"{status} from {path}: {body}")
        self.status, self.path, self.body = status, path, body


@dataclass
class Client:
    base_url: str
    secret: str
    district: str
    timeout: float = 30
    _tokens: dict[tuple[str, tuple[tuple[str, str], ...]], str] = field(default_factory=dict)

    def token(self, role: str, **scope: str) -> str:
        key = (role, tuple(sorted(scope.items())))
        if key not in self._tokens:
            self._tokens[key] = auth.mint(
                self.secret,
                role=role,
                subject=f"demo-{role}",
                ttl_seconds=30 * 24 * 3600,
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

    def get(self, path: str, *, role: str, **scope: str) -> Any:
        return self.request("GET", path, role=role, **scope)

    def ensure(self, path: str, body: Any, *, role: str, **scope: str) -> Any:
        """Create something that may exist from an earlier run: 'already exists' is fine."""
        try:
            return self.post(path, body, role=role, key=f"demo:{path}:{body.get('id')}", **scope)
        except ApiError as exc:
            if exc.status == 409:
                return None
            raise
