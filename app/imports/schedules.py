"""Scheduled FTP imports: a project's directory polled for new files, each imported once.

A file is taken when its (name, size, modification time) has not been taken by the same
schedule before: the claim is a unique row, written with the import in one transaction,
so two workers polling at once cannot both import it. After a successful import the file
is moved to `done_directory` if the schedule names one.
"""

import logging
import uuid
from datetime import datetime
from pathlib import PurePosixPath

from app.core.db import UnitOfWork
from app.core.errors import NotFound
from app.core.ids import new_id
from app.imports import ftp, repository
from app.imports.models import Import, ImportSchedule, ImportScheduledFile
from app.imports.schemas import FtpSource, ImportOptions, ScheduleCreate
from app.imports.service import (
    ImportOwner,
    Storage,
    check_ftp_host,
    check_password_ref,
    queue_import,
    touchpoint_for,
)

logger = logging.getLogger(__name__)


async def create_schedule(
    uow: UnitOfWork, owner: ImportOwner, storage: Storage, body: ScheduleCreate
) -> ImportSchedule:
    check_password_ref(body.ftp, pointer="/ftp/password_ref")
    check_ftp_host(storage, body.ftp, pointer="/ftp/host")
    schedule_id = new_id()
    # Validated now (403-free: a 422 on options.touchpoint) so every poll may use it.
    touchpoint_for(owner, body.options, schedule_id)
    source = {
        "ftp": body.ftp.model_dump(exclude={"password"}),
        "done_directory": body.done_directory,
        "pattern": body.pattern,
    }
    schedule = ImportSchedule(
        id=schedule_id,
        project_id=owner.project_id,
        source=source,
        ftp_secret=body.ftp.password,
        options=body.options.model_dump(mode="json"),
        every_minutes=body.every_minutes,
        enabled=True,
        touchpoint=body.options.touchpoint or "import",
        initiator=owner.initiator,
        initiator_key_id=owner.key_id,
    )
    async with uow:
        await repository.add(uow.session, schedule)
    return schedule


async def get_schedule(
    uow: UnitOfWork, project_id: uuid.UUID, schedule_id: uuid.UUID
) -> ImportSchedule:
    async with uow.read_only() as session:
        found = await repository.get_schedule(session, project_id, schedule_id)
    if found is None:
        raise NotFound(f"Import schedule {schedule_id} does not exist.")
    return found


async def list_schedules(
    uow: UnitOfWork, project_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
) -> list[ImportSchedule]:
    async with uow.read_only() as session:
        return await repository.schedules_page(session, project_id, after_id=after_id, limit=limit)


async def delete_schedule(uow: UnitOfWork, project_id: uuid.UUID, schedule_id: uuid.UUID) -> None:
    """Stop polling; imports it started keep running and keep their history."""
    async with uow:
        found = await repository.get_schedule(uow.session, project_id, schedule_id)
        if found is None:
            raise NotFound(f"Import schedule {schedule_id} does not exist.")
        await repository.delete_schedule(uow.session, found)


async def poll_due(uow: UnitOfWork, *, now: datetime, storage: Storage) -> int:
    """Poll every due schedule once; the number of imports queued."""
    async with uow.read_only() as session:
        due = await repository.due_schedule_ids(session, now)
    queued = 0
    for schedule_id in due:
        queued += await poll(uow, schedule_id, now=now, storage=storage)
    return queued


async def poll(uow: UnitOfWork, schedule_id: uuid.UUID, *, now: datetime, storage: Storage) -> int:
    async with uow:
        # SKIP LOCKED: another worker polling this schedule right now has it.
        schedule = await repository.lock_schedule(uow.session, schedule_id)
        if schedule is None:
            return 0
        schedule.last_polled_at = now
        source = _ftp_source(schedule)
        try:
            password = ftp.password_for(source, schedule.ftp_secret)
            files = await ftp.list_new(
                source,
                password,
                str(schedule.source["pattern"]),
                allow_private=storage.ftp_host_may_be_private(source.host),
            )
        except ftp.FtpProblem as problem:
            schedule.last_error = str(problem)
            logger.warning("import schedule poll failed", extra={"schedule_id": str(schedule_id)})
            return 0
        schedule.last_error = None
        taken = await repository.taken_fingerprints(uow.session, schedule_id)
        new_files = [f for f in files if (f.name, f.fingerprint) not in taken]
        for remote in new_files:
            await _queue_file(uow, schedule, remote, storage)
        return len(new_files)


async def _queue_file(
    uow: UnitOfWork, schedule: ImportSchedule, remote: ftp.RemoteFile, storage: Storage
) -> None:
    import_id = new_id()
    options = ImportOptions.model_validate(schedule.options)
    ftp_source = dict(schedule.source["ftp"]) | {"path": remote.path}
    await queue_import(
        uow,
        Import(
            id=import_id,
            project_id=schedule.project_id,
            initiator=schedule.initiator,
            initiator_key_id=schedule.initiator_key_id,
            source_kind="ftp",
            source_name=remote.path,
            source={"ftp": ftp_source},
            ftp_secret=schedule.ftp_secret,
            file_path=str(storage.path_for(import_id)),
            touchpoint=options.touchpoint or f"import:{import_id}",
            schedule_id=schedule.id,
        ),
        options,
        phone_region=options.default_phone_region or storage.default_phone_region,
        storage=storage,
    )
    # Unique per (schedule, name, fingerprint): a file is never queued twice.
    await repository.add(
        uow.session,
        ImportScheduledFile(
            schedule_id=schedule.id,
            name=remote.name,
            fingerprint=remote.fingerprint,
            import_id=import_id,
        ),
    )


async def file_done(uow: UnitOfWork, row: Import, *, allow_private: bool) -> None:
    """After a scheduled import succeeded: move its file out of the polled directory."""
    async with uow:
        schedule = (
            await repository.get_schedule(uow.session, row.project_id, row.schedule_id)
            if row.schedule_id is not None
            else None
        )
        if schedule is None or not schedule.source.get("done_directory"):
            return
        source = _ftp_source(schedule)
        try:
            password = ftp.password_for(source, schedule.ftp_secret)
            await ftp.move(
                source,
                password,
                row.source_name,
                str(schedule.source["done_directory"]),
                allow_private=allow_private,
            )
        except ftp.FtpProblem as problem:
            schedule.last_error = f"{PurePosixPath(row.source_name).name}: {problem}"


def _ftp_source(schedule: ImportSchedule) -> FtpSource:
    return FtpSource.model_validate(schedule.source["ftp"])
