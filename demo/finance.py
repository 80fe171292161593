"""Finance: the district risk fund, the 4:3:2:1 scheme per bank, 共富贷 and 虾蟹贷, guaranteed
loans through disbursement, and the village collectives' income."""

from __future__ import annotations

from datetime import date, timedelta

from demo.common import ADMIN, BANK, CADRE, GUARANTOR, Demo, day_in, fen, months
from demo.district import BANKS, CLUSTERS, DISTRICT, Village

F = "/api/v1/finance"
FUND = "F-HONGQIAO"
GUARANTOR_ID = "G-NONGDAN"
#: product id, name, purposes, bank code, scheme
PRODUCTS = (
    ("GONGFU", "共富贷", ["land_transfer", "machinery", "planting", "tourism"], "RCB"),
    ("XIAXIE", "虾蟹贷", ["aquaculture"], "PSBC"),
)
INCOME_CATEGORIES = ("land_rent", "asset_lease", "service_fee", "dividend")
BORROWERS = (
    ("cooperative", "专业合作社"),
    ("family_farm", "家庭农场"),
    ("household", "养殖户"),
    ("village_collective", "村股份经济合作社"),
)


def setup(demo: Demo) -> None:
    api = demo.api
    start = demo.first_day - timedelta(days=10)
    api.ensure(
        f"{F}/funds",
        {
            "id": FUND,
            "district": DISTRICT,
            "name": "区共富贷风险池",
            "established_on": start.isoformat(),
        },
        role=GUARANTOR,
    )
    api.ensure(
        f"{F}/funds/{FUND}/top-ups",
        {"amount_fen": fen(30_000_000), "topped_up_on": start.isoformat()},
        role=GUARANTOR,
        key="demo:fund-top-up:1",
    )
    for _unit, _name, code in BANKS:
        api.ensure(
            f"{F}/schemes",
            {
                "id": f"S-4321-{code}",
                "district": DISTRICT,
                "name": f"政担银 4:3:2:1（{code}）",
                "fund_id": FUND,
                "parties": [
                    {"party_id": GUARANTOR_ID, "party_type": "guarantor", "share_bp": 4000},
                    {"party_id": "RG-PROVINCE", "party_type": "re_guarantor", "share_bp": 3000},
                    {"party_id": code, "party_type": "bank", "share_bp": 2000},
                    {"party_id": FUND, "party_type": "risk_fund", "share_bp": 1000},
                ],
            },
            role=GUARANTOR,
        )
    for product, name, purposes, code in PRODUCTS:
        api.ensure(
            f"{F}/products",
            {
                "id": product,
                "district": DISTRICT,
                "name": name,
                "purposes": purposes,
                "min_amount_fen": fen(50_000),
                "max_amount_fen": fen(3_000_000),
                "max_term_months": 36,
                "max_fee_rate_bp": 80,
                "borrower_cap_fen": fen(3_000_000),
                "scheme_id": f"S-4321-{code}",
                "overdue_grace_days": 3,
                "compensation_after_days": 90,
            },
            role=GUARANTOR,
        )
    if demo.history:
        history(demo)


def loan(
    demo: Demo, loan_id: str, village: Village, applied: date, *, index: int, fresh: bool = False
) -> None:
    """Apply, check, approve, sign and disburse: a few days to three weeks. ``fresh`` loans of
    the stream are posted once; the history's are ensured (idempotent on a re-run)."""
    api, rng = demo.api, demo.rng
    seafood = village.cluster_id == "C-SEAFOOD"
    product, _name, purposes, code = PRODUCTS[1] if seafood else PRODUCTS[0]
    kind, label = BORROWERS[index % len(BORROWERS)]
    principal = fen(rng.choice((300_000, 500_000, 800_000, 1_000_000, 1_500_000, 2_000_000)))
    days = sorted(rng.sample(range(2, 21), 3))
    approved, signed, disbursed = (applied + timedelta(days=d) for d in days)
    disbursed = min(disbursed, demo.today)
    signed, approved = min(signed, disbursed), min(approved, disbursed)
    ensure = api.post if fresh else api.ensure
    ensure(
        f"{F}/loans",
        {
            "id": loan_id,
            "product_id": product,
            "borrower_id": f"BW-{loan_id}",
            "borrower_type": kind,
            "borrower_name": f"{village.name}{label}",
            "village_id": village.id,
            "bank_code": code,
            "purpose": rng.choice(purposes),
            "principal_fen": principal,
            "term_months": 36,
            "applied_on": applied.isoformat(),
        },
        role=CADRE,
        village=village.id,
        key=f"demo:loan:{loan_id}",
    )
    ensure(
        f"{F}/loans/{loan_id}/due-diligence",
        {"passed": True},
        role=GUARANTOR,
        key=f"demo:dd:{loan_id}",
    )
    ensure(
        f"{F}/loans/{loan_id}/approval",
        {
            "guarantor_id": GUARANTOR_ID,
            "guaranteed_fen": principal * 8 // 10,
            "fee_rate_bp": 50,
            "approved_on": approved.isoformat(),
        },
        role=GUARANTOR,
        key=f"demo:approve:{loan_id}",
    )
    ensure(
        f"{F}/loans/{loan_id}/guarantee-contract",
        {"id": f"GC-{loan_id}", "signed_on": signed.isoformat()},
        role=GUARANTOR,
        key=f"demo:gc:{loan_id}",
    )
    ensure(
        f"{F}/loans/{loan_id}/disbursement",
        {"disbursed_on": disbursed.isoformat()},
        role=BANK,
        bank=code,
        key=f"demo:disburse:{loan_id}",
    )


def history(demo: Demo) -> None:
    rng = demo.rng
    for index, (cluster_id, _name, _theme) in enumerate(CLUSTERS):
        villages = demo.district.in_cluster(cluster_id)
        # two to four loans per cluster and year, at different times of the year
        for year in (demo.today.year - 1, demo.today.year):
            for n in range(2 + (index + year) % 3):
                month = 1 + (n * 4 + index) % 12
                if date(year, month, 1) >= demo.today:
                    continue
                village = villages[(n + index) % len(villages)]
                applied = day_in(year, month, rng, demo.today - timedelta(days=25))
                loan(demo, f"LN-H{year}-{cluster_id}-{n}", village, applied, index=n)
    incomes(demo)


def incomes(demo: Demo) -> None:
    """Collective income of every cluster's villages per month, in one entry per cluster and
    month at a rotating village (rents, leases, service fees, dividends)."""
    rng = demo.rng
    for year, month in months(demo.first_day, demo.today):
        for index, (cluster_id, _name, _theme) in enumerate(CLUSTERS):
            villages = demo.district.in_cluster(cluster_id)
            village = villages[(month * 3 + index) % len(villages)]
            growth = 1.15 if year == demo.today.year else 1.0
            amount = fen(rng.uniform(20_000, 90_000) * growth * (1 + index % 3 * 0.2))
            demo.api.ensure(
                f"{F}/collective/incomes",
                {
                    "id": f"IN-{year}{month:02d}-{cluster_id}",
                    "village_id": village.id,
                    "amount_fen": amount,
                    "category": INCOME_CATEGORIES[(index + month) % len(INCOME_CATEGORIES)],
                    "note": "集体经营性收入",
                    "recorded_on": day_in(year, month, rng, demo.today).isoformat(),
                },
                role=ADMIN,
            )


# -- the steady stream ----------------------------------------------------------------------------


def stream_loan(demo: Demo) -> None:
    village = demo.rng.choice(demo.district.villages)
    loan(demo, demo.serial("LN"), village, demo.today, index=demo.rng.randint(0, 3), fresh=True)


def income(demo: Demo) -> None:
    village = demo.rng.choice(demo.district.villages)
    demo.api.post(
        f"{F}/collective/incomes",
        {
            "id": demo.serial("IN"),
            "village_id": village.id,
            "amount_fen": fen(demo.rng.uniform(2_000, 30_000)),
            "category": demo.rng.choice(INCOME_CATEGORIES),
            "note": "集体经营性收入",
            "recorded_on": demo.today.isoformat(),
        },
        role=CADRE,
        village=village.id,
    )


def sweep(demo: Demo) -> None:
    demo.api.post(f"{F}/sweeps", {"as_of": demo.today.isoformat()}, role="ops")
