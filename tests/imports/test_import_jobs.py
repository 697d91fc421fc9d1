"""Imports as jobs: resumable after a kill, dry runs, cancellation, refused uploads."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.db import UnitOfWork
from app.imports import runner
from app.jobs import service as jobs_service
from app.jobs.handlers import ABANDON_HANDLERS, HANDLERS
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, identify
from tests.helpers import app_running, asgi_client
from tests.imports.helpers import get_import, imported, report, run_jobs, upload


def _file(rows: int, *, offset: int = 0) -> str:
    lines = ["email,phone,first_name,discount_cards"]
    for i in range(offset, offset + rows):
        lines.append(f"r{i}@example.com,+491510{i:07d},Name{i},K{i}|L{i}")
    return "\n".join(lines) + "\n"


async def _state(database_url: str, project_id: uuid.UUID) -> dict[str, Any]:
    """What an import leaves behind, independent of ids and times."""
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        customers = await connection.fetch(
            "SELECT c.first_name, array_agg(i.kind || '=' || i.value ORDER BY i.kind, i.value) "
            "AS identifiers FROM customers c JOIN customer_identifiers i ON i.customer_id = c.id "
            "WHERE c.project_id = $1 GROUP BY c.id, c.first_name",
            project_id,
        )
        changelog = await connection.fetch(
            "SELECT operation, field, new_value::text, count(*) FROM profile_changelog "
            "WHERE project_id = $1 GROUP BY 1, 2, 3",
            project_id,
        )
        history = await connection.fetchval(
            "SELECT count(*) FROM identifier_history WHERE project_id = $1", project_id
        )
    finally:
        await connection.close()
    return {
        "customers": sorted((r[0], tuple(r[1])) for r in customers),
        "changelog": sorted(tuple(r) for r in changelog),
        "history": history,
    }


async def _rows_done(database_url: str, import_id: str) -> int:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        value = await connection.fetchval(
            "SELECT rows_done FROM imports WHERE id = $1", uuid.UUID(import_id)
        )
    finally:
        await connection.close()
    return int(value)


async def _wait_for_rows_done(database_url: str, import_id: str, at_least: int) -> None:
    """Poll: the batches commit in another task, and the database is what says how far."""
    for _ in range(2000):
        if await _rows_done(database_url, import_id) >= at_least:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the import did not reach {at_least} rows")


async def _kill_worker_mid_import(
    uow: UnitOfWork, database_url: str, import_id: str, *, after_rows: int, now: datetime
) -> None:
    """A worker claims the import's job at `now` and dies once `after_rows` are committed:
    its lease stays on the job until it runs out."""
    worker = asyncio.create_task(
        jobs_service.run_one(
            uow, worker_id="doomed", handlers=HANDLERS, now=now, lease=timedelta(minutes=5)
        )
    )
    await _wait_for_rows_done(database_url, import_id, after_rows)
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker


async def test_a_killed_worker_resumes_and_ends_as_a_clean_run(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    other_project: ProjectWithKey,
    uow: UnitOfWork,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "BATCH_ROWS", 5)
    content = _file(40)
    clean = await imported(client, other_project, uow, content)
    assert clean["counts"]["created"] == 40

    started = await upload(client, project, content)
    import_id = started.json()["id"]
    now = datetime.now(UTC)
    await _kill_worker_mid_import(uow, database_url, import_id, after_rows=15, now=now)
    interrupted = await get_import(client, project, import_id)
    assert interrupted["status"] == "running"
    assert 15 <= interrupted["counts"]["rows_read"] < 40

    # Another worker takes the job over once the dead one's lease has run out.
    await run_jobs(uow, now=now + timedelta(minutes=6))
    resumed = await get_import(client, project, import_id)
    assert resumed["status"] == "succeeded", resumed
    assert resumed["counts"] == clean["counts"]
    assert await _state(database_url, project.project.id) == await _state(
        database_url, other_project.project.id
    )


async def test_a_dry_run_counts_and_reports_but_writes_nothing(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork, database_url: str
) -> None:
    await identify(client, project, {"identifiers": {"email": "r1@example.com"}})
    before = await _state(database_url, project.project.id)
    result = await imported(client, project, uow, _file(3) + "bad,,X,\n", dry_run=True)
    assert result["status"] == "succeeded"
    assert result["counts"] | {"rows_read": 0} == {
        "rows_read": 0,
        "created": 2,
        "updated": 1,
        "merged": 0,
        "skipped": 0,
        "failed": 1,
        "duplicates": 0,
    }
    assert len(await report(client, project, result["id"])) == 1
    assert await _state(database_url, project.project.id) == before


async def test_cancel_stops_a_queued_import_and_a_finished_one_cannot_be(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork, database_url: str
) -> None:
    started = await upload(client, project, _file(3))
    import_id = started.json()["id"]
    cancelled = await client.post(f"/v1/imports/{import_id}/cancel", headers=project.admin_headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    await run_jobs(uow)
    assert (await get_import(client, project, import_id))["counts"]["rows_read"] == 0
    assert (await _state(database_url, project.project.id))["customers"] == []
    again = await client.post(f"/v1/imports/{import_id}/cancel", headers=project.admin_headers)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_cancel_between_batches_keeps_what_was_committed(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    uow: UnitOfWork,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "BATCH_ROWS", 5)
    started = await upload(client, project, _file(200))
    import_id = started.json()["id"]
    worker = asyncio.create_task(run_jobs(uow))
    await _wait_for_rows_done(database_url, import_id, 10)
    cancelled = await client.post(f"/v1/imports/{import_id}/cancel", headers=project.admin_headers)
    assert cancelled.status_code == 200, cancelled.text
    await worker
    final = await get_import(client, project, import_id)
    assert final["status"] == "cancelled"
    created = final["counts"]["created"]
    assert 10 <= created < 200
    assert len((await _state(database_url, project.project.id))["customers"]) == created


@pytest.mark.parametrize(
    ("content", "options", "pointer"),
    [
        ("email,shoe_size\na@example.com,42\n", None, "/options/mapping"),
        ("email,external.crm\na@example.com,1\n", None, "/options/mapping"),
        ("email\na@example.com\n", {"mapping": {"Mail": "email"}}, "/options/mapping"),
        ("email,e\na@example.com,b@example.com\n", {"mapping": {"e": "email"}}, "/options/mapping"),
        ("", None, "/file"),
        (b"em\xe9il\n", None, "/file"),
        ("email\na@example.com\n", {"on_conflict": "ignore"}, "/options/on_conflict"),
        ("email\na@example.com\n", {"delimiter": ",", "list_separator": ","}, "/options"),
        ("email\na@example.com\n", {"touchpoint": "elsewhere"}, "/options/touchpoint"),
    ],
)
async def test_an_unreadable_upload_is_refused_and_nothing_is_queued(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    uow: UnitOfWork,
    content: str | bytes,
    options: dict[str, Any] | None,
    pointer: str,
) -> None:
    response = await upload(client, project, content, options)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]
    assert await run_jobs(uow) == 0
    listed = await client.get("/v1/imports", headers=project.admin_headers)
    assert listed.json()["items"] == []


async def test_bodies_that_are_not_an_import_are_refused(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    as_text = await client.post(
        "/v1/imports",
        headers=project.admin_headers | {"content-type": "text/csv"},
        content=b"email\n",
    )
    assert as_text.status_code == 415
    no_file = await client.post(
        "/v1/imports", headers=project.admin_headers, files={"other": ("x.csv", b"email\n")}
    )
    assert no_file.status_code == 422
    assert no_file.json()["errors"][0]["pointer"] == "/file"
    bad_options = await client.post(
        "/v1/imports",
        headers=project.admin_headers,
        files={"file": ("x.csv", b"email\n")},
        data={"options": "{not json"},
    )
    assert bad_options.status_code == 400
    bad_json = await client.post(
        "/v1/imports", headers=project.admin_headers, json={"source": {"ftp": {"host": "x"}}}
    )
    assert bad_json.status_code == 422
    assert {e["pointer"] for e in bad_json.json()["errors"]} == {"/source/ftp/path"}


async def test_another_project_cannot_see_or_cancel_an_import(
    client: httpx.AsyncClient, project: ProjectWithKey, other_project: ProjectWithKey
) -> None:
    started = await upload(client, project, _file(1))
    import_id = started.json()["id"]
    for method, path in (
        ("GET", f"/v1/imports/{import_id}"),
        ("GET", f"/v1/imports/{import_id}/errors"),
        ("POST", f"/v1/imports/{import_id}/cancel"),
    ):
        response = await client.request(method, path, headers=other_project.admin_headers)
        assert response.status_code == 404, (path, response.text)


@pytest.mark.parametrize(
    ("raw", "options"),
    [
        ("\ufeffemail;first_name\r\nb@example.com;Ünal\r\n".encode(), {"delimiter": ";"}),
        (
            "email\tfirst_name\nb@example.com\tÜnal\n".encode("latin-1"),
            {"delimiter": "\t", "encoding": "latin-1"},
        ),
        (
            'email,first_name\r\nb@example.com,"Ünal\r\nsecond line"\r\n'.encode("utf-16"),
            {"encoding": "utf-16"},
        ),
    ],
)
async def test_delimiters_encodings_and_quoted_newlines(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    uow: UnitOfWork,
    raw: bytes,
    options: dict[str, Any],
) -> None:
    started = await upload(client, project, raw, options)
    assert started.status_code == 202, started.text
    await run_jobs(uow)
    result = await get_import(client, project, started.json()["id"])
    assert result["counts"]["created"] == 1, result
    found = await client.get(
        "/v1/customers/lookup", params={"email": "b@example.com"}, headers=project.admin_headers
    )
    assert found.json()["profile"]["first_name"].startswith("Ünal")


async def test_the_report_neutralises_formulas(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
) -> None:
    result = await imported(client, project, uow, "email,first_name\n=1+2,Eve\n@SUM(A1),-Eve\n")
    lines = await report(client, project, result["id"])
    assert [line["original_row"] for line in lines] == ["'=1+2,Eve", "'@SUM(A1),-Eve"]
    for line in lines:
        assert not any(value.startswith(("=", "@", "+", "-")) for value in line.values())


async def test_api_calls_and_an_import_on_the_same_identifiers_never_duplicate_anyone(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    uow: UnitOfWork,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "BATCH_ROWS", 10)
    started = await upload(client, project, _file(200))
    import_id = started.json()["id"]

    async def call(i: int) -> int:
        response = await identify(
            client,
            project,
            {"identifiers": {"email": f"r{i}@example.com"}, "profile": {"area": "api"}},
        )
        return response.status_code

    # Once the worker is writing, 100 identify calls on emails of the batches to come.
    worker = asyncio.create_task(run_jobs(uow))
    await _wait_for_rows_done(database_url, import_id, 10)
    results = [*await asyncio.gather(*(call(i) for i in range(20, 200)[::-2])), await worker]
    assert set(results[:-1]) <= {200, 201}, results
    final = await get_import(client, project, import_id)
    assert final["status"] == "succeeded"
    assert final["counts"]["failed"] == 0
    assert final["counts"]["created"] + final["counts"]["updated"] == 200
    state = await _state(database_url, project.project.id)
    assert len(state["customers"]) == 200
    job = await client.get(f"/v1/jobs/{started.json()['job_id']}", headers=project.admin_headers)
    assert job.json()["attempts"] == 1


async def test_an_upload_over_the_limit_is_refused_and_not_kept(
    database_url: str, project: ProjectWithKey, tmp_path: Path
) -> None:
    async with (
        app_running(database_url, import_max_bytes=2048, import_dir=tmp_path) as limited,
        asgi_client(limited) as client,
    ):
        response = await upload(client, project, _file(100))
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


async def test_an_import_whose_worker_dies_on_every_attempt_ends_failed(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    uow: UnitOfWork,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "BATCH_ROWS", 5)
    started = await upload(client, project, _file(40))
    import_id = started.json()["id"]
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        await connection.execute("UPDATE jobs SET max_attempts = 1")
    finally:
        await connection.close()
    now = datetime.now(UTC)
    await _kill_worker_mid_import(uow, database_url, import_id, after_rows=5, now=now)

    # The lease runs out; the queue gives the job up instead of running it a second time.
    assert await jobs_service.run_one(
        uow,
        worker_id="next",
        handlers=HANDLERS,
        now=now + timedelta(minutes=6),
        lease=timedelta(minutes=5),
        abandon_handlers=ABANDON_HANDLERS,
    )
    final = await get_import(client, project, import_id)
    assert final["status"] == "failed"
    assert "stopped on every attempt" in final["error"]
    assert 5 <= final["counts"]["rows_read"] < 40
    assert await run_jobs(uow) == 0
