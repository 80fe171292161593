"""Event contracts as JSON Schema, generated from the marshmallow event schemas.

Each service's event types live in ``services/<service>/events.py``; their JSON Schemas are
committed under ``docs/events/<service>/<Type>.json`` so consumers outside Python (banks, other
teams) read the contract without reading our code. ``clustergov events export`` writes them and
``--check`` (run by the test suite) fails when a committed schema is stale.
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path
from typing import Any

import marshmallow as ma
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from shared import events as event_types
from shared.config import SERVICES

DOCS = Path(__file__).resolve().parent.parent / "docs" / "events"
DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"


def _decimal_as_string(self: Any, field: ma.fields.Field, **kwargs: Any) -> dict[str, Any]:
    """Decimals travel as strings (areas in mu); apispec would call them numbers."""
    if isinstance(field, ma.fields.Decimal) and field.as_string:
        nullable = ["string", "null"] if field.allow_none else "string"
        return {"type": nullable, "pattern": DECIMAL_PATTERN}
    return {}


def _converter() -> Any:
    # Nested schemas inline (no $ref): each file stands alone.
    plugin = MarshmallowPlugin(schema_name_resolver=lambda schema: None)
    APISpec("events", "1", "3.1.0", plugins=[plugin])
    plugin.converter.add_attribute_function(_decimal_as_string)
    return plugin.converter


def data_schema(event_cls: type[event_types.Event]) -> dict[str, Any]:
    return _converter().schema2jsonschema(event_cls())


def envelope_schema(service: str, event_cls: type[event_types.Event]) -> dict[str, Any]:
    """The whole message a subscriber receives on ``<service>.events``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://clustergov.example/events/{service}/{event_cls.TYPE}.json",
        "title": f"{service}.{event_cls.TYPE} v{event_cls.VERSION}",
        "description": (event_cls.__doc__ or "").strip(),
        "type": "object",
        "required": [
            "event_id",
            "type",
            "schema_version",
            "stream_id",
            "stream_type",
            "version",
            "position",
            "occurred_at",
            "data",
            "metadata",
        ],
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "type": {"const": event_cls.TYPE},
            "schema_version": {"const": event_cls.VERSION},
            "stream_id": {"type": "string"},
            "stream_type": {"type": "string"},
            "version": {"type": "integer", "minimum": 1},
            "position": {"type": "integer"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "data": data_schema(event_cls),
            "metadata": {
                "type": "object",
                "properties": {
                    name: {"type": ["string", "null"]}
                    for name in ("correlation_id", "causation_id", "actor", "district")
                },
            },
        },
    }


def service_events(service: str) -> list[type[event_types.Event]]:
    """The event types declared in ``services/<service>/events.py`` (none yet: empty)."""
    module_name = f"services.{service}.events"
    try:
        import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return []
    return sorted(
        (cls for cls in event_types.registered().values() if cls.__module__ == module_name),
        key=lambda cls: cls.TYPE,
    )


def rendered(service: str) -> dict[str, str]:
    """File name -> JSON text of every event contract of one service."""
    return {
        f"{cls.TYPE}.json": json.dumps(envelope_schema(service, cls), indent=2, ensure_ascii=False)
        + "\n"
        for cls in service_events(service)
    }


def export(docs: Path = DOCS, services: tuple[str, ...] = SERVICES) -> list[Path]:
    written = []
    for service in services:
        files = rendered(service)
        if not files:
            continue
        folder = docs / service
        folder.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in folder.glob("*.json")) - set(files):
            (folder / stale).unlink()
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
            written.append(folder / name)
    return written


def stale(docs: Path = DOCS, services: tuple[str, ...] = SERVICES) -> list[str]:
    """Committed contracts that differ from the code (missing, changed or left over)."""
    problems = []
    for service in services:
        files = rendered(service)
        folder = docs / service
        committed = {p.name for p in folder.glob("*.json")} if folder.is_dir() else set()
        for name in sorted(committed - set(files)):
            problems.append(f"{service}/{name}: no such event type any more")
        for name, text in sorted(files.items()):
            path = folder / name
            if not path.exists():
                problems.append(f"{service}/{name}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{service}/{name}: differs from the code")
    return problems
