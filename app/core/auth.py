"""API keys as the client sees them: format, hashing, scopes, and the resolved Principal.

A key reads `cdp_<prefix>_<secret>`. The prefix is stored in clear to find the row; the
secret only as its SHA-256 digest. Secrets are 192 random bits, so a fast hash is safe
(no dictionary to attack), and digests are compared in constant time.
"""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

KEY_MARKER = "cdp"
# Customer auth tokens (app/devices) have the same shape with their own marker.
CUSTOMER_TOKEN_MARKER = "cdpc"  # noqa: S105 (a prefix, not a secret)
_PREFIX_BYTES = 6
_SECRET_BYTES = 24


class Scope(StrEnum):
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    CUSTOMERS_MERGE = "customers:merge"
    CUSTOMERS_ERASE = "customers:erase"
    LOYALTY_WRITE = "loyalty:write"
    SEGMENTS_WRITE = "segments:write"
    IMPORTS_WRITE = "imports:write"
    # Manage the project and its keys; implies every other scope.
    ADMIN = "admin"


@dataclass(frozen=True)
class ProjectSettings:
    """The project settings every request needs, read with the API key in one query.

    `rules_version` increases whenever the project's custom fields or blocklist change,
    so caches of those (app/customers/rules.py) know when to reload.
    """

    default_phone_region: str | None
    rules_version: int
    # Identifier priority groups, strongest first (app/identity/kinds.py).
    identifier_priority: tuple[str, ...]
    # Consent channels offered; empty: all (app/subscriptions).
    subscription_channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Principal:
    """Who is calling: resolved from the API key on every request."""

    project_id: uuid.UUID
    key_id: uuid.UUID
    key_name: str
    scopes: frozenset[Scope]
    touchpoint: str
    project: ProjectSettings
    allowed_touchpoints: frozenset[str] = frozenset()
    # "secret" keys live on servers; "publishable" keys ship inside apps and reach /v1/me only.
    kind: str = "secret"

    def has_scope(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    def may_act_as(self, touchpoint: str) -> bool:
        return touchpoint == self.touchpoint or touchpoint in self.allowed_touchpoints


@dataclass(frozen=True)
class Actor:
    """Who made a change and through which point of contact: what changelogs record."""

    project_id: uuid.UUID
    touchpoint: str
    initiator: str
    key_id: uuid.UUID | None
    request_id: str | None
    project: ProjectSettings


@dataclass(frozen=True)
class GeneratedKey:
    token: str
    prefix: str
    secret_hash: bytes


def generate_key(marker: str = KEY_MARKER) -> GeneratedKey:
    prefix = secrets.token_hex(_PREFIX_BYTES)
    secret = secrets.token_hex(_SECRET_BYTES)
    return GeneratedKey(
        token=f"{marker}_{prefix}_{secret}", prefix=prefix, secret_hash=hash_secret(secret)
    )


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def split_key(token: str, marker: str = KEY_MARKER) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    found_marker, _, rest = token.partition("_")
    prefix, _, secret = rest.partition("_")
    if found_marker != marker or len(prefix) != 2 * _PREFIX_BYTES or not secret:
        return None
    return prefix, secret


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
