"""Prometheus metrics, all labelled by service. One process registry serves /metrics."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from shared.eventstore import RecordedEvent

COMMANDS = Counter(
    "clustergov_commands_total",
    "Commands handled over HTTP, by outcome (ok, replayed, client_error, conflict, error)",
    ["service", "endpoint", "outcome"],
)
REQUEST_LATENCY = Histogram(
    "clustergov_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "endpoint", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_APPENDED = Counter(
    "clustergov_events_appended_total", "Events appended to the store", ["service", "type"]
)
APPEND_LATENCY = Histogram(
    "clustergov_event_store_append_seconds",
    "Time to append and commit one command's events",
    ["service"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
CONCURRENCY_RETRIES = Counter(
    "clustergov_concurrency_retries_total",
    "Commands retried after an optimistic-concurrency conflict",
    ["service"],
)


def observe_append(service: str, events: Sequence[RecordedEvent], seconds: float) -> None:
    if not events:
        return
    APPEND_LATENCY.labels(service).observe(seconds)
    for recorded in events:
        EVENTS_APPENDED.labels(service, recorded.type).inc()


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


# -- delivery --------------------------------------------------------------------------------

RELAY_PUBLISHED = Counter(
    "clustergov_relay_published_total",
    "Events the relay published and the broker confirmed",
    ["service"],
)
RELAY_UNROUTABLE = Counter(
    "clustergov_relay_unroutable_total",
    "Events published while no queue was bound to their type (later subscribers catch up)",
    ["service"],
)
RELAY_BATCH_SECONDS = Histogram(
    "clustergov_relay_batch_seconds",
    "Time to publish and confirm one relay batch",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
RELAY_LAG_EVENTS = Gauge(
    "clustergov_relay_lag_events", "Stored events the relay has not yet published", ["service"]
)
RELAY_LAG_SECONDS = Gauge(
    "clustergov_relay_lag_seconds",
    "Age of the oldest event the relay has not yet published",
    ["service"],
)
CONSUMED = Counter(
    "clustergov_events_consumed_total", "Events a handler applied", ["service", "handler"]
)
SKIPPED = Counter(
    "clustergov_events_skipped_total",
    "Redelivered or already-applied events skipped by the inbox",
    ["service", "handler"],
)
FAILED = Counter(
    "clustergov_events_failed_total", "Handler attempts that raised", ["service", "handler"]
)
DEAD_LETTERED = Counter(
    "clustergov_events_dead_lettered_total",
    "Events parked in the dead-letter queue",
    ["service", "handler"],
)
HANDLER_LATENCY = Histogram(
    "clustergov_handler_duration_seconds",
    "Event handler latency, including its transaction",
    ["service", "handler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
