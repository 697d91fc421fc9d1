"""A bulk import of a generated customer CSV, next to a raw COPY of the same file.

    .venv/bin/python -m bench.imports [--rows 1000000] [--small 100000]
        [--database-url postgresql://postgres@127.0.0.1:5432/cdp_bench_imports]

For each size (the small one first, to show memory stays flat as the file grows), in a
fresh process and a fresh database:
- seeds 10% of the file's customers (every 10th row's email and phone) so those rows
  match existing customers;
- times the import end to end as a worker runs it (the job handler: read, parse in the
  helper process, resolve and write batch by batch, commit each batch);
- times `COPY ... FROM` of the same file into a plain table (the raw-PostgreSQL baseline);
- reports rows/s of both, their ratio, and the peak resident memory of the worker process
  and of its parsing process.
"""

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.core import migrations
from app.core.db import UnitOfWork, async_database_url, create_database
from app.fields import service as fields_service
from app.fields.values import FieldEntity, FieldType
from app.imports import parsing
from app.imports.schemas import ImportOptions
from app.imports.service import ImportOwner, Storage, create_upload
from app.jobs import service as jobs_service
from app.jobs.handlers import HANDLERS
from app.jobs.worker import DEFAULT_LEASE
from app.projects import service as projects_service
from app.settings import Settings
from bench.database import _connect, _create_project, recreate

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/cdp_bench_imports"
HEADER = "email,phone,first_name,last_name,discount_cards,custom.tier\n"
TIERS = ("gold", "silver", "bronze")

_SEED_CUSTOMERS = """
    INSERT INTO customers (id, project_id, status, first_name, custom_fields, version,
                           created_at, updated_at)
    SELECT cdp_uuid7(), $1::uuid, 'active', 'Seed' || i, jsonb_build_object('n', i), 1, now(),
           now()
    FROM generate_series(0, $2::int - 1, 10) AS i
"""
_SEED_IDENTIFIERS = """
    INSERT INTO customer_identifiers (id, project_id, customer_id, kind, value, touchpoint)
    SELECT cdp_uuid7(), $1::uuid, c.id, k.kind,
           CASE k.kind WHEN 'email' THEN 'user' || n || '@bench.example'
                       ELSE '+49151' || lpad(n::text, 8, '0') END,
           'seed'
    FROM (SELECT id, (custom_fields->>'n')::int AS n FROM customers WHERE project_id = $1::uuid)
         AS c
    CROSS JOIN (VALUES ('email'), ('phone')) AS k(kind)
"""


def write_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(rows):
            out.write(
                f"user{i}@bench.example,+49151{i:08d},First{i},Last{i},CARD{i},{TIERS[i % 3]}\n"
            )


async def _prepare(url: str, rows: int) -> uuid.UUID:
    await recreate(url)
    await asyncio.to_thread(migrations.upgrade, url)
    issued = await _create_project(url)
    project_id = issued.api_key.project_id
    connection = await _connect(url)
    try:
        async with connection.transaction():
            await connection.execute(_SEED_CUSTOMERS, project_id, rows)
            await connection.execute(_SEED_IDENTIFIERS, project_id)
        await connection.execute("VACUUM ANALYZE")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()
    database = create_database(async_database_url(url), Settings(database_url=url))
    try:
        await fields_service.create_field(
            UnitOfWork(database.sessions),
            project_id,
            entity=FieldEntity.CUSTOMER,
            key="tier",
            label=None,
            field_type=FieldType.ENUM,
            enum_values=list(TIERS),
            max_length=None,
        )
    finally:
        await database.dispose()
    return project_id


async def _import(url: str, project_id: uuid.UUID, path: Path, work: Path) -> dict[str, Any]:
    settings = Settings(database_url=url, import_dir=work / "imports")
    database = create_database(async_database_url(url), settings)
    try:
        uow = UnitOfWork(database.sessions)
        async with uow.read_only() as session:
            project = await projects_service.settings_of(session, project_id)
        owner = ImportOwner(project_id, project, "bench", None, lambda _touchpoint: True)
        storage = Storage.from_settings(settings)
        import_id = uuid.uuid4()
        started = time.perf_counter()
        # The upload is a copy into the import folder (as the API streams it there).
        target = storage.path_for(import_id)
        await asyncio.to_thread(shutil.copyfile, path, target)
        row = await create_upload(
            uow,
            owner,
            storage,
            import_id=import_id,
            options=ImportOptions(),
            file_name=path.name,
            file_bytes=target.stat().st_size,
        )
        ran = await jobs_service.run_one(
            uow,
            worker_id="bench",
            handlers=HANDLERS,
            now=datetime.now(UTC),
            lease=DEFAULT_LEASE,
            only_job_id=row.job_id,
        )
        elapsed = time.perf_counter() - started
        assert ran
        connection = await _connect(url)
        try:
            found = await connection.fetchrow(
                "SELECT status, error, rows_read, created, updated, skipped, failed "
                "FROM imports WHERE id = $1",
                import_id,
            )
            counts = dict(found) if found is not None else {}
        finally:
            await connection.close()
        return {"seconds": elapsed, **counts}
    finally:
        await database.dispose()


async def _raw_copy(url: str, path: Path) -> float:
    connection = await _connect(url)
    try:
        await connection.execute(
            "CREATE TABLE raw_import (email text, phone text, first_name text, last_name text,"
            " discount_cards text, tier text)"
        )
        started = time.perf_counter()
        await connection.copy_to_table("raw_import", source=path, format="csv", header=True)
        return time.perf_counter() - started
    finally:
        await connection.close()


async def measure_one(url: str, rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cdp-bench-imports-") as work_dir:
        work = Path(work_dir)
        path = work / "customers.csv"
        write_file(path, rows)
        project_id = await _prepare(url, rows)
        imported = await _import(url, project_id, path, work)
        parsing.shutdown()
        copy_seconds = await _raw_copy(url, path)
        return {
            "rows": rows,
            "file_bytes": path.stat().st_size,
            "import": imported,
            "import_rows_per_second": rows / imported["seconds"],
            "copy_seconds": copy_seconds,
            "copy_rows_per_second": rows / copy_seconds,
            # ru_maxrss is in KiB on Linux; children: the parsing process (shut down above).
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "parser_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        }


def _run_in_fresh_process(url: str, rows: int) -> dict[str, Any]:
    output = subprocess.run(  # noqa: S603 (this interpreter, this module)
        [sys.executable, "-m", "bench.imports", "--one", str(rows), "--database-url", url],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def _print(result: dict[str, Any]) -> None:
    imported = result["import"]
    ratio = result["import_rows_per_second"] / result["copy_rows_per_second"]
    print(
        f"{result['rows']:>9,} rows ({result['file_bytes'] / 1024**2:.0f} MiB): "
        f"import {imported['seconds']:.1f} s = {result['import_rows_per_second']:,.0f} rows/s "
        f"[{imported['status']}: created {imported['created']:,}, updated "
        f"{imported['updated']:,}, failed {imported['failed']:,}] | raw COPY "
        f"{result['copy_seconds']:.1f} s = {result['copy_rows_per_second']:,.0f} rows/s | "
        f"import/COPY {ratio:.3f} | peak RSS worker {result['peak_rss_mib']:.0f} MiB, "
        f"parser {result['parser_peak_rss_mib']:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(asyncio.run(measure_one(args.database_url, args.one)), default=str))
        return
    for rows in (args.small, args.rows):
        _print(_run_in_fresh_process(args.database_url, rows))


if __name__ == "__main__":
    main()
