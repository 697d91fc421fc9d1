"""What the state machine predicts about one project, and how that compares with the data.

The model knows which customers exist, which was merged into which, which were erased,
each survivor's points, who holds each identifier the API shows (email, phone, cards,
external ids) and the first answer of every point transaction's Idempotency-Key. It is
a plain value: a burst copies it once per serial order it tries (see serial.py).
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.invariants.snapshot import Snapshot

Ref = tuple[str, str]  # (kind, value) as stored: ("email", "ann@example.com")

# Device identifiers move with registrations the model does not follow; the API never
# shows them, and the ownership invariants (checks.py) cover them.
UNTRACKED_KINDS = frozenset({"app_installation", "push_token"})


@dataclass(frozen=True)
class Answer:
    """The first answer to an Idempotency-Key: what every replay must repeat."""

    status: int
    content: bytes


@dataclass
class Model:
    ids: list[str] = field(default_factory=list)  # every customer made, in order
    parent: dict[str, str] = field(default_factory=dict)  # merged id -> merged into
    erased: set[str] = field(default_factory=set)  # erased survivors (their merged stay merged)
    balance: dict[str, Decimal] = field(default_factory=dict)  # live customer -> points
    owners: dict[Ref, str] = field(default_factory=dict)  # identifier -> live customer
    answered: dict[str, Answer] = field(default_factory=dict)  # Idempotency-Key -> 201
    writes: int = 0  # requests of this step that may have written, in the order judged

    def copy(self) -> "Model":
        return Model(
            ids=list(self.ids),
            parent=dict(self.parent),
            erased=set(self.erased),
            balance=dict(self.balance),
            owners=dict(self.owners),
            answered=dict(self.answered),
            writes=self.writes,
        )

    # -- reading -----------------------------------------------------------------------

    def root(self, customer_id: str) -> str:
        while customer_id in self.parent:
            customer_id = self.parent[customer_id]
        return customer_id

    def merged_into(self, root: str) -> set[str]:
        return {cid for cid in self.ids if cid != root and self.root(cid) == root}

    def is_live(self, customer_id: str) -> bool:
        return customer_id not in self.parent and customer_id not in self.erased

    def is_gone(self, customer_id: str) -> bool:
        """Erased, or merged into someone erased: every request about it is a 404."""
        return self.root(customer_id) in self.erased

    def held_by(self, customer_id: str) -> set[Ref]:
        return {ref for ref, owner in self.owners.items() if owner == customer_id}

    def matches(self, refs: set[Ref], named: str | None) -> set[str]:
        """The live customers an identify of these identifiers (and this id) finds."""
        found = {self.owners[ref] for ref in refs if ref in self.owners}
        return found | ({self.root(named)} if named is not None else set())

    # -- changing ----------------------------------------------------------------------

    def merge(self, target: str, source: str) -> None:
        self.parent[source] = target
        moved = self.balance.pop(source, Decimal(0))
        self.balance[target] = self.balance.get(target, Decimal(0)) + moved

    def hold(self, customer_id: str, shown: set[Ref]) -> None:
        """After a write answered with the customer: it holds exactly what the answer shows
        (what it and those merged into it held before and is not shown was removed)."""
        for ref, owner in list(self.owners.items()):
            if self.root(owner) == customer_id:
                del self.owners[ref]
        self.owners.update(dict.fromkeys(shown, customer_id))

    def erase(self, root: str) -> None:
        self.erased.add(root)
        self.owners = {ref: c for ref, c in self.owners.items() if self.root(c) != root}

    # -- against the data --------------------------------------------------------------

    def problems(
        self, after: Snapshot, balances: dict[tuple[str, str], dict[str, Any]]
    ) -> list[str]:
        """Where the stored statuses, balances and identifier owners are not the model's."""
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
        stored = {
            ref: owner for ref, owner in after.identifiers.items() if ref[0] not in UNTRACKED_KINDS
        }
        for ref in sorted(stored.keys() | self.owners.keys()):
            if stored.get(ref) != self.owners.get(ref):
                problems.append(
                    f"identifier {ref[0]}={ref[1]} belongs to {stored.get(ref)}, "
                    f"model: {self.owners.get(ref)}"
                )
        return problems
