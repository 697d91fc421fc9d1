"""Shared steps of the import tests: upload, run the queued jobs, read the report."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.core.db import UnitOfWork
from app.jobs import service as jobs_service
from app.jobs.handlers import HANDLERS
from tests.factories import ProjectWithKey


async def upload(
    client: httpx.AsyncClient,
    owner: ProjectWithKey,
    content: str | bytes,
    options: dict[str, Any] | None = None,
    *,
    name: str = "customers.csv",
) -> httpx.Response:
    data = {"options": json.dumps(options)} if options is not None else {}
    raw = content.encode() if isinstance(content, str) else content
    return await client.post(
        "/v1/imports",
        headers=owner.admin_headers,
        files={"file": (name, raw, "text/csv")},
        data=data,
    )


async def run_jobs(uow: UnitOfWork, *, now: datetime | None = None) -> int:
    """Run every due job to the end, as a worker would; how many ran."""
    ran = 0
    while await jobs_service.run_one(
        uow,
        worker_id="test",
        handlers=HANDLERS,
        now=now or datetime.now(UTC),
        lease=timedelta(minutes=5),
    ):
        ran += 1
    return ran


async def imported(
    client: httpx.AsyncClient, owner: ProjectWithKey, uow: UnitOfWork, content: str, **kw: Any
) -> dict[str, Any]:
    """Upload, run, and return the finished import."""
    started = await upload(client, owner, content, kw or None)
    assert started.status_code == 202, started.text
    await run_jobs(uow)
    job_id = started.json()["job_id"]
    job = await client.get(f"/v1/jobs/{job_id}", headers=owner.admin_headers)
    assert job.json()["status"] == "succeeded", job.json()
    return await get_import(client, owner, started.json()["id"])


async def get_import(
    client: httpx.AsyncClient, owner: ProjectWithKey, import_id: str
) -> dict[str, Any]:
    response = await client.get(f"/v1/imports/{import_id}", headers=owner.admin_headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def report(
    client: httpx.AsyncClient, owner: ProjectWithKey, import_id: str
) -> list[dict[str, str]]:
    response = await client.get(f"/v1/imports/{import_id}/errors", headers=owner.admin_headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))
