"""POST /v1/customers/merge: merge named customers into a target, in one transaction.

Advisory locks on every customer involved (sorted), then their rows in id order: merges
and identifies touching the same customers queue behind each other and cannot deadlock.
"""

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import idempotency
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.core.idempotency import IdempotentRequest, StoredResponse
from app.customers import repository
from app.customers.models import Customer
from app.customers.presenters import merge_read
from app.customers.views import views_of
from app.identity import service as identity
from app.identity.merge import MergeResult, merge_locked_customers


@dataclass(frozen=True)
class MergeCommand:
    target_id: uuid.UUID
    source_ids: list[uuid.UUID]
    dry_run: bool


async def merge_customers(
    uow: UnitOfWork,
    actor: Actor,
    command: MergeCommand,
    *,
    idempotent: IdempotentRequest | None,
) -> StoredResponse:
    """The response as stored for replays (a dry run is never stored)."""
    _refuse_malformed(command)
    async with uow:
        session = uow.session
        if idempotent is not None and not command.dry_run:
            replay = await idempotency.claim(session, actor.project_id, idempotent)
            if replay is not None:
                return replay
        target, sources = await _lock_participants(session, actor, command)
        result = await merge_locked_customers(session, target, sources, actor=actor)
        response = StoredResponse(200, await _body(session, actor, result, command.dry_run))
        if command.dry_run:
            uow.discard()
        elif idempotent is not None:
            await idempotency.remember(session, actor.project_id, idempotent, response)
        return response


def _refuse_malformed(command: MergeCommand) -> None:
    errors: list[FieldError] = []
    if command.target_id in command.source_ids:
        errors.append(
            FieldError(pointer="/source_ids", message="A customer cannot merge into itself")
        )
    if len(set(command.source_ids)) != len(command.source_ids):
        errors.append(FieldError(pointer="/source_ids", message="Each customer at most once"))
    if errors:
        raise InvalidInput("The merge is not possible as asked.", errors=errors)


async def _lock_participants(
    session: AsyncSession, actor: Actor, command: MergeCommand
) -> tuple[Customer, list[Customer]]:
    everyone = [command.target_id, *command.source_ids]
    await identity.lock_identities(session, actor.project_id, [], everyone)
    locked = {c.id: c for c in await repository.lock_customers(session, actor.project_id, everyone)}
    missing = [str(cid) for cid in everyone if cid not in locked]
    if missing:
        raise NotFound(f"No customer {', '.join(missing)} in this project.")
    _refuse_inactive(locked[command.target_id], role="target")
    for source_id in command.source_ids:
        _refuse_inactive(locked[source_id], role="source")
    sources = sorted(
        (locked[cid] for cid in command.source_ids), key=lambda c: c.updated_at, reverse=True
    )
    return locked[command.target_id], sources


def _refuse_inactive(customer: Customer, *, role: str) -> None:
    if customer.status == "merged":
        raise Conflict(
            f"The {role} {customer.id} was already merged into {customer.merged_into}; "
            "merge with its survivor instead."
        )
    if customer.status == "erased":
        raise Conflict(f"The {role} {customer.id} has been erased.")


async def _body(
    session: AsyncSession, actor: Actor, result: MergeResult, dry_run: bool
) -> dict[str, object]:
    survivor = (await views_of(session, actor.project_id, [result.target.id]))[result.target.id]
    return merge_read(result, survivor, dry_run=dry_run).model_dump(mode="json")
