"""The job queue: runs, retries, leases that expire, concurrent workers, the status endpoint."""

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.core.db import UnitOfWork
from app.core.errors import NotFound
from app.jobs import service
from app.jobs.models import Job
from app.jobs.service import JobHandler, ProgressReporter
from tests.factories import ProjectWithKey

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=30)


async def _enqueue(uow: UnitOfWork, project: ProjectWithKey, kind: str = "test.kind") -> Job:
    async with uow:
        return await service.enqueue(
            uow.session, project_id=project.project.id, kind=kind, payload={"n": 1}, run_after=T0
        )


async def _run(
    uow: UnitOfWork, handlers: dict[str, JobHandler], now: datetime, worker: str = "w1"
) -> bool:
    return await service.run_one(uow, worker_id=worker, handlers=handlers, now=now, lease=LEASE)


async def test_a_job_runs_once_with_progress_and_result(
    uow: UnitOfWork, project: ProjectWithKey
) -> None:
    job = await _enqueue(uow, project)
    assert (job.status, job.attempts, job.progress) == ("queued", 0, {})

    async def handler(_: UnitOfWork, running: Job, progress: ProgressReporter) -> dict[str, Any]:
        assert (running.payload, running.status) == ({"n": 1}, "running")
        await progress.report({"done": 1, "total": 2})
        seen = await service.get_job(uow, project.project.id, running.id)
        assert seen.progress == {"done": 1, "total": 2}
        assert seen.locked_until is not None
        assert seen.locked_until >= T0 + LEASE
        return {"ok": True}

    assert not await _run(uow, {"test.kind": handler}, T0 - timedelta(seconds=1))  # not due yet
    assert await _run(uow, {"test.kind": handler}, T0)
    assert not await _run(uow, {"test.kind": handler}, T0)
    done = await service.get_job(uow, project.project.id, job.id)
    assert (done.status, done.result, done.attempts) == ("succeeded", {"ok": True}, 1)
    assert done.progress == {"done": 1, "total": 2}
    assert (done.started_at, done.locked_by) == (T0, None)
    assert done.finished_at is not None


async def test_a_failing_job_is_retried_with_backoff_then_fails(
    uow: UnitOfWork, project: ProjectWithKey
) -> None:
    job = await _enqueue(uow, project)
    calls = 0

    async def handler(*_: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        raise ValueError(f"boom {calls}")

    handlers: dict[str, JobHandler] = {"test.kind": handler}
    now = T0
    assert await _run(uow, handlers, now)
    retried = await service.get_job(uow, project.project.id, job.id)
    assert (retried.status, retried.attempts, retried.error) == ("queued", 1, "ValueError: boom 1")
    assert retried.run_after > now
    assert not await _run(uow, handlers, now)  # backing off
    for _ in range(2):
        now += timedelta(hours=2)
        assert await _run(uow, handlers, now)
    failed = await service.get_job(uow, project.project.id, job.id)
    assert (failed.status, failed.attempts, failed.error) == ("failed", 3, "ValueError: boom 3")
    assert failed.finished_at is not None
    assert not await _run(uow, handlers, now + timedelta(days=1))
    assert calls == 3


async def test_a_worker_only_claims_kinds_it_can_run(
    uow: UnitOfWork, project: ProjectWithKey
) -> None:
    async def handler(*_: Any) -> dict[str, Any]:
        return {}

    job = await _enqueue(uow, project, kind="other.kind")
    assert not await _run(uow, {"test.kind": handler}, T0)
    assert not await _run(uow, {}, T0)
    assert (await service.get_job(uow, project.project.id, job.id)).status == "queued"


async def test_a_dead_workers_job_is_reclaimed_after_its_lease_and_completes_once(
    uow: UnitOfWork, project: ProjectWithKey
) -> None:
    job = await _enqueue(uow, project)
    started = asyncio.Event()
    completions: Counter[str] = Counter()

    async def hangs(*_: Any) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()  # the worker dies here
        completions["dead"] += 1
        return {}

    async def works(*_: Any) -> dict[str, Any]:
        completions["alive"] += 1
        return {"by": "alive"}

    dead = asyncio.create_task(_run(uow, {"test.kind": hangs}, T0, worker="dead"))
    await started.wait()
    dead.cancel()
    await asyncio.gather(dead, return_exceptions=True)
    alive_uow = UnitOfWork(uow._sessions)
    # Still leased to the dead worker: nobody may take it yet.
    assert not await _run(alive_uow, {"test.kind": works}, T0 + LEASE - timedelta(seconds=1))
    assert await _run(alive_uow, {"test.kind": works}, T0 + LEASE + timedelta(seconds=1), "alive")
    assert not await _run(alive_uow, {"test.kind": works}, T0 + LEASE * 10, "alive")
    done = await service.get_job(uow, project.project.id, job.id)
    assert (done.status, done.result, done.attempts) == ("succeeded", {"by": "alive"}, 2)
    assert done.started_at == T0
    assert completions == {"alive": 1}


async def test_a_stale_workers_late_outcome_does_not_overwrite(
    uow: UnitOfWork, project: ProjectWithKey
) -> None:
    job = await _enqueue(uow, project)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(_: UnitOfWork, __: Job, progress: ProgressReporter) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"by": "stale"}

    async def fast(*_: Any) -> dict[str, Any]:
        return {"by": "fresh"}

    stale = asyncio.create_task(_run(uow, {"test.kind": slow}, T0, worker="stale"))
    await started.wait()
    fresh_uow = UnitOfWork(uow._sessions)
    assert await _run(fresh_uow, {"test.kind": fast}, T0 + LEASE * 2, worker="fresh")
    release.set()
    assert await stale  # it ran, but its outcome is not recorded
    done = await service.get_job(uow, project.project.id, job.id)
    assert (done.status, done.result) == ("succeeded", {"by": "fresh"})


async def test_a_stale_worker_cannot_report_progress(
    uow: UnitOfWork, project: ProjectWithKey
) -> None:
    job = await _enqueue(uow, project)
    started, release = asyncio.Event(), asyncio.Event()
    lease_lost: list[bool] = []

    async def slow(_: UnitOfWork, __: Job, progress: ProgressReporter) -> dict[str, Any]:
        started.set()
        await release.wait()
        try:
            await progress.report({"done": 99})
        except service.LeaseLost:
            lease_lost.append(True)
            raise
        return {}

    async def fast(_: UnitOfWork, __: Job, progress: ProgressReporter) -> dict[str, Any]:
        await progress.report({"done": 1})
        return {"by": "fresh"}

    stale = asyncio.create_task(_run(uow, {"test.kind": slow}, T0, worker="stale"))
    await started.wait()
    assert await _run(UnitOfWork(uow._sessions), {"test.kind": fast}, T0 + LEASE * 2, "fresh")
    release.set()
    await stale
    done = await service.get_job(uow, project.project.id, job.id)
    assert lease_lost == [True]
    assert (done.status, done.result, done.progress, done.error) == (
        "succeeded",
        {"by": "fresh"},
        {"done": 1},
        None,
    )


async def test_concurrent_workers_never_run_the_same_job(
    uow: UnitOfWork, project: ProjectWithKey
) -> None:
    ids = {(await _enqueue(uow, project)).id for _ in range(20)}
    runs: Counter[uuid.UUID] = Counter()

    async def handler(_: UnitOfWork, job: Job, __: ProgressReporter) -> dict[str, Any]:
        runs[job.id] += 1
        await asyncio.sleep(0.01)
        return {}

    async def worker(number: int) -> None:
        worker_uow = UnitOfWork(uow._sessions)
        while await _run(worker_uow, {"test.kind": handler}, T0, worker=f"w{number}"):
            pass

    await asyncio.gather(*(worker(n) for n in range(5)))
    assert set(runs) == ids
    assert set(runs.values()) == {1}
    for job_id in ids:
        assert (await service.get_job(uow, project.project.id, job_id)).status == "succeeded"


async def test_enqueue_is_part_of_the_callers_transaction(
    uow: UnitOfWork, project: ProjectWithKey
) -> None:
    async def use_case() -> None:
        async with uow:
            enqueued.append(
                await service.enqueue(
                    uow.session, project_id=project.project.id, kind="test.kind", payload={}
                )
            )
            raise RuntimeError("the caller's use case failed")

    enqueued: list[Job] = []
    with pytest.raises(RuntimeError):
        await use_case()
    job = enqueued[0]
    with pytest.raises(NotFound):
        await service.get_job(uow, project.project.id, job.id)


async def test_get_job_over_http(
    client: httpx.AsyncClient,
    uow: UnitOfWork,
    project: ProjectWithKey,
    other_project: ProjectWithKey,
) -> None:
    job = await _enqueue(uow, project)
    response = await client.get(f"/v1/jobs/{job.id}", headers=project.admin_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(job.id)
    assert (body["kind"], body["status"], body["progress"], body["attempts"]) == (
        "test.kind",
        "queued",
        {},
        0,
    )
    assert (body["result"], body["error"], body["started_at"]) == (None, None, None)
    assert set(body) == {
        "id", "kind", "status", "progress", "attempts", "result", "error",
        "created_at", "started_at", "finished_at",
    }  # fmt: skip
    other = await client.get(f"/v1/jobs/{job.id}", headers=other_project.admin_headers)
    assert other.status_code == 404
    missing = await client.get(f"/v1/jobs/{uuid.uuid4()}", headers=project.admin_headers)
    assert missing.status_code == 404
