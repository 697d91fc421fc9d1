"""Liveness, readiness and metrics."""

import httpx

from tests.core.test_problems import assert_problem
from tests.helpers import app_running, asgi_client


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_migration_head(client: httpx.AsyncClient) -> None:
    from app.core.migrations import head_revision

    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "migration": head_revision()}


async def test_readyz_is_503_when_the_database_is_unreachable(database_url: str) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    async with app_running(unreachable, db_pool_timeout_seconds=2) as app:
        async with asgi_client(app) as http:
            response = await http.get("/readyz")
            liveness = await http.get("/healthz")
    body = assert_problem(response, 503)
    assert "not reachable" in str(body["detail"])
    assert liveness.status_code == 200


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/v1/api-keys/0193a6f1-0000-7000-8000-000000000000")
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'cdp_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/v1/api-keys/{key_id}",status="401"' in text
    assert "cdp_http_request_duration_seconds_bucket" in text
    assert "cdp_db_pool_size" in text
    assert "cdp_db_pool_checked_out" in text
