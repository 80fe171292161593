"""The alliance service: alliances, clusters, member units and their memberships, key task
lists, activity records and talent.

Creating the directory (what other services' tests need; bodies are JSON, ids client-chosen,
1-64 characters of ``A-Z a-z 0-9 . _ : -``; dates ``YYYY-MM-DD``, default today in Asia/Shanghai):

``POST /api/v1/alliance/alliances`` (district_admin) → 201
    ``{"id", "district", "name", "level": "district"|"town", "parent_alliance_id": null|id}``
``POST /api/v1/alliance/clusters`` (district_admin) → 201
    ``{"id", "alliance_id", "name", "theme_industry", "lead_unit_id": null|unit id}``
``POST /api/v1/alliance/units`` (district_admin, alliance_secretary) → 201
    ``{"id", "district", "name", "unit_type": "village"|"town_committee"|"enterprise_soe"|
    "enterprise_private"|"university"|"department"|"social_organisation"|"bank",
    "village": {"population", "households", "contracted_area_mu": "12.50", "weak"} (villages
    only), "bank_code" (banks only)}``
``POST /api/v1/alliance/units/<unit_id>/memberships`` (join; district_admin, alliance_secretary)
    → 201 ``{"cluster_id", "joined_on"}``
``POST /api/v1/alliance/units/<unit_id>/memberships/<cluster_id>/leave`` → 201 ``{"left_on"}``
    (``left_on`` is the first day outside the cluster)

Who may do what:

* district_admin founds alliances and forms clusters in its district.
* district_admin and alliance_secretary manage members, tasks, verification and talent. A
  secretary's token must carry the ``district`` it works in; a cluster secretary's token may also
  carry a ``cluster``, and then it manages only that cluster. An alliance is identified by its
  district: every alliance secretary of a district manages the alliances of that district.
* village_cadre (token scoped to a ``village``) reports progress on that village's own tasks and
  that village's activity, nothing else.

Rules answer 422 naming the field at fault; a duplicate activity (same unit, type and instant)
answers 409 naming ``occurred_at``, an activity id already taken (by any unit) 409 naming ``id``;
acting outside the token's scope answers 403.

Overdue and behind schedule (序时进度) come from ``POST /api/v1/alliance/sweeps {"as_of"}``, which
emits each task's state change once (see :meth:`services.alliance.domain.Task.evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from nameko.dependency_providers import Config
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from shared import auth
from shared.clock import local_day
from shared.commands import AlreadyExists, UnitOfWork
from shared.config import LOCAL_TZ
from shared.errors import Conflict, DomainError, Forbidden, NotFound
from shared.http import command, query
from shared.periods import period_bounds
from shared.service import ServiceBase

from . import schemas
from .domain import (
    Activity,
    Alliance,
    Cluster,
    DuplicateActivity,
    MemberUnit,
    Talent,
    Task,
    activity_id_of,
)
from .projections import (
    VIEWS,
    activities,
    alliances,
    clusters,
    member_on,
    memberships,
    talent,
    tasks,
    units,
)

ADMINS = ["district_admin"]
MANAGERS = ["district_admin", "alliance_secretary"]
REPORTERS = [*MANAGERS, "village_cadre"]
READERS = [*REPORTERS, "ops", "service"]
DIRECTORY_READERS = sorted(auth.ROLES)
SWEEPERS = ["ops", "district_admin"]
DEFAULT_TOLERANCE = Decimal("0.10")


class AllianceService(ServiceBase):
    name = "alliance"
    projections = [VIEWS]
    config = Config()

    # -- authorisation ----------------------------------------------------------------------------

    def _manage(self, district: str, cluster_id: str | None = None) -> None:
        """A district admin of the district, or an alliance secretary of it (and of the
        cluster, when the token names one)."""
        principal = self.store.principal
        if principal.role == "alliance_secretary" and principal.district is None:
            raise Forbidden(
                "an alliance secretary's token must carry the district it manages",
                errors={"district": ["missing from the token"]},
            )
        principal.require_scope(district=district, cluster=cluster_id)

    def _report_for(self, unit: MemberUnit, cluster_id: str | None, on: date) -> None:
        """Member units report for themselves only; managers may report for units they manage."""
        principal = self.store.principal
        if principal.role != "village_cadre":
            self._manage(unit.district)
            if principal.cluster is not None and not (
                cluster_id == principal.cluster or unit.is_member(principal.cluster, on)
            ):
                raise Forbidden(
                    f"unit {unit.id!r} is not in cluster {principal.cluster!r} on {on}",
                    errors={"cluster": ["outside the token's cluster scope"]},
                )
            return
        if principal.village is None or principal.village != unit.id:
            raise Forbidden(
                f"a village cadre reports only for their own village, not for {unit.id!r}",
                errors={"unit_id": ["not the token's village"]},
            )
        principal.require_scope(district=unit.district)

    # -- directory: alliances, clusters, units, memberships ------------------------------------

    @command(
        "POST",
        "/api/v1/alliance/alliances",
        body=schemas.AllianceIn,
        response=schemas.AllianceOut,
        roles=ADMINS,
        status=201,
    )
    def found_alliance(self, request: Any, body: dict[str, Any]) -> Any:
        """Found a district alliance or a town/street sub-alliance under one."""
        self._manage(body["district"])

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            parent = None
            if body["parent_alliance_id"]:
                parent = uow.find(Alliance, body["parent_alliance_id"])
                if parent is None:
                    raise DomainError(
                        f"alliance {body['parent_alliance_id']!r} does not exist",
                        "parent_alliance_id",
                    )
            alliance = uow.create(Alliance, body["id"])
            alliance.found(body["district"], body["name"], body["level"], parent)
            return _alliance(alliance)

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/alliance/clusters",
        body=schemas.ClusterIn,
        response=schemas.ClusterOut,
        roles=ADMINS,
        status=201,
    )
    def form_cluster(self, request: Any, body: dict[str, Any]) -> Any:
        """Form a cluster (组团) inside an alliance, with its theme industry and lead unit."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            alliance = _require(uow, Alliance, body["alliance_id"], "alliance_id")
            self._manage(alliance.district)
            lead = None
            if body["lead_unit_id"]:
                lead = _require(uow, MemberUnit, body["lead_unit_id"], "lead_unit_id")
            cluster = uow.create(Cluster, body["id"])
            cluster.form(alliance, body["name"], body["theme_industry"], lead)
            return _cluster(cluster)

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/alliance/units",
        body=schemas.UnitIn,
        response=schemas.UnitOut,
        roles=MANAGERS,
        status=201,
    )
    def register_unit(self, request: Any, body: dict[str, Any]) -> Any:
        """Register a member unit (a village with its facts, a bank with its code, ...)."""
        self._manage(body["district"])

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            unit = uow.create(MemberUnit, body["id"])
            unit.register(
                body["district"],
                body["name"],
                body["unit_type"],
                body["village"],
                body["bank_code"],
            )
            return _unit(unit)

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/alliance/units/<unit_id>/memberships",
        body=schemas.JoinIn,
        response=schemas.UnitOut,
        roles=MANAGERS,
        status=201,
    )
    def join_cluster(self, request: Any, unit_id: str, body: dict[str, Any]) -> Any:
        """A unit joins a cluster from ``joined_on``; a village is in one cluster per alliance."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            unit = uow.get(MemberUnit, unit_id)
            cluster = _require(uow, Cluster, body["cluster_id"], "cluster_id")
            self._manage(cluster.district, cluster.id)
            unit.join(cluster, body["joined_on"])
            return _unit(unit)

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/alliance/units/<unit_id>/memberships/<cluster_id>/leave",
        body=schemas.LeaveIn,
        response=schemas.UnitOut,
        roles=MANAGERS,
        status=201,
    )
    def leave_cluster(
        self, request: Any, unit_id: str, cluster_id: str, body: dict[str, Any]
    ) -> Any:
        """A unit leaves a cluster; ``left_on`` is its first day outside it."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            unit = uow.get(MemberUnit, unit_id)
            self._manage(unit.district, cluster_id)
            unit.leave(cluster_id, body["left_on"])
            return _unit(unit)

        return self.store.run(decide)

    # -- key tasks -------------------------------------------------------------------------------

    @command(
        "POST",
        "/api/v1/alliance/tasks",
        body=schemas.TaskIn,
        response=schemas.TaskOut,
        roles=MANAGERS,
        status=201,
    )
    def assign_task(self, request: Any, body: dict[str, Any]) -> Any:
        """Assign a key task to a cluster, or to one of its member units."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            cluster = _require(uow, Cluster, body["cluster_id"], "cluster_id")
            self._manage(cluster.district, cluster.id)
            unit = None
            if body["unit_id"]:
                unit = _require(uow, MemberUnit, body["unit_id"], "unit_id")
            task = uow.create(Task, body["id"])
            task.assign(
                cluster,
                unit,
                body["title"],
                body["indicator"],
                body["measure_unit"],
                body["target_quantity"],
                body["starts_on"],
                body["deadline_on"],
            )
            return _task(task)

        return self.store.run(decide)

    def _task_command(
        self, task_id: str, act: Callable[[Task], None], *, reported_on: date | None = None
    ) -> Any:
        """Load a task, check the caller (its reporter on ``reported_on``, else a manager of its
        cluster), let ``act`` decide, and answer the task."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            task = uow.get(Task, task_id)
            if reported_on is not None:
                self._task_reporter(uow, task, reported_on)
            else:
                self._manage(task.district, task.cluster_id)
            act(task)
            return _task(task)

        return self.store.run(decide)

    def _task_reporter(self, uow: UnitOfWork, task: Task, on: date) -> None:
        if task.unit_id is None:
            if self.store.principal.role == "village_cadre":
                raise Forbidden(
                    f"task {task.id!r} belongs to cluster {task.cluster_id!r} as a whole; its "
                    "secretary reports on it",
                    errors={"unit_id": ["a cluster-wide task"]},
                )
            self._manage(task.district, task.cluster_id)
            return
        self._report_for(uow.get(MemberUnit, task.unit_id), task.cluster_id, on)

    @command(
        "POST",
        "/api/v1/alliance/tasks/<task_id>/progress",
        body=schemas.ProgressIn,
        response=schemas.TaskOut,
        roles=REPORTERS,
        status=201,
    )
    def report_progress(self, request: Any, task_id: str, body: dict[str, Any]) -> Any:
        """Report progress on a task (a negative quantity corrects an earlier report)."""

        return self._task_command(
            task_id,
            lambda task: task.report_progress(
                body["quantity"],
                body["evidence_note"],
                self.store.principal.subject,
                body["reported_on"],
            ),
            reported_on=body["reported_on"],
        )

    @command(
        "POST",
        "/api/v1/alliance/tasks/<task_id>/completion",
        body=schemas.SubmitIn,
        response=schemas.TaskOut,
        roles=REPORTERS,
        status=201,
    )
    def submit_completion(self, request: Any, task_id: str, body: dict[str, Any]) -> Any:
        """Submit a task as completed, for the alliance to verify or return."""

        return self._task_command(
            task_id,
            lambda task: task.submit_completion(body["note"], body["submitted_on"]),
            reported_on=body["submitted_on"],
        )

    @command(
        "POST",
        "/api/v1/alliance/tasks/<task_id>/verification",
        body=schemas.VerifyIn,
        response=schemas.TaskOut,
        roles=MANAGERS,
        status=201,
    )
    def verify_task(self, request: Any, task_id: str, body: dict[str, Any]) -> Any:
        """Verify a submitted completion: the task is closed."""

        return self._task_command(
            task_id, lambda task: task.verify(body["verified_on"], self.store.principal.subject)
        )

    @command(
        "POST",
        "/api/v1/alliance/tasks/<task_id>/return",
        body=schemas.ReturnIn,
        response=schemas.TaskOut,
        roles=MANAGERS,
        status=201,
    )
    def return_task(self, request: Any, task_id: str, body: dict[str, Any]) -> Any:
        """Return a submitted completion with a reason; the task is in progress again."""

        return self._task_command(
            task_id, lambda task: task.return_completion(body["reason"], body["returned_on"])
        )

    @command(
        "POST",
        "/api/v1/alliance/sweeps",
        body=schemas.SweepIn,
        response=schemas.SweepOut,
        roles=SWEEPERS,
    )
    def sweep(self, request: Any, body: dict[str, Any]) -> Any:
        """Evaluate every unverified task as of a day: emit fell-behind, back-on-track and
        overdue changes, each once. Idempotent: a repeated sweep emits nothing new."""
        tolerance = body["tolerance"]
        if tolerance is None:
            tolerance = Decimal(
                str(self.config.get("ALLIANCE_BEHIND_TOLERANCE", DEFAULT_TOLERANCE))
            )
        as_of: date = body["as_of"]
        district = self.store.principal.district

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            query = select(tasks.c.task_id).where(tasks.c.status != "verified")
            if district is not None:
                query = query.where(tasks.c.district == district)
            changes: dict[str, list[str]] = {"behind": [], "overdue": [], "on_track": []}
            ids = list(uow.connection.execute(query.order_by(tasks.c.task_id)).scalars())
            for task_id in ids:
                state = uow.get(Task, task_id).evaluate(as_of, tolerance)
                if state is not None:
                    changes[state].append(task_id)
            return {
                "as_of": as_of.isoformat(),
                "tolerance": str(tolerance),
                "evaluated": len(ids),
                "fell_behind": changes["behind"],
                "overdue": changes["overdue"],
                "back_on_track": changes["on_track"],
            }

        return self.store.run(decide)

    # -- activity and talent ---------------------------------------------------------------------

    @command(
        "POST",
        "/api/v1/alliance/activities",
        body=schemas.ActivityIn,
        response=schemas.ActivityOut,
        roles=REPORTERS,
        status=201,
    )
    def record_activity(self, request: Any, body: dict[str, Any]) -> Any:
        """Record a member unit's meeting, visit, training, joint event or live-stream help.
        The same unit, type and instant twice is a 409."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            unit = _require(uow, MemberUnit, body["unit_id"], "unit_id")
            occurred_at = body["occurred_at"]
            self._report_for(unit, None, local_day(occurred_at))
            activity_id = body["id"]
            taken = uow.connection.execute(
                select(activities.c.unit_id).where(activities.c.activity_id == activity_id)
            ).scalar()
            if taken is not None:
                raise _AlreadyRecorded(activity_id)
            slot = activity_id_of(unit.id, body["activity_type"], occurred_at)
            log = uow.find(Activity, slot) or uow.create(Activity, slot)
            if log.activity_id is None:
                _no_earlier_record(uow, unit, body["activity_type"], occurred_at)
            log.record(
                activity_id,
                unit,
                body["activity_type"],
                body["title"],
                occurred_at,
                body["participants"],
                self.store.principal.subject,
            )
            return {
                "activity_id": activity_id,
                "unit_id": unit.id,
                "activity_type": body["activity_type"],
                "occurred_at": occurred_at.isoformat(),
            }

        for attempt in range(3):
            try:
                return self.store.run(decide)
            except AlreadyExists:
                # Another request recorded this unit's activity of this type at this instant
                # first: decide again, and answer 409 naming the field.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @command(
        "POST",
        "/api/v1/alliance/talent",
        body=schemas.TalentIn,
        response=schemas.TalentOut,
        roles=MANAGERS,
        status=201,
    )
    def register_talent(self, request: Any, body: dict[str, Any]) -> Any:
        """Register a returning graduate, veteran, entrepreneur or expert to a cluster."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            cluster = _require(uow, Cluster, body["cluster_id"], "cluster_id")
            self._manage(cluster.district, cluster.id)
            village = None
            if body["village_id"]:
                village = _require(uow, MemberUnit, body["village_id"], "village_id")
            person = uow.create(Talent, body["id"])
            person.register(cluster, village, body["name"], body["category"], body["registered_on"])
            return {
                "talent_id": person.id,
                "cluster_id": cluster.id,
                "village_id": village.id if village else None,
                "category": body["category"],
                "registered_on": body["registered_on"].isoformat(),
            }

        return self.store.run(decide)

    # -- queries ---------------------------------------------------------------------------------

    def _read(self) -> Any:
        return self.store.events.engine.connect()

    @query(
        "/api/v1/alliance/alliances/<alliance_id>",
        response=schemas.AllianceDetailOut,
        roles=READERS,
    )
    def get_alliance(self, request: Any, alliance_id: str) -> dict[str, Any]:
        """An alliance, its sub-alliances and its clusters."""
        with self._read() as db:
            row = _one(db, alliances, alliances.c.alliance_id, alliance_id, "alliance")
            subs = db.execute(
                select(alliances.c.alliance_id)
                .where(alliances.c.parent_alliance_id == alliance_id)
                .order_by(alliances.c.alliance_id)
            ).scalars()
            found = db.execute(
                select(clusters)
                .where(clusters.c.alliance_id == alliance_id)
                .order_by(clusters.c.cluster_id)
            )
            return {
                **row,
                "sub_alliances": list(subs),
                "clusters": [dict(r._mapping) for r in found],
            }

    @query("/api/v1/alliance/clusters/<cluster_id>", response=schemas.ClusterOut, roles=READERS)
    def get_cluster(self, request: Any, cluster_id: str) -> dict[str, Any]:
        """A cluster."""
        with self._read() as db:
            return _one(db, clusters, clusters.c.cluster_id, cluster_id, "cluster")

    @query(
        "/api/v1/alliance/clusters/<cluster_id>/roster",
        args=schemas.OnArgs,
        response=schemas.RosterOut,
        roles=READERS,
    )
    def roster(self, request: Any, cluster_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """The units in a cluster on a day (``?on=YYYY-MM-DD``, default today)."""
        on: date = args["on"]
        with self._read() as db:
            _one(db, clusters, clusters.c.cluster_id, cluster_id, "cluster")
            rows = db.execute(
                select(units, memberships.c.joined_on, memberships.c.left_on)
                .join(memberships, memberships.c.unit_id == units.c.unit_id)
                .where(memberships.c.cluster_id == cluster_id, member_on(on))
                .order_by(units.c.unit_id)
            )
            members = [_unit_row(r._mapping) for r in rows]
        return {"cluster_id": cluster_id, "on": on.isoformat(), "members": members}

    @query(
        "/api/v1/alliance/clusters/<cluster_id>/tasks", response=schemas.TaskBoardOut, roles=READERS
    )
    def task_board(self, request: Any, cluster_id: str) -> dict[str, Any]:
        """The cluster's task board: every task with its status (in_progress, submitted,
        verified) and, while open, its schedule state as of the last sweep (on_track, behind,
        overdue), and how many are in each."""
        with self._read() as db:
            _one(db, clusters, clusters.c.cluster_id, cluster_id, "cluster")
            rows = db.execute(
                select(tasks)
                .where(tasks.c.cluster_id == cluster_id)
                .order_by(tasks.c.deadline_on, tasks.c.task_id)
            )
            board = [_task_row(r._mapping) for r in rows]
        by_status: dict[str, int] = {}
        by_schedule: dict[str, int] = {}
        for task in board:
            by_status[task["status"]] = by_status.get(task["status"], 0) + 1
            if task["status"] != "verified":  # a closed task has no schedule any more
                by_schedule[task["schedule"]] = by_schedule.get(task["schedule"], 0) + 1
        return {
            "cluster_id": cluster_id,
            "tasks": board,
            "by_status": by_status,
            "by_schedule": by_schedule,
        }

    @query("/api/v1/alliance/tasks/<task_id>", response=schemas.TaskDetailOut, roles=READERS)
    def get_task(self, request: Any, task_id: str) -> dict[str, Any]:
        """One task with its progress, status and schedule state."""
        with self._read() as db:
            row = db.execute(select(tasks).where(tasks.c.task_id == task_id)).first()
        if row is None:
            raise NotFound(f"task {task_id!r} does not exist")
        return _task_row(row._mapping)

    @query(
        "/api/v1/alliance/activity-counts",
        args=schemas.ActivityCountArgs,
        response=schemas.ActivityCountsOut,
        roles=READERS,
    )
    def activity_counts(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """Activities per unit and type in a period (``2026``, ``2026-Q1`` or ``2026-03``, days
        in Asia/Shanghai). With ``cluster_id``: units counted while they were in that cluster."""
        start, end = period_bounds(args["period"])
        query = (
            select(activities.c.unit_id, activities.c.activity_type, func.count().label("n"))
            .where(activities.c.occurred_on >= start, activities.c.occurred_on < end)
            .group_by(activities.c.unit_id, activities.c.activity_type)
            .order_by(activities.c.unit_id, activities.c.activity_type)
        )
        if args["unit_id"]:
            query = query.where(activities.c.unit_id == args["unit_id"])
        if args["district"]:
            query = query.where(activities.c.district == args["district"])
        if args["cluster_id"]:
            query = query.join(
                memberships,
                (memberships.c.unit_id == activities.c.unit_id)
                & (memberships.c.cluster_id == args["cluster_id"])
                & (memberships.c.joined_on <= activities.c.occurred_on)
                & (
                    memberships.c.left_on.is_(None)
                    | (memberships.c.left_on > activities.c.occurred_on)
                ),
            )
        with self._read() as db:
            rows = db.execute(query).all()
        by_type: dict[str, int] = {}
        for row in rows:
            by_type[row.activity_type] = by_type.get(row.activity_type, 0) + row.n
        return {
            "period": args["period"],
            "from_on": start.isoformat(),
            "until_on": (end.fromordinal(end.toordinal() - 1)).isoformat(),
            "total": sum(by_type.values()),
            "by_type": by_type,
            "counts": [
                {"unit_id": r.unit_id, "activity_type": r.activity_type, "count": r.n} for r in rows
            ],
        }

    @query(
        "/api/v1/alliance/clusters/<cluster_id>/talent",
        response=schemas.ClusterTalentOut,
        roles=READERS,
    )
    def cluster_talent(self, request: Any, cluster_id: str) -> dict[str, Any]:
        """The talent registered to a cluster, and how many per category."""
        with self._read() as db:
            _one(db, clusters, clusters.c.cluster_id, cluster_id, "cluster")
            rows = db.execute(
                select(talent).where(talent.c.cluster_id == cluster_id).order_by(talent.c.talent_id)
            )
            people = [
                {**dict(r._mapping), "registered_on": r.registered_on.isoformat()} for r in rows
            ]
        by_category: dict[str, int] = {}
        for person in people:
            by_category[person["category"]] = by_category.get(person["category"], 0) + 1
        return {"cluster_id": cluster_id, "talent": people, "by_category": by_category}

    @query(
        "/api/v1/alliance/villages",
        args=schemas.VillagesArgs,
        response=schemas.VillagesOut,
        roles=DIRECTORY_READERS,
    )
    def villages(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """The village directory: every village with the cluster it is in on a day (``?on=``),
        filtered by district, cluster or weak."""
        on: date = args["on"]
        with self._read() as db:
            query = select(units).where(units.c.unit_type == "village").order_by(units.c.unit_id)
            if args["district"]:
                query = query.where(units.c.district == args["district"])
            if args["weak"] is not None:
                query = query.where(units.c.weak == args["weak"])
            rows = [r._mapping for r in db.execute(query)]
            clusters_on = _clusters_on(db, on)
        villages = [
            {**_unit_row(row), "clusters": clusters_on.get(row["unit_id"], [])} for row in rows
        ]
        if args["cluster_id"]:
            villages = [v for v in villages if args["cluster_id"] in v["clusters"]]
        return {"on": on.isoformat(), "villages": villages}

    @query(
        "/api/v1/alliance/villages/<village_id>",
        args=schemas.OnArgs,
        response=schemas.UnitDetailOut,
        roles=DIRECTORY_READERS,
    )
    def village(self, request: Any, village_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """One village: its facts, its clusters on a day and its whole membership history."""
        with self._read() as db:
            row = db.execute(
                select(units).where(units.c.unit_id == village_id, units.c.unit_type == "village")
            ).first()
            if row is None:
                raise NotFound(f"village {village_id!r} is not in the directory")
            return _with_memberships(db, _unit_row(row._mapping), args["on"])

    @query(
        "/api/v1/alliance/units/<unit_id>",
        args=schemas.OnArgs,
        response=schemas.UnitDetailOut,
        roles=DIRECTORY_READERS,
    )
    def get_unit(self, request: Any, unit_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """Any member unit, its clusters on a day and its membership history."""
        with self._read() as db:
            row = _one(db, units, units.c.unit_id, unit_id, "unit")
            return _with_memberships(db, _unit_row(row), args["on"])


# -- helpers ---------------------------------------------------------------------------------------


class _AlreadyRecorded(Conflict):
    def __init__(self, activity_id: str) -> None:
        message = f"activity {activity_id!r} is already recorded"
        super().__init__(message, errors={"id": [message]})


def _no_earlier_record(
    uow: UnitOfWork, unit: MemberUnit, activity_type: str, occurred_at: datetime
) -> None:
    """Records made when a unit's activities shared one stream are only in the read model."""
    local = occurred_at.astimezone(LOCAL_TZ)
    earlier = uow.connection.execute(
        select(activities.c.activity_id).where(
            activities.c.unit_id == unit.id,
            activities.c.activity_type == activity_type,
            activities.c.occurred_at == local.isoformat(),
        )
    ).scalar()
    if earlier is not None:
        raise DuplicateActivity(
            f"unit {unit.id!r} already recorded a {activity_type} at "
            f"{occurred_at.isoformat()} (activity {earlier!r})"
        )


def _require(uow: UnitOfWork, cls: type, stream_id: str, field: str) -> Any:
    """An aggregate a command refers to by a body field: missing is a 422 naming the field."""
    found = uow.find(cls, stream_id)
    if found is None:
        raise DomainError(f"{cls.stream_type.lower()} {stream_id!r} does not exist", field)
    return found


def _one(db: Connection, table: Any, key: Any, value: str, what: str) -> dict[str, Any]:
    row = db.execute(select(table).where(key == value)).first()
    if row is None:
        raise NotFound(f"{what} {value!r} does not exist")
    return dict(row._mapping)


def _alliance(alliance: Alliance) -> dict[str, Any]:
    return {
        "alliance_id": alliance.id,
        "district": alliance.district,
        "name": alliance.name,
        "level": alliance.level,
        "parent_alliance_id": alliance.parent_alliance_id,
    }


def _cluster(cluster: Cluster) -> dict[str, Any]:
    return {
        "cluster_id": cluster.id,
        "alliance_id": cluster.alliance_id,
        "district": cluster.district,
        "name": cluster.name,
        "theme_industry": cluster.theme_industry,
        "lead_unit_id": cluster.lead_unit_id,
    }


def _unit(unit: MemberUnit) -> dict[str, Any]:
    return {
        "unit_id": unit.id,
        "district": unit.district,
        "name": unit.name,
        "unit_type": unit.unit_type,
        "village": _village_facts(unit.village),
        "bank_code": unit.bank_code,
        "memberships": [
            {
                "cluster_id": m.cluster_id,
                "alliance_id": m.alliance_id,
                "joined_on": m.joined_on.isoformat(),
                "left_on": m.left_on.isoformat() if m.left_on else None,
            }
            for m in unit.memberships
        ],
    }


def _village_facts(village: dict[str, Any] | None) -> dict[str, Any] | None:
    if village is None:
        return None
    return {**village, "contracted_area_mu": str(village["contracted_area_mu"])}


def _task(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "cluster_id": task.cluster_id,
        "unit_id": task.unit_id,
        "target_quantity": str(task.target),
        "progress_quantity": str(task.progress),
        "status": task.status,
        "schedule": task.schedule,
    }


def _unit_row(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "unit_id": row["unit_id"],
        "district": row["district"],
        "name": row["name"],
        "unit_type": row["unit_type"],
        "village": None,
        "bank_code": row["bank_code"],
    }
    if row["unit_type"] == "village":
        out["village"] = {
            "population": row["population"],
            "households": row["households"],
            "contracted_area_mu": row["contracted_area_mu"],
            "weak": bool(row["weak"]),
        }
    for day in ("joined_on", "left_on"):
        if day in row:
            out[day] = row[day].isoformat() if row[day] else None
    return out


def _task_row(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key, value in out.items():
        if isinstance(value, date):
            out[key] = value.isoformat()
    return out


def _clusters_on(db: Connection, on: date) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    rows = db.execute(
        select(memberships.c.unit_id, memberships.c.cluster_id)
        .where(member_on(on))
        .order_by(memberships.c.unit_id, memberships.c.cluster_id)
    )
    for unit_id, cluster_id in rows:
        found.setdefault(unit_id, []).append(cluster_id)
    return found


def _with_memberships(db: Connection, unit: dict[str, Any], on: date) -> dict[str, Any]:
    history = db.execute(
        select(memberships)
        .where(memberships.c.unit_id == unit["unit_id"])
        .order_by(memberships.c.joined_on, memberships.c.cluster_id)
    )
    rows = [r._mapping for r in history]
    return {
        **unit,
        "on": on.isoformat(),
        "clusters": [
            r["cluster_id"]
            for r in rows
            if r["joined_on"] <= on and (r["left_on"] is None or on < r["left_on"])
        ],
        "memberships": [
            {
                "cluster_id": r["cluster_id"],
                "alliance_id": r["alliance_id"],
                "joined_on": r["joined_on"].isoformat(),
                "left_on": r["left_on"].isoformat() if r["left_on"] else None,
            }
            for r in rows
        ],
    }
