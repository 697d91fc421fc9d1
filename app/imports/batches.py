"""Apply one batch of parsed rows in the caller's transaction, with identify's semantics.

Most rows of a real file either name nobody yet (a new customer) or only identifiers one
customer already has or may simply gain (an update). Those are resolved together: one
COPY of the batch's identifiers into the staging table, one query for their owners, one
row lock statement, then COPYs of the new customers, identifiers and changelog rows.
Every other row (it matches several customers, would replace a customer's email or
phone, repeats an identifier of a row not yet written, carries subscriptions) goes
through the identify use case itself, in a savepoint, in file order: rows before it are
written first, and the rows after it are resolved again once it is applied. So every row
ends exactly as `POST /v1/customers/identify` would have left it, in file order.

The batch holds the project's identities lock (`lock_all_identities`) for its whole
transaction: no API call changes an identity of the project meanwhile.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uuid_utils
from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog import service as changelog
from app.changelog.service import Change
from app.core.auth import Actor
from app.core.errors import DomainError
from app.core.ids import new_row_id
from app.customers import rows as customer_rows
from app.customers.identify import identify_in_transaction
from app.customers.inputs import PROFILE_FIELDS, apply_profile
from app.customers.models import Customer
from app.customers.schemas import OnConflict
from app.identity import kinds
from app.identity import service as identity
from app.identity.service import IdentifierRef
from app.imports import staging
from app.imports.columns import ColumnPlan
from app.imports.rows import ParsedRow, column_of, json_text

# Ids of existing customers (uuid.UUID) and of rows created here (uuid_utils.UUID).
RowId = uuid.UUID | uuid_utils.UUID

# Identify outcomes as import counters.
_COUNTER_OF_RESULT = {
    "created": "created",
    "updated": "updated",
    "reassigned": "updated",
    "merged": "merged",
    "unchanged": "skipped",
}


@dataclass(frozen=True)
class ReportLine:
    row_number: int
    column: str
    message: str
    original: str


@dataclass
class BatchResult:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    report: list[ReportLine] = field(default_factory=list)

    def refuse(self, row: ParsedRow, problems: list[tuple[str, str]]) -> None:
        self.counts["failed"] += 1
        original = row.original
        self.report += [ReportLine(row.number, c, m, original) for c, m in problems]


@dataclass
class _Staged:
    """What the staging query said about one row's identifiers."""

    owners: dict[IdentifierRef, uuid.UUID] = field(default_factory=dict)
    earlier_rows: dict[IdentifierRef, int] = field(default_factory=dict)


@dataclass
class _Written:
    """Rows the fast path writes with COPY at the end of a run."""

    customers: list[tuple[Any, ...]] = field(default_factory=list)
    identifiers: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    changelog: list[tuple[Any, ...]] = field(default_factory=list)


async def apply_batch(
    session: AsyncSession,
    actor: Actor,
    import_id: uuid.UUID,
    plan: ColumnPlan,
    rows: list[ParsedRow],
    on_conflict: OnConflict,
) -> BatchResult:
    result = BatchResult()
    await identity.lock_all_identities(session, actor.project_id)
    usable: list[ParsedRow] = []
    for row in rows:
        if not row.usable:
            result.refuse(row, [(p.column, p.message) for p in row.problems])
        else:
            usable.append(row)
    if not usable:
        return result
    await staging.add(
        session,
        import_id,
        [(row.number, kind, value) for row in usable for kind, value in row.refs],
    )
    staged = await _staged(session, actor, import_id, usable[0].number, usable[-1].number)
    _note_duplicates(result, usable, staged)
    pending = usable
    while True:
        fast_count = await _apply_fast_prefix(session, actor, pending, staged, result)
        if fast_count == len(pending):
            return result
        await _apply_one(session, actor, plan, pending[fast_count], on_conflict, result)
        pending = pending[fast_count + 1 :]
        if not pending:
            return result
        # The row just applied may have changed who owns what: resolve the rest again.
        staged = await _staged(session, actor, import_id, pending[0].number, pending[-1].number)


async def _staged(
    session: AsyncSession, actor: Actor, import_id: uuid.UUID, first_row: int, last_row: int
) -> dict[int, _Staged]:
    found: dict[int, _Staged] = defaultdict(_Staged)
    for item in await staging.resolve(
        session, import_id, actor.project_id, first_row=first_row, last_row=last_row
    ):
        ref = IdentifierRef(item.kind, item.value)
        if item.owner is not None:
            found[item.row_number].owners[ref] = item.owner
        if item.earlier_row is not None:
            found[item.row_number].earlier_rows[ref] = item.earlier_row
    return found


def _note_duplicates(
    result: BatchResult, rows: list[ParsedRow], staged: dict[int, _Staged]
) -> None:
    for row in rows:
        earlier = staged[row.number].earlier_rows
        if not earlier:
            continue
        result.counts["duplicates"] += 1
        named = ", ".join(f"{ref.kind} of row {n}" for ref, n in sorted(earlier.items()))
        result.report.append(
            ReportLine(
                row.number,
                "",
                f"repeats the {named}: applied after it, the later row wins",
                row.original,
            )
        )


async def _apply_fast_prefix(
    session: AsyncSession,
    actor: Actor,
    rows: list[ParsedRow],
    staged: dict[int, _Staged],
    result: BatchResult,
) -> int:
    """Apply the longest run of leading rows the set-based path can take; returns how many."""
    first_row = rows[0].number
    candidates: list[ParsedRow] = []
    for row in rows:
        info = staged[row.number]
        if _needs_identify(row, info, first_row):
            break
        candidates.append(row)
    targets = sorted({owner for row in candidates for owner in staged[row.number].owners.values()})
    locked = await customer_rows.lock_active(session, actor.project_id, targets)
    held = await _held_identifiers(session, actor.project_id, list(locked))
    now = datetime.now(UTC)
    written = _Written()
    applied = 0
    for row in candidates:
        owners = set(staged[row.number].owners.values())
        if not owners:
            _create(actor, row, now, written)
            result.counts["created"] += 1
        else:
            customer = locked.get(owners.pop())
            if customer is None:
                break
            changed = _update(actor, row, customer, held[customer.id], now, written)
            if changed is None:
                break
            result.counts["updated" if changed else "skipped"] += 1
        applied += 1
    await _write(session, written)
    await session.flush()
    return applied


def _needs_identify(row: ParsedRow, info: _Staged, first_row: int) -> bool:
    if row.needs_identify:
        return True
    # An identifier also named by an earlier row of this run: that row is not written yet.
    if any(n >= first_row for n in info.earlier_rows.values()):
        return True
    return len(set(info.owners.values())) > 1


async def _held_identifiers(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, set[str]]]:
    held: dict[uuid.UUID, dict[str, set[str]]] = {cid: defaultdict(set) for cid in customer_ids}
    by_customer = await identity.identifiers_by_customer(session, project_id, customer_ids)
    for customer_id, identifiers in by_customer.items():
        for identifier in identifiers:
            held[customer_id][identifier.kind].add(identifier.value)
    return held


def _create(actor: Actor, row: ParsedRow, now: datetime, written: _Written) -> None:
    """A new customer from what the parsing process prepared (apply_profile on an empty
    profile), so this loop only adds ids and who did it."""
    profile = row.new_profile
    if profile is None:
        raise ValueError(f"row {row.number} was not prepared for creation")
    customer_id = new_row_id()
    written.customers.append(
        (
            customer_id,
            actor.project_id,
            "active",
            *(getattr(profile, name) for name in PROFILE_FIELDS),
            json_text(profile.custom_fields),
            1,
            now,
            now,
        )
    )
    refs = [IdentifierRef(kind, value) for kind, value in row.refs]
    _attach(actor, customer_id, refs, written)
    changes: list[tuple[str, str | None, str | None, str | None]] = [
        ("create", name, old, new) for name, old, new in row.create_changes
    ]
    changes += [("identifier_added", ref.kind, None, json_text(ref.value)) for ref in refs]
    _record_json(actor, customer_id, changes, written)


def _update(
    actor: Actor,
    row: ParsedRow,
    customer: Customer,
    held: dict[str, set[str]],
    now: datetime,
    written: _Written,
) -> bool | None:
    """Whether the row changed the customer; None if only identify can apply it (it would
    replace the customer's email, phone or external id)."""
    request = row.request
    new_refs = [ref for ref in request.refs if ref.value not in held[ref.kind]]
    for ref in new_refs:
        if kinds.is_single_valued(ref.kind) and held[ref.kind]:
            return None
    for ref in new_refs:
        held[ref.kind].add(ref.value)
    changes = [Change("identifier_added", ref.kind, None, ref.value) for ref in new_refs]
    changes += [
        Change("update", c.field, c.old_value, c.new_value)
        for c in apply_profile(customer, request.profile)
    ]
    if not changes:
        return False
    customer.version += 1
    customer.updated_at = now
    _attach(actor, customer.id, new_refs, written)
    _record(actor, customer.id, changes, written)
    return True


def _attach(actor: Actor, customer_id: RowId, refs: list[IdentifierRef], written: _Written) -> None:
    for ref in refs:
        written.identifiers.append(
            (new_row_id(), actor.project_id, customer_id, ref.kind, ref.value, actor.touchpoint)
        )
        written.history.append(
            (
                new_row_id(),
                actor.project_id,
                customer_id,
                "added",
                ref.kind,
                ref.value,
                actor.touchpoint,
                actor.initiator,
                actor.request_id,
            )
        )


def _record(actor: Actor, customer_id: RowId, changes: list[Change], written: _Written) -> None:
    _record_json(
        actor,
        customer_id,
        [(c.operation, c.field, json_text(c.old_value), json_text(c.new_value)) for c in changes],
        written,
    )


def _record_json(
    actor: Actor,
    customer_id: RowId,
    changes: list[tuple[str, str | None, str | None, str | None]],
    written: _Written,
) -> None:
    """Changelog rows whose values are JSON text already."""
    project_id, touchpoint, initiator = actor.project_id, actor.touchpoint, actor.initiator
    key_id, request_id = actor.key_id, actor.request_id
    written.changelog += [
        (
            new_row_id(),
            project_id,
            customer_id,
            operation,
            name,
            old,
            new,
            touchpoint,
            initiator,
            key_id,
            request_id,
        )
        for operation, name, old, new in changes
    ]


async def _write(session: AsyncSession, written: _Written) -> None:
    # Each domain writes its own tables; customers first, the other rows reference them.
    await customer_rows.copy_new_customers(session, written.customers)
    await identity.copy_attached(session, written.identifiers, written.history)
    await changelog.copy_changes(session, written.changelog)


async def _apply_one(
    session: AsyncSession,
    actor: Actor,
    plan: ColumnPlan,
    row: ParsedRow,
    on_conflict: OnConflict,
    result: BatchResult,
) -> None:
    """The identify use case for one row, in a savepoint: a refused row leaves no trace."""
    try:
        async with session.begin_nested():
            outcome = await identify_in_transaction(session, actor, row.request, on_conflict)
    except DomainError as refused:
        problems = [(column_of(plan, row, e.pointer), e.message) for e in refused.errors]
        result.refuse(row, [("", refused.detail), *problems])
        return
    result.counts[_COUNTER_OF_RESULT[outcome.result]] += 1
