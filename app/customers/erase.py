"""Erase a customer (the right to be forgotten): its personal data goes, its records stay.

Every domain that keeps customer records erases its part, in one transaction, under the
same locks as a merge: identifiers are deleted (anyone may use them again), histories
keep their rows with each personal value replaced by "[erased]" (the one kind of change
the append-only tables accept, and only inside this use case), ledgers and counts stay
as they were so they still add up, and the customer becomes an `erased` tombstone so
merges and ledgers that point at it stay consistent. Customers merged into it are the
same person: they are erased with it. Who erased it and when is in its changelog.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from app.activity import service as activity_service
from app.changelog import service as changelog_service
from app.changelog.service import Change, append_changes
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.idempotency import forget_responses_mentioning
from app.core.retry import with_retries
from app.customers import repository
from app.customers import rows as customer_rows
from app.customers.views import surviving_id, views_of
from app.devices import service as devices_service
from app.identity import service as identity
from app.imports import service as imports_service
from app.loyalty import service as loyalty_service
from app.promotions import service as promotions_service
from app.segments import service as segments_service
from app.subscriptions import service as subscriptions_service


@dataclass(frozen=True)
class ErasedCustomer:
    id: uuid.UUID
    erased_ids: list[uuid.UUID]
    erased_at: datetime


async def erase_customer(uow: UnitOfWork, actor: Actor, customer_id: uuid.UUID) -> ErasedCustomer:
    """404 if the customer is unknown or already erased; a merged id erases its survivor."""
    project_id = actor.project_id

    async def attempt() -> ErasedCustomer:
        async with uow:
            session = uow.session
            survivor = await surviving_id(session, project_id, customer_id)
            held = (await views_of(session, project_id, [survivor]))[survivor].identifiers
            await identity.lock_identities(session, project_id, held, [survivor])
            await customer_rows.lock_active(session, project_id, [survivor])
            # Who was merged into it, read under its row lock (which every merge into it
            # takes): one that committed while this waited for the locks is erased too.
            view = (await views_of(session, project_id, [survivor]))[survivor]
            everyone = [survivor, *view.merged_ids]
            now = datetime.now(UTC)

            values = await identity.erase(session, project_id, everyone)
            await changelog_service.redact(session, project_id, everyone)
            for erase_step in (
                devices_service.erase,
                subscriptions_service.erase,
                activity_service.erase,
                loyalty_service.erase,
                promotions_service.erase,
                segments_service.erase,
            ):
                await erase_step(session, project_id, everyone)
            await repository.erase_profiles(
                session, project_id, everyone, survivor_id=survivor, now=now
            )
            # Copies outside the customer's own rows: stored API answers, import reports.
            await forget_responses_mentioning(
                session, project_id, [*(str(i) for i in everyone), *values]
            )
            await imports_service.erase_quotes(session, project_id, values)
            await append_changes(session, survivor, [Change("erase", None)], actor=actor)
            return ErasedCustomer(id=survivor, erased_ids=everyone, erased_at=now)

    return await with_retries(attempt)
