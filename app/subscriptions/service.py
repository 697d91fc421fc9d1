"""Consent: the status of each customer per channel (and topic), and every decision made.

Statuses and the moves between them (anything else is refused with a 422):

    (none)        -> subscribed | unsubscribed | pending
    pending       -> subscribed (the double opt-in confirmed) | unsubscribed | pending
    subscribed    -> unsubscribed | subscribed
    unsubscribed  -> subscribed | pending | unsubscribed

`subscribed` and `pending` need a way to reach the customer on that channel: an email
for email, a phone for sms, a push-enabled device for push. Setting the current status
again changes nothing and records nothing.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.service import Change, append_changes
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, InvalidInput
from app.core.ids import new_id
from app.core.retry import with_retries
from app.customers import rows as customer_rows
from app.customers.models import Customer
from app.customers.views import surviving_view
from app.devices import service as devices_service
from app.identity import kinds
from app.identity import service as identity
from app.subscriptions import repository
from app.subscriptions.models import NO_TOPIC, Subscription, SubscriptionChange, SubscriptionTopic
from app.subscriptions.schemas import SubscriptionDecision

ALL_CHANNELS = ("email", "sms", "mobile_push", "web_push", "messenger")
ALLOWED_MOVES: dict[str | None, frozenset[str]] = {
    None: frozenset({"subscribed", "unsubscribed", "pending"}),
    "pending": frozenset({"subscribed", "unsubscribed", "pending"}),
    "subscribed": frozenset({"subscribed", "unsubscribed"}),
    "unsubscribed": frozenset({"subscribed", "unsubscribed", "pending"}),
}
_NEEDS_CONTACT = frozenset({"subscribed", "pending"})


@dataclass(frozen=True)
class DecisionResult:
    subscription: Subscription
    previous_status: str | None
    changed: bool


async def apply_decisions(
    session: AsyncSession,
    actor: Actor,
    customer_id: uuid.UUID,
    decisions: list[SubscriptionDecision],
    *,
    pointer_prefix: str,
) -> list[DecisionResult]:
    """Validate every decision, then record the ones that change something. The caller
    holds the customer's row lock (and bumps its version if anything changed)."""
    current = {
        (s.channel, s.topic): s
        for s in await repository.subscriptions_of(session, actor.project_id, [customer_id])
    }
    errors = await _problems(session, actor, customer_id, decisions, current, pointer_prefix)
    if errors:
        raise InvalidInput(f"{len(errors)} subscription decision(s) refused.", errors=errors)
    now = datetime.now(UTC)
    results: list[DecisionResult] = []
    changes: list[Change] = []
    history: list[dict[str, object]] = []
    for decision in decisions:
        topic = decision.topic or NO_TOPIC
        existing = current.get((decision.channel, topic))
        previous = existing.status if existing is not None else None
        if previous == decision.status and existing is not None:
            results.append(DecisionResult(existing, previous, changed=False))
            continue
        subscription = await _store(session, actor, customer_id, decision, existing, now)
        results.append(DecisionResult(subscription, previous, changed=True))
        changes.append(Change("subscription", _field(decision), previous, decision.status))
        history.append(_history_row(actor, customer_id, decision, previous))
    await repository.insert_history(session, history)
    await append_changes(session, customer_id, changes, actor=actor)
    return results


async def _problems(
    session: AsyncSession,
    actor: Actor,
    customer_id: uuid.UUID,
    decisions: list[SubscriptionDecision],
    current: dict[tuple[str, str], Subscription],
    prefix: str,
) -> list[FieldError]:
    offered = actor.project.subscription_channels or ALL_CHANNELS
    reachable = await _reachable_channels(session, actor.project_id, customer_id)
    topics = {t.key: t for t in await repository.topics(session, actor.project_id)}
    errors: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for index, decision in enumerate(decisions):
        at = f"{prefix}/{index}"
        key = (decision.channel, decision.topic or NO_TOPIC)
        problem = _problem(decision, key, seen, offered, topics, reachable, current)
        if problem is not None:
            field_name, message = problem
            errors.append(FieldError(pointer=f"{at}/{field_name}", message=message))
        seen.add(key)
    return errors


def _problem(
    decision: SubscriptionDecision,
    key: tuple[str, str],
    seen: set[tuple[str, str]],
    offered: tuple[str, ...],
    topics: dict[str, SubscriptionTopic],
    reachable: set[str],
    current: dict[tuple[str, str], Subscription],
) -> tuple[str, str] | None:
    """(field, message) of what is wrong with one decision, or None."""
    if key in seen:
        return "channel", "The same channel and topic twice in one request"
    if decision.channel not in offered:
        return "channel", "The project does not offer this channel"
    if decision.topic is not None:
        topic = topics.get(decision.topic)
        if topic is None:
            return "topic", "No such topic (POST /v1/subscription-topics)"
        if topic.channels is not None and decision.channel not in topic.channels:
            return "topic", f"This topic is not offered on {decision.channel}"
    existing = current.get(key)
    previous = existing.status if existing is not None else None
    if decision.status not in ALLOWED_MOVES[previous]:
        return "status", f"Cannot go from {previous} to {decision.status}"
    if decision.status in _NEEDS_CONTACT and decision.channel not in reachable:
        return "status", f"The customer cannot be reached on {decision.channel}"
    return None


async def _reachable_channels(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> set[str]:
    held = await identity.identifiers_by_customer(session, project_id, [customer_id])
    held_kinds = {row.kind for row in held[customer_id]}
    reachable = {"messenger"}  # no contact of its own: the messenger platform holds it
    if kinds.EMAIL in held_kinds:
        reachable.add("email")
    if kinds.PHONE in held_kinds:
        reachable.add("sms")
    for channel, device_kind in (("mobile_push", "mobile_app"), ("web_push", "web_push")):
        if await devices_service.reachable_by_push(
            session, project_id, customer_id, kind=device_kind
        ):
            reachable.add(channel)
    return reachable


async def _store(
    session: AsyncSession,
    actor: Actor,
    customer_id: uuid.UUID,
    decision: SubscriptionDecision,
    existing: Subscription | None,
    now: datetime,
) -> Subscription:
    if existing is None:
        existing = Subscription(
            id=new_id(),
            project_id=actor.project_id,
            customer_id=customer_id,
            channel=decision.channel,
            topic=decision.topic or NO_TOPIC,
        )
        session.add(existing)
    existing.status = decision.status
    existing.source = decision.source
    existing.reason = decision.reason
    existing.touchpoint = actor.touchpoint
    existing.decided_at = now
    await session.flush()
    return existing


def _field(decision: SubscriptionDecision) -> str:
    suffix = f".{decision.topic}" if decision.topic else ""
    return f"subscriptions.{decision.channel}{suffix}"


def _history_row(
    actor: Actor, customer_id: uuid.UUID, decision: SubscriptionDecision, previous: str | None
) -> dict[str, object]:
    return {
        "id": new_id(),
        "project_id": actor.project_id,
        "customer_id": customer_id,
        "channel": decision.channel,
        "topic": decision.topic or NO_TOPIC,
        "old_status": previous,
        "new_status": decision.status,
        "source": decision.source,
        "reason": decision.reason,
        "touchpoint": actor.touchpoint,
        "initiator": actor.initiator,
        "request_id": actor.request_id,
    }


async def set_subscriptions(
    uow: UnitOfWork, actor: Actor, customer_id: uuid.UUID, decisions: list[SubscriptionDecision]
) -> list[DecisionResult]:
    """Several decisions at once: all are applied, or none (422 pointing at each problem)."""

    async def attempt() -> list[DecisionResult]:
        async with uow:
            session = uow.session
            survivor = await customer_rows.survivor_id(session, actor.project_id, customer_id)
            customers = await customer_rows.lock_active(session, actor.project_id, [survivor])
            results = await apply_decisions(
                session, actor, survivor, decisions, pointer_prefix="/subscriptions"
            )
            if any(r.changed for r in results):
                customer_rows.mark_changed(customers[survivor])
                await session.flush()
            return results

    return await with_retries(attempt)


async def current_subscriptions(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID
) -> list[Subscription]:
    async with uow.read_only() as session:
        view = await surviving_view(session, project_id, customer_id)
        return await repository.subscriptions_of(session, project_id, [view.id])


async def subscription_history(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[SubscriptionChange]:
    """Every decision, newest first, including those of customers merged into this one."""
    async with uow.read_only() as session:
        view = await surviving_view(session, project_id, customer_id)
        return await repository.history(
            session, project_id, [view.id, *view.merged_ids], before_id=before_id, limit=limit
        )


async def create_topic(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    *,
    key: str,
    name: str,
    description: str | None,
    channels: list[str] | None,
) -> SubscriptionTopic:
    async with uow:
        if await repository.get_topic(uow.session, project_id, key) is not None:
            raise Conflict(f"A topic {key!r} already exists.")
        topic = SubscriptionTopic(
            project_id=project_id, key=key, name=name, description=description, channels=channels
        )
        return await repository.add_topic(uow.session, topic)


async def list_topics(uow: UnitOfWork, project_id: uuid.UUID) -> list[SubscriptionTopic]:
    async with uow.read_only() as session:
        return await repository.topics(session, project_id)


async def merge_into(
    session: AsyncSession, target: Customer, sources: list[Customer], *, actor: Actor
) -> dict[uuid.UUID, list[str]]:
    """The subscriptions step of a merge: per channel and topic, the most recent decision
    wins (the target's own on a tie). Histories stay with their customers and show under
    the survivor. Returns the decisions taken from each source."""
    rows = await repository.subscriptions_of(
        session, actor.project_id, [target.id, *(s.id for s in sources)]
    )
    winners: dict[tuple[str, str], Subscription] = {}
    for row in sorted(rows, key=lambda r: (r.customer_id != target.id, r.decided_at)):
        key = (row.channel, row.topic)
        best = winners.get(key)
        if best is None or row.decided_at > best.decided_at:
            winners[key] = row
    taken: dict[uuid.UUID, list[str]] = {s.id: [] for s in sources}
    for row in rows:
        key = (row.channel, row.topic)
        if row.customer_id == target.id and winners[key] is not row:
            await repository.delete_subscription(session, row.id)
    for row in rows:
        key = (row.channel, row.topic)
        if row.customer_id == target.id:
            continue
        if winners[key] is row:
            await repository.move_subscription(
                session, row.id, to_customer=target.id, origin=row.customer_id
            )
            taken[row.customer_id].append(
                f"{row.channel}:{row.topic}" if row.topic else row.channel
            )
        else:
            await repository.delete_subscription(session, row.id)
    return taken


async def erase(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """The subscriptions step of an erase: statuses and their history stay (proof of
    consent and opt-out), their free-text source and reason do not."""
    await repository.redact_for_customers(session, project_id, customer_ids)
