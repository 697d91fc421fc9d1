"""create_app(): routers, middleware, error handlers. Wiring only."""

import asyncio
import functools
import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app import __version__
from app.activity.router import router as activity_router
from app.core import idempotency
from app.core.admission import EXEMPT_PATHS as ADMISSION_EXEMPT_PATHS
from app.core.admission import AdmissionMiddleware
from app.core.clock import Clock, SystemClock
from app.core.db import Database, UnitOfWork, async_database_url, create_database
from app.core.embedded_postgres import start_embedded_postgres
from app.core.limits import METHODS_WITH_BODY, RequestGuardMiddleware, RouteBodyLimit
from app.core.logging import configure_logging
from app.core.metrics import HttpMetrics, MetricsMiddleware
from app.core.middleware import RequestContextMiddleware
from app.core.migrations import head_revision
from app.core.periodic import every
from app.core.problems import install_problem_handlers, problem_responses, problem_schemas
from app.core.rate_limit import RateLimiter
from app.customers.privacy_router import privacy_router as customers_privacy_router
from app.customers.router import router as customers_router
from app.devices.router import me_router
from app.devices.router import router as devices_router
from app.fields.router import router as fields_router
from app.health.router import router as health_router
from app.identity.router import router as identity_router
from app.imports.router import published_schemas as published_import_schemas
from app.imports.router import router as imports_router
from app.imports.schedules import poll_due
from app.imports.service import Storage
from app.jobs.handlers import ABANDON_HANDLERS
from app.jobs.handlers import HANDLERS as JOB_HANDLERS
from app.jobs.router import router as jobs_router
from app.jobs.worker import work_forever
from app.loyalty.router import router as loyalty_router
from app.loyalty.settlement import settle_due
from app.projects.router import api_keys_router, projects_router
from app.promotions.router import CODE_FILE_BODY_LIMIT
from app.promotions.router import router as promotions_router
from app.segments.router import router as segments_router
from app.segments.rule_schema import SEGMENT_RULE_SCHEMAS
from app.segments.service import enqueue_due
from app.settings import Settings
from app.subscriptions.router import me_router as me_subscriptions_router
from app.subscriptions.router import router as subscriptions_router

API_DESCRIPTION = """\
A headless Customer Data Platform: customers, their identifiers, merges and the
history of every change. Authenticate with `Authorization: Bearer cdp_<prefix>_<secret>`.
Errors are RFC 9457 `application/problem+json`; lists are cursor-paginated.
"""


def _operation_id(route: APIRoute) -> str:
    """Operation ids are the endpoint function names (`customers_identify`): stable for clients."""
    return route.name


def _at_now(
    action: Callable[..., Awaitable[int]], uow: UnitOfWork, clock: Clock
) -> Callable[[], Awaitable[int]]:
    """The housekeeping action, asked at each round for what time it is then."""

    async def run() -> int:
        return await action(uow, now=clock.now())

    return run


def _start_jobs(database: Database, clock: Clock, settings: Settings) -> list[asyncio.Task[None]]:
    tasks: list[asyncio.Task[None]] = []
    uow = UnitOfWork(database.sessions)
    housekeeping = (
        (settings.loyalty_settle_interval_seconds, "points settled", settle_due),
        (settings.segments_schedule_seconds, "segment recalculations enqueued", enqueue_due),
        (
            settings.import_schedule_seconds,
            "scheduled imports queued",
            functools.partial(poll_due, storage=Storage.from_settings(settings)),
        ),
        (
            settings.idempotency_purge_interval_seconds,
            "expired idempotency keys deleted",
            functools.partial(
                idempotency.purge_expired,
                retention=timedelta(hours=settings.idempotency_key_retention_hours),
            ),
        ),
    )
    for interval, name, action in housekeeping:
        if interval > 0:
            tasks.append(
                asyncio.create_task(every(interval, _at_now(action, uow, clock), name=name))
            )
    # Worker ids name the host and process, so a lease in the jobs table says who holds it.
    host = f"{socket.gethostname()}:{os.getpid()}"
    for number in range(settings.job_workers):
        worker = work_forever(
            database,
            clock,
            worker_id=f"{host}:{number}"[:100],
            handlers=JOB_HANDLERS,
            poll_seconds=settings.job_poll_seconds,
            abandon_handlers=ABANDON_HANDLERS,
        )
        tasks.append(asyncio.create_task(worker))
    return tasks


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    clock = clock or SystemClock()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    metrics = HttpMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.database_url
        if url is None:
            url = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
        database = create_database(async_database_url(url), settings)
        metrics.track_database_pool(database)
        app.state.database = database
        app.state.migration_head = head_revision()
        jobs = _start_jobs(database, clock, settings)
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await database.dispose()

    app = FastAPI(
        title="CDP API",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.metrics = metrics
    app.state.rate_limiter = RateLimiter(
        per_second=settings.rate_limit_per_second, burst=settings.rate_limit_burst
    )
    install_problem_handlers(app)
    # Added innermost first: the request context wraps everything, so every response has an id.
    app.add_middleware(
        RequestGuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        # Upload routes whose files outgrow the general limit name their own.
        route_limits=(
            CODE_FILE_BODY_LIMIT,
            RouteBodyLimit(
                path=re.compile(r"/v1/imports"), max_body_bytes=settings.import_max_bytes
            ),
        ),
    )
    # Outside the body guard (a refused request reads no body), inside the metrics (shed
    # requests are counted).
    app.add_middleware(
        AdmissionMiddleware,
        max_in_flight=settings.max_requests_in_flight,
        wait_seconds=settings.admission_wait_seconds,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestContextMiddleware)
    for router in (
        health_router,
        projects_router,
        api_keys_router,
        customers_router,
        customers_privacy_router,
        devices_router,
        me_router,
        subscriptions_router,
        me_subscriptions_router,
        fields_router,
        identity_router,
        activity_router,
        loyalty_router,
        promotions_router,
        segments_router,
        jobs_router,
        imports_router,
    ):
        app.include_router(router)
    _publish_shared_schemas(app)
    return app


def _document_shared_problems(spec: dict[str, Any]) -> None:
    """Add to each operation the problems answered outside its handler, which its router
    cannot know: a bug (500, the middleware), a body too slow, too large or not JSON
    (408, 413, 415, the request guard), a body that does not parse (400) and a 503: a
    process at capacity (admission control) or, where an API key is looked up, a
    database that is down."""
    for path, path_item in spec["paths"].items():
        for method, operation in path_item.items():
            statuses = [500]
            if method.upper() in METHODS_WITH_BODY:
                statuses += [408, 413, 415]
            if "requestBody" in operation:
                statuses.append(400)
            if "security" in operation or path not in ADMISSION_EXEMPT_PATHS:
                statuses.append(503)
            shared = {str(status): entry for status, entry in problem_responses(*statuses).items()}
            # What the operation documents itself (its own 413 limit, say) wins.
            operation["responses"] = dict(sorted({**shared, **operation["responses"]}.items()))


def _publish_shared_schemas(app: FastAPI) -> None:
    """Add hand-written schemas that the spec references by name (the recursive rule
    language, the problem shape), and the problems every operation shares."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            _document_shared_problems(spec)
            schemas = spec["components"]["schemas"]
            schemas.update(SEGMENT_RULE_SCHEMAS)
            schemas.update(problem_schemas())
            # Models FastAPI already published are kept as they are.
            for name, schema in published_import_schemas().items():
                schemas.setdefault(name, schema)
        return app.openapi_schema  # type: ignore[return-value]  # set by generate()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
