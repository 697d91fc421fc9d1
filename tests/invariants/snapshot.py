"""What a project holds at one moment, read straight from the database (and the API for
profiles), so that two moments can be compared: what changed, and whether it was logged."""

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tests.factories import ProjectWithKey

# Profile fields as `GET /v1/customers` shows them, named as the changelog names them.
PROFILE_FIELDS = ("first_name", "last_name", "gender", "area", "birth_date")
CUSTOM_FIELD = "tier"


@dataclass(frozen=True)
class LogRow:
    """A row of the profile changelog, the ID changelog or the consent history."""

    customer_id: str
    operation: str
    field: str | None
    old_value: Any
    new_value: Any


@dataclass(frozen=True)
class Snapshot:
    customers: dict[str, tuple[str, str | None, int]]  # id -> (status, merged_into, version)
    profiles: dict[str, dict[str, Any]]  # active id -> field -> value, as the API shows it
    identifiers: dict[tuple[str, str], str]  # (kind, value) -> owner
    subscriptions: dict[tuple[str, str, str], str]  # (customer, channel, topic) -> status
    links: frozenset[tuple[str, str]]  # (customer, device id)
    devices: dict[str, str]  # device id -> installation id
    transactions: dict[str, str]  # ledger row id -> customer id
    merges: frozenset[tuple[str, str]]  # (target, source)
    changelog: dict[str, LogRow]
    id_history: dict[str, LogRow]  # operation: event, field: kind, old_value: value
    consent_history: dict[str, LogRow]  # field: channel[.topic], new_value: status

    def ids_with(self, status: str) -> set[str]:
        return {cid for cid, (state, _, _) in self.customers.items() if state == status}

    def erased_people(self) -> set[str]:
        """Erased customers and those merged into them: an erase takes the whole tree (the
        merged ones stay `merged` tombstones pointing at the `erased` one)."""
        erased = self.ids_with("erased")
        return {cid for cid in self.customers if self.survivor(cid) in erased}

    def survivor(self, customer_id: str) -> str:
        merged_into = self.customers[customer_id][1]
        while merged_into is not None:
            customer_id, merged_into = merged_into, self.customers[merged_into][1]
        return customer_id

    def stored(self) -> tuple[Any, ...]:
        """Everything a request that fails must leave as it was."""
        return (
            self.customers,
            self.profiles,
            self.identifiers,
            self.subscriptions,
            self.links,
            self.devices,
            self.transactions,
            self.merges,
            self.changelog.keys(),
            self.id_history.keys(),
            self.consent_history.keys(),
        )


# One query per part of the snapshot, each with the project id as $1.
_QUERIES = {
    "customers": "SELECT id, status, merged_into, version FROM customers WHERE project_id = $1",
    "identifiers": "SELECT kind, value, customer_id FROM customer_identifiers "
    "WHERE project_id = $1",
    "subscriptions": "SELECT customer_id, channel, topic, status FROM subscriptions "
    "WHERE project_id = $1",
    "links": "SELECT customer_id, device_id FROM customer_devices WHERE project_id = $1",
    "devices": "SELECT id, installation_id FROM devices WHERE project_id = $1",
    "transactions": "SELECT id, customer_id FROM point_transactions WHERE project_id = $1",
    "merges": "SELECT target_id, source_id FROM customer_merges WHERE project_id = $1",
    "changelog": "SELECT id, customer_id, operation, field, old_value, new_value "
    "FROM profile_changelog WHERE project_id = $1",
    "id_history": "SELECT id, customer_id, event AS operation, kind AS field, "
    "value AS old_value, replaced_by AS new_value FROM identifier_history WHERE project_id = $1",
    "consent_history": "SELECT id, customer_id, 'subscription' AS operation, "
    "channel || CASE WHEN topic = '' THEN '' ELSE '.' || topic END AS field, "
    "old_status AS old_value, new_status AS new_value "
    "FROM subscription_history WHERE project_id = $1",
}


# All of them in one statement (one snapshot, one round trip), each part a JSON array.
_SNAPSHOT = "SELECT " + ", ".join(
    f"(SELECT coalesce(json_agg(part), '[]') FROM ({query}) AS part) AS {name}"
    for name, query in _QUERIES.items()
)


async def take_snapshot(
    db: asyncpg.Pool, client: httpx.AsyncClient, owner: ProjectWithKey
) -> Snapshot:
    profiles, found = await asyncio.gather(
        _profiles(client, owner), db.fetchrow(_SNAPSHOT, owner.project.id)
    )
    assert found is not None
    rows: dict[str, list[dict[str, Any]]] = dict(found)
    return Snapshot(
        customers={
            str(r["id"]): (r["status"], _str(r["merged_into"]), r["version"])
            for r in rows["customers"]
        },
        profiles=profiles,
        identifiers={(r["kind"], r["value"]): str(r["customer_id"]) for r in rows["identifiers"]},
        subscriptions={
            (str(r["customer_id"]), r["channel"], r["topic"]): r["status"]
            for r in rows["subscriptions"]
        },
        links=frozenset((str(r["customer_id"]), str(r["device_id"])) for r in rows["links"]),
        devices={str(r["id"]): r["installation_id"] for r in rows["devices"]},
        transactions={str(r["id"]): str(r["customer_id"]) for r in rows["transactions"]},
        merges=frozenset((str(r["target_id"]), str(r["source_id"])) for r in rows["merges"]),
        changelog=_log_rows(rows["changelog"]),
        id_history=_log_rows(rows["id_history"]),
        consent_history=_log_rows(rows["consent_history"]),
    )


async def _profiles(client: httpx.AsyncClient, owner: ProjectWithKey) -> dict[str, dict[str, Any]]:
    response = await client.get(
        "/v1/customers", params={"limit": 1000}, headers=owner.admin_headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None, "the machine never makes 1000 customers"
    return {item["id"]: flat_profile(item["profile"]) for item in body["items"]}


def flat_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The API's profile as changelog fields: custom fields become `custom_fields.<key>`."""
    flat = {name: profile[name] for name in PROFILE_FIELDS}
    flat[f"custom_fields.{CUSTOM_FIELD}"] = profile["custom_fields"].get(CUSTOM_FIELD)
    return flat


def _log_rows(rows: list[dict[str, Any]]) -> dict[str, LogRow]:
    return {
        str(r["id"]): LogRow(
            customer_id=str(r["customer_id"]),
            operation=r["operation"],
            field=r["field"],
            old_value=r["old_value"],
            new_value=r["new_value"],
        )
        for r in rows
    }


def _str(value: object) -> str | None:
    return None if value is None else str(value)
