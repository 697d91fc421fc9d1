"""Recording actions: one (POST /v1/actions) or a batch of up to 1000 (POST /v1/actions/batch).

One transaction does, in this order, for one action as for a batch:
1. claim the Idempotency-Key (a retry waits here for the first request, then replays it);
2. check each action's type and payload against the type's current schema;
3. resolve each customer (following merges), then lock the customers' rows in id order;
4. claim the external ids (sorted) and insert the actions.

Why the customer rows are locked: a merge re-points the actions of its sources while it
holds the same row locks. So an action commits either before a merge (and is moved by it)
or after it (and is then resolved to the survivor). Without the lock, an action resolved
to a source just before a merge commits could be committed after it, left on a tombstone.
`lock_active` refuses a customer merged meanwhile; the use case then starts over once,
and that attempt resolves to the survivor. Ingest takes no advisory locks, and only the
row locks before its own rows, so the global lock order holds.

With `create_customer`, the customer is identified (created if nobody matches) first, in
identify's own transaction, once the action itself has been found valid; a retried request
identifies again, which finds the customer it created the first time.
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from jsonschema.protocols import Validator
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity import repository
from app.activity.models import Action
from app.activity.payloads import ValidatorCache, payload_errors
from app.activity.presenters import action_read
from app.activity.schemas import (
    ActionBatchItemResult,
    ActionBatchRead,
    ActionCreate,
    ActionItemError,
)
from app.core import idempotency
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict, DomainError, FieldError, InvalidInput
from app.core.idempotency import IdempotentRequest, StoredResponse
from app.core.ids import new_id
from app.core.problems import json_pointer
from app.core.retry import with_retries
from app.customers import rows as customer_rows
from app.customers.identify import identify_customer
from app.customers.inputs import raise_if_invalid
from app.customers.schemas import CustomerIdentify, IdentifiersIn
from app.customers.service import find_customer

_validators = ValidatorCache()
# One retry: the second attempt resolves a customer merged meanwhile to its survivor.
_ATTEMPTS = 2


@dataclass(frozen=True)
class _Item:
    """One action of a request: where it sits (for pointers) and, with create_customer,
    the customer identify found or created for it."""

    index: int
    body: ActionCreate
    pointer: str
    created_customer: uuid.UUID | None = None


@dataclass(frozen=True)
class _Pending:
    item: _Item
    action: Action


@dataclass(frozen=True)
class _Stored:
    action: Action
    duplicate: bool


_Outcome = _Stored | DomainError


async def record_action(
    uow: UnitOfWork,
    actor: Actor,
    body: ActionCreate,
    *,
    default_phone_region: str,
    idempotent: IdempotentRequest | None,
) -> StoredResponse:
    """201 with the new action; 200 with the stored one when its external_id was seen with
    the same body; 409 when with another."""
    item = _Item(0, body, "")
    if body.create_customer:
        await _raise_if_invalid_action(uow, actor, item)
        item = await _with_created_customer(uow, actor, item, default_phone_region)

    async def store(session: AsyncSession) -> StoredResponse:
        validators = await _validators_for(session, actor.project_id, [body.type])
        raise_if_invalid(_action_errors(item, validators))
        customer_id = await _customer_of(session, actor, item, default_phone_region)
        await _lock_live_customers(session, actor.project_id, [customer_id])
        [outcome] = await _store(session, actor, [_pending(actor, item, customer_id)])
        if isinstance(outcome, DomainError):
            raise outcome
        status = 200 if outcome.duplicate else 201
        return StoredResponse(status, action_read(outcome.action).model_dump(mode="json"))

    return await idempotency.once_per_key(
        uow, actor.project_id, idempotent, store, attempts=_ATTEMPTS
    )


async def record_batch(
    uow: UnitOfWork,
    actor: Actor,
    raw_actions: Sequence[dict[str, Any]],
    *,
    default_phone_region: str,
    idempotent: IdempotentRequest | None,
) -> StoredResponse:
    """Every valid action is stored (in one transaction); every other one is reported by
    its index with what is wrong with it. The answer is 200 either way."""
    items, rejected = _parse_items(raw_actions)
    items, more_rejected = await _identify_where_asked(uow, actor, items, default_phone_region)
    rejected |= more_rejected

    async def attempt() -> StoredResponse:
        async with uow:
            session = uow.session
            if idempotent is not None:
                replay = await idempotency.claim(session, actor.project_id, idempotent)
                if replay is not None:
                    return replay
            outcomes: dict[int, _Outcome] = dict(rejected)
            pending = await _prepare_batch(session, actor, items, outcomes, default_phone_region)
            await _lock_live_customers(
                session, actor.project_id, [p.action.customer_id for p in pending]
            )
            stored = await _store(session, actor, pending)
            outcomes.update((p.item.index, o) for p, o in zip(pending, stored, strict=True))
            body = _batch_read(outcomes, len(raw_actions)).model_dump(mode="json")
            response = StoredResponse(200, body)
            if idempotent is not None:
                await idempotency.remember(session, actor.project_id, idempotent, response)
            return response

    return await with_retries(attempt, attempts=_ATTEMPTS)


def _parse_items(
    raw_actions: Sequence[dict[str, Any]],
) -> tuple[list[_Item], dict[int, _Outcome]]:
    """Each action read on its own, so one malformed action does not refuse the others."""
    items: list[_Item] = []
    rejected: dict[int, _Outcome] = {}
    for index, raw in enumerate(raw_actions):
        pointer = f"/actions/{index}"
        try:
            items.append(_Item(index, ActionCreate.model_validate(raw), pointer))
        except ValidationError as invalid:
            rejected[index] = InvalidInput(
                "The action is not valid.",
                errors=[
                    FieldError(pointer + json_pointer(list(e["loc"])), e["msg"])
                    for e in invalid.errors()
                ],
            )
    return items, rejected


async def _identify_where_asked(
    uow: UnitOfWork, actor: Actor, items: list[_Item], default_phone_region: str
) -> tuple[list[_Item], dict[int, _Outcome]]:
    """Items asking for create_customer, once found valid, get their customer identified."""
    if not any(item.body.create_customer for item in items):
        return items, {}
    async with uow.read_only() as session:
        validators = await _validators_for(
            session, actor.project_id, {item.body.type for item in items}
        )
    ready: list[_Item] = []
    rejected: dict[int, _Outcome] = {}
    for item in items:
        if not item.body.create_customer:
            ready.append(item)
            continue
        errors = _action_errors(item, validators)
        if errors:
            rejected[item.index] = InvalidInput("The action is not valid.", errors=errors)
            continue
        try:
            ready.append(await _with_created_customer(uow, actor, item, default_phone_region))
        except DomainError as error:
            rejected[item.index] = error
    return ready, rejected


async def _prepare_batch(
    session: AsyncSession,
    actor: Actor,
    items: list[_Item],
    outcomes: dict[int, _Outcome],
    default_phone_region: str,
) -> list[_Pending]:
    """The items that are valid and whose customer is known; the others go to `outcomes`."""
    validators = await _validators_for(
        session, actor.project_id, {item.body.type for item in items}
    )
    resolved: dict[str, uuid.UUID] = {}
    pending: list[_Pending] = []
    for item in items:
        errors = _action_errors(item, validators)
        if errors:
            outcomes[item.index] = InvalidInput("The action is not valid.", errors=errors)
            continue
        # Many actions of a batch name the same customer: resolve each spelling once.
        spelling = item.body.customer.model_dump_json()
        try:
            customer_id = resolved.get(spelling) or await _customer_of(
                session, actor, item, default_phone_region
            )
        except DomainError as error:
            outcomes[item.index] = error
            continue
        if item.created_customer is None:
            resolved[spelling] = customer_id
        pending.append(_pending(actor, item, customer_id))
    return pending


async def _raise_if_invalid_action(uow: UnitOfWork, actor: Actor, item: _Item) -> None:
    """Before identify creates a customer for it: an invalid action must create nobody."""
    async with uow.read_only() as session:
        validators = await _validators_for(session, actor.project_id, [item.body.type])
    raise_if_invalid(_action_errors(item, validators))


async def _with_created_customer(
    uow: UnitOfWork, actor: Actor, item: _Item, default_phone_region: str
) -> _Item:
    """Identify's own transaction (it locks and retries by itself); its pointers are moved
    from /identifiers to where this request has them."""
    request = CustomerIdentify(identifiers=item.body.customer, on_conflict="reject")
    try:
        outcome = await identify_customer(
            uow, actor, request, default_phone_region=default_phone_region
        )
    except DomainError as error:
        moved = [_moved_pointer(e, item.pointer) for e in error.errors]
        error.errors = moved or [FieldError(f"{item.pointer}/customer", error.detail)]
        raise
    return replace(item, created_customer=outcome.view.id)


def _moved_pointer(error: FieldError, pointer: str) -> FieldError:
    if error.location != "body" or not error.pointer.startswith("/identifiers"):
        return error
    return replace(
        error, pointer=pointer + "/customer" + error.pointer.removeprefix("/identifiers")
    )


async def _validators_for(
    session: AsyncSession, project_id: uuid.UUID, keys: Collection[str]
) -> dict[str, Validator]:
    """The compiled validator of each declared type among `keys` (undeclared: absent).

    One query for the versions; the schemas are read only for validators not cached yet.
    """
    versions = await repository.type_versions(session, project_id, keys)
    found: dict[str, Validator] = {}
    for key, version in versions.items():
        cached = _validators.get(project_id, key, version)
        if cached is not None:
            found[key] = cached
    missing = [key for key in versions if key not in found]
    if missing:
        for key, version, schema in await repository.type_schemas(session, project_id, missing):
            found[key] = _validators.put(project_id, key, version, schema)
    return found


def _action_errors(item: _Item, validators: dict[str, Validator]) -> list[FieldError]:
    """What is wrong with an action that its request schema cannot tell."""
    errors: list[FieldError] = []
    if not _names_a_customer(item.body.customer):
        errors.append(
            FieldError(
                f"{item.pointer}/customer",
                "Name the customer: customer_id or at least one identifier.",
            )
        )
    validator = validators.get(item.body.type)
    if validator is None:
        errors.append(
            FieldError(
                f"{item.pointer}/type",
                f"No action type {item.body.type!r} is declared (POST /v1/action-types).",
            )
        )
    else:
        errors.extend(payload_errors(validator, item.body.payload, f"{item.pointer}/payload"))
    return errors


def _names_a_customer(identifiers: IdentifiersIn) -> bool:
    return any(
        (
            identifiers.customer_id is not None,
            identifiers.email is not None,
            identifiers.phone is not None,
            bool(identifiers.discount_cards),
            bool(identifiers.external),
        )
    )


async def _customer_of(
    session: AsyncSession, actor: Actor, item: _Item, default_phone_region: str
) -> uuid.UUID:
    """The live customer the action is for: 404 if nobody, 409 if the identifiers disagree."""
    if item.created_customer is not None:
        return await customer_rows.survivor_id(session, actor.project_id, item.created_customer)
    try:
        return await find_customer(
            session,
            actor,
            item.body.customer,
            default_phone_region=default_phone_region,
            pointer_prefix=f"{item.pointer}/customer",
        )
    except DomainError as error:
        if not error.errors:
            error.errors = [FieldError(f"{item.pointer}/customer", error.detail)]
        raise


async def _lock_live_customers(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """Row locks in id order (see the module docstring); merged meanwhile: start over."""
    if customer_ids:
        await customer_rows.lock_active(session, project_id, sorted(set(customer_ids)))


def _pending(actor: Actor, item: _Item, customer_id: uuid.UUID) -> _Pending:
    body = item.body
    action = Action(
        id=new_id(),
        project_id=actor.project_id,
        customer_id=customer_id,
        origin_customer_id=customer_id,
        type=body.type,
        occurred_at=body.occurred_at,
        received_at=datetime.now(UTC),
        payload=body.payload,
        touchpoint=actor.touchpoint,
        initiator=actor.initiator,
        request_id=actor.request_id,
        external_id=body.external_id,
    )
    return _Pending(item, action)


async def _store(session: AsyncSession, actor: Actor, pending: list[_Pending]) -> list[_Outcome]:
    """Insert the actions; one whose external_id is already stored is a duplicate (same
    body) or a conflict (another body), and so is a repeat of it within the batch."""
    references = await _external_id_references(session, actor.project_id, pending)
    outcomes: list[_Outcome] = []
    new: list[Action] = []
    for entry in pending:
        action = entry.action
        reference = references.get(action.external_id) if action.external_id else None
        if reference is None or reference is action:
            new.append(action)
            outcomes.append(_Stored(action, duplicate=False))
        elif _same_action(reference, action):
            outcomes.append(_Stored(reference, duplicate=True))
        else:
            outcomes.append(_external_id_taken(entry.item, reference))
    await repository.insert_actions(session, new)
    return outcomes


async def _external_id_references(
    session: AsyncSession, project_id: uuid.UUID, pending: list[_Pending]
) -> dict[str, Action]:
    """For each external id: the action that holds it, stored before or claimed now by the
    first action of this request that carries it."""
    first: dict[str, Action] = {}
    for entry in pending:
        external_id = entry.action.external_id
        if external_id is not None:
            first.setdefault(external_id, entry.action)
    claimed = await repository.claim_external_ids(
        session,
        [
            {
                "project_id": project_id,
                "external_id": external_id,
                "action_id": action.id,
                "occurred_at": action.occurred_at,
            }
            for external_id, action in sorted(first.items())
        ],
    )
    stored = await repository.actions_by_external_ids(
        session, project_id, [external_id for external_id in first if external_id not in claimed]
    )
    return {**{e: a for e, a in first.items() if e in claimed}, **stored}


def _same_action(stored: Action, candidate: Action) -> bool:
    """A resend: same customer (both resolved to the survivor), type, time and payload."""
    return (
        stored.customer_id == candidate.customer_id
        and stored.type == candidate.type
        and stored.occurred_at == candidate.occurred_at
        and stored.payload == candidate.payload
    )


def _external_id_taken(item: _Item, stored: Action) -> Conflict:
    return Conflict(
        f"The external_id belongs to another action ({stored.id}).",
        errors=[
            FieldError(
                f"{item.pointer}/external_id",
                "Already used for an action with another customer, type, time or payload.",
            )
        ],
    )


def _batch_read(outcomes: dict[int, _Outcome], count: int) -> ActionBatchRead:
    results = [_item_result(index, outcomes[index]) for index in range(count)]
    return ActionBatchRead(
        stored=sum(r.status == "stored" for r in results),
        duplicates=sum(r.status == "duplicate" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
        items=results,
    )


def _item_result(index: int, outcome: _Outcome) -> ActionBatchItemResult:
    if isinstance(outcome, _Stored):
        status = "duplicate" if outcome.duplicate else "stored"
        return ActionBatchItemResult(index=index, status=status, id=outcome.action.id)
    return ActionBatchItemResult(
        index=index,
        status="rejected",
        errors=[ActionItemError(pointer=e.pointer, message=e.message) for e in outcome.errors],
    )
