"""Aggregates of the alliance service: plain Python, commands in, events out, no I/O.

* :class:`Alliance` — a district alliance or a town/street sub-alliance under it.
* :class:`Cluster` — a cluster (组团) inside an alliance.
* :class:`MemberUnit` — a member unit and its memberships over time. It enforces "a village is in
  at most one cluster of an alliance at a time" across its own memberships, so two concurrent
  joins of one village collide on its stream instead of both succeeding.
* :class:`Task` — a key task, its progress, completion, verification and schedule state.
* :class:`Activity` — one activity record, on the stream of its unit, type and instant; rejects a
  second record of the same unit, type and instant.
* :class:`Talent` — a person registered to a cluster.

Command methods take the business day (``today`` or a date from the request); none reads the
clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from shared.aggregate import Aggregate, applies
from shared.config import LOCAL_TZ
from shared.errors import Conflict, DomainError

from .events import (
    ActivityRecorded,
    AllianceFounded,
    ClusterFormed,
    MemberJoined,
    MemberLeft,
    MemberUnitRegistered,
    TalentRegistered,
    TaskAssigned,
    TaskBackOnTrack,
    TaskCompletionSubmitted,
    TaskFellBehind,
    TaskOverdue,
    TaskProgressReported,
    TaskReturned,
    TaskVerified,
)

SHARE = Decimal("0.0001")


class Alliance(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.district = ""
        self.name = ""
        self.level = ""
        self.parent_alliance_id: str | None = None

    def found(self, district: str, name: str, level: str, parent: Alliance | None) -> None:
        if level == "district" and parent is not None:
            raise DomainError("a district alliance has no parent alliance", "parent_alliance_id")
        if level == "town":
            if parent is None:
                raise DomainError(
                    "a town/street sub-alliance needs its district alliance as parent",
                    "parent_alliance_id",
                )
            if parent.level != "district" or parent.district != district:
                raise DomainError(
                    f"alliance {parent.id!r} is not a district alliance of {district!r}",
                    "parent_alliance_id",
                )
        self.trigger(
            AllianceFounded,
            alliance_id=self.id,
            district=district,
            name=name,
            level=level,
            parent_alliance_id=parent.id if parent else None,
        )

    @applies(AllianceFounded)
    def _founded(self, data: dict[str, Any]) -> None:
        self.district, self.name, self.level = data["district"], data["name"], data["level"]
        self.parent_alliance_id = data["parent_alliance_id"]


class Cluster(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.alliance_id = ""
        self.district = ""
        self.name = ""
        self.theme_industry = ""
        self.lead_unit_id: str | None = None

    def form(
        self, alliance: Alliance, name: str, theme_industry: str, lead: MemberUnit | None
    ) -> None:
        if lead is not None and lead.district != alliance.district:
            raise DomainError(
                f"unit {lead.id!r} is in district {lead.district!r}, not {alliance.district!r}",
                "lead_unit_id",
            )
        self.trigger(
            ClusterFormed,
            cluster_id=self.id,
            alliance_id=alliance.id,
            district=alliance.district,
            name=name,
            theme_industry=theme_industry,
            lead_unit_id=lead.id if lead else None,
        )

    @applies(ClusterFormed)
    def _formed(self, data: dict[str, Any]) -> None:
        self.alliance_id, self.district = data["alliance_id"], data["district"]
        self.name, self.theme_industry = data["name"], data["theme_industry"]
        self.lead_unit_id = data["lead_unit_id"]


@dataclass
class Membership:
    cluster_id: str
    alliance_id: str
    joined_on: date
    left_on: date | None = None

    def covers(self, on: date) -> bool:
        return self.joined_on <= on and (self.left_on is None or on < self.left_on)


class MemberUnit(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.district = ""
        self.name = ""
        self.unit_type = ""
        self.village: dict[str, Any] | None = None
        self.bank_code: str | None = None
        self.memberships: list[Membership] = []

    @property
    def is_village(self) -> bool:
        return self.unit_type == "village"

    def register(
        self,
        district: str,
        name: str,
        unit_type: str,
        village: dict[str, Any] | None,
        bank_code: str | None,
    ) -> None:
        if unit_type == "village" and village is None:
            raise DomainError(
                "a village needs population, households, contracted_area_mu and weak",
                "village",
            )
        if unit_type != "village" and village is not None:
            raise DomainError(f"a {unit_type} carries no village facts", "village")
        if unit_type == "bank" and not bank_code:
            raise DomainError("a bank needs its bank_code", "bank_code")
        if unit_type != "bank" and bank_code:
            raise DomainError(f"a {unit_type} has no bank_code", "bank_code")
        self.trigger(
            MemberUnitRegistered,
            unit_id=self.id,
            district=district,
            name=name,
            unit_type=unit_type,
            village=village,
            bank_code=bank_code,
        )

    def cluster_on(self, on: date, alliance_id: str | None = None) -> str | None:
        for membership in self.memberships:
            if membership.covers(on) and alliance_id in (None, membership.alliance_id):
                return membership.cluster_id
        return None

    def is_member(self, cluster_id: str, on: date) -> bool:
        return any(m.cluster_id == cluster_id and m.covers(on) for m in self.memberships)

    def join(self, cluster: Cluster, joined_on: date) -> None:
        if cluster.district != self.district:
            raise DomainError(
                f"cluster {cluster.id!r} is in district {cluster.district!r}; unit {self.id!r} "
                f"is in {self.district!r}",
                "cluster_id",
            )
        for m in self.memberships:
            # A village: one cluster per alliance at a time. Any unit: one stay per cluster.
            same_scope = m.cluster_id == cluster.id or (
                self.is_village and m.alliance_id == cluster.alliance_id
            )
            if not same_scope:
                continue
            if m.left_on is None:
                where = (
                    "this cluster"
                    if m.cluster_id == cluster.id
                    else f"cluster {m.cluster_id!r} of alliance {m.alliance_id!r}"
                )
                raise DomainError(
                    f"unit {self.id!r} is already in {where} since {m.joined_on.isoformat()}; "
                    "it must leave first",
                    "cluster_id",
                )
            if joined_on < m.left_on:
                raise DomainError(
                    f"unit {self.id!r} was in cluster {m.cluster_id!r} until "
                    f"{m.left_on.isoformat()}; a new membership may start on that day at the "
                    "earliest",
                    "joined_on",
                )
        self.trigger(
            MemberJoined,
            cluster_id=cluster.id,
            alliance_id=cluster.alliance_id,
            unit_id=self.id,
            unit_type=self.unit_type,
            joined_on=joined_on,
        )

    def leave(self, cluster_id: str, left_on: date) -> None:
        current = next(
            (m for m in self.memberships if m.cluster_id == cluster_id and m.left_on is None),
            None,
        )
        if current is None:
            raise DomainError(f"unit {self.id!r} is not in cluster {cluster_id!r}", "cluster_id")
        if left_on <= current.joined_on:
            raise DomainError(
                f"left_on must be after joined_on {current.joined_on.isoformat()}", "left_on"
            )
        self.trigger(
            MemberLeft,
            cluster_id=cluster_id,
            alliance_id=current.alliance_id,
            unit_id=self.id,
            unit_type=self.unit_type,
            left_on=left_on,
        )

    @applies(MemberUnitRegistered)
    def _registered(self, data: dict[str, Any]) -> None:
        self.district, self.name, self.unit_type = data["district"], data["name"], data["unit_type"]
        self.village, self.bank_code = data["village"], data["bank_code"]

    @applies(MemberJoined)
    def _joined(self, data: dict[str, Any]) -> None:
        self.memberships.append(
            Membership(data["cluster_id"], data["alliance_id"], data["joined_on"])
        )

    @applies(MemberLeft)
    def _left(self, data: dict[str, Any]) -> None:
        for m in self.memberships:
            if m.cluster_id == data["cluster_id"] and m.left_on is None:
                m.left_on = data["left_on"]


# -- tasks ---------------------------------------------------------------------------------------


def expected_share(starts_on: date, deadline_on: date, as_of: date) -> Decimal:
    """Time-elapsed share (序时进度) at the end of ``as_of``: days elapsed, counting the start
    day and ``as_of`` itself, over the days from start to deadline inclusive; 0 before the
    start, 1 from the deadline day on."""
    total = (deadline_on - starts_on).days + 1
    elapsed = min(max((as_of - starts_on).days + 1, 0), total)
    return (Decimal(elapsed) / Decimal(total)).quantize(SHARE, ROUND_HALF_EVEN)


class Task(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.alliance_id = ""
        self.cluster_id = ""
        self.unit_id: str | None = None
        self.district = ""
        self.indicator = ""
        self.target = Decimal(0)
        self.starts_on = date.min
        self.deadline_on = date.min
        self.progress = Decimal(0)
        self.status = "in_progress"
        self.schedule = "on_track"
        self.evaluated_on: date | None = None

    def assign(
        self,
        cluster: Cluster,
        unit: MemberUnit | None,
        title: str,
        indicator: str,
        measure_unit: str,
        target: Decimal,
        starts_on: date,
        deadline_on: date,
    ) -> None:
        if deadline_on < starts_on:
            raise DomainError(
                f"deadline {deadline_on.isoformat()} is before the start {starts_on.isoformat()}",
                "deadline_on",
            )
        if unit is not None and not unit.is_member(cluster.id, starts_on):
            raise DomainError(
                f"unit {unit.id!r} is not a member of cluster {cluster.id!r} on "
                f"{starts_on.isoformat()}",
                "unit_id",
            )
        self.trigger(
            TaskAssigned,
            task_id=self.id,
            alliance_id=cluster.alliance_id,
            cluster_id=cluster.id,
            unit_id=unit.id if unit else None,
            district=cluster.district,
            title=title,
            indicator=indicator,
            measure_unit=measure_unit,
            target_quantity=target,
            starts_on=starts_on,
            deadline_on=deadline_on,
        )

    def _about(self) -> dict[str, Any]:
        return {"task_id": self.id, "cluster_id": self.cluster_id, "unit_id": self.unit_id}

    def _require_open(self, action: str) -> None:
        if self.status == "verified":
            raise DomainError(
                f"task {self.id!r} is verified and closed; cannot {action}", "task_id"
            )

    def report_progress(
        self, quantity: Decimal, evidence_note: str, reporter: str, reported_on: date
    ) -> None:
        self._require_open("report progress")
        if self.status == "submitted":
            raise DomainError(
                f"task {self.id!r} awaits verification of its completion; cannot report progress",
                "task_id",
            )
        cumulative = self.progress + quantity
        if cumulative < 0:
            raise DomainError(
                f"progress would go negative ({cumulative}); reported so far {self.progress}",
                "quantity",
            )
        self.trigger(
            TaskProgressReported,
            **self._about(),
            quantity=quantity,
            cumulative_quantity=cumulative,
            evidence_note=evidence_note,
            reporter=reporter,
            reported_on=reported_on,
        )

    def submit_completion(self, note: str, submitted_on: date) -> None:
        self._require_open("submit completion")
        if self.status == "submitted":
            raise DomainError(f"task {self.id!r} completion is already submitted", "task_id")
        if self.progress < self.target:
            raise DomainError(
                f"progress {self.progress} has not reached the target {self.target}", "task_id"
            )
        self.trigger(
            TaskCompletionSubmitted,
            **self._about(),
            completed_quantity=self.progress,
            note=note,
            submitted_on=submitted_on,
        )

    def _require_submitted(self, action: str) -> None:
        self._require_open(action)
        if self.status != "submitted":
            raise DomainError(
                f"task {self.id!r} has no submitted completion to {action}", "task_id"
            )

    def verify(self, verified_on: date, verifier: str) -> None:
        self._require_submitted("verify")
        self.trigger(
            TaskVerified,
            **self._about(),
            indicator=self.indicator,
            target_quantity=self.target,
            completed_quantity=self.progress,
            verified_on=verified_on,
            verifier=verifier,
        )

    def return_completion(self, reason: str, returned_on: date) -> None:
        self._require_submitted("return")
        self.trigger(TaskReturned, **self._about(), reason=reason, returned_on=returned_on)

    # -- schedule (序时进度) ---------------------------------------------------------------------

    def progress_share(self) -> Decimal:
        return min(self.progress / self.target, Decimal(1)).quantize(SHARE, ROUND_HALF_EVEN)

    def evaluate(self, as_of: date, tolerance: Decimal) -> str | None:
        """Emit the schedule state change as of a day, if any; the new state, or None.

        A sweep for a day before one already evaluated changes nothing, so an out-of-order or
        repeated sweep never flips a task back and forth."""
        if self.status == "verified" or (self.evaluated_on and as_of < self.evaluated_on):
            return None
        expected = expected_share(self.starts_on, self.deadline_on, as_of)
        progress = self.progress_share()
        shares = {"as_of": as_of, "progress_share": progress, "expected_share": expected}
        if as_of > self.deadline_on:
            state = "overdue"
        elif progress < expected - tolerance:
            state = "behind"
        else:
            state = "on_track"
        if state == self.schedule:
            return None
        if state == "overdue":
            self.trigger(TaskOverdue, **self._about(), **shares, deadline_on=self.deadline_on)
        elif state == "behind":
            self.trigger(TaskFellBehind, **self._about(), **shares, tolerance=tolerance)
        else:
            self.trigger(TaskBackOnTrack, **self._about(), **shares, tolerance=tolerance)
        return state

    @applies(TaskAssigned)
    def _assigned(self, data: dict[str, Any]) -> None:
        self.alliance_id, self.cluster_id = data["alliance_id"], data["cluster_id"]
        self.unit_id, self.district = data["unit_id"], data["district"]
        self.indicator, self.target = data["indicator"], data["target_quantity"]
        self.starts_on, self.deadline_on = data["starts_on"], data["deadline_on"]

    @applies(TaskProgressReported)
    def _progressed(self, data: dict[str, Any]) -> None:
        self.progress = data["cumulative_quantity"]

    @applies(TaskCompletionSubmitted)
    def _submitted(self, data: dict[str, Any]) -> None:
        self.status = "submitted"

    @applies(TaskVerified)
    def _verified(self, data: dict[str, Any]) -> None:
        self.status = "verified"

    @applies(TaskReturned)
    def _returned(self, data: dict[str, Any]) -> None:
        self.status = "in_progress"

    @applies(TaskFellBehind)
    def _behind(self, data: dict[str, Any]) -> None:
        self.schedule, self.evaluated_on = "behind", data["as_of"]

    @applies(TaskBackOnTrack)
    def _on_track(self, data: dict[str, Any]) -> None:
        self.schedule, self.evaluated_on = "on_track", data["as_of"]

    @applies(TaskOverdue)
    def _overdue(self, data: dict[str, Any]) -> None:
        self.schedule, self.evaluated_on = "overdue", data["as_of"]


# -- activity and talent -------------------------------------------------------------------------


def activity_id_of(unit_id: str, activity_type: str, occurred_at: datetime) -> str:
    """The stream of one unit's activity of one type at one instant (in Asia/Shanghai)."""
    return f"{unit_id}/activities/{activity_type}@{occurred_at.astimezone(LOCAL_TZ).isoformat()}"


class DuplicateActivity(Conflict):
    def __init__(self, message: str) -> None:
        super().__init__(message, errors={"occurred_at": [message]})


class Activity(Aggregate):
    """One activity record, on the stream of its unit, type and instant
    (:func:`activity_id_of`): a second record of the same unit, type and instant finds the stream
    taken, while different activities of one unit never share a stream, so concurrent reports
    of a busy unit do not collide. (Records made before this design are on one stream per unit,
    ``<unit_id>/activities``; the service checks the read model for those.)"""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.activity_id: str | None = None

    def record(
        self,
        activity_id: str,
        unit: MemberUnit,
        activity_type: str,
        title: str,
        occurred_at: datetime,
        participants: int | None,
        reporter: str,
    ) -> None:
        if self.activity_id is not None:
            raise DuplicateActivity(
                f"unit {unit.id!r} already recorded a {activity_type} at "
                f"{occurred_at.isoformat()} (activity {self.activity_id!r})"
            )
        local = occurred_at.astimezone(LOCAL_TZ)
        self.trigger(
            ActivityRecorded,
            activity_id=activity_id,
            unit_id=unit.id,
            district=unit.district,
            activity_type=activity_type,
            title=title,
            occurred_at=local,
            occurred_on=local.date(),
            participants=participants,
            reporter=reporter,
        )

    @applies(ActivityRecorded)
    def _recorded(self, data: dict[str, Any]) -> None:
        self.activity_id = data["activity_id"]


class Talent(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.cluster_id = ""

    def register(
        self,
        cluster: Cluster,
        village: MemberUnit | None,
        name: str,
        category: str,
        registered_on: date,
    ) -> None:
        if village is not None:
            if not village.is_village:
                raise DomainError(f"unit {village.id!r} is not a village", "village_id")
            if not village.is_member(cluster.id, registered_on):
                raise DomainError(
                    f"village {village.id!r} is not in cluster {cluster.id!r} on "
                    f"{registered_on.isoformat()}",
                    "village_id",
                )
        self.trigger(
            TalentRegistered,
            talent_id=self.id,
            cluster_id=cluster.id,
            village_id=village.id if village else None,
            district=cluster.district,
            name=name,
            category=category,
            registered_on=registered_on,
        )

    @applies(TalentRegistered)
    def _registered(self, data: dict[str, Any]) -> None:
        self.cluster_id = data["cluster_id"]
