"""Events of the trusteeship service: the contract on ``trusteeship.events``.

``WorkAccepted`` (read by ranking) and ``ServiceFeeSettled`` (read by finance) cross service
boundaries; their fields listed in docs/events/README.md are a promise. The other events are this
service's own record; the internal ledger events (schedule slots, accepted-area and subsidy ledgers,
dispatch proposals) exist so that every invariant is decided by one aggregate, inside one stream.

Streams: ``provider:<id>``, ``order:<id>`` (the order and its work tasks), ``team:<id>``,
``machine:<id>``, ``operator:<id>`` (each a bookable schedule),
``acceptance:<parcel>:<slot>:<season>``,
``subsidy-parcel:<parcel>:<season>``, ``subsidy-customer:<customer>:<year>``,
``subsidy-programme:<district>:<season>``, ``claim:<id>``, ``proposal:<id>``, ``village-site:<id>``.
"""

from __future__ import annotations

import marshmallow as ma

from shared.events import Event, event_type

STAGES = ("plough", "sow", "protect", "harvest")
PROVIDER_TYPES = ("collective", "cooperative", "company", "family_farm", "individual")
CUSTOMER_TYPES = ("household", "family_farm", "cooperative", "enterprise")
TEAM_TYPES = ("machinery", "plant_protection", "technical")
MACHINE_TYPES = (
    "tractor",
    "rotary_tiller",
    "seeder",
    "transplanter",
    "drone",
    "sprayer",
    "harvester",
)
RESOURCE_KINDS = ("team", "machine", "operator")


def _area() -> ma.fields.Decimal:
    return ma.fields.Decimal(required=True, as_string=True, places=2)


def _coordinate() -> ma.fields.Decimal:
    return ma.fields.Decimal(required=True, as_string=True, places=6)


class StagePrice(ma.Schema):
    stage = ma.fields.String(required=True, validate=ma.validate.OneOf(STAGES))
    unit_price_fen = ma.fields.Integer(required=True)
    unit = ma.fields.String(required=True, validate=ma.validate.OneOf(("mu", "mu_pass")))


class OrderParcel(ma.Schema):
    parcel_id = ma.fields.String(required=True)
    parcel_area_mu = _area()
    contracted_area_mu = _area()


class TrackPoint(ma.Schema):
    lat = _coordinate()
    lon = _coordinate()
    at = ma.fields.AwareDateTime(required=True)


class SettlementLine(ma.Schema):
    task_id = ma.fields.String(required=True)
    stage = ma.fields.String(required=True)
    accepted_area_mu = _area()
    unit_price_fen = ma.fields.Integer(required=True)
    amount_fen = ma.fields.Integer(required=True)


class Booking(ma.Schema):
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(RESOURCE_KINDS))
    resource_id = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)


class ProposedAssignment(ma.Schema):
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    team_id = ma.fields.String(required=True)
    machine_ids = ma.fields.List(ma.fields.String(), required=True)
    operator_ids = ma.fields.List(ma.fields.String(), required=True)
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(required=True)
    travel_km = ma.fields.Decimal(required=True, as_string=True, places=2)


class UnplacedTask(ma.Schema):
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    detail = ma.fields.String(required=True)


# -- providers --------------------------------------------------------------------------------


@event_type
class ProviderRegistered(Event):
    """A service organisation enters the provider directory (服务主体名录库), listed until a day
    (``listed_until``, exclusive) or indefinitely. A village-collective-run provider names its
    village: its fees are the collective's income."""

    TYPE = "ProviderRegistered"
    provider_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    provider_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PROVIDER_TYPES))
    village_id = ma.fields.String(required=True, allow_none=True)
    collective_village_id = ma.fields.String(required=True, allow_none=True)
    listed_on = ma.fields.Date(required=True)
    listed_until = ma.fields.Date(required=True, allow_none=True)


@event_type
class ProviderBlacklisted(Event):
    """A provider is blacklisted: barred from new contracts and subsidy claims until
    ``barred_until`` (exclusive)."""

    TYPE = "ProviderBlacklisted"
    provider_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    blacklisted_on = ma.fields.Date(required=True)
    barred_until = ma.fields.Date(required=True)


@event_type
class PriceListPublished(Event):
    """A provider's prices for one season: fen per mu, or per mu-pass for crop protection."""

    TYPE = "PriceListPublished"
    provider_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    season = ma.fields.String(required=True)
    prices = ma.fields.List(ma.fields.Nested(StagePrice), required=True)
    published_on = ma.fields.Date(required=True)


# -- orders and their work tasks --------------------------------------------------------------


@event_type
class TrusteeshipOrdered(Event):
    """A farmer or co-op orders full (all four stages) or partial trusteeship of parcels."""

    TYPE = "TrusteeshipOrdered"
    order_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    customer_id = ma.fields.String(required=True)
    customer_name = ma.fields.String(required=True)
    customer_type = ma.fields.String(required=True, validate=ma.validate.OneOf(CUSTOMER_TYPES))
    small_farmer = ma.fields.Boolean(required=True)
    crop = ma.fields.String(required=True)
    season = ma.fields.String(required=True)
    mode = ma.fields.String(required=True, validate=ma.validate.OneOf(("full", "partial")))
    stages = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(STAGES)), required=True)
    protect_passes = ma.fields.Integer(required=True)
    parcels = ma.fields.List(ma.fields.Nested(OrderParcel), required=True)
    contracted_area_mu = _area()
    ordered_on = ma.fields.Date(required=True)


@event_type
class TrusteeshipContractSigned(Event):
    """The service contract is signed at the provider's published prices for the season."""

    TYPE = "TrusteeshipContractSigned"
    order_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    prices = ma.fields.List(ma.fields.Nested(StagePrice), required=True)
    signed_on = ma.fields.Date(required=True)


@event_type
class TrusteeshipCancelled(Event):
    """An order is cancelled before any work started; its dispatched windows are released."""

    TYPE = "TrusteeshipCancelled"
    order_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    cancelled_on = ma.fields.Date(required=True)


@event_type
class WorkTaskScheduled(Event):
    """A work task (order × stage × parcel, × pass for crop protection) is planned for a day."""

    TYPE = "WorkTaskScheduled"
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    stage = ma.fields.String(required=True, validate=ma.validate.OneOf(STAGES))
    pass_no = ma.fields.Integer(required=True)
    season = ma.fields.String(required=True)
    area_mu = _area()
    planned_on = ma.fields.Date(required=True)


@event_type
class TeamDispatched(Event):
    """A team, its machines and operators are booked for a task in a time window."""

    TYPE = "TeamDispatched"
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    team_id = ma.fields.String(required=True)
    machine_ids = ma.fields.List(ma.fields.String(), required=True)
    operator_ids = ma.fields.List(ma.fields.String(), required=True)
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(required=True)
    proposal_id = ma.fields.String(required=True, allow_none=True)


@event_type
class DispatchRejected(Event):
    """A dispatch of a task was not made. From automatic dispatch (``manual`` false): the task
    could not be placed, ``reason`` says why (no_team, no_capacity, no_licensed_operator,
    window_full, no_location); recorded on the task's order stream when the dispatch desk
    confirms a proposal, and the task is then unplaced. From a manual dispatch (``manual`` true):
    a rule refused it (double booking, travel buffer, licence, capacity, order not signed, ...);
    ``reason`` is the refusal the desk was answered with (422) and ``field`` the request field it
    named; recorded in its own transaction after the refusal, and the task's state is unchanged."""

    TYPE = "DispatchRejected"
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    planned_on = ma.fields.Date(required=True)
    reason = ma.fields.String(required=True)
    detail = ma.fields.String(required=True)
    proposal_id = ma.fields.String(required=True, allow_none=True)
    manual = ma.fields.Boolean(load_default=False)
    field = ma.fields.String(load_default=None, allow_none=True)


@event_type
class WorkStarted(Event):
    """The dispatched team started work on a task."""

    TYPE = "WorkStarted"
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    team_id = ma.fields.String(required=True)
    started_at = ma.fields.AwareDateTime(required=True)


@event_type
class WorkProgressReported(Event):
    """Area done so far on a task (cumulative), with optional BeiDou track points."""

    TYPE = "WorkProgressReported"
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    area_done_mu = _area()
    track = ma.fields.List(ma.fields.Nested(TrackPoint), required=True)
    reported_at = ma.fields.AwareDateTime(required=True)


@event_type
class WorkCompleted(Event):
    """The team reports a task done; acceptance follows."""

    TYPE = "WorkCompleted"
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    area_done_mu = _area()
    completed_at = ma.fields.AwareDateTime(required=True)


@event_type
class WorkAccepted(Event):
    """Farmer and village accept a task's work with its measured area (``measurement``: beidou,
    handheld or joint). Area accepted per parcel, stage slot and season never exceeds the parcel
    or the contracted area."""

    TYPE = "WorkAccepted"
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    stage = ma.fields.String(required=True, validate=ma.validate.OneOf(STAGES))
    pass_no = ma.fields.Integer(required=True)
    season = ma.fields.String(required=True)
    accepted_area_mu = _area()
    converted_area_mu = _area()
    small_farmer = ma.fields.Boolean(required=True)
    measurement = ma.fields.String(required=True)
    farmer_confirmed_by = ma.fields.String(required=True)
    village_confirmed_by = ma.fields.String(required=True)
    accepted_on = ma.fields.Date(required=True)


@event_type
class WorkRejected(Event):
    """Farmer or village dispute a task's work or area: it goes to joint measurement."""

    TYPE = "WorkRejected"
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    claimed_area_mu = ma.fields.Decimal(required=True, as_string=True, places=2, allow_none=True)
    rejected_on = ma.fields.Date(required=True)


@event_type
class ServiceFeeSettled(Event):
    """Fees for accepted, not yet settled tasks of an order: Σ accepted area × contract price.
    ``collective_village_id`` is set when the provider is village-collective-run."""

    TYPE = "ServiceFeeSettled"
    settlement_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    amount_fen = ma.fields.Integer(required=True)
    collective_village_id = ma.fields.String(required=True, allow_none=True)
    lines = ma.fields.List(ma.fields.Nested(SettlementLine), required=True)
    settled_on = ma.fields.Date(required=True)


@event_type
class ServiceRated(Event):
    """The customer rates the service of an order (1-5) after a settlement."""

    TYPE = "ServiceRated"
    order_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    score = ma.fields.Integer(required=True)
    comment = ma.fields.String(required=True)
    rated_on = ma.fields.Date(required=True)


# -- subsidies --------------------------------------------------------------------------------


@event_type
class SubsidyClaimed(Event):
    """A subsidy is claimed for one accepted task, within the caps (share of price, fen per mu
    per season over all stages, yearly cap per large operator)."""

    TYPE = "SubsidyClaimed"
    claim_id = ma.fields.String(required=True)
    task_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    customer_id = ma.fields.String(required=True)
    small_farmer = ma.fields.Boolean(required=True)
    beneficiary = ma.fields.String(
        required=True, validate=ma.validate.OneOf(("provider", "farmer"))
    )
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    stage = ma.fields.String(required=True)
    season = ma.fields.String(required=True)
    accepted_area_mu = _area()
    converted_area_mu = _area()
    amount_fen = ma.fields.Integer(required=True)
    cap_fen = ma.fields.Integer(required=True)
    claimed_on = ma.fields.Date(required=True)


@event_type
class SubsidyApproved(Event):
    """A claim passes the on-site check and keeps the small-farmer share of the season's
    approved funds at or above the target."""

    TYPE = "SubsidyApproved"
    claim_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    amount_fen = ma.fields.Integer(required=True)
    approved_on = ma.fields.Date(required=True)


@event_type
class SubsidyDenied(Event):
    """A claim is denied; its reserved amount is released from the caps."""

    TYPE = "SubsidyDenied"
    claim_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    denied_on = ma.fields.Date(required=True)


@event_type
class SubsidyPaid(Event):
    """An approved subsidy is paid (to the provider's corporate account or the farmer)."""

    TYPE = "SubsidyPaid"
    claim_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    amount_fen = ma.fields.Integer(required=True)
    paid_on = ma.fields.Date(required=True)


# -- teams, machines, operators, places -------------------------------------------------------


@event_type
class MachineryTeamRegistered(Event):
    """A provider's team (machinery, plant protection, technical) with its base."""

    TYPE = "MachineryTeamRegistered"
    team_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    team_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TEAM_TYPES))
    base_village_id = ma.fields.String(required=True)
    base_lat = _coordinate()
    base_lon = _coordinate()


@event_type
class MachineRegistered(Event):
    """A machine of a team with its type and daily capacity."""

    TYPE = "MachineRegistered"
    machine_id = ma.fields.String(required=True)
    team_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    machine_type = ma.fields.String(required=True, validate=ma.validate.OneOf(MACHINE_TYPES))
    capacity_mu_per_day = _area()


@event_type
class MachineOperatorRegistered(Event):
    """An operator of a team with the expiry of the operating licence (last valid day)."""

    TYPE = "MachineOperatorRegistered"
    operator_id = ma.fields.String(required=True)
    team_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    licence_no = ma.fields.String(required=True)
    licence_expires_on = ma.fields.Date(required=True)


@event_type
class OperatorLicenceRenewed(Event):
    """An operator's licence is renewed to a new expiry."""

    TYPE = "OperatorLicenceRenewed"
    operator_id = ma.fields.String(required=True)
    licence_expires_on = ma.fields.Date(required=True)


@event_type
class VillageSiteLocated(Event):
    """Where a village's fields are, for travel distances (WGS-84 degrees)."""

    TYPE = "VillageSiteLocated"
    village_id = ma.fields.String(required=True)
    lat = _coordinate()
    lon = _coordinate()


@event_type
class ScheduleSlotBooked(Event):
    """Internal: a team, machine or operator is booked for a window (its schedule stream)."""

    TYPE = "ScheduleSlotBooked"
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(RESOURCE_KINDS))
    resource_id = ma.fields.String(required=True)
    task_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(required=True)


@event_type
class ScheduleSlotReleased(Event):
    """Internal: a booked window is freed (its order was cancelled)."""

    TYPE = "ScheduleSlotReleased"
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(RESOURCE_KINDS))
    resource_id = ma.fields.String(required=True)
    task_id = ma.fields.String(required=True)


@event_type
class AcceptedAreaBooked(Event):
    """Internal: the acceptance ledger of one parcel × stage slot × season takes a task's area."""

    TYPE = "AcceptedAreaBooked"
    parcel_id = ma.fields.String(required=True)
    slot = ma.fields.String(required=True)
    season = ma.fields.String(required=True)
    task_id = ma.fields.String(required=True)
    provider_id = ma.fields.String(required=True)
    area_mu = _area()
    parcel_area_mu = _area()


@event_type
class SubsidyReserved(Event):
    """Internal: a subsidy ledger (per parcel-season, customer-year or programme) takes a claim."""

    TYPE = "SubsidyReserved"
    claim_id = ma.fields.String(required=True)
    task_id = ma.fields.String(required=True)
    amount_fen = ma.fields.Integer(required=True)
    small_farmer = ma.fields.Boolean(required=True)
    area_mu = _area()


@event_type
class SubsidyReservationReleased(Event):
    """Internal: a denied claim leaves a subsidy ledger."""

    TYPE = "SubsidyReservationReleased"
    claim_id = ma.fields.String(required=True)


@event_type
class DispatchProposed(Event):
    """Automatic dispatch proposes an assignment of a day's pending tasks; ``bookings`` are the
    schedule versions it read, so a confirmation sees whether anything changed since."""

    TYPE = "DispatchProposed"
    proposal_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True, allow_none=True)
    day = ma.fields.Date(required=True)
    assignments = ma.fields.List(ma.fields.Nested(ProposedAssignment), required=True)
    unplaced = ma.fields.List(ma.fields.Nested(UnplacedTask), required=True)
    read_versions = ma.fields.List(ma.fields.Nested(Booking), required=True)
    total_travel_km = ma.fields.Decimal(required=True, as_string=True, places=2)


@event_type
class DispatchProposalConfirmed(Event):
    """The desk applied a proposal: its tasks are dispatched, unplaced ones rejected."""

    TYPE = "DispatchProposalConfirmed"
    proposal_id = ma.fields.String(required=True)
    dispatched = ma.fields.Integer(required=True)
    rejected = ma.fields.Integer(required=True)
