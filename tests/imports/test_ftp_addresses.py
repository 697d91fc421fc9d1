"""FTP imports reach only public addresses unless the operator allows more (SSRF).

The tests' app allows private addresses (its FTP servers are on 127.0.0.1); each test
here runs an app with the service's default instead.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyftpdlib.handlers import FTPHandler

from app.core.db import UnitOfWork
from app.imports.ftp import is_public_address
from tests.factories import ProjectWithKey
from tests.helpers import app_running, asgi_client
from tests.imports.ftp_server import CONTENT, Ftp, serving
from tests.imports.helpers import get_import, run_jobs

# TEST-NET-3 (RFC 5737): routed nowhere, so a connection to it could only time out.
UNREACHABLE = "203.0.113.9"


class PasvOnlyHandler(FTPHandler):  # type: ignore[misc]
    """A server that has no EPSV and names another host in its PASV replies, as a
    malicious one would to point the client's data connection into the client's network."""

    masquerade_address = UNREACHABLE

    def ftp_EPSV(self, line: str) -> None:
        self.respond("502 EPSV not implemented.")


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[Ftp]:
    with serving(tmp_path / "ftp") as server:
        (server.root / "exports" / "customers.csv").write_text(CONTENT)
        yield server


async def _client(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app_running(database_url, import_ftp_allow_private_addresses=False, **settings) as app,
        asgi_client(app) as client,
    ):
        yield client


@pytest.fixture
async def strict(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The service as installed: no allowlist, no private addresses."""
    async for client in _client(database_url):
        yield client


async def _start_import(
    client: httpx.AsyncClient, owner: ProjectWithKey, source: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        "/v1/imports", headers=owner.admin_headers, json={"source": {"ftp": source}}
    )


async def _import_to_the_end(
    client: httpx.AsyncClient, owner: ProjectWithKey, server: Ftp, uow: UnitOfWork
) -> dict[str, Any]:
    """Import the server's customers.csv and run its job: the import as it ended."""
    started = await _start_import(client, owner, server.source("/exports/customers.csv"))
    assert started.status_code == 202, started.text
    await run_jobs(uow)
    return await get_import(client, owner, started.json()["id"])


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104 (an address checked, not bound)
        ("224.0.0.1", False),
        ("::ffff:127.0.0.1", False),  # loopback inside an IPv6 address
        ("::ffff:8.8.8.8", True),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public_address(address) is public


async def test_a_private_address_is_refused_before_anything_is_queued(
    strict: httpx.AsyncClient, project: ProjectWithKey, ftp_server: Ftp, uow: UnitOfWork
) -> None:
    for host in ("127.0.0.1", "169.254.169.254", "::1", "10.0.0.5"):
        refused = await _start_import(
            strict, project, ftp_server.source("/exports/customers.csv", host=host)
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["pointer"] == "/source/ftp/host"
    schedule = await strict.post(
        "/v1/import-schedules",
        headers=project.admin_headers,
        json={"ftp": ftp_server.source("/exports"), "every_minutes": 5},
    )
    assert schedule.status_code == 422, schedule.text
    assert schedule.json()["errors"][0]["pointer"] == "/ftp/host"
    assert (await strict.get("/v1/imports", headers=project.admin_headers)).json()["items"] == []
    assert await run_jobs(uow) == 0


async def test_a_name_that_resolves_to_a_private_address_fails_without_connecting(
    strict: httpx.AsyncClient, project: ProjectWithKey, ftp_server: Ftp, uow: UnitOfWork
) -> None:
    started = await _start_import(
        strict, project, ftp_server.source("/exports/customers.csv", host="localhost")
    )
    assert started.status_code == 202, started.text
    await run_jobs(uow)
    result = await get_import(strict, project, started.json()["id"])
    assert result["status"] == "failed"
    assert "localhost resolves to" in result["error"]
    assert "not a public address" in result["error"]
    assert result["counts"]["rows_read"] == 0
    # Nothing was fetched: the file is still there and no customer was made.
    assert (ftp_server.root / "exports" / "customers.csv").exists()
    customers = await strict.get("/v1/customers", headers=project.admin_headers)
    assert customers.json()["items"] == []


async def test_a_host_named_in_the_allowlist_may_be_private(
    database_url: str, project: ProjectWithKey, ftp_server: Ftp, uow: UnitOfWork
) -> None:
    async for client in _client(database_url, import_ftp_allowed_hosts=["127.0.0.1"]):
        result = await _import_to_the_end(client, project, ftp_server, uow)
        assert result["status"] == "succeeded", result
        assert result["counts"]["created"] == 2


async def test_the_data_connection_ignores_the_address_in_a_pasv_reply(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    tmp_path: Path,
    uow: UnitOfWork,
) -> None:
    with serving(tmp_path / "ftp", PasvOnlyHandler) as server:
        (server.root / "exports" / "customers.csv").write_text(CONTENT)
        result = await _import_to_the_end(client, project, server, uow)
    # Had the client followed the reply to 203.0.113.9, the download would have failed.
    assert result["status"] == "succeeded", result
    assert result["counts"]["created"] == 2
