"""The competition and bulletin aggregates: versioned rules, adjustments, frozen bulletins."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from services.ranking.events import (
    AdjustmentRecorded,
    BulletinIssued,
    CompetitionDefined,
    CompetitionRulesChanged,
    CompetitionVersionActivated,
)
from services.ranking.scoring import rule_errors, rules_from_dict
from shared.aggregate import Aggregate, applies
from shared.errors import Conflict, DomainError


def check_rules(rules: dict[str, Any], field: str = "rules") -> None:
    """A rule set that cannot be scored is refused, naming the field at fault."""
    errors = rule_errors(rules_from_dict(rules))
    if set(rules["windows"]) and len(set(rules["windows"])) != len(rules["windows"]):
        errors["windows"] = "each window at most once"
    if errors:
        name, message = sorted(errors.items())[0]
        raise DomainError(message, name)


class Competition(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.district = ""
        self.name = ""
        self.rules: dict[int, dict[str, Any]] = {}
        self.active_version: int | None = None
        self.adjustments: set[str] = set()

    @property
    def latest_version(self) -> int:
        return max(self.rules, default=0)

    def define(self, district: str, name: str, rules: dict[str, Any]) -> None:
        check_rules(rules)
        self.trigger(
            CompetitionDefined, competition_id=self.id, district=district, name=name, rules=rules
        )

    def change_rules(self, rules: dict[str, Any]) -> int:
        check_rules(rules)
        version = self.latest_version + 1
        self.trigger(CompetitionRulesChanged, competition_id=self.id, version=version, rules=rules)
        return version

    def activate(self, version: int, caught_up_to: dict[str, int]) -> None:
        if version not in self.rules:
            raise DomainError(f"version {version} does not exist", "version")
        if self.active_version is not None and version <= self.active_version:
            raise Conflict(f"version {self.active_version} is already shown")
        self.trigger(
            CompetitionVersionActivated,
            competition_id=self.id,
            version=version,
            caught_up_to=caught_up_to,
        )

    def adjust(
        self,
        adjustment_id: str,
        entity_id: str,
        kind: str,
        points: Decimal,
        effective_on: date,
        reason: str,
    ) -> None:
        if adjustment_id in self.adjustments:
            raise Conflict(f"adjustment {adjustment_id!r} already exists")
        if kind == "veto" and points != 0:
            raise DomainError("a veto carries no points", "points")
        if kind != "veto" and points <= 0:
            raise DomainError("points must be positive", "points")
        self.trigger(
            AdjustmentRecorded,
            competition_id=self.id,
            adjustment_id=adjustment_id,
            entity_id=entity_id,
            kind=kind,
            points=points,
            effective_on=effective_on,
            reason=reason,
        )

    @applies(CompetitionDefined)
    def _defined(self, data: dict[str, Any]) -> None:
        self.district, self.name = data["district"], data["name"]
        self.rules[1] = data["rules"]

    @applies(CompetitionRulesChanged)
    def _changed(self, data: dict[str, Any]) -> None:
        self.rules[data["version"]] = data["rules"]

    @applies(CompetitionVersionActivated)
    def _activated(self, data: dict[str, Any]) -> None:
        self.active_version = data["version"]

    @applies(AdjustmentRecorded)
    def _adjusted(self, data: dict[str, Any]) -> None:
        self.adjustments.add(data["adjustment_id"])


def bulletin_id(competition_id: str, window: str, period: str) -> str:
    return f"{competition_id}:{window}:{period}"


class Bulletin(Aggregate):
    """Issued once; never changed (a second issue of the same period is a 409)."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.data: dict[str, Any] = {}

    def issue(self, **data: Any) -> None:
        if self.version:
            raise Conflict(f"bulletin {self.id!r} is already issued")
        self.trigger(BulletinIssued, bulletin_id=self.id, **data)

    @applies(BulletinIssued)
    def _issued(self, data: dict[str, Any]) -> None:
        self.data = data
