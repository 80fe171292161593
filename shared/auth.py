"""Bearer tokens (HS256, signed with CLUSTERGOV_SECRET) carrying a role, a scope and an expiry,
and the one authorisation check every endpoint declares."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import jwt

from shared.errors import Forbidden, Unauthenticated

ALGORITHM = "HS256"
ISSUER = "clustergov"

#: Who may hold a token, and what for.
ROLES = {
    "ops": "operations: notification logs, replay, dead letters",
    "service": "another clustergov service reading this one (e.g. ranking)",
    "district_admin": "district organisation department: competitions, rules, bulletins",
    "alliance_secretary": "alliance or cluster secretary: members, tasks, activity",
    "village_cadre": "village cadre: village facts, progress, collective income",
    "exchange_staff": "rural property-rights exchange staff",
    "household": "contracting household or farmer",
    "trusteeship_centre": "trusteeship centre dispatcher",
    "guarantor": "policy guarantee company",
    "bank": "bank (sees only its own bank code)",
    "merchant": "merchant or e-commerce station",
    "screen": "a wall display: reads leaderboards and their live stream, nothing else",
}

SCOPE_FIELDS = ("district", "cluster", "village", "bank")


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    district: str | None = None
    cluster: str | None = None
    village: str | None = None
    bank: str | None = None
    expires_at: int = 0

    def claims(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def require_scope(self, **scope: str | None) -> None:
        """Forbid acting outside the token's scope. A scope field the token does not carry is
        unrestricted (a district admin carries a district, not a cluster)."""
        for name, wanted in scope.items():
            if name not in SCOPE_FIELDS:
                raise ValueError(f"unknown scope field {name!r}")
            held = getattr(self, name)
            if wanted is not None and held is not None and held != wanted:
                raise Forbidden(
                    f"token is scoped to {name} {held!r}, not {wanted!r}",
                    errors={name: [f"outside the token's {name} scope"]},
                )


def mint(
    secret: str,
    *,
    role: str,
    subject: str | None = None,
    ttl_seconds: int = 3600,
    now: float | None = None,
    **scope: str | None,
) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(sorted(ROLES))}")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": subject or role,
        "role": role,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    for name in SCOPE_FIELDS:
        if scope.get(name):
            claims[name] = scope[name]
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the bearer token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid bearer token: {exc}") from None
    role = claims.get("role")
    if role not in ROLES:
        raise Unauthenticated(f"invalid bearer token: unknown role {role!r}")
    return Principal(
        subject=str(claims["sub"]),
        role=role,
        expires_at=int(claims["exp"]),
        **{name: claims.get(name) for name in SCOPE_FIELDS},
    )


def authenticate(secret: str, authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer token is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return verify(secret, token.strip())


def authorise(principal: Principal, roles: Collection[str]) -> None:
    if principal.role not in roles:
        raise Forbidden(
            f"role {principal.role!r} may not do this; allowed: {', '.join(sorted(roles))}"
        )
