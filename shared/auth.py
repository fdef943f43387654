"""API keys: named, hashed, scoped bearer tokens, and the FastAPI dependency that checks them."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import JSON, Column, String, Table, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shared.db import TZDateTime, as_utc, metadata
from shared.events import utcnow
from shared.http import ApiError, Resources, dependency_unavailable, get_resources

log = logging.getLogger(__name__)

SCOPES = (
    "events:write",
    "leads:read",
    "leads:write",
    "ops:read",
    "ops:write",
    "webhooks:manage",  # outbound lead webhook subscriptions, their secrets and delivery log
    "privacy",  # erase a person, export everything held about them
    "admin",
)
KEY_PREFIX = "lf_"

api_keys = Table(
    "api_keys",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", TZDateTime, nullable=False),
    Column("revoked_at", TZDateTime, nullable=True),
)


class ApiKeyError(ValueError):
    """A key operation that cannot be done (bad name or scope, duplicate, unknown key)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and what it may do."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """True if the key holds `scope` or `admin`."""
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as `leadflow keys list` shows it (never the key itself)."""

    name: str
    hint: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


def generate_key() -> str:
    """A new random key: `lf_` and 43 URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key. Keys are random 256-bit values, so a plain SHA-256 suffices:
    there is nothing to brute-force that a slow hash would protect."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, de-duplicated in order; raises naming any unknown one."""
    result: list[str] = []
    for scope in scopes:
        if scope not in SCOPES:
            raise ApiKeyError(f"unknown scope {scope!r}; known scopes: {', '.join(SCOPES)}")
        if scope not in result:
            result.append(scope)
    if not result:
        raise ApiKeyError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    return result


def create_key(session: Session, *, name: str, scopes: Iterable[str]) -> str:
    """Store a new key under `name` and return it; it is never shown again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiKeyError("a key name is 1-100 characters")
    checked = check_scopes(scopes)
    if session.execute(select(api_keys.c.name).where(api_keys.c.name == name)).first():
        raise ApiKeyError(f"a key named {name!r} already exists; revoke it or pick another name")
    key = generate_key()
    session.execute(
        insert(api_keys).values(
            name=name,
            key_hash=hash_key(key),
            hint=key[: len(KEY_PREFIX) + 4],
            scopes=checked,
            created_at=utcnow(),
        )
    )
    return key


def list_keys(session: Session) -> list[KeyInfo]:
    """Every key, revoked ones included, oldest first."""
    rows = session.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.name))
    return [
        KeyInfo(
            name=r.name,
            hint=r.hint,
            scopes=list(r.scopes),
            created_at=as_utc(r.created_at),  # type: ignore[arg-type]  # column is NOT NULL
            revoked_at=as_utc(r.revoked_at),
        )
        for r in rows
    ]


def revoke_key(session: Session, *, name: str) -> None:
    """Revoke the key named `name`; raises if there is no such active key."""
    # An UPDATE gives a CursorResult (with rowcount); Session.execute is typed as any Result.
    result = cast(
        "CursorResult[Any]",
        session.execute(
            update(api_keys)
            .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        ),
    )
    if result.rowcount == 0:
        raise ApiKeyError(f"no active key named {name!r}")


def any_key_exists(session: Session) -> bool:
    """True if at least one key, active or revoked, was ever created."""
    return session.execute(select(api_keys.c.name).limit(1)).first() is not None


def find_principal(session: Session, *, key: str) -> Principal | None:
    """The active key's principal, or None for an unknown or revoked key."""
    row = session.execute(
        select(api_keys.c.name, api_keys.c.scopes).where(
            api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None)
        )
    ).first()
    return None if row is None else Principal(name=row.name, scopes=frozenset(row.scopes))


ANONYMOUS = Principal(name="anonymous (auth off)", scopes=frozenset({"admin"}))


def bearer_token(request: Request) -> str:
    """The key from `Authorization: Bearer <key>`; 401 naming what is wrong."""
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(
            401,
            "unauthorized",
            "missing Authorization header; send 'Authorization: Bearer <api key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "Authorization header must be 'Bearer <api key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


async def authenticate(request: Request, resources: Resources) -> Principal:
    """The caller's principal from the bearer key (or ANONYMOUS with auth off); 401 otherwise.

    A key verified within `auth_cache_s` is answered on the event loop; only a miss reads the
    database, in a worker thread.
    """
    if resources.settings.auth == "off":
        return ANONYMOUS
    key = bearer_token(request)
    digest = hash_key(key)

    def load() -> Principal | None:
        with resources.sessions() as session:
            return find_principal(session, key=key)

    principal: Principal | None  # key_cache is TTLCache[Any]: shared.http can't import us
    hit, principal = resources.key_cache.cached(digest)
    if not hit:
        try:
            principal = await run_in_threadpool(resources.key_cache.get_or_load, digest, load)
        except Exception as exc:
            # Raised here, not left to the app's handlers: ingest's fast path checks keys
            # outside them.
            unavailable = dependency_unavailable(exc, where="API key lookup")
            if unavailable is None:
                raise
            raise unavailable from exc
    if principal is None:
        raise ApiError(
            401,
            "unauthorized",
            "unknown or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.principal = principal
    return principal


async def authorize(request: Request, resources: Resources, *, scope: str) -> Principal:
    """The caller's principal if its key holds `scope` (or admin) and is within its rate
    limit; 401, 403 or 429 otherwise. What `require(scope)` checks, for routes that call it."""
    principal = await authenticate(request, resources)
    if not principal.allows(scope):
        raise ApiError(
            403,
            "forbidden",
            f"API key {principal.name!r} lacks the scope {scope!r}",
            details=[{"field": "scope", "error": f"requires {scope}"}],
        )
    if principal is not ANONYMOUS:
        wait = resources.key_limiter.check(principal.name)
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                f"API key {principal.name!r} is over its rate limit; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
    return principal


# The OpenAPI's security scheme, so /docs' "Authorize" sends the key. It checks nothing and
# refuses nothing (auto_error=False): `authorize` reads the header itself, as it does on
# ingest's fast path, which runs outside FastAPI.
API_KEY_SCHEME = HTTPBearer(
    scheme_name="ApiKey",
    bearerFormat="lf_ API key",
    description="An API key (`leadflow keys create`), sent as `Authorization: Bearer <key>`. "
    "Each operation lists the scope its key needs; `admin` holds them all.",
    auto_error=False,
)


def require(scope: str) -> Any:
    """A dependency that admits callers whose key holds `scope` (or admin); 401/403 otherwise.
    The OpenAPI lists the route under the `ApiKey` scheme with `scope`."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(
        request: Request,
        resources: Annotated[Resources, Depends(get_resources)],
        _documented: HTTPAuthorizationCredentials | None = Security(API_KEY_SCHEME, scopes=[scope]),
    ) -> Principal:
        return await authorize(request, resources, scope=scope)

    return Depends(dependency)


EventsWriter = Annotated[Principal, require("events:write")]
LeadsReader = Annotated[Principal, require("leads:read")]
LeadsWriter = Annotated[Principal, require("leads:write")]
OpsReader = Annotated[Principal, require("ops:read")]
OpsWriter = Annotated[Principal, require("ops:write")]
WebhooksManager = Annotated[Principal, require("webhooks:manage")]
PrivacyOfficer = Annotated[Principal, require("privacy")]
