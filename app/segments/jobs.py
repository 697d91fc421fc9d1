"""Segment recalculation as a job, and the schedule that enqueues it."""

import uuid
from typing import Any

from app.core.db import UnitOfWork
from app.jobs.models import Job
from app.jobs.service import ProgressReporter
from app.segments import service


async def recalculate_handler(
    uow: UnitOfWork, job: Job, progress: ProgressReporter
) -> dict[str, Any]:
    """Runs the whole recalculation in one transaction: a rerun after a crash starts from
    the committed state and writes the same diff, so the job is idempotent."""
    segmentation_id = uuid.UUID(str(job.payload["segmentation_id"]))
    await progress.report({"segmentation_id": str(segmentation_id), "stage": "computing"})
    async with uow:
        result = await service.recalculate(
            uow.session,
            job.project_id,
            segmentation_id,
            recalculation_id=job.id,
            initiator=f"job:{job.id}",
        )
    return {"added": result.added, "removed": result.removed, "recalculation_id": str(job.id)}
