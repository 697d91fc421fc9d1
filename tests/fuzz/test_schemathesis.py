"""Spec fuzzing: schemathesis drives every operation of the committed spec against a live server.

The server is `python -m app serve` on a free port, in a process of its own: the fuzzing
sees what a client sees (uvicorn's HTTP parsing, every middleware, real sockets), and the
server does not share a GIL with Hypothesis' data generation (2 cores: one each).

All operations share one project and its key with every scope; what one operation creates
stays for the next (lists and searches then return real rows to check against the schema).
Half the positive cases of operations on a customer aim at a real one, so their bodies
reach the domain code instead of a 404; the /v1/me operations are called as an app calls
them (a publishable key, and in half the positive cases a real customer's token).
"""

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.core.auth import Scope
from app.core.db import UnitOfWork
from tests.conftest import empty_tables
from tests.factories import bearer, make_key, make_project
from tests.fuzz.tally import TALLY
from tests.helpers import wait_until_ready
from tests.test_server import _free_port

SPEC_PATH = Path(__file__).parents[2] / "openapi" / "openapi.json"
# Cases per operation in the fuzzing phase (positive and negative together); the examples
# and coverage phases add theirs on top. Sized for about two minutes on 2 cores.
MAX_EXAMPLES = 10
SEED = 20261129

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            # No example database: nothing is written into the tree, every run is the same.
            "database": "none",
            # A failure is reported as found (with a curl line), not shrunk: CI stays bounded.
            "no-shrink": True,
        },
        "suppress-health-check": ["too_slow", "filter_too_much"],
    }
)
schema = schemathesis.openapi.from_path(SPEC_PATH, config=CONFIG)


class Target:
    """The live server, the keys the cases send, and customers that exist."""

    def __init__(
        self, base_url: str, token: str, customer_id: str, publishable: str, customer_token: str
    ) -> None:
        self.base_url = base_url
        self.headers = bearer(token)
        self.customer_id = customer_id
        # /v1/me takes an app's publishable key and a customer's token (another customer:
        # the auth-token operations may revoke the first one's).
        self.me_headers = bearer(publishable)
        self.customer_token = customer_token
        self._aim = itertools.cycle((True, False))

    def aim_at_real_customer(self) -> bool:
        return next(self._aim)


@pytest.fixture(scope="module")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`cdp serve` on the test database; its log goes to a file (a pipe could fill and stall it)."""
    folder = tmp_path_factory.mktemp("fuzz-server")
    env = {
        **os.environ,
        "CDP_DATABASE_URL": database_url,
        "CDP_LOG_LEVEL": "WARNING",
        "CDP_IMPORT_DIR": str(folder / "imports"),
        # No background work: fuzzed FTP imports are never fetched, nothing runs between cases.
        "CDP_JOB_WORKERS": "0",
        "CDP_IMPORT_SCHEDULE_SECONDS": "0",
        "CDP_SEGMENTS_SCHEDULE_SECONDS": "0",
        "CDP_LOYALTY_SETTLE_INTERVAL_SECONDS": "0",
    }
    port = _free_port()
    log_path = folder / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process, log_path.read_text)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
async def target(app: FastAPI, database_url: str, live_server: str) -> AsyncIterator[Target]:
    uow = UnitOfWork(app.state.database.sessions)
    owner = await make_project(uow, name="fuzz")
    token = await make_key(uow, owner.project, scopes=list(Scope), name="fuzz")
    async with httpx.AsyncClient(base_url=live_server, headers=bearer(token)) as http:
        customer_id = await _identify(http, "fuzz@example.com")
        me_customer_id = await _identify(http, "me@example.com")
        issued = await http.post(f"/v1/customers/{me_customer_id}/auth-token")
        assert issued.status_code == 201, issued.text
        publishable = await http.post(
            "/v1/api-keys", json={"name": "fuzz-app", "kind": "publishable", "scopes": []}
        )
        assert publishable.status_code == 201, publishable.text
    yield Target(
        live_server,
        token,
        customer_id,
        publishable=publishable.json()["key"],
        customer_token=issued.json()["token"],
    )
    await empty_tables(database_url)


async def _identify(http: httpx.AsyncClient, email: str) -> str:
    response = await http.post(
        "/v1/customers/identify",
        json={"identifiers": {"email": email}, "profile": {"first_name": "F"}},
    )
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["customer"]["id"]
    return customer_id


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


@schema.parametrize()
# One target per module (a fixture), shared by every case of every operation, on purpose.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_operation_conforms(
    case: schemathesis.Case[Any], target: Target, session: requests.Session
) -> None:
    mode = case.meta.generation.mode if case.meta else GenerationMode.POSITIVE
    positive = mode is GenerationMode.POSITIVE
    headers = target.headers
    if case.path.startswith("/v1/me"):
        headers = target.me_headers
        if positive and target.aim_at_real_customer():
            case.headers["x-customer-token"] = target.customer_token
    elif positive and "customer_id" in (case.path_parameters or {}):
        if target.aim_at_real_customer():
            case.path_parameters["customer_id"] = target.customer_id
    TALLY.count(case.operation.label, case.meta.phase.name.value if case.meta else "?", mode.value)
    case.call_and_validate(
        base_url=target.base_url, session=session, headers=headers, checks=CHECKS
    )
