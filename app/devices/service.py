"""Devices and customer auth tokens: registrations, links, push tokens, and the token that
lets an app act for one customer.

Lock order, as everywhere: advisory locks on the identifiers involved (the installation,
the new and the old push token), then the customers, then the device rows (in id order).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.service import Change, append_changes
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import FieldError, InvalidInput, NotFound
from app.core.ids import new_id
from app.core.retry import StaleRead, with_retries
from app.customers import rows as customer_rows
from app.customers.models import Customer
from app.devices import repository
from app.devices.models import CustomerDevice, Device
from app.devices.schemas import DeviceRegistration
from app.identity import kinds
from app.identity import service as identity
from app.identity.service import IdentifierRef

# Fields a registration may change, as recorded in the changelog.
_DEVICE_FIELDS = (
    "kind",
    "app_id",
    "platform",
    "push_provider",
    "push_token",
    "push_enabled",
    "app_version",
    "os_version",
    "locale",
)


@dataclass
class _Plan:
    """What one registration touches, read before its locks and checked after them."""

    installation: IdentifierRef
    token: IdentifierRef | None
    old_token: IdentifierRef | None
    customer_id: uuid.UUID | None

    @property
    def refs(self) -> list[IdentifierRef]:
        return [r for r in (self.installation, self.token, self.old_token) if r is not None]


@dataclass
class _Changes:
    by_customer: dict[uuid.UUID, list[Change]] = field(default_factory=dict)

    def add(self, customer_id: uuid.UUID, change: Change) -> None:
        self.by_customer.setdefault(customer_id, []).append(change)


async def register_device(
    uow: UnitOfWork,
    actor: Actor,
    installation_id: str,
    registration: DeviceRegistration,
    *,
    customer_id: uuid.UUID | None,
) -> Device:
    """Register or update an installation; with a customer, link it and give the customer
    its identifiers (app_installation, push_token). Without one: an anonymous install."""

    async def attempt() -> Device:
        async with uow:
            return await _register(uow.session, actor, installation_id, registration, customer_id)

    return await with_retries(attempt)


async def _register(
    session: AsyncSession,
    actor: Actor,
    installation_id: str,
    registration: DeviceRegistration,
    customer_id: uuid.UUID | None,
) -> Device:
    project_id = actor.project_id
    if customer_id is not None:
        customer_id = await customer_rows.survivor_id(session, project_id, customer_id)
    known = await repository.device_by_installation(session, project_id, installation_id)
    plan = _plan(installation_id, registration.token(), known, customer_id)
    await identity.lock_identities(
        session, project_id, plan.refs, [customer_id] if customer_id else []
    )
    owners = await identity.owners_of(session, project_id, plan.refs)
    wanted = {*owners.values(), *([customer_id] if customer_id else [])}
    customers = await customer_rows.lock_active(session, project_id, list(wanted))
    device, created, changed = await _write_device(session, actor, plan, registration, known)
    changes = _Changes()
    held = await identity.identifiers_by_customer(session, project_id, list(customers))
    counts = {cid: len(rows) for cid, rows in held.items()}
    if plan.old_token is not None:
        await _release(
            session, actor, plan.old_token, owners, counts, changes, replaced_by=plan.token
        )
    if customer_id is not None:
        customer = customers[customer_id]
        linked = await repository.link(
            session, project_id, customer_id, device.id, at=device.last_seen_at
        )
        _record_device(
            changes, customer_id, device, created=created, changed=changed, linked=linked
        )
        for ref in (plan.installation, plan.token):
            if ref is not None:
                await _take(session, actor, ref, customer, owners, counts, changes)
    elif plan.token is not None:
        # An anonymous install took the token: its previous customer no longer reaches it.
        await _release(session, actor, plan.token, owners, counts, changes, replaced_by=None)
    await _record(session, actor, customers, changes)
    return device


def _plan(
    installation_id: str, token: str | None, known: Device | None, customer_id: uuid.UUID | None
) -> _Plan:
    old = known.push_token if known is not None else None
    return _Plan(
        installation=IdentifierRef(kinds.APP_INSTALLATION, installation_id),
        token=IdentifierRef(kinds.PUSH_TOKEN, token) if token is not None else None,
        old_token=IdentifierRef(kinds.PUSH_TOKEN, old)
        if old is not None and old != token
        else None,
        customer_id=customer_id,
    )


async def _write_device(
    session: AsyncSession,
    actor: Actor,
    plan: _Plan,
    registration: DeviceRegistration,
    known: Device | None,
) -> tuple[Device, bool, dict[str, Any]]:
    """(the device, whether it is new, the fields that changed)."""
    token = plan.token.value if plan.token is not None else None
    locked = await repository.lock_devices(
        session, actor.project_id, plan.installation.value, token
    )
    own = next((d for d in locked if d.installation_id == plan.installation.value), None)
    if (own is None) != (known is None) or (
        own is not None and known is not None and own.push_token != known.push_token
    ):
        raise StaleRead
    for holder in locked:
        if holder is not own and token is not None and holder.push_token == token:
            # The token moved to this installation: the old one can no longer receive it.
            holder.push_token = None
            holder.web_push_p256dh = None
            holder.web_push_auth = None
    await session.flush()
    now = datetime.now(UTC)
    values = _device_values(registration)
    if own is None:
        own = Device(
            id=new_id(),
            project_id=actor.project_id,
            installation_id=plan.installation.value,
            first_seen_at=now,
            last_seen_at=now,
            **values,
        )
        await repository.add_device(session, own)
        return own, True, values
    changed = {name: value for name, value in values.items() if getattr(own, name) != value}
    for name, value in values.items():
        setattr(own, name, value)
    own.last_seen_at = now
    await session.flush()
    return own, False, changed


def _device_values(registration: DeviceRegistration) -> dict[str, Any]:
    web_push = registration.web_push
    return {
        "kind": registration.kind,
        "app_id": registration.app_id,
        "platform": registration.platform,
        "push_provider": registration.push_provider,
        "push_token": registration.token(),
        "web_push_p256dh": web_push.p256dh if web_push is not None else None,
        "web_push_auth": web_push.auth if web_push is not None else None,
        "push_enabled": registration.push_enabled,
        "app_version": registration.app_version,
        "os_version": registration.os_version,
        "locale": registration.locale,
    }


def _record_device(
    changes: _Changes,
    customer_id: uuid.UUID,
    device: Device,
    *,
    created: bool,
    changed: dict[str, Any],
    linked: bool,
) -> None:
    name = f"devices.{device.installation_id}"
    recorded = {k: v for k, v in changed.items() if k in _DEVICE_FIELDS}
    if created:
        changes.add(customer_id, Change("device_registered", name, None, recorded))
    elif recorded:
        changes.add(customer_id, Change("device_updated", name, None, recorded))
    if linked:
        changes.add(customer_id, Change("device_linked", name, None, str(device.id)))


async def _take(
    session: AsyncSession,
    actor: Actor,
    ref: IdentifierRef,
    customer: Customer,
    owners: dict[IdentifierRef, uuid.UUID],
    counts: dict[uuid.UUID, int],
    changes: _Changes,
) -> None:
    """The identifier goes to this customer. From another customer only if that one keeps
    an identifier: a device shared with someone known only by it stays theirs too."""
    owner = owners.get(ref)
    if owner == customer.id:
        return
    if owner is None:
        await identity.attach(session, customer.id, [ref], actor=actor)
        changes.add(customer.id, Change("identifier_added", ref.kind, None, ref.value))
        counts[customer.id] = counts.get(customer.id, 0) + 1
    elif counts.get(owner, 0) > 1:
        await identity.move(session, ref, from_customer=owner, to_customer=customer.id, actor=actor)
        changes.add(owner, Change("identifier_moved_out", ref.kind, ref.value, None))
        changes.add(customer.id, Change("identifier_moved_in", ref.kind, None, ref.value))
        counts[owner] -= 1
        counts[customer.id] = counts.get(customer.id, 0) + 1
    else:
        return
    owners[ref] = customer.id


async def _release(
    session: AsyncSession,
    actor: Actor,
    ref: IdentifierRef,
    owners: dict[IdentifierRef, uuid.UUID],
    counts: dict[uuid.UUID, int],
    changes: _Changes,
    *,
    replaced_by: IdentifierRef | None,
) -> None:
    """A push token no longer reaches its owner (replaced or moved to an anonymous install)."""
    owner = owners.get(ref)
    if owner is None or counts.get(owner, 0) <= 1:
        return
    new_value = replaced_by.value if replaced_by is not None else None
    await identity.detach(session, owner, ref, actor=actor, replaced_by=new_value)
    operation = "identifier_replaced" if new_value is not None else "identifier_removed"
    changes.add(owner, Change(operation, ref.kind, ref.value, new_value))
    counts[owner] -= 1
    del owners[ref]


async def _record(
    session: AsyncSession, actor: Actor, customers: dict[uuid.UUID, Customer], changes: _Changes
) -> None:
    for customer_id, rows in changes.by_customer.items():
        customer_rows.mark_changed(customers[customer_id])
        await append_changes(session, customer_id, rows, actor=actor)
    await session.flush()


async def unlink_device(
    uow: UnitOfWork, actor: Actor, customer_id: uuid.UUID, installation_id: str
) -> None:
    """The customer no longer uses the device; the identifiers it gave them go too.
    Started over when the customer was merged or erased before its row was locked."""

    async def attempt() -> None:
        async with uow:
            await _unlink(uow.session, actor, customer_id, installation_id)

    await with_retries(attempt)


async def _unlink(
    session: AsyncSession, actor: Actor, customer_id: uuid.UUID, installation_id: str
) -> None:
    project_id = actor.project_id
    customer_id = await customer_rows.survivor_id(session, project_id, customer_id)
    device = await repository.device_by_installation(session, project_id, installation_id)
    if device is None:
        raise NotFound(f"No device {installation_id}.")
    refs = [IdentifierRef(kinds.APP_INSTALLATION, installation_id)]
    if device.push_token is not None:
        refs.append(IdentifierRef(kinds.PUSH_TOKEN, device.push_token))
    await identity.lock_identities(session, project_id, refs, [customer_id])
    customers = await customer_rows.lock_active(session, project_id, [customer_id])
    if not await repository.unlink(session, project_id, customer_id, device.id):
        raise NotFound(f"Customer {customer_id} is not linked to device {installation_id}.")
    owners = await identity.owners_of(session, project_id, refs)
    held = await identity.identifiers_by_customer(session, project_id, [customer_id])
    mine = [ref for ref in refs if owners.get(ref) == customer_id]
    if mine and len(held[customer_id]) <= len(mine):
        raise InvalidInput(
            "A customer must keep at least one identifier; this device is their last.",
            errors=[
                FieldError(location="path", pointer="/installation_id", message="Last identifier")
            ],
        )
    changes = _Changes()
    for ref in mine:
        await identity.detach(session, customer_id, ref, actor=actor)
        changes.add(customer_id, Change("identifier_removed", ref.kind, ref.value, None))
    name = f"devices.{installation_id}"
    changes.add(customer_id, Change("device_unlinked", name, str(device.id), None))
    await _record(session, actor, customers, changes)


async def customer_devices(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID
) -> list[tuple[Device, CustomerDevice, int]]:
    async with uow.read_only() as session:
        survivor = await customer_rows.survivor_id(session, project_id, customer_id)
        return await repository.devices_of_customer(session, project_id, survivor)


async def device_customers(
    uow: UnitOfWork, project_id: uuid.UUID, device_id: uuid.UUID
) -> list[CustomerDevice]:
    async with uow.read_only() as session:
        if await repository.get_device(session, project_id, device_id) is None:
            raise NotFound(f"No device {device_id}.")
        return await repository.customers_of_device(session, project_id, device_id)


async def find_devices(
    uow: UnitOfWork, project_id: uuid.UUID, *, push_token: str | None, installation_id: str | None
) -> list[Device]:
    async with uow.read_only() as session:
        if push_token is not None:
            return await repository.devices_by_push_token(session, project_id, push_token)
        if installation_id is not None:
            found = await repository.device_by_installation(session, project_id, installation_id)
            return [found] if found is not None else []
        return []


async def set_push_enabled(
    uow: UnitOfWork, actor: Actor, device_id: uuid.UUID, *, push_enabled: bool
) -> Device:
    """The provider reported the token dead (or alive again): recorded for every user.
    Started over when one of them was merged or erased before the rows were locked."""

    async def attempt() -> Device:
        async with uow:
            return await _set_push_enabled(uow.session, actor, device_id, push_enabled)

    return await with_retries(attempt)


async def _set_push_enabled(
    session: AsyncSession, actor: Actor, device_id: uuid.UUID, push_enabled: bool
) -> Device:
    device = await repository.get_device(session, actor.project_id, device_id)
    if device is None:
        raise NotFound(f"No device {device_id}.")
    links = await repository.customers_of_device(session, actor.project_id, device_id)
    customers = await customer_rows.lock_active(
        session, actor.project_id, [link.customer_id for link in links]
    )
    [device] = await repository.lock_devices(
        session, actor.project_id, device.installation_id, None
    )
    if device.push_enabled != push_enabled:
        name = f"devices.{device.installation_id}"
        changes = _Changes()
        for customer_id in customers:
            changes.add(
                customer_id, Change("device_updated", name, None, {"push_enabled": push_enabled})
            )
        device.push_enabled = push_enabled
        await _record(session, actor, customers, changes)
    return device


async def merge_into(
    session: AsyncSession, target: Customer, sources: list[Customer], *, actor: Actor
) -> dict[uuid.UUID, list[str]]:
    """The devices step of a merge: every device link of the sources goes to the target
    (kept once per device, with the widest first/last seen). Returns device ids per source."""
    links = await repository.links_of(
        session, actor.project_id, [target.id, *(s.id for s in sources)]
    )
    target_links = {link.device_id: link for link in links if link.customer_id == target.id}
    moved: dict[uuid.UUID, list[str]] = {s.id: [] for s in sources}
    for link in links:
        if link.customer_id == target.id:
            continue
        existing = target_links.get(link.device_id)
        if existing is not None:
            await repository.widen_link(
                session, existing.id, first_seen=link.first_seen_at, last_seen=link.last_seen_at
            )
            await repository.delete_link(session, link.id)
        else:
            await repository.move_link(
                session, link.id, to_customer=target.id, origin=link.customer_id
            )
            target_links[link.device_id] = link
        moved[link.customer_id].append(str(link.device_id))
    return moved


async def reachable_by_push(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID, *, kind: str
) -> bool:
    """For consent checks: can a push of this device kind (mobile_app, web_push) reach them?"""
    return await repository.has_reachable_device(session, project_id, customer_id, kind)


async def erase(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """The devices step of an erase: links, devices no other customer shares (their push
    tokens and installation ids), and the customer auth token."""
    await repository.erase_for_customers(session, project_id, customer_ids)
