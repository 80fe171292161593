"""HTTP endpoints for nameko services: ``@command`` and ``@query``.

Everything a request goes through before and after the service method lives here, once:
authentication and the endpoint's roles, JSON parsing, marshmallow validation, the
Idempotency-Key, correlation ids, rendering with the response schema, problem+json errors and
metrics. Authentication and validation run before a worker is taken, so bad requests cost no
worker slot.

A service method receives ``request``, the URL's path values and, when declared, ``body`` (the
loaded request schema) or ``args`` (the loaded query-string schema)::

    @command("POST", "/api/v1/land/parcels", body=ParcelIn, response=ParcelOut,
             roles=["exchange_staff"], status=201)
    def register_parcel(self, request, body):
        return self.store.run(lambda uow: ...)

``raw_body=("text/csv",)`` also accepts a body of those media types: the method then gets the
decoded text (UTF-8, a leading byte-order mark dropped) as ``body`` instead of the loaded schema,
and a body of any other type than JSON or those is a 415 naming Content-Type. Authentication,
the Idempotency-Key (fingerprinting the raw bytes and the query string) and problem+json errors
work as for JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from functools import partial
from typing import Any

import marshmallow as ma
from eventlet.event import Event as GreenEvent
from nameko.extensions import Entrypoint
from sqlalchemy.exc import DBAPIError
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from shared import auth, logs, metrics
from shared.commands import Outcome
from shared.errors import (
    BadRequest,
    Problem,
    ServiceUnavailable,
    Unprocessable,
    UnsupportedMediaType,
)
from shared.eventstore import fingerprint
from shared.web import ApiServer, problem_response

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
BODY_METHODS = {"POST", "PUT", "PATCH"}


class Endpoint(Entrypoint):
    server = ApiServer()

    def __init__(
        self,
        method: str,
        url: str,
        *,
        roles: Collection[str] | None,
        body: type[ma.Schema] | ma.Schema | None = None,
        args: type[ma.Schema] | ma.Schema | None = None,
        response: type[ma.Schema] | ma.Schema | None = None,
        status: int = 200,
        many: bool = False,
        raw_body: Collection[str] = (),
        **kwargs: Any,
    ) -> None:
        unknown = set(roles or ()) - set(auth.ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)} on {method} {url}")
        self.method = method.upper()
        self.url = url
        self.roles = tuple(roles) if roles is not None else None
        self.body_schema = body() if isinstance(body, type) else body
        self.args_schema = args() if isinstance(args, type) else args
        self.response_schema = response() if isinstance(response, type) else response
        self.status = status
        self.many = many
        self.raw_body = tuple(raw_body)
        super().__init__(**kwargs)

    # -- nameko plumbing ----------------------------------------------------------------------

    @property
    def route(self) -> str:
        return self.url.replace("{service}", self.container.service_name)

    def get_url_rule(self) -> Rule:
        return Rule(self.route, methods=[self.method])

    def setup(self) -> None:
        self.server.register_provider(self)

    def stop(self) -> None:
        self.server.unregister_provider(self)
        super().stop()

    @property
    def service_name(self) -> str:
        return self.container.service_name

    @property
    def summary(self) -> str:
        method = getattr(self.container.service_cls, self.method_name)
        return (method.__doc__ or self.method_name.replace("_", " ")).strip().splitlines()[0]

    # -- request ------------------------------------------------------------------------------

    def handle_request(self, request: Request) -> Response:
        request.shallow = False  # the front door matched routes without reading the body
        started = time.perf_counter()
        correlation_id = request.headers.get("X-Correlation-ID") or str(uuid.uuid4())
        logs.correlation_id.set(correlation_id)
        outcome = "ok"
        try:
            context = self._context(request, correlation_id)
            kwargs = dict(request.path_values)
            body = context.pop("_body")
            if isinstance(body, RawBody):
                kwargs["body"] = body.text
            elif self.body_schema is not None:
                kwargs["body"] = self._load(self.body_schema, body)
            if self.args_schema is not None:
                kwargs["args"] = self._load(self.args_schema, request.args.to_dict())
            args = (request,)
            self.check_signature(args, kwargs)
            done = GreenEvent()
            self.container.spawn_worker(
                self,
                args,
                kwargs,
                context_data=context,
                handle_result=partial(self._handle_result, done),
            )
            response = self.respond(done.wait())
            if response.headers.get("Idempotent-Replayed"):
                outcome = "replayed"
        except DBAPIError as exc:
            outcome = "error"
            log.warning("database unavailable in %s %s: %s", self.method, self.route, exc)
            response = problem_response(
                ServiceUnavailable("the database is unavailable; retry shortly"), request.path
            )
        except Problem as problem:
            outcome = "conflict" if problem.status == 409 else "client_error"
            if problem.status >= 500:
                outcome = "error"
            response = problem_response(problem, request.path)
        except Exception:
            outcome = "error"
            log.exception("unhandled error in %s %s", self.method, self.route)
            response = problem_response(
                Problem(f"internal error; quote correlation id {correlation_id}"), request.path
            )
        response.headers["X-Correlation-ID"] = correlation_id
        if self.method in BODY_METHODS:
            metrics.COMMANDS.labels(self.service_name, self.method_name, outcome).inc()
        metrics.REQUEST_LATENCY.labels(
            self.service_name, self.method, self.method_name, str(response.status_code)
        ).observe(time.perf_counter() - started)
        return response

    @staticmethod
    def _handle_result(done: GreenEvent, _worker_ctx: Any, result: Any, exc_info: Any) -> Any:
        done.send(result, exc_info)  # wait() re-raises the worker's exception
        return result, exc_info

    def _context(self, request: Request, correlation_id: str) -> dict[str, Any]:
        """Authenticate, read the body and the Idempotency-Key: the worker's context data."""
        context: dict[str, Any] = {
            "correlation_id": correlation_id,
            "request_id": request.headers.get("X-Request-ID") or str(uuid.uuid4()),
        }
        if self.roles is not None:
            principal = auth.authenticate(
                self.container.config["SECRET"], request.headers.get("Authorization")
            )
            auth.authorise(principal, self.roles)
            context["principal"] = principal.claims()
        body = self._read_json(request) if self.method in BODY_METHODS else None
        context["_body"] = body
        key = request.headers.get("Idempotency-Key")
        if key is not None and self.method in BODY_METHODS:
            if not IDEMPOTENCY_KEY.match(key):
                raise BadRequest(
                    "Idempotency-Key must be 1-200 printable ASCII characters",
                    errors={"Idempotency-Key": ["1-200 printable ASCII characters"]},
                )
            context["idempotency_key"] = key
            if isinstance(body, RawBody):
                parts = (body.media_type, request.args.to_dict(flat=False), body.raw)
                context["fingerprint"] = fingerprint(self.method, request.path, *parts)
            else:
                context["fingerprint"] = fingerprint(self.method, request.path, body)
        return context

    def _read_json(self, request: Request) -> Any:
        """The JSON body; or, for a media type in ``raw_body``, its decoded text."""
        raw = request.get_data(cache=True)
        if request.mimetype in self.raw_body:
            return self._read_raw(request, raw)
        if not raw:
            return {}
        if request.mimetype != "application/json":
            if self.raw_body:
                accepted = ", ".join(("application/json", *self.raw_body))
                raise UnsupportedMediaType(
                    f"the request body must be one of {accepted}",
                    errors={"Content-Type": [f"expected {accepted}, got {request.mimetype!r}"]},
                )
            raise BadRequest(
                "the request body must be application/json",
                errors={"Content-Type": [f"expected application/json, got {request.mimetype!r}"]},
            )
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None

    @staticmethod
    def _read_raw(request: Request, raw: bytes) -> RawBody:
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(
                f"a {request.mimetype} body must be UTF-8",
                errors={"Content-Type": [f"expected charset=utf-8, got {charset!r}"]},
            )
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadRequest(
                f"the request body is not valid UTF-8: {exc}",
                errors={"body": ["not valid UTF-8"]},
            ) from None
        return RawBody(request.mimetype, text, hashlib.sha256(raw).hexdigest())

    @staticmethod
    def _load(schema: ma.Schema, data: Any) -> Any:
        if not isinstance(data, dict):
            raise Unprocessable(
                "the request body must be a JSON object", errors={"_schema": ["not an object"]}
            )
        try:
            return schema.load(data)
        except ma.ValidationError as exc:
            raise Unprocessable(
                "the request has invalid fields", errors=_flatten(exc.normalized_messages())
            ) from None

    # -- response -----------------------------------------------------------------------------

    def render(self, result: Any) -> tuple[int, str]:
        """The (status, JSON body) of a result; also what an Idempotency-Key stores."""
        if self.response_schema is not None:
            result = self.response_schema.dump(result, many=self.many)
        return self.status, json.dumps(result, ensure_ascii=False)

    def respond(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if isinstance(result, Outcome):
            if result.replayed is not None:
                stored = result.replayed
                return Response(
                    stored.body,
                    status=stored.status,
                    content_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
            result = result.result
        status, body = self.render(result)
        return Response(body, status=status, content_type="application/json")


@dataclass(frozen=True)
class RawBody:
    """A body read as text (``raw_body``): its media type, the text and the bytes' SHA-256."""

    media_type: str
    text: str
    raw: str


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as ``{"field.sub": [...]}``: one key per field at fault."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                flat[name] = value
            else:
                flat.update(_flatten(value, name))
    elif isinstance(messages, list):
        flat[prefix or "_schema"] = [str(m) for m in messages]
    return flat


def command(method: str, url: str, **kwargs: Any) -> Any:
    """A state-changing endpoint (POST/PUT/PATCH/DELETE)."""
    return Endpoint.decorator(method, url, **kwargs)


def query(url: str, **kwargs: Any) -> Any:
    """A read-only GET endpoint."""
    return Endpoint.decorator("GET", url, **kwargs)
