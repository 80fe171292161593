"""Event types are marshmallow schemas: the contract between services.

An event class names its ``TYPE`` and ``VERSION`` and declares its fields. Aggregates emit through
these schemas, so stored data is always JSON-safe (integer fen, decimal strings, ISO times) and
``docs/events`` can be generated from them."""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma


class Event(ma.Schema):
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    class Meta:
        unknown = ma.RAISE


_registry: dict[str, type[Event]] = {}
_instances: dict[str, Event] = {}


def event_type(cls: type[Event]) -> type[Event]:
    """Class decorator registering an event schema under its TYPE (unique per process)."""
    existing = _registry.get(cls.TYPE)
    if existing is not None and existing is not cls:
        raise TypeError(f"event type {cls.TYPE!r} is already declared by {existing.__module__}")
    _registry[cls.TYPE] = cls
    _instances[cls.TYPE] = cls()
    return cls


def schema_for(type_name: str) -> Event:
    try:
        return _instances[type_name]
    except KeyError:
        raise LookupError(f"unknown event type {type_name!r}") from None


def dump(event_cls: type[Event], data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(JSON-safe data to store, the same data loaded back as the domain sees it)."""
    schema = schema_for(event_cls.TYPE)
    stored = schema.dump(data)
    return stored, schema.load(stored)


def load(type_name: str, stored: dict[str, Any]) -> dict[str, Any]:
    return schema_for(type_name).load(stored)


def registered() -> dict[str, type[Event]]:
    return dict(_registry)
