"""The trusteeship centre over HTTP: orders, dispatch, work, acceptance, settlement, subsidies.

Villages come from the real alliance service, through its events into the trusteeship
directory. Each rule of the issue has a test asserting the 4xx, the field at fault and that no
event was written."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import eventlet
import jsonschema
import pytest

from services.alliance.service import AllianceService
from services.trusteeship.service import TrusteeshipService
from tests.conftest import Api, captured_events, new_id

T = "/api/v1/trusteeship"
CENTRE = {"role": "trusteeship_centre"}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "events" / "trusteeship"
DAY = "2026-06-10"


def at(hour: int, minute: int = 0, day: str = DAY) -> str:
    return f"{day}T{hour:02d}:{minute:02d}:00+08:00"


def ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, field: str, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert field in body.get("errors", {}), body
    return body


class World:
    """A district with two villages in one cluster, a provider with prices, a harvesting team."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.district = new_id("D")
        self.cluster = new_id("C")
        self.villages = [new_id("V"), new_id("V")]
        self.provider = new_id("P")
        self.team = new_id("T")
        self.machine = new_id("M")
        self.operator = new_id("OP")

    def post(self, path: str, body: dict[str, Any], **who: Any) -> Any:
        return self.api.post(T + path, body, **(who or CENTRE))

    def events(self) -> list[dict[str, Any]]:
        return self.api.events("trusteeship")

    def build(self, weak: bool = False) -> World:
        api, admin = self.api, {"role": "district_admin"}
        alliance = new_id("A")
        ok(
            api.post(
                "/api/v1/alliance/alliances",
                {"id": alliance, "district": self.district, "name": "红盟", "level": "district"},
                **admin,
            )
        )
        ok(
            api.post(
                "/api/v1/alliance/clusters",
                {
                    "id": self.cluster,
                    "alliance_id": alliance,
                    "name": "稻香组团",
                    "theme_industry": "rice",
                },
                **admin,
            )
        )
        for village in self.villages:
            facts = {
                "population": 900,
                "households": 300,
                "contracted_area_mu": "3000",
                "weak": weak,
            }
            ok(
                api.post(
                    "/api/v1/alliance/units",
                    {
                        "id": village,
                        "district": self.district,
                        "name": village,
                        "unit_type": "village",
                        "village": facts,
                    },
                    **admin,
                )
            )
            ok(
                api.post(
                    f"/api/v1/alliance/units/{village}/memberships",
                    {"cluster_id": self.cluster, "joined_on": "2026-01-01"},
                    **admin,
                )
            )
        for village in self.villages:
            wait_for_village(api, village)
        self.register_provider(self.provider)
        for village, (lat, lon) in zip(
            self.villages, [("30.1", "120.1"), ("30.2", "120.3")], strict=True
        ):
            ok(self.post("/village-sites", {"village_id": village, "lat": lat, "lon": lon}))
        self.register_team(self.team, self.provider, [(self.machine, "harvester")], [self.operator])
        return self

    def register_provider(self, provider: str, **extra: Any) -> None:
        ok(
            self.post(
                "/providers",
                {
                    "id": provider,
                    "district": self.district,
                    "name": "农机合作社",
                    "provider_type": "collective",
                    "village_id": self.villages[0],
                    "listed_on": "2026-01-01",
                    **extra,
                },
            )
        )
        prices = [
            {"stage": "plough", "unit_price_fen": 5000},
            {"stage": "sow", "unit_price_fen": 3000},
            {"stage": "protect", "unit_price_fen": 1000},
            {"stage": "harvest", "unit_price_fen": 8000},
        ]
        ok(
            self.post(
                f"/providers/{provider}/price-lists",
                {"season": "2026-summer", "prices": prices, "published_on": "2026-01-02"},
            )
        )

    def register_team(
        self,
        team: str,
        provider: str,
        machines: list[tuple[str, str]],
        operators: list[str],
        licence_expires_on: str = "2027-12-31",
    ) -> None:
        ok(
            self.post(
                "/teams",
                {
                    "id": team,
                    "provider_id": provider,
                    "name": team,
                    "team_type": "machinery",
                    "base_village_id": self.villages[0],
                    "base_lat": "30.1",
                    "base_lon": "120.1",
                },
            )
        )
        for machine, machine_type in machines:
            ok(
                self.post(
                    "/machines",
                    {
                        "id": machine,
                        "team_id": team,
                        "machine_type": machine_type,
                        "capacity_mu_per_day": "200",
                    },
                )
            )
        for operator in operators:
            ok(
                self.post(
                    "/operators",
                    {
                        "id": operator,
                        "team_id": team,
                        "name": "王师傅",
                        "licence_no": "L1",
                        "licence_expires_on": licence_expires_on,
                    },
                )
            )

    def order(
        self,
        parcels: list[tuple[str, str, str]],
        *,
        village: int = 0,
        provider: str | None = None,
        customer_type: str = "household",
        customer: str | None = None,
        stages: list[str] | None = None,
        sign: bool = True,
        schedule: str | None = "harvest",
        day: str = DAY,
    ) -> str:
        order = new_id("O")
        ok(
            self.post(
                "/orders",
                {
                    "id": order,
                    "village_id": self.villages[village],
                    "provider_id": provider or self.provider,
                    "customer_id": customer or new_id("F"),
                    "customer_name": "张三",
                    "customer_type": customer_type,
                    "crop": "wheat",
                    "season": "2026-summer",
                    "mode": "partial" if stages else "full",
                    "stages": stages,
                    "parcels": [
                        {"parcel_id": p, "parcel_area_mu": a, "contracted_area_mu": c}
                        for p, a, c in parcels
                    ],
                    "ordered_on": "2026-03-01",
                },
                role="household",
            )
        )
        if sign:
            ok(
                self.post(
                    f"/orders/{order}/signature", {"signed_on": "2026-03-02"}, role="household"
                )
            )
        if sign and schedule:
            ok(self.post(f"/orders/{order}/tasks", {"stage": schedule, "planned_on": day}))
        return order

    def task(self, order: str, parcel: str, stage: str = "harvest") -> str:
        return f"{order}:{stage}:{parcel}"

    def dispatch(
        self, task: str, start: str, end: str, team: str | None = None, **over: Any
    ) -> Any:
        body = {
            "task_id": task,
            "team_id": team or self.team,
            "machine_ids": [self.machine],
            "operator_ids": [self.operator],
            "starts_at": start,
            "ends_at": end,
            **over,
        }
        return self.post("/dispatches", body)

    def work_done(self, task: str, start: int = 8, area: str | None = None) -> None:
        ok(self.dispatch(task, at(start), at(start + 2)))
        ok(self.post(f"/tasks/{task}/start", {"started_at": at(start)}))
        ok(
            self.post(
                f"/tasks/{task}/completion", {"completed_at": at(start + 2), "area_done_mu": area}
            )
        )

    def accept(self, task: str, area: str) -> Any:
        return self.post(
            f"/tasks/{task}/acceptance",
            {
                "measured_area_mu": area,
                "farmer_confirmed_by": "张三",
                "village_confirmed_by": "李书记",
                "accepted_on": "2026-06-11",
            },
            role="village_cadre",
        )


def events_when(world: World, ready: Any, timeout: float = 15) -> list[dict[str, Any]]:
    """The service's events once ``ready(events)`` holds. On PostgreSQL the notification log
    reads only below the oldest open write transaction of the server, so it may lag a moment."""
    deadline = time.monotonic() + timeout
    while True:
        found = world.events()
        if ready(found) or time.monotonic() > deadline:
            return found
        eventlet.sleep(0.1)


def wait_for_village(api: Api, village: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get(f"{T}/directory/villages/{village}").status_code == 200:
            return
        eventlet.sleep(0.05)
    raise AssertionError(f"village {village} never reached the trusteeship directory")


def start(start_services: Any, **config: Any) -> Api:
    overrides = {"TRUSTEESHIP": config} if config else {}
    return start_services(AllianceService, TrusteeshipService, max_workers=16, **overrides)


@pytest.fixture
def world(start_services: Any) -> World:
    return World(start(start_services)).build()


def unchanged(world: World, before: int) -> None:
    assert len(world.events()) == before, "a refused command wrote events"


def only_refusals(world: World, before: int, refusals: list[tuple[str, str, Any]]) -> None:
    """Since ``before``, the refused manual dispatches ``(task, field, answer)`` wrote nothing of
    their own: the only events are the records of their refusals, each agreeing with the 422."""
    found = events_when(world, lambda events: len(events) >= before + len(refusals))[before:]
    assert [
        (e["type"], e["data"]["task_id"], e["data"]["manual"], e["data"]["field"]) for e in found
    ] == [("DispatchRejected", task, True, field) for task, field, _ in refusals], found
    for event, (_, field, answer) in zip(found, refusals, strict=True):
        assert event["data"]["reason"] == answer["detail"] == answer["errors"][field][0]


# -- the main path, on both backends ----------------------------------------------------------


def test_order_to_subsidy_paid(world: World) -> None:
    order = world.order([("PA-1", "10.00", "8.50")])
    task = world.task(order, "PA-1")
    ok(world.dispatch(task, at(8), at(12)))
    ok(world.post(f"/tasks/{task}/start", {"started_at": at(8)}))
    track = [{"lat": "30.100001", "lon": "120.100002", "at": at(9)}]
    ok(world.post(f"/tasks/{task}/progress", {"area_done_mu": "4.00", "track": track}))
    ok(world.post(f"/tasks/{task}/completion", {"completed_at": at(12)}))
    accepted = ok(world.accept(task, "8.25"))
    assert accepted["status"] == "accepted" and accepted["accepted_area_mu"] == "8.25"
    settled = ok(world.post(f"/orders/{order}/settlements", {"settled_on": "2026-06-12"}))
    # 8.25 mu × 80.00 yuan
    assert settled["amount_fen"] == 66_000
    assert settled["collective_village_id"] == world.villages[0]
    ok(world.post(f"/orders/{order}/ratings", {"score": 5}, role="household"))
    claim = new_id("SC")
    # cap: 30 % of 66,000 fen = 19,800; 100 yuan per mu × 8.25 mu = 82,500
    claimed = ok(
        world.post(
            "/subsidy-claims",
            {"id": claim, "task_id": task, "amount_fen": 19_800, "claimed_on": "2026-06-20"},
        )
    )
    assert claimed["converted_area_mu"] == "2.23"  # 0.27 × 8.25
    ok(
        world.post(
            f"/subsidy-claims/{claim}/approval",
            {"approved_on": "2026-06-25"},
            role="district_admin",
        )
    )
    ok(
        world.post(
            f"/subsidy-claims/{claim}/payment", {"paid_on": "2026-06-30"}, role="district_admin"
        )
    )

    schedule = ok(world.api.get(f"{T}/teams/{world.team}/schedule"), 200)
    assert {w["kind"] for w in schedule["windows"]} == {"team", "machine", "operator"}
    by_village = ok(world.api.get(f"{T}/tasks", params={"day": DAY}), 200)
    assert list(by_village["villages"]) == [world.villages[0]]
    served = ok(world.api.get(f"{T}/served-area", params={"season": "2026-summer"}), 200)
    assert served["villages"][world.villages[0]]["stages"] == {"harvest": "8.25"}
    assert served["clusters"] == {world.cluster: {"converted_area_mu": "2.23"}}
    money = ok(world.api.get(f"{T}/money", params={"provider_id": world.provider}), 200)
    assert money["providers"][world.provider]["fees_fen"] == 66_000
    assert money["providers"][world.provider]["subsidies"]["paid"]["amount_fen"] == 19_800
    types = [
        e["type"]
        for e in events_when(world, lambda found: any(e["type"] == "SubsidyPaid" for e in found))
    ]
    for expected in (
        "ProviderRegistered",
        "PriceListPublished",
        "TrusteeshipOrdered",
        "TrusteeshipContractSigned",
        "WorkTaskScheduled",
        "TeamDispatched",
        "WorkStarted",
        "WorkProgressReported",
        "WorkCompleted",
        "WorkAccepted",
        "ServiceFeeSettled",
        "ServiceRated",
        "SubsidyClaimed",
        "SubsidyApproved",
        "SubsidyPaid",
    ):
        assert expected in types


def test_concurrent_overlapping_dispatches_book_exactly_the_non_overlapping_set(
    world: World,
) -> None:
    parcels = [(f"PC-{n}", "5.00", "5.00") for n in range(12)]
    order = world.order(parcels)
    # Four hours; in each, three clients want overlapping windows: one per hour may win.
    requests_ = []
    for n, (parcel, _, _) in enumerate(parcels):
        hour, offset = 8 + 2 * (n // 3), (n % 3) * 10
        requests_.append((world.task(order, parcel), at(hour, offset), at(hour + 1, offset)))
    pool = eventlet.GreenPool(len(requests_))
    answers = list(pool.imap(lambda r: world.dispatch(*r), requests_))
    statuses = [a.status_code for a in answers]
    assert statuses.count(201) == 4, [a.text for a in answers]
    assert all(s in (409, 422) for s in statuses if s != 201)
    schedule = ok(world.api.get(f"{T}/teams/{world.team}/schedule"), 200)
    team_windows = sorted(
        (w["starts_at"], w["ends_at"]) for w in schedule["windows"] if w["kind"] == "team"
    )
    assert len(team_windows) == 4
    for (_, end), (begin, _) in zip(team_windows, team_windows[1:], strict=False):
        assert end <= begin

    def dispatched(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["type"] == "TeamDispatched"]

    assert len(dispatched(events_when(world, lambda found: len(dispatched(found)) >= 4))) == 4


def test_automatic_dispatch_proposes_confirms_and_explains(world: World) -> None:
    order = world.order([("PD-1", "20.00", "20.00"), ("PD-2", "30.00", "30.00")])
    far = world.order([("PD-3", "10.00", "10.00")], village=1)
    sowing = world.order([("PD-4", "10.00", "10.00")], schedule="sow")
    proposal = ok(world.post("/dispatch-proposals", {"id": new_id("DP"), "day": DAY}))
    placed = {a["task_id"]: a for a in proposal["assignments"]}
    assert set(placed) == {
        world.task(order, "PD-1"),
        world.task(order, "PD-2"),
        world.task(far, "PD-3"),
    }
    assert proposal["unplaced"] == [
        {
            "task_id": world.task(sowing, "PD-4", "sow"),
            "order_id": sowing,
            "reason": "no_team",
            "detail": proposal["unplaced"][0]["detail"],
        }
    ]
    confirmed = ok(world.post(f"/dispatch-proposals/{proposal['proposal_id']}/confirmation", {}))
    assert confirmed == {"proposal_id": proposal["proposal_id"], "dispatched": 3, "rejected": 1}
    unplaced = ok(world.api.get(f"{T}/tasks-unplaced", params={"day": DAY}), 200)
    assert [t["reason"] for t in unplaced["tasks"]] == ["no_team"]
    confirmed_event = "DispatchProposalConfirmed"
    types = [
        e["type"]
        for e in events_when(world, lambda found: any(e["type"] == confirmed_event for e in found))
    ]
    assert types.count("TeamDispatched") == 3 and types.count("DispatchRejected") == 1
    # the windows respect the travel buffer between the two villages
    windows = sorted((a["starts_at"], a["ends_at"], a["task_id"]) for a in placed.values())
    assert windows[0][0] == at(8)


# -- rules, on SQLite -------------------------------------------------------------------------

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


@sqlite_only
def test_a_stale_proposal_is_refused(world: World) -> None:
    order = world.order([("PS-1", "10.00", "10.00"), ("PS-2", "10.00", "10.00")])
    proposal = ok(world.post("/dispatch-proposals", {"id": new_id("DP"), "day": DAY}))
    ok(world.dispatch(world.task(order, "PS-1"), at(16), at(17)))
    before = len(world.events())
    answer = world.post(f"/dispatch-proposals/{proposal['proposal_id']}/confirmation", {})
    assert answer.status_code == 409, answer.text
    assert "propose again" in answer.json()["detail"]
    unchanged(world, before)


@sqlite_only
def test_no_team_machine_or_operator_in_two_windows(world: World) -> None:
    order = world.order([(f"PB-{n}", "5.00", "5.00") for n in range(5)])
    other_team, other_machine, other_operator = new_id("T"), new_id("M"), new_id("OP")
    world.register_team(
        other_team, world.provider, [(other_machine, "harvester")], [other_operator]
    )
    ok(world.dispatch(world.task(order, "PB-0"), at(9), at(11)))
    before = len(world.events())
    task = world.task(order, "PB-1")
    # the same team, overlapping
    same_team = refused(world.dispatch(task, at(10), at(12)), "team_id")
    # another team borrowing the booked machine
    machine = refused(
        world.dispatch(
            world.task(order, "PB-1"),
            at(10),
            at(12),
            team=other_team,
            operator_ids=[other_operator],
        ),
        "machine_ids",
    )
    # another team with the booked operator
    operator = refused(
        world.dispatch(
            world.task(order, "PB-1"), at(10), at(12), team=other_team, machine_ids=[other_machine]
        ),
        "operator_ids",
    )
    only_refusals(
        world,
        before,
        [
            (task, "team_id", same_team),
            (task, "machine_ids", machine),
            (task, "operator_ids", operator),
        ],
    )
    # back to back in the same village is fine
    ok(world.dispatch(world.task(order, "PB-1"), at(11), at(12)))


@sqlite_only
def test_travel_buffer_between_villages(start_services: Any) -> None:
    world = World(start(start_services, travel_buffer_minutes=90)).build()
    here = world.order([("PT-1", "5.00", "5.00")])
    there = world.order([("PT-2", "5.00", "5.00"), ("PT-3", "5.00", "5.00")], village=1)
    ok(world.dispatch(world.task(here, "PT-1"), at(8), at(10)))
    before = len(world.events())
    body = refused(world.dispatch(world.task(there, "PT-2"), at(11), at(12)), "team_id")
    assert "travel buffer" in body["detail"]
    only_refusals(world, before, [(world.task(there, "PT-2"), "team_id", body)])
    ok(world.dispatch(world.task(there, "PT-2"), at(11, 30), at(12, 30)))


@sqlite_only
def test_only_licensed_operators_and_signed_orders(world: World) -> None:
    expired = new_id("OP")
    team = new_id("T")
    machine = new_id("M")
    world.register_team(
        team, world.provider, [(machine, "harvester")], [expired], licence_expires_on="2026-06-09"
    )
    order = world.order([("PL-1", "5.00", "5.00")])
    unsigned = world.order([("PL-2", "5.00", "5.00")], sign=False)
    before = len(world.events())
    body = refused(
        world.dispatch(
            world.task(order, "PL-1"),
            at(8),
            at(9),
            team=team,
            machine_ids=[machine],
            operator_ids=[expired],
        ),
        "operator_ids",
    )
    assert "licence expired" in body["detail"]
    refused(
        world.post(f"/orders/{unsigned}/tasks", {"stage": "harvest", "planned_on": DAY}), "order_id"
    )
    only_refusals(world, before, [(world.task(order, "PL-1"), "operator_ids", body)])
    ok(world.post(f"/operators/{expired}/licence", {"licence_expires_on": "2028-01-01"}))
    ok(
        world.dispatch(
            world.task(order, "PL-1"),
            at(8),
            at(9),
            team=team,
            machine_ids=[machine],
            operator_ids=[expired],
        )
    )


@sqlite_only
def test_full_trusteeship_means_four_stages_and_cancel_only_before_work(world: World) -> None:
    before = len(world.events())
    answer = world.post(
        "/orders",
        {
            "id": new_id("O"),
            "village_id": world.villages[0],
            "provider_id": world.provider,
            "customer_id": "F1",
            "customer_name": "张三",
            "customer_type": "household",
            "crop": "wheat",
            "season": "2026-summer",
            "mode": "full",
            "stages": ["harvest"],
            "parcels": [{"parcel_id": "X", "parcel_area_mu": "1", "contracted_area_mu": "1"}],
        },
        role="household",
    )
    refused(answer, "stages")
    unchanged(world, before)
    order = world.order([("PX-1", "5.00", "5.00"), ("PX-2", "5.00", "5.00")])
    ok(world.dispatch(world.task(order, "PX-1"), at(8), at(9)))
    ok(world.post(f"/tasks/{world.task(order, 'PX-1')}/start", {"started_at": at(8)}))
    before = len(world.events())
    refused(
        world.post(f"/orders/{order}/cancellation", {"reason": "rain"}, role="household"),
        "order_id",
    )
    unchanged(world, before)
    # an order whose work has not started can be cancelled, and its windows are freed
    other = world.order([("PX-3", "5.00", "5.00")])
    ok(world.dispatch(world.task(other, "PX-3"), at(10), at(11)))
    ok(world.post(f"/orders/{other}/cancellation", {"reason": "rain"}, role="household"))
    schedule = ok(world.api.get(f"{T}/teams/{world.team}/schedule"), 200)
    assert world.task(other, "PX-3") not in {w["task_id"] for w in schedule["windows"]}


@sqlite_only
def test_accepted_area_never_exceeds_parcel_or_contract_even_across_providers(
    world: World,
) -> None:
    rival, rival_team = new_id("P"), new_id("T")
    rival_machine, rival_operator = new_id("M"), new_id("OP")
    world.register_provider(rival)
    world.register_team(rival_team, rival, [(rival_machine, "harvester")], [rival_operator])
    first = world.order([("PA-9", "10.00", "8.00")])
    second = world.order([("PA-9", "10.00", "10.00")], provider=rival)
    task = world.task(first, "PA-9")
    world.work_done(task)
    before = len(world.events())
    refused(world.accept(task, "8.50"), "measured_area_mu")  # over the contracted 8 mu
    refused(world.accept(task, "8.001"), "measured_area_mu")  # more than 2 decimals
    unchanged(world, before)
    ok(world.accept(task, "8.00"))
    before = len(world.events())
    refused(world.accept(task, "8.00"), "task_id")  # the same task twice
    # the rival provider's task on the same parcel, stage and season: only 2 mu are left
    rival_task = world.task(second, "PA-9")
    ok(
        world.dispatch(
            rival_task,
            at(14),
            at(16),
            team=rival_team,
            machine_ids=[rival_machine],
            operator_ids=[rival_operator],
        )
    )
    ok(world.post(f"/tasks/{rival_task}/start", {"started_at": at(14)}))
    ok(world.post(f"/tasks/{rival_task}/completion", {"completed_at": at(16)}))
    before = len(world.events())
    body = refused(world.accept(rival_task, "2.50"), "measured_area_mu")
    assert world.provider in body["detail"]
    unchanged(world, before)
    ok(world.accept(rival_task, "2.00"))


@sqlite_only
def test_disputed_work_goes_to_joint_measurement(world: World) -> None:
    order = world.order([("PJ-1", "10.00", "10.00")])
    task = world.task(order, "PJ-1")
    world.work_done(task)
    ok(
        world.post(
            f"/tasks/{task}/rejection",
            {"reason": "missed the corners", "claimed_area_mu": "9.00"},
            role="household",
        )
    )
    before = len(world.events())
    refused(world.accept(task, "9.00"), "task_id")  # no plain acceptance of disputed work
    unchanged(world, before)
    joint = ok(
        world.post(
            f"/tasks/{task}/joint-measurement",
            {
                "measured_area_mu": "9.20",
                "farmer_confirmed_by": "张三",
                "village_confirmed_by": "李书记",
            },
            role="village_cadre",
        )
    )
    assert joint["accepted_area_mu"] == "9.20"
    accepted = [e for e in world.events() if e["type"] == "WorkAccepted"]
    assert accepted[-1]["data"]["measurement"] == "joint"


@sqlite_only
def test_no_settlement_before_acceptance(world: World) -> None:
    order = world.order([("PN-1", "10.00", "10.00")])
    world.work_done(world.task(order, "PN-1"))
    before = len(world.events())
    body = refused(world.post(f"/orders/{order}/settlements", {}), "order_id")
    assert "acceptance" in body["detail"]
    unchanged(world, before)


@sqlite_only
def test_subsidy_caps_and_who_may_claim(start_services: Any) -> None:
    world = World(start(start_services, large_operator_yearly_cap_fen=30_000)).build()
    order = world.order([("PY-1", "10.00", "10.00")])
    task = world.task(order, "PY-1")
    world.work_done(task)
    ok(world.accept(task, "10.00"))  # fee 80,000 fen
    before = len(world.events())
    body = refused(
        world.post("/subsidy-claims", {"id": new_id("SC"), "task_id": task, "amount_fen": 24_001}),
        "amount_fen",
    )
    assert "share of the price" in body["detail"]  # 30 % of 80,000
    unchanged(world, before)
    ok(world.post("/subsidy-claims", {"id": new_id("SC"), "task_id": task, "amount_fen": 24_000}))
    before = len(world.events())
    refused(
        world.post("/subsidy-claims", {"id": new_id("SC"), "task_id": task, "amount_fen": 100}),
        "task_id",
    )  # claimed twice
    # 100 yuan per mu per season over all stages: plough 50 yuan/mu could give 15 yuan/mu, but
    # harvest already took 24 of the 100 → fine; a cap of 2,000 fen/mu would refuse it
    unchanged(world, before)

    # a large operator's yearly cap (configured 30,000 fen) across its orders
    big = new_id("F")
    orders = [
        world.order([(f"PZ-{n}", "10.00", "10.00")], customer_type="cooperative", customer=big)
        for n in range(2)
    ]
    claims = []
    for n, large in enumerate(orders):
        large_task = world.task(large, f"PZ-{n}")
        world.work_done(large_task, start=8 + 3 * (n + 1))
        ok(world.accept(large_task, "10.00"))
        claims.append(large_task)
    ok(
        world.post(
            "/subsidy-claims", {"id": new_id("SC"), "task_id": claims[0], "amount_fen": 20_000}
        )
    )
    before = len(world.events())
    body = refused(
        world.post(
            "/subsidy-claims", {"id": new_id("SC"), "task_id": claims[1], "amount_fen": 10_001}
        ),
        "amount_fen",
    )
    assert "yearly cap" in body["detail"]
    unchanged(world, before)

    # blacklisted: barred for the configured years
    ok(
        world.post(
            f"/providers/{world.provider}/blacklisting",
            {"reason": "fake area", "blacklisted_on": "2026-06-15"},
            role="district_admin",
        )
    )
    provider = ok(world.api.get(f"{T}/providers/{world.provider}"), 200)
    assert provider["barred_until"] == "2031-06-15"
    before = len(world.events())
    body = refused(
        world.post(
            "/subsidy-claims",
            {
                "id": new_id("SC"),
                "task_id": claims[1],
                "amount_fen": 100,
                "claimed_on": "2026-06-20",
            },
        ),
        "provider_id",
    )
    assert "blacklisted" in body["detail"]
    unchanged(world, before)


@sqlite_only
def test_out_of_directory_providers_cannot_claim_and_small_farmers_keep_their_share(
    world: World,
) -> None:
    lapsed, team, machine, operator = new_id("P"), new_id("T"), new_id("M"), new_id("OP")
    world.register_provider(lapsed, listed_until="2026-06-15")
    world.register_team(team, lapsed, [(machine, "harvester")], [operator])
    order = world.order([("PO-1", "10.00", "10.00")], provider=lapsed)
    task = world.task(order, "PO-1")
    ok(
        world.dispatch(
            task, at(8), at(10), team=team, machine_ids=[machine], operator_ids=[operator]
        )
    )
    ok(world.post(f"/tasks/{task}/start", {"started_at": at(8)}))
    ok(world.post(f"/tasks/{task}/completion", {"completed_at": at(10)}))
    ok(world.accept(task, "10.00"))
    before = len(world.events())
    body = refused(
        world.post(
            "/subsidy-claims",
            {"id": new_id("SC"), "task_id": task, "amount_fen": 100, "claimed_on": "2026-06-20"},
        ),
        "provider_id",
    )
    assert "not in the provider directory" in body["detail"]
    unchanged(world, before)

    # a large operator's claim alone would leave small farmers 0 % of approved funds
    small = world.order([("PQ-1", "10.00", "10.00")])
    large = world.order([("PQ-2", "10.00", "10.00")], customer_type="cooperative")
    world.work_done(world.task(small, "PQ-1"), start=11)
    world.work_done(world.task(large, "PQ-2"), start=14)
    ok(world.accept(world.task(small, "PQ-1"), "10.00"))
    ok(world.accept(world.task(large, "PQ-2"), "10.00"))
    small_claim, large_claim = new_id("SC"), new_id("SC")
    ok(
        world.post(
            "/subsidy-claims",
            {"id": small_claim, "task_id": world.task(small, "PQ-1"), "amount_fen": 24_000},
        )
    )
    ok(
        world.post(
            "/subsidy-claims",
            {"id": large_claim, "task_id": world.task(large, "PQ-2"), "amount_fen": 6_000},
        )
    )
    before = len(world.events())
    refused(
        world.post(f"/subsidy-claims/{large_claim}/approval", {}, role="district_admin"),
        "small_farmer_share",
    )
    unchanged(world, before)
    ok(world.post(f"/subsidy-claims/{small_claim}/approval", {}, role="district_admin"))
    # 24,000 of 30,000 = 80 %: now it fits
    ok(world.post(f"/subsidy-claims/{large_claim}/approval", {}, role="district_admin"))


@sqlite_only
def test_bad_input_names_the_field(world: World) -> None:
    before = len(world.events())
    refused(world.post("/orders", {"id": "bad id!"}, role="household"), "id")
    refused(
        world.post(
            "/dispatches",
            {
                "task_id": "x",
                "team_id": world.team,
                "machine_ids": [world.machine],
                "operator_ids": [world.operator],
                "starts_at": at(10),
                "ends_at": at(9),
            },
        ),
        "ends_at",
    )
    missing = world.post(
        "/dispatches",
        {
            "task_id": "nope",
            "team_id": world.team,
            "machine_ids": [world.machine],
            "operator_ids": [world.operator],
            "starts_at": at(8),
            "ends_at": at(9),
        },
    )
    assert missing.status_code == 404
    unchanged(world, before)


@sqlite_only
def test_events_reach_rabbitmq_as_documented(start_services: Any, broker: str) -> None:
    api = start_services(AllianceService, TrusteeshipService, amqp_uri=broker)
    world = World(api)
    with (
        captured_events(broker, "trusteeship", "WorkAccepted") as take_work,
        captured_events(broker, "trusteeship", "ServiceFeeSettled") as take_fee,
    ):
        world.build()
        order = world.order([("PR-1", "10.00", "10.00")])
        task = world.task(order, "PR-1")
        world.work_done(task)
        ok(world.accept(task, "9.50"))
        ok(world.post(f"/orders/{order}/settlements", {"settled_on": "2026-06-12"}))
        received = {m["type"]: m for m in take_work(1)} | {m["type"]: m for m in take_fee(1)}
    for type_ in ("WorkAccepted", "ServiceFeeSettled"):
        schema = json.loads((DOCS / f"{type_}.json").read_text())
        jsonschema.validate(received[type_], schema)
    accepted = received["WorkAccepted"]["data"]
    assert accepted["stage"] == "harvest" and accepted["accepted_area_mu"] == "9.50"
    assert accepted["village_id"] == world.villages[0] and accepted["task_id"] == task
    fee = received["ServiceFeeSettled"]["data"]
    assert fee["amount_fen"] == 76_000 and fee["collective_village_id"] == world.villages[0]


@sqlite_only
def test_subsidy_per_mu_cap_sums_over_the_stages_of_a_season(start_services: Any) -> None:
    world = World(start(start_services, subsidy_cap_fen_per_mu_season=3_000)).build()
    plough_team, plough_machine, plough_operator = new_id("T"), new_id("M"), new_id("OP")
    world.register_team(
        plough_team, world.provider, [(plough_machine, "tractor")], [plough_operator]
    )
    order = world.order(
        [("PM-1", "10.00", "10.00")], stages=["plough", "harvest"], schedule="plough"
    )
    ok(world.post(f"/orders/{order}/tasks", {"stage": "harvest", "planned_on": DAY}))
    plough, harvest = world.task(order, "PM-1", "plough"), world.task(order, "PM-1")
    ok(
        world.dispatch(
            plough,
            at(8),
            at(10),
            team=plough_team,
            machine_ids=[plough_machine],
            operator_ids=[plough_operator],
        )
    )
    ok(world.post(f"/tasks/{plough}/start", {"started_at": at(8)}))
    ok(world.post(f"/tasks/{plough}/completion", {"completed_at": at(10)}))
    ok(world.accept(plough, "10.00"))
    world.work_done(harvest, start=11)
    ok(world.accept(harvest, "10.00"))
    # 30 yuan per mu over the season: 24,000 fen for harvest leaves 6,000 for ploughing
    ok(
        world.post(
            "/subsidy-claims", {"id": new_id("SC"), "task_id": harvest, "amount_fen": 24_000}
        )
    )
    before = len(world.events())
    body = refused(
        world.post("/subsidy-claims", {"id": new_id("SC"), "task_id": plough, "amount_fen": 6_001}),
        "amount_fen",
    )
    assert "fen per mu this season" in body["detail"]
    unchanged(world, before)
    ok(world.post("/subsidy-claims", {"id": new_id("SC"), "task_id": plough, "amount_fen": 6_000}))


@sqlite_only
def test_a_refused_manual_dispatch_is_recorded_and_books_nothing(world: World) -> None:
    order = world.order([("PR-1", "5.00", "5.00"), ("PR-2", "5.00", "5.00")])
    booked, task = world.task(order, "PR-1"), world.task(order, "PR-2")
    ok(world.dispatch(booked, at(9), at(11)))
    schedule = ok(world.api.get(f"{T}/teams/{world.team}/schedule"), 200)
    assert {w["kind"] for w in schedule["windows"]} >= {"team", "machine"}, schedule
    before = len(world.events())
    answer = refused(world.dispatch(task, at(10), at(12)), "team_id")
    only_refusals(world, before, [(task, "team_id", answer)])
    assert ok(world.api.get(f"{T}/teams/{world.team}/schedule"), 200) == schedule
    # malformed or unknown input is not a refusal by a rule: nothing is recorded
    before = len(world.events())
    refused(world.dispatch(task, at(12), at(11)), "ends_at")
    refused(world.dispatch(task, at(11), at(12), machine_ids=[]), "machine_ids")
    assert world.dispatch("no-such-task", at(11), at(12)).status_code == 404
    unchanged(world, before)
    # the task is as it was: it can still be dispatched
    ok(world.dispatch(task, at(11), at(12)))
