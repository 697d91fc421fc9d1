"""The soak: a mixed workload for a long while at 70% of the capacity just measured.

`bench/soak [options]` (or `python -m bench.soak`): recreates the database, seeds
customers, starts `cdp serve`, then
1. measures the capacity of the mix (bench/mix.py) closed-loop with wrk, and the same mix
   of statements closed-loop with pgbench (the raw-PostgreSQL baseline);
2. runs the mix open-loop (bench/open_loop.py, a separate process) at `--load-share` of
   the API's capacity for `--duration` seconds, sampling the RSS of every API process;
3. runs the mix of statements open-loop with `pgbench --rate` at the same rate (latency
   baseline);
4. reports throughput, p50/p99/p99.9 per kind, errors (any is a failure), memory over
   time with a flatness verdict, and writes bench/results/soak-<timestamp>.json.
See bench/README.md ("Soak").
"""

import argparse
import asyncio
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench import database, memory
from bench.api_server import ApiServer, http
from bench.cpu import CpuSampler, CpuUsage
from bench.database import BenchSetupError, Prepared
from bench.harness import (
    BENCH_DIR,
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
    MeasurementError,
    parse_pgbench,
    pgbench_problems,
    run_wrk,
)
from bench.mix import (
    MIX,
    POINT_ACCOUNT,
    RICH_CUSTOMERS,
    RICH_POINTS,
    mix_spec,
    subscription_range,
)
from bench.open_loop import latency_summary
from bench.report import num, table
from bench.scenarios import ACTION_PAYLOAD, SQL_DIR, Scenario

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/cdp_bench_soak"
MIX_SCENARIO = Scenario("mix", "the soak's mix (bench/mix.py)", 200)
# The stored answer of a points transaction (idempotency), as long as the API's.
_TX_RESPONSE = json.dumps(
    {
        "id": "01a2285d-b5b1-70f2-bc4b-df7043e9c026",
        "customer_id": "01a2285d-5bc3-7550-9a7d-c0b69b87dd00",
        "origin_customer_id": "01a2285d-5bc3-7550-9a7d-c0b69b87dd00",
        "account": "bench",
        "type": "accrual",
        "amount": "10",
        "reason": None,
        "reference": "o-1",
        "available_at": "2026-11-29T17:32:39.599272Z",
        "expires_at": None,
        "reverses_id": None,
        "touchpoint": "admin",
        "initiator": "admin",
        "created_at": "2026-11-29T17:32:39.599272Z",
    }
)
_FINGERPRINT = "62602ccfef28ac0c38410752168aac3d5b438e7641bbf057dcabad0e75b7dfc8"
_GRACE_SECONDS = 90
# A request slower than this is an error, in wrk's runs as in the open-loop generator's.
_WRK_TIMEOUT_SECONDS = 30


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/soak",
        description="A mixed workload open-loop at a share of its measured capacity, for "
        "a long while: latency, errors, memory of the API over time, next to raw PostgreSQL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="dropped and recreated; its name must contain 'bench'",
    )
    parser.add_argument("--duration", type=int, default=600, help="seconds of open-loop soak")
    parser.add_argument(
        "--capacity-duration",
        type=int,
        default=30,
        help="seconds of each closed-loop capacity measurement (API, then PostgreSQL)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="seconds of unrecorded wrk load")
    parser.add_argument(
        "--connections", type=int, default=32, help="concurrent clients of the closed-loop runs"
    )
    parser.add_argument(
        "--load-share", type=float, default=0.7, help="soak rate as a share of the capacity"
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="soak rate in req/s (instead of --load-share)"
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seed-customers", type=int, default=20_000)
    parser.add_argument(
        "--sample-interval", type=float, default=10.0, help="seconds between RSS samples"
    )
    parser.add_argument(
        "--pg-rate-duration",
        type=int,
        default=60,
        help="seconds of pgbench --rate at the soak's rate (0: skip)",
    )
    parser.add_argument(
        "--pg-clients",
        type=int,
        default=16,
        help="pgbench clients (max_connections is shared with the API's pools, which hold "
        "up to 2 x --connections; 16 saturate PostgreSQL on a small machine)",
    )
    parser.add_argument(
        "--generator-connections",
        type=int,
        default=256,
        help="most connections the open-loop generator opens",
    )
    args = parser.parse_args(argv)
    for name in ("duration", "capacity_duration", "connections", "workers", "pg_clients"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.seed_customers < RICH_CUSTOMERS + 300:
        parser.error(f"--seed-customers must be at least {RICH_CUSTOMERS + 300}")
    if not 0 < args.load_share <= 1.5:
        parser.error("--load-share must be in (0, 1.5]")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    return args


# --- setup -------------------------------------------------------------------------------


def _give_points(server: ApiServer, prepared: Prepared, seeded_ids: list[str]) -> None:
    """The point account, and one large accrual for each customer redemptions spend from
    (through the API: the ledger, its lot and the balance as the service writes them)."""
    base, token = server.base_url, prepared.api_key
    answer = http(
        "POST",
        f"{base}/v1/point-accounts",
        token=token,
        body={"code": POINT_ACCOUNT, "name": "Bench points", "precision": 0},
    )
    if answer.status != 201:
        raise BenchSetupError(f"creating the point account: HTTP {answer.status} {answer.body}")

    def accrue(number: int) -> str | None:
        key = f"setup-{number}"
        result = http(
            "POST",
            f"{base}/v1/customers/{seeded_ids[number - 1]}/points/transactions",
            token=token,
            body={
                "account": POINT_ACCOUNT,
                "type": "accrual",
                "amount": str(RICH_POINTS),
                "reference": key,
            },
            timeout=30,
            extra_headers={"Idempotency-Key": key},
        )
        return None if result.status == 201 else f"HTTP {result.status} {result.body[:300]}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        failures = [f for f in pool.map(accrue, range(1, RICH_CUSTOMERS + 1)) if f]
    if failures:
        raise BenchSetupError(f"{len(failures)} setup accruals failed, first: {failures[0]}")


# --- closed loop: wrk and pgbench --------------------------------------------------------


def _wrk_env(prepared: Prepared, connections: int, part: str) -> dict[str, str]:
    first, last = subscription_range(prepared.seed_count, part)
    return {
        "BENCH_MIX": mix_spec(),
        "BENCH_RICH": str(RICH_CUSTOMERS),
        "BENCH_SUB_FIRST": str(first),
        "BENCH_SUB_LAST": str(last),
        "BENCH_THREADS": str(min(2, connections)),
    }


@dataclass(frozen=True)
class PgMix:
    """pgbench running the mix's scripts with the mix's weights."""

    throughput: float  # transactions per second
    transactions: int
    errors: int
    error_detail: str
    overall: dict[str, Any]
    kinds: dict[str, dict[str, Any]]  # per mix kind: latency summary
    cpu: CpuUsage | None
    rate: float | None  # --rate, None: closed loop


def _pg_variables(prepared: Prepared, prefix: str) -> dict[str, str]:
    first, last = subscription_range(prepared.seed_count, "pgbench")
    return {
        "subfirst": str(first),
        "sublast": str(last),
        "project": str(prepared.project_id),
        "keyid": str(prepared.key_id),
        "keyprefix": prepared.key_prefix,
        "seeds": str(prepared.seed_count),
        "rich": str(RICH_CUSTOMERS),
        "full": "1",
        "prefix": prefix,
        "payload": ACTION_PAYLOAD,
        "fingerprint": _FINGERPRINT,
        "txresponse": _TX_RESPONSE,
    }


def _pgbench_latencies_by_script(log_prefix: Path) -> dict[int, list[float]]:
    """Per script number (4th column of `--log` with several scripts), latencies in ms.
    With --rate the 3rd column counts from the scheduled start (it includes the lag)."""
    by_script: dict[int, list[float]] = {}
    for path in sorted(log_prefix.parent.glob(log_prefix.name + ".*")):
        with path.open() as log:
            for line in log:
                fields = line.split()
                if len(fields) >= 4 and fields[2].isdigit():
                    by_script.setdefault(int(fields[3]), []).append(int(fields[2]) / 1000.0)
        path.unlink()
    return by_script


def run_pgbench_mix(
    *,
    pgbench: str,
    url: str,
    prepared: Prepared,
    prefix: str,
    duration: int,
    connections: int,
    rate: float | None,
    workdir: Path,
    api_pid: int | None,
) -> PgMix:
    log_prefix = workdir / f"pgbench-mix-{prefix}"
    command = [
        pgbench,
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={connections}",
        f"--jobs={min(2, connections)}",
        f"--time={duration}",
        "--log",
        f"--log-prefix={log_prefix}",
    ]
    if rate is not None:
        command.append(f"--rate={rate:.1f}")
    for kind in MIX:
        command.append(f"--file={SQL_DIR / (kind.sql + '.sql')}@{kind.weight}")
    for name, value in _pg_variables(prepared, prefix).items():
        command += ["-D", f"{name}={value}"]
    command.append(url)
    with CpuSampler(api_pid) as sampler:
        try:
            completed = subprocess.run(  # noqa: S603
                command,
                env={**os.environ, "PGAPPNAME": "cdp-bench-soak"},
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=duration + _GRACE_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise MeasurementError(
                f"pgbench did not finish in {duration + _GRACE_SECONDS}s"
            ) from error
    output = completed.stdout + completed.stderr
    try:
        figures = parse_pgbench(output)
    except MeasurementError:
        raise MeasurementError(
            f"pgbench exited with code {completed.returncode}:\n" + output[-3000:]
        ) from None
    by_script = _pgbench_latencies_by_script(log_prefix)
    details = pgbench_problems(figures, output, completed.returncode)
    every = [v for values in by_script.values() for v in values]
    return PgMix(
        throughput=figures.tps,
        transactions=figures.transactions,
        errors=figures.failed + figures.aborted_clients + (1 if completed.returncode else 0),
        error_detail="; ".join(details),
        overall=latency_summary(every),
        kinds={kind.name: latency_summary(by_script.get(i, [])) for i, kind in enumerate(MIX)},
        cpu=sampler.usage,
        rate=rate,
    )


# --- open loop ---------------------------------------------------------------------------


@dataclass
class SoakOutcome:
    summary: dict[str, Any] | None
    intervals: list[dict[str, Any]]
    cpu: CpuUsage | None
    memory: list[memory.ProcessMemory]
    exit_code: int | None
    stderr_tail: str


def _generator_command(config_path: Path, smoke: bool) -> list[str]:
    command = [sys.executable, "-m", "bench.open_loop", "--config", str(config_path)]
    return [*command, "--smoke"] if smoke else command


def _generator_config(
    server: ApiServer,
    prepared: Prepared,
    *,
    part: str,
    rate: float,
    duration: float,
    run_prefix: str,
    max_connections: int,
    interval: float,
    path: Path,
) -> Path:
    first, last = subscription_range(prepared.seed_count, part)
    config = {
        "host": "127.0.0.1",
        "port": server.port,
        "ids_file": str(prepared.ids_file),
        "seed_count": prepared.seed_count,
        "run_prefix": run_prefix,
        "rate": rate,
        "duration": duration,
        "max_connections": max_connections,
        "interval_s": interval,
        "subscription_first": first,
        "subscription_last": last,
        "seed": secrets.randbelow(2**31),
    }
    path.write_text(json.dumps(config))
    return path


def _generator_env(prepared: Prepared) -> dict[str, str]:
    root = str(BENCH_DIR.parent)
    python_path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "BENCH_API_KEY": prepared.api_key,
        "PYTHONPATH": root if not python_path else f"{root}{os.pathsep}{python_path}",
    }


def smoke(server: ApiServer, prepared: Prepared, run_id: str, workdir: Path) -> list[str]:
    """One request of each kind through the soak's own generator and checks."""
    config = _generator_config(
        server,
        prepared,
        part="smoke",
        rate=1,
        duration=1,
        run_prefix=f"smoke-{run_id}",
        max_connections=1,
        interval=10,
        path=workdir / "smoke.json",
    )
    completed = subprocess.run(  # noqa: S603
        _generator_command(config, smoke=True),
        env=_generator_env(prepared),
        cwd=BENCH_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in completed.stdout.splitlines():
        if line.startswith('{"smoke"'):
            problems: list[str] = json.loads(line)["smoke"]
            return problems
    return [f"the generator exited {completed.returncode}: {completed.stderr[-2000:]}"]


def soak(
    server: ApiServer,
    prepared: Prepared,
    *,
    rate: float,
    duration: int,
    run_id: str,
    max_connections: int,
    sample_interval: float,
    workdir: Path,
) -> SoakOutcome:
    assert server.pid is not None
    config = _generator_config(
        server,
        prepared,
        part="soak",
        rate=rate,
        duration=duration,
        run_prefix=f"soak-{run_id}",
        max_connections=max_connections,
        interval=sample_interval,
        path=workdir / "soak.json",
    )
    intervals: list[dict[str, Any]] = []
    summary: dict[str, Any] | None = None
    stderr_path = workdir / "generator.stderr"
    deadline = time.monotonic() + duration + _GRACE_SECONDS
    with (
        stderr_path.open("w") as stderr_file,
        memory.MemorySampler(server.pid, sample_interval) as rss,
        CpuSampler(server.pid) as cpu,
    ):
        process = subprocess.Popen(  # noqa: S603
            _generator_command(config, smoke=False),
            env=_generator_env(prepared),
            cwd=BENCH_DIR.parent,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
        )
        try:
            summary = _follow(process.stdout, intervals, rss, sample_interval, deadline)
            exit_code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except BaseException:
            process.kill()
            process.wait()
            raise
    stderr_tail = stderr_path.read_text(errors="replace")[-3000:]
    return SoakOutcome(summary, intervals, cpu.usage, rss.processes(), exit_code, stderr_tail)


def _follow(
    stdout: IO[str] | None,
    intervals: list[dict[str, Any]],
    rss: memory.MemorySampler,
    sample_interval: float,
    deadline: float,
) -> dict[str, Any] | None:
    """Print the generator's interval lines as they come; return its summary."""
    assert stdout is not None
    for line in stdout:
        if time.monotonic() > deadline:
            raise MeasurementError("the open-loop generator ran past its deadline")
        if line.startswith('{"summary"'):
            summary: dict[str, Any] = json.loads(line)["summary"]
            return summary
        if not line.startswith('{"interval"'):
            continue
        point = json.loads(line)
        point["api_rss_mib"] = round(rss.latest_total_mib(), 1)
        intervals.append(point)
        say(
            f"  t={point['t_s']:6.0f}s  {point['completed'] / sample_interval:7.1f} req/s  "
            f"p50 {num(point['p50_ms'], 1):>7} ms  p99 {num(point['p99_ms'], 1):>8} ms  "
            f"errors {point['errors']}  in flight {point['in_flight']}  "
            f"API RSS {point['api_rss_mib']:.0f} MiB"
        )
    return None


# --- report ------------------------------------------------------------------------------


def _latency_row(label: str, figures: dict[str, Any], extra: Sequence[str] = ()) -> list[str]:
    return [
        label,
        *extra,
        num(figures.get("p50_ms"), 2),
        num(figures.get("p99_ms"), 2),
        num(figures.get("p999_ms"), 2),
        num(figures.get("max_ms"), 1),
    ]


def soak_table(summary: dict[str, Any], pg_rate: PgMix | None) -> str:
    headers = [
        "kind",
        "share",
        "sent",
        "ok",
        "errors",
        "shed",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
    ]
    if pg_rate is not None:
        headers += ["PG p50", "PG p99", "PG p99.9"]
    rows = []
    for kind in MIX:
        figures = summary["kinds"][kind.name]
        row = _latency_row(
            kind.name,
            figures,
            (
                f"{kind.weight}%",
                str(figures["sent"]),
                str(figures["count"]),
                str(figures["errors"]),
                str(figures["shed"]),
            ),
        )
        if pg_rate is not None:
            pg = pg_rate.kinds[kind.name]
            row += [
                num(pg.get("p50_ms"), 2),
                num(pg.get("p99_ms"), 2),
                num(pg.get("p999_ms"), 2),
            ]
        rows.append(row)
    overall = summary["overall"]
    row = _latency_row(
        "all",
        overall,
        (
            "100%",
            str(summary["sent"]),
            str(summary["completed_ok"]),
            str(summary["errors"]),
            str(summary["shed"]),
        ),
    )
    if pg_rate is not None:
        pg = pg_rate.overall
        row += [num(pg.get("p50_ms"), 2), num(pg.get("p99_ms"), 2), num(pg.get("p999_ms"), 2)]
    rows.append(row)
    return table(headers, rows)


def memory_table(verdicts: list[dict[str, Any]], window_s: float) -> str:
    headers = [
        "process",
        "pid",
        "samples",
        f"first {window_s:.0f}s MiB",
        f"last {window_s:.0f}s MiB",
        "growth MiB",
        "slope MiB/h",
        "2nd half MiB/h",
        "min..max MiB",
        "verdict",
    ]
    rows = [
        [
            str(v["role"]),
            str(v["pid"]),
            str(v["samples"]),
            f"{v['first_window_median_mib']:.1f}",
            f"{v['last_window_median_mib']:.1f}",
            f"{v['growth_mib']:+.1f}",
            f"{v['slope_mib_per_hour']:+.1f}",
            f"{v['second_half_slope_mib_per_hour']:+.1f}",
            f"{v['min_mib']:.0f}..{v['max_mib']:.0f}",
            str(v["verdict"]),
        ]
        for v in verdicts
    ]
    return table(headers, rows, left=2)


def _capacity_table(api: Measurement, pg: PgMix) -> str:
    headers = [
        "side",
        "req|tx/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "api cores",
        "pg cores",
        "load cores",
    ]

    def cpu(usage: CpuUsage | None) -> list[str]:
        if usage is None:
            return ["-", "-", "-"]
        return [f"{usage.api_cores:.2f}", f"{usage.postgres_cores:.2f}", f"{usage.load_cores:.2f}"]

    rows = [
        [
            "API (wrk)",
            num(api.throughput),
            num(api.p50_ms, 2),
            num(api.p99_ms, 2),
            str(api.errors),
            *cpu(api.cpu),
        ],
        [
            "PostgreSQL (pgbench)",
            num(pg.throughput),
            num(pg.overall.get("p50_ms"), 2),
            num(pg.overall.get("p99_ms"), 2),
            str(pg.errors),
            *cpu(pg.cpu),
        ],
    ]
    return table(headers, rows)


# --- the run -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    url: str = args.database_url
    database.database_name(url)
    wrk = tool("wrk", "install it (Debian: apt-get install wrk), or use bench/soak")
    pgbench = tool("pgbench", "install PostgreSQL's client tools (Debian: postgresql-15)")
    facts = asyncio.run(database.server_facts(database.maintenance_url(url)))
    started = datetime.now(UTC)
    run_id = secrets.token_hex(3)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")

    say("=" * 78)
    say(f"CDP soak  run {run_id}  {started:%Y-%m-%d %H:%M:%S} UTC")
    say(
        f"nproc: {cpus()}  ({platform.processor() or platform.machine()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    say(f"PostgreSQL: {facts['server_version']}  synchronous_commit={facts['synchronous_commit']}")
    say(f"wrk: {version([wrk, '--version'])}")
    say(f"pgbench: {version([pgbench, '--version'])}")
    say(f"database: {url}")
    say("mix: " + ", ".join(f"{kind.name} {kind.weight}%" for kind in MIX))
    rate_note = f"{args.rate} req/s" if args.rate else f"{args.load_share:.0%} of capacity"
    say(
        f"capacity {args.capacity_duration}s closed-loop at {args.connections} connections; "
        f"soak {args.duration}s open-loop at {rate_note}; {args.workers} API workers"
    )
    say("=" * 78)

    problems: list[str] = []
    interrupted = False
    server_log_copy: Path | None = None
    capacity: Measurement | None = None
    pg_capacity: PgMix | None = None
    pg_rate: PgMix | None = None
    outcome: SoakOutcome | None = None
    rate: float | None = None
    rss_readings: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="cdp-soak-") as tmp:
        workdir = Path(tmp)
        t0 = time.monotonic()
        say(f"setup: recreating the database, migrating, seeding {args.seed_customers} customers")
        prepared = database.prepare(
            url, seed_count=args.seed_customers, ids_file=workdir / "seeded_ids.txt"
        )
        seeded_ids = prepared.ids_file.read_text().split()
        server = ApiServer(
            database_url=url, workers=args.workers, connections=args.connections, workdir=workdir
        )
        try:
            server.start()
            assert server.pid is not None
            _give_points(server, prepared, seeded_ids)
            say(
                f"setup: done in {time.monotonic() - t0:.1f}s (API on {server.base_url}, "
                f"{RICH_CUSTOMERS} customers given {RICH_POINTS:,} points)"
            )
            rss_readings["after start"] = memory.MemorySampler(server.pid).sample()
            smoke_problems = smoke(server, prepared, run_id, workdir)
            if smoke_problems:
                raise MeasurementError("smoke requests failed: " + "; ".join(smoke_problems))
            say("smoke: one request of each kind answered as expected")

            target = ApiTarget(
                base_url=server.base_url,
                api_key=prepared.api_key,
                seed_count=prepared.seed_count,
                ids_file=prepared.ids_file,
                batch_size=1,
                api_pid=server.pid,
            )
            if args.warmup:
                say(f"warm-up: {args.warmup}s of the mix with wrk (not recorded)")
                warm = run_wrk(
                    MIX_SCENARIO,
                    target,
                    wrk=wrk,
                    duration=args.warmup,
                    connections=args.connections,
                    run_prefix=f"warm-{run_id}",
                    round_number=0,
                    workdir=workdir,
                    extra_env=_wrk_env(prepared, args.connections, "warmup"),
                    timeout_s=_WRK_TIMEOUT_SECONDS,
                )
                settle(server)
                if warm.errors:
                    problems.append(f"warm-up: {warm.errors} errors ({warm.error_detail})")

            say(f"capacity: the mix closed-loop with wrk, {args.capacity_duration}s")
            capacity = run_wrk(
                MIX_SCENARIO,
                target,
                wrk=wrk,
                duration=args.capacity_duration,
                connections=args.connections,
                run_prefix=f"cap-{run_id}",
                round_number=1,
                workdir=workdir,
                extra_env=_wrk_env(prepared, args.connections, "capacity"),
                timeout_s=_WRK_TIMEOUT_SECONDS,
            )
            settle(server)
            say(
                f"  API {capacity.throughput:,.1f} req/s  p50 {num(capacity.p50_ms, 2)} ms  "
                f"p99 {num(capacity.p99_ms, 2)} ms  errors {capacity.errors}"
            )
            if capacity.errors:
                problems.append(f"capacity run: {capacity.errors} errors ({capacity.error_detail})")
            rss_readings["after capacity"] = memory.MemorySampler(server.pid).sample()

            say(
                "baseline: the mix's statements closed-loop with pgbench, "
                f"{args.capacity_duration}s, {args.pg_clients} clients"
            )
            try:
                pg_capacity = run_pgbench_mix(
                    pgbench=pgbench,
                    url=url,
                    prepared=prepared,
                    prefix=f"pgcap-{run_id}-",
                    duration=args.capacity_duration,
                    connections=args.pg_clients,
                    rate=None,
                    workdir=workdir,
                    api_pid=server.pid,
                )
            except MeasurementError as error:
                problems.append(f"pgbench baseline failed: {error}")
                say(f"!!! {problems[-1]}")
            else:
                say(
                    f"  PostgreSQL {pg_capacity.throughput:,.1f} tps  "
                    f"p50 {num(pg_capacity.overall.get('p50_ms'), 2)} ms  "
                    f"p99 {num(pg_capacity.overall.get('p99_ms'), 2)} ms  "
                    f"errors {pg_capacity.errors}"
                )
                if pg_capacity.errors:
                    problems.append(
                        f"pgbench baseline: {pg_capacity.errors} errors "
                        f"({pg_capacity.error_detail})"
                    )

            rate = args.rate or round(args.load_share * capacity.throughput, 1)
            say(
                f"soak: the mix open-loop at {rate:,.1f} req/s for {args.duration}s "
                f"(RSS of the API's processes every {args.sample_interval:.0f}s)"
            )
            outcome = soak(
                server,
                prepared,
                rate=rate,
                duration=args.duration,
                run_id=run_id,
                max_connections=args.generator_connections,
                sample_interval=args.sample_interval,
                workdir=workdir,
            )
            settle(server)
            if outcome.summary is None or outcome.exit_code != 0:
                problems.append(
                    f"the open-loop generator exited {outcome.exit_code} without a summary: "
                    f"{outcome.stderr_tail}"
                )
            elif outcome.summary["errors"]:
                problems.append(
                    f"soak: {outcome.summary['errors']} errors, e.g. "
                    + " | ".join(outcome.summary["error_samples"][:3])
                )

            if args.pg_rate_duration:
                say(
                    f"baseline: the statements open-loop with pgbench --rate {rate:,.1f}, "
                    f"{args.pg_rate_duration}s"
                )
                try:
                    pg_rate = run_pgbench_mix(
                        pgbench=pgbench,
                        url=url,
                        prepared=prepared,
                        prefix=f"pgrate-{run_id}-",
                        duration=args.pg_rate_duration,
                        connections=args.pg_clients,
                        rate=rate,
                        workdir=workdir,
                        api_pid=server.pid,
                    )
                except MeasurementError as error:
                    # The soak's figures are in hand: report them with this problem.
                    problems.append(f"pgbench --rate failed: {error}")
                else:
                    if pg_rate.errors:
                        problems.append(
                            f"pgbench --rate: {pg_rate.errors} errors ({pg_rate.error_detail})"
                        )
        except KeyboardInterrupt:
            interrupted = True
            say("\ninterrupted: stopping the API and cleaning up")
        finally:
            server_log_copy = stop_server(server, problems, f"soak-{stamp}-server.log")

    if interrupted:
        problems.append("interrupted before the end: figures are partial")

    window = memory.window_for(args.duration)
    verdicts = [p.verdict(window) for p in outcome.memory] if outcome else []
    growing = [v for v in verdicts if not v["flat"]]
    if growing:
        problems.append(
            "memory not flat: "
            + "; ".join(
                f"{v['role']} {v['pid']} {v['first_window_median_mib']} -> "
                f"{v['last_window_median_mib']} MiB"
                for v in growing
            )
        )

    summary = outcome.summary if outcome else None
    meta: dict[str, Any] = {
        "kind": "soak",
        **run_metadata(run_id=run_id, started=started, facts=facts, wrk=wrk, pgbench=pgbench),
        "config": {
            "database": database.database_name(url),
            "duration_s": args.duration,
            "capacity_duration_s": args.capacity_duration,
            "connections": args.connections,
            "workers": args.workers,
            "seed_customers": args.seed_customers,
            "load_share": args.load_share,
            "rate": rate,
            "sample_interval_s": args.sample_interval,
            "mix": {kind.name: kind.weight for kind in MIX},
        },
    }
    result = {
        **meta,
        "ok": not problems,
        "problems": problems,
        "capacity": {
            "api": capacity.as_json() if capacity else None,
            "postgres": asdict(pg_capacity) if pg_capacity else None,
            "api_over_pg": (
                capacity.throughput / pg_capacity.throughput
                if capacity and pg_capacity and pg_capacity.throughput
                else None
            ),
        },
        "soak": {
            "summary": summary,
            "intervals": outcome.intervals if outcome else [],
            "cpu": asdict(outcome.cpu) if outcome and outcome.cpu else None,
        },
        "postgres_at_soak_rate": asdict(pg_rate) if pg_rate else None,
        "memory": {
            "window_s": window,
            "growth_threshold": {"mib": memory.GROWTH_MIB, "share": memory.GROWTH_SHARE},
            "readings_before_soak": {
                phase: {str(pid): round(v, 1) for pid, v in reading.items()}
                for phase, reading in rss_readings.items()
            },
            "processes": verdicts,
            "series": {
                str(p.pid): [[round(t, 1), round(v, 1)] for t, v in p.samples]
                for p in (outcome.memory if outcome else [])
            },
        },
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"soak-{stamp}.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n")

    say()
    if capacity and pg_capacity:
        say(
            f"Capacity, closed loop, {args.capacity_duration}s, API at {args.connections} "
            f"connections, PG at {args.pg_clients} clients (the same mix, the same statements):"
        )
        say(_capacity_table(capacity, pg_capacity))
        ratio = result["capacity"]["api_over_pg"]
        say(f"API/PG: {num(ratio, 2)} (API req/s over PostgreSQL tps of the same statements)")
        say()
    if summary is not None and rate is not None:
        say(
            f"Soak, open loop: {summary['sent']} requests due at {rate:,.1f}/s over "
            f"{args.duration}s (sent at {summary['sent_rate']:,.1f}/s), "
            f"{summary['completed_ok']} answered right, {summary['errors']} errors; "
            "latency from each request's due time:"
        )
        pg_note = "" if pg_rate is None else f" (PG: pgbench --rate {rate:,.1f}, same mix)"
        say(soak_table(summary, pg_rate) + ("\n" + pg_note.strip() if pg_note else ""))
        gen = summary["generator"]
        lag = gen["schedule_lag_ms"]
        say(
            f"generator: {gen['cpu_cores']:.2f} cores, schedule lag p99 {num(lag['p99'], 2)} ms "
            f"(max {num(lag['max'], 1)}), {gen['connections_opened']} connections opened, "
            f"{gen['stale_connection_retries']} stale-connection retries"
        )
        if outcome and outcome.cpu:
            say(f"during the soak: {outcome.cpu.describe()}")
        say()
    if verdicts:
        say(
            f"Memory (RSS) of the API's processes during the soak, first vs last {window:.0f}s "
            f"(flat: growth under {memory.GROWTH_MIB:.0f} MiB or {memory.GROWTH_SHARE:.0%}; "
            "plateau: grew, then not over the second half; GROWING fails the run):"
        )
        say(memory_table(verdicts, window))
        say()
    return finish(
        json_path=json_path,
        server_log_copy=server_log_copy,
        problems=problems,
        heading="the soak",
        interrupted=interrupted,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(argv, parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
