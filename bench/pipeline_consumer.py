"""An unordered consumer of the sample service's events, for ``bench/pipeline.py``.

``pipelineview`` subscribes to the same event types as ``tests.sample_view`` (ledgerview) but
without ``ordered=True``: each event is applied as it arrives, still exactly once through the
inbox. Its projection records when each event arrived (``time.time()`` in the handler, written in
the handler's transaction, as a real projection's change would be), so the benchmark can join
arrival times with commit times per event.

Run by the benchmark as ``clustergov up --services bench.pipeline_consumer:PipelineViewService``.
"""

from __future__ import annotations

import time

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Uuid
from sqlalchemy.engine import Connection

from shared.consumers import subscribe
from shared.eventstore import RecordedEvent
from shared.projections import Projection
from shared.service import ServiceBase

TYPES = ("AmountDeposited", "AmountWithdrawn", "LedgerOpened")

arrivals_model = MetaData()
arrivals = Table(
    "arrivals",
    arrivals_model,
    Column("event_id", Uuid, primary_key=True),
    Column("stream_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    #: Seconds since the epoch, when the handler ran (before its transaction committed).
    Column("arrived_at", Float(precision=53), nullable=False),
)


#: Built once, as a projection should: building a statement per event costs more than running it.
RECORD_ARRIVAL = arrivals.insert()


class Arrivals(Projection):
    metadata = arrivals_model
    source = "sample"
    handles = frozenset(TYPES)

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        db.execute(
            RECORD_ARRIVAL,
            {
                "event_id": event.event_id,
                "stream_id": event.stream_id,
                "version": event.version,
                "arrived_at": time.time(),
            },
        )


class PipelineViewService(ServiceBase):
    name = "pipelineview"
    arrivals = Arrivals()
    projections = [arrivals]

    @subscribe("sample", TYPES)
    def on_sample_event(self, event: RecordedEvent, db: Connection) -> None:
        self.arrivals.apply(event, db)
