"""The 360 profile and the export (right of access): the dossier, latest or whole."""

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.service import Change, append_changes
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.customers.dossier import SECTIONS, Section
from app.customers.presenters import customer_read
from app.customers.views import CustomerView, surviving_view


@dataclass(frozen=True)
class ProfileSection:
    name: str
    items: list[dict[str, Any]]
    href: str | None


async def customer_profile(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    include: Sequence[str],
    latest: int,
) -> tuple[CustomerView, list[ProfileSection]]:
    """One statement for the customer and one per section asked for, however much data."""
    async with uow.read_only() as session:
        view = await surviving_view(session, project_id, customer_id)
        everyone = [view.id, *view.merged_ids]
        sections = [
            ProfileSection(
                section.name,
                await _rows(session, section, project_id, everyone, limit=latest),
                section.href.format(id=view.id) if section.href else None,
            )
            for section in SECTIONS
            if section.name in include
        ]
    return view, sections


async def _rows(
    session: AsyncSession,
    section: Section,
    project_id: uuid.UUID,
    customer_ids: list[uuid.UUID],
    *,
    limit: int,
) -> list[dict[str, Any]]:
    result = await session.execute(section.query(project_id, customer_ids).limit(limit))
    return [dict(row._mapping) for row in result]


async def export_customer(
    uow: UnitOfWork, actor: Actor, customer_id: uuid.UUID
) -> AsyncIterator[bytes]:
    """Everything stored about the customer as one JSON document, streamed section by
    section. The export is recorded in the changelog first (404 before any byte)."""
    async with uow:
        view = await surviving_view(uow.session, actor.project_id, customer_id)
        await append_changes(uow.session, view.id, [Change("export", None)], actor=actor)
    return _document(uow, actor.project_id, view)


async def _document(
    uow: UnitOfWork, project_id: uuid.UUID, view: CustomerView
) -> AsyncIterator[bytes]:
    everyone = [view.id, *view.merged_ids]
    exported_at = datetime.now(UTC)
    # One snapshot for the whole document: every section as of the same moment.
    async with uow:
        session = uow.session
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        head = {"customer": customer_read(view).model_dump(mode="json"), "exported_at": exported_at}
        yield orjson.dumps(head, default=_json_default)[:-1] + b',"sections":{'
        for number, section in enumerate(SECTIONS):
            yield (b"," if number else b"") + orjson.dumps(section.name) + b":["
            result = await session.stream(
                section.query(project_id, everyone).execution_options(yield_per=500)
            )
            first = True
            async for row in result:
                yield (b"" if first else b",") + orjson.dumps(
                    dict(row._mapping), default=_json_default
                )
                first = False
            yield b"]"
        yield b"}}"


def _json_default(value: Any) -> Any:
    """What orjson does not serialise itself: decimals, and asyncpg's UUID type (a
    uuid.UUID subclass that orjson does not take; it does dates and datetimes)."""
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot export {type(value).__name__}")
