"""`cdp import FILE`: queue an import as the operator, run it here, follow its progress.

The import is an ordinary one (source `cli`): it is listed by the API, resumable, and if
this process dies a service worker finishes it once the lease runs out.
"""

import asyncio
import os
import shutil
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from app.core.db import UnitOfWork
from app.core.ids import new_id
from app.imports import report, service
from app.imports.models import FINISHED, Import
from app.imports.schemas import ImportOptions
from app.imports.service import ImportOwner, Storage
from app.jobs import service as jobs_service
from app.jobs.handlers import ABANDON_HANDLERS, HANDLERS
from app.jobs.worker import DEFAULT_LEASE
from app.projects import service as projects_service

POLL_SECONDS = 0.5


async def import_file(
    uow: UnitOfWork,
    storage: Storage,
    *,
    project_name: str,
    path: Path,
    options: ImportOptions,
    on_progress: Callable[[Import], None],
) -> Import:
    project = await projects_service.get_project_by_name(uow, project_name)
    async with uow.read_only() as session:
        settings = await projects_service.settings_of(session, project.id)
    owner = ImportOwner(
        project_id=project.id,
        project=settings,
        initiator="cli",
        key_id=None,
        may_act_as=lambda _touchpoint: True,  # the operator may name any touchpoint
    )
    import_id = new_id()
    destination = storage.path_for(import_id)
    size = await asyncio.to_thread(_copy, path, destination)
    try:
        row = await service.create_upload(
            uow,
            owner,
            storage,
            import_id=import_id,
            options=options,
            file_name=path.name,
            file_bytes=size,
            source_kind="cli",
        )
    except BaseException:
        await asyncio.to_thread(destination.unlink, missing_ok=True)
        raise
    worker = asyncio.create_task(
        jobs_service.run_one(
            uow.fork(),
            worker_id=f"cli:{socket.gethostname()}:{os.getpid()}"[:100],
            handlers=HANDLERS,
            now=datetime.now(UTC),
            lease=DEFAULT_LEASE,
            only_job_id=row.job_id,
            abandon_handlers=ABANDON_HANDLERS,
        )
    )
    # A service worker may have claimed the job first; either way, follow the import.
    while True:
        row = await service.get_import(uow, project.id, import_id)
        on_progress(row)
        if row.status in FINISHED:
            break
        if worker.done() and not worker.result():
            await asyncio.sleep(POLL_SECONDS)
            continue
        await asyncio.wait([worker], timeout=POLL_SECONDS)
    await worker
    return row


def _copy(source: Path, destination: Path) -> int:
    shutil.copyfile(source, destination)
    return destination.stat().st_size


async def write_report(uow: UnitOfWork, row: Import, target: Path) -> None:
    lines = await service.error_report(uow, row.project_id, row.id)
    with target.open("wb") as out:
        async for chunk in report.report_csv(lines):
            await asyncio.to_thread(out.write, chunk)
