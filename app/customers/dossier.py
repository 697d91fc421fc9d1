"""Everything stored about a customer, section by section: what the 360 profile shows the
latest of, and what an export (right of access) streams in full.

One statement per section over the customer and everyone merged into it, whatever the
amount of data, so the profile costs a fixed number of queries. These are reads of other
domains' tables from here (like the customer view and the segment rules): a dossier must
be built from one snapshot in a bounded number of statements, which calling every
domain's own list functions (each with its pagination and presenters) would not give.
Columns that are secrets (a token's hash) or internal (project ids) are left out.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, func, select
from sqlalchemy.orm import aliased

from app.activity.models import Action
from app.changelog.models import ProfileChange
from app.core.db import Base, table_of
from app.customers.models import CustomerMerge
from app.devices.models import CustomerAuthToken, CustomerDevice, Device
from app.identity.models import CustomerIdentifier, IdentifierHistory
from app.loyalty.models import PointBalance, PointTransaction
from app.promotions.models import Prize, PromoCode
from app.segments.models import SegmentChange, SegmentMembership
from app.subscriptions.models import Subscription, SubscriptionChange

_HIDDEN = frozenset({"project_id", "secret_hash"})

QueryBuilder = Callable[[uuid.UUID, Sequence[uuid.UUID]], Select[Any]]


@dataclass(frozen=True)
class Section:
    name: str
    description: str
    # The endpoint with the whole list, if there is one ({id}: the customer).
    href: str | None
    query: QueryBuilder


def _visible(table: Table) -> list[Any]:
    return [column for column in table.c if column.key not in _HIDDEN]


def _of_customers(
    model: type[Base], *order: str, customer_column: str = "customer_id"
) -> QueryBuilder:
    """The model's rows of these customers, newest first."""
    table = table_of(model)

    def query(project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]) -> Select[Any]:
        return (
            select(*_visible(table))
            .where(table.c.project_id == project_id, table.c[customer_column].in_(customer_ids))
            .order_by(*(table.c[name].desc() for name in order))
        )

    return query


def _devices(project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]) -> Select[Any]:
    """Each device with its link, and the other customers that share it."""
    links = table_of(CustomerDevice)
    devices = table_of(Device)
    others = aliased(CustomerDevice)
    shared_with = (
        select(func.coalesce(func.array_agg(others.customer_id), []))
        .where(others.device_id == links.c.device_id, others.customer_id.not_in(customer_ids))
        .scalar_subquery()
    )
    return (
        select(
            *_visible(devices),
            links.c.customer_id,
            links.c.first_seen_at.label("linked_at"),
            shared_with.label("shared_with"),
        )
        .join(links, links.c.device_id == devices.c.id)
        .where(links.c.project_id == project_id, links.c.customer_id.in_(customer_ids))
        .order_by(devices.c.last_seen_at.desc(), devices.c.id.desc())
    )


SECTIONS: tuple[Section, ...] = (
    Section(
        "identifiers",
        "Current identifiers and discount cards.",
        "/v1/customers/{id}",
        _of_customers(CustomerIdentifier, "created_at", "id"),
    ),
    Section(
        "identifier_history",
        "The ID changelog: identifiers added, replaced, moved, merged, removed.",
        "/v1/customers/{id}/identifiers/history",
        _of_customers(IdentifierHistory, "id"),
    ),
    Section(
        "changelog",
        "The profile changelog.",
        "/v1/customers/{id}/changelog",
        _of_customers(ProfileChange, "id"),
    ),
    Section(
        "merges",
        "Customers merged into this one, with what moved.",
        "/v1/customers/{id}/merges",
        _of_customers(CustomerMerge, "created_at", "id", customer_column="target_id"),
    ),
    Section(
        "devices",
        "Mobile app installations and browsers, and who else uses them.",
        "/v1/customers/{id}/devices",
        _devices,
    ),
    Section(
        "auth_token",
        "The customer auth token (its public prefix and when it was issued).",
        None,
        _of_customers(CustomerAuthToken, "issued_at"),
    ),
    Section(
        "subscriptions",
        "Consent per channel and topic.",
        "/v1/customers/{id}/subscriptions",
        _of_customers(Subscription, "decided_at", "id"),
    ),
    Section(
        "subscription_history",
        "Every consent decision.",
        "/v1/customers/{id}/subscriptions/history",
        _of_customers(SubscriptionChange, "id"),
    ),
    Section(
        "actions",
        "The activity feed.",
        "/v1/customers/{id}/actions",
        _of_customers(Action, "occurred_at", "id"),
    ),
    Section(
        "point_balances",
        "Balances per points account.",
        "/v1/customers/{id}/points",
        _of_customers(PointBalance, "updated_at", "id"),
    ),
    Section(
        "point_transactions",
        "Every change of points.",
        "/v1/customers/{id}/points/transactions",
        _of_customers(PointTransaction, "id"),
    ),
    Section(
        "promo_codes",
        "Promo codes issued to the customer.",
        "/v1/customers/{id}/promo-codes",
        _of_customers(PromoCode, "issued_at", "id"),
    ),
    Section(
        "prizes",
        "Prizes given.",
        "/v1/customers/{id}/prizes",
        _of_customers(Prize, "created_at", "id"),
    ),
    Section(
        "segments",
        "Current segment memberships.",
        "/v1/customers/{id}/segments",
        _of_customers(SegmentMembership, "since", "id"),
    ),
    Section(
        "segment_history",
        "Entries into and exits from segments, kept across merges.",
        "/v1/customers/{id}/segments/history",
        _of_customers(SegmentChange, "id"),
    ),
)
SECTION_NAMES = tuple(section.name for section in SECTIONS)
