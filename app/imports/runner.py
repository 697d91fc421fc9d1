"""Running an import as a job: fetch, read, apply batch by batch, resumable at any point.

Each batch commits its customers, its report lines, its counts and the resume point
(`rows_done`) in one transaction. A run that dies (killed, restarted, lease lost) is
claimed again by the job queue and continues after the last committed batch, so every
row is applied exactly once.
"""

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.core.auth import Actor, ProjectSettings
from app.core.db import UnitOfWork
from app.customers.inputs import ProjectRules, load_rules
from app.imports import ftp, repository, staging
from app.imports.batches import BatchResult, apply_batch
from app.imports.columns import ColumnPlan, PlanError, plan_columns
from app.imports.csvfile import CsvFile, FileProblem
from app.imports.models import CANCELLED, FAILED, FINISHED, RUNNING, SUCCEEDED, Import
from app.imports.parsing import parse_in_background
from app.imports.rows import ParsedRow
from app.imports.schedules import file_done
from app.imports.schemas import FtpSource, ImportOptions
from app.jobs.models import Job
from app.jobs.service import ProgressReporter
from app.projects import service as projects_service

logger = logging.getLogger(__name__)

BATCH_ROWS = 10_000


class ImportFailed(Exception):
    """The import cannot go on; str(error) is what GET /v1/imports/{id} shows."""


@dataclass(frozen=True)
class FetchLimits:
    """What the process that accepted the import allowed its file: how big, and whether
    its FTP host may resolve to a private address (decided then, carried by the job)."""

    max_bytes: int
    ftp_allow_private: bool

    @classmethod
    def of(cls, payload: dict[str, Any]) -> "FetchLimits":
        # Jobs queued before the address check existed carry no decision: the strict one.
        return cls(
            max_bytes=int(payload["max_bytes"]),
            ftp_allow_private=bool(payload.get("ftp_allow_private", False)),
        )


@dataclass(frozen=True)
class _Batch:
    records: list[tuple[int, list[str]]]
    # Where the file stands after this batch: the resume point committed with it.
    records_done: int
    bytes_done: int


async def run_import_handler(
    uow: UnitOfWork, job: Job, progress: ProgressReporter
) -> dict[str, Any]:
    import_id = uuid.UUID(str(job.payload["import_id"]))
    phone_region = str(job.payload["phone_region"])
    limits = FetchLimits.of(job.payload)
    row = await _start(uow, import_id)
    if row is None or row.status in FINISHED:
        await _clean_up(uow, import_id, row)
        return {"import_id": str(import_id), "status": row.status if row else "missing"}
    try:
        status = await _run(uow, row, phone_region, limits, progress.report)
    except (ImportFailed, ftp.FtpProblem, FileProblem, PlanError) as problem:
        await _finish(uow, row, FAILED, error=str(problem))
        return {"import_id": str(import_id), "status": FAILED}
    except Exception as error:
        # Retried by the job queue; the last attempt's failure is the import's.
        if job.attempts >= job.max_attempts:
            await _finish(uow, row, FAILED, error=f"{type(error).__name__}: {error}")
        raise
    if status == SUCCEEDED:
        await _finish(uow, row, SUCCEEDED)
        if row.schedule_id is not None:
            await file_done(uow, row, allow_private=limits.ftp_allow_private)
    else:
        await _clean_up(uow, import_id, row)
    return {"import_id": str(import_id), "status": status}


async def abandoned_import(uow: UnitOfWork, job: Job, reason: str) -> None:
    """The queue gave the import's job up (its worker died on every attempt): the import
    ends as failed; the batches it committed stay."""
    async with uow:
        row = await repository.lock(uow.session, uuid.UUID(str(job.payload["import_id"])))
    if row is not None:
        await _finish(
            uow, row, FAILED, error=f"the import's worker stopped on every attempt ({reason})"
        )


async def _start(uow: UnitOfWork, import_id: uuid.UUID) -> Import | None:
    async with uow:
        row = await repository.lock(uow.session, import_id)
        if row is not None and row.status not in FINISHED:
            row.status = RUNNING
            row.started_at = row.started_at or datetime.now(UTC)
        return row


async def _run(
    uow: UnitOfWork,
    row: Import,
    phone_region: str,
    limits: FetchLimits,
    report: Callable[[dict[str, Any]], Awaitable[None]],
) -> str:
    options = ImportOptions.model_validate(row.options)
    path = await _local_copy(uow, row, limits)
    async with uow:
        settings = await projects_service.settings_of(uow.session, row.project_id)
        rules = await load_rules(
            uow.session, row.project_id, settings, default_phone_region=phone_region
        )
        await staging.create(uow.session, row.id)
    rules = dataclasses.replace(rules, phone_region=phone_region)
    actor = _actor(row, settings)
    with CsvFile(path, encoding=options.encoding, delimiter=options.delimiter) as source:
        plan = plan_columns(source.header, options.mapping, rules.fields)
        source.skip(row.rows_done)
        batch = _read(source)
        parsing = _parse(batch, plan, rules, options)
        while batch.records:
            rows = await parsing
            # Parse the next batch while this one is applied.
            following = _read(source)
            parsing = _parse(following, plan, rules, options)
            if not await _apply(uow, actor, row.id, plan, rows, options, batch):
                parsing.cancel()
                return CANCELLED
            await report({"rows_done": batch.records_done, "bytes_done": batch.bytes_done})
            batch = following
    return SUCCEEDED


def _read(source: CsvFile) -> _Batch:
    records = source.batch(BATCH_ROWS)
    return _Batch(records, source.records_read, source.bytes_read)


def _parse(
    batch: _Batch, plan: ColumnPlan, rules: ProjectRules, options: ImportOptions
) -> "asyncio.Future[list[ParsedRow]]":
    if not batch.records:
        done: asyncio.Future[list[ParsedRow]] = asyncio.get_running_loop().create_future()
        done.set_result([])
        return done
    return parse_in_background(batch.records, plan, rules, options.list_separator)


async def _apply(
    uow: UnitOfWork,
    actor: Actor,
    import_id: uuid.UUID,
    plan: ColumnPlan,
    rows: list[ParsedRow],
    options: ImportOptions,
    batch: _Batch,
) -> bool:
    """Apply one batch and move the resume point with it; False if the import was cancelled."""
    async with uow:
        session = uow.session
        current = await repository.lock(session, import_id)
        if current is None or current.status != RUNNING:
            return False
        result = await apply_batch(session, actor, import_id, plan, rows, options.on_conflict)
        if options.dry_run:
            uow.discard()
        else:
            await _record(uow, import_id, result, rows, batch)
    if options.dry_run:
        # The rows were rolled back; the counts and the report are what a dry run returns.
        async with uow:
            await _record(uow, import_id, result, rows, batch)
    return True


async def _record(
    uow: UnitOfWork, import_id: uuid.UUID, result: BatchResult, rows: list[ParsedRow], batch: _Batch
) -> None:
    lines = [(r.row_number, r.column, r.message, r.original) for r in result.report]
    await repository.add_report(uow.session, import_id, lines)
    counts = dict(result.counts) | {"rows_read": len(rows)}
    await repository.add_counts(
        uow.session,
        import_id,
        counts,
        rows_done=batch.records_done,
        bytes_done=batch.bytes_done,
    )


def _actor(row: Import, settings: ProjectSettings) -> Actor:
    return Actor(
        project_id=row.project_id,
        touchpoint=row.touchpoint,
        initiator=row.initiator,
        key_id=row.initiator_key_id,
        request_id=f"import:{row.id}",
        project=settings,
    )


async def _local_copy(uow: UnitOfWork, row: Import, limits: FetchLimits) -> Path:
    """The file to read: the upload, or the FTP file fetched once (a resumed run reuses it)."""
    if row.file_path is None:
        raise ImportFailed("the import has no file")
    path = Path(row.file_path)
    exists = await asyncio.to_thread(path.exists)
    if row.source_kind != "ftp" or (row.file_bytes is not None and exists):
        if not exists:
            raise ImportFailed(
                "the file is no longer on this server (is CDP_IMPORT_DIR shared by every worker?)"
            )
        return path
    source = FtpSource.model_validate(row.source["ftp"])
    password = ftp.password_for(source, row.ftp_secret)
    try:
        size = await ftp.download(
            source,
            password,
            path,
            max_bytes=limits.max_bytes,
            allow_private=limits.ftp_allow_private,
        )
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    async with uow:
        # The password has done its job: it is not kept a moment longer than needed.
        await repository.set_downloaded(uow.session, row.id, file_bytes=size)
    row.file_bytes = size
    return path


async def _finish(uow: UnitOfWork, row: Import, status: str, *, error: str | None = None) -> None:
    async with uow:
        locked = await repository.lock(uow.session, row.id)
        if locked is not None and locked.status not in FINISHED:
            locked.status = status
            locked.error = error[:2000] if error else None
            locked.finished_at = datetime.now(UTC)
            locked.ftp_secret = None
    await _clean_up(uow, row.id, row)


async def _clean_up(uow: UnitOfWork, import_id: uuid.UUID, row: Import | None) -> None:
    """An ended import keeps its counts and report, not its staging table or file."""
    async with uow:
        await staging.drop(uow.session, import_id)
    if row is not None and row.file_path is not None:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(Path(row.file_path).unlink, missing_ok=True)
