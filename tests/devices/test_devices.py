"""Devices, push tokens, customer auth tokens and the /v1/me routes, against PostgreSQL."""

import asyncio
import base64
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, bearer, identify

APNS_TOKEN = "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad"
FCM_TOKEN = "fcm-dGVzdA:APA91bH0S3v1q2w3e4r5t6y7u8i9o0p"


def mobile(token: str | None = APNS_TOKEN, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "mobile_app", "app_id": "com.acme.shop", "platform": "ios"}
    if token is not None:
        body |= {"push_provider": "apns", "push_token": token}
    return body | extra


def browser() -> dict[str, Any]:
    key = base64.urlsafe_b64encode(b"\x04" + bytes(64)).decode().rstrip("=")
    secret = base64.urlsafe_b64encode(bytes(16)).decode().rstrip("=")
    return {
        "kind": "web_push",
        "app_id": "shop.acme.example",
        "platform": "web",
        "push_provider": "webpush",
        "web_push": {
            "endpoint": "https://fcm.googleapis.com/fcm/send/abc123",
            "p256dh": key,
            "auth": secret,
        },
    }


async def _customer(client: httpx.AsyncClient, owner: ProjectWithKey, email: str) -> str:
    response = await identify(client, owner, {"identifiers": {"email": email}})
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["customer"]["id"]
    return customer_id


async def _register(
    client: httpx.AsyncClient,
    owner: ProjectWithKey,
    customer_id: str,
    installation: str,
    body: dict[str, Any],
) -> httpx.Response:
    return await client.put(
        f"/v1/customers/{customer_id}/devices/{installation}",
        headers=owner.admin_headers,
        json=body,
    )


async def _publishable(client: httpx.AsyncClient, owner: ProjectWithKey) -> dict[str, str]:
    created = await client.post(
        "/v1/api-keys", headers=owner.admin_headers, json={"name": "ios-app", "kind": "publishable"}
    )
    assert created.status_code == 201, created.text
    return bearer(created.json()["key"])


async def _token(client: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str) -> str:
    issued = await client.post(
        f"/v1/customers/{customer_id}/auth-token", headers=owner.admin_headers
    )
    assert issued.status_code == 201, issued.text
    token: str = issued.json()["token"]
    return token


class TestRegistration:
    async def test_register_then_update_and_see_it_in_the_profile(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer = await _customer(client, project, "dev@example.com")
        first = await _register(client, project, customer, "inst-1", mobile(app_version="1.0"))
        assert first.status_code == 200, first.text
        assert (first.json()["push_token"], first.json()["app_version"]) == (APNS_TOKEN, "1.0")
        again = await _register(client, project, customer, "inst-1", mobile(app_version="1.1"))
        assert again.json()["id"] == first.json()["id"]
        devices = await client.get(
            f"/v1/customers/{customer}/devices", headers=project.admin_headers
        )
        [device] = devices.json()
        assert (device["installation_id"], device["app_version"], device["shared_with"]) == (
            "inst-1",
            "1.1",
            0,
        )
        by_installation = await client.get(
            "/v1/customers/lookup",
            headers=project.admin_headers,
            params={"app_installation": "inst-1"},
        )
        by_token = await client.get(
            "/v1/customers/lookup", headers=project.admin_headers, params={"push_token": APNS_TOKEN}
        )
        assert by_installation.json()["id"] == by_token.json()["id"] == customer
        changelog = await client.get(
            f"/v1/customers/{customer}/changelog", headers=project.admin_headers
        )
        operations = [row["operation"] for row in changelog.json()["items"]]
        assert {"device_registered", "device_linked", "device_updated"} <= set(operations)

    async def test_browser_subscription(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer = await _customer(client, project, "web@example.com")
        response = await _register(client, project, customer, "browser-1", browser())
        assert response.status_code == 200, response.text
        assert response.json()["push_token"] == "https://fcm.googleapis.com/fcm/send/abc123"

    async def test_a_shared_device_shows_on_both_sides(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        parent = await _customer(client, project, "parent@example.com")
        child = await _customer(client, project, "child@example.com")
        device = (await _register(client, project, parent, "tablet", mobile())).json()
        await _register(client, project, child, "tablet", mobile())
        for customer in (parent, child):
            listed = await client.get(
                f"/v1/customers/{customer}/devices", headers=project.admin_headers
            )
            assert [(d["id"], d["shared_with"]) for d in listed.json()] == [(device["id"], 1)]
        users = await client.get(
            f"/v1/devices/{device['id']}/customers", headers=project.admin_headers
        )
        assert {u["customer_id"] for u in users.json()} == {parent, child}

    async def test_a_push_token_moves_to_its_new_installation(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        first = await _customer(client, project, "one@example.com")
        second = await _customer(client, project, "two@example.com")
        await _register(
            client,
            project,
            first,
            "old-phone",
            mobile(FCM_TOKEN, platform="android", push_provider="fcm"),
        )
        await _register(
            client,
            project,
            second,
            "new-phone",
            mobile(FCM_TOKEN, platform="android", push_provider="fcm"),
        )
        found = await client.get(
            "/v1/devices", headers=project.admin_headers, params={"push_token": FCM_TOKEN}
        )
        assert [d["installation_id"] for d in found.json()] == ["new-phone"]
        old = await client.get(
            "/v1/devices", headers=project.admin_headers, params={"installation_id": "old-phone"}
        )
        assert old.json()[0]["push_token"] is None
        owner = await client.get(
            "/v1/customers/lookup", headers=project.admin_headers, params={"push_token": FCM_TOKEN}
        )
        assert owner.json()["id"] == second
        history = await client.get(
            f"/v1/customers/{first}/identifiers/history", headers=project.admin_headers
        )
        assert ("moved_out", FCM_TOKEN) in {
            (h["event"], h["value"]) for h in history.json()["items"]
        }

    async def test_push_can_be_turned_off(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer = await _customer(client, project, "off@example.com")
        device = (await _register(client, project, customer, "inst-off", mobile())).json()
        response = await client.patch(
            f"/v1/devices/{device['id']}",
            headers=project.admin_headers,
            json={"push_enabled": False},
        )
        assert response.json()["push_enabled"] is False
        changelog = await client.get(
            f"/v1/customers/{customer}/changelog", headers=project.admin_headers
        )
        assert changelog.json()["items"][0]["new_value"] == {"push_enabled": False}

    async def test_unlink_removes_the_link_and_its_identifiers(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer = await _customer(client, project, "unlink@example.com")
        await _register(client, project, customer, "inst-u", mobile())
        response = await client.delete(
            f"/v1/customers/{customer}/devices/inst-u", headers=project.admin_headers
        )
        assert response.status_code == 204
        listed = await client.get(
            f"/v1/customers/{customer}/devices", headers=project.admin_headers
        )
        assert listed.json() == []
        lookup = await client.get(
            "/v1/customers/lookup",
            headers=project.admin_headers,
            params={"app_installation": "inst-u"},
        )
        assert lookup.status_code == 404


async def test_concurrent_registrations_of_one_token_leave_it_on_one_installation(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    customers = [await _customer(client, project, f"race{n}@example.com") for n in range(6)]
    responses = await asyncio.gather(
        *(
            _register(client, project, customer, f"race-{n}", mobile())
            for n, customer in enumerate(customers)
        )
    )
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        holders = await connection.fetchval(
            "SELECT count(*) FROM devices WHERE push_token = $1", APNS_TOKEN
        )
        owners = await connection.fetchval(
            "SELECT count(*) FROM customer_identifiers WHERE kind = 'push_token' AND value = $1",
            APNS_TOKEN,
        )
    finally:
        await connection.close()
    assert (holders, owners) == (1, 1)


TABLES = ("devices", "customer_devices", "customer_identifiers", "profile_changelog")


async def _counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        return {t: await connection.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("installation", "body"),
    [
        ("inst-x", mobile("")),
        ("inst-x", mobile("x" * 1025)),
        ("inst-x", mobile("has spaces in the token value")),
        ("inst-x", mobile(platform="symbian")),
        ("inst-x", mobile(push_provider="hms")),
        ("inst-x", browser() | {"web_push": browser()["web_push"] | {"p256dh": "bm90LWEta2V5"}}),
        (
            "inst-x",
            browser()
            | {"web_push": browser()["web_push"] | {"endpoint": "http://insecure.example/x"}},
        ),
        ("inst-x", browser() | {"platform": "ios"}),
        ("has space", mobile()),
        ("x" * 129, mobile()),
        # Found by the spec fuzzing: a NUL in the free text was a 500 (PostgreSQL refused it).
        ("inst-x", mobile(os_version="\x00")),
        ("inst-x", mobile(app_version="5.2\x00")),
        ("inst-x", mobile(app_id="com.acme\x00")),
    ],
)
async def test_bad_registrations_are_422_and_change_nothing(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    database_url: str,
    installation: str,
    body: dict[str, Any],
) -> None:
    customer = await _customer(client, project, "bad@example.com")
    before = await _counts(database_url)
    response = await _register(client, project, customer, installation, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await _counts(database_url) == before


class TestAuthTokensAndMe:
    async def test_a_nul_in_an_apps_own_registration_is_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        """Found by the spec fuzzing: PUT /v1/me/devices/... with a NUL was a 500."""
        customer = await _customer(client, project, "nul@example.com")
        headers = await _publishable(client, project) | {
            "X-Customer-Token": await _token(client, project, customer)
        }
        response = await client.put(
            "/v1/me/devices/inst-nul", headers=headers, json=mobile(os_version="\x00")
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["pointer"] == "/os_version"

    async def test_token_lets_the_app_act_for_its_customer_only(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        alice = await _customer(client, project, "alice@example.com")
        bob = await _customer(client, project, "bob@example.com")
        app_key = await _publishable(client, project)
        alice_token = await _token(client, project, alice)
        await _token(client, project, bob)
        me = await client.get("/v1/me", headers=app_key | {"X-Customer-Token": alice_token})
        assert me.json()["id"] == alice
        assert me.json()["auth_token"]["fingerprint"] == alice_token.split("_")[1]
        registered = await client.put(
            "/v1/me/devices/alice-phone",
            headers=app_key | {"X-Customer-Token": alice_token},
            json=mobile(),
        )
        assert registered.status_code == 200
        bobs = await client.get(f"/v1/customers/{bob}/devices", headers=project.admin_headers)
        alices = await client.get(f"/v1/customers/{alice}/devices", headers=project.admin_headers)
        assert (bobs.json(), [d["installation_id"] for d in alices.json()]) == ([], ["alice-phone"])

    async def test_rotated_and_revoked_tokens_are_refused(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer = await _customer(client, project, "rot@example.com")
        app_key = await _publishable(client, project)
        first = await _token(client, project, customer)
        second = await _token(client, project, customer)
        assert (
            await client.get("/v1/me", headers=app_key | {"X-Customer-Token": first})
        ).status_code == 401
        assert (
            await client.get("/v1/me", headers=app_key | {"X-Customer-Token": second})
        ).status_code == 200
        revoked = await client.delete(
            f"/v1/customers/{customer}/auth-token", headers=project.admin_headers
        )
        assert revoked.status_code == 204
        assert (
            await client.get("/v1/me", headers=app_key | {"X-Customer-Token": second})
        ).status_code == 401
        profile = await client.get(f"/v1/customers/{customer}", headers=project.admin_headers)
        assert profile.json()["auth_token"] is None

    async def test_a_token_of_another_project_is_refused(
        self, client: httpx.AsyncClient, project: ProjectWithKey, other_project: ProjectWithKey
    ) -> None:
        theirs = await _customer(client, other_project, "them@example.com")
        their_token = await _token(client, other_project, theirs)
        app_key = await _publishable(client, project)
        response = await client.get("/v1/me", headers=app_key | {"X-Customer-Token": their_token})
        assert response.status_code == 401

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/customers"),
            ("POST", "/v1/customers/identify"),
            ("GET", "/v1/projects/current"),
            ("GET", "/v1/api-keys"),
            ("GET", "/v1/devices?push_token=x"),
        ],
    )
    async def test_a_publishable_key_reaches_nothing_outside_me(
        self, client: httpx.AsyncClient, project: ProjectWithKey, method: str, path: str
    ) -> None:
        app_key = await _publishable(client, project)
        response = await client.request(
            method, path, headers=app_key, json={"identifiers": {"email": "x@example.com"}}
        )
        assert response.status_code == 403

    async def test_a_secret_key_does_not_open_me(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer = await _customer(client, project, "sec@example.com")
        token = await _token(client, project, customer)
        response = await client.get(
            "/v1/me", headers=project.admin_headers | {"X-Customer-Token": token}
        )
        assert response.status_code == 403

    async def test_an_anonymous_install_is_linked_when_the_customer_logs_in(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        app_key = await _publishable(client, project)
        anonymous = await client.put("/v1/me/devices/fresh-install", headers=app_key, json=mobile())
        assert anonymous.status_code == 200
        users = await client.get(
            f"/v1/devices/{anonymous.json()['id']}/customers", headers=project.admin_headers
        )
        assert users.json() == []
        customer = await _customer(client, project, "login@example.com")
        token = await _token(client, project, customer)
        linked = await client.put(
            "/v1/me/devices/fresh-install",
            headers=app_key | {"X-Customer-Token": token},
            json=mobile(),
        )
        assert linked.json()["id"] == anonymous.json()["id"]
        changelog = await client.get(
            f"/v1/customers/{customer}/changelog", headers=project.admin_headers
        )
        assert "device_linked" in {row["operation"] for row in changelog.json()["items"]}


async def test_merge_moves_devices_to_the_survivor(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    target = await _customer(client, project, "keep@example.com")
    source = await _customer(client, project, "gone@example.com")
    await _register(client, project, target, "shared-tv", mobile(None))
    await _register(client, project, source, "shared-tv", mobile(None))
    await _register(client, project, source, "source-phone", mobile())
    merged = await client.post(
        "/v1/customers/merge",
        headers=project.admin_headers,
        json={"target_id": target, "source_ids": [source]},
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["counts"]["devices"] == {"links_moved": 2}
    listed = await client.get(f"/v1/customers/{target}/devices", headers=project.admin_headers)
    assert sorted((d["installation_id"], d["shared_with"]) for d in listed.json()) == [
        ("shared-tv", 0),
        ("source-phone", 0),
    ]
