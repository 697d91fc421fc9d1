"""HTTP endpoints of consent: topics, a customer's subscriptions and their history, and
/v1/me/subscriptions for an app acting with the customer's token."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, status

from app.core.auth import Actor, Principal, Scope
from app.core.dependencies import UnitOfWorkDep
from app.core.errors import Unauthenticated
from app.core.pagination import (
    DEFAULT_PAGE_LIMIT,
    Page,
    PageCursor,
    PageLimit,
    decode_id_cursor,
    split_page,
)
from app.core.problems import problem_responses
from app.devices import tokens as device_tokens
from app.projects.auth import AdminDep, PublishableDep, actor_for, require_actor, require_scope
from app.subscriptions import service
from app.subscriptions.models import NO_TOPIC, Subscription, SubscriptionChange
from app.subscriptions.schemas import (
    SubscriptionChangeRead,
    SubscriptionRead,
    SubscriptionResult,
    SubscriptionsUpdate,
    TopicCreate,
    TopicRead,
)
from app.subscriptions.service import DecisionResult

router = APIRouter(tags=["subscriptions"], responses=problem_responses(401, 403, 404, 422, 429))
me_router = APIRouter(prefix="/v1/me", tags=["me"], responses=problem_responses(401, 403, 422, 429))
ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]
WriterDep = Annotated[Actor, Depends(require_actor(Scope.CUSTOMERS_WRITE))]
CustomerToken = Annotated[
    str | None, Header(max_length=128, description="The customer's auth token.")
]


def _read(subscription: Subscription) -> SubscriptionRead:
    return SubscriptionRead(
        channel=subscription.channel,
        topic=subscription.topic or None,
        status=subscription.status,
        source=subscription.source,
        reason=subscription.reason,
        touchpoint=subscription.touchpoint,
        decided_at=subscription.decided_at,
    )


def _result(result: DecisionResult) -> SubscriptionResult:
    return SubscriptionResult(
        **_read(result.subscription).model_dump(),
        previous_status=result.previous_status,
        changed=result.changed,
    )


def _change(change: SubscriptionChange) -> SubscriptionChangeRead:
    return SubscriptionChangeRead(
        id=change.id,
        customer_id=change.customer_id,
        channel=change.channel,
        topic=change.topic if change.topic != NO_TOPIC else None,
        old_status=change.old_status,
        new_status=change.new_status,
        source=change.source,
        reason=change.reason,
        touchpoint=change.touchpoint,
        initiator=change.initiator,
        request_id=change.request_id,
        created_at=change.created_at,
    )


@router.post(
    "/v1/subscription-topics",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    operation_id="subscriptions_create_topic",
)
async def subscriptions_create_topic(
    body: TopicCreate, uow: UnitOfWorkDep, admin: AdminDep
) -> TopicRead:
    """Declare a topic customers can subscribe to (a newsletter, a brand)."""
    topic = await service.create_topic(
        uow,
        admin.project_id,
        key=body.key,
        name=body.name,
        description=body.description,
        channels=list(body.channels) if body.channels is not None else None,
    )
    return TopicRead.model_validate(topic)


@router.get("/v1/subscription-topics", operation_id="subscriptions_list_topics")
async def subscriptions_list_topics(uow: UnitOfWorkDep, principal: ReaderDep) -> list[TopicRead]:
    """List the project's topics."""
    return [
        TopicRead.model_validate(t) for t in await service.list_topics(uow, principal.project_id)
    ]


@router.get("/v1/customers/{customer_id}/subscriptions", operation_id="subscriptions_get")
async def subscriptions_get(
    customer_id: uuid.UUID, uow: UnitOfWorkDep, principal: ReaderDep
) -> list[SubscriptionRead]:
    """The customer's current decision per channel and topic."""
    found = await service.current_subscriptions(uow, principal.project_id, customer_id)
    return [_read(s) for s in found]


@router.put("/v1/customers/{customer_id}/subscriptions", operation_id="subscriptions_set")
async def subscriptions_set(
    customer_id: uuid.UUID, body: SubscriptionsUpdate, uow: UnitOfWorkDep, actor: WriterDep
) -> list[SubscriptionResult]:
    """Record several decisions at once: all of them, or none (422 naming each problem)."""
    results = await service.set_subscriptions(uow, actor, customer_id, body.subscriptions)
    return [_result(r) for r in results]


@router.get(
    "/v1/customers/{customer_id}/subscriptions/history", operation_id="subscriptions_history"
)
async def subscriptions_history(
    customer_id: uuid.UUID,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[SubscriptionChangeRead]:
    """Every decision with when, where, by whom, source and reason; newest first."""
    rows = await service.subscription_history(
        uow, principal.project_id, customer_id, before_id=decode_id_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = split_page(rows, limit, lambda r: [str(r.id)])
    return Page(items=[_change(r) for r in items], next_cursor=next_cursor)


async def _me(uow: UnitOfWorkDep, principal: Principal, token: str | None) -> uuid.UUID:
    if token is None:
        raise Unauthenticated("Send the customer's token as X-Customer-Token.")
    return await device_tokens.customer_for_token(uow, principal.project_id, token)


@me_router.get("/subscriptions", operation_id="me_get_subscriptions")
async def me_get_subscriptions(
    uow: UnitOfWorkDep, principal: PublishableDep, x_customer_token: CustomerToken = None
) -> list[SubscriptionRead]:
    """The token's customer's current decisions."""
    customer_id = await _me(uow, principal, x_customer_token)
    found = await service.current_subscriptions(uow, principal.project_id, customer_id)
    return [_read(s) for s in found]


@me_router.put("/subscriptions", operation_id="me_set_subscriptions")
async def me_set_subscriptions(
    body: SubscriptionsUpdate,
    uow: UnitOfWorkDep,
    principal: PublishableDep,
    x_customer_token: CustomerToken = None,
) -> list[SubscriptionResult]:
    """The customer's own decisions, made in the app."""
    customer_id = await _me(uow, principal, x_customer_token)
    results = await service.set_subscriptions(
        uow, actor_for(principal, None), customer_id, body.subscriptions
    )
    return [_result(r) for r in results]
