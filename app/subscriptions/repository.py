"""All SQL of subscription topics, current decisions and their history."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import redaction
from app.core.db import customer_history_query, table_of
from app.core.redaction import redacted_text
from app.subscriptions.models import Subscription, SubscriptionChange, SubscriptionTopic

_subscriptions = table_of(Subscription)
_INSERT_HISTORY = insert(table_of(SubscriptionChange))


async def add_topic(session: AsyncSession, topic: SubscriptionTopic) -> SubscriptionTopic:
    session.add(topic)
    await session.flush()
    await session.refresh(topic)
    return topic


async def get_topic(
    session: AsyncSession, project_id: uuid.UUID, key: str
) -> SubscriptionTopic | None:
    query = select(SubscriptionTopic).where(
        SubscriptionTopic.project_id == project_id, SubscriptionTopic.key == key
    )
    return (await session.scalars(query)).one_or_none()


async def topics(session: AsyncSession, project_id: uuid.UUID) -> list[SubscriptionTopic]:
    query = (
        select(SubscriptionTopic)
        .where(SubscriptionTopic.project_id == project_id)
        .order_by(SubscriptionTopic.key)
    )
    return list(await session.scalars(query))


async def subscriptions_of(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[Subscription]:
    query = (
        select(Subscription)
        .where(Subscription.project_id == project_id, Subscription.customer_id.in_(customer_ids))
        .order_by(Subscription.channel, Subscription.topic)
    )
    return list(await session.scalars(query))


async def add_subscription(session: AsyncSession, subscription: Subscription) -> None:
    session.add(subscription)
    await session.flush()


async def move_subscription(
    session: AsyncSession, subscription_id: uuid.UUID, *, to_customer: uuid.UUID, origin: uuid.UUID
) -> None:
    await session.execute(
        update(_subscriptions)
        .where(_subscriptions.c.id == subscription_id)
        .values(customer_id=to_customer, origin_customer_id=origin)
    )


async def delete_subscription(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    await session.execute(delete(_subscriptions).where(_subscriptions.c.id == subscription_id))


async def insert_history(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_INSERT_HISTORY, list(rows))


async def history(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    *,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[SubscriptionChange]:
    query = customer_history_query(
        SubscriptionChange,
        project_id=project_id,
        customer_ids=customer_ids,
        before_id=before_id,
        limit=limit,
    )
    return list(await session.scalars(query))


async def redact_for_customers(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """Free-text source and reason may quote the person: replaced by the marker."""
    await session.execute(
        update(Subscription)
        .where(Subscription.project_id == project_id, Subscription.customer_id.in_(customer_ids))
        .values(
            source=redacted_text(Subscription.source), reason=redacted_text(Subscription.reason)
        )
        .execution_options(synchronize_session=False)
    )
    await redaction.redact_history(
        session, "cdp_redact_subscription_history", project_id, customer_ids
    )
