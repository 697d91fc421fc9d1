"""The use cases measured: a wrk script against the API and a pgbench script of the SQL."""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

BENCH_DIR = Path(__file__).resolve().parent
LUA_DIR = BENCH_DIR / "lua"
SQL_DIR = BENCH_DIR / "sql"

# The action type the ingest scenarios send, declared during setup (bench/database.py).
ACTION_TYPE = "bench.purchase"
ACTION_SCHEMA = {
    "type": "object",
    "properties": {"sku": {"type": "string"}, "price": {"type": "number"}},
    "required": ["sku"],
}
# 100 bytes of JSON, the size of the payloads the wrk scripts send (other SKUs and prices).
ACTION_PAYLOAD = (
    '{"sku":"SKU-0012345","price":19.99,"currency":"EUR","quantity":2,'
    '"store":"web-eu-1","channel":"app"}'
)
DEFAULT_BATCH_SIZE = 100
# pgbench takes at most 255 parameters per statement; the batch's row-lock statement has
# one per action plus the project.
MAX_BATCH_SIZE = 250

# Templates of pgbench scripts (bench/sql/action_batch.sql), expanded for the batch size:
# a line starting with `@each ` is written once per action, `{k}` replaced by 1, 2, ...;
# `[[fragment]]` becomes the fragment once per action, joined by ", ".
_EACH = "@each "
_JOIN = re.compile(r"\[\[(.*?)\]\]")
_TEMPLATE_MARK = re.compile(r"^@each |\[\[", re.M)
# pgbench 15 (and older) writes past its array of commands when the command followed by
# `\gset` fills the array's last slot (ParseScript skips the growth check after a \gset;
# the array grows by 128), and crashes or corrupts the script. A client-side no-op before
# such a command moves it to the next slot.
_PGBENCH_COMMANDS_ALLOC = 128
_PGBENCH_NO_OP = "\\set bench_no_op 0"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    # The status a correct answer has (checked once before the load, and by wrk's error count).
    expected_status: int
    # Action ingest: one action per request, or a batch of --batch-size actions.
    ingest: Literal["single", "batch"] | None = None

    @property
    def lua(self) -> Path:
        return LUA_DIR / f"{self.name}.lua"

    @property
    def sql(self) -> Path:
        return SQL_DIR / f"{self.name}.sql"

    @property
    def reads_answers(self) -> bool:
        """Its wrk script checks every answer's content and prints a `bench-check:` line."""
        return self.ingest is not None

    def actions_per_request(self, batch_size: int) -> int | None:
        """Actions one request (and one baseline transaction) stores; None: not ingest."""
        if self.ingest == "single":
            return 1
        if self.ingest == "batch":
            return batch_size
        return None

    def pgbench_script(self, batch_size: int, workdir: Path) -> Path:
        """The script pgbench runs: bench/sql/<name>.sql itself, or, for a template, the
        script it expands to for this batch size (written to `workdir`)."""
        text = self.sql.read_text()
        if not _TEMPLATE_MARK.search(text):
            return self.sql
        rendered = workdir / f"{self.name}-{batch_size}.sql"
        rendered.write_text(expand_template(text, batch_size))
        return rendered


def expand_template(text: str, size: int) -> str:
    def each(fragment: str) -> list[str]:
        return [fragment.replace("{k}", str(k)) for k in range(1, size + 1)]

    lines: list[str] = []
    for line in text.splitlines():
        line = _JOIN.sub(lambda found: ", ".join(each(found.group(1))), line)
        lines.extend(each(line.removeprefix(_EACH)) if line.startswith(_EACH) else [line])
    return "\n".join(_around_gset_bug(lines)) + "\n"


def _around_gset_bug(lines: list[str]) -> list[str]:
    """No command with `\\gset` in a slot that ends pgbench's array of commands (one
    command per line in our scripts: blank and comment lines are none)."""
    out: list[str] = []
    commands = 0
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            if stripped.endswith("\\gset") and (commands + 1) % _PGBENCH_COMMANDS_ALLOC == 0:
                out.append(_PGBENCH_NO_OP)
                commands += 1
            commands += 1
        out.append(line)
    return out


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
        Scenario(
            "action_single",
            "POST /v1/actions, a random seeded customer_id, with an external_id",
            201,
            ingest="single",
        ),
        Scenario(
            "action_batch",
            "POST /v1/actions/batch, --batch-size actions for random seeded customer_ids",
            200,
            ingest="batch",
        ),
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
