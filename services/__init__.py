"""The six clustergov services, one package each."""

from __future__ import annotations

from importlib import import_module

from shared.config import SERVICES


def service_class(name: str) -> type:
    if name not in SERVICES:
        raise LookupError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    module = import_module(f"services.{name}.service")
    return getattr(module, f"{name.capitalize()}Service")
