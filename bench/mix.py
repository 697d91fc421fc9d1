"""The soak's mixed workload: which requests, in which proportions, and who they address.

One table drives the three load generators: wrk's closed-loop capacity run
(bench/lua/mix.lua reads BENCH_MIX), the open-loop soak (bench/open_loop.py) and the
pgbench baseline (`-f bench/sql/<script>.sql@<weight>`), so the three send the same mix.

Who is addressed, out of the seeded customers seed1..seedN (bench/database.py):
- the first RICH_CUSTOMERS are given a large accrual during setup; redemptions take one
  point from one of them (they always have enough: a redemption is never a 409), and no
  other request kind writes points to them, so each keeps exactly one lot;
- accruals go to the others;
- subscription changes use a range of customers per generator (`subscription_range`):
  each generator knows the status it last set and always sends the other one, so every
  decision is a change (a repeated status is answered 200 "changed": false and writes
  nothing, which would make the baseline's statements wrong).
"""

from dataclasses import dataclass

# Customers (seed1..seedN, N = RICH_CUSTOMERS) that redemptions spend from.
RICH_CUSTOMERS = 500
RICH_POINTS = 1_000_000
POINT_ACCOUNT = "bench"


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int  # percent of the requests
    method: str
    expected_status: int
    # The pgbench script of the same statements (bench/sql/<sql>.sql).
    sql: str
    description: str


# Proportions of a shop's traffic to its CDP: events dominate, then "who is this" calls from
# logins and checkouts (identify: mostly known customers; lookups from support tools and
# other services), points on purchases and checkouts, and now and then a consent change.
MIX: tuple[Kind, ...] = (
    Kind(
        "action",
        35,
        "POST",
        201,
        "action_single",
        "POST /v1/actions: one bench.purchase action, a random seeded customer_id, a new "
        "external_id",
    ),
    Kind(
        "identify_existing",
        20,
        "POST",
        200,
        "identify_existing",
        "POST /v1/customers/identify: a seeded email, the profile it has (unchanged)",
    ),
    Kind(
        "lookup_email",
        15,
        "GET",
        200,
        "lookup_email",
        "GET /v1/customers/lookup?email=<seeded email>",
    ),
    Kind(
        "identify_new",
        10,
        "POST",
        201,
        "identify_new",
        "POST /v1/customers/identify: a new email (creates a customer)",
    ),
    Kind(
        "points_accrual",
        8,
        "POST",
        201,
        "points_accrual",
        "POST /v1/customers/{id}/points/transactions: accrual of 10 points, a new Idempotency-Key",
    ),
    Kind(
        "points_redemption",
        4,
        "POST",
        201,
        "points_redemption",
        "POST /v1/customers/{id}/points/transactions: redemption of 1 point from a "
        "customer who has plenty",
    ),
    Kind(
        "subscription_change",
        8,
        "PUT",
        200,
        "subscription_change",
        "PUT /v1/customers/{id}/subscriptions: email subscribed <-> unsubscribed (always a change)",
    ),
)
KINDS: dict[str, Kind] = {kind.name: kind for kind in MIX}
assert sum(kind.weight for kind in MIX) == 100


def mix_spec() -> str:
    """`name:weight,...`: how wrk's script learns the mix (BENCH_MIX)."""
    return ",".join(f"{kind.name}:{kind.weight}" for kind in MIX)


# The parts of the seeded customers (past the rich ones) whose subscriptions each
# generator changes: disjoint, so each generator knows every status it finds (it set them
# itself). pgbench upserts and does not care, but must stay out of the others' parts.
SUBSCRIPTION_PARTS = ("warmup", "capacity", "soak", "smoke", "pgbench")


def subscription_range(seed_count: int, part: str) -> tuple[int, int]:
    """Seed numbers (first, last) of the customers whose subscriptions `part` changes."""
    size = (seed_count - RICH_CUSTOMERS) // len(SUBSCRIPTION_PARTS)
    if size < 1:
        raise ValueError(f"need more than {RICH_CUSTOMERS + len(SUBSCRIPTION_PARTS)} customers")
    first = RICH_CUSTOMERS + 1 + SUBSCRIPTION_PARTS.index(part) * size
    return first, first + size - 1
