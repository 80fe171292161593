"""One HTTP front door per process.

nameko gives every service container its own ``WebServer``, and each would bind the same port when
several services share a process (``clustergov up``). Here the containers' servers register their
routes with one process-wide :class:`FrontDoor` per bind address instead.

The front door also answers ``/healthz``, ``/readyz``, ``/metrics`` and each service's
``openapi.json`` itself, in the connection's own green thread: they never wait for a nameko worker
slot, so they answer even when every worker is busy.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import eventlet
from eventlet import wsgi
from kombu import Connection
from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.web.server import HttpOnlyProtocol, WebServer, parse_address
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from shared import metrics
from shared.amqp import is_embedded
from shared.errors import PROBLEM_JSON, MethodNotAllowed, NotFound, Problem

log = logging.getLogger(__name__)

#: A readiness probe: returns None when ready, or a short reason when not.
Probe = Callable[[], str | None]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    return Response(
        json.dumps(problem.to_dict(instance), ensure_ascii=False),
        status=problem.status,
        headers=problem.headers,
        content_type=PROBLEM_JSON,
    )


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, content_type="application/json"
    )


class FrontDoor:
    """The listening socket of one address, shared by every service container in the process."""

    _by_address: dict[tuple[str, int], FrontDoor] = {}

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.servers: list[ApiServer] = []
        self.probes: dict[str, Probe] = {}
        self.mounts: dict[str, WsgiApp] = {}
        #: Apps mounted on paths a predicate accepts (e.g. ``.../<id>/stream`` among API routes).
        self.matched_mounts: list[tuple[Callable[[str], bool], WsgiApp]] = []
        self._url_map: Map | None = Map()
        self._sock: Any = None
        self._gt: Any = None

    @classmethod
    def for_config(cls, config: dict[str, Any]) -> FrontDoor:
        """The front door of a container's ``WEB_SERVER_ADDRESS`` (nameko's default port)."""
        return cls.at(bind_address(config.get(WEB_SERVER_CONFIG_KEY, "0.0.0.0:8000")))

    @classmethod
    def at(cls, address: tuple[str, int]) -> FrontDoor:
        door = cls._by_address.get(address)
        if door is None:
            door = cls._by_address[address] = cls(address)
        return door

    # -- lifecycle ----------------------------------------------------------------------------

    def register(self, server: ApiServer) -> None:
        self.servers.append(server)
        self.invalidate()
        self.open()

    def unregister(self, server: ApiServer) -> None:
        if server in self.servers:
            self.servers.remove(server)
            self.invalidate()
        if not self.servers:
            self.close()

    def open(self) -> None:
        """Start listening (also for a process with no API, only /healthz, /readyz, /metrics)."""
        if self._sock is None:
            self._sock = eventlet.listen(self.address)
            self._gt = eventlet.spawn(self._serve, self._sock)

    def close(self) -> None:
        if self._sock is not None:
            sock, gt = self._sock, self._gt
            self._sock = self._gt = None
            self._by_address.pop(self.address, None)
            gt.kill()
            sock.close()

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    def invalidate(self) -> None:
        """The routes changed: rebuild them on the next request. Compiling every rule again for
        each endpoint that stops made stopping a process with a hundred endpoints take seconds."""
        self._url_map = None

    def url_map(self) -> Map:
        if self._url_map is None:
            url_map = Map()
            for server in self.servers:
                for provider in server.providers():
                    rule = provider.get_url_rule()
                    rule.endpoint = provider
                    url_map.add(rule)
            self._url_map = url_map
        return self._url_map

    def _serve(self, sock: Any) -> None:
        wsgi.server(
            sock,
            self,
            protocol=HttpOnlyProtocol,
            log=logging.getLogger("clustergov.access"),
            log_output=False,
            socket_timeout=60,
        )

    # -- routing ------------------------------------------------------------------------------

    def add_probe(self, name: str, probe: Probe) -> None:
        self.probes[name] = probe

    def mount(self, prefix: str, app: WsgiApp) -> None:
        """Serve a plain WSGI app (e.g. the big screen) under ``prefix``."""
        self.mounts[prefix] = app

    def mount_matching(self, match: Callable[[str], bool], app: WsgiApp) -> None:
        """Serve a plain WSGI app, in the connection's own green thread, on every path that
        ``match`` accepts: for a long-lived response (Server-Sent Events) on a path that sits
        among a service's routes, where a prefix mount would take the routes as well."""
        self.matched_mounts.append((match, app))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        ops = self._ops_response(path)
        if ops is not None:
            return ops(environ, start_response)
        for prefix, app in self.mounts.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return app(environ, start_response)
        for match, app in self.matched_mounts:
            if match(path):
                return app(environ, start_response)
        request = Request(environ, shallow=True)
        adapter = self.url_map().bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except WerkzeugMethodNotAllowed as exc:
            allowed = ", ".join(exc.valid_methods or ())
            response = problem_response(
                MethodNotAllowed(f"allowed methods: {allowed}", headers={"Allow": allowed}), path
            )
        except WerkzeugNotFound:
            response = problem_response(NotFound(f"no resource at {path}"), path)
        else:
            request.path_values = values
            response = provider.handle_request(request)
        return response(environ, start_response)

    def _ops_response(self, path: str) -> Response | None:
        if path == "/healthz":
            return json_response({"status": "ok"})
        if path == "/readyz":
            return self._readiness()
        if path == "/metrics":
            body, content_type = metrics.exposition()
            return Response(body, content_type=content_type)
        if path.endswith("/openapi.json"):
            for server in self.servers:
                if path == f"/api/v1/{server.service_name}/openapi.json":
                    return json_response(server.openapi())
        return None

    def _readiness(self) -> Response:
        checks: dict[str, str] = {}
        ready = True
        for name, probe in list(self.probes.items()):
            started = time.perf_counter()
            try:
                reason = probe()
            except Exception as exc:  # a probe that raises reports, it does not crash /readyz
                reason = f"{type(exc).__name__}: {exc}"
            if reason is None:
                checks[name] = f"ok ({(time.perf_counter() - started) * 1000:.1f} ms)"
            else:
                checks[name] = reason
                ready = False
        return json_response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )


class ApiServer(WebServer):
    """A container's web server: registers its routes with the process's front door."""

    def __init__(self) -> None:
        super().__init__()
        self.door: FrontDoor | None = None

    @property
    def service_name(self) -> str:
        return self.container.service_name

    def providers(self) -> list[Any]:
        return list(self._providers)

    def start(self) -> None:
        if self.door is None:
            self.door = FrontDoor.for_config(self.container.config)
            self.door.register(self)
            amqp_uri = self.container.config.get("AMQP_URI", "")
            if not is_embedded(amqp_uri):
                self.door.add_probe("broker", partial(broker_probe, amqp_uri))

    def unregister_provider(self, provider: Any) -> None:
        # Stop routing to an entrypoint as soon as it stops, not when the whole container has.
        super().unregister_provider(provider)
        if self.door is not None:
            self.door.invalidate()

    def stop(self) -> None:
        if self.door is not None:
            self.door.unregister(self)
            self.door = None
        # Skip WebServer.stop: the front door owns the socket.
        super(WebServer, self).stop()

    def openapi(self) -> dict[str, Any]:
        from shared.openapi import build_spec

        return build_spec(self.service_name, self.providers())


def broker_probe(amqp_uri: str) -> str | None:
    with Connection(amqp_uri, connect_timeout=2) as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
    return None


def bind_address(address: str) -> tuple[str, int]:
    parsed = parse_address(address)
    return (parsed.address or "0.0.0.0", parsed.port)
