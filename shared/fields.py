"""Request fields the services' HTTP schemas have in common.

Factories rather than field classes: each call returns a fresh marshmallow field, and keyword
arguments (``required``, ``load_default``, ``allow_none``, ``metadata`` ...) pass through.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import marshmallow as ma

from shared.clock import today

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
ID = ma.validate.Regexp(ID_PATTERN, error="1-64 characters of A-Z a-z 0-9 . _ : -")
BASIS_POINTS = 10_000


class Body(ma.Schema):
    """A request body: a field the schema does not declare is refused."""

    class Meta:
        unknown = ma.RAISE


def identifier(**kwargs: Any) -> ma.fields.String:
    """An id: 1-64 characters of A-Z a-z 0-9 . _ : -"""
    return ma.fields.String(validate=ID, **kwargs)


def text(max_length: int = 200, **kwargs: Any) -> ma.fields.String:
    """Free text of 1 to ``max_length`` characters (names, titles, reasons)."""
    return ma.fields.String(validate=ma.validate.Length(min=1, max=max_length), **kwargs)


def at_most_two_places(value: Decimal) -> None:
    """Validator: a quantity in mu (or another unit) has at most two decimal places."""
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ma.ValidationError("at most 2 decimal places")


def positive(value: Decimal) -> None:
    """Validator: greater than zero."""
    if value <= 0:
        raise ma.ValidationError("must be positive")


def area(*validators: Any, **kwargs: Any) -> ma.fields.Decimal:
    """A decimal quantity (an area in mu) given as a string, with at most two decimal places;
    ``validators`` run after the places check."""
    return ma.fields.Decimal(as_string=True, validate=[at_most_two_places, *validators], **kwargs)


def count(minimum: int = 0, maximum: int | None = None, **kwargs: Any) -> ma.fields.Integer:
    """A strict integer in ``[minimum, maximum]`` (no upper bound when ``maximum`` is None)."""
    return ma.fields.Integer(
        strict=True, validate=ma.validate.Range(min=minimum, max=maximum), **kwargs
    )


def fen(minimum: int = 0, **kwargs: Any) -> ma.fields.Integer:
    """An amount of money in fen: a strict integer of at least ``minimum``."""
    return count(minimum, **kwargs)


def basis_points(**kwargs: Any) -> ma.fields.Integer:
    """A share in basis points: a strict integer from 0 to 10 000."""
    return count(0, BASIS_POINTS, **kwargs)


def day(required: bool = False) -> ma.fields.Date:
    """An ISO date; when not required, it defaults to today in the district's time zone."""
    if required:
        return ma.fields.Date(required=True)
    return ma.fields.Date(load_default=today, metadata={"description": "default: today"})


def optional_day(**kwargs: Any) -> ma.fields.Date:
    """An ISO date that may be left out (None); the service decides what that means."""
    return ma.fields.Date(load_default=None, **kwargs)


def instant(**kwargs: Any) -> ma.fields.AwareDateTime:
    """An ISO datetime with a zone, None when left out (the service then uses now)."""
    return ma.fields.AwareDateTime(load_default=None, **kwargs)
