"""Shared set-up of the finance tests: the alliance directory (villages, banks) through the
alliance service's HTTP API, the risk fund, scheme and product, and stub producer services for
the land, commerce and trusteeship events finance consumes (they append raw envelopes of the
contract's shape, as the real services will)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import marshmallow as ma

from services.alliance.service import AllianceService
from services.finance.service import FinanceService
from shared.eventstore import NewEvent
from shared.http import command
from shared.service import ServiceBase
from tests.conftest import Api

DISTRICT = "D1"


class RawEventIn(ma.Schema):
    stream_id = ma.fields.String(required=True)
    stream_type = ma.fields.String(required=True)
    type = ma.fields.String(required=True)
    data = ma.fields.Dict(required=True)


def _append_raw(self: Any, request: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Append one event of the producer's contract shape to this stub's store."""
    store = self.store.events
    with store.transaction() as tx:
        version = store.stream_version(body["stream_id"], tx.connection) + 1
        recorded = store.append(
            tx,
            [
                NewEvent(
                    body["stream_type"],
                    body["stream_id"],
                    version,
                    body["type"],
                    body["data"],
                    metadata={"district": DISTRICT},
                )
            ],
        )
    return {"event_id": str(recorded[0].event_id)}


def _stub(service_name: str) -> type:
    def append_raw(self: Any, request: Any, body: dict[str, Any]) -> dict[str, Any]:
        return _append_raw(self, request, body)

    # A function of its own per stub: nameko keeps a decorated function's entrypoints on it.
    endpoint = command(
        "POST", f"/api/v1/{service_name}/raw-events", body=RawEventIn, roles=["ops"], status=201
    )(append_raw)
    return type(
        f"Stub{service_name.capitalize()}Service",
        (ServiceBase,),
        {"name": service_name, "append_raw": endpoint},
    )


StubLand = _stub("land")
StubCommerce = _stub("commerce")
StubTrusteeship = _stub("trusteeship")


def wait_for(check: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def created(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return response.json()


@dataclass
class World:
    api: Api
    villages: list[str]
    banks: list[str]

    # -- helpers ---------------------------------------------------------------------------------

    def finance_events(self) -> list[dict[str, Any]]:
        return self.api.events("finance")

    def types(self) -> list[str]:
        return [e["type"] for e in self.finance_events()]

    def get(self, path: str, role: str = "guarantor", params: Any = None, **claims: Any) -> Any:
        headers = self.api.headers(role, **claims)
        return self.api.session.get(self.api.base + path, headers=headers, params=params)

    def guarantor(self, path: str, body: dict[str, Any]) -> Any:
        return self.api.post(f"/api/v1/finance{path}", body, role="guarantor", district=DISTRICT)

    def bank(self, code: str, path: str, body: dict[str, Any]) -> Any:
        return self.api.post(f"/api/v1/finance{path}", body, role="bank", bank=code)

    def raw(self, source: str, stream_type: str, stream_id: str, type_: str, data: dict) -> str:
        response = self.api.post(
            f"/api/v1/{source}/raw-events",
            {"stream_id": stream_id, "stream_type": stream_type, "type": type_, "data": data},
            role="ops",
        )
        return created(response)["event_id"]

    def rejected(self, response: Any, field: str, before: int, status: int = 422) -> None:
        """A 4xx naming ``field``, and no event written."""
        assert response.status_code == status, response.text
        assert field in response.json().get("errors", {}), response.text
        assert len(self.finance_events()) == before

    # -- the catalogue ---------------------------------------------------------------------------

    def fund(self, fund_id: str = "F1", balance_fen: int = 2_000_000, **kwargs: Any) -> None:
        body = {"id": fund_id, "district": DISTRICT, "name": "district risk fund", **kwargs}
        created(self.guarantor("/funds", body))
        if balance_fen:
            created(
                self.guarantor(
                    f"/funds/{fund_id}/top-ups",
                    {"amount_fen": balance_fen, "topped_up_on": "2026-01-02"},
                )
            )

    def scheme(self, scheme_id: str = "S4321", fund_id: str = "F1", bank: str = "BANKA") -> None:
        parties = [
            {"party_id": "G1", "party_type": "guarantor", "share_bp": 4000},
            {"party_id": "RG1", "party_type": "re_guarantor", "share_bp": 3000},
            {"party_id": bank, "party_type": "bank", "share_bp": 2000},
            {"party_id": fund_id, "party_type": "risk_fund", "share_bp": 1000},
        ]
        body = {
            "id": scheme_id,
            "district": DISTRICT,
            "name": "4:3:2:1",
            "fund_id": fund_id,
            "parties": parties,
        }
        created(self.guarantor("/schemes", body))

    def product(self, product_id: str = "GONGFU", scheme_id: str = "S4321", **kwargs: Any) -> None:
        body = {
            "id": product_id,
            "district": DISTRICT,
            "name": "共富贷",
            "purposes": ["aquaculture", "land_transfer", "machinery"],
            "min_amount_fen": 100_000,
            "max_amount_fen": 50_000_000,
            "max_term_months": 36,
            "max_fee_rate_bp": 80,
            "borrower_cap_fen": 30_000_000,
            "scheme_id": scheme_id,
            "overdue_grace_days": 0,
            "compensation_after_days": 90,
            **kwargs,
        }
        created(self.guarantor("/products", body))

    # -- a loan through its stages ---------------------------------------------------------------

    def apply(self, loan_id: str, bank: str = "BANKA", **kwargs: Any) -> Any:
        body = {
            "id": loan_id,
            "product_id": "GONGFU",
            "borrower_id": kwargs.pop("borrower_id", f"B-{loan_id}"),
            "borrower_type": "cooperative",
            "borrower_name": "虾蟹合作社",
            "village_id": self.villages[0],
            "bank_code": bank,
            "purpose": "aquaculture",
            "principal_fen": 3_000_000,
            "term_months": 12,
            "applied_on": "2026-02-01",
            **kwargs,
        }
        return self.api.post("/api/v1/finance/loans", body, role="village_cadre")

    def approved(self, loan_id: str, guaranteed_fen: int = 2_400_000, **apply: Any) -> None:
        created(self.apply(loan_id, **apply))
        created(self.guarantor(f"/loans/{loan_id}/due-diligence", {"passed": True}))
        created(self.approve(loan_id, guaranteed_fen))

    def approve(self, loan_id: str, guaranteed_fen: int, fee_rate_bp: int = 50) -> Any:
        return self.guarantor(
            f"/loans/{loan_id}/approval",
            {
                "guarantor_id": "G1",
                "guaranteed_fen": guaranteed_fen,
                "fee_rate_bp": fee_rate_bp,
                "approved_on": "2026-02-10",
            },
        )

    def disbursed(
        self, loan_id: str, bank: str = "BANKA", on: str = "2026-03-01", **kw: Any
    ) -> None:
        self.approved(loan_id, bank=bank, **kw)
        created(
            self.guarantor(
                f"/loans/{loan_id}/guarantee-contract", {"id": f"GC-{loan_id}", "signed_on": on}
            )
        )
        created(self.bank(bank, f"/loans/{loan_id}/disbursement", {"disbursed_on": on}))

    def sweep(self, as_of: str) -> dict[str, Any]:
        return created(self.api.post("/api/v1/finance/sweeps", {"as_of": as_of}, role="ops"))


def build_world(
    start_services: Any,
    *extra: type,
    villages: int = 1,
    banks: tuple[str, ...] = ("BANKA",),
    amqp_uri: str | None = None,
    **overrides: Any,
) -> World:
    """Finance, the alliance and the given stubs; villages and banks in the directory
    (``overrides``: nameko config, e.g. ``max_workers``)."""
    api = start_services(FinanceService, AllianceService, *extra, amqp_uri=amqp_uri, **overrides)

    def admin(path: str, body: dict[str, Any]) -> None:
        created(api.post(f"/api/v1/alliance{path}", body, role="district_admin", district=DISTRICT))

    admin("/alliances", {"id": "A1", "district": DISTRICT, "name": "红盟", "level": "district"})
    admin(
        "/clusters",
        {"id": "C1", "alliance_id": "A1", "name": "共富组团", "theme_industry": "aquaculture"},
    )
    for code in banks:
        admin(
            "/units",
            {
                "id": f"U-{code}",
                "district": DISTRICT,
                "name": f"银行 {code}",
                "unit_type": "bank",
                "bank_code": code,
            },
        )
    village_ids = [f"V{i + 1}" for i in range(villages)]
    for village_id in village_ids:
        admin(
            "/units",
            {
                "id": village_id,
                "district": DISTRICT,
                "name": f"村 {village_id}",
                "unit_type": "village",
                "village": {
                    "population": 1200,
                    "households": 400,
                    "contracted_area_mu": "3000.00",
                    "weak": False,
                },
            },
        )
        admin(f"/units/{village_id}/memberships", {"cluster_id": "C1", "joined_on": "2026-01-01"})

    def in_cluster(village_id: str) -> bool:
        # Registered and joined: membership comes after registration on the village's stream.
        known = api.get(f"/api/v1/finance/directory/villages/{village_id}")
        return known.status_code == 200 and known.json()["cluster_id"] == "C1"

    wait_for(lambda: all(map(in_cluster, village_ids)), what="the villages in cluster C1")
    world = World(api, village_ids, list(banks))
    return world
