"""The customers step of a merge: fill the survivor's empty fields, turn sources into
tombstones, and record the merge (changelog entries and the merge tree's edges)."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.service import Change, append_changes
from app.core.auth import Actor
from app.core.ids import new_id
from app.customers import repository
from app.customers.inputs import PROFILE_FIELDS
from app.customers.models import Customer


@dataclass(frozen=True)
class FilledField:
    field: str
    value: Any
    from_customer: uuid.UUID


async def merge_into(
    session: AsyncSession, target: Customer, sources: list[Customer], *, actor: Actor
) -> list[FilledField]:
    """Sources are locked and in precedence order (most recently updated first): a field
    the target lacks takes the first source's value."""
    filled = _fill_profile(target, sources) + _fill_custom_fields(target, sources)
    now = datetime.now(UTC)
    for source in sources:
        source.status = "merged"
        source.merged_into = target.id
        source.version += 1
        source.updated_at = now
    target.version += 1
    target.updated_at = now
    await session.flush()
    return filled


def _fill_profile(target: Customer, sources: list[Customer]) -> list[FilledField]:
    filled: list[FilledField] = []
    for name in PROFILE_FIELDS:
        if getattr(target, name) is not None:
            continue
        donor = next((s for s in sources if getattr(s, name) is not None), None)
        if donor is not None:
            setattr(target, name, getattr(donor, name))
            filled.append(FilledField(name, _json(getattr(donor, name)), donor.id))
    return filled


def _fill_custom_fields(target: Customer, sources: list[Customer]) -> list[FilledField]:
    custom = dict(target.custom_fields or {})
    filled: list[FilledField] = []
    for source in sources:
        for key, value in (source.custom_fields or {}).items():
            if key not in custom:
                custom[key] = value
                filled.append(FilledField(f"custom_fields.{key}", value, source.id))
    if filled:
        target.custom_fields = custom
    return filled


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def record_merge(
    session: AsyncSession,
    target: Customer,
    sources: list[Customer],
    *,
    details: dict[uuid.UUID, dict[str, Any]],
    actor: Actor,
) -> None:
    """A `merge` changelog entry on the target and on every source, each fill logged, and
    one merge-tree edge per source carrying what moved from it (enough to revert)."""
    source_ids = [str(s.id) for s in sources]
    target_changes = [
        Change("merge", None, None, {"sources": source_ids, "moved": _by_source(details)}),
        *(
            Change("merge_fill", fill["field"], None, fill["value"])
            for source in sources
            for fill in details[source.id].get("fields_filled", [])
        ),
    ]
    await append_changes(session, target.id, target_changes, actor=actor)
    for source in sources:
        await append_changes(
            session,
            source.id,
            [Change("merge", None, None, {"merged_into": str(target.id), **details[source.id]})],
            actor=actor,
        )
    await repository.insert_merges(
        session,
        [
            {
                "id": new_id(),
                "project_id": actor.project_id,
                "target_id": target.id,
                "source_id": source.id,
                "touchpoint": actor.touchpoint,
                "initiator": actor.initiator,
                "request_id": actor.request_id,
                "details": details[source.id],
            }
            for source in sources
        ],
    )


def _by_source(details: dict[uuid.UUID, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(source_id): detail for source_id, detail in details.items()}
