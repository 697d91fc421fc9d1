"""Create and identify: find the customers owning any given identifier, then create,
update or resolve the conflict, in one transaction.

Concurrency: advisory locks on every requested identifier (sorted) serialise requests
that share one, so no two can both see "nobody owns this" and create duplicates. Then
the matched customers' rows are locked in id order, and ownership is read again: if a
merge or move slipped in between, the whole use case starts over.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.service import Change, append_changes
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, IdentifierTaken, InvalidInput
from app.core.ids import new_id
from app.core.retry import StaleRead, with_retries
from app.customers import repository
from app.customers import rows as customer_rows
from app.customers.inputs import (
    FieldChange,
    IdentifierReader,
    ProfileValues,
    ProjectRules,
    WantedIdentifier,
    apply_profile,
    load_rules,
    raise_if_invalid,
    read_identifiers,
    read_profile,
)
from app.customers.models import Customer
from app.customers.schemas import (
    CustomerCreate,
    CustomerIdentify,
    IdentifyResultKind,
    IgnoredIdentifier,
    OnConflict,
)
from app.customers.views import AuthTokenStatus, CustomerView, surviving_id, views_of
from app.identity import kinds
from app.identity import service as identity
from app.identity.merge import merge_locked_customers
from app.identity.service import IdentifierRef
from app.subscriptions import service as subscriptions_service
from app.subscriptions.schemas import SubscriptionDecision


@dataclass(frozen=True)
class IdentifyOutcome:
    dry_run: bool
    result: IdentifyResultKind
    matched_by: list[str]
    merged_ids: list[uuid.UUID]
    ignored: list[IgnoredIdentifier]
    view: CustomerView


@dataclass(frozen=True)
class IdentifyRequest:
    """A request read and normalised: what identify applies (the API's or an import row's)."""

    customer_id: uuid.UUID | None
    wanted: list[WantedIdentifier]
    ignored: list[IgnoredIdentifier]
    profile: ProfileValues
    subscriptions: list[SubscriptionDecision]

    @property
    def refs(self) -> list[IdentifierRef]:
        return [w.ref for w in self.wanted]


@dataclass
class _Changes:
    """Changelog rows per customer, collected while a use case runs."""

    by_customer: dict[uuid.UUID, list[Change]] = field(default_factory=lambda: defaultdict(list))

    def add(self, customer_id: uuid.UUID, change: Change) -> None:
        self.by_customer[customer_id].append(change)


async def create_customer(
    uow: UnitOfWork, actor: Actor, body: CustomerCreate, *, default_phone_region: str
) -> IdentifyOutcome:
    """A new customer; 409 if any identifier already belongs to someone."""

    async def attempt() -> IdentifyOutcome:
        async with uow:
            session = uow.session
            request = await _read_request(
                session, actor, body, default_phone_region, allow_customer_id=False
            )
            await identity.lock_identities(session, actor.project_id, request.refs)
            owners = await identity.owners_of(session, actor.project_id, request.refs)
            if owners:
                raise _taken(request, owners)
            return await _create(session, actor, request)

    return await with_retries(attempt, retry_on=(StaleRead, IdentifierTaken))


async def identify_customer(
    uow: UnitOfWork,
    actor: Actor,
    body: CustomerIdentify,
    *,
    default_phone_region: str,
    dry_run: bool = False,
) -> IdentifyOutcome:
    """Create, update or reconcile the customer(s) these identifiers point at.

    A dry run does all of it and rolls back: the preview is exactly what would happen.
    """

    async def attempt() -> IdentifyOutcome:
        async with uow:
            session = uow.session
            request = await _read_request(
                session, actor, body, default_phone_region, allow_customer_id=True
            )
            outcome = await identify_in_transaction(session, actor, request, body.on_conflict)
            if dry_run:
                uow.discard()
                return replace(outcome, dry_run=True)
            return outcome

    return await with_retries(attempt, retry_on=(StaleRead, IdentifierTaken))


async def _read_request(
    session: AsyncSession,
    actor: Actor,
    body: CustomerCreate,
    default_phone_region: str,
    *,
    allow_customer_id: bool,
) -> IdentifyRequest:
    rules = await load_rules(
        session, actor.project_id, actor.project, default_phone_region=default_phone_region
    )
    return read_request(body, rules, allow_customer_id=allow_customer_id)


def read_request(
    body: CustomerCreate, rules: ProjectRules, *, allow_customer_id: bool
) -> IdentifyRequest:
    """Normalise and validate a body against the project's rules; 422 lists every problem."""
    reader = IdentifierReader(rules)
    wanted = read_identifiers(reader, body.identifiers)
    profile = read_profile(body.profile, rules, reader.errors, pointer="/profile")
    customer_id = body.identifiers.customer_id
    if customer_id is not None and not allow_customer_id:
        reader.errors.append(
            FieldError(
                pointer="/identifiers/customer_id",
                message="The service assigns ids; use identify to address a customer by id.",
            )
        )
    raise_if_invalid(reader.errors)
    if not wanted and customer_id is None:
        raise InvalidInput(
            "At least one usable identifier is required.",
            errors=[FieldError(pointer="/identifiers", message="No usable identifier")],
        )
    decisions = body.subscriptions if isinstance(body, CustomerIdentify) else []
    return IdentifyRequest(customer_id, wanted, reader.ignored, profile, decisions or [])


def _taken(request: IdentifyRequest, owners: dict[IdentifierRef, uuid.UUID]) -> Conflict:
    errors = [
        FieldError(pointer=w.pointer, message=f"Already identifies customer {owners[w.ref]}.")
        for w in request.wanted
        if w.ref in owners
    ]
    return Conflict("An identifier already belongs to another customer.", errors=errors)


async def _create(session: AsyncSession, actor: Actor, request: IdentifyRequest) -> IdentifyOutcome:
    now = datetime.now(UTC)
    customer = Customer(
        id=new_id(),
        project_id=actor.project_id,
        status="active",
        merged_into=None,
        custom_fields={},
        version=1,
        created_at=now,
        updated_at=now,
    )
    profile_changes = apply_profile(customer, request.profile)
    await repository.insert_customer(session, customer)
    await identity.attach(session, customer.id, request.refs, actor=actor)
    changes = [_change("create", c) for c in profile_changes] + [
        Change("identifier_added", ref.kind, None, ref.value) for ref in request.refs
    ]
    await append_changes(session, customer.id, changes, actor=actor)
    await _apply_subscriptions(session, actor, customer.id, request)
    view = CustomerView.from_customer(customer, request.refs, merged_ids=[])
    return IdentifyOutcome(False, "created", [], [], request.ignored, view)


def _change(operation: str, change: FieldChange) -> Change:
    return Change(operation, change.field, change.old_value, change.new_value)


async def identify_in_transaction(
    session: AsyncSession, actor: Actor, request: IdentifyRequest, on_conflict: OnConflict
) -> IdentifyOutcome:
    """The identify use case inside the caller's transaction (an import batch's)."""
    project_id = actor.project_id
    explicit = [request.customer_id] if request.customer_id is not None else []
    await identity.lock_identities(session, project_id, request.refs, explicit)
    owners = await identity.owners_of(session, project_id, request.refs)
    matches = await _matches(session, project_id, request.customer_id, owners)
    if not matches:
        return await _create(session, actor, request)

    customers = await repository.lock_customers(session, project_id, sorted(matches))
    held = await _held_after_lock(session, project_id, customers, owners)
    priority = actor.project.identifier_priority
    target = min(customers, key=lambda c: (_strength(matches[c.id], priority), c.created_at, c.id))
    others = [c for c in customers if c.id != target.id]
    if others and on_conflict == "reject":
        raise _conflicting(request, owners, target)
    merged_ids: list[uuid.UUID] = []
    if others and on_conflict == "merge":
        sources = sorted(others, key=lambda c: c.updated_at, reverse=True)
        await merge_locked_customers(session, target, sources, actor=actor)
        merged_ids = [s.id for s in sources]
        owners = await identity.owners_of(session, project_id, request.refs)
        held = await _held_after_lock(session, project_id, [target], owners)
        others = []

    changes = _Changes()
    moved = await _attach_wanted(session, actor, target, request, owners, held, changes)
    for change in apply_profile(target, request.profile):
        changes.add(target.id, _change("update", change))
    await _bump_and_record(session, actor, [target, *others], changes)
    consent_changed = await _apply_subscriptions(session, actor, target.id, request)
    if consent_changed and target.id not in changes.by_customer:
        customer_rows.mark_changed(target)
        await session.flush()

    matched_by = sorted(
        {kind for kinds_ in matches.values() for kind in kinds_},
        key=lambda kind: kinds.priority_rank(kind, priority),
    )
    view = CustomerView.from_customer(
        target, held.identifiers[target.id], held.merged[target.id], held.auth_tokens[target.id]
    )
    result = _result_kind(
        merged=bool(merged_ids),
        moved=moved,
        changed=target.id in changes.by_customer or consent_changed,
    )
    return IdentifyOutcome(False, result, matched_by, merged_ids, request.ignored, view)


async def _apply_subscriptions(
    session: AsyncSession, actor: Actor, customer_id: uuid.UUID, request: IdentifyRequest
) -> bool:
    """Consent sent along with identify, after the identifiers it may need (an email for
    the email channel) are attached; True if any decision changed something."""
    if not request.subscriptions:
        return False
    results = await subscriptions_service.apply_decisions(
        session, actor, customer_id, request.subscriptions, pointer_prefix="/subscriptions"
    )
    return any(result.changed for result in results)


def _result_kind(*, merged: bool, moved: bool, changed: bool) -> IdentifyResultKind:
    if merged:
        return "merged"
    if moved:
        return "reassigned"
    return "updated" if changed else "unchanged"


async def _held_after_lock(
    session: AsyncSession,
    project_id: uuid.UUID,
    customers: list[Customer],
    owners: dict[IdentifierRef, uuid.UUID],
) -> "_Held":
    """What the locked customers hold now; start over if a merge or move slipped in before
    the locks (owners were read under the identifier locks, but not yet the row locks)."""
    views = await views_of(session, project_id, [c.id for c in customers])
    if any(c.status != "active" for c in customers):
        raise StaleRead
    for ref, owner in owners.items():
        if ref not in views[owner].identifiers:
            raise StaleRead
    return _Held(
        {cid: list(v.identifiers) for cid, v in views.items()},
        {cid: v.merged_ids for cid, v in views.items()},
        {cid: v.auth_token for cid, v in views.items()},
    )


async def _matches(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_id: uuid.UUID | None,
    owners: dict[IdentifierRef, uuid.UUID],
) -> dict[uuid.UUID, list[str]]:
    """Which customer each match points at, and by which identifier kinds."""
    matches: dict[uuid.UUID, list[str]] = defaultdict(list)
    if customer_id is not None:
        survivor = await surviving_id(session, project_id, customer_id)
        matches[survivor].append(kinds.CUSTOMER_ID)
    for ref, owner in owners.items():
        matches[owner].append(ref.kind)
    return matches


def _strength(matched_kinds: list[str], priority: tuple[str, ...]) -> int:
    return min(kinds.priority_rank(kind, priority) for kind in matched_kinds)


def _conflicting(
    request: IdentifyRequest, owners: dict[IdentifierRef, uuid.UUID], target: Customer
) -> Conflict:
    errors = [
        FieldError(pointer=w.pointer, message=f"Identifies customer {owners[w.ref]}.")
        for w in request.wanted
        if w.ref in owners
    ]
    if request.customer_id is not None:
        errors.insert(
            0, FieldError(pointer="/identifiers/customer_id", message=f"Is customer {target.id}.")
        )
    return Conflict(
        "The identifiers point at different customers; send on_conflict=reassign or merge.",
        errors=errors,
    )


@dataclass(frozen=True)
class _Held:
    """Identifiers (kept current as this use case changes them) and merged ids per customer."""

    identifiers: dict[uuid.UUID, list[IdentifierRef]]
    merged: dict[uuid.UUID, list[uuid.UUID]]
    auth_tokens: dict[uuid.UUID, AuthTokenStatus | None]


async def _attach_wanted(
    session: AsyncSession,
    actor: Actor,
    target: Customer,
    request: IdentifyRequest,
    owners: dict[IdentifierRef, uuid.UUID],
    held: _Held,
    changes: _Changes,
) -> bool:
    """Give the target every requested identifier; returns whether any was moved from another."""
    _refuse_emptying(owners, held, target)
    target_refs = held.identifiers[target.id]
    new_refs: list[IdentifierRef] = []
    moved = False
    for ref in request.refs:
        owner = owners.get(ref)
        if owner == target.id:
            continue
        await _replace_single_valued(session, actor, target.id, target_refs, ref, changes)
        target_refs.append(ref)
        if owner is None:
            new_refs.append(ref)
            changes.add(target.id, Change("identifier_added", ref.kind, None, ref.value))
            continue
        await identity.move(session, ref, from_customer=owner, to_customer=target.id, actor=actor)
        held.identifiers[owner].remove(ref)
        changes.add(owner, Change("identifier_moved_out", ref.kind, ref.value, None))
        changes.add(target.id, Change("identifier_moved_in", ref.kind, None, ref.value))
        moved = True
    await identity.attach(session, target.id, new_refs, actor=actor)
    return moved


def _refuse_emptying(owners: dict[IdentifierRef, uuid.UUID], held: _Held, target: Customer) -> None:
    """Every customer keeps at least one identifier: a reassign may not take the last."""
    for customer_id, identifiers in held.identifiers.items():
        if customer_id == target.id:
            continue
        moving = [ref for ref, owner in owners.items() if owner == customer_id]
        if identifiers and len(moving) >= len(identifiers):
            raise Conflict(
                f"Reassigning would leave customer {customer_id} without any identifier; "
                "merge the customers instead."
            )


async def _replace_single_valued(
    session: AsyncSession,
    actor: Actor,
    customer_id: uuid.UUID,
    held: list[IdentifierRef],
    ref: IdentifierRef,
    changes: _Changes,
) -> None:
    """A customer has one email, one phone, one of each external id: a new one replaces it."""
    if not kinds.is_single_valued(ref.kind):
        return
    for old in [h for h in held if h.kind == ref.kind and h.value != ref.value]:
        await identity.detach(session, customer_id, old, actor=actor, replaced_by=ref.value)
        changes.add(customer_id, Change("identifier_replaced", ref.kind, old.value, ref.value))
        held.remove(old)


async def _bump_and_record(
    session: AsyncSession, actor: Actor, customers: list[Customer], changes: _Changes
) -> None:
    now = datetime.now(UTC)
    for customer in customers:
        rows = changes.by_customer.get(customer.id)
        if not rows:
            continue
        customer.version += 1
        customer.updated_at = now
        await append_changes(session, customer.id, rows, actor=actor)
    await session.flush()
