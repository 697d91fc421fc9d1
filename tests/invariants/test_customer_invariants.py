"""Random sequences of what integrations do to customers, through the HTTP API, with every
invariant checked against the database and the API after each step.

Identify (every conflict policy), PATCH, explicit merge, devices (shared ones too),
consent, points and erase run in one project per example, drawing identifiers from a
small pool so that collisions, moves and merges happen often. The state machine keeps a
model only of what it needs to predict: which customers exist, which were merged into
which, which were erased, and each survivor's points. Everything else is checked as an
invariant of the stored data (see checks.py). docs/testing.md says how to run it longer.
"""

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.factories import ProjectWithKey
from tests.invariants.checks import (
    balance_problems,
    balance_rows,
    changelog_problems,
    ownership_problems,
)
from tests.invariants.runtime import InvariantRuntime
from tests.invariants.snapshot import CUSTOM_FIELD, Snapshot, flat_profile, take_snapshot

# CI's budget; CDP_INVARIANT_EXAMPLES / CDP_INVARIANT_STEPS run it longer (docs/testing.md).
EXAMPLES = int(os.environ.get("CDP_INVARIANT_EXAMPLES", "15"))
STEPS = int(os.environ.get("CDP_INVARIANT_STEPS", "30"))
# Derandomized by default (CI finds the same sequences every run); CDP_INVARIANT_RANDOM=1
# explores new ones, and a failure then prints the blob that replays it.
RANDOM = os.environ.get("CDP_INVARIANT_RANDOM") == "1"
INVARIANT_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    derandomize=not RANDOM,
    database=None,
    print_blob=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.reuse, Phase.generate]
    if os.environ.get("CDP_INVARIANT_NO_SHRINK") == "1"
    else list(Phase),
)

# A small pool, several spellings of each value: the same person keeps coming back.
EMAILS = ("ann@example.com", "bob@example.com", "cy@example.com", "di@example.com")
PHONES = ("+49 30 1234561", "+49 30 1234562", "+49 30 1234563")
CARDS = ("CARD-1", "CARD-2", "CARD-3", "CARD-4")
CRM_IDS = ("CRM-1", "CRM-2")
INSTALLATIONS = ("install-a", "install-b", "install-c")
PUSH_TOKENS = ("token-aaaaaaaaaaaaaaaa", "token-bbbbbbbbbbbbbbbb", "token-cccccccccccccccc")
ACCOUNT = "bonus"

emails = st.sampled_from(EMAILS).flatmap(
    lambda e: st.sampled_from([e, e.upper(), f"  {e.capitalize()} "])
)
phones = st.sampled_from(PHONES).flatmap(lambda p: st.sampled_from([p, p.replace(" ", "")]))
cards = st.lists(st.sampled_from(CARDS), max_size=2, unique=True)
crm_ids = st.sampled_from(CRM_IDS)
_identifier_values = {
    "email": emails,
    "phone": phones,
    "discount_cards": st.lists(st.sampled_from(CARDS), min_size=1, max_size=2, unique=True),
    "external": st.fixed_dictionaries({"crm_id": crm_ids}),
}
# At least one identifier (identify needs one), often several: drawn, never filtered.
identifier_sets = st.builds(
    lambda first, more: {**more, **first},
    st.one_of(*(st.fixed_dictionaries({k: v}) for k, v in _identifier_values.items())),
    st.fixed_dictionaries({}, optional=_identifier_values),
)
identifier_patches = st.fixed_dictionaries(
    {},
    optional={
        "email": st.none() | emails,
        "phone": st.none() | phones,
        "discount_cards": cards,
        "external": st.fixed_dictionaries({"crm_id": st.none() | crm_ids}),
    },
)
profiles = st.fixed_dictionaries(
    {},
    optional={
        "first_name": st.sampled_from(["Ann", "Bea", None]),
        "last_name": st.sampled_from(["Berg", "Stein", None]),
        "gender": st.sampled_from(["female", "male", "unknown", None]),
        "area": st.sampled_from(["Berlin", "Hamburg", None]),
        "birth_date": st.sampled_from(["1990-01-31", "1985-06-15", None]),
        "custom_fields": st.fixed_dictionaries(
            {CUSTOM_FIELD: st.sampled_from(["gold", "silver", None])}
        ),
    },
)
policies = st.sampled_from(["reject", "merge", "reassign"])
decisions = st.lists(
    st.fixed_dictionaries(
        {
            "channel": st.sampled_from(["email", "sms", "mobile_push"]),
            "status": st.sampled_from(["subscribed", "unsubscribed", "pending"]),
        }
    ),
    min_size=1,
    max_size=2,
    unique_by=lambda d: d["channel"],
)
LOOKUP = {"email": "email", "phone": "phone"}


class CustomerMachine(RuleBasedStateMachine):
    runtime: InvariantRuntime  # set by the test, shared by every example

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []  # every customer made, in order
        self.parent: dict[str, str] = {}  # merged id -> the customer it was merged into
        self.erased: set[str] = set()  # erased survivors (those merged into them stay merged)
        self.balance: dict[str, Decimal] = {}  # live customer -> available points
        self.last_points: tuple[str, dict[str, Any], str, httpx.Response] | None = None
        # The step must have written nothing: a problem response, a preview, a replay.
        self.must_write_nothing = False
        self.statuses: dict[str, tuple[str, str | None]] = {}  # at the last check

    # -- the model -------------------------------------------------------------------

    def root(self, customer_id: str) -> str:
        while customer_id in self.parent:
            customer_id = self.parent[customer_id]
        return customer_id

    def merged_into(self, root: str) -> set[str]:
        return {cid for cid in self.ids if cid != root and self.root(cid) == root}

    def is_live(self, customer_id: str) -> bool:
        return customer_id not in self.parent and customer_id not in self.erased

    # -- HTTP --------------------------------------------------------------------------

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.owner.admin_headers, **kwargs.pop("headers", {})}
        response = self.runtime.run(
            self.runtime.client.request(method, url, headers=headers, **kwargs)
        )
        assert response.status_code < 500, f"{method} {url}: {response.text}"
        return response

    def expect(self, response: httpx.Response, *allowed: int) -> None:
        assert response.status_code in allowed, (
            f"{response.request.method} {response.request.url}: {response.status_code} "
            f"not in {allowed}: {response.text}"
        )
        self.must_write_nothing = response.status_code >= 400

    def pick(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.ids), label="customer")

    # -- setup -------------------------------------------------------------------------

    @initialize()
    def new_project(self) -> None:
        """A project of its own: every example starts from nothing."""
        self.owner: ProjectWithKey = self.runtime.new_project(f"inv-{uuid.uuid4().hex[:16]}")
        self.runtime.examples += 1
        for body in (
            {"key": "crm_id", "type": "unique_id"},
            {"key": CUSTOM_FIELD, "type": "string"},
        ):
            self.expect(self.call("POST", "/v1/fields", json=body), 201)
        account = {"code": ACCOUNT, "name": "Bonus points", "precision": 0}
        self.expect(self.call("POST", "/v1/point-accounts", json=account), 201)
        self.before = self.snapshot()

    # -- rules -------------------------------------------------------------------------

    @rule(
        identifiers=identifier_sets,
        profile=profiles,
        on_conflict=policies,
        consent=st.sampled_from([None, "subscribed", "unsubscribed"]),
        by_id=st.booleans(),
        data=st.data(),
    )
    def identify(
        self,
        identifiers: dict[str, Any],
        profile: dict[str, Any],
        on_conflict: str,
        consent: str | None,
        by_id: bool,
        data: st.DataObject,
    ) -> None:
        named = self.pick(data) if by_id and self.ids else None
        sent = {**identifiers, **({"customer_id": named} if named else {})}
        body: dict[str, Any] = {"identifiers": sent, "profile": profile, "on_conflict": on_conflict}
        if consent is not None and "email" in identifiers:
            # Consent with the email that reaches it, so that merges meet consent often.
            body["subscriptions"] = [{"channel": "email", "status": consent}]
        response = self.call("POST", "/v1/customers/identify", json=body)
        if named is not None and self.root(named) in self.erased:
            self.expect(response, 404)
            return
        allowed = (200, 201) if on_conflict == "merge" else (200, 201, 409)
        self.expect(response, *allowed)
        if self.must_write_nothing:
            return
        answer = response.json()
        customer_id = answer["customer"]["id"]
        if response.status_code == 201:
            assert answer["result"] == "created"
            assert customer_id not in self.ids
            self.ids.append(customer_id)
        for merged in answer["merged_ids"]:
            assert self.is_live(merged), f"identify merged {merged}, not a live customer"
            self.merge_model(customer_id, merged)
        assert self.is_live(customer_id), f"identify answered with {customer_id}"
        if named is not None:
            assert customer_id == self.root(named), "identify by id answers with the survivor"
        self.sent_identifiers_belong_to(customer_id, identifiers)

    @rule(identifiers=identifier_sets, on_conflict=policies)
    def identify_dry_run(self, identifiers: dict[str, Any], on_conflict: str) -> None:
        """A preview writes nothing, whatever it would have done."""
        body = {"identifiers": identifiers, "on_conflict": on_conflict}
        response = self.call("POST", "/v1/customers/identify?dry_run=true", json=body)
        self.expect(response, 200, 201, 409)
        self.must_write_nothing = True

    @precondition(lambda self: self.ids)
    @rule(
        data=st.data(),
        identifiers=identifier_patches,
        profile=profiles,
        if_match=st.sampled_from(["none", "current", "stale"]),
    )
    def patch(
        self,
        data: st.DataObject,
        identifiers: dict[str, Any],
        profile: dict[str, Any],
        if_match: str,
    ) -> None:
        customer_id = self.pick(data)
        root = self.root(customer_id)
        headers: dict[str, str] = {}
        if if_match != "none" and root not in self.erased:
            version = self.call("GET", f"/v1/customers/{customer_id}").json()["version"]
            headers["If-Match"] = f'"{version if if_match == "current" else version - 1}"'
        body = {"identifiers": identifiers, "profile": profile}
        response = self.call("PATCH", f"/v1/customers/{customer_id}", json=body, headers=headers)
        if root in self.erased:
            self.expect(response, 404)
            return
        if if_match == "stale":
            self.expect(response, 412)
            return
        self.expect(response, 200, 409, 422)
        if self.must_write_nothing:
            return
        answer = response.json()
        assert answer["id"] == root, "a PATCH of a merged id changes the survivor"
        shown = flat_profile(answer["profile"])
        for name, value in flat_profile_patch(profile).items():
            assert shown[name] == value, f"PATCH set {name}={value!r}, answer shows {shown[name]!r}"
        self.sent_identifiers_belong_to(root, {k: v for k, v in identifiers.items() if v})
        shown_ids = answer["identifiers"]
        for name in ("email", "phone"):
            if name in identifiers and identifiers[name] is None:
                assert shown_ids[name] is None, f"PATCH removed the {name}"
        if "discount_cards" in identifiers:
            assert sorted(shown_ids["discount_cards"]) == sorted(identifiers["discount_cards"])

    @precondition(lambda self: len(self.ids) >= 2)
    @rule(data=st.data(), dry_run=st.booleans())
    def merge(self, data: st.DataObject, dry_run: bool) -> None:
        target = self.pick(data)
        sources = data.draw(
            st.lists(st.sampled_from(self.ids), min_size=1, max_size=2, unique=True),
            label="sources",
        )
        body = {"target_id": target, "source_ids": sources}
        suffix = "?dry_run=true" if dry_run else ""
        response = self.call("POST", f"/v1/customers/merge{suffix}", json=body)
        if target in sources:
            self.expect(response, 422)
        elif not all(self.is_live(c) for c in [target, *sources]):
            self.expect(response, 409)
        else:
            self.expect(response, 200)
            answer = response.json()
            assert answer["survivor"]["id"] == target
            assert sorted(answer["merged_ids"]) == sorted(sources)
            if dry_run:
                self.must_write_nothing = True  # nothing may be written
            else:
                for source in sources:
                    self.merge_model(target, source)

    @precondition(lambda self: self.ids)
    @rule(
        data=st.data(),
        installation=st.sampled_from(INSTALLATIONS),
        token=st.none() | st.sampled_from(PUSH_TOKENS),
        platform=st.sampled_from(["ios", "android"]),
    )
    def register_device(
        self, data: st.DataObject, installation: str, token: str | None, platform: str
    ) -> None:
        customer_id = self.pick(data)
        body: dict[str, Any] = {
            "kind": "mobile_app",
            "app_id": "com.acme.shop",
            "platform": platform,
        }
        if token is not None:
            body |= {"push_provider": "fcm", "push_token": token}
        url = f"/v1/customers/{customer_id}/devices/{installation}"
        response = self.call("PUT", url, json=body)
        if self.root(customer_id) in self.erased:
            self.expect(response, 404)
            return
        self.expect(response, 200)
        listed = self.call("GET", f"/v1/customers/{customer_id}/devices").json()
        assert installation in {d["installation_id"] for d in listed}

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), wanted=decisions)
    def set_consent(self, data: st.DataObject, wanted: list[dict[str, str]]) -> None:
        customer_id = self.pick(data)
        url = f"/v1/customers/{customer_id}/subscriptions"
        response = self.call("PUT", url, json={"subscriptions": wanted})
        if self.root(customer_id) in self.erased:
            self.expect(response, 404)
            return
        # 422: no way to reach the customer on the channel, or subscribed -> pending.
        self.expect(response, 200, 422)
        if self.must_write_nothing:
            return
        current = {
            s["channel"]: s["status"] for s in self.call("GET", url).json() if s["topic"] is None
        }
        for decision in wanted:
            assert current[decision["channel"]] == decision["status"]

    @precondition(lambda self: self.ids)
    @rule(
        data=st.data(),
        kind=st.sampled_from(["accrual", "redemption", "adjustment"]),
        amount=st.integers(min_value=1, max_value=60),
        negative=st.booleans(),
    )
    def points(self, data: st.DataObject, kind: str, amount: int, negative: bool) -> None:
        customer_id = self.pick(data)
        root = self.root(customer_id)
        signed = -amount if kind == "redemption" or (kind == "adjustment" and negative) else amount
        body = {
            "account": ACCOUNT,
            "type": kind,
            "amount": signed if kind == "adjustment" else amount,
        }
        key = uuid.uuid4().hex
        url = f"/v1/customers/{customer_id}/points/transactions"
        response = self.call("POST", url, json=body, headers={"Idempotency-Key": key})
        if root in self.erased:
            self.expect(response, 404)
            return
        available = self.balance.get(root, Decimal(0))
        if available + signed < 0:
            self.expect(response, 409)  # a spend above the balance is refused
            return
        self.expect(response, 201)
        self.balance[root] = available + signed
        self.last_points = (url, body, key, response)

    @precondition(lambda self: self.last_points is not None)
    @rule()
    def replay_points(self) -> None:
        """A retry with the same Idempotency-Key and body is the first answer, byte for byte,
        and writes nothing; unless the customer was erased since, which forgets it."""
        assert self.last_points is not None
        url, body, key, first = self.last_points
        response = self.call("POST", url, json=body, headers={"Idempotency-Key": key})
        if self.root(first.json()["customer_id"]) in self.erased:
            self.expect(response, 404)
            return
        assert response.status_code == first.status_code
        assert response.content == first.content
        self.must_write_nothing = True  # nothing may be written

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def erase(self, data: st.DataObject) -> None:
        customer_id = self.pick(data)
        root = self.root(customer_id)
        response = self.call("DELETE", f"/v1/customers/{customer_id}")
        if root in self.erased:
            self.expect(response, 404)
            return
        self.expect(response, 200)
        answer = response.json()
        everyone = {root, *self.merged_into(root)}
        assert answer["id"] == root
        assert set(answer["erased_ids"]) == everyone
        self.erased.add(root)

    # -- after every step --------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        after = self.snapshot()
        problems: list[str] = []
        if self.must_write_nothing and after.stored() != self.before.stored():
            problems.append("a request that failed (or a preview, or a replay) changed data")
        problems += changelog_problems(self.before, after)
        # Reads by id follow the statuses checked above: read them all again only when a
        # status or a merge pointer moved (or a customer was made).
        statuses = {cid: state[:2] for cid, state in after.customers.items()}
        read = [] if statuses == self.statuses else self.ids
        ownership, balances, reads = self.runtime.run(self.read_all(after, read))
        problems += ownership
        problems += balance_problems(balances)
        problems += self.model_problems(after, balances)
        for customer_id, response in zip(read, reads, strict=True):
            problems += self.read_problems(customer_id, response)
        self.statuses = statuses
        self.runtime.checks += 1
        self.before, self.must_write_nothing = after, False
        assert not problems, "\n".join(problems)

    async def read_all(
        self, after: Snapshot, read: list[str]
    ) -> tuple[list[str], dict[tuple[str, str], dict[str, Any]], list[httpx.Response]]:
        """The database checks and a read of every id the model knows, side by side."""
        db, client, project_id = self.runtime.db, self.runtime.client, self.owner.project.id
        headers = self.owner.admin_headers
        ownership, balances, reads = await asyncio.gather(
            ownership_problems(db, project_id, after),
            balance_rows(db, project_id),
            asyncio.gather(*(client.get(f"/v1/customers/{cid}", headers=headers) for cid in read)),
        )
        return ownership, balances, reads

    def model_problems(
        self, after: Snapshot, balances: dict[tuple[str, str], dict[str, Any]]
    ) -> list[str]:
        """The stored statuses and balances are the model's."""
        problems: list[str] = []
        for customer_id in self.ids:
            status, merged_into, _ = after.customers[customer_id]
            expected = (
                "merged"
                if customer_id in self.parent
                else ("erased" if customer_id in self.erased else "active")
            )
            if status != expected or (
                expected == "merged" and merged_into != self.parent[customer_id]
            ):
                problems.append(f"{customer_id} is {status}/{merged_into}, model: {expected}")
        available = {c: row["available"] for (c, _), row in balances.items()}
        for customer_id, points in self.balance.items():
            if self.is_live(customer_id) and available.get(customer_id, 0) != points:
                problems.append(f"{customer_id} has {available.get(customer_id)}, model {points}")
        return problems

    def read_problems(self, customer_id: str, response: httpx.Response) -> list[str]:
        """A merged id reads as its survivor, an erased one (or one merged into it) is 404."""
        root = self.root(customer_id)
        if root in self.erased:
            if response.status_code == 404:
                return []
            return [f"erased {customer_id} reads {response.status_code}"]
        if response.status_code != 200:
            return [f"{customer_id} reads {response.status_code}: {response.text}"]
        shown = response.json()
        problems = []
        if shown["id"] != root or shown["status"] != "active":
            problems.append(f"{customer_id} reads as {shown['id']} {shown['status']}, not {root}")
        if set(shown["merged_ids"]) != self.merged_into(root):
            problems.append(f"{root} shows merged_ids {shown['merged_ids']}")
        return problems

    # -- helpers -----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return self.runtime.run(take_snapshot(self.runtime.db, self.runtime.client, self.owner))

    def merge_model(self, target: str, source: str) -> None:
        self.parent[source] = target
        moved = self.balance.pop(source, Decimal(0))
        self.balance[target] = self.balance.get(target, Decimal(0)) + moved

    def sent_identifiers_belong_to(self, customer_id: str, identifiers: dict[str, Any]) -> None:
        """After a write, lookup by each identifier sent (as it was spelled) finds the customer."""
        sent: list[tuple[str, str]] = [
            (LOOKUP[name], identifiers[name]) for name in LOOKUP if identifiers.get(name)
        ]
        sent += [("discount_card", card) for card in identifiers.get("discount_cards") or []]
        crm_id = (identifiers.get("external") or {}).get("crm_id")
        if crm_id:
            sent.append(("external.crm_id", crm_id))
        client, headers = self.runtime.client, self.owner.admin_headers

        async def lookups() -> list[httpx.Response]:
            return await asyncio.gather(
                *(
                    client.get("/v1/customers/lookup", params={p: v}, headers=headers)
                    for p, v in sent
                )
            )

        for (parameter, value), found in zip(sent, self.runtime.run(lookups()), strict=True):
            assert found.status_code == 200, f"lookup {parameter}={value!r}: {found.text}"
            owner = found.json()["id"]
            assert owner == customer_id, f"{parameter}={value!r} belongs to {owner}"


def flat_profile_patch(profile: dict[str, Any]) -> dict[str, Any]:
    """The fields a profile patch sets, named as the changelog names them."""
    flat = {name: value for name, value in profile.items() if name != "custom_fields"}
    for key, value in (profile.get("custom_fields") or {}).items():
        flat[f"custom_fields.{key}"] = value
    return flat


@pytest.fixture
def runtime(database_url: str) -> Iterator[InvariantRuntime]:
    running = InvariantRuntime(database_url)
    try:
        yield running
    finally:
        running.close()


@pytest.mark.timeout(max(300, EXAMPLES * STEPS))
def test_customer_invariants_hold_after_every_step(runtime: InvariantRuntime) -> None:
    class Machine(CustomerMachine):
        pass

    Machine.runtime = runtime
    started = time.monotonic()
    run_state_machine_as_test(Machine, settings=INVARIANT_SETTINGS)
    # What this run covered (shown with `pytest -s` or `-rP`): the figures docs/testing.md quotes.
    print(  # noqa: T201 (the run's coverage, for whoever runs it longer)
        f"invariants: {runtime.examples} examples, {runtime.checks - runtime.examples} steps, "
        f"every invariant checked after each, in {time.monotonic() - started:.1f} s"
    )
