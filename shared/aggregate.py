"""Aggregates: plain Python objects. Command methods check invariants and ``trigger`` events;
methods marked ``@applies`` only change state. No I/O here: the unit of work loads and saves."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from shared import events as event_types
from shared.eventstore import RecordedEvent, Snapshot

F = TypeVar("F", bound=Callable[..., None])


def applies(event_cls: type[event_types.Event]) -> Callable[[F], F]:
    """Mark a method as the state change for one event type: ``def _(self, data)``."""

    def mark(fn: F) -> F:
        fn.__applies__ = event_cls.TYPE  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(frozen=True)
class PendingEvent:
    type: str
    schema_version: int
    data: dict[str, Any]
    version: int


class Aggregate:
    #: Stream type stored with each event; defaults to the class name.
    stream_type: ClassVar[str] = ""
    #: Save a snapshot every N versions (None: never). Needs ``to_snapshot``/``from_snapshot``.
    snapshot_every: ClassVar[int | None] = None
    _appliers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("stream_type"):
            cls.stream_type = cls.__name__
        appliers = dict(cls._appliers)
        for name, member in cls.__dict__.items():
            if hasattr(member, "__applies__"):
                appliers[member.__applies__] = name
        cls._appliers = appliers

    def __init__(self, id: str) -> None:
        self.id = id
        self.version = 0
        self._pending: list[PendingEvent] = []

    # -- deciding -----------------------------------------------------------------------------

    def trigger(self, event_cls: type[event_types.Event], **data: Any) -> None:
        """Record that something happened: validate through the contract, then apply it."""
        stored, loaded = event_types.dump(event_cls, data)
        self._apply(event_cls.TYPE, loaded)
        self.version += 1
        self._pending.append(PendingEvent(event_cls.TYPE, event_cls.VERSION, stored, self.version))

    def collect(self) -> list[PendingEvent]:
        pending, self._pending = self._pending, []
        return pending

    @property
    def is_new(self) -> bool:
        return self.version == len(self._pending)

    @property
    def has_pending(self) -> bool:
        """Whether it has events not yet collected for saving."""
        return bool(self._pending)

    # -- applying -----------------------------------------------------------------------------

    def _apply(self, type_name: str, data: dict[str, Any]) -> None:
        method = self._appliers.get(type_name)
        if method is None:
            raise TypeError(f"{type(self).__name__} has no @applies for {type_name}")
        getattr(self, method)(data)

    @classmethod
    def rehydrate(
        cls, id: str, history: Iterable[RecordedEvent], snapshot: Snapshot | None = None
    ) -> Self:
        aggregate = cls.from_snapshot(id, snapshot.state) if snapshot else cls(id)
        if snapshot:
            aggregate.version = snapshot.version
        for recorded in history:
            aggregate._apply(recorded.type, event_types.load(recorded.type, recorded.data))
            aggregate.version = recorded.version
        return aggregate

    # -- snapshots ----------------------------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} sets snapshot_every but cannot snapshot")

    @classmethod
    def from_snapshot(cls, id: str, state: dict[str, Any]) -> Self:
        raise NotImplementedError(f"{cls.__name__} sets snapshot_every but cannot restore")
