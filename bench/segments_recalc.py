"""Recalculating a rule segmentation over many customers, next to the same SQL in psql.

    .venv/bin/python -m bench.segments_recalc [--customers 1000000]
        [--database-url postgresql://postgres@127.0.0.1:5432/cdp_bench_segments]

Seeds customers (tier and visits custom fields, an email each, email consent for a
third), defines a two-segment rule segmentation, then measures in the same run:
- the service's recalculation (what the job runs: compile, one INSERT ... SELECT into a
  temp table, the four diff statements, one transaction), first run (everyone enters)
  and second run (nothing changes);
- the same statements sent by psql (`\\timing`), with the rule compiled to literal SQL.
"""

import argparse
import asyncio
import re
import subprocess
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import Uuid, case, cast, literal, select
from sqlalchemy.dialects import postgresql

from app.core.db import UnitOfWork, async_database_url, create_database
from app.customers.models import Customer
from app.fields import service as fields_service
from app.fields.values import FieldEntity, FieldType
from app.segments import repository as segments_repository
from app.segments import service as segments_service
from app.segments.rules import compile_rule
from app.segments.schemas import SegmentIn
from app.settings import Settings
from bench.database import _connect, database_name, recreate

RULES = (
    {
        "all": [
            {"custom_field": "tier", "op": "eq", "value": "gold"},
            {"subscription": {"channel": "email"}, "status": "subscribed"},
        ]
    },
    {"custom_field": "visits", "op": "gte", "value": 10},
)
_SEED = (
    """
    INSERT INTO customers (id, project_id, status, first_name, custom_fields, version,
                           created_at, updated_at)
    SELECT cdp_uuid7(), $1::uuid, 'active', 'Bench',
           jsonb_build_object('tier', (ARRAY['gold','silver','bronze'])[1 + i % 3],
                              'visits', i % 20),
           1, now(), now()
    FROM generate_series(1, $2::int) AS i
    """,
    """
    INSERT INTO customer_identifiers (id, project_id, customer_id, kind, value, touchpoint)
    SELECT cdp_uuid7(), $1::uuid, id, 'email', id::text || '@bench.example', 'seed'
    FROM customers WHERE project_id = $1::uuid
    """,
    """
    INSERT INTO subscriptions (id, project_id, customer_id, channel, topic, status,
                               touchpoint, decided_at)
    SELECT cdp_uuid7(), $1::uuid, id, 'email', '', 'subscribed', 'seed', now()
    FROM customers WHERE project_id = $1::uuid AND get_byte(uuid_send(id), 15) % 3 = 0
    """,
)


async def _setup(url: str, customers: int) -> tuple[uuid.UUID, uuid.UUID]:
    from bench.database import _create_project

    await recreate(url)
    from app.core import migrations

    await asyncio.to_thread(migrations.upgrade, url)
    issued = await _create_project(url)
    project_id = issued.api_key.project_id
    connection = await _connect(url)
    try:
        await connection.execute(_SEED[0], project_id, customers)
        for statement in _SEED[1:]:
            await connection.execute(statement, project_id)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    database = create_database(async_database_url(url), Settings(database_url=url))
    try:
        uow = UnitOfWork(database.sessions)
        for key, kind in (("tier", FieldType.ENUM), ("visits", FieldType.INTEGER)):
            await fields_service.create_field(
                uow,
                project_id,
                entity=FieldEntity.CUSTOMER,
                key=key,
                label=None,
                field_type=kind,
                enum_values=["gold", "silver", "bronze"] if kind == FieldType.ENUM else None,
                max_length=None,
            )
        segmentation = await segments_service.create_segmentation(
            uow,
            project_id,
            key="bench",
            name="Bench",
            kind="rule",
            every_minutes=None,
            segments=[
                SegmentIn(key=f"s{n}", name=f"s{n}", rule=rule) for n, rule in enumerate(RULES)
            ],
        )
        return project_id, segmentation.id
    finally:
        await database.dispose()


async def _service_run(
    url: str, project_id: uuid.UUID, segmentation_id: uuid.UUID
) -> tuple[float, int, int]:
    database = create_database(async_database_url(url), Settings(database_url=url))
    try:
        uow = UnitOfWork(database.sessions)
        started = time.perf_counter()
        async with uow:
            result = await segments_service.recalculate(
                uow.session,
                project_id,
                segmentation_id,
                recalculation_id=uuid.uuid4(),
                initiator="bench",
            )
        return time.perf_counter() - started, result.added, result.removed
    finally:
        await database.dispose()


async def _psql_script(url: str, project_id: uuid.UUID, segmentation_id: uuid.UUID) -> str:
    """The recalculation's statements with every value inlined, as psql will send them."""
    database = create_database(async_database_url(url), Settings(database_url=url))
    try:
        async with UnitOfWork(database.sessions).read_only() as session:
            context = await segments_service._context(
                session, project_id, excluding=segmentation_id
            )
            segments = await segments_repository.segments_of(session, [segmentation_id])
    finally:
        await database.dispose()
    chosen = case(
        *[
            # Inlined, the ids need their type spelled out (the service binds them as uuid).
            (compile_rule(s.rule, context, pointer=""), cast(literal(s.id, Uuid), Uuid))
            for s in segments
            if s.rule
        ],
        else_=None,
    )
    matched = (
        select(Customer.id, chosen.label("segment_id"))
        .where(Customer.project_id == project_id, Customer.status == "active")
        .subquery()
    )
    compute = select(matched.c.id, matched.c.segment_id).where(matched.c.segment_id.is_not(None))
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's stub gap
    sql = str(compute.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    values = {
        ":project_id": f"'{project_id}'",
        ":segmentation_id": f"'{segmentation_id}'",
        ":recalculation_id": f"'{uuid.uuid4()}'",
        ":touchpoint": "'psql'",
        ":initiator": "'psql'",
    }
    diff = []
    for statement in (
        segments_repository._HISTORY_OF_EXITS,
        segments_repository._EXITS,
        segments_repository._UNCHANGED,
        segments_repository._HISTORY_OF_ENTRIES,
        segments_repository._ENTRIES,
    ):
        text_sql = str(statement)
        for name, value in values.items():
            text_sql = text_sql.replace(name, value)
        diff.append(text_sql + ";")
    return "\n".join(
        [
            "\\timing on",
            "BEGIN;",
            "CREATE TEMP TABLE segment_target"
            " (customer_id uuid PRIMARY KEY, segment_id uuid NOT NULL) ON COMMIT DROP;",
            f"INSERT INTO segment_target {sql};",
            *diff,
            "COMMIT;",
        ]
    )


def _psql_time(url: str, script: str) -> float:
    # psql from PATH, as the other benchmarks take pgbench from it.
    output = subprocess.run(  # noqa: S603
        ["psql", "-X", "-q", url, "-v", "ON_ERROR_STOP=1"],  # noqa: S607
        input=script,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(float(m) for m in re.findall(r"Time: ([0-9.]+) ms", output)) / 1000


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/cdp_bench_segments"
    )
    args = parser.parse_args()
    database_name(args.database_url)  # refuses names without "bench"
    started = time.perf_counter()
    project_id, segmentation_id = await _setup(args.database_url, args.customers)
    print(
        f"seeded {args.customers:,} customers in {time.perf_counter() - started:.1f} s"
        f" ({datetime.now(UTC):%H:%M:%S})"
    )
    first = await _service_run(args.database_url, project_id, segmentation_id)
    second = await _service_run(args.database_url, project_id, segmentation_id)
    # psql runs the same statements: reset membership first so it does the full work too.
    connection = await _connect(args.database_url)
    try:
        await connection.execute("DELETE FROM segment_memberships")
    finally:
        await connection.close()
    script = await _psql_script(args.database_url, project_id, segmentation_id)
    psql_first = _psql_time(args.database_url, script)
    psql_second = _psql_time(args.database_url, script)
    print(f"\n{'run':<34}{'service s':>12}{'psql s':>10}{'ratio':>8}   added/removed (service)")
    for label, (seconds, added, removed), raw in (
        ("first recalculation (all enter)", first, psql_first),
        ("second recalculation (no change)", second, psql_second),
    ):
        print(
            f"{label:<34}{seconds:>12.2f}{raw:>10.2f}{seconds / raw:>8.2f}   {added:,}/{removed:,}"
        )


if __name__ == "__main__":
    asyncio.run(main())
