"""Customer auth tokens: the one token an app uses to act for a customer (/v1/me).

Issued (or rotated) and revoked with a secret key; shown once; only its hash is kept.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.service import Change, append_changes
from app.core import auth
from app.core.auth import CUSTOMER_TOKEN_MARKER, Actor
from app.core.db import UnitOfWork
from app.core.errors import Unauthenticated
from app.core.ids import new_id
from app.core.retry import with_retries
from app.customers import rows as customer_rows
from app.customers.models import Customer
from app.devices import repository
from app.devices.models import CustomerAuthToken


async def _record(session: AsyncSession, actor: Actor, customer: Customer, change: Change) -> None:
    customer_rows.mark_changed(customer)
    await append_changes(session, customer.id, [change], actor=actor)
    await session.flush()


@dataclass(frozen=True)
class IssuedToken:
    token: str
    fingerprint: str
    issued_at: datetime


async def issue_auth_token(uow: UnitOfWork, actor: Actor, customer_id: uuid.UUID) -> IssuedToken:
    """Issue the customer's auth token, retiring any earlier one; shown only here. Started
    over when the customer was merged or erased before its row was locked."""

    async def attempt() -> IssuedToken:
        async with uow:
            session = uow.session
            survivor = await customer_rows.survivor_id(session, actor.project_id, customer_id)
            customers = await customer_rows.lock_active(session, actor.project_id, [survivor])
            generated = auth.generate_key(CUSTOMER_TOKEN_MARKER)
            now = datetime.now(UTC)
            token = CustomerAuthToken(
                id=new_id(),
                project_id=actor.project_id,
                customer_id=survivor,
                prefix=generated.prefix,
                secret_hash=generated.secret_hash,
                issued_at=now,
            )
            await repository.replace_auth_token(session, token)
            change = Change("auth_token_issued", "auth_token", None, generated.prefix)
            await _record(session, actor, customers[survivor], change)
            return IssuedToken(token=generated.token, fingerprint=generated.prefix, issued_at=now)

    return await with_retries(attempt)


async def revoke_auth_token(uow: UnitOfWork, actor: Actor, customer_id: uuid.UUID) -> None:
    async def attempt() -> None:
        async with uow:
            session = uow.session
            survivor = await customer_rows.survivor_id(session, actor.project_id, customer_id)
            customers = await customer_rows.lock_active(session, actor.project_id, [survivor])
            if await repository.delete_auth_token(session, actor.project_id, survivor):
                change = Change("auth_token_revoked", "auth_token", None, None)
                await _record(session, actor, customers[survivor], change)

    await with_retries(attempt)


async def customer_for_token(uow: UnitOfWork, project_id: uuid.UUID, token: str) -> uuid.UUID:
    """The customer an X-Customer-Token acts for (its survivor if merged); 401 otherwise."""
    parts = auth.split_key(token, CUSTOMER_TOKEN_MARKER)
    if parts is None:
        raise Unauthenticated("The customer token is malformed.")
    prefix, secret = parts
    async with uow.read_only() as session:
        found = await repository.auth_token_by_prefix(session, prefix)
        stored_hash = found.secret_hash if found is not None else b"\0" * 32
        if not auth.secret_matches(secret, stored_hash) or found is None:
            raise Unauthenticated("The customer token is not valid (revoked or rotated?).")
        if found.project_id != project_id:
            raise Unauthenticated("The customer token is not valid (revoked or rotated?).")
        return await customer_rows.survivor_id(session, project_id, found.customer_id)
