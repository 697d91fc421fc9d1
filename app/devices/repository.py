"""All SQL of devices, customer-device links and customer auth tokens."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.core.db import table_of
from app.core.ids import new_id
from app.devices.models import CustomerAuthToken, CustomerDevice, Device


async def lock_devices(
    session: AsyncSession, project_id: uuid.UUID, installation_id: str, push_token: str | None
) -> list[Device]:
    """The device of this installation and the one holding this push token, locked in id
    order (two registrations trading tokens cannot deadlock)."""
    matches = Device.installation_id == installation_id
    if push_token is not None:
        matches = or_(matches, Device.push_token == push_token)
    query = (
        select(Device)
        .where(Device.project_id == project_id, matches)
        .order_by(Device.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(await session.scalars(query))


async def add_device(session: AsyncSession, device: Device) -> None:
    session.add(device)
    await session.flush()


async def get_device(
    session: AsyncSession, project_id: uuid.UUID, device_id: uuid.UUID
) -> Device | None:
    query = select(Device).where(Device.project_id == project_id, Device.id == device_id)
    return (await session.scalars(query)).one_or_none()


async def device_by_installation(
    session: AsyncSession, project_id: uuid.UUID, installation_id: str
) -> Device | None:
    query = select(Device).where(
        Device.project_id == project_id, Device.installation_id == installation_id
    )
    return (await session.scalars(query)).one_or_none()


async def devices_by_push_token(
    session: AsyncSession, project_id: uuid.UUID, push_token: str
) -> list[Device]:
    query = select(Device).where(Device.project_id == project_id, Device.push_token == push_token)
    return list(await session.scalars(query))


async def link(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    device_id: uuid.UUID,
    *,
    at: datetime,
) -> bool:
    """Record that the customer was seen on the device; True when the link is new."""
    links = table_of(CustomerDevice)
    statement: Any = (
        insert(links)
        .values(
            id=new_id(),
            project_id=project_id,
            customer_id=customer_id,
            device_id=device_id,
            first_seen_at=at,
            last_seen_at=at,
        )
        .on_conflict_do_update(
            index_elements=["project_id", "customer_id", "device_id"],
            set_={"last_seen_at": at},
        )
        # xmax is 0 on a row this statement inserted, not on one it updated.
        .returning(literal_column("(xmax = 0)"))
    )
    return bool((await session.execute(statement)).scalar_one())


async def unlink(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID, device_id: uuid.UUID
) -> bool:
    links = table_of(CustomerDevice)
    result = await session.execute(
        delete(links)
        .where(
            links.c.project_id == project_id,
            links.c.customer_id == customer_id,
            links.c.device_id == device_id,
        )
        .returning(links.c.id)
    )
    return result.first() is not None


async def devices_of_customer(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> list[tuple[Device, CustomerDevice, int]]:
    """(device, this customer's link, how many other customers share it)."""
    other = aliased(CustomerDevice)
    others = (
        select(func.count())
        .select_from(other)
        .where(other.device_id == Device.id, other.customer_id != customer_id)
        .scalar_subquery()
    )
    query = (
        select(Device, CustomerDevice, others)
        .join(CustomerDevice, CustomerDevice.device_id == Device.id)
        .where(CustomerDevice.project_id == project_id, CustomerDevice.customer_id == customer_id)
        .order_by(CustomerDevice.last_seen_at.desc(), Device.id)
    )
    return [(row[0], row[1], int(row[2])) for row in await session.execute(query)]


async def customers_of_device(
    session: AsyncSession, project_id: uuid.UUID, device_id: uuid.UUID
) -> list[CustomerDevice]:
    query = (
        select(CustomerDevice)
        .where(CustomerDevice.project_id == project_id, CustomerDevice.device_id == device_id)
        .order_by(CustomerDevice.last_seen_at.desc())
    )
    return list(await session.scalars(query))


async def links_of(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[CustomerDevice]:
    query = (
        select(CustomerDevice)
        .where(
            CustomerDevice.project_id == project_id, CustomerDevice.customer_id.in_(customer_ids)
        )
        .order_by(CustomerDevice.id)
    )
    return list(await session.scalars(query))


async def delete_link(session: AsyncSession, link_id: uuid.UUID) -> None:
    links = table_of(CustomerDevice)
    await session.execute(delete(links).where(links.c.id == link_id))


async def move_link(
    session: AsyncSession, link_id: uuid.UUID, *, to_customer: uuid.UUID, origin: uuid.UUID
) -> None:
    links = table_of(CustomerDevice)
    await session.execute(
        update(links)
        .where(links.c.id == link_id)
        .values(customer_id=to_customer, origin_customer_id=origin)
    )


async def widen_link(
    session: AsyncSession, link_id: uuid.UUID, *, first_seen: datetime, last_seen: datetime
) -> None:
    links = table_of(CustomerDevice)
    await session.execute(
        update(links)
        .where(links.c.id == link_id)
        .values(
            first_seen_at=func.least(links.c.first_seen_at, first_seen),
            last_seen_at=func.greatest(links.c.last_seen_at, last_seen),
        )
    )


async def replace_auth_token(session: AsyncSession, token: CustomerAuthToken) -> None:
    """One token per customer: issuing a new one retires the old in the same statement."""
    tokens = table_of(CustomerAuthToken)
    await session.execute(
        delete(tokens).where(
            tokens.c.project_id == token.project_id, tokens.c.customer_id == token.customer_id
        )
    )
    session.add(token)
    await session.flush()


async def delete_auth_token(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> bool:
    tokens = table_of(CustomerAuthToken)
    result = await session.execute(
        delete(tokens)
        .where(tokens.c.project_id == project_id, tokens.c.customer_id == customer_id)
        .returning(tokens.c.id)
    )
    return result.first() is not None


async def auth_token_by_prefix(session: AsyncSession, prefix: str) -> CustomerAuthToken | None:
    query = select(CustomerAuthToken).where(CustomerAuthToken.prefix == prefix)
    return (await session.scalars(query)).one_or_none()


async def has_reachable_device(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID, kind: str
) -> bool:
    """Whether the customer uses a device of this kind with push on and a token."""
    query = (
        select(func.count())
        .select_from(Device)
        .join(CustomerDevice, CustomerDevice.device_id == Device.id)
        .where(
            CustomerDevice.project_id == project_id,
            CustomerDevice.customer_id == customer_id,
            Device.kind == kind,
            Device.push_enabled.is_(True),
            Device.push_token.is_not(None),
        )
    )
    return bool(await session.scalar(query))


async def erase_for_customers(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """Unlink the customers' devices, delete devices nobody else uses, and their tokens."""
    unlinked = await session.execute(
        delete(CustomerDevice)
        .where(
            CustomerDevice.project_id == project_id, CustomerDevice.customer_id.in_(customer_ids)
        )
        .returning(CustomerDevice.device_id)
    )
    device_ids = sorted({device_id for (device_id,) in unlinked})
    still_used = select(CustomerDevice.device_id).where(CustomerDevice.device_id == Device.id)
    await session.execute(
        delete(Device).where(
            Device.project_id == project_id, Device.id.in_(device_ids), ~still_used.exists()
        )
    )
    await session.execute(
        delete(CustomerAuthToken).where(
            CustomerAuthToken.project_id == project_id,
            CustomerAuthToken.customer_id.in_(customer_ids),
        )
    )
