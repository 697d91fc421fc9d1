"""Identifier operations used by every use case that changes who a customer is.

All functions take the caller's session: they run inside its transaction. Each change
to an identifier writes its ID-changelog row in the same transaction.
"""

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Actor
from app.core.copy import copy_records
from app.core.ids import new_id
from app.identity import kinds, repository
from app.identity.models import CustomerIdentifier, IdentifierHistory


@dataclass(frozen=True, order=True)
class IdentifierRef:
    """A normalised identifier: the unit of matching, locking and uniqueness."""

    kind: str
    value: str


def _lock_key(text_key: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock."""
    digest = hashlib.blake2b(text_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def identifier_lock_key(project_id: uuid.UUID, ref: IdentifierRef) -> int:
    return _lock_key(f"identifier\x1f{project_id}\x1f{ref.kind}\x1f{ref.value}")


def customer_lock_key(project_id: uuid.UUID, customer_id: uuid.UUID) -> int:
    return _lock_key(f"customer\x1f{project_id}\x1f{customer_id}")


def project_identities_lock_key(project_id: uuid.UUID) -> int:
    return _lock_key(f"project-identities\x1f{project_id}")


async def lock_identities(
    session: AsyncSession,
    project_id: uuid.UUID,
    refs: Iterable[IdentifierRef],
    customer_ids: Iterable[uuid.UUID] = (),
) -> None:
    """Serialise every transaction touching any of these identifiers or customers.

    Locks are taken in ascending key order, so two transactions with overlapping sets
    queue behind each other and never deadlock; they are released at commit. Before them,
    the project's identities lock is taken in share mode: a bulk import batch takes it
    exclusively (`lock_all_identities`), so it resolves thousands of rows at once without a
    lock per identifier, and no API call changes an identity of the project meanwhile.
    """
    keys = {identifier_lock_key(project_id, ref) for ref in refs}
    keys |= {customer_lock_key(project_id, customer_id) for customer_id in customer_ids}
    await repository.advisory_lock(
        session, shared=project_identities_lock_key(project_id), keys=sorted(keys)
    )


async def lock_all_identities(session: AsyncSession, project_id: uuid.UUID) -> None:
    """Hold every identity of the project until commit: see `lock_identities`."""
    await repository.advisory_lock_exclusive(session, project_identities_lock_key(project_id))


async def owners_of(
    session: AsyncSession, project_id: uuid.UUID, refs: Iterable[IdentifierRef]
) -> dict[IdentifierRef, uuid.UUID]:
    pairs = [(ref.kind, ref.value) for ref in refs]
    rows = await repository.find_owners(session, project_id, pairs)
    return {IdentifierRef(kind, value): customer_id for kind, value, customer_id in rows}


async def identifiers_by_customer(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[CustomerIdentifier]]:
    grouped: dict[uuid.UUID, list[CustomerIdentifier]] = {cid: [] for cid in customer_ids}
    for row in await repository.identifiers_of(session, project_id, customer_ids):
        grouped[row.customer_id].append(row)
    return grouped


async def attach(
    session: AsyncSession, customer_id: uuid.UUID, refs: Sequence[IdentifierRef], *, actor: Actor
) -> None:
    """New identifiers for a customer (the caller has checked nobody owns them)."""
    await repository.insert_identifiers(
        session,
        [
            {
                "id": new_id(),
                "project_id": actor.project_id,
                "customer_id": customer_id,
                "kind": ref.kind,
                "value": ref.value,
                "touchpoint": actor.touchpoint,
            }
            for ref in refs
        ],
    )
    await _record(session, actor, [_event(customer_id, "added", ref) for ref in refs])


# The column orders of the records copy_attached takes.
IDENTIFIER_COPY_COLUMNS = ("id", "project_id", "customer_id", "kind", "value", "touchpoint")
HISTORY_COPY_COLUMNS = (
    "id",
    "project_id",
    "customer_id",
    "event",
    "kind",
    "value",
    "touchpoint",
    "initiator",
    "request_id",
)


async def copy_attached(
    session: AsyncSession,
    identifiers: Sequence[Sequence[Any]],
    history: Sequence[Sequence[Any]],
) -> None:
    """`attach` in bulk (a bulk import), with COPY: the identifiers and their ID changelog
    rows, which the caller builds in the column orders above."""
    await copy_records(session, "customer_identifiers", IDENTIFIER_COPY_COLUMNS, identifiers)
    await copy_records(session, "identifier_history", HISTORY_COPY_COLUMNS, history)


async def detach(
    session: AsyncSession,
    customer_id: uuid.UUID,
    ref: IdentifierRef,
    *,
    actor: Actor,
    replaced_by: str | None = None,
) -> None:
    """Remove an identifier; it stays in the ID changelog as `removed` or `replaced`."""
    await repository.delete_identifier(session, actor.project_id, ref.kind, ref.value)
    event = "replaced" if replaced_by is not None else "removed"
    await _record(session, actor, [_event(customer_id, event, ref, replaced_by=replaced_by)])


async def move(
    session: AsyncSession,
    ref: IdentifierRef,
    *,
    from_customer: uuid.UUID,
    to_customer: uuid.UUID,
    actor: Actor,
) -> None:
    """Reassign an identifier; both customers' ID changelogs say where it went."""
    await repository.reassign_identifier(
        session, actor.project_id, ref.kind, ref.value, to_customer
    )
    await _record(
        session,
        actor,
        [
            _event(from_customer, "moved_out", ref, other=to_customer),
            _event(to_customer, "moved_in", ref, other=from_customer),
        ],
    )


@dataclass(frozen=True)
class MergedIdentifier:
    kind: str
    value: str
    from_customer: uuid.UUID
    kept: str | None = None  # for a clash: the survivor's own value, which stays


@dataclass(frozen=True)
class IdentifierMerge:
    moved: list[MergedIdentifier]
    clashed: list[MergedIdentifier]


async def merge_into(
    session: AsyncSession,
    target_id: uuid.UUID,
    source_ids: Sequence[uuid.UUID],
    *,
    actor: Actor,
) -> IdentifierMerge:
    """The identity step of a merge: every identifier of the sources goes to the target.

    A single-valued kind the target already holds (or an earlier source gave it) clashes:
    the target keeps its value, the source's is released and recorded in the target's ID
    changelog (`merged_clash`). `source_ids` is in precedence order (most recent first).
    """
    held = await identifiers_by_customer(session, actor.project_id, [target_id, *source_ids])
    taken = {row.kind: row.value for row in held[target_id] if kinds.is_single_valued(row.kind)}
    moved: list[MergedIdentifier] = []
    clashed: list[MergedIdentifier] = []
    events: list[_Event] = []
    for source_id in source_ids:
        for row in held[source_id]:
            ref = IdentifierRef(row.kind, row.value)
            events.append(_event(source_id, "merged_out", ref, other=target_id))
            if kinds.is_single_valued(row.kind) and row.kind in taken:
                await repository.delete_identifier(session, actor.project_id, row.kind, row.value)
                clash = MergedIdentifier(row.kind, row.value, source_id, kept=taken[row.kind])
                clashed.append(clash)
                events.append(
                    _event(target_id, "merged_clash", ref, replaced_by=clash.kept, other=source_id)
                )
                continue
            await repository.hand_over_identifier(
                session, actor.project_id, row.id, to_customer=target_id, origin_customer=source_id
            )
            if kinds.is_single_valued(row.kind):
                taken[row.kind] = row.value
            moved.append(MergedIdentifier(row.kind, row.value, source_id))
            events.append(_event(target_id, "merged_in", ref, other=source_id))
    await _record(session, actor, events)
    return IdentifierMerge(moved=moved, clashed=clashed)


@dataclass(frozen=True)
class _Event:
    customer_id: uuid.UUID
    event: str
    ref: IdentifierRef
    replaced_by: str | None
    other_customer_id: uuid.UUID | None


def _event(
    customer_id: uuid.UUID,
    event: str,
    ref: IdentifierRef,
    *,
    replaced_by: str | None = None,
    other: uuid.UUID | None = None,
) -> _Event:
    return _Event(customer_id, event, ref, replaced_by, other)


async def _record(session: AsyncSession, actor: Actor, events: Sequence[_Event]) -> None:
    await repository.insert_history(
        session,
        [
            {
                "id": new_id(),
                "project_id": actor.project_id,
                "customer_id": event.customer_id,
                "event": event.event,
                "kind": event.ref.kind,
                "value": event.ref.value,
                "replaced_by": event.replaced_by,
                "other_customer_id": event.other_customer_id,
                "touchpoint": actor.touchpoint,
                "initiator": actor.initiator,
                "request_id": actor.request_id,
            }
            for event in events
        ],
    )


async def history(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    *,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[IdentifierHistory]:
    """The ID changelog of these customers, newest first."""
    return await repository.list_history(
        session, project_id=project_id, customer_ids=customer_ids, before_id=before_id, limit=limit
    )


async def erase(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[str]:
    """The identity step of an erase: identifiers deleted (anyone may use them again), the
    ID changelog's values replaced by the marker. Returns every value removed, so other
    domains can find copies of them."""
    current = await repository.erase_identifiers(session, project_id, customer_ids)
    past = await repository.redact_history(session, project_id, customer_ids)
    return sorted({value for _, value in current} | set(past))
