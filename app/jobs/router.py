"""HTTP endpoint of jobs: how far a background job has got, and how it ended."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from app.core.auth import Principal, Scope
from app.core.dependencies import UnitOfWorkDep
from app.core.problems import problem_responses
from app.jobs import service
from app.jobs.schemas import JobRead
from app.projects.auth import require_scope

router = APIRouter(tags=["jobs"], responses=problem_responses(401, 403, 404, 422, 429))
ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]


@router.get("/v1/jobs/{job_id}", operation_id="jobs_get")
async def jobs_get(job_id: uuid.UUID, uow: UnitOfWorkDep, principal: ReaderDep) -> JobRead:
    """A job's status, progress, attempts and outcome."""
    return JobRead.model_validate(await service.get_job(uow, principal.project_id, job_id))
