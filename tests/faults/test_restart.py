"""PostgreSQL restarted (a private server: never the shared one) while clients keep sending
identify and action requests: 2xx or 503 problem+json, never a 500, nothing half applied,
served again without restarting the app, every 2xx kept, nothing duplicated by retries."""

from collections.abc import AsyncIterator

import pytest

from tests.faults.private_postgres import PrivatePostgres, StopMode, private_postgres
from tests.faults.restart_load import integrity, restart_private_server_under_load

# Enough connections for every client: the outage, not the pool, is what is measured.
CLIENTS = 8


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[PrivatePostgres]:
    async with private_postgres() as started:
        yield started


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restarted_under_load(server: PrivatePostgres, mode: StopMode) -> None:
    url = server.url
    run, stored = await restart_private_server_under_load(
        server, mode, clients=CLIENTS, tag=f"load-{mode}"
    )
    assert server.url == url  # the same address: the app was not told anything

    figures = run.figures()
    # Every answer was a success or a 503 problem with Retry-After: never a 500.
    assert set(figures["statuses"]) <= {200, 201, 503}, figures
    assert all(a.well_formed for a in run.attempts)
    assert figures["statuses"].get(503, 0) > 0, "the outage was not noticed"
    # The app, never restarted, served again soon after the server was back, and every
    # request told 503 was served when sent again.
    assert figures["recovery_s"] is not None, figures
    assert figures["recovery_s"] < 10, figures
    assert figures["unserved"] == 0, figures

    # Nothing half applied (every customer has its email, its phone and the changelog of
    # every other), nothing twice (one customer per email, one action per key, whatever was
    # resent), every 2xx kept under the id it answered, even after a crash.
    faults = integrity(run, stored)
    assert faults == dict.fromkeys(faults, 0), faults
