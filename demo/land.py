"""Land: a consolidated block per village entrusted to the exchange, contracts signed over the
history, and in the stream listings that go through registration, bidding, award and contract."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from demo.common import CADRE, STAFF, Demo, day_in, months, now
from demo.district import CLUSTERS, Village

L = "/api/v1/land"
TRANSFEREES = (
    ("cooperative", "合作社"),
    ("family_farm", "家庭农场"),
    ("household", "种植大户"),
)
#: Rent in fen per mu and year by cluster theme: about 600-1,100 yuan.
RENT = {
    "C-BAYBERRY": 95000,
    "C-SEAFOOD": 110000,
    "C-TEA": 90000,
    "C-RICE": 70000,
    "C-TOURISM": 80000,
    "C-FLOWERS": 85000,
    "C-VEG": 75000,
}
LAND_USE = {
    "C-BAYBERRY": "orchard",
    "C-SEAFOOD": "aquaculture",
    "C-TEA": "cash_crops",
    "C-RICE": "grain",
    "C-TOURISM": "cash_crops",
    "C-FLOWERS": "cash_crops",
    "C-VEG": "vegetables",
}


def block(village: Village, which: str) -> tuple[str, str, Decimal]:
    """The parcel id, entrustment id and area of a village's block: H (history) or S (stream)."""
    share = Decimal("0.12") if which == "H" else Decimal("0.08")
    area = (village.contracted_area_mu * share).quantize(Decimal("0.01"))
    return f"P-{village.id}-{which}", f"E-{village.id}-{which}", area


def ensure_block(demo: Demo, village: Village, which: str, since: date) -> None:
    parcel, entrustment, area = block(village, which)
    household = f"H-{village.id}-{which}"
    demo.api.ensure(
        f"{L}/parcels",
        {
            "id": parcel,
            "village_id": village.id,
            "household_id": household,
            "area_mu": str(area),
            "land_class": "paddy" if village.cluster_id == "C-RICE" else "dry",
            "basic_farmland": village.cluster_id == "C-RICE",
            "contract_period_ends_on": "2057-12-31",
            "registered_on": (since - timedelta(days=30)).isoformat(),
        },
        role=STAFF,
    )
    demo.api.ensure(
        f"{L}/parcels/{parcel}/entrustments",
        {
            "id": entrustment,
            "household_id": household,
            "agent": "exchange",
            "area_mu": str(area),
            "starts_on": since.isoformat(),
            "ends_on": "2040-12-31",
            "floor_fen_per_mu_year": 50000,
            "granted_on": (since - timedelta(days=20)).isoformat(),
        },
        role=STAFF,
    )


def setup(demo: Demo) -> None:
    since = demo.first_day
    for village in demo.district.villages:
        ensure_block(demo, village, "H", since)
        ensure_block(demo, village, "S", since)
    if demo.history:
        history(demo)


def history(demo: Demo) -> None:
    """One contract per cluster and month, a slice of one village's block each."""
    rng = demo.rng
    used: dict[str, Decimal] = {}
    for year, month in months(demo.first_day, demo.today):
        for index, (cluster_id, _name, _theme) in enumerate(CLUSTERS):
            villages = demo.district.in_cluster(cluster_id)
            village = villages[(month + year) % len(villages)]
            parcel, entrustment, area = block(village, "H")
            # Livelier clusters transfer more; this year more than last.
            growth = Decimal("1.25") if year == demo.today.year else Decimal(1)
            size = (area * Decimal(rng.uniform(0.12, 0.3)) * growth).quantize(Decimal("0.01"))
            if used.get(parcel, Decimal(0)) + size > area:
                continue
            used[parcel] = used.get(parcel, Decimal(0)) + size
            signed = day_in(year, month, rng, demo.today)
            kind, label = TRANSFEREES[(index + month) % len(TRANSFEREES)]
            demo.api.ensure(
                f"{L}/contracts",
                {
                    "id": f"TC-{year}{month:02d}-{cluster_id}",
                    "parcel_id": parcel,
                    "transferee_id": f"TR-{cluster_id}-{(month % 4) + 1}",
                    "transferee_type": kind,
                    "land_use": LAND_USE[cluster_id],
                    "area_mu": str(size),
                    "starts_on": (signed + timedelta(days=1)).isoformat(),
                    "ends_on": "2035-12-31",
                    "rent_fen_per_mu_year": RENT[cluster_id] + rng.randint(-50, 50) * 100,
                    "management_fee_bp": 300,
                    "entrustment_id": entrustment,
                    "signed_on": signed.isoformat(),
                },
                role=STAFF,
            )


# -- the steady stream: a listing's life, one step at a time --------------------------------------


def open_listing(demo: Demo) -> None:
    rng = demo.rng
    village = rng.choice(demo.district.villages)
    parcel, entrustment, area = block(village, "S")
    listing = demo.serial("LS")
    size = (area * Decimal(rng.uniform(0.02, 0.06))).quantize(Decimal("0.01"))
    reserve = RENT[village.cluster_id] - 10000
    start = demo.today.replace(day=1) + timedelta(days=40)
    demo.api.post(
        f"{L}/listings",
        {
            "id": listing,
            "parcel_id": parcel,
            "area_mu": str(max(size, Decimal("5.00"))),
            "starts_on": start.replace(day=1).isoformat(),
            "ends_on": "2035-12-31",
            "land_use": LAND_USE[village.cluster_id],
            "reserve_fen_per_mu_year": reserve,
            "increment_fen_per_mu_year": 1000,
            "deposit_fen": 500000,
            "entrustment_id": entrustment,
        },
        role=STAFF,
    )
    demo.api.post(
        f"{L}/listings/{listing}/reviews", {"approved": True, "opinion": "材料齐全"}, role=STAFF
    )
    closes = now() + timedelta(seconds=20)
    demo.api.post(
        f"{L}/listings/{listing}/publications",
        {
            "registration_closes_at": closes.isoformat(),
            "auction_starts_at": closes.isoformat(),
            "auction_ends_at": (closes + timedelta(seconds=60)).isoformat(),
        },
        role=STAFF,
    )
    bidders = []
    for n in range(3):
        kind, label = TRANSFEREES[n]
        bidder = f"BD-{village.cluster_id}-{n + 1}"
        demo.api.post(
            f"{L}/listings/{listing}/bidders",
            {"bidder_id": bidder, "bidder_type": kind, "name": f"{village.name}{label}"},
            role=STAFF,
        )
        demo.api.post(
            f"{L}/listings/{listing}/bidders/{bidder}/deposits", {"amount_fen": 500000}, role=STAFF
        )
        bidders.append(bidder)
    demo.bucket("listings").append(
        {"id": listing, "village": village.id, "bidders": bidders, "reserve": reserve}
    )


def bid(demo: Demo) -> None:
    listings = demo.bucket("listings")
    if not listings:
        return open_listing(demo)
    entry = demo.rng.choice(listings)
    listing = demo.api.get(f"{L}/listings/{entry['id']}", role=STAFF)
    if listing["state"] == "awarded":
        return contract(demo, entry, listing)
    if listing["state"] not in ("bidding",):
        if listing["state"] in ("failed", "cancelled", "terminated", "contracted"):
            listings.remove(entry)
        return None
    high = listing.get("high_bid") or {}
    amount = max(
        high.get("amount_fen_per_mu_year") or 0, entry["reserve"]
    ) + 1000 * demo.rng.randint(1, 3)
    leader = high.get("bidder_id")
    bidder = demo.rng.choice([b for b in entry["bidders"] if b != leader])
    demo.api.post(
        f"{L}/listings/{entry['id']}/bids",
        {"bidder_id": bidder, "amount_fen_per_mu_year": amount},
        role=STAFF,
    )
    return None


def contract(demo: Demo, entry: dict, listing: dict) -> None:
    demo.bucket("listings").remove(entry)
    award = listing["award"]
    area = Decimal(listing["terms"]["area_mu"])
    first_year = int(award["amount_fen_per_mu_year"] * area)
    demo.api.post(
        f"{L}/listings/{entry['id']}/winner-payments", {"amount_fen": first_year}, role=STAFF
    )
    kind = dict(zip(entry["bidders"], [t[0] for t in TRANSFEREES], strict=True))[award["bidder_id"]]
    demo.api.post(
        f"{L}/contracts",
        {
            "id": f"TC-{entry['id']}",
            "listing_id": entry["id"],
            "transferee_id": award["bidder_id"],
            "transferee_type": kind,
            "management_fee_bp": 300,
            "signed_on": demo.today.isoformat(),
        },
        role=STAFF,
    )
    for bidder in entry["bidders"]:
        if bidder != award["bidder_id"]:
            demo.api.post(f"{L}/listings/{entry['id']}/bidders/{bidder}/refunds", {}, role=STAFF)


def pay_rent(demo: Demo) -> None:
    invoices = demo.api.get(f"{L}/rent/invoices?status=due", role=STAFF)
    if not invoices:
        return
    invoice = demo.rng.choice(invoices)
    demo.api.post(
        f"{L}/contracts/{invoice['contract_id']}/rent-payments",
        {"invoice_id": invoice["invoice_id"], "amount_fen": invoice["outstanding_fen"]},
        role=CADRE,
        village=invoice.get("village_id", ""),
    )


def sweep(demo: Demo) -> None:
    demo.api.post(f"{L}/sweeps", {"as_of": now().isoformat()}, role="ops")
