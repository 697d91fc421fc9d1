"""The invariants, each a function returning what it found wrong (empty: it holds).

Database checks read one project's rows directly; the changelog checks compare two
snapshots (before and after one step) and need no database at all.
"""

import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from tests.invariants.snapshot import LogRow, Snapshot

# What a merge moves to the survivor (the MERGE_STEPS of app/identity/merge.py): a merged
# customer keeps none of it. Auth tokens are not here: a merged customer's token keeps
# working for the survivor (app/devices/tokens.py), by design.
MOVED_ON_MERGE = (
    "customer_identifiers",
    "customer_devices",
    "subscriptions",
    "point_balances",
    "point_transactions",
    "point_lots",
    "actions",
    "promo_codes",
    "prizes",
    "segment_memberships",
)
# What an erase deletes (app/customers/erase.py). Ledgers, consent statuses and histories
# stay, redacted, by design: balances must still add up and consent must stay provable.
GONE_ON_ERASE = (
    "customer_identifiers",
    "customer_devices",
    "customer_auth_tokens",
    "segment_memberships",
)
ERASED = "[erased]"
ID_GAINS = {"added", "moved_in", "merged_in"}
ID_LOSSES = {"removed", "replaced", "moved_out", "merged_out"}
LOG_GAINS = {"identifier_added", "identifier_moved_in", "identifier_replaced"}
LOG_LOSSES = {"identifier_removed", "identifier_replaced", "identifier_moved_out"}


async def ownership_problems(db: asyncpg.Pool, project_id: uuid.UUID, snap: Snapshot) -> list[str]:
    """Identifiers belong to one active customer each; tombstones hold nothing."""
    problems: list[str] = []
    active, merged, erased = snap.ids_with("active"), snap.ids_with("merged"), snap.erased_people()
    for (kind, value), owner in snap.identifiers.items():
        if owner not in active:
            problems.append(f"identifier {kind}={value} is owned by {owner}, not active")
    owners = set(snap.identifiers.values())
    problems += [f"active customer {cid} holds no identifier" for cid in active - owners]
    for table, customer_id, count in await _held_rows(db, project_id):
        if customer_id in merged and table in MOVED_ON_MERGE:
            problems.append(f"merged customer {customer_id} still has {count} {table} rows")
        if customer_id in erased and table in GONE_ON_ERASE:
            problems.append(f"erased customer {customer_id} still has {count} {table} rows")
    # The machine never unlinks nor registers anonymously: a device nobody uses can only
    # be one an erase should have deleted (it deletes devices no one else uses).
    linked = {device_id for _, device_id in snap.links}
    problems += [
        f"device {snap.devices[d]} ({d}) is linked to nobody" for d in snap.devices.keys() - linked
    ]
    return problems


async def _held_rows(db: asyncpg.Pool, project_id: uuid.UUID) -> list[tuple[str, str, int]]:
    tables = sorted(set(MOVED_ON_MERGE) | set(GONE_ON_ERASE))
    query = " UNION ALL ".join(
        f"SELECT '{t}' AS name, customer_id, count(*) AS n FROM {t} "
        "WHERE project_id = $1 AND customer_id IS NOT NULL GROUP BY customer_id"
        for t in tables
    )
    return [(r["name"], str(r["customer_id"]), r["n"]) for r in await db.fetch(query, project_id)]


async def balance_rows(
    db: asyncpg.Pool, project_id: uuid.UUID
) -> dict[tuple[str, str], dict[str, Decimal | None]]:
    """Per (customer, account): the balance row, the ledger's sum and what the lots have left."""
    rows = await db.fetch(
        """
        WITH b AS (SELECT customer_id, account_id, available, pending
                   FROM point_balances WHERE project_id = $1),
             l AS (SELECT customer_id, account_id, sum(amount) AS total
                   FROM point_transactions WHERE project_id = $1 GROUP BY 1, 2),
             r AS (SELECT customer_id, account_id, sum(remaining) AS left_over
                   FROM point_lots WHERE project_id = $1 GROUP BY 1, 2)
        SELECT coalesce(b.customer_id, l.customer_id, r.customer_id) AS customer_id,
               coalesce(b.account_id, l.account_id, r.account_id) AS account_id,
               b.available, b.pending, l.total, r.left_over
        FROM b
        FULL JOIN l ON (l.customer_id, l.account_id) = (b.customer_id, b.account_id)
        FULL JOIN r ON r.customer_id = coalesce(b.customer_id, l.customer_id)
                   AND r.account_id = coalesce(b.account_id, l.account_id)
        """,
        project_id,
    )
    zero = Decimal(0)
    return {
        (str(r["customer_id"]), str(r["account_id"])): {
            "available": r["available"],
            "pending": r["pending"],
            "ledger": r["total"] if r["total"] is not None else zero,
            "lots": r["left_over"] if r["left_over"] is not None else zero,
        }
        for r in rows
    }


def balance_problems(balances: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Each balance equals its ledger's sum and what its lots have left; none is negative."""
    problems: list[str] = []
    for (customer_id, account_id), row in balances.items():
        where = f"customer {customer_id} account {account_id}"
        if row["available"] is None:
            problems.append(f"{where}: ledger rows ({row['ledger']}) but no balance row")
            continue
        held = row["available"] + row["pending"]
        if held != row["ledger"]:
            problems.append(f"{where}: balance {held} != ledger sum {row['ledger']}")
        if held != row["lots"]:
            problems.append(f"{where}: balance {held} != lots left {row['lots']}")
        if row["available"] < 0 or row["pending"] < 0:
            problems.append(f"{where}: negative balance {row['available']}/{row['pending']}")
    return problems


def changelog_problems(before: Snapshot, after: Snapshot) -> list[str]:
    """Every change between two snapshots has its rows in the logs, written in that step."""
    step = _Step(before, after)
    return [
        *_profile_changes(step),
        *_identifier_changes(step),
        *_consent_changes(step),
        *_device_changes(step),
        *_ledger_changes(step),
        *_merge_records(step),
        *_erase_records(step),
    ]


class _Step:
    """The rows one step added, and who it merged and erased."""

    def __init__(self, before: Snapshot, after: Snapshot) -> None:
        self.before, self.after = before, after
        self.log = _added(before.changelog, after.changelog)
        self.ids = _added(before.id_history, after.id_history)
        self.consent = _added(before.consent_history, after.consent_history)
        self.merged = after.ids_with("merged") - before.ids_with("merged")
        self.erased = after.erased_people() - before.erased_people()
        self.merge_rows = [row for row in self.log if row.operation == "merge"]
        # Customers a merge touched in this step (targets and sources).
        self.in_merge = {row.customer_id for row in self.merge_rows}

    def logged(self, rows: list[LogRow], customer_id: str, **match: Any) -> bool:
        """Whether one of `rows` belongs to the customer and has these attributes; an
        `operation` given as a set matches any of its members."""
        for row in rows:
            if row.customer_id != customer_id:
                continue
            if all(
                getattr(row, name) in wanted
                if isinstance(wanted, set)
                else getattr(row, name) == wanted
                for name, wanted in match.items()
            ):
                return True
        return False

    def redacted(self, operation: str) -> list[LogRow]:
        """Rows of this operation written and then redacted in this step, by an erase of
        their customer (a burst can write and erase in one step): their values are gone,
        so only that they are there can be checked."""
        return [
            row
            for row in self.log
            if row.operation == operation
            and row.new_value == ERASED
            and row.customer_id in self.erased
        ]

    def moved_by_merge(self, target: str, section: str, label: str) -> bool:
        """Whether a merge into `target` in this step says it moved `label` in `section`."""
        for row in self.merge_rows:
            if row.customer_id == target and isinstance(row.new_value, dict):
                for detail in row.new_value.get("moved", {}).values():
                    if label in detail.get(section, []):
                        return True
        return False


def _added(before: dict[str, LogRow], after: dict[str, LogRow]) -> list[LogRow]:
    return [row for row_id, row in after.items() if row_id not in before]


def _profile_changes(step: _Step) -> list[str]:
    problems: list[str] = []
    for customer_id, profile in step.after.profiles.items():
        old = step.before.profiles.get(customer_id, {})
        for name, value in profile.items():
            if old.get(name) != value and not step.logged(
                step.log, customer_id, field=name, new_value=value
            ):
                problems.append(
                    f"{customer_id}: {name} {old.get(name)!r} -> {value!r} has no changelog row"
                )
    return problems


def _identifier_changes(step: _Step) -> list[str]:
    problems: list[str] = []
    before, after = step.before.identifiers, step.after.identifiers
    for kind, value in before.keys() | after.keys():
        old, new = before.get((kind, value)), after.get((kind, value))
        if old == new:
            continue
        what = f"identifier {kind}={value} ({old} -> {new})"
        if new is not None:
            if not step.logged(step.ids, new, operation=ID_GAINS, field=kind, old_value=value):
                problems.append(f"{what}: no ID changelog row for the new owner")
            if new not in step.in_merge and not step.logged(
                step.log, new, operation=LOG_GAINS, field=kind, new_value=value
            ):
                problems.append(f"{what}: no changelog row for the new owner")
        if old is not None and old not in step.erased:
            if not step.logged(step.ids, old, operation=ID_LOSSES, field=kind, old_value=value):
                problems.append(f"{what}: no ID changelog row for the old owner")
            if old not in step.in_merge and not step.logged(
                step.log, old, operation=LOG_LOSSES, field=kind, old_value=value
            ):
                problems.append(f"{what}: no changelog row for the old owner")
    return problems


def _consent_changes(step: _Step) -> list[str]:
    problems: list[str] = []
    active = step.after.ids_with("active")
    before, after = step.before.subscriptions, step.after.subscriptions
    for key in before.keys() | after.keys():
        customer_id, channel, topic = key
        old, new = before.get(key), after.get(key)
        if old == new or customer_id not in active:
            continue
        what = f"{customer_id}: consent {channel}/{topic or '-'} {old} -> {new}"
        if new is None:
            problems.append(f"{what}: a live customer's consent vanished")
            continue
        label = f"{channel}:{topic}" if topic else channel
        if step.moved_by_merge(customer_id, "subscriptions", label):
            continue
        field = f"{channel}.{topic}" if topic else channel
        if not step.logged(
            step.log,
            customer_id,
            operation="subscription",
            field=f"subscriptions.{field}",
            new_value=new,
        ):
            problems.append(f"{what}: no changelog row")
        if not step.logged(step.consent, customer_id, field=field, new_value=new):
            problems.append(f"{what}: no subscription history row")
    return problems


def _device_changes(step: _Step) -> list[str]:
    problems: list[str] = []
    active = step.after.ids_with("active")
    devices = {**step.before.devices, **step.after.devices}
    for customer_id, device_id in step.after.links - step.before.links:
        if customer_id not in active or step.moved_by_merge(customer_id, "devices", device_id):
            continue
        if not step.logged(
            step.log,
            customer_id,
            operation="device_linked",
            field=f"devices.{devices[device_id]}",
            new_value=device_id,
        ):
            problems.append(f"{customer_id}: link to device {device_id} has no changelog row")
    for customer_id, device_id in step.before.links - step.after.links:
        if customer_id in active and not step.logged(
            step.log, customer_id, operation="device_unlinked", old_value=device_id
        ):
            problems.append(f"{customer_id}: unlinked from {device_id} without a changelog row")
    return problems


def _ledger_changes(step: _Step) -> list[str]:
    logged = {
        row.new_value.get("transaction_id")
        for row in step.log
        if row.operation == "points" and isinstance(row.new_value, dict)
    }
    new = step.after.transactions.keys() - step.before.transactions.keys()
    unlogged = sorted(new - logged)
    # An erase in the same step redacted the rows of what it erased (they no longer name
    # their transaction): each such transaction needs one redacted `points` row.
    erased = [tx for tx in unlogged if step.after.transactions[tx] in step.erased]
    redacted = len(step.redacted("points"))
    problems = [
        f"point transaction {tx} has no changelog row" for tx in unlogged if tx not in erased
    ]
    if len(erased) > redacted:
        problems.append(f"point transactions {erased} have {redacted} redacted changelog rows")
    return problems


def _merge_records(step: _Step) -> list[str]:
    problems: list[str] = []
    edges = step.after.merges - step.before.merges
    redacted = {row.customer_id for row in step.redacted("merge")}
    for source in step.merged:
        target = step.after.customers[source][1]
        assert target is not None
        if (target, source) not in edges:
            problems.append(f"merge {source} -> {target}: no merge-tree edge")
        if source not in redacted and not any(
            row.customer_id == source
            and isinstance(row.new_value, dict)
            and row.new_value.get("merged_into") == target
            for row in step.merge_rows
        ):
            problems.append(f"merge {source} -> {target}: no merge row on the source")
        if target not in redacted and not any(
            row.customer_id == target
            and isinstance(row.new_value, dict)
            and source in row.new_value.get("sources", [])
            for row in step.merge_rows
        ):
            problems.append(f"merge {source} -> {target}: no merge row on the target")
    return problems


def _erase_records(step: _Step) -> list[str]:
    problems: list[str] = []
    was_active = step.before.ids_with("active")
    # The erase row is on the customer erased; one merged into it in the same step (a
    # burst) was active before the step and is erased with it.
    for survivor in {step.after.survivor(cid) for cid in step.erased & was_active}:
        if not step.logged(step.log, survivor, operation="erase"):
            problems.append(f"erase of {survivor}: no erase row in its changelog")
    erased = step.after.erased_people()
    for row in step.after.changelog.values():
        if row.customer_id in erased and row.operation != "erase":
            for value in (row.old_value, row.new_value):
                if value not in (None, ERASED):
                    problems.append(f"erased {row.customer_id}: changelog keeps {value!r}")
    for row in step.after.id_history.values():
        if row.customer_id in erased and ERASED != row.old_value:
            problems.append(f"erased {row.customer_id}: ID changelog keeps {row.old_value!r}")
    return problems
