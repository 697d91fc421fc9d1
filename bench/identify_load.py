"""Load on the customer and action-ingest endpoints, next to the raw-PostgreSQL cost of
the same SQL.

`bench/run [options]` (or `python -m bench.identify_load`): recreates the database, seeds
customers, declares an action type, starts `cdp serve`, then for every round and scenario
measures the API with wrk and the equivalent statements with pgbench, at the same
concurrency. Prints medians, per-round figures and where the CPU went; writes
bench/results/<timestamp>.json.
See bench/README.md for what each baseline includes and leaves out.
"""

import argparse
import asyncio
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import database, report
from bench.api_server import ApiServer, ServerError, http
from bench.database import Prepared
from bench.harness import (
    RESULTS_DIR,
    cpus,
    finish,
    run_main,
    run_metadata,
    say,
    settle,
    stop_server,
    tool,
    version,
)
from bench.measure import (
    ApiTarget,
    Measurement,
    PgTarget,
    run_pgbench,
    run_wrk,
)
from bench.scenarios import (
    ACTION_PAYLOAD,
    ACTION_TYPE,
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    SCENARIOS,
    Scenario,
    select_scenarios,
)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/cdp_bench"
# Connections the harness and the server's own checks may need beyond the load's.
_CONNECTION_MARGIN = 10


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="HTTP API vs raw PostgreSQL on the identify/lookup/get and action-ingest "
        "endpoints.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="dropped and recreated; its name must contain 'bench'",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per scenario and side")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seed-customers", type=int, default=20_000)
    parser.add_argument(
        "--scenarios",
        default="all",
        help=f"all, or a comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"actions per POST /v1/actions/batch (action_batch), 1..{MAX_BATCH_SIZE}",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="seconds of unrecorded load per scenario before the first round (0: none)",
    )
    parser.add_argument(
        "--baseline",
        choices=("core", "full"),
        default="full",
        help="full: every statement the API sends (with the API-key lookup); core: only "
        "the use case's own",
    )
    args = parser.parse_args(argv)
    for name in ("duration", "connections", "rounds", "workers", "seed_customers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if not 1 <= args.batch_size <= MAX_BATCH_SIZE:
        # pgbench takes at most 255 parameters per statement (the row-lock statement).
        parser.error(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}")
    try:
        args.scenario_list = select_scenarios(args.scenarios)
    except ValueError as error:
        parser.error(str(error))
    return args


def _action(customer_id: str, external_id: str | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {
        "customer": {"customer_id": customer_id},
        "type": ACTION_TYPE,
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": json.loads(ACTION_PAYLOAD),
    }
    if external_id is not None:
        action["external_id"] = external_id
    return action


def _smoke(
    scenario: Scenario,
    server: ApiServer,
    prepared: Prepared,
    seeded_ids: list[str],
    run_id: str,
    batch_size: int,
) -> str | None:
    """One request of the scenario before the load: None if it answers as it should."""
    base, token = server.base_url, prepared.api_key
    first_id = seeded_ids[0]
    body: dict[str, Any] = {"profile": {"first_name": "Bench"}}
    expected_result: str | None = None
    expected_stored: int | None = None
    if scenario.name == "identify_new":
        body["identifiers"] = {"email": f"smoke-{run_id}@bench.example"}
        answer = http("POST", f"{base}/v1/customers/identify", token=token, body=body)
        expected_result = "created"
    elif scenario.name == "identify_existing":
        body["identifiers"] = {"email": "seed1@bench.example"}
        answer = http("POST", f"{base}/v1/customers/identify", token=token, body=body)
        expected_result = "unchanged"
    elif scenario.name == "lookup_email":
        answer = http("GET", f"{base}/v1/customers/lookup?email=seed1%40bench.example", token=token)
    elif scenario.name == "action_single":
        action = _action(first_id, external_id=f"smoke-{run_id}")
        answer = http("POST", f"{base}/v1/actions", token=token, body=action)
    elif scenario.name == "action_batch":
        actions = [_action(seeded_ids[k % len(seeded_ids)]) for k in range(batch_size)]
        answer = http("POST", f"{base}/v1/actions/batch", token=token, body={"actions": actions})
        expected_stored = batch_size
    else:
        answer = http("GET", f"{base}/v1/customers/{first_id}", token=token)
    if answer.status != scenario.expected_status:
        return (
            f"{scenario.name}: expected HTTP {scenario.expected_status}, got {answer.status}: "
            f"{answer.body[:500]}"
        )
    payload = answer.json()
    if expected_result is not None and (
        not isinstance(payload, dict) or payload.get("result") != expected_result
    ):
        got = payload.get("result") if isinstance(payload, dict) else answer.body[:200]
        return f"{scenario.name}: expected result {expected_result!r}, got {got!r}"
    if expected_stored is not None and (
        not isinstance(payload, dict)
        or payload.get("stored") != expected_stored
        or payload.get("rejected") != 0
    ):
        return f"{scenario.name}: expected {expected_stored} stored, got {answer.body[:500]}"
    return None


def _describe(m: Measurement) -> str:
    unit = "req/s" if m.side == "api" else "tps  "
    p50 = "-" if m.p50_ms is None else f"{m.p50_ms:7.2f}"
    p99 = "-" if m.p99_ms is None else f"{m.p99_ms:7.2f}"
    line = f"  round {m.round}  {m.scenario:<18} {m.side:<8} {m.throughput:9.1f} {unit}"
    if m.actions_per_second is not None:
        line += f" ({m.actions_per_second:,.0f} actions/s)"
    line += f"  p50 {p50} ms  p99 {p99} ms  errors {m.errors}"
    if m.cpu is not None:
        line += f"  | {m.cpu.describe()}"
    if m.error_detail:
        line += f"\n    !!! {m.error_detail}"
    return line


def run(args: argparse.Namespace) -> int:
    scenarios: list[Scenario] = args.scenario_list
    url: str = args.database_url
    database.database_name(url)
    wrk = tool("wrk", "install it (Debian: apt-get install wrk), or use bench/run")
    pgbench = tool("pgbench", "install PostgreSQL's client tools (Debian: postgresql-15)")
    facts = asyncio.run(database.server_facts(database.maintenance_url(url)))
    started = datetime.now(UTC)
    run_id = secrets.token_hex(3)
    pool_needed = args.connections + _CONNECTION_MARGIN
    free = int(facts["max_connections"]) - int(facts["connections_in_use"])

    say("=" * 78)
    say(f"CDP API benchmark  run {run_id}  {started:%Y-%m-%d %H:%M:%S} UTC")
    say(
        f"nproc: {cpus()}  ({platform.processor() or platform.machine()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    say(f"PostgreSQL: {facts['version']}")
    say(
        f"  synchronous_commit={facts['synchronous_commit']}  "
        f"max_connections={facts['max_connections']} ({facts['connections_in_use']} in use)"
    )
    say(f"wrk: {version([wrk, '--version'])}")
    say(f"pgbench: {version([pgbench, '--version'])}")
    say(f"database: {url}")
    batch_note = (
        f"; batches of {args.batch_size} actions"
        if any(s.ingest == "batch" for s in scenarios)
        else ""
    )
    say(
        f"scenarios: {', '.join(s.name for s in scenarios)}; rounds {args.rounds} x "
        f"{args.duration}s; {args.connections} connections; {args.workers} API workers; "
        f"baseline {args.baseline}{batch_note}"
    )
    say("=" * 78)
    if pool_needed > free:
        say(
            f"warning: PostgreSQL has {free} free connections; the load needs about "
            f"{pool_needed}. Expect connection errors (lower --connections?)."
        )

    measurements: list[Measurement] = []
    problems: list[str] = []
    interrupted = False
    server_log_copy: Path | None = None
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(prefix="cdp-bench-") as tmp:
        workdir = Path(tmp)
        t0 = time.monotonic()
        say(f"setup: recreating the database, migrating, seeding {args.seed_customers} customers")
        prepared = database.prepare(
            url, seed_count=args.seed_customers, ids_file=workdir / "seeded_ids.txt"
        )
        seeded_ids = prepared.ids_file.read_text().split()
        say(f"setup: done in {time.monotonic() - t0:.1f}s (project {prepared.project_id})")

        server = ApiServer(
            database_url=url,
            workers=args.workers,
            connections=args.connections,
            workdir=workdir,
        )
        try:
            say(
                f"api: starting cdp serve on {server.base_url} ({args.workers} workers, "
                f"pool {server.pool_size} + overflow {server.max_overflow} per worker)"
            )
            server.start()
            say("api: ready")
            api_target = ApiTarget(
                base_url=server.base_url,
                api_key=prepared.api_key,
                seed_count=prepared.seed_count,
                ids_file=prepared.ids_file,
                batch_size=args.batch_size,
                api_pid=server.pid,
            )
            pg_target = PgTarget(
                database_url=url,
                variables={
                    "project": str(prepared.project_id),
                    "keyid": str(prepared.key_id),
                    "keyprefix": prepared.key_prefix,
                    "seeds": str(prepared.seed_count),
                    "full": "1" if args.baseline == "full" else "0",
                    "prefix": "unset",
                    "payload": ACTION_PAYLOAD,
                },
                batch_size=args.batch_size,
                api_pid=server.pid,
            )

            healthy: list[Scenario] = []
            for scenario in scenarios:
                problem = _smoke(scenario, server, prepared, seeded_ids, run_id, args.batch_size)
                if problem is None:
                    healthy.append(scenario)
                else:
                    problems.append(f"smoke request failed, API not measured: {problem}")
                    say(f"!!! {problems[-1]}")

            if args.warmup:
                say(f"warm-up: {args.warmup}s per scenario (not recorded)")
                for scenario in healthy:
                    warmup = run_wrk(
                        scenario,
                        api_target,
                        wrk=wrk,
                        duration=args.warmup,
                        connections=args.connections,
                        run_prefix=f"warm-{run_id}-{scenario.name}",
                        round_number=0,
                        workdir=workdir,
                    )
                    settle(server)
                    if warmup.errors:
                        problems.append(
                            f"warm-up {scenario.name}: {warmup.errors} errors "
                            f"({warmup.error_detail})"
                        )
                        say(f"!!! {problems[-1]}")

            for round_number in range(1, args.rounds + 1):
                say(f"round {round_number}/{args.rounds}")
                for scenario in scenarios:
                    sides = ["api", "postgres"]
                    # Alternate which side goes first, so neither always gets the warmer cache.
                    if round_number % 2 == 0:
                        sides.reverse()
                    for side in sides:
                        if side == "api":
                            if scenario not in healthy:
                                continue
                            if not server.alive():
                                raise ServerError(
                                    "the API exited during the run\n" + server.log_tail()
                                )
                            measurement = run_wrk(
                                scenario,
                                api_target,
                                wrk=wrk,
                                duration=args.duration,
                                connections=args.connections,
                                run_prefix=f"api-{run_id}-{scenario.name}-r{round_number}",
                                round_number=round_number,
                                workdir=workdir,
                            )
                        else:
                            pg_target.variables["prefix"] = f"pg-{run_id}-r{round_number}-"
                            measurement = run_pgbench(
                                scenario,
                                pg_target,
                                pgbench=pgbench,
                                duration=args.duration,
                                connections=args.connections,
                                round_number=round_number,
                                workdir=workdir,
                            )
                        measurements.append(measurement)
                        say(_describe(measurement))
                        if side == "api":
                            settle(server)
                        if measurement.errors:
                            problems.append(
                                f"round {round_number} {scenario.name} {side}: "
                                f"{measurement.errors} errors ({measurement.error_detail})"
                            )
        except KeyboardInterrupt:
            interrupted = True
            say("\ninterrupted: stopping the API and cleaning up")
        finally:
            server_log_copy = stop_server(server, problems, f"{stamp}-server.log")

    if interrupted:
        problems.append("interrupted before the end: figures are partial")
    summaries = report.summarize(
        [(s.name, s.actions_per_request(args.batch_size)) for s in scenarios], measurements
    )
    meta: dict[str, Any] = {
        **run_metadata(run_id=run_id, started=started, facts=facts, wrk=wrk, pgbench=pgbench),
        "config": {
            "database": database.database_name(url),
            "duration_s": args.duration,
            "connections": args.connections,
            "rounds": args.rounds,
            "workers": args.workers,
            "seed_customers": args.seed_customers,
            "warmup_s": args.warmup,
            "scenarios": [s.name for s in scenarios],
            "baseline": args.baseline,
            "batch_size": args.batch_size,
            "pgbench_protocol": "prepared",
        },
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"{stamp}.json"
    report.write_json(
        json_path, meta=meta, summaries=summaries, measurements=measurements, problems=problems
    )

    say()
    say("Per round (cpu: whole-machine busy share; cores used by the API processes,")
    say("all PostgreSQL backends, and wrk/pgbench, sampled from /proc):")
    say(report.rounds_table(measurements) if measurements else "(no measurement)")
    say()
    say(
        f"Medians over {args.rounds} round(s), {args.duration}s each, {args.connections} "
        f"connections, nproc {cpus()}, PostgreSQL {facts['server_version']}, "
        f"baseline {args.baseline}:"
    )
    say(report.summary_table(summaries))
    say("API/PG: API requests/s divided by PostgreSQL transactions/s of the same statements.")
    if any(s.actions_per_request is not None for s in summaries):
        say()
        say("Action ingest (one baseline transaction stores what one request stores):")
        say(report.actions_table(summaries))
        say("API/PG: API actions/s divided by PostgreSQL rows/s into `actions`.")
    return finish(
        json_path=json_path,
        server_log_copy=server_log_copy,
        problems=problems,
        heading="this run",
        interrupted=interrupted,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(argv, parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
