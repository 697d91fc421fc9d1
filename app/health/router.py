"""Operations endpoints: liveness, readiness and Prometheus metrics (no API key)."""

from fastapi import APIRouter, Request, Response

from app.core.dependencies import UnitOfWorkDep
from app.core.metrics import HttpMetrics
from app.core.problems import problem_responses
from app.health import service
from app.health.schemas import Liveness, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="operations_liveness")
async def operations_liveness() -> Liveness:
    """Answer 200 while the process is up; touches nothing else."""
    return Liveness()


@router.get("/readyz", responses=problem_responses(503), operation_id="operations_readiness")
async def operations_readiness(request: Request, uow: UnitOfWorkDep) -> Readiness:
    """Answer 200 when the database is reachable and migrated to the code's head, else 503."""
    expected: str = request.app.state.migration_head
    return Readiness(migration=await service.check_readiness(uow, expected_revision=expected))


@router.get("/metrics", include_in_schema=False)
async def operations_metrics(request: Request) -> Response:
    metrics: HttpMetrics = request.app.state.metrics
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
