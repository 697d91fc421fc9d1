"""Merging customers: one transaction runs every domain's merge step, in this one list.

The caller has locked the target and the sources (rows, in id order), checked they are
active customers of one project, and put the sources in precedence order (most recently
updated first). Each step moves its domain's records from the sources to the target and
reports what moved from which source; the merge is then recorded once, with all of it,
on the target, on every source and in the merge tree (enough to revert it later).

Later domains (promotions, segments) add their step to MERGE_STEPS.
"""

import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.activity import service as activity_service
from app.core.auth import Actor
from app.customers import merging as customers_merging
from app.customers.models import Customer
from app.devices import service as devices_service
from app.identity import service as identity
from app.loyalty import service as loyalty_service
from app.promotions import service as promotions_service
from app.segments import service as segments_service
from app.subscriptions import service as subscriptions_service


@dataclass(frozen=True)
class MergeStepReport:
    """What one domain moved: counts for the response, details per source for the record."""

    domain: str
    counts: dict[str, int]
    by_source: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)


MergeStep = Callable[[AsyncSession, Customer, list[Customer], Actor], Awaitable[MergeStepReport]]


async def _identifiers_step(
    session: AsyncSession, target: Customer, sources: list[Customer], actor: Actor
) -> MergeStepReport:
    merged = await identity.merge_into(session, target.id, [s.id for s in sources], actor=actor)
    by_source: dict[uuid.UUID, dict[str, Any]] = {
        s.id: {"identifiers_moved": [], "identifiers_clashed": []} for s in sources
    }
    for moved in merged.moved:
        by_source[moved.from_customer]["identifiers_moved"].append(
            {"kind": moved.kind, "value": moved.value}
        )
    for clash in merged.clashed:
        by_source[clash.from_customer]["identifiers_clashed"].append(
            {"kind": clash.kind, "value": clash.value, "kept": clash.kept}
        )
    counts = {"moved": len(merged.moved), "clashed": len(merged.clashed)}
    return MergeStepReport("identifiers", counts, by_source)


async def _profile_step(
    session: AsyncSession, target: Customer, sources: list[Customer], actor: Actor
) -> MergeStepReport:
    filled = await customers_merging.merge_into(session, target, sources, actor=actor)
    by_source: dict[uuid.UUID, dict[str, Any]] = {s.id: {"fields_filled": []} for s in sources}
    for fill in filled:
        # The target had no value: that null is the "old value" a revert restores.
        by_source[fill.from_customer]["fields_filled"].append(
            {"field": fill.field, "value": fill.value, "old_value": None}
        )
    return MergeStepReport("profile", {"fields_filled": len(filled)}, by_source)


def _listed_report(
    step: str, count_key: str, detail_key: str, moved: Mapping[uuid.UUID, Collection[Any]]
) -> MergeStepReport:
    """The report of a step that moves a collection of records per source (counted by size)."""
    by_source: dict[uuid.UUID, dict[str, Any]] = {
        source_id: {detail_key: records} for source_id, records in moved.items()
    }
    count = sum(len(records) for records in moved.values())
    return MergeStepReport(step, {count_key: count}, by_source)


async def _devices_step(
    session: AsyncSession, target: Customer, sources: list[Customer], actor: Actor
) -> MergeStepReport:
    moved = await devices_service.merge_into(session, target, sources, actor=actor)
    return _listed_report("devices", "links_moved", "devices", moved)


async def _subscriptions_step(
    session: AsyncSession, target: Customer, sources: list[Customer], actor: Actor
) -> MergeStepReport:
    taken = await subscriptions_service.merge_into(session, target, sources, actor=actor)
    return _listed_report("subscriptions", "decisions_taken", "subscriptions", taken)


async def _activity_step(
    session: AsyncSession, target: Customer, sources: list[Customer], actor: Actor
) -> MergeStepReport:
    moved = await activity_service.merge_into(session, target, sources, actor=actor)
    by_source: dict[uuid.UUID, dict[str, Any]] = {
        source_id: {"actions_moved": count} for source_id, count in moved.items()
    }
    return MergeStepReport("activity", {"actions_moved": sum(moved.values())}, by_source)


async def _points_step(
    session: AsyncSession, target: Customer, sources: list[Customer], actor: Actor
) -> MergeStepReport:
    moved = await loyalty_service.merge_into(session, target, sources, actor=actor)
    return _listed_report("points", "balances_merged", "point_balances", moved)


async def _promotions_step(
    session: AsyncSession, target: Customer, sources: list[Customer], actor: Actor
) -> MergeStepReport:
    moved = await promotions_service.merge_into(session, target, sources, actor=actor)
    counts = {
        "promo_codes_moved": sum(len(m["promo_codes"]) for m in moved.values()),
        "prizes_moved": sum(len(m["prizes"]) for m in moved.values()),
    }
    by_source: dict[uuid.UUID, dict[str, Any]] = dict(moved)
    return MergeStepReport("promotions", counts, by_source)


async def _segments_step(
    session: AsyncSession, target: Customer, sources: list[Customer], actor: Actor
) -> MergeStepReport:
    moved = await segments_service.merge_into(session, target, sources, actor=actor)
    return _listed_report("segments", "manual_memberships_moved", "manual_segments", moved)


# The one explicit list: every domain that owns customer records adds its step here.
MERGE_STEPS: tuple[MergeStep, ...] = (
    _identifiers_step,
    _profile_step,
    _devices_step,
    _subscriptions_step,
    _activity_step,
    _points_step,
    _promotions_step,
    _segments_step,
)


@dataclass(frozen=True)
class MergeResult:
    target: Customer
    sources: list[Customer]
    reports: list[MergeStepReport]

    def details_of(self, source_id: uuid.UUID) -> dict[str, Any]:
        combined: dict[str, Any] = {}
        for report in self.reports:
            combined.update(report.by_source.get(source_id, {}))
        return combined


async def merge_locked_customers(
    session: AsyncSession, target: Customer, sources: list[Customer], *, actor: Actor
) -> MergeResult:
    reports = [await step(session, target, sources, actor) for step in MERGE_STEPS]
    result = MergeResult(target, sources, reports)
    details = {s.id: result.details_of(s.id) for s in sources}
    await customers_merging.record_merge(session, target, sources, details=details, actor=actor)
    return result
