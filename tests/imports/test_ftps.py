"""Imports over explicit FTPS (AUTH TLS), against a real TLS FTP server whose certificate
a test CA signed: the name is checked, control and data are encrypted."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from pyftpdlib.handlers import TLS_FTPHandler

from app.core.db import UnitOfWork
from app.imports import ftp
from tests.factories import ProjectWithKey
from tests.imports.ftp_server import CONTENT, Ftp, serving
from tests.imports.helpers import get_import, run_jobs


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    """A CA the service trusts for this test (ssl's default context reads SSL_CERT_FILE)."""
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return authority


def _tls_server(tmp_path: Path, ca: trustme.CA, name: str) -> Iterator[Ftp]:
    pem = tmp_path / f"{name}.pem"
    ca.issue_cert(name).private_key_and_cert_chain_pem.write_to_path(str(pem))
    handler = type(
        "Tls",
        (TLS_FTPHandler,),
        # Plain FTP refused: a session that worked was encrypted, its data too.
        {"certfile": str(pem), "tls_control_required": True, "tls_data_required": True},
    )
    with serving(tmp_path / "ftp", handler) as server:
        (server.root / "exports" / "customers.csv").write_text(CONTENT)
        yield server


@pytest.fixture
def localhost_server(tmp_path: Path, ca: trustme.CA) -> Iterator[Ftp]:
    yield from _tls_server(tmp_path, ca, "localhost")


@pytest.fixture
def wrong_name_server(tmp_path: Path, ca: trustme.CA) -> Iterator[Ftp]:
    yield from _tls_server(tmp_path, ca, "files.example.com")


async def _import(
    client: httpx.AsyncClient, owner: ProjectWithKey, server: Ftp, uow: UnitOfWork
) -> dict[str, object]:
    source = server.source("/exports/customers.csv", host="localhost", tls=True)
    started = await client.post(
        "/v1/imports", headers=owner.admin_headers, json={"source": {"ftp": source}}
    )
    assert started.status_code == 202, started.text
    await run_jobs(uow)
    return await get_import(client, owner, started.json()["id"])


async def test_an_ftps_import_checks_the_certificate_and_encrypts_everything(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork, localhost_server: Ftp
) -> None:
    result = await _import(client, project, localhost_server, uow)
    assert result["status"] == "succeeded", result
    assert result["counts"] == {**result["counts"], "created": 2}  # type: ignore[dict-item]


async def test_a_certificate_for_another_name_is_refused(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork, wrong_name_server: Ftp
) -> None:
    result = await _import(client, project, wrong_name_server, uow)
    assert result["status"] == "failed"
    assert "certificate" in str(result["error"]).lower(), result["error"]
    customers = await client.get("/v1/customers", headers=project.admin_headers)
    assert customers.json()["items"] == []


async def test_the_next_address_is_tried_when_one_does_not_answer(tmp_path: Path) -> None:
    with serving(tmp_path / "ftp") as server:
        # Nothing listens on ::1 here (the server is on 127.0.0.1 only), as when a name
        # resolves to an IPv6 address first that the server does not listen on.
        client = await ftp._connected(["::1", "127.0.0.1"], server.port)
        try:
            assert client.server_host == "127.0.0.1"
        finally:
            client.close()
