"""Stored rows to response bodies (never ORM objects in responses)."""

from typing import Any

from sqlalchemy import Row

from app.activity.models import Action
from app.activity.schemas import ActionRead


def action_read(action: Action) -> ActionRead:
    """An action recorded through the API: never a system one."""
    return ActionRead(
        id=action.id,
        customer_id=action.customer_id,
        origin_customer_id=action.origin_customer_id,
        type=action.type,
        occurred_at=action.occurred_at,
        received_at=action.received_at,
        payload=action.payload,
        touchpoint=action.touchpoint,
        initiator=action.initiator,
        external_id=action.external_id,
        system=False,
    )


def feed_item_read(row: Row[Any]) -> ActionRead:
    """A feed row: an action, or a changelog row shown as a `system.*` action."""
    return ActionRead.model_validate(row)
