"""A Python client generated from the committed spec drives a live server through a whole
integration, with nothing but the client's typed functions and models.

`openapi-python-client` generates the client once per module into a temporary folder
(never committed); the generator must report no warning, since a warning means a part
of the API it left out or typed as `Any`. The server is `cdp serve` on a free port.
"""

import importlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.factories import ProjectWithKey
from tests.test_server import serving

SPEC_PATH = Path(__file__).parents[1] / "openapi" / "openapi.json"
PACKAGE = "cdp_client"
JOB_SECONDS = 30


class Generated:
    """The generated package: `api(tag, operation_id)` is an operation's module (with
    `sync` and `sync_detailed`), `models` every schema of the spec."""

    def __init__(self, package: ModuleType) -> None:
        self.package = package
        self.models: Any = importlib.import_module(f"{PACKAGE}.models")

    def api(self, tag: str, operation_id: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")

    def client(self, clients: ExitStack, base_url: str, token: str) -> Any:
        # Undocumented statuses raise: every status the server answers must be in the spec.
        client = self.package.AuthenticatedClient(
            base_url=base_url, token=token, raise_on_unexpected_status=True
        )
        return clients.enter_context(client)


def generate_client(output: Path) -> str:
    """Run the generator as a developer would; return what it printed."""
    config = output.parent / "generator-config.json"
    # No formatter run: the code is imported, never read, and formatting costs seconds.
    config.write_text(json.dumps({"post_hooks": []}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(SPEC_PATH),
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(output),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed
    return printed


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    root = tmp_path_factory.mktemp("generated-client")
    printed = generate_client(root / PACKAGE)
    assert "warning" not in printed.lower(), printed
    # A nullable object the spec leaves unnamed becomes a class named `<Model><Field>Type0`.
    unnamed = sorted(path.name for path in (root / PACKAGE / "models").glob("*type_0*"))
    assert unnamed == [], f"name these schemas (app/core/schema_names.py): {unnamed}"
    sys.path.insert(0, str(root))
    try:
        yield Generated(importlib.import_module(PACKAGE))
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def base_url(database_url: str) -> Iterator[str]:
    overrides: dict[str, str | None] = {
        "CDP_DATABASE_URL": database_url,
        "CDP_JOB_POLL_SECONDS": "0.2",
    }
    with serving(overrides) as (url, _):
        yield url


def _wait_for_job(generated: Generated, client: Any, job_id: uuid.UUID) -> Any:
    get_job = generated.api("jobs", "jobs_get")
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        job = get_job.sync(job_id, client=client)
        assert isinstance(job, generated.models.JobRead)
        if job.status not in {
            generated.models.JobStatus.QUEUED,
            generated.models.JobStatus.RUNNING,
        }:
            return job
        time.sleep(0.2)
    pytest.fail(f"job {job_id} did not finish in {JOB_SECONDS} s")


def test_a_generated_client_runs_a_whole_integration(
    generated: Generated, base_url: str, project: ProjectWithKey
) -> None:
    with ExitStack() as clients:
        _run_integration(generated, clients, base_url, project)


def _run_integration(
    generated: Generated, clients: ExitStack, base_url: str, project: ProjectWithKey
) -> None:
    m = generated.models
    admin = generated.client(clients, base_url, project.admin_token)

    # An admin key makes the integration's own key, shown once.
    created = generated.api("api_keys", "api_keys_create").sync(
        client=admin,
        body=m.ApiKeyCreate(
            name="shop-backend",
            scopes=[
                m.Scope.CUSTOMERSREAD,
                m.Scope.CUSTOMERSWRITE,
                m.Scope.CUSTOMERSMERGE,
                m.Scope.LOYALTYWRITE,
                m.Scope.SEGMENTSWRITE,
            ],
            touchpoint="web-shop",
        ),
    )
    assert isinstance(created, m.ApiKeyCreated)
    assert created.key.startswith("cdp_")
    assert created.touchpoint == "web-shop"
    client = generated.client(clients, base_url, created.key)

    # Errors come back as typed problems.
    missing = generated.api("customers", "customers_get").sync(uuid.uuid4(), client=client)
    assert isinstance(missing, m.Problem)
    assert (missing.status, missing.type_) == (404, "urn:cdp:problem:not-found")
    denied = generated.api("api_keys", "api_keys_list").sync(client=client)
    assert isinstance(denied, m.Problem)
    assert denied.status == 403

    # Custom fields: an external id and a profile field, sent through their named models.
    create_field = generated.api("fields", "fields_create")
    for key, kind in (("crm_id", m.FieldType.UNIQUE_ID), ("tier", m.FieldType.STRING)):
        field = create_field.sync(client=admin, body=m.FieldCreate(key=key, type_=kind))
        assert isinstance(field, m.FieldRead), field

    # Identify: three customers, each by another identifier.
    identify = generated.api("customers", "customers_identify")
    ann = identify.sync(
        client=client,
        body=m.CustomerIdentify(
            identifiers=m.IdentifiersIn(
                email="Ann.Lee@Example.COM", external=m.ExternalIds.from_dict({"crm_id": "C-1"})
            ),
            profile=m.ProfileIn(
                first_name="Ann",
                gender=m.Gender.FEMALE,
                custom_fields=m.CustomFieldValues.from_dict({"tier": "gold"}),
            ),
        ),
    )
    assert isinstance(ann, m.IdentifyResponse)
    assert ann.result == m.IdentifyResult.CREATED
    assert ann.customer.identifiers.email == "ann.lee@example.com"
    assert ann.customer.identifiers.external.to_dict() == {"crm_id": "C-1"}
    assert ann.customer.profile.custom_fields.to_dict() == {"tier": "gold"}
    assert ann.customer.auth_token is None
    card_holder = identify.sync(
        client=client,
        body=m.CustomerIdentify(identifiers=m.IdentifiersIn(discount_cards=["CARD-7"])),
    )
    assert isinstance(card_holder, m.IdentifyResponse)
    phone_only = identify.sync(
        client=client,
        body=m.CustomerIdentify(identifiers=m.IdentifiersIn(phone="+49 30 1234567")),
    )
    assert isinstance(phone_only, m.IdentifyResponse)
    assert phone_only.customer.identifiers.phone == "+49301234567"

    # The email and the card name two customers: identify merges them; the card outranks
    # the email, so the card holder survives.
    merged = identify.sync(
        client=client,
        body=m.CustomerIdentify(
            identifiers=m.IdentifiersIn(email="ann.lee@example.com", discount_cards=["CARD-7"]),
            on_conflict=m.OnConflict.MERGE,
        ),
    )
    assert isinstance(merged, m.IdentifyResponse)
    assert merged.result == m.IdentifyResult.MERGED
    survivor_id = card_holder.customer.id
    assert merged.customer.id == survivor_id
    assert merged.merged_ids == [ann.customer.id]

    # An explicit merge folds the phone-only customer in as well.
    merge = generated.api("customers", "customers_merge").sync(
        client=client,
        body=m.CustomerMergeRequest(target_id=survivor_id, source_ids=[phone_only.customer.id]),
        idempotency_key="merge-phone-into-ann",
    )
    assert isinstance(merge, m.MergeRead)
    assert merge.merged_ids == [phone_only.customer.id]
    assert merge.survivor.identifiers.phone == "+49301234567"
    assert {(moved.kind, moved.value) for moved in merge.identifiers_moved} == {
        ("phone", "+49301234567")
    }

    # The app's installation and its push token.
    device = generated.api("devices", "devices_register").sync(
        survivor_id,
        "install-1",
        client=client,
        body=m.DeviceRegistration(
            kind=m.DeviceKind.MOBILE_APP,
            app_id="com.acme.shop",
            platform=m.Platform.IOS,
            push_provider=m.PushProvider.APNS,
            push_token="apns-token-0001-ann",
        ),
    )
    assert isinstance(device, m.DeviceRead)
    assert (device.installation_id, device.push_token) == ("install-1", "apns-token-0001-ann")
    found = generated.api("devices", "devices_find").sync(
        client=client, push_token="apns-token-0001-ann"
    )
    assert [d.id for d in found] == [device.id]
    own_devices = generated.api("devices", "devices_list_for_customer").sync(
        survivor_id, client=client
    )
    assert [(d.id, d.shared_with) for d in own_devices] == [(device.id, 0)]

    # Points: an account, 100 earned, 30 spent.
    account = generated.api("loyalty", "loyalty_create_account").sync(
        client=admin, body=m.AccountCreate(code="bonus", name="Bonus points")
    )
    assert isinstance(account, m.AccountRead)
    transact = generated.api("loyalty", "loyalty_create_transaction")
    earned = transact.sync(
        survivor_id,
        client=client,
        body=m.TransactionCreate(
            account="bonus", type_=m.TransactionCreateType.ACCRUAL, amount="100"
        ),
        idempotency_key="order-1001",
    )
    assert isinstance(earned, m.TransactionRead)
    spent = transact.sync(
        survivor_id,
        client=client,
        body=m.TransactionCreate(
            account="bonus", type_=m.TransactionCreateType.REDEMPTION, amount="30"
        ),
        idempotency_key="order-1002",
    )
    assert isinstance(spent, m.TransactionRead)
    [balance] = generated.api("loyalty", "loyalty_get_balances").sync(survivor_id, client=client)
    # Amounts are decimal strings, exact.
    assert balance.account == "bonus"
    assert [Decimal(x) for x in (balance.available, balance.earned, balance.spent)] == [70, 100, 30]

    # Subscriptions: email newsletter consent.
    [decision] = generated.api("subscriptions", "subscriptions_set").sync(
        survivor_id,
        client=client,
        body=m.SubscriptionsUpdate(
            subscriptions=[
                m.SubscriptionDecision(
                    channel=m.Channel.EMAIL,
                    status=m.SubscriptionStatus.SUBSCRIBED,
                    source="checkout",
                )
            ]
        ),
    )
    assert decision.changed is True
    assert decision.previous_status is None
    [consent] = generated.api("subscriptions", "subscriptions_get").sync(survivor_id, client=client)
    assert (consent.channel, consent.status) == (m.Channel.EMAIL, m.SubscriptionStatus.SUBSCRIBED)

    # Segments: a rule over consent and points, recalculated by the server's job worker.
    segmentation = generated.api("segments", "segments_create_segmentation").sync(
        client=client,
        body=m.SegmentationCreate(
            key="engagement",
            name="Engagement",
            kind=m.SegmentationKind.RULE,
            segments=[
                m.SegmentIn(
                    key="loyal",
                    name="Loyal and reachable",
                    rule=m.AllRule(
                        all_=[
                            m.SubscriptionCondition(
                                subscription=m.SubscriptionConditionSubscription(
                                    channel=m.Channel.EMAIL
                                ),
                                status=m.SubscriptionStatus.SUBSCRIBED,
                            ),
                            m.PointsCondition(points="bonus", op=m.CountOperator.GTE, value=50),
                        ]
                    ),
                )
            ],
        ),
    )
    assert isinstance(segmentation, m.SegmentationRead)
    [segment] = segmentation.segments
    assert isinstance(segment.rule, m.AllRule)
    assert isinstance(segment.rule.all_[1], m.PointsCondition)
    started = generated.api("segments", "segments_recalculate").sync(segmentation.id, client=client)
    assert isinstance(started, m.RecalculationStarted)
    job = _wait_for_job(generated, client, started.job_id)
    assert job.status == m.JobStatus.SUCCEEDED, job.error
    [membership] = generated.api("segments", "segments_for_customer").sync(
        survivor_id, client=client
    )
    assert (membership.segmentation, membership.segment) == ("engagement", "loyal")

    # The 360 profile shows all of it, for the survivor and the customers merged into it.
    profile = generated.api("customers", "customers_get_profile").sync(survivor_id, client=client)
    assert isinstance(profile, m.CustomerProfileRead)
    customer = profile.customer
    assert customer.id == survivor_id
    assert set(customer.merged_ids) == {ann.customer.id, phone_only.customer.id}
    assert customer.identifiers.email == "ann.lee@example.com"
    assert customer.profile.first_name == "Ann"
    sections = profile.sections
    assert [row["installation_id"] for row in sections["devices"].items] == ["install-1"]
    assert [Decimal(row["available"]) for row in sections["point_balances"].items] == [70]
    assert [row["status"] for row in sections["subscriptions"].items] == ["subscribed"]
    assert [row["segment_id"] for row in sections["segments"].items] == [str(segment.id)]
    assert len(sections["merges"].items) == 2

    # The right-of-access export is a typed document too.
    export = generated.api("customers", "customers_export").sync(survivor_id, client=client)
    assert isinstance(export, m.CustomerExport)
    assert export.customer.id == survivor_id
    assert [row["installation_id"] for row in export.sections["devices"]] == ["install-1"]
