"""The 360 profile (a fixed number of queries) and the export (everything, as JSON)."""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from app.core.schema_names import literal_values
from app.customers.dossier import SECTION_NAMES
from app.customers.schemas import SectionName
from tests.customers.test_erase import EMAIL, _customer_with_data_everywhere
from tests.factories import ProjectWithKey, identify


@contextmanager
def _statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements the app sends while the block runs, but the API key's bookkeeping.

    The key's last use is written at most once a minute, so whether a request writes it
    depends on how long the test took, not on what the request does."""
    engine = app.state.database.engine.sync_engine
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "api_keys" not in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_the_section_names_are_the_dossier_s() -> None:
    assert literal_values(SectionName) == SECTION_NAMES


async def test_the_profile_shows_every_section_with_links(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    customer_id = await _customer_with_data_everywhere(client, project)
    response = await client.get(
        f"/v1/customers/{customer_id}/profile", headers=project.admin_headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer"]["identifiers"]["email"] == EMAIL
    assert len(body["customer"]["merged_ids"]) == 1
    sections = body["sections"]
    assert set(sections) == set(SECTION_NAMES)
    empty = {name for name, section in sections.items() if not section["items"]}
    # The fixture has no promo code and no segment: every other section has data.
    assert empty == {"promo_codes", "segments", "segment_history"}
    assert sections["actions"]["href"] == f"/v1/customers/{customer_id}/actions"
    assert {i["kind"] for i in sections["identifiers"]["items"]} == {
        "email",
        "phone",
        "discount_card",
        "external:crm",
        "app_installation",
        "push_token",
    }
    assert float(sections["point_balances"]["items"][0]["available"]) == 100
    assert "secret_hash" not in sections["auth_token"]["items"][0]
    assert sections["merges"]["items"][0]["source_id"] == body["customer"]["merged_ids"][0]

    only = await client.get(
        f"/v1/customers/{customer_id}/profile",
        params=[("include", "actions"), ("include", "devices"), ("latest", "1")],
        headers=project.admin_headers,
    )
    assert set(only.json()["sections"]) == {"actions", "devices"}
    bad = await client.get(
        f"/v1/customers/{customer_id}/profile",
        params={"include": "passwords"},
        headers=project.admin_headers,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["location"] == "query"


async def test_the_profile_costs_the_same_number_of_queries_whatever_the_data(
    client: httpx.AsyncClient, project: ProjectWithKey, app: FastAPI
) -> None:
    rich = await _customer_with_data_everywhere(client, project)
    for n in range(30):
        await client.post(
            "/v1/actions",
            headers=project.admin_headers,
            json={
                "customer": {"email": EMAIL},
                "type": "order.placed",
                "occurred_at": "2026-11-02T10:00:00Z",
                "payload": {"n": n},
            },
        )
        await client.put(
            f"/v1/customers/{rich}/devices/extra-{n}",
            headers=project.admin_headers,
            json={"kind": "mobile_app", "app_id": "com.acme.shop", "platform": "android"},
        )
    poor = (await identify(client, project, {"identifiers": {"email": "poor@example.com"}})).json()
    counts = []
    for customer_id in (poor["customer"]["id"], rich):
        with _statements(app) as seen:
            response = await client.get(
                f"/v1/customers/{customer_id}/profile", headers=project.admin_headers
            )
        assert response.status_code == 200
        counts.append(len(seen))
    assert counts[0] == counts[1]
    assert counts[0] == 1 + len(SECTION_NAMES)  # the customer, then one per section


async def test_the_export_has_every_section_round_trips_and_is_audited(
    client: httpx.AsyncClient, project: ProjectWithKey, app: FastAPI
) -> None:
    customer_id = await _customer_with_data_everywhere(client, project)
    response = await client.get(
        f"/v1/customers/{customer_id}/export", headers=project.admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document = json.loads(response.content)
    assert json.loads(json.dumps(document)) == document
    assert document["customer"]["id"] == customer_id
    assert list(document["sections"]) == list(SECTION_NAMES)
    changelog = document["sections"]["changelog"]
    # The whole history, the merged customer's included.
    merged_id = document["customer"]["merged_ids"][0]
    assert {row["customer_id"] for row in changelog} == {customer_id, merged_id}
    assert any(row["operation"] == "identifier_added" for row in changelog)
    assert len(document["sections"]["point_transactions"]) == 2

    logged = await client.get(
        f"/v1/customers/{customer_id}/changelog", headers=project.admin_headers
    )
    assert logged.json()["items"][0]["operation"] == "export"
    metrics = await client.get("/metrics")
    exports = [
        line
        for line in metrics.text.splitlines()
        if line.startswith("cdp_personal_data_reads_total") and 'operation="export"' in line
    ]
    assert exports, metrics.text
    assert float(exports[0].rsplit(" ", 1)[1]) >= 1


async def test_no_profile_or_export_for_an_unknown_or_erased_customer(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    created = await identify(client, project, {"identifiers": {"email": "gone@example.com"}})
    customer_id = created.json()["customer"]["id"]
    await client.delete(f"/v1/customers/{customer_id}", headers=project.admin_headers)
    for target in (customer_id, str(uuid.uuid4())):
        for suffix in ("profile", "export"):
            response = await client.get(
                f"/v1/customers/{target}/{suffix}", headers=project.admin_headers
            )
            assert response.status_code == 404, (suffix, response.text)
