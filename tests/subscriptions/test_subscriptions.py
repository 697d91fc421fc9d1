"""Consent per channel and topic: the state machine, contact rules, history, merge rule."""

from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, bearer, identify


async def _customer(client: httpx.AsyncClient, owner: ProjectWithKey, **identifiers: Any) -> str:
    response = await identify(client, owner, {"identifiers": identifiers})
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["customer"]["id"]
    return customer_id


async def _set(
    client: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str, *decisions: dict[str, Any]
) -> httpx.Response:
    return await client.put(
        f"/v1/customers/{customer_id}/subscriptions",
        headers=owner.admin_headers,
        json={"subscriptions": list(decisions)},
    )


async def _status(
    client: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str
) -> dict[str, str]:
    response = await client.get(
        f"/v1/customers/{customer_id}/subscriptions", headers=owner.admin_headers
    )
    return {f"{s['channel']}:{s['topic'] or ''}": s["status"] for s in response.json()}


# (status before, requested status, accepted?)
TRANSITIONS = [
    (None, "subscribed", True),
    (None, "unsubscribed", True),
    (None, "pending", True),
    ("pending", "subscribed", True),
    ("pending", "unsubscribed", True),
    ("pending", "pending", True),
    ("subscribed", "unsubscribed", True),
    ("subscribed", "subscribed", True),
    ("subscribed", "pending", False),
    ("unsubscribed", "subscribed", True),
    ("unsubscribed", "pending", True),
    ("unsubscribed", "unsubscribed", True),
]


@pytest.mark.parametrize(("before", "requested", "accepted"), TRANSITIONS)
async def test_state_machine(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    database_url: str,
    before: str | None,
    requested: str,
    accepted: bool,
) -> None:
    customer = await _customer(client, project, email="sm@example.com")
    if before is not None:
        assert (
            await _set(client, project, customer, {"channel": "email", "status": before})
        ).status_code == 200
    response = await _set(client, project, customer, {"channel": "email", "status": requested})
    if not accepted:
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/subscriptions/0/status"
        assert (await _status(client, project, customer))["email:"] == before
        return
    assert response.status_code == 200, response.text
    [result] = response.json()
    assert (result["status"], result["previous_status"]) == (requested, before)
    assert result["changed"] == (before != requested)
    history = await client.get(
        f"/v1/customers/{customer}/subscriptions/history", headers=project.admin_headers
    )
    transitions = [(h["old_status"], h["new_status"]) for h in reversed(history.json()["items"])]
    expected: list[tuple[str | None, str]] = [(None, before)] if before is not None else []
    if before != requested:
        expected.append((before, requested))
    assert transitions == expected


class TestContactRules:
    @pytest.mark.parametrize(
        ("channel", "status"),
        [
            ("email", "subscribed"),
            ("sms", "pending"),
            ("mobile_push", "subscribed"),
            ("web_push", "subscribed"),
        ],
    )
    async def test_no_contact_no_consent(
        self, client: httpx.AsyncClient, project: ProjectWithKey, channel: str, status: str
    ) -> None:
        customer = await _customer(client, project, discount_cards=["NC-1"])
        response = await _set(client, project, customer, {"channel": channel, "status": status})
        assert response.status_code == 422
        assert "cannot be reached" in response.json()["errors"][0]["message"]

    async def test_unsubscribing_needs_no_contact(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer = await _customer(client, project, discount_cards=["NC-2"])
        assert (
            await _set(client, project, customer, {"channel": "sms", "status": "unsubscribed"})
        ).status_code == 200

    async def test_push_needs_a_push_enabled_device(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer = await _customer(client, project, email="push@example.com")
        device = await client.put(
            f"/v1/customers/{customer}/devices/phone-1",
            headers=project.admin_headers,
            json={
                "kind": "mobile_app",
                "app_id": "a",
                "platform": "android",
                "push_provider": "fcm",
                "push_token": "fcm-token-0123456789abcdef",
            },
        )
        assert (
            await _set(
                client, project, customer, {"channel": "mobile_push", "status": "subscribed"}
            )
        ).status_code == 200
        await client.patch(
            f"/v1/devices/{device.json()['id']}",
            headers=project.admin_headers,
            json={"push_enabled": False},
        )
        await _set(client, project, customer, {"channel": "mobile_push", "status": "unsubscribed"})
        again = await _set(
            client, project, customer, {"channel": "mobile_push", "status": "subscribed"}
        )
        assert again.status_code == 422

    async def test_all_or_nothing_with_pointers(
        self, client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
    ) -> None:
        customer = await _customer(client, project, email="aon@example.com")
        response = await _set(
            client,
            project,
            customer,
            {"channel": "email", "status": "subscribed"},
            {"channel": "sms", "status": "subscribed"},
            {"channel": "email", "topic": "nope", "status": "subscribed"},
            {"channel": "email", "status": "unsubscribed"},
        )
        assert response.status_code == 422
        assert {e["pointer"] for e in response.json()["errors"]} == {
            "/subscriptions/1/status",
            "/subscriptions/2/topic",
            "/subscriptions/3/channel",
        }
        assert await _status(client, project, customer) == {}


class TestTopicsAndChannels:
    async def test_topics_restrict_their_channels(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        created = await client.post(
            "/v1/subscription-topics",
            headers=project.admin_headers,
            json={"key": "newsletter", "name": "Newsletter", "channels": ["email"]},
        )
        assert created.status_code == 201
        customer = await _customer(client, project, email="t@example.com", phone="+14155550199")
        ok = await _set(
            client,
            project,
            customer,
            {"channel": "email", "topic": "newsletter", "status": "subscribed"},
        )
        assert ok.status_code == 200
        wrong = await _set(
            client,
            project,
            customer,
            {"channel": "sms", "topic": "newsletter", "status": "subscribed"},
        )
        assert wrong.status_code == 422
        assert await _status(client, project, customer) == {"email:newsletter": "subscribed"}

    async def test_project_channels_are_configurable(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await client.patch(
            "/v1/projects/current",
            headers=project.admin_headers,
            json={"subscription_channels": ["email"]},
        )
        customer = await _customer(client, project, email="c@example.com", phone="+14155550198")
        response = await _set(client, project, customer, {"channel": "sms", "status": "subscribed"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/subscriptions/0/channel"


async def test_identify_records_consent_after_attaching_the_email(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    response = await identify(
        client,
        project,
        {
            "identifiers": {"email": "new@example.com"},
            "subscriptions": [{"channel": "email", "status": "pending", "source": "signup"}],
        },
    )
    assert response.status_code == 201, response.text
    customer = response.json()["customer"]["id"]
    assert await _status(client, project, customer) == {"email:": "pending"}
    changelog = await client.get(
        f"/v1/customers/{customer}/changelog", headers=project.admin_headers
    )
    assert ("subscription", "subscriptions.email", "pending") in {
        (r["operation"], r["field"], r["new_value"]) for r in changelog.json()["items"]
    }


async def test_me_subscriptions_with_the_customer_token(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    customer = await _customer(client, project, email="me@example.com")
    app_key = await client.post(
        "/v1/api-keys", headers=project.admin_headers, json={"name": "app", "kind": "publishable"}
    )
    token = await client.post(f"/v1/customers/{customer}/auth-token", headers=project.admin_headers)
    headers = bearer(app_key.json()["key"]) | {"X-Customer-Token": token.json()["token"]}
    put = await client.put(
        "/v1/me/subscriptions",
        headers=headers,
        json={"subscriptions": [{"channel": "email", "status": "subscribed"}]},
    )
    assert put.status_code == 200, put.text
    got = await client.get("/v1/me/subscriptions", headers=headers)
    assert [(s["channel"], s["status"]) for s in got.json()] == [("email", "subscribed")]
    without_token = await client.get("/v1/me/subscriptions", headers=bearer(app_key.json()["key"]))
    assert without_token.status_code == 401


async def test_merge_keeps_the_latest_decision_and_all_history(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    target = await _customer(client, project, email="tgt@example.com", phone="+14155550190")
    source = await _customer(client, project, email="src@example.com", phone="+14155550191")
    await _set(client, project, target, {"channel": "email", "status": "subscribed"})  # older
    await _set(client, project, source, {"channel": "sms", "status": "subscribed"})  # only source
    await _set(client, project, source, {"channel": "email", "status": "unsubscribed"})  # newer
    await _set(
        client, project, target, {"channel": "messenger", "status": "subscribed"}
    )  # only target
    merged = await client.post(
        "/v1/customers/merge",
        headers=project.admin_headers,
        json={"target_id": target, "source_ids": [source]},
    )
    assert merged.status_code == 200, merged.text
    assert await _status(client, project, target) == {
        "email:": "unsubscribed",
        "sms:": "subscribed",
        "messenger:": "subscribed",
    }
    history = await client.get(
        f"/v1/customers/{target}/subscriptions/history", headers=project.admin_headers
    )
    assert {h["customer_id"] for h in history.json()["items"]} == {target, source}
    assert len(history.json()["items"]) == 4


async def test_history_is_append_only(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    customer = await _customer(client, project, email="ao@example.com")
    await _set(client, project, customer, {"channel": "email", "status": "subscribed"})
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("UPDATE subscription_history SET new_status = 'unsubscribed'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("DELETE FROM subscription_history")
    finally:
        await connection.close()
