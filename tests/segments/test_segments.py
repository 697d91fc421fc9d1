"""Segments: the rule language against a Python evaluation, recalculation diffs, manual
membership, merges, and recalculation as a restart-safe job."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.core.db import UnitOfWork
from app.jobs import service as jobs_service
from app.jobs.handlers import HANDLERS
from app.jobs.models import Job
from app.jobs.service import ProgressReporter
from app.segments.service import RECALCULATE
from tests.factories import ProjectWithKey, identify

Person = dict[str, Any]

# The fixture population, and the same facts as plain Python data for the evaluator.
PEOPLE: list[Person] = [
    {
        "email": "ann@example.com",
        "first_name": "Ann",
        "gender": "female",
        "tier": "gold",
        "visits": 12,
        "phone": "+14155550001",
        "email_status": "subscribed",
        "points": 150,
        "purchases": 3,
        "device": True,
    },
    {
        "email": "bob@example.com",
        "first_name": "Bob",
        "gender": "male",
        "tier": "silver",
        "visits": 2,
        "phone": None,
        "email_status": "unsubscribed",
        "points": 20,
        "purchases": 1,
        "device": False,
    },
    {
        "email": "cy@example.com",
        "first_name": "Cyrus",
        "gender": "male",
        "tier": None,
        "visits": None,
        "phone": "+14155550003",
        "email_status": None,
        "points": 0,
        "purchases": 0,
        "device": True,
    },
    {
        "email": "di@example.com",
        "first_name": "Dina",
        "gender": None,
        "tier": "gold",
        "visits": 7,
        "phone": None,
        "email_status": "subscribed",
        "points": 99,
        "purchases": 2,
        "device": False,
    },
    {
        "email": "ed@example.com",
        "first_name": None,
        "gender": "unknown",
        "tier": "bronze",
        "visits": 0,
        "phone": "+14155550005",
        "email_status": "pending",
        "points": 100,
        "purchases": 5,
        "device": True,
    },
]

# (rule, the same rule in Python)
RULES: list[tuple[dict[str, Any], Callable[[Person], bool]]] = [
    ({"profile": "gender", "op": "eq", "value": "male"}, lambda p: p["gender"] == "male"),
    ({"profile": "gender", "op": "ne", "value": "male"}, lambda p: p["gender"] != "male"),
    (
        {"profile": "first_name", "op": "starts_with", "value": "D"},
        lambda p: (p["first_name"] or "").startswith("D"),
    ),
    (
        {"profile": "first_name", "op": "contains", "value": "n"},
        lambda p: "n" in (p["first_name"] or ""),
    ),
    ({"profile": "first_name", "op": "not_exists"}, lambda p: p["first_name"] is None),
    (
        {"custom_field": "tier", "op": "in", "value": ["gold", "silver"]},
        lambda p: p["tier"] in ("gold", "silver"),
    ),
    ({"custom_field": "tier", "op": "not_in", "value": ["gold"]}, lambda p: p["tier"] != "gold"),
    (
        {"custom_field": "visits", "op": "gte", "value": 7},
        lambda p: p["visits"] is not None and p["visits"] >= 7,
    ),
    (
        {"custom_field": "visits", "op": "lt", "value": 3},
        lambda p: p["visits"] is not None and p["visits"] < 3,
    ),
    ({"identifier": "phone", "op": "exists"}, lambda p: p["phone"] is not None),
    ({"identifier": "phone", "op": "not_exists"}, lambda p: p["phone"] is None),
    (
        {"subscription": {"channel": "email"}, "status": "subscribed"},
        lambda p: p["email_status"] == "subscribed",
    ),
    ({"points": "bonus", "op": "gte", "value": 100}, lambda p: p["points"] >= 100),
    (
        {"action": "purchase", "count": {"op": "gte", "value": 2}, "within_days": 30},
        lambda p: p["purchases"] >= 2,
    ),
    ({"device": "mobile_app", "op": "exists"}, lambda p: p["device"]),
    ({"not": {"device": "mobile_app", "op": "exists"}}, lambda p: not p["device"]),
    (
        {
            "all": [
                {"custom_field": "tier", "op": "eq", "value": "gold"},
                {"points": "bonus", "op": "gt", "value": 100},
            ]
        },
        lambda p: p["tier"] == "gold" and p["points"] > 100,
    ),
    (
        {
            "any": [
                {"identifier": "phone", "op": "not_exists"},
                {"action": "purchase", "count": {"op": "eq", "value": 0}, "within_days": 30},
            ]
        },
        lambda p: p["phone"] is None or p["purchases"] == 0,
    ),
    # Without a window every purchase counts, the 90-day-old one too.
    (
        {"action": "purchase", "count": {"op": "gte", "value": 4}},
        lambda p: p["purchases"] + 1 >= 4,
    ),
    ({"in_segment": {"segmentation": "vip", "segment": "vip"}}, lambda p: p["tier"] == "gold"),
]


async def _post(
    client: httpx.AsyncClient,
    owner: ProjectWithKey,
    path: str,
    body: dict[str, Any],
    **headers: str,
) -> httpx.Response:
    response = await client.post(path, headers=owner.admin_headers | headers, json=body)
    assert response.status_code in (200, 201), response.text
    return response


async def _population(client: httpx.AsyncClient, owner: ProjectWithKey) -> dict[str, str]:
    """Customers by email, with every fact of PEOPLE recorded through the API."""
    await _post(
        client,
        owner,
        "/v1/fields",
        {"key": "tier", "type": "enum", "enum_values": ["gold", "silver", "bronze"]},
    )
    await _post(client, owner, "/v1/fields", {"key": "visits", "type": "integer"})
    await _post(client, owner, "/v1/point-accounts", {"code": "bonus", "name": "Bonus"})
    await _post(
        client, owner, "/v1/action-types", {"key": "purchase", "payload_schema": {"type": "object"}}
    )
    ids: dict[str, str] = {}
    now = datetime.now(UTC)
    for person in PEOPLE:
        profile: dict[str, Any] = {"first_name": person["first_name"], "gender": person["gender"]}
        custom = {k: person[k] for k in ("tier", "visits") if person[k] is not None}
        identifiers = {"email": person["email"]} | (
            {"phone": person["phone"]} if person["phone"] else {}
        )
        created = await _post(
            client,
            owner,
            "/v1/customers/identify",
            {"identifiers": identifiers, "profile": profile | {"custom_fields": custom}},
        )
        customer = created.json()["customer"]["id"]
        ids[person["email"]] = customer
        if person["email_status"]:
            await client.put(
                f"/v1/customers/{customer}/subscriptions",
                headers=owner.admin_headers,
                json={"subscriptions": [{"channel": "email", "status": person["email_status"]}]},
            )
        if person["points"]:
            await _post(
                client,
                owner,
                f"/v1/customers/{customer}/points/transactions",
                {"account": "bonus", "type": "accrual", "amount": person["points"]},
                **{"Idempotency-Key": f"pts-{customer}"},
            )
        for n in range(person["purchases"]):
            await _post(
                client,
                owner,
                "/v1/actions",
                {
                    "customer": {"customer_id": customer},
                    "type": "purchase",
                    "occurred_at": (now - timedelta(days=n)).isoformat(),
                    "payload": {},
                },
            )
        # An old purchase outside the 30-day window must not count.
        await _post(
            client,
            owner,
            "/v1/actions",
            {
                "customer": {"customer_id": customer},
                "type": "purchase",
                "occurred_at": (now - timedelta(days=90)).isoformat(),
                "payload": {},
            },
        )
        if person["device"]:
            await client.put(
                f"/v1/customers/{customer}/devices/dev-{customer[:8]}",
                headers=owner.admin_headers,
                json={"kind": "mobile_app", "app_id": "a", "platform": "ios"},
            )
    vip = await _post(
        client,
        owner,
        "/v1/segmentations",
        {
            "key": "vip",
            "name": "VIP",
            "kind": "manual",
            "segments": [{"key": "vip", "name": "VIP"}],
        },
    )
    changes = [
        {"segment": "vip", "customer": {"email": p["email"]}} for p in PEOPLE if p["tier"] == "gold"
    ]
    await client.put(
        f"/v1/segmentations/{vip.json()['id']}/members",
        headers=owner.admin_headers,
        json={"changes": changes},
    )
    return ids


async def _recalculate(
    client: httpx.AsyncClient, owner: ProjectWithKey, uow: UnitOfWork, segmentation_id: str
) -> dict[str, Any]:
    started = await client.post(
        f"/v1/segmentations/{segmentation_id}/recalculate", headers=owner.admin_headers
    )
    assert started.status_code == 202, started.text
    ran = await jobs_service.run_one(
        uow, worker_id="test", handlers=HANDLERS, now=datetime.now(UTC), lease=timedelta(minutes=5)
    )
    assert ran
    job = await client.get(f"/v1/jobs/{started.json()['job_id']}", headers=owner.admin_headers)
    assert job.json()["status"] == "succeeded", job.text
    result: dict[str, Any] = job.json()
    return result


async def _members(client: httpx.AsyncClient, owner: ProjectWithKey, segment_id: str) -> set[str]:
    page = await client.get(
        f"/v1/segments/{segment_id}/customers", headers=owner.admin_headers, params={"limit": 1000}
    )
    return {m["customer_id"] for m in page.json()["items"]}


async def test_the_rule_language_matches_a_python_evaluation(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
) -> None:
    ids = await _population(client, project)
    segments = [
        {"key": f"r{n}", "name": f"rule {n}", "rule": rule} for n, (rule, _) in enumerate(RULES)
    ]
    # One segmentation per rule: segments of one segmentation are exclusive.
    for n, (rule, evaluate) in enumerate(RULES):
        created = await _post(
            client,
            project,
            "/v1/segmentations",
            {"key": f"s{n}", "name": f"s{n}", "kind": "rule", "segments": [segments[n]]},
        )
        await _recalculate(client, project, uow, created.json()["id"])
        expected = {ids[p["email"]] for p in PEOPLE if evaluate(p)}
        actual = await _members(client, project, created.json()["segments"][0]["id"])
        assert actual == expected, rule


async def test_recalculation_writes_exactly_the_diff(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
) -> None:
    ids = await _population(client, project)
    created = await _post(
        client,
        project,
        "/v1/segmentations",
        {
            "key": "gold",
            "name": "Gold",
            "kind": "rule",
            "segments": [
                {
                    "key": "gold",
                    "name": "Gold",
                    "rule": {"custom_field": "tier", "op": "eq", "value": "gold"},
                },
                {
                    "key": "other",
                    "name": "Other tiers",
                    "rule": {"custom_field": "tier", "op": "exists"},
                },
            ],
        },
    )
    first = await _recalculate(client, project, uow, created.json()["id"])
    assert first["result"]["added"] == 4  # 2 gold + 2 other tiers; Cyrus has none
    second = await _recalculate(client, project, uow, created.json()["id"])
    assert (second["result"]["added"], second["result"]["removed"]) == (0, 0)
    bob = ids["bob@example.com"]
    await client.patch(
        f"/v1/customers/{bob}",
        headers=project.admin_headers,
        json={"profile": {"custom_fields": {"tier": "gold"}}},
    )
    third = await _recalculate(client, project, uow, created.json()["id"])
    assert (third["result"]["added"], third["result"]["removed"]) == (1, 1)  # other -> gold
    history = await client.get(
        f"/v1/customers/{bob}/segments/history", headers=project.admin_headers
    )
    assert [h["event"] for h in history.json()["items"]] == ["added", "removed", "added"]


async def test_rules_are_checked_when_saved(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    response = await client.post(
        "/v1/segmentations",
        headers=project.admin_headers,
        json={
            "key": "bad",
            "name": "Bad",
            "kind": "rule",
            "segments": [
                {
                    "key": "a",
                    "name": "A",
                    "rule": {
                        "all": [
                            {"custom_field": "nope", "op": "eq", "value": "x"},
                            {"points": "ghost", "op": "gte", "value": 1},
                            {"profile": "gender", "op": "gte", "value": 3},
                        ]
                    },
                },
            ],
        },
    )
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {
        "/segments/0/rule/all/0/custom_field",
        "/segments/0/rule/all/1/points",
        "/segments/0/rule/all/2/op",
    }


async def test_merged_histories_show_on_the_survivor(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    vip = await _post(
        client,
        project,
        "/v1/segmentations",
        {
            "key": "club",
            "name": "Club",
            "kind": "manual",
            "segments": [{"key": "in", "name": "In"}, {"key": "out", "name": "Out"}],
        },
    )
    first = (await identify(client, project, {"identifiers": {"email": "m1@example.com"}})).json()[
        "customer"
    ]["id"]
    second = (await identify(client, project, {"identifiers": {"email": "m2@example.com"}})).json()[
        "customer"
    ]["id"]
    url = f"/v1/segmentations/{vip.json()['id']}/members"
    await client.put(
        url,
        headers=project.admin_headers,
        json={"changes": [{"segment": "in", "customer": {"customer_id": first}}]},
    )
    await client.put(
        url,
        headers=project.admin_headers,
        json={"changes": [{"segment": "out", "customer": {"customer_id": second}}]},
    )
    merged = await client.post(
        "/v1/customers/merge",
        headers=project.admin_headers,
        json={"target_id": first, "source_ids": [second]},
    )
    assert merged.status_code == 200, merged.text
    history = await client.get(
        f"/v1/customers/{first}/segments/history", headers=project.admin_headers
    )
    assert {h["customer_id"] for h in history.json()["items"]} == {first, second}
    current = await client.get(f"/v1/customers/{first}/segments", headers=project.admin_headers)
    assert [(s["segmentation"], s["segment"]) for s in current.json()] == [("club", "in")]


async def test_a_recalculation_survives_its_worker_dying(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
) -> None:
    await _population(client, project)
    created = await _post(
        client,
        project,
        "/v1/segmentations",
        {
            "key": "g",
            "name": "G",
            "kind": "rule",
            "segments": [
                {
                    "key": "g",
                    "name": "G",
                    "rule": {"custom_field": "tier", "op": "eq", "value": "gold"},
                }
            ],
        },
    )
    started = await client.post(
        f"/v1/segmentations/{created.json()['id']}/recalculate", headers=project.admin_headers
    )
    stuck = asyncio.Event()

    async def dies_midway(
        job_uow: UnitOfWork, job: Job, progress: ProgressReporter
    ) -> dict[str, Any]:
        async with job_uow:
            await HANDLERS[RECALCULATE](UnitOfWork(job_uow._sessions), job, progress)
            stuck.set()
            await asyncio.sleep(3600)  # the process dies here, before anything commits
        return {}

    now = datetime.now(UTC)
    lease = timedelta(minutes=5)
    doomed = asyncio.create_task(
        jobs_service.run_one(
            UnitOfWork(uow._sessions),
            worker_id="doomed",
            handlers={RECALCULATE: dies_midway},
            now=now,
            lease=lease,
        )
    )
    await stuck.wait()
    doomed.cancel()
    await asyncio.gather(doomed, return_exceptions=True)
    ran = await jobs_service.run_one(
        uow, worker_id="rescuer", handlers=HANDLERS, now=now + lease * 2, lease=lease
    )
    assert ran
    job = await client.get(f"/v1/jobs/{started.json()['job_id']}", headers=project.admin_headers)
    assert job.json()["status"] == "succeeded"
    segment_id = created.json()["segments"][0]["id"]
    assert len(await _members(client, project, segment_id)) == 2
    customers = (await client.get("/v1/customers", headers=project.admin_headers)).json()["items"]
    histories = [
        (
            await client.get(
                f"/v1/customers/{c['id']}/segments/history", headers=project.admin_headers
            )
        ).json()["items"]
        for c in customers
    ]
    added = [h for items in histories for h in items if h["segment_id"] == segment_id]
    assert len(added) == 2  # written once, by the run that completed


@pytest.mark.parametrize("kind", ["manual"])
async def test_manual_segments_refuse_recalculation(
    client: httpx.AsyncClient, project: ProjectWithKey, kind: str
) -> None:
    created = await _post(
        client,
        project,
        "/v1/segmentations",
        {"key": "m", "name": "M", "kind": kind, "segments": [{"key": "a", "name": "A"}]},
    )
    response = await client.post(
        f"/v1/segmentations/{created.json()['id']}/recalculate", headers=project.admin_headers
    )
    assert response.status_code == 409
