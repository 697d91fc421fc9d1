"""The database connection lost while an import batch is applied: the batch rolls back, the
job queue runs the import again, and it resumes after the last committed batch, ending
exactly as a clean run of the same file does."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.core.db import UnitOfWork
from app.imports import runner
from app.jobs import service as jobs_service
from app.jobs.handlers import HANDLERS
from tests.factories import ProjectWithKey
from tests.faults.proxy import Cut
from tests.faults.support import footprint, proxied_app
from tests.imports.helpers import get_import, imported, run_jobs, upload
from tests.imports.test_import_jobs import _file, _state

ROWS = 40
BATCH = 5


async def test_an_import_cut_mid_batch_resumes_and_ends_as_a_clean_run(
    client: httpx.AsyncClient,
    other_project: ProjectWithKey,
    uow: UnitOfWork,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "BATCH_ROWS", BATCH)
    content = _file(ROWS)
    clean = await imported(client, other_project, uow, content)
    assert clean["counts"]["created"] == ROWS

    async with proxied_app(database_url) as faulty:
        started = await upload(faulty.http, faulty.owner, content)
        assert started.status_code == 202, started.text
        import_id, job_id = started.json()["id"], started.json()["job_id"]
        # Each batch COPYs its changelog rows last, after its customers and identifiers:
        # the third batch loses its connection there, two batches committed before it.
        cut = faulty.proxy.trip(b'COPY "profile_changelog"', cut=Cut.BEFORE, skip=2)
        now = datetime.now(UTC)
        assert await jobs_service.run_one(
            faulty.uow, worker_id="cut", handlers=HANDLERS, now=now, lease=timedelta(minutes=5)
        )
        assert cut.is_set()

        interrupted = await get_import(faulty.http, faulty.owner, import_id)
        assert interrupted["status"] == "running"
        assert interrupted["counts"]["rows_read"] == 2 * BATCH
        # Nothing of the third batch: whole customers of two batches, no more.
        assert (await footprint(database_url, faulty.owner.project.id))["customers"] == 2 * BATCH
        job = await faulty.http.get(f"/v1/jobs/{job_id}", headers=faulty.owner.admin_headers)
        assert job.json()["status"] == "queued", job.json()
        assert "connection" in str(job.json()["error"])

        # The queue's retry (after its backoff), by the same service: no restart.
        assert await run_jobs(faulty.uow, now=now + timedelta(minutes=1)) == 1
        resumed = await get_import(faulty.http, faulty.owner, import_id)
        job = await faulty.http.get(f"/v1/jobs/{job_id}", headers=faulty.owner.admin_headers)
        assert job.json()["status"] == "succeeded", job.json()
        assert job.json()["attempts"] == 2

    assert resumed["status"] == "succeeded", resumed
    assert resumed["counts"] == clean["counts"]
    assert await _state(database_url, faulty.owner.project.id) == await _state(
        database_url, other_project.project.id
    )
    mine = await footprint(database_url, faulty.owner.project.id)
    theirs = await footprint(database_url, other_project.project.id)
    assert mine == theirs
