"""Random sequences of what integrations do to customers, through the HTTP API, with every
invariant checked against the database and the API after each step.

Identify (every conflict policy), PATCH, explicit merge, devices (shared ones too),
consent, points and erase run in one project per example, drawing identifiers from a
small pool so that collisions, moves and merges happen often. A step is one request, or
a burst of 2-6 sent at the same time and aimed at the same customers and identifiers, so
that their transactions collide in PostgreSQL. The state machine keeps a model of what
it must predict (model.py); each request's answer is judged against it (members.py), a
burst's answers in some serial order (serial.py). Everything else is checked as an
invariant of the stored data (checks.py). docs/testing.md says how to run it longer.
"""

import asyncio
import functools
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

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
from tests.invariants.members import (
    ACCOUNT,
    Erase,
    Identify,
    Member,
    Merge,
    Patch,
    Points,
    RegisterDevice,
    Request,
    SetConsent,
)
from tests.invariants.model import Model
from tests.invariants.runtime import MAX_BURST, InvariantRuntime
from tests.invariants.serial import explain
from tests.invariants.snapshot import CUSTOM_FIELD, Snapshot, take_snapshot

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
# In a burst merge comes first (shrinking goes there) and twice as often: concurrent
# identifies that must end as one customer are what bursts are most about.
burst_policies = st.sampled_from(["merge", "reject", "merge", "reassign"])
decisions = st.lists(
    st.tuples(
        st.sampled_from(["email", "sms", "mobile_push"]),
        st.sampled_from(["subscribed", "unsubscribed", "pending"]),
    ),
    min_size=1,
    max_size=2,
    unique_by=lambda d: d[0],
)
point_kinds = st.sampled_from(["accrual", "redemption", "adjustment"])
LOOKUP = {"email": "email", "phone": "phone"}


def shared_part(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """One or more of a burst's shared identifiers, so that its identifies overlap."""
    parts = {name: st.just(value) for name, value in base.items()}
    return st.sampled_from(sorted(base)).flatmap(
        lambda first: st.fixed_dictionaries(
            {first: parts[first]}, optional={k: v for k, v in parts.items() if k != first}
        )
    )


# How many customers a draw can tell apart; examples make fewer.
CUSTOMER_SLOTS = 16


def customers(ids: list[str]) -> st.SearchStrategy[str]:
    """One of the customers made so far, drawn as a slot whose range does not depend on
    how many there are. A burst's outcome depends on how its transactions interleave
    (a write raced by an erase may create a customer or not), and Hypothesis must see
    the same draws whatever it was: so no draw, and no rule's precondition, may depend
    on more than whether there is a customer at all."""
    # flatmap, not map: Hypothesis then shows the id drawn, not the expression.
    return st.integers(0, CUSTOMER_SLOTS - 1).flatmap(lambda slot: st.just(ids[slot % len(ids)]))


@dataclass(frozen=True)
class Aim:
    """What a request's random parts are drawn from: anything (a request of its own), or
    mostly the same customer and identifiers (a burst, so that its requests collide)."""

    customers: st.SearchStrategy[str]
    identifiers: st.SearchStrategy[dict[str, Any]]
    policies: st.SearchStrategy[str]


# The kinds of request a burst is made of, by what they need; a twin is a request of the
# burst sent once more (the same Idempotency-Key, the same merge, the same erase, ...).
ANY_TIME = ("identify", "identify", "dry_run")
WITH_A_CUSTOMER = ("patch", "points", "erase", "merge", "device", "consent")
TWIN = "twin"
MemberT = TypeVar("MemberT", bound=Member)


class Skipped(Exception):
    """A step after a failure: it draws what it draws, and sends nothing."""


def deferred(step: Callable[..., None]) -> Callable[..., None]:
    """A step whose failure ends the example at its teardown rather than where it happens.

    A burst's outcome depends on how its transactions interleave, so the same draws may
    fail at one step in one run and at a later one (or not at all) in the next, which
    Hypothesis takes for a test that draws inconsistently and gives up on, shrinking
    included. So the steps after a failure still make every draw they would have made,
    and send and check nothing: a failing example draws exactly what a passing one does.
    """

    @functools.wraps(step)
    def run(machine: "CustomerMachine", *args: Any, **kwargs: Any) -> None:
        try:
            step(machine, *args, **kwargs)
        except Skipped:
            pass
        except AssertionError as failure:
            machine.failure = failure

    return run


class CustomerMachine(RuleBasedStateMachine):
    runtime: InvariantRuntime  # set by the test, shared by every example

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        # The step must have written nothing: a problem response, a preview, a replay.
        self.must_write_nothing = False
        self.observed: Snapshot | None = None  # the data after the step, taken by the step
        self.failure: AssertionError | None = None  # the first, raised at teardown
        self.last_points: Points | None = None  # the last point transaction sent
        self.statuses: dict[str, tuple[str, str | None]] = {}  # at the last check
        self.drawers: dict[str, Callable[[st.DataObject, Aim], Member]] = {
            "identify": self.draw_identify,
            "dry_run": self.draw_dry_run,
            "patch": self.draw_patch,
            "merge": self.draw_merge,
            "device": self.draw_device,
            "consent": self.draw_consent,
            "points": self.draw_points,
            "erase": self.draw_erase,
        }

    # -- HTTP --------------------------------------------------------------------------

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.runtime.run(self.send(Request(method, url, **kwargs)))
        assert response.status_code < 500, f"{method} {url}: {response.text}"
        return response

    async def send(self, request: Request) -> httpx.Response:
        headers = {**self.owner.admin_headers, **request.headers}
        return await self.runtime.client.request(
            request.method, request.url, json=request.body, headers=headers
        )

    def play(self, members: Sequence[Member]) -> list[httpx.Response]:
        """Send the requests at the same time, then judge their answers in a serial order
        that explains them and ends where the data is (for one request: its only order)."""
        if self.failure is not None:
            raise Skipped

        async def together() -> list[httpx.Response]:
            return await asyncio.gather(*(self.send(m.request) for m in members))

        responses = self.runtime.run(together())
        self.last_points = next(
            (m for m in reversed(members) if isinstance(m, Points)), self.last_points
        )
        for member, response in zip(members, responses, strict=True):
            assert response.status_code < 500, f"{member.request}: {response.text}"
        after = self.snapshot()
        balances = self.runtime.run(balance_rows(self.runtime.db, self.owner.project.id))
        self.model = explain(
            self.model, members, responses, lambda model: model.problems(after, balances)
        )
        self.must_write_nothing = self.model.writes == 0
        self.observed = after
        return responses

    def play_one(
        self, draw: Callable[[st.DataObject, Aim], MemberT], data: st.DataObject
    ) -> tuple[MemberT, httpx.Response]:
        """A step of one request, drawn from anything."""
        member = draw(data, self.anywhere())
        [response] = self.play([member])
        return member, response

    # -- drawing requests ----------------------------------------------------------------

    def anywhere(self) -> Aim:
        return Aim(customers(self.model.ids), identifier_sets, policies)

    def together(self, data: st.DataObject) -> Aim:
        """One customer most requests of the burst are about, one set of identifiers each
        identify of it shares a part of."""
        base = data.draw(identifier_sets, label="shared identifiers")
        identifiers = st.builds(
            lambda own, shared: {**own, **shared}, identifier_sets, shared_part(base)
        )
        if not self.model.ids:
            return Aim(st.nothing(), identifiers, burst_policies)
        focus = data.draw(customers(self.model.ids), label="focus")
        return Aim(st.just(focus) | customers(self.model.ids), identifiers, burst_policies)

    def draw_identify(self, data: st.DataObject, aim: Aim) -> Identify:
        by_id = bool(self.model.ids) and data.draw(st.booleans(), label="by id")
        return Identify(
            identifiers=data.draw(aim.identifiers, label="identifiers"),
            on_conflict=data.draw(aim.policies, label="on_conflict"),
            profile=data.draw(profiles, label="profile"),
            consent=data.draw(st.sampled_from([None, "subscribed", "unsubscribed"])),
            named=data.draw(aim.customers, label="customer_id") if by_id else None,
        )

    def draw_dry_run(self, data: st.DataObject, aim: Aim) -> Identify:
        identifiers = data.draw(aim.identifiers, label="identifiers")
        on_conflict = data.draw(aim.policies, label="on_conflict")
        return Identify(identifiers, on_conflict, dry_run=True)

    def draw_patch(self, data: st.DataObject, aim: Aim) -> Patch:
        customer_id = data.draw(aim.customers, label="customer")
        identifiers = data.draw(identifier_patches, label="identifiers")
        profile = data.draw(profiles, label="profile")
        if_match = data.draw(st.sampled_from(["none", "current", "stale"]), label="if_match")
        if if_match == "none" or self.model.is_gone(customer_id):
            return Patch(customer_id, identifiers, profile, if_match)
        shown = self.call("GET", f"/v1/customers/{customer_id}").json()
        return Patch(customer_id, identifiers, profile, if_match, shown["version"], shown["id"])

    def draw_merge(self, data: st.DataObject, aim: Aim) -> Merge:
        target = data.draw(aim.customers, label="target")
        sources = data.draw(st.lists(aim.customers, min_size=1, max_size=2), label="sources")
        dry_run = data.draw(st.booleans(), label="dry run")
        return Merge(target, tuple(dict.fromkeys(sources)), dry_run)

    def draw_device(self, data: st.DataObject, aim: Aim) -> RegisterDevice:
        return RegisterDevice(
            customer=data.draw(aim.customers, label="customer"),
            installation=data.draw(st.sampled_from(INSTALLATIONS), label="installation"),
            token=data.draw(st.none() | st.sampled_from(PUSH_TOKENS), label="push token"),
            platform=data.draw(st.sampled_from(["ios", "android"]), label="platform"),
        )

    def draw_consent(self, data: st.DataObject, aim: Aim) -> SetConsent:
        customer_id = data.draw(aim.customers, label="customer")
        return SetConsent(customer_id, tuple(data.draw(decisions, label="decisions")))

    def draw_points(self, data: st.DataObject, aim: Aim) -> Points:
        customer_id = data.draw(aim.customers, label="customer")
        kind = data.draw(point_kinds, label="type")
        amount = data.draw(st.integers(min_value=1, max_value=60), label="amount")
        negative = kind == "adjustment" and data.draw(st.booleans(), label="negative")
        return Points(customer_id, kind, -amount if negative else amount)

    def draw_erase(self, data: st.DataObject, aim: Aim) -> Erase:
        return Erase(data.draw(aim.customers, label="customer"))

    def burst_kinds(self) -> list[str]:
        return [*ANY_TIME, *WITH_A_CUSTOMER] if self.model.ids else list(ANY_TIME)

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
            response = self.call("POST", "/v1/fields", body=body)
            assert response.status_code == 201, response.text
        account = {"code": ACCOUNT, "name": "Bonus points", "precision": 0}
        response = self.call("POST", "/v1/point-accounts", body=account)
        assert response.status_code == 201, response.text
        self.before = self.snapshot()

    # -- one request a step ----------------------------------------------------------------

    @rule(data=st.data())
    @deferred
    def identify(self, data: st.DataObject) -> None:
        member, response = self.play_one(self.draw_identify, data)
        if response.status_code in (200, 201):
            customer_id = response.json()["customer"]["id"]
            self.sent_identifiers_belong_to(customer_id, member.identifiers)

    @rule(data=st.data())
    @deferred
    def identify_dry_run(self, data: st.DataObject) -> None:
        """A preview writes nothing, whatever it would have done."""
        self.play_one(self.draw_dry_run, data)

    @precondition(lambda self: self.model.ids)
    @rule(data=st.data())
    @deferred
    def patch(self, data: st.DataObject) -> None:
        member, response = self.play_one(self.draw_patch, data)
        if response.status_code == 200:
            sent = {k: v for k, v in member.identifiers.items() if v}
            self.sent_identifiers_belong_to(response.json()["id"], sent)

    @precondition(lambda self: self.model.ids)
    @rule(data=st.data())
    @deferred
    def merge(self, data: st.DataObject) -> None:
        self.play_one(self.draw_merge, data)

    @precondition(lambda self: self.model.ids)
    @rule(data=st.data())
    @deferred
    def register_device(self, data: st.DataObject) -> None:
        member, response = self.play_one(self.draw_device, data)
        if response.status_code == 200:
            listed = self.call("GET", f"/v1/customers/{member.customer}/devices").json()
            assert member.installation in {d["installation_id"] for d in listed}

    @precondition(lambda self: self.model.ids)
    @rule(data=st.data())
    @deferred
    def set_consent(self, data: st.DataObject) -> None:
        member, response = self.play_one(self.draw_consent, data)
        if response.status_code == 200:
            stored = self.call("GET", member.url).json()
            current = {s["channel"]: s["status"] for s in stored if s["topic"] is None}
            for channel, status in member.decisions:
                assert current[channel] == status

    @precondition(lambda self: self.model.ids)
    @rule(data=st.data())
    @deferred
    def points(self, data: st.DataObject) -> None:
        self.play_one(self.draw_points, data)

    @precondition(lambda self: self.last_points is not None)
    @rule()
    @deferred
    def replay_points(self) -> None:
        """The last point transaction sent, again with its Idempotency-Key: the first answer,
        byte for byte, writing nothing, if that was accepted (the customer erased since:
        a 404, an erase forgets it); a refused one is not remembered and runs anew. (Not
        "the last accepted": which was may depend on a burst's interleaving, see
        `customers`.)"""
        assert self.last_points is not None
        self.play([self.last_points])

    @precondition(lambda self: self.model.ids)
    @rule(data=st.data())
    @deferred
    def erase(self, data: st.DataObject) -> None:
        self.play_one(self.draw_erase, data)

    # -- several requests at the same time ---------------------------------------------------

    @rule(data=st.data())
    @deferred
    def burst(self, data: st.DataObject) -> None:
        """2-6 requests of any kind at the same time, about the same customer and sharing
        identifiers: merges, erases, PATCHes, points and devices race each other."""
        self.play_burst(data, self.burst_kinds())

    @rule(data=st.data())
    @deferred
    def identify_burst(self, data: st.DataObject) -> None:
        """2-6 identifies of overlapping identifiers at the same time, most of them with
        on_conflict=merge: whatever they find, they must end as one customer each."""
        self.play_burst(data, ["identify"])

    def play_burst(self, data: st.DataObject, kinds: list[str]) -> None:
        aim = self.together(data)
        members: list[Member] = []
        for kind in data.draw(
            st.lists(st.sampled_from([*kinds, TWIN]), min_size=2, max_size=MAX_BURST),
            label="burst",
        ):
            if kind == TWIN and members:
                members.append(data.draw(st.sampled_from(members), label="twin of"))
            else:
                members.append(self.drawers[kinds[0] if kind == TWIN else kind](data, aim))
        self.play(members)
        self.runtime.bursts += 1
        self.runtime.burst_requests += len(members)

    def teardown(self) -> None:
        """The failure, if a step failed, as one kind of error whatever its symptom: a
        concurrency bug shows as a 500 in one run and a 409 or a wrong balance in the next,
        and Hypothesis shrinks each kind of error separately (slowly) unless they are one."""
        if self.failure is not None:
            where = "".join(traceback.format_tb(self.failure.__traceback__))
            raise AssertionError(f"{self.failure}\n\nat:\n{where}") from None

    # -- after every step --------------------------------------------------------------

    @invariant()
    @deferred
    def invariants_hold(self) -> None:
        if self.failure is not None:
            return  # nothing was sent since (see `deferred`)
        after = self.observed or self.snapshot()
        problems: list[str] = []
        if self.must_write_nothing and after.stored() != self.before.stored():
            problems.append("a request that failed (or a preview, or a replay) changed data")
        problems += changelog_problems(self.before, after)
        # Reads by id follow the statuses checked above: read them all again only when a
        # status or a merge pointer moved (or a customer was made).
        statuses = {cid: state[:2] for cid, state in after.customers.items()}
        read = [] if statuses == self.statuses else self.model.ids
        ownership, balances, reads = self.runtime.run(self.read_all(after, read))
        problems += ownership
        problems += balance_problems(balances)
        problems += self.model.problems(after, balances)
        for customer_id, response in zip(read, reads, strict=True):
            problems += self.read_problems(customer_id, response)
        self.statuses = statuses
        self.runtime.checks += 1
        self.before, self.observed, self.must_write_nothing = after, None, False
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

    def read_problems(self, customer_id: str, response: httpx.Response) -> list[str]:
        """A merged id reads as its survivor, an erased one (or one merged into it) is 404."""
        model = self.model
        root = model.root(customer_id)
        if root in model.erased:
            if response.status_code == 404:
                return []
            return [f"erased {customer_id} reads {response.status_code}"]
        if response.status_code != 200:
            return [f"{customer_id} reads {response.status_code}: {response.text}"]
        shown = response.json()
        problems = []
        if shown["id"] != root or shown["status"] != "active":
            problems.append(f"{customer_id} reads as {shown['id']} {shown['status']}, not {root}")
        if set(shown["merged_ids"]) != model.merged_into(root):
            problems.append(f"{root} shows merged_ids {shown['merged_ids']}")
        return problems

    # -- helpers -----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return self.runtime.run(take_snapshot(self.runtime.db, self.runtime.client, self.owner))

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
        f"invariants: {runtime.examples} examples, {runtime.checks - runtime.examples} steps "
        f"({runtime.bursts} bursts of {runtime.burst_requests} concurrent requests), "
        f"every invariant checked after each, in {time.monotonic() - started:.1f} s"
    )
