"""Promo pools and codes against PostgreSQL: uploads, issuing, redeeming, listing, merges."""

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.auth import Scope
from app.core.db import UnitOfWork
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, bearer, make_key
from tests.promotions.helpers import (
    changelog,
    customer,
    issue,
    pool,
    redeem,
    row_counts,
    upload,
)


class TestPools:
    async def test_create_read_and_list(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        created = await pool(client, project, "spring", valid_until="2099-01-01T00:00:00Z")
        assert created["valid_until"] == "2099-01-01T00:00:00Z"
        await upload(client, project, "spring", ["S-1", "S-2"])
        read = await client.get("/v1/promo-pools/spring", headers=project.admin_headers)
        assert read.status_code == 200
        assert read.json()["codes"] == {"available": 2, "issued": 0, "redeemed": 0, "void": 0}
        listed = await client.get("/v1/promo-pools", headers=project.admin_headers)
        assert [p["key"] for p in listed.json()["items"]] == ["spring"]

    async def test_same_key_twice_is_a_conflict(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await pool(client, project, "spring")
        again = await client.post(
            "/v1/promo-pools", headers=project.admin_headers, json={"key": "spring", "name": "x"}
        )
        assert again.status_code == 409

    @pytest.mark.parametrize(
        ("body", "pointer"),
        [
            ({"key": "Spring", "name": "x"}, "/key"),
            ({"key": "spring", "name": ""}, "/name"),
            ({"key": "spring", "name": "x", "extra": 1}, "/extra"),
            (
                {
                    "key": "spring",
                    "name": "x",
                    "valid_from": "2026-02-01T00:00:00Z",
                    "valid_until": "2026-01-01T00:00:00Z",
                },
                "/valid_until",
            ),
            ({"key": "spring", "name": "x", "valid_from": "2026-02-01T00:00:00"}, "/valid_from"),
        ],
    )
    async def test_invalid_pools_are_refused(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        body: dict[str, Any],
        pointer: str,
    ) -> None:
        response = await client.post("/v1/promo-pools", headers=project.admin_headers, json=body)
        assert response.status_code == 422
        assert pointer in {e["pointer"] for e in response.json()["errors"]}

    async def test_creating_a_pool_needs_admin(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        key = await make_key(uow, project.project, scopes=[Scope.LOYALTY_WRITE])
        response = await client.post(
            "/v1/promo-pools", headers=bearer(key), json={"key": "spring", "name": "x"}
        )
        assert response.status_code == 403


class TestUpload:
    async def test_duplicates_and_invalid_entries_are_reported_the_rest_stored(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await pool(client, project, "spring")
        await pool(client, project, "summer")
        assert (await upload(client, project, "summer", ["TAKEN-1"])).status_code == 200
        response = await upload(
            client,
            project,
            "spring",
            [
                "  OK-1 ",
                "OK-2",
                "OK-1",
                "TAKEN-1",
                "has space",
                "",
                "a/b",
                "x" * 65,
                "zero\u200bwidth",
                "..",
                "ÜMLAUT-ä",
            ],
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["added"], result["duplicates"], result["invalid_count"]) == (3, 2, 6)
        assert [(e["index"], e["line"]) for e in result["invalid"]] == [
            (4, None),
            (5, None),
            (6, None),
            (7, None),
            (8, None),
            (9, None),
        ]
        assert result["invalid"][0]["message"] == "Contains whitespace"
        counts = await client.get("/v1/promo-pools/spring", headers=project.admin_headers)
        assert counts.json()["codes"]["available"] == 3
        # The same upload again adds nothing: every valid code is now a duplicate.
        again = (await upload(client, project, "spring", ["OK-1", "OK-2", "ÜMLAUT-ä"])).json()
        assert (again["added"], again["duplicates"]) == (0, 3)

    async def test_file_upload_reports_lines(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await pool(client, project, "spring")
        content = "\ufeffcode\r\nF-1\r\n\r\nF-2\nbad code\nF-1\n\xff\nF-3".encode()
        content = content.replace("\xff".encode(), b"\xff")
        response = await client.post(
            "/v1/promo-pools/spring/codes/file",
            headers=project.admin_headers,
            files={"file": ("codes.csv", content, "text/csv")},
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["added"], result["duplicates"], result["invalid_count"]) == (3, 1, 2)
        assert [(e["line"], e["message"]) for e in result["invalid"]] == [
            (5, "Contains whitespace"),
            (7, "Not UTF-8 text"),
        ]

    async def test_a_file_of_another_type_is_refused(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await pool(client, project, "spring")
        response = await client.post(
            "/v1/promo-pools/spring/codes/file",
            headers=project.admin_headers,
            files={"file": ("codes.png", b"\x89PNG", "image/png")},
        )
        assert response.status_code == 415

    async def test_upload_of_100000_codes(
        self, client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
    ) -> None:
        await pool(client, project, "big")
        codes = [f"BIG-{i:08d}" for i in range(100_000)]
        content = ("\n".join(codes) + "\n").encode()
        assert len(content) > 1_048_576  # larger than the general body limit
        response = await client.post(
            "/v1/promo-pools/big/codes/file",
            headers=project.admin_headers,
            files={"file": ("codes.txt", content, "text/plain")},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "added": 100_000,
            "duplicates": 0,
            "invalid_count": 0,
            "invalid": [],
        }
        assert (await row_counts(database_url))["codes"] == {"available": 100_000}
        # The JSON route keeps the general limit: the same codes as JSON are too large.
        too_large = await upload(client, project, "big", codes)
        assert too_large.status_code == 413

    async def test_more_than_100000_codes_are_refused_whole(
        self, client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
    ) -> None:
        await pool(client, project, "big")
        content = "".join(f"{i:x}\n" for i in range(100_001)).encode()
        response = await client.post(
            "/v1/promo-pools/big/codes/file",
            headers=project.admin_headers,
            files={"file": ("codes.txt", content, "text/plain")},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/file"
        short = await upload(client, project, "big", ["A"] * 100_001)
        assert short.status_code == 422
        assert (await row_counts(database_url))["codes"] == {}

    async def test_unknown_pool_is_404(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        assert (await upload(client, project, "nope", ["A"])).status_code == 404
        file_upload = await client.post(
            "/v1/promo-pools/nope/codes/file",
            headers=project.admin_headers,
            files={"file": ("codes.txt", b"A\n", "text/plain")},
        )
        assert file_upload.status_code == 404


class TestIssue:
    async def test_issue_and_replay(
        self, client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
    ) -> None:
        await pool(client, project, "spring")
        await upload(client, project, "spring", ["S-1", "S-2", "S-3"])
        ann = await customer(client, project, "ann@example.com")
        first = await issue(client, project, ann, "spring", "issue-1")
        assert first.status_code == 201, first.text
        code = first.json()
        assert (code["code"], code["pool"], code["status"]) == ("S-1", "spring", "issued")
        assert code["customer_id"] == code["origin_customer_id"] == ann
        before = await row_counts(database_url)
        replay = await issue(client, project, ann, "spring", "issue-1")
        assert replay.status_code == 201
        assert replay.content == first.content
        assert await row_counts(database_url) == before
        conflicting = await client.post(
            f"/v1/customers/{ann}/promo-codes",
            headers={**project.admin_headers, "Idempotency-Key": "issue-1"},
            json={"pool": "other"},
        )
        assert conflicting.status_code == 409
        assert "Idempotency-Key" in conflicting.json()["detail"]
        assert await row_counts(database_url) == before
        second = await issue(client, project, ann, "spring", "issue-2")
        assert second.json()["code"] == "S-2"
        [issued] = [
            c for c in await changelog(client, project, ann) if c["field"] == "promo_codes.S-1"
        ]
        assert issued["operation"] == "promo_code_issued"
        assert issued["new_value"] == {"pool": "spring", "status": "issued"}
        # The activity feed shows changelog rows as system actions.
        feed = await client.get(f"/v1/customers/{ann}/actions", headers=project.admin_headers)
        types = [a["type"] for a in feed.json()["items"]]
        assert types.count("system.promo_code_issued") == 2

    async def test_idempotency_key_is_required(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await pool(client, project, "spring")
        ann = await customer(client, project, "ann@example.com")
        response = await client.post(
            f"/v1/customers/{ann}/promo-codes",
            headers=project.admin_headers,
            json={"pool": "spring"},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["location"] == "header"

    async def test_empty_pool_is_a_conflict_and_changes_nothing(
        self, client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
    ) -> None:
        await pool(client, project, "spring")
        await upload(client, project, "spring", ["ONLY"])
        ann = await customer(client, project, "ann@example.com")
        assert (await issue(client, project, ann, "spring", "k1")).status_code == 201
        before = await row_counts(database_url)
        empty = await issue(client, project, ann, "spring", "k2")
        assert empty.status_code == 409
        assert empty.json()["type"] == "urn:cdp:problem:conflict"
        assert "no free code" in empty.json()["detail"]
        assert await row_counts(database_url) == before
        # The refusal was not remembered: once codes arrive, the same key gets one.
        await upload(client, project, "spring", ["MORE"])
        assert (await issue(client, project, ann, "spring", "k2")).json()["code"] == "MORE"

    @pytest.mark.parametrize(
        ("window", "allowed"),
        [
            ({"valid_from": -2, "valid_until": 2}, True),
            ({"valid_from": 1}, False),
            ({"valid_until": -1}, False),
            ({"valid_from": -2, "valid_until": -1}, False),
        ],
    )
    async def test_validity_window(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        database_url: str,
        window: dict[str, int],
        allowed: bool,
    ) -> None:
        now = datetime.now(UTC)
        await pool(
            client,
            project,
            "timed",
            **{name: (now + timedelta(days=days)).isoformat() for name, days in window.items()},
        )
        await upload(client, project, "timed", ["T-1"])
        ann = await customer(client, project, "ann@example.com")
        before = await row_counts(database_url)
        response = await issue(client, project, ann, "timed", "k")
        if allowed:
            assert response.status_code == 201
            return
        assert response.status_code == 409
        assert "promo pool 'timed'" in response.json()["detail"]
        assert await row_counts(database_url) == before

    async def test_unknown_pool_or_customer_is_404(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        ann = await customer(client, project, "ann@example.com")
        assert (await issue(client, project, ann, "nope", "k1")).status_code == 404
        await pool(client, project, "spring")
        unknown = "0193a6f1-c1e2-7c3c-9e1f-4b3c2a1d0e9f"
        assert (await issue(client, project, unknown, "spring", "k2")).status_code == 404

    async def test_issuing_needs_loyalty_write(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        await pool(client, project, "spring")
        ann = await customer(client, project, "ann@example.com")
        key = await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_WRITE])
        response = await client.post(
            f"/v1/customers/{ann}/promo-codes",
            headers={**bearer(key), "Idempotency-Key": "k"},
            json={"pool": "spring"},
        )
        assert response.status_code == 403


class TestRedeem:
    async def _issued(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> tuple[str, str, str]:
        """(ann, bob, the code issued to ann)."""
        await pool(client, project, "spring")
        await upload(client, project, "spring", ["R-1", "R-2"])
        ann = await customer(client, project, "ann@example.com")
        bob = await customer(client, project, "bob@example.com")
        issued = await issue(client, project, ann, "spring", "issue-ann")
        return ann, bob, issued.json()["code"]

    async def test_redeem_own_code_then_again(
        self, client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
    ) -> None:
        ann, _, code = await self._issued(client, project)
        redeemed = await redeem(client, project, code, ann, order_reference="A-1001")
        assert redeemed.status_code == 200, redeemed.text
        body = redeemed.json()
        assert (body["status"], body["order_reference"]) == ("redeemed", "A-1001")
        assert body["redeemed_at"] is not None
        before = await row_counts(database_url)
        again = await redeem(client, project, code, ann)
        assert again.status_code == 409
        assert "already redeemed" in again.json()["detail"]
        assert await row_counts(database_url) == before
        operations = [c["operation"] for c in await changelog(client, project, ann)]
        assert operations[:2] == ["promo_code_redeemed", "promo_code_issued"]

    async def test_someone_elses_code_is_refused_and_changes_nothing(
        self, client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
    ) -> None:
        ann, bob, code = await self._issued(client, project)
        before = await row_counts(database_url)
        refused = await redeem(client, project, code, bob, idempotency_key="steal")
        assert refused.status_code == 409
        assert (
            refused.json()["detail"] == f"The promo code '{code}' was issued to another customer."
        )
        assert await row_counts(database_url) == before
        codes = await client.get(f"/v1/customers/{ann}/promo-codes", headers=project.admin_headers)
        assert codes.json()["items"][0]["status"] == "issued"
        # Still Ann's to redeem.
        assert (await redeem(client, project, code, ann)).status_code == 200

    async def test_a_code_never_issued_or_unknown(
        self, client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
    ) -> None:
        ann, _, _ = await self._issued(client, project)
        before = await row_counts(database_url)
        never = await redeem(client, project, "R-2", ann)
        assert never.status_code == 409
        assert "not been issued" in never.json()["detail"]
        assert (await redeem(client, project, "NOPE", ann)).status_code == 404
        assert await row_counts(database_url) == before

    async def test_idempotent_redeem(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        ann, _, code = await self._issued(client, project)
        first = await redeem(client, project, code, ann, order_reference="A", idempotency_key="r1")
        replay = await redeem(client, project, code, ann, order_reference="A", idempotency_key="r1")
        assert (first.status_code, replay.status_code) == (200, 200)
        assert replay.content == first.content
        other = await redeem(client, project, code, ann, order_reference="B", idempotency_key="r1")
        assert other.status_code == 409

    async def test_a_closed_pool_refuses_redemption(
        self, client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
    ) -> None:
        ann, _, code = await self._issued(client, project)
        connection = await asyncpg.connect(_asyncpg_dsn(database_url))
        try:
            await connection.execute(
                "UPDATE promo_pools SET valid_until = now() - interval '1 minute'"
            )
        finally:
            await connection.close()
        response = await redeem(client, project, code, ann)
        assert response.status_code == 409
        assert "no longer redeemed" in response.json()["detail"]


class TestList:
    async def test_statuses_newest_first_with_pages(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await pool(client, project, "spring")
        await upload(client, project, "spring", ["L-1", "L-2", "L-3"])
        ann = await customer(client, project, "ann@example.com")
        for number in range(3):
            await issue(client, project, ann, "spring", f"k{number}")
        await redeem(client, project, "L-1", ann)
        url = f"/v1/customers/{ann}/promo-codes"
        page = await client.get(url, params={"limit": 2}, headers=project.admin_headers)
        assert [(c["code"], c["status"]) for c in page.json()["items"]] == [
            ("L-3", "issued"),
            ("L-2", "issued"),
        ]
        rest = await client.get(
            url,
            params={"limit": 2, "cursor": page.json()["next_cursor"]},
            headers=project.admin_headers,
        )
        assert [(c["code"], c["status"]) for c in rest.json()["items"]] == [("L-1", "redeemed")]
        assert rest.json()["next_cursor"] is None
        only = await client.get(url, params={"status": "redeemed"}, headers=project.admin_headers)
        assert [c["code"] for c in only.json()["items"]] == ["L-1"]


class TestMerge:
    async def test_merge_moves_codes_keeping_their_origin(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await pool(client, project, "spring")
        await upload(client, project, "spring", ["M-1", "M-2", "M-3"])
        ann = await customer(client, project, "ann@example.com")
        bob = await customer(client, project, "bob@example.com")
        await issue(client, project, ann, "spring", "a")
        await issue(client, project, bob, "spring", "b1")
        await issue(client, project, bob, "spring", "b2")
        await redeem(client, project, "M-2", bob)
        merged = await client.post(
            "/v1/customers/merge",
            headers=project.admin_headers,
            json={"target_id": ann, "source_ids": [bob]},
        )
        assert merged.status_code == 200, merged.text
        assert merged.json()["counts"]["promotions"] == {"promo_codes_moved": 2, "prizes_moved": 0}
        listed = await client.get(f"/v1/customers/{ann}/promo-codes", headers=project.admin_headers)
        origins = {
            c["code"]: (c["customer_id"], c["origin_customer_id"]) for c in listed.json()["items"]
        }
        assert origins == {"M-1": (ann, ann), "M-2": (ann, bob), "M-3": (ann, bob)}
        # The merged id answers for its survivor, and may redeem what it was given.
        by_old_id = await client.get(
            f"/v1/customers/{bob}/promo-codes", headers=project.admin_headers
        )
        assert len(by_old_id.json()["items"]) == 3
        assert (await redeem(client, project, "M-3", bob)).status_code == 200
        entries = await changelog(client, project, ann)
        merges = {c["customer_id"]: c for c in entries if c["operation"] == "merge"}
        assert merges[ann]["new_value"]["moved"][bob]["promo_codes"] == ["M-2", "M-3"]
        assert merges[bob]["new_value"]["promo_codes"] == ["M-2", "M-3"]


class TestTenancy:
    async def test_another_projects_pool_code_and_customer_are_404(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        other_project: ProjectWithKey,
        database_url: str,
    ) -> None:
        await pool(client, project, "spring")
        await upload(client, project, "spring", ["T-1"])
        ann = await customer(client, project, "ann@example.com")
        await issue(client, project, ann, "spring", "k")
        stranger = await customer(client, other_project, "ann@example.com")
        before = await row_counts(database_url)
        assert (
            await client.get("/v1/promo-pools/spring", headers=other_project.admin_headers)
        ).status_code == 404
        assert (await upload(client, other_project, "spring", ["X"])).status_code == 404
        assert (await issue(client, other_project, ann, "spring", "k")).status_code == 404
        assert (await redeem(client, other_project, "T-1", stranger)).status_code == 404
        assert (await redeem(client, other_project, "T-1", ann)).status_code == 404
        listed = await client.get(
            f"/v1/customers/{ann}/promo-codes", headers=other_project.admin_headers
        )
        assert listed.status_code == 404
        assert await row_counts(database_url) == before
        # The same code may exist in another project.
        await pool(client, other_project, "spring")
        assert (await upload(client, other_project, "spring", ["T-1"])).json()["added"] == 1
