"""The customer search (GET /v1/customers filters) over a million customers, explained.

    .venv/bin/python -m bench.customer_search [--customers 1000000]
        [--database-url postgresql://postgres@127.0.0.1:5432/cdp_bench_search]

Seeds customers with set-based SQL (an email each, a phone for 70%, names, birth date,
gender, area, custom fields `tier` and `visits`, email consent for half, pending SMS
consent for 1%, manual segments holding 5% and 0.02%; common and rare values of each),
runs VACUUM ANALYZE, then for each filter builds the statement exactly as the service
does (`search.read_search` against the project's field definitions, then
`repository.search_statement`, in a transaction with the repository's SET LOCAL) and
runs it with its bound parameters under EXPLAIN (ANALYZE, BUFFERS), after one warm-up
run. Prints each plan, then a table: execution time, and the indexes the plan reads
outside the view's per-row subqueries (identifier arrays, merged ids, auth token: a few
probes per row returned). Also the median wall time of 9 runs of
`repository.search_view_rows` with the app's engine (prepared statements and the SET
LOCAL round trip included), as the service pays it.
"""

import argparse
import asyncio
import re
import statistics
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from app.core import migrations
from app.core.db import UnitOfWork, async_database_url, create_database
from app.customers import repository
from app.customers.search import (
    CustomerSearch,
    CustomerSort,
    SearchPage,
    SearchParameters,
    SortPosition,
    read_search,
)
from app.fields import service as fields_service
from app.fields.values import FieldEntity, FieldType
from app.segments import repository as segments_repository
from app.segments import service as segments_service
from app.segments.schemas import SegmentIn
from app.settings import Settings
from bench.database import _connect, _create_project, database_name, recreate

PAGE = 50
_FIRST_NAMES = (
    "Anna Ben Clara David Emma Felix Greta Hans Ida Jonas Klara Lukas Marie Noah Olga Paul "
    "Rosa Simon Tina Uwe Vera Walter Xenia Yusuf Zoe Ahmet Birgit Carlos Dana Elif"
).split()
_LAST_NAME_STEMS = (
    "Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein "
    "Wolf Neumann Schwarz Braun Zimmermann Hartmann Lange Werner"
).split()
_AREAS = (
    "Berlin Hamburg München Köln Frankfurt Stuttgart Düsseldorf Leipzig Dortmund Essen "
    "Bremen Dresden Hannover Nürnberg Duisburg Bochum Wuppertal Bielefeld Bonn Münster "
    "Mannheim Karlsruhe Augsburg Wiesbaden Kiel Aachen Freiburg Lübeck Erfurt Rostock"
).split()
# Weighted: gmail.com is 30% of the addresses, acme-corp.de 0.1%.
_DOMAINS = ["gmail.com"] * 300 + ["acme-corp.de"] + [f"mail{n}.de" for n in range(699)]


# $1 project id, $2 customer count, $3 first names, $4 last names, $5 areas. Half the last
# names are common German ones, half random letters (md5 digits mapped to g-p), so a
# prefix can be as rare as in life; one in 10,000 lives on Helgoland or has 999 visits
# (rare values, spread over the table).
_SEED_CUSTOMERS = """
INSERT INTO customers (id, project_id, status, first_name, last_name, middle_name,
                       birth_date, gender, area, custom_fields, version, created_at,
                       updated_at)
SELECT cdp_uuid7(), $1::uuid, 'active',
       ($3::text[])[1 + i % cardinality($3::text[])],
       CASE WHEN i % 2 = 0
            THEN ($4::text[])[1 + (i / 2) % cardinality($4::text[])]
            ELSE initcap(translate(substr(md5(i::text), 1, 8), '0123456789', 'ghijklmnop'))
       END,
       CASE WHEN i % 10 = 0 THEN ($3::text[])[1 + (i / 10) % 7] END,
       CASE WHEN i % 20 <> 0 THEN date '1940-01-01' + ((i::bigint * 7919) % 24000)::int END,
       CASE WHEN i % 200 = 11 THEN 'unknown' ELSE (ARRAY['female', 'male'])[1 + i % 2] END,
       CASE WHEN i % 10000 = 7 THEN 'Helgoland'
            WHEN i % 25 <> 0 THEN ($5::text[])[1 + (i * 31) % cardinality($5::text[])] END,
       jsonb_build_object('tier', (ARRAY['gold','silver','bronze','bronze','bronze',
                                         'bronze','silver','silver','bronze','bronze'])
                                  [1 + (i * 17) % 10],
                          'visits', CASE WHEN i % 10000 = 3 THEN 999 ELSE (i * 7) % 50 END),
       1, now() - make_interval(secs => $2::int - i),
       now() - make_interval(secs => (i::bigint * 104729) % 5000000)
FROM generate_series(1, $2::int) AS i
"""
_SEED = (
    # An email each: local part from the row number, domain weighted by _DOMAINS ($2),
    # and tiny-corp.de for 1 in 10,000 (spread over the table: the planner's hard case).
    """
    INSERT INTO customer_identifiers (id, project_id, customer_id, kind, value, touchpoint)
    SELECT cdp_uuid7(), $1::uuid, id, 'email',
           'user' || n || '@' || CASE WHEN n % 10000 = 5 THEN 'tiny-corp.de'
                                      ELSE ($2::text[])[1 + (n * 7) % cardinality($2::text[])]
                                 END,
           'seed'
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n
          FROM customers WHERE project_id = $1::uuid) AS c
    """,
    # A phone for 70%: German area codes 30..229, so +4930 is 1 in 200 of them.
    """
    INSERT INTO customer_identifiers (id, project_id, customer_id, kind, value, touchpoint)
    SELECT cdp_uuid7(), $1::uuid, id, 'phone',
           '+49' || (30 + (n * 3) % 200) || lpad(n::text, 8, '0'), 'seed'
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n
          FROM customers WHERE project_id = $1::uuid) AS c
    WHERE n % 10 < 7
    """,
    """
    INSERT INTO subscriptions (id, project_id, customer_id, channel, topic, status,
                               touchpoint, decided_at)
    SELECT cdp_uuid7(), $1::uuid, id, 'email', '',
           CASE WHEN get_byte(uuid_send(id), 15) % 3 = 0 THEN 'subscribed'
                ELSE 'unsubscribed' END,
           'seed', now()
    FROM customers WHERE project_id = $1::uuid AND get_byte(uuid_send(id), 14) % 2 = 0
    """,
    """
    INSERT INTO subscriptions (id, project_id, customer_id, channel, topic, status,
                               touchpoint, decided_at)
    SELECT cdp_uuid7(), $1::uuid, id, 'sms', '', 'pending', 'seed', now()
    FROM customers WHERE project_id = $1::uuid AND get_byte(uuid_send(id), 13) % 100 = 0
    """,
)
# $1 project, $2 segmentation, $3 segment "vip": 5% of the customers, $4 segment "tiny":
# about 200 of them (segments of one segmentation are exclusive).
_SEED_MEMBERS = """
INSERT INTO segment_memberships (id, project_id, segmentation_id, segment_id, customer_id)
SELECT cdp_uuid7(), $1::uuid, $2::uuid,
       CASE WHEN get_byte(uuid_send(id), 12) % 20 = 0 THEN $3::uuid ELSE $4::uuid END, id
FROM customers
WHERE project_id = $1::uuid
  AND (get_byte(uuid_send(id), 12) % 20 = 0
       OR (get_byte(uuid_send(id), 12) % 20 = 1 AND get_byte(uuid_send(id), 11) = 0))
"""


class Explain(Executable, ClauseElement):
    """EXPLAIN (ANALYZE, BUFFERS) of a statement, executed with its bound parameters."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (ANALYZE, BUFFERS) " + compiler.process(element.statement, **kw)


@dataclass(frozen=True)
class Case:
    label: str
    parameters: SearchParameters
    sort: CustomerSort = "id"
    second_page: bool = False  # explain the page after the first (a keyset cursor)


@dataclass(frozen=True)
class Figures:
    label: str
    rows: int
    execution_ms: float
    planning_ms: float
    wall_ms: float
    indexes: list[str]


def _cases(segment_ids: list[uuid.UUID]) -> list[Case]:
    """Segment ids in position order: vip (5%), tiny (about 200 customers)."""
    p = SearchParameters
    return [
        Case("no filter (id order)", p()),
        Case("email_domain=acme-corp.de (0.1%)", p(email_domain="acme-corp.de")),
        Case("email_domain=gmail.com (30%)", p(email_domain="gmail.com")),
        Case("email_domain=tiny-corp.de (100 rows)", p(email_domain="tiny-corp.de")),
        Case(
            "email_domain=gmail.com, -updated_at", p(email_domain="gmail.com"), sort="-updated_at"
        ),
        Case("phone prefix +4930 (0.5%)", p(identifier_kind="phone", identifier_prefix="+4930")),
        Case(
            "email prefix user12345 (11 rows)",
            p(identifier_kind="email", identifier_prefix="user12345"),
        ),
        Case("name=gahi (rare prefix)", p(name="gahi")),
        Case("name=schm (2.5%)", p(name="schm")),
        Case(
            "birth_date one week",
            p(birth_date_from=date(1980, 3, 1), birth_date_to=date(1980, 3, 7)),
        ),
        Case("gender=female (50%)", p(gender="female")),
        Case("gender=unknown (0.5%)", p(gender="unknown")),
        Case("area=bremen (3%)", p(area="bremen")),
        Case("area=helgoland (100 rows)", p(area="helgoland")),
        Case("custom tier:gold (10%)", p(custom=("tier:gold",))),
        Case("custom visits:42 (2%)", p(custom=("visits:42",))),
        Case("custom visits:999 (100 rows)", p(custom=("visits:999",))),
        Case("segment_id vip (5%)", p(segment_id=segment_ids[0])),
        Case("segment_id tiny (0.02%)", p(segment_id=segment_ids[1])),
        Case("subscription sms:pending (1%)", p(subscription=("sms:pending",))),
        Case("subscription email:subscribed (17%)", p(subscription=("email:subscribed",))),
        Case(
            "gender+area+custom+subscription",
            p(
                gender="female",
                area="Berlin",
                custom=("tier:gold",),
                subscription=("email:subscribed",),
            ),
        ),
        Case("sort=-id, page 2", p(), sort="-id", second_page=True),
        Case("sort=-updated_at, page 2", p(), sort="-updated_at", second_page=True),
        Case("sort=last_name, page 2", p(), sort="last_name", second_page=True),
        Case(
            "name=schm sort=last_name, page 2", p(name="schm"), sort="last_name", second_page=True
        ),
    ]


async def _setup(url: str, customers: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    await recreate(url)
    await asyncio.to_thread(migrations.upgrade, url)
    project_id = (await _create_project(url)).api_key.project_id
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
            key="vip",
            name="VIP",
            kind="manual",
            every_minutes=None,
            segments=[SegmentIn(key="vip", name="VIP"), SegmentIn(key="tiny", name="Tiny")],
        )
        async with UnitOfWork(database.sessions).read_only() as session:
            segment_ids = await _segment_ids(session, segmentation.id)
    finally:
        await database.dispose()
    connection = await _connect(url)
    try:
        await connection.execute(
            _SEED_CUSTOMERS, project_id, customers, _FIRST_NAMES, _LAST_NAME_STEMS, _AREAS
        )
        await connection.execute(_SEED[0], project_id, _DOMAINS)
        for statement in _SEED[1:]:
            await connection.execute(statement, project_id)
        await connection.execute(_SEED_MEMBERS, project_id, segmentation.id, *segment_ids)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return project_id, segment_ids


async def _segment_ids(session: AsyncSession, segmentation_id: uuid.UUID) -> list[uuid.UUID]:
    return [s.id for s in await segments_repository.segments_of(session, [segmentation_id])]


async def _search(
    session: AsyncSession, project_id: uuid.UUID, case: Case
) -> tuple[CustomerSearch, SearchPage]:
    """The filters and page as service.list_customers reads them (field definitions first)."""
    parameters = case.parameters
    fields = (
        await fields_service.definitions_for(session, project_id)
        if parameters.needs_field_definitions
        else {}
    )
    search = read_search(parameters, fields=fields)
    page = SearchPage(case.sort, None, PAGE + 1)
    if case.second_page:
        first = await repository.search_view_rows(session, project_id, search, page)
        last = first[PAGE - 1]
        value = {"id": None, "updated_at": last.updated_at, "last_name": last.last_name or ""}
        page = replace(page, after=SortPosition(value[case.sort.removeprefix("-")], last.id))
    return search, page


_INDEX = re.compile(
    r"(?:Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)"
)
_TIME = re.compile(r"(Planning|Execution) Time: ([0-9.]+) ms")


def _filter_indexes(plan: list[str]) -> list[str]:
    """Indexes read outside the SubPlans of the view's per-row columns."""
    found: list[str] = []
    subplan_indent: int | None = None
    for line in plan:
        indent = len(line) - len(line.lstrip())
        if subplan_indent is not None and indent <= subplan_indent:
            subplan_indent = None
        if subplan_indent is None and line.strip().startswith("SubPlan"):
            subplan_indent = indent
            continue
        match = _INDEX.search(line)
        if subplan_indent is None and match and match.group(1) not in found:
            found.append(match.group(1))
    return found


async def _run(
    session: AsyncSession, project_id: uuid.UUID, case: Case
) -> tuple[Figures, list[str]]:
    search, page = await _search(session, project_id, case)
    rows = len(await repository.search_view_rows(session, project_id, search, page))  # warm-up
    statement = repository.search_statement(project_id, search, page)
    plan = [row[0] for row in await session.execute(Explain(statement))]
    times = {m.group(1): float(m.group(2)) for line in plan if (m := _TIME.search(line))}
    walls = []
    for _ in range(9):  # the prepared statement's 6th to 9th runs would get a generic plan
        started = time.perf_counter()
        await repository.search_view_rows(session, project_id, search, page)
        walls.append((time.perf_counter() - started) * 1000)
    figures = Figures(
        case.label,
        rows,
        times["Execution"],
        times["Planning"],
        statistics.median(walls),
        _filter_indexes(plan),
    )
    return figures, plan


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/cdp_bench_search"
    )
    args = parser.parse_args()
    database_name(args.database_url)  # refuses names without "bench"
    started = time.perf_counter()
    project_id, segment_ids = await _setup(args.database_url, args.customers)
    print(
        f"seeded {args.customers:,} customers in {time.perf_counter() - started:.1f} s"
        f" ({datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC)"
    )
    database = create_database(
        async_database_url(args.database_url), Settings(database_url=args.database_url)
    )
    results: list[Figures] = []
    try:
        # One transaction, as the service runs a search in one (its SET LOCAL holds in it).
        async with UnitOfWork(database.sessions) as uow:
            for case in _cases(segment_ids):
                figures, plan = await _run(uow.session, project_id, case)
                results.append(figures)
                print(f"\n=== {case.label} (sort={case.sort}, {figures.rows} rows) ===")
                print("\n".join(plan))
    finally:
        await database.dispose()
    print(f"\n{'filter':<40}{'rows':>5}{'exec ms':>9}{'plan ms':>9}{'wall ms':>9}  indexes")
    for f in results:
        print(
            f"{f.label:<40}{f.rows:>5}{f.execution_ms:>9.2f}{f.planning_ms:>9.2f}"
            f"{f.wall_ms:>9.2f}  {', '.join(f.indexes)}"
        )


if __name__ == "__main__":
    asyncio.run(main())
