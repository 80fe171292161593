"""Configuration from the environment, the same for every service process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

#: Business dates (periods, deadlines, membership days) are days in the district's time zone.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
SERVICES = ("alliance", "land", "trusteeship", "finance", "commerce", "ranking")

# The built-in secret lets a developer run and test without setup; production refuses it.
DEVELOPMENT_SECRET = "clustergov-development-secret-do-not-use-in-production"
EMBEDDED_AMQP_URI = "memory://"


class ConfigurationError(Exception):
    """The environment describes a process that must not start."""


@dataclass(frozen=True)
class Settings:
    env: str
    amqp_uri: str
    database_url: str
    http_address: str
    secret: str
    var_dir: Path
    service_url: str
    relay: bool
    catch_up_interval: float
    #: RabbitMQ's management API (``clustergov bank provision``), e.g.
    #: http://user:pass@rabbitmq:15672/ ; None: the AMQP host on port 15672, AMQP credentials.
    rabbitmq_management_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        var_dir = Path(environ.get("CLUSTERGOV_VAR_DIR", "var"))
        return cls(
            env=environ.get("CLUSTERGOV_ENV", "development"),
            amqp_uri=environ.get("CLUSTERGOV_AMQP_URI", EMBEDDED_AMQP_URI),
            database_url=environ.get(
                "CLUSTERGOV_DATABASE_URL", f"sqlite:///{var_dir.as_posix()}/{{service}}.db"
            ),
            http_address=environ.get("CLUSTERGOV_HTTP_ADDRESS", "127.0.0.1:8000"),
            secret=environ.get("CLUSTERGOV_SECRET", DEVELOPMENT_SECRET),
            var_dir=var_dir,
            # Where a service's notification log is, for consumers catching up; {service}
            # becomes the source (e.g. http://clustergov-{service}:8000). Default: this process.
            service_url=environ.get("CLUSTERGOV_SERVICE_URL", ""),
            relay=environ.get("CLUSTERGOV_RELAY", "on").lower() not in {"off", "0", "false"},
            catch_up_interval=float(environ.get("CLUSTERGOV_CATCH_UP_INTERVAL", "30")),
            rabbitmq_management_url=environ.get("CLUSTERGOV_RABBITMQ_MANAGEMENT_URL") or None,
        )

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def embedded_broker(self) -> bool:
        return self.amqp_uri.startswith("memory://")

    def database_url_for(self, service: str) -> str:
        return self.database_url.replace("{service}", service)

    def check(self) -> None:
        """Refuse configurations that would be unsafe to run."""
        if self.production and self.secret == DEVELOPMENT_SECRET:
            raise ConfigurationError(
                "CLUSTERGOV_ENV=production with the built-in development secret: "
                "set CLUSTERGOV_SECRET to a long random value (e.g. `openssl rand -hex 32`)"
            )
        if self.production and len(self.secret) < 32:
            raise ConfigurationError(
                "CLUSTERGOV_SECRET must be at least 32 characters in production"
            )
        if "{service}" not in self.database_url:
            # One shared database would mix every service's events table.
            raise ConfigurationError(
                "CLUSTERGOV_DATABASE_URL needs a {service} placeholder so each service "
                "gets its own database, e.g. postgresql://user@db/clustergov_{service}"
            )
