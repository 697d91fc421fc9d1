"""PATCH a customer: a JSON merge patch of profile fields and identifiers, with If-Match."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.service import Change, append_changes
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import FieldError, IdentifierTaken, InvalidInput, PreconditionFailed
from app.core.retry import StaleRead, with_retries
from app.customers import repository
from app.customers.inputs import (
    IdentifierReader,
    WantedIdentifier,
    apply_profile,
    load_rules,
    pointer_to,
    raise_if_invalid,
    read_profile,
)
from app.customers.models import Customer
from app.customers.schemas import CustomerPatch, IdentifiersPatch, ProfileIn
from app.customers.views import CustomerView, surviving_id, views_of
from app.identity import kinds
from app.identity import service as identity
from app.identity.service import IdentifierRef


@dataclass
class _IdentifierEdits:
    """What the patch asks for: per single-valued kind a new value or None (remove);
    for discount cards the complete new list, or None when the patch leaves them alone."""

    single: dict[str, WantedIdentifier | None] = field(default_factory=dict)
    cards: list[WantedIdentifier] | None = None

    @property
    def wanted(self) -> list[WantedIdentifier]:
        values = [w for w in self.single.values() if w is not None]
        return values + (self.cards or [])


async def update_customer(
    uow: UnitOfWork,
    actor: Actor,
    customer_id: uuid.UUID,
    patch: CustomerPatch,
    *,
    if_match: int | None,
    default_phone_region: str,
) -> CustomerView:
    async def attempt() -> CustomerView:
        async with uow:
            session = uow.session
            rules = await load_rules(
                session, actor.project_id, actor.project, default_phone_region=default_phone_region
            )
            reader = IdentifierReader(rules)
            edits = _read_edits(reader, patch.identifiers)
            profile = read_profile(
                patch.profile or ProfileIn(), rules, reader.errors, pointer="/profile"
            )
            raise_if_invalid(reader.errors)

            survivor = await surviving_id(session, actor.project_id, customer_id)
            refs = [w.ref for w in edits.wanted]
            await identity.lock_identities(session, actor.project_id, refs, [survivor])
            [customer] = await repository.lock_customers(session, actor.project_id, [survivor])
            if customer.status != "active":
                # Merged or erased after the survivor was read and before the lock: start over,
                # to patch the new survivor (or answer 404), never the tombstone.
                raise StaleRead
            if if_match is not None and customer.version != if_match:
                raise PreconditionFailed(
                    f"The customer is at version {customer.version}, not {if_match}; "
                    "read it again and reapply the change."
                )
            current = (await views_of(session, actor.project_id, [customer.id]))[customer.id]
            held = list(current.identifiers)
            changes = await _apply_identifier_edits(session, actor, customer, held, edits)
            changes += [
                Change("update", c.field, c.old_value, c.new_value)
                for c in apply_profile(customer, profile)
            ]
            if changes:
                customer.version += 1
                customer.updated_at = datetime.now(UTC)
                await append_changes(session, customer.id, changes, actor=actor)
                await session.flush()
            return CustomerView.from_customer(
                customer, held, current.merged_ids, current.auth_token
            )

    return await with_retries(attempt)


def _read_edits(reader: IdentifierReader, patch: IdentifiersPatch | None) -> _IdentifierEdits:
    edits = _IdentifierEdits()
    if patch is None:
        return edits
    sent = patch.model_fields_set
    for kind, name in ((kinds.EMAIL, "email"), (kinds.PHONE, "phone")):
        if name in sent:
            raw: str | None = getattr(patch, name)
            pointer = f"/identifiers/{name}"
            edits.single[kind] = None if raw is None else _read_strict(reader, kind, raw, pointer)
    for key, value in (patch.external or {}).items():
        pointer = pointer_to("identifiers", "external", key)
        if key not in reader.rules.unique_id_fields:
            reader.read_external(key, value or "", pointer)  # records the unknown-key error
            continue
        kind = kinds.external_kind(key)
        edits.single[kind] = None if value is None else _read_strict(reader, kind, value, pointer)
    if "discount_cards" in sent:
        cards = [
            _read_strict(
                reader, kinds.DISCOUNT_CARD, raw, pointer_to("identifiers", "discount_cards", i)
            )
            for i, raw in enumerate(patch.discount_cards or [])
        ]
        unique = {c.ref: c for c in cards if c is not None}
        edits.cards = list(unique.values())
    # Entries that failed to read are reported by the reader; drop their placeholders.
    edits.single = {k: v for k, v in edits.single.items() if v is not None or _is_removal(k, patch)}
    return edits


def _is_removal(kind: str, patch: IdentifiersPatch) -> bool:
    if kind == kinds.EMAIL:
        return patch.email is None
    if kind == kinds.PHONE:
        return patch.phone is None
    return (patch.external or {}).get(kinds.external_field(kind)) is None


def _read_strict(
    reader: IdentifierReader, kind: str, raw: str, pointer: str
) -> WantedIdentifier | None:
    """In a PATCH the caller names the value itself: a blocklisted one is an error, not ignored."""
    ignored_before = len(reader.ignored)
    wanted = reader.read(kind, raw, pointer)
    if len(reader.ignored) > ignored_before:
        reader.errors.append(
            FieldError(pointer=pointer, message="This value is on the identifier blocklist.")
        )
    return wanted


async def _apply_identifier_edits(
    session: AsyncSession,
    actor: Actor,
    customer: Customer,
    held: list[IdentifierRef],
    edits: _IdentifierEdits,
) -> list[Change]:
    """Apply the edits; `held` is updated in place to what the customer holds afterwards."""
    removals, additions, replaced = _plan(set(held), edits)
    remaining = [ref for ref in held if ref not in removals] + [w.ref for w in additions]
    if not remaining:
        raise InvalidInput(
            "A customer must keep at least one identifier.",
            errors=[FieldError(pointer="/identifiers", message="Would remove the last identifier")],
        )
    await _refuse_taken(session, actor, customer.id, additions)
    changes: list[Change] = []
    for ref in removals:
        new_value = replaced.get(ref)
        await identity.detach(session, customer.id, ref, actor=actor, replaced_by=new_value)
        operation = "identifier_replaced" if new_value is not None else "identifier_removed"
        changes.append(Change(operation, ref.kind, ref.value, new_value))
    await identity.attach(session, customer.id, [w.ref for w in additions], actor=actor)
    replacements = set(replaced.values())
    changes += [
        Change("identifier_added", w.ref.kind, None, w.ref.value)
        for w in additions
        if not (kinds.is_single_valued(w.ref.kind) and w.ref.value in replacements)
    ]
    held[:] = remaining
    return changes


def _plan(
    held: set[IdentifierRef], edits: _IdentifierEdits
) -> tuple[list[IdentifierRef], list[WantedIdentifier], dict[IdentifierRef, str]]:
    """(identifiers to remove, identifiers to add, removed single values -> their replacement)."""
    removals: list[IdentifierRef] = []
    additions: list[WantedIdentifier] = []
    replaced: dict[IdentifierRef, str] = {}
    for kind, wanted in edits.single.items():
        current = [h for h in held if h.kind == kind]
        if wanted is not None and current == [wanted.ref]:
            continue
        removals += current
        if wanted is not None:
            additions.append(wanted)
            replaced.update(dict.fromkeys(current, wanted.ref.value))
    if edits.cards is not None:
        desired = {w.ref for w in edits.cards}
        removals += sorted(h for h in held if h.kind == kinds.DISCOUNT_CARD and h not in desired)
        additions += [w for w in edits.cards if w.ref not in held]
    return removals, additions, replaced


async def _refuse_taken(
    session: AsyncSession, actor: Actor, customer_id: uuid.UUID, additions: list[WantedIdentifier]
) -> None:
    owners = await identity.owners_of(session, actor.project_id, [w.ref for w in additions])
    errors = [
        FieldError(pointer=w.pointer, message=f"Already identifies customer {owners[w.ref]}.")
        for w in additions
        if owners.get(w.ref, customer_id) != customer_id
    ]
    if errors:
        raise IdentifierTaken("An identifier already belongs to another customer.", errors=errors)
