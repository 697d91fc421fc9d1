"""The four use cases measured: a wrk script against the API and a pgbench script of the SQL."""

from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
LUA_DIR = BENCH_DIR / "lua"
SQL_DIR = BENCH_DIR / "sql"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    # The status a correct answer has (checked once before the load, and by wrk's error count).
    expected_status: int

    @property
    def lua(self) -> Path:
        return LUA_DIR / f"{self.name}.lua"

    @property
    def sql(self) -> Path:
        return SQL_DIR / f"{self.name}.sql"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "identify_new",
            "POST /v1/customers/identify, an email nobody has (creates a customer)",
            201,
        ),
        Scenario(
            "identify_existing",
            "POST /v1/customers/identify, a seeded email, same profile (unchanged)",
            200,
        ),
        Scenario("lookup_email", "GET /v1/customers/lookup?email=<seeded>", 200),
        Scenario("get_customer", "GET /v1/customers/{seeded id}", 200),
    )
}


def select_scenarios(spec: str) -> list[Scenario]:
    """`all` or a comma-separated list of names, in the order given."""
    if spec.strip() == "all":
        return list(SCENARIOS.values())
    chosen: list[Scenario] = []
    for name in (part.strip() for part in spec.split(",")):
        if not name:
            continue
        if name not in SCENARIOS:
            known = ", ".join(SCENARIOS)
            raise ValueError(f"unknown scenario {name!r}; known: {known} (or all)")
        if SCENARIOS[name] not in chosen:
            chosen.append(SCENARIOS[name])
    if not chosen:
        raise ValueError("no scenario selected")
    return chosen
