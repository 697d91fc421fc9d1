"""Monthly partitions: which months are missing, and rows waiting in the DEFAULT partition
moving into the partition created for their month."""

import json
import uuid
from datetime import UTC, date, datetime

import asyncpg
import pytest
from typer.testing import CliRunner

from app.activity.partitions import (
    add_months,
    ensure_monthly_partitions,
    month_of,
    months_to_create,
    partition_name,
)
from app.cli import cli
from app.core.db import UnitOfWork
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey
from tests.helpers import run_sync


def test_months_to_create_fills_the_gap_after_the_newest_partition() -> None:
    existing = {date(2026, 1, 1), date(2026, 2, 1), date(2026, 5, 1)}
    assert months_to_create(existing, date(2026, 3, 1), 2) == [date(2026, 3, 1), date(2026, 4, 1)]
    assert months_to_create(existing, date(2026, 8, 1), 1) == [
        date(2026, 6, 1),
        date(2026, 7, 1),
        date(2026, 8, 1),
        date(2026, 9, 1),
    ]
    assert months_to_create(set(), date(2026, 12, 1), 1) == [date(2026, 12, 1), date(2027, 1, 1)]
    assert month_of(partition_name(date(2031, 7, 1))) == date(2031, 7, 1)
    assert month_of("actions_default") is None


async def _insert_raw(
    connection: asyncpg.Connection, project_id: uuid.UUID, at: datetime
) -> uuid.UUID:
    """Straight into the table: the API refuses these times, but imports and clock bugs
    can put rows outside the monthly partitions, and the DEFAULT partition takes them."""
    action_id = uuid.uuid4()
    customer_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO actions (id, project_id, customer_id, origin_customer_id, type, "
        "occurred_at, touchpoint, initiator) VALUES ($1, $2, $3, $3, 'import.row', $4, 't', 'i')",
        action_id,
        project_id,
        customer_id,
        at,
    )
    return action_id


async def _partition_of(connection: asyncpg.Connection, action_id: uuid.UUID) -> str:
    return str(
        await connection.fetchval(
            "SELECT tableoid::regclass::text FROM actions WHERE id = $1", action_id
        )
    )


async def _newest_month(connection: asyncpg.Connection) -> date:
    names = await connection.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'public.actions'::regclass"
    )
    return max(m for m in (month_of(row[0]) for row in names) if m is not None)


def _months_from_now(month: date) -> int:
    today = datetime.now(UTC).date()
    return (month.year - today.year) * 12 + month.month - today.month


async def test_rows_waiting_in_default_move_into_their_new_partition(
    owner_uow: UnitOfWork, project: ProjectWithKey, database_url: str
) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        target = add_months(await _newest_month(connection), 2)
        waiting = await _insert_raw(
            connection, project.project.id, datetime(target.year, target.month, 15, tzinfo=UTC)
        )
        ancient = await _insert_raw(
            connection, project.project.id, datetime(2019, 6, 1, tzinfo=UTC)
        )
        assert await _partition_of(connection, waiting) == "activity_partitions.actions_default"

        created = await ensure_monthly_partitions(owner_uow, months_ahead=_months_from_now(target))
        assert [(c.month, c.rows_moved) for c in created] == [
            (add_months(target, -1), 0),
            (target, 1),
        ]
        assert await _partition_of(connection, waiting) == (
            f"activity_partitions.{partition_name(target)}"
        )
        # Months before the first partition are not created: those rows stay in DEFAULT.
        assert await _partition_of(connection, ancient) == "activity_partitions.actions_default"
        assert await connection.fetchval("SELECT count(*) FROM actions") == 2
    finally:
        await connection.close()
    again = await ensure_monthly_partitions(owner_uow, months_ahead=_months_from_now(target))
    assert again == []


async def _newest_month_of(database_url: str) -> date:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        return await _newest_month(connection)
    finally:
        await connection.close()


def test_the_cli_command_creates_what_is_missing(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_DATABASE_URL", database_url)
    following = add_months(run_sync(_newest_month_of(database_url)), 1)
    ahead = str(_months_from_now(following))
    result = CliRunner().invoke(cli, ["activity", "partitions", "--months-ahead", ahead, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"partition": partition_name(following), "month": following.isoformat(), "rows_moved": 0}
    ]
