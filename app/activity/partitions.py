"""Monthly partitions of `actions`: `cdp activity partitions` keeps months ahead created.

A partition is `activity_partitions.actions_yYYYYmMM` and holds [first of the month, first
of the next month) in UTC. Rows for a month without a partition wait in the DEFAULT one;
when that month's partition is created they move into it, in the same transaction.
Besides the months ahead, a gap after the newest partition (the command was not run for
a while) is filled too.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from app.activity import repository
from app.core.db import UnitOfWork

_PARTITION_NAME = re.compile(r"^actions_y(\d{4})m(\d{2})$")


@dataclass(frozen=True)
class CreatedPartition:
    name: str
    month: date
    rows_moved: int


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> Iterator[date]:
    """First days of the months from `first` to `last`, both included."""
    month = first.replace(day=1)
    while month <= last:
        yield month
        month = add_months(month, 1)


def partition_name(month: date) -> str:
    return f"actions_y{month.year:04d}m{month.month:02d}"


def month_of(name: str) -> date | None:
    found = _PARTITION_NAME.match(name)
    return date(int(found[1]), int(found[2]), 1) if found else None


def months_to_create(existing: set[date], this_month: date, months_ahead: int) -> list[date]:
    """This month and `months_ahead` after it, plus any gap after the newest partition."""
    first = this_month
    if existing and max(existing) < this_month:
        first = add_months(max(existing), 1)
    return [
        m for m in months_between(first, add_months(this_month, months_ahead)) if m not in existing
    ]


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def ensure_monthly_partitions(
    uow: UnitOfWork, *, months_ahead: int, today: date | None = None
) -> list[CreatedPartition]:
    """Create the missing monthly partitions, each with the rows waiting for it."""
    this_month = (today or datetime.now(UTC).date()).replace(day=1)
    async with uow:
        session = uow.session
        await repository.lock_for_partitioning(session)
        names = await repository.partition_names(session)
        existing = {month for month in map(month_of, names) if month is not None}
        created: list[CreatedPartition] = []
        for month in months_to_create(existing, this_month, months_ahead):
            moved = await repository.create_partition(
                session,
                partition_name(month),
                _utc_midnight(month),
                _utc_midnight(add_months(month, 1)),
            )
            created.append(CreatedPartition(partition_name(month), month, moved))
        return created
