"""Imports pulled from a real FTP server (pyftpdlib, started here on a free port)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.db import UnitOfWork
from app.imports import schedules
from app.imports.service import Storage
from tests.factories import ProjectWithKey
from tests.helpers import app_running, asgi_client
from tests.imports.ftp_server import CONTENT, PASSWORD, Ftp, serving
from tests.imports.helpers import get_import, run_jobs


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[Ftp]:
    with serving(tmp_path / "ftp") as server:
        yield server


async def _start(
    client: httpx.AsyncClient, owner: ProjectWithKey, source: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        "/v1/imports", headers=owner.admin_headers, json={"source": {"ftp": source}}
    )
    assert response.status_code == 202, response.text
    assert PASSWORD not in response.text
    body: dict[str, Any] = response.json()
    return body


async def _customers(client: httpx.AsyncClient, owner: ProjectWithKey) -> list[Any]:
    response = await client.get("/v1/customers", headers=owner.admin_headers)
    items: list[Any] = response.json()["items"]
    return items


async def test_an_ftp_file_is_imported_and_the_password_is_never_shown(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork, ftp_server: Ftp
) -> None:
    (ftp_server.root / "exports" / "customers.csv").write_text(CONTENT)
    started = await _start(client, project, ftp_server.source("/exports/customers.csv"))
    assert started["source"]["ftp"]["username"] == "cdp"
    assert "password" not in started["source"]["ftp"]
    await run_jobs(uow)
    result = await get_import(client, project, started["id"])
    assert result["status"] == "succeeded", result
    assert result["counts"]["created"] == 2
    listed = await client.get("/v1/imports", headers=project.admin_headers)
    assert PASSWORD not in listed.text
    assert len(await _customers(client, project)) == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"password": "wrong"}, "refused the login of user 'cdp'"),
        ({"path": "/exports/missing.csv"}, "cannot read /exports/missing.csv"),
        ({"port": 1}, "cannot connect to 127.0.0.1:1"),
    ],
)
async def test_an_ftp_import_that_cannot_get_its_file_fails_clearly_and_writes_nothing(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    uow: UnitOfWork,
    ftp_server: Ftp,
    changes: dict[str, Any],
    message: str,
) -> None:
    (ftp_server.root / "exports" / "customers.csv").write_text(CONTENT)
    source = ftp_server.source("/exports/customers.csv") | changes
    started = await _start(client, project, source)
    await run_jobs(uow)
    result = await get_import(client, project, started["id"])
    assert result["status"] == "failed"
    assert message in result["error"]
    assert PASSWORD not in result["error"]
    assert result["counts"]["rows_read"] == 0
    assert await _customers(client, project) == []


async def test_a_password_ref_names_a_server_secret(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    uow: UnitOfWork,
    ftp_server: Ftp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (ftp_server.root / "exports" / "customers.csv").write_text(CONTENT)
    source = ftp_server.source("/exports/customers.csv", password=None, password_ref="CRM")
    unknown = await client.post(
        "/v1/imports", headers=project.admin_headers, json={"source": {"ftp": source}}
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["pointer"] == "/source/ftp/password_ref"
    monkeypatch.setenv("CDP_FTP_PASSWORD_CRM", PASSWORD)
    started = await _start(client, project, source)
    await run_jobs(uow)
    assert (await get_import(client, project, started["id"]))["status"] == "succeeded"


async def test_a_schedule_imports_each_new_file_once_and_moves_it(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    uow: UnitOfWork,
    ftp_server: Ftp,
    tmp_path: Path,
) -> None:
    created = await client.post(
        "/v1/import-schedules",
        headers=project.admin_headers,
        json={
            "ftp": ftp_server.source("/exports"),
            "done_directory": "/done",
            "every_minutes": 5,
        },
    )
    assert created.status_code == 201, created.text
    assert PASSWORD not in created.text
    schedule_id = created.json()["id"]
    exports = ftp_server.root / "exports"
    (exports / "a.csv").write_text(CONTENT)
    (exports / "notes.txt").write_text("not a csv")
    storage = Storage(
        tmp_path / "imports",
        max_bytes=10**9,
        default_phone_region="DE",
        ftp_allowed_hosts=("127.0.0.1",),
    )
    now = datetime.now(UTC)

    assert await schedules.poll_due(uow, now=now, storage=storage) == 1
    # Not due again before every_minutes; due after, but a.csv was taken already.
    assert await schedules.poll_due(uow, now=now + timedelta(minutes=1), storage=storage) == 0
    await run_jobs(uow)
    assert not (exports / "a.csv").exists()
    assert (ftp_server.root / "done" / "a.csv").exists()
    assert (exports / "notes.txt").exists()

    (exports / "b.csv").write_text("email\nftp3@example.com\n")
    assert await schedules.poll_due(uow, now=now + timedelta(minutes=6), storage=storage) == 1
    await run_jobs(uow)
    assert len(await _customers(client, project)) == 3
    imports = (await client.get("/v1/imports", headers=project.admin_headers)).json()["items"]
    assert [i["source_name"] for i in imports] == ["/exports/a.csv", "/exports/b.csv"]
    assert {i["status"] for i in imports} == {"succeeded"}
    shown = await client.get(f"/v1/import-schedules/{schedule_id}", headers=project.admin_headers)
    assert shown.json()["last_error"] is None
    deleted = await client.delete(
        f"/v1/import-schedules/{schedule_id}", headers=project.admin_headers
    )
    assert deleted.status_code == 204


async def test_an_ftp_host_outside_the_allowlist_is_refused(
    database_url: str, project: ProjectWithKey, ftp_server: Ftp
) -> None:
    async with (
        app_running(
            database_url, import_ftp_allowed_hosts=["ftp.partner.example", ".trusted.example"]
        ) as restricted,
        asgi_client(restricted) as client,
    ):
        for path, body in (
            ("/v1/imports", {"source": {"ftp": ftp_server.source("/exports/a.csv")}}),
            ("/v1/import-schedules", {"ftp": ftp_server.source("/exports")}),
        ):
            refused = await client.post(path, headers=project.admin_headers, json=body)
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["pointer"].endswith("/ftp/host")
        allowed = await client.post(
            "/v1/imports",
            headers=project.admin_headers,
            json={"source": {"ftp": ftp_server.source("/a.csv", host="files.trusted.example")}},
        )
        assert allowed.status_code == 202, allowed.text
