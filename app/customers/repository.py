"""All SQL of the customers table.

The view query also reads `customer_identifiers` (identity's table) and
`customer_auth_tokens` (devices') in the same statement: a customer and what it holds
must come from one snapshot, in one round trip. It and the customer search (below) are
the reads that cross the domain line; writes to those tables go through their domains'
services.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Row,
    Select,
    SQLColumnExpression,
    Uuid,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from app.core.db import table_of
from app.core.redaction import redacted_json
from app.customers.inputs import PROFILE_FIELDS
from app.customers.models import (
    LAST_NAME_SORT_KEY,
    LOWER_AREA,
    LOWER_NAMES,
    Customer,
    CustomerMerge,
)
from app.customers.search import CustomerSearch, SearchPage
from app.devices.models import CustomerAuthToken
from app.identity.kinds import EMAIL
from app.identity.models import CustomerIdentifier, email_domain
from app.segments.models import SegmentMembership
from app.subscriptions.models import Subscription


def _view_select() -> Select[Any]:
    identifiers_of_customer = CustomerIdentifier.customer_id == Customer.id
    kinds = (
        select(func.array_agg(aggregate_order_by(CustomerIdentifier.kind, CustomerIdentifier.id)))
        .where(identifiers_of_customer)
        .scalar_subquery()
    )
    values = (
        select(func.array_agg(aggregate_order_by(CustomerIdentifier.value, CustomerIdentifier.id)))
        .where(identifiers_of_customer)
        .scalar_subquery()
    )
    # Every customer merged into this one, however deep the chain (A into B, B into C).
    merged_ids = literal_column(
        "(WITH RECURSIVE tree(id) AS ("
        " SELECT m.id FROM customers m WHERE m.merged_into = customers.id"
        " UNION ALL"
        " SELECT m.id FROM customers m JOIN tree ON m.merged_into = tree.id)"
        " SELECT array_agg(id ORDER BY id) FROM tree)",
        type_=ARRAY(Uuid),
    )
    token_of_customer = CustomerAuthToken.customer_id == Customer.id
    token_fingerprint = select(CustomerAuthToken.prefix).where(token_of_customer).scalar_subquery()
    token_issued_at = select(CustomerAuthToken.issued_at).where(token_of_customer).scalar_subquery()
    return select(
        *Customer.__table__.columns,
        kinds.label("identifier_kinds"),
        values.label("identifier_values"),
        merged_ids.label("merged_ids"),
        token_fingerprint.label("auth_token_fingerprint"),
        token_issued_at.label("auth_token_issued_at"),
    )


_VIEWS_BY_ID = _view_select().where(
    Customer.project_id == bindparam("project_id"),
    Customer.id.in_(bindparam("ids", expanding=True)),
)


async def view_rows(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[Row[Any]]:
    if not customer_ids:
        return []
    result = await session.execute(
        _VIEWS_BY_ID, {"project_id": project_id, "ids": list(customer_ids)}
    )
    return list(result)


# The customer search reads identity's, segments' and subscriptions' tables in the same
# statement (EXISTS subqueries, and a join for the email domain): finding customers by
# what they hold has to be one set-based query, filtered before the page is cut, in one
# snapshot. It only reads them.
_SORT_VALUES: dict[str, SQLColumnExpression[Any]] = {
    "updated_at": Customer.updated_at,
    "last_name": LAST_NAME_SORT_KEY,
}


def search_statement(
    project_id: uuid.UUID, search: CustomerSearch, page: SearchPage
) -> Select[Any]:
    """A page of customer views matching every filter: the statement `search_view_rows`
    runs (and the benchmark explains)."""
    query = _view_select().where(
        Customer.project_id == project_id,
        Customer.status == search.status,
        *_profile_conditions(search),
        *_held_conditions(project_id, search),
    )
    if search.email_domain is not None:
        query = _with_email_domain(query, project_id, search.email_domain)
    return _keyset_page(query, page)


# Planned for each search's own values: a prepared statement switches to one generic plan
# for every value after five runs, and the best plan depends on the values (a rare domain
# or gmail.com). Measured at a million customers: 2 ms became 200 ms on the sixth run.
_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def search_view_rows(
    session: AsyncSession, project_id: uuid.UUID, search: CustomerSearch, page: SearchPage
) -> list[Row[Any]]:
    """Runs in the caller's transaction (SET LOCAL lasts until its end)."""
    await session.execute(_CUSTOM_PLANS)
    return list(await session.execute(search_statement(project_id, search, page)))


def _with_email_domain(query: Select[Any], project_id: uuid.UUID, domain: str) -> Select[Any]:
    """A join, not EXISTS: a customer holds at most one email, so no row repeats, and the
    planner may then read the domain's identifiers in customer id order (the index's
    order) and stop after one page, whether the domain has ten customers or a million."""
    email = aliased(CustomerIdentifier, name="email_identifier")
    return query.join(
        email,
        and_(
            email.project_id == project_id,
            email.kind == EMAIL,
            email_domain(email.value) == domain,
            email.customer_id == Customer.id,
        ),
    )


def _profile_conditions(search: CustomerSearch) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if search.updated_since is not None:
        conditions.append(Customer.updated_at >= search.updated_since)
    if search.created_since is not None:
        conditions.append(Customer.created_at >= search.created_since)
    if search.name_prefix is not None:
        # lower() on both sides in SQL, so the pattern is lower-cased exactly as the
        # indexed names are.
        pattern = func.lower(_prefix_pattern(search.name_prefix))
        conditions.append(or_(*(name.like(pattern) for name in LOWER_NAMES.values())))
    if search.birth_date_from is not None:
        conditions.append(Customer.birth_date >= search.birth_date_from)
    if search.birth_date_to is not None:
        conditions.append(Customer.birth_date <= search.birth_date_to)
    if search.gender is not None:
        conditions.append(Customer.gender == search.gender)
    if search.area is not None:
        conditions.append(LOWER_AREA == func.lower(search.area))
    for match in search.custom:
        conditions.append(
            or_(*(Customer.custom_fields.contains({match.key: value}) for value in match.values))
        )
    return conditions


def _held_conditions(project_id: uuid.UUID, search: CustomerSearch) -> list[ColumnElement[bool]]:
    """Conditions on other domains' rows of the customer (EXISTS: a customer may hold
    several matching cards). Each names the project: every index of those tables leads
    with it."""
    conditions: list[ColumnElement[bool]] = []
    if search.identifier is not None:
        conditions.append(
            _holds_identifier(
                project_id,
                CustomerIdentifier.kind == search.identifier.kind,
                CustomerIdentifier.value.like(_prefix_pattern(search.identifier.prefix)),
            )
        )
    if search.segment_id is not None:
        conditions.append(
            exists().where(
                SegmentMembership.project_id == project_id,
                SegmentMembership.segment_id == search.segment_id,
                SegmentMembership.customer_id == Customer.id,
            )
        )
    for subscription in search.subscriptions:
        conditions.append(
            exists().where(
                Subscription.project_id == project_id,
                Subscription.channel == subscription.channel,
                Subscription.topic == subscription.topic,
                Subscription.status == subscription.status,
                Subscription.customer_id == Customer.id,
            )
        )
    return conditions


def _holds_identifier(project_id: uuid.UUID, *criteria: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(
        CustomerIdentifier.project_id == project_id,
        CustomerIdentifier.customer_id == Customer.id,
        *criteria,
    )


def _prefix_pattern(prefix: str) -> str:
    """LIKE's pattern for "starts with": the wildcards in the prefix are escaped with
    backslash, PostgreSQL's default LIKE escape. A bound parameter, never SQL text."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _keyset_page(query: Select[Any], page: SearchPage) -> Select[Any]:
    """Order by the sort value, then id (unique, so the order is total), and continue
    strictly after the previous page's last row: a row comparison, which the
    (project_id, value, id) indexes serve as one range, in either direction."""
    descending = page.sort.startswith("-")
    name = page.sort.removeprefix("-")
    columns: list[SQLColumnExpression[Any]] = [Customer.id]
    if name != "id":
        columns.insert(0, _SORT_VALUES[name])
    if page.after is not None:
        position = [page.after.id] if name == "id" else [page.after.value, page.after.id]
        ours, theirs = tuple_(*columns), tuple_(*position)
        query = query.where(ours < theirs if descending else ours > theirs)
    order = [column.desc() for column in columns] if descending else columns
    return query.order_by(*order).limit(page.limit)


_INSERT_CUSTOMER = insert(table_of(Customer))


async def insert_customer(session: AsyncSession, customer: Customer) -> None:
    """A Core insert of a fully built row: no ORM flush, no round trip back."""
    values = {column.key: getattr(customer, column.key) for column in Customer.__table__.columns}
    await session.execute(_INSERT_CUSTOMER, values)


async def lock_customers(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[Customer]:
    """Row locks in id order, so two transactions locking the same customers cannot deadlock."""
    query = (
        select(Customer)
        .where(Customer.project_id == project_id, Customer.id.in_(customer_ids))
        .order_by(Customer.id)
        .with_for_update()
        # Another transaction may have changed the rows while we waited for the lock.
        .execution_options(populate_existing=True)
    )
    return list(await session.scalars(query))


async def status_of(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> tuple[str, uuid.UUID | None] | None:
    """(status, merged_into) of one customer: enough to follow a merge chain."""
    query = select(Customer.status, Customer.merged_into).where(
        Customer.project_id == project_id, Customer.id == customer_id
    )
    row = (await session.execute(query)).first()
    return (row.status, row.merged_into) if row is not None else None


async def insert_merges(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(table_of(CustomerMerge)), list(rows))


async def merges_into(
    session: AsyncSession, project_id: uuid.UUID, target_ids: Sequence[uuid.UUID]
) -> list[CustomerMerge]:
    query = (
        select(CustomerMerge)
        .where(CustomerMerge.project_id == project_id, CustomerMerge.target_id.in_(target_ids))
        .order_by(CustomerMerge.id)
    )
    return list(await session.scalars(query))


async def erase_profiles(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    *,
    survivor_id: uuid.UUID,
    now: datetime,
) -> None:
    """Clear the profiles of an erased customer and of those merged into it; the survivor
    becomes the `erased` tombstone (the merged ones stay tombstones pointing at it)."""
    await session.execute(
        update(Customer)
        .where(Customer.project_id == project_id, Customer.id.in_(customer_ids))
        .values(
            dict.fromkeys(PROFILE_FIELDS)
            | {
                "custom_fields": {},
                "status": case((Customer.id == survivor_id, "erased"), else_=Customer.status),
                "version": Customer.version + 1,
                "updated_at": now,
            }
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(CustomerMerge)
        .where(
            CustomerMerge.project_id == project_id,
            CustomerMerge.target_id.in_(customer_ids) | CustomerMerge.source_id.in_(customer_ids),
        )
        .values(details=redacted_json(CustomerMerge.details))
        .execution_options(synchronize_session=False)
    )
