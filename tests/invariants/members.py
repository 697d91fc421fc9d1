"""The requests the state machine sends, each with the judge of its answer.

A member is one request, built from the model before it is sent. `judge` says whether an
answer is the one the request gets when it runs on the model as it stands (raising
`Refuted` if not) and moves the model on as the answer says. A step of one request
judges it once; a burst of concurrent requests judges them in every serial order until
one explains all the answers (serial.py). So a judge reads nothing but the model and the
answer: no clock, no other request, no database.
"""

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import httpx

from tests.invariants.model import Answer, Model, Ref
from tests.invariants.snapshot import flat_profile

ACCOUNT = "bonus"


class Refuted(AssertionError):
    """The answer is not what the request gets at this point of the order being tried."""


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.method} {self.url} {self.body or ''}"


class Member(Protocol):
    @property
    def request(self) -> Request: ...

    def judge(self, model: Model, response: httpx.Response) -> None: ...


def expect(response: httpx.Response, *allowed: int) -> None:
    if response.status_code not in allowed:
        raise Refuted(f"{response.status_code} not in {allowed}: {response.text}")


def check(holds: bool, message: str) -> None:
    if not holds:
        raise Refuted(message)


def wrote(model: Model, response: httpx.Response) -> None:
    """Count an accepted answer as a write: a later If-Match may see the version it moved,
    and a step whose requests wrote nothing must have changed nothing."""
    if response.status_code < 400:
        model.writes += 1


# -- identifiers as sent and as shown ----------------------------------------------------


def sent_refs(identifiers: dict[str, Any]) -> set[Ref]:
    """The identifiers a request sends, as stored. The machine's pool spells emails with
    other cases and spaces around, phones with spaces: that is all there is to undo."""
    refs: set[Ref] = set()
    if identifiers.get("email"):
        refs.add(("email", identifiers["email"].strip().lower()))
    if identifiers.get("phone"):
        refs.add(("phone", identifiers["phone"].replace(" ", "")))
    refs |= {("discount_card", card) for card in identifiers.get("discount_cards") or []}
    for key, value in (identifiers.get("external") or {}).items():
        if value:
            refs.add((f"external:{key}", value))
    return refs


def shown_refs(shown: dict[str, Any]) -> set[Ref]:
    """The identifiers an answer shows its customer holding (`identifiers` of a customer)."""
    return sent_refs(shown)


# -- the members ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Identify:
    identifiers: dict[str, Any]
    on_conflict: str
    profile: dict[str, Any] = field(default_factory=dict)
    consent: str | None = None
    named: str | None = None  # sent as customer_id
    dry_run: bool = False

    @property
    def request(self) -> Request:
        sent = {**self.identifiers, **({"customer_id": self.named} if self.named else {})}
        body: dict[str, Any] = {
            "identifiers": sent,
            "profile": self.profile,
            "on_conflict": self.on_conflict,
        }
        if self.consent is not None and "email" in self.identifiers:
            # Consent with the email that reaches it, so that merges meet consent often.
            body["subscriptions"] = [{"channel": "email", "status": self.consent}]
        suffix = "?dry_run=true" if self.dry_run else ""
        return Request("POST", f"/v1/customers/identify{suffix}", body)

    def judge(self, model: Model, response: httpx.Response) -> None:
        if self.named is not None and model.is_gone(self.named):
            expect(response, 404)
            return
        sent = sent_refs(self.identifiers)
        matches = model.matches(sent, self.named)
        expect(response, *identify_statuses(self.on_conflict, len(matches)))
        if response.status_code == 409 or self.dry_run:
            return  # a conflict and a preview write nothing
        answer = response.json()
        customer_id = answer["customer"]["id"]
        shown = shown_refs(answer["customer"]["identifiers"])
        check(sent <= shown, f"identify answered with {customer_id} holding {shown}, not {sent}")
        if not matches:
            check(customer_id not in model.ids, f"identify created {customer_id} twice")
            model.ids.append(customer_id)
        else:
            merged = set(answer["merged_ids"])
            expected = matches - {customer_id} if self.on_conflict == "merge" else set()
            check(customer_id in matches, f"identify answered with {customer_id}, not {matches}")
            check(merged == expected, f"identify merged {merged}, not {expected}")
        if self.named is not None:
            check(customer_id == model.root(self.named), "identify by id answers the survivor")
        for merged_id in answer["merged_ids"]:
            model.merge(customer_id, merged_id)
        model.hold(customer_id, shown)
        wrote(model, response)


def identify_statuses(on_conflict: str, matches: int) -> tuple[int, ...]:
    """What identify answers when its identifiers (and id) find this many customers."""
    if matches == 0:
        return (201,)
    if matches == 1 or on_conflict == "merge":
        return (200,)
    # Reassign is refused when it would take a customer's last identifier (devices count).
    return (409,) if on_conflict == "reject" else (200, 409)


@dataclass(frozen=True)
class Patch:
    customer: str
    identifiers: dict[str, Any]
    profile: dict[str, Any]
    if_match: str  # "none", "current" or "stale"
    version: int | None = None  # the survivor's, read just before the request was built
    survivor: str | None = None  # whose version it is

    @property
    def request(self) -> Request:
        headers: dict[str, str] = {}
        if self.version is not None:
            sent = self.version if self.if_match == "current" else self.version - 1
            headers["If-Match"] = f'"{sent}"'
        body = {"identifiers": self.identifiers, "profile": self.profile}
        return Request("PATCH", f"/v1/customers/{self.customer}", body, headers)

    def judge(self, model: Model, response: httpx.Response) -> None:
        root = model.root(self.customer)
        if root in model.erased:
            expect(response, 404)
            return
        expect(response, *self.statuses(model, root))
        if response.status_code >= 400:
            return
        answer = response.json()
        check(answer["id"] == root, "a PATCH of a merged id changes the survivor")
        shown = flat_profile(answer["profile"])
        for name, value in flat_profile_patch(self.profile).items():
            check(shown[name] == value, f"PATCH set {name}={value!r}, shows {shown[name]!r}")
        held = shown_refs(answer["identifiers"])
        check(sent_refs(self.identifiers) <= held, f"PATCH answered holding {held}")
        for name in ("email", "phone"):
            if name in self.identifiers and self.identifiers[name] is None:
                check(answer["identifiers"][name] is None, f"PATCH removed the {name}")
        if "discount_cards" in self.identifiers:
            shown_cards = sorted(answer["identifiers"]["discount_cards"])
            check(shown_cards == sorted(self.identifiers["discount_cards"]), "PATCH set cards")
        model.hold(root, held)
        wrote(model, response)

    def statuses(self, model: Model, root: str) -> tuple[int, ...]:
        """409 for an identifier someone else holds; 422 only if no identifier might be
        left (devices count, and the model does not know them)."""
        held = model.held_by(root)
        additions = sent_refs(self.identifiers) - held
        if any(model.owners.get(ref, root) != root for ref in additions):
            edits: tuple[int, ...] = (409,)
        elif not additions and held <= self.removals(held):
            edits = (200, 422)
        else:
            edits = (200,)
        if self.version is None:
            return edits
        if root != self.survivor:
            # The version was the old survivor's: the new one's may differ, or be equal.
            return (*edits, 412)
        if self.if_match == "stale":
            return (412,)
        # Another write of the burst ordered before this one may have moved the version.
        return (*edits, 412) if model.writes else edits

    def removals(self, held: set[Ref]) -> set[Ref]:
        """What of `held` the patch takes away (replaced single values, unlisted cards)."""
        sent = sent_refs(self.identifiers)
        single = {
            "email": "email" in self.identifiers,
            "phone": "phone" in self.identifiers,
            "external:crm_id": "crm_id" in (self.identifiers.get("external") or {}),
        }
        cards = "discount_cards" in self.identifiers
        return {
            ref
            for ref in held - sent
            if single.get(ref[0]) or (cards and ref[0] == "discount_card")
        }


def flat_profile_patch(profile: dict[str, Any]) -> dict[str, Any]:
    """The fields a profile patch sets, named as the changelog names them."""
    flat = {name: value for name, value in profile.items() if name != "custom_fields"}
    for key, value in (profile.get("custom_fields") or {}).items():
        flat[f"custom_fields.{key}"] = value
    return flat


@dataclass(frozen=True)
class Merge:
    target: str
    sources: tuple[str, ...]
    dry_run: bool

    @property
    def request(self) -> Request:
        body = {"target_id": self.target, "source_ids": list(self.sources)}
        suffix = "?dry_run=true" if self.dry_run else ""
        return Request("POST", f"/v1/customers/merge{suffix}", body)

    def judge(self, model: Model, response: httpx.Response) -> None:
        if self.target in self.sources:
            expect(response, 422)
            return
        if not all(model.is_live(c) for c in (self.target, *self.sources)):
            expect(response, 409)
            return
        expect(response, 200)
        answer = response.json()
        check(answer["survivor"]["id"] == self.target, "the target survives a merge")
        check(sorted(answer["merged_ids"]) == sorted(self.sources), "a merge merges its sources")
        if self.dry_run:
            return
        for source in self.sources:
            model.merge(self.target, source)
        model.hold(self.target, shown_refs(answer["survivor"]["identifiers"]))
        wrote(model, response)


@dataclass(frozen=True)
class RegisterDevice:
    customer: str
    installation: str
    token: str | None
    platform: str

    @property
    def request(self) -> Request:
        body: dict[str, Any] = {"kind": "mobile_app", "app_id": "com.acme.shop"}
        body["platform"] = self.platform
        if self.token is not None:
            body |= {"push_provider": "fcm", "push_token": self.token}
        return Request("PUT", f"/v1/customers/{self.customer}/devices/{self.installation}", body)

    def judge(self, model: Model, response: httpx.Response) -> None:
        expect(response, 404 if model.is_gone(self.customer) else 200)
        wrote(model, response)


@dataclass(frozen=True)
class SetConsent:
    customer: str
    decisions: tuple[tuple[str, str], ...]  # (channel, status)

    @property
    def request(self) -> Request:
        wanted = [{"channel": c, "status": s} for c, s in self.decisions]
        return Request("PUT", self.url, {"subscriptions": wanted})

    @property
    def url(self) -> str:
        return f"/v1/customers/{self.customer}/subscriptions"

    def judge(self, model: Model, response: httpx.Response) -> None:
        if model.is_gone(self.customer):
            expect(response, 404)
            return
        # 422: no way to reach the customer on the channel, or subscribed -> pending.
        expect(response, 200, 422)
        wrote(model, response)


@dataclass(frozen=True)
class Points:
    customer: str
    kind: str  # accrual, redemption, adjustment
    amount: int  # signed for an adjustment
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def request(self) -> Request:
        body = {"account": ACCOUNT, "type": self.kind, "amount": self.amount}
        url = f"/v1/customers/{self.customer}/points/transactions"
        return Request("POST", url, body, {"Idempotency-Key": self.key})

    @property
    def signed(self) -> Decimal:
        return Decimal(-self.amount if self.kind == "redemption" else self.amount)

    def judge(self, model: Model, response: httpx.Response) -> None:
        """A spend above the balance is refused; a key answered before replays that answer,
        byte for byte, and writes nothing, unless the customer was erased since (an erase
        forgets the answers that name it)."""
        root = model.root(self.customer)
        if root in model.erased:
            expect(response, 404)
            return
        first = model.answered.get(self.key)
        if first is not None:
            check(response.status_code == first.status, "a replay has the first status")
            check(response.content == first.content, "a replay is the first answer")
            return
        available = model.balance.get(root, Decimal(0))
        if available + self.signed < 0:
            expect(response, 409)
            return
        expect(response, 201)
        model.balance[root] = available + self.signed
        model.answered[self.key] = Answer(response.status_code, response.content)
        wrote(model, response)


@dataclass(frozen=True)
class Erase:
    customer: str

    @property
    def request(self) -> Request:
        return Request("DELETE", f"/v1/customers/{self.customer}")

    def judge(self, model: Model, response: httpx.Response) -> None:
        root = model.root(self.customer)
        if root in model.erased:
            expect(response, 404)
            return
        expect(response, 200)
        answer = response.json()
        everyone = {root, *model.merged_into(root)}
        check(answer["id"] == root, "an erase of a merged id erases the survivor")
        check(set(answer["erased_ids"]) == everyone, f"erased {answer['erased_ids']}")
        model.erase(root)
        wrote(model, response)
