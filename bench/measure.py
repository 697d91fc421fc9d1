"""One measurement: wrk against the API or pgbench against PostgreSQL, parsed."""

import math
import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.cpu import CpuSampler, CpuUsage
from bench.scenarios import LUA_DIR, Scenario

# Beyond the measured duration: connection set-up, wrk's and pgbench's own teardown.
_GRACE_SECONDS = 60
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


class MeasurementError(Exception):
    """A load tool failed outright (not: some requests failed, which is counted)."""


@dataclass
class Measurement:
    side: str  # "api" (wrk over HTTP) or "postgres" (pgbench)
    scenario: str
    round: int
    throughput: float  # requests/s (API) or transactions/s (PostgreSQL)
    # Ingest scenarios: actions stored per second (throughput x actions per request).
    actions_per_second: float | None
    p50_ms: float | None
    p99_ms: float | None
    completed: int  # responses (API) or transactions (PostgreSQL)
    errors: int  # non-2xx and socket errors (API); failed or aborted (PostgreSQL)
    error_detail: str
    cpu: CpuUsage | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _per_second(throughput: float, scenario: Scenario, batch_size: int) -> float | None:
    per_request = scenario.actions_per_request(batch_size)
    return None if per_request is None else throughput * per_request


def _run(
    command: list[str],
    *,
    env: dict[str, str] | None,
    cwd: Path,
    timeout: float,
    api_pid: int | None,
) -> tuple[subprocess.CompletedProcess[str], CpuUsage | None]:
    sampler = CpuSampler(api_pid)
    with sampler:
        try:
            completed = subprocess.run(  # noqa: S603
                command,
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise MeasurementError(f"{command[0]} did not finish in {timeout:.0f}s") from error
    return completed, sampler.usage


# --- wrk --------------------------------------------------------------------------------

_WRK_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_WRK_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.M)
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
# Printed by the done() of scripts that read the answers (bench/lua/common.lua: report).
_WRK_CHECK = re.compile(r"^bench-check: (\d+) unexpected of (\d+) checked$", re.M)


@dataclass(frozen=True)
class WrkFigures:
    requests_per_second: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    # Answers the script read (None: it reads none) and those not as the scenario expects.
    checked: int | None = None
    unexpected: int = 0


def parse_wrk(output: str) -> WrkFigures:
    """The figures of `wrk --latency` output; MeasurementError if it is not there."""
    rps = _WRK_RPS.search(output)
    requests = _WRK_REQUESTS.search(output)
    percentiles = {
        int(m.group(1)): float(m.group(2)) * _UNIT_MS[m.group(3)]
        for m in _WRK_PERCENTILE.finditer(output)
    }
    if rps is None or requests is None or 50 not in percentiles or 99 not in percentiles:
        raise MeasurementError("cannot read wrk's output:\n" + _tail(output))
    non_2xx = _WRK_NON_2XX.search(output)
    socket = _WRK_SOCKET.search(output)
    check = _WRK_CHECK.search(output)
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, socket.groups()), strict=True))
        if socket
        else {}
    )
    return WrkFigures(
        requests_per_second=float(rps.group(1)),
        requests=int(requests.group(1)),
        p50_ms=percentiles[50],
        p99_ms=percentiles[99],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
        checked=int(check.group(2)) if check else None,
        unexpected=int(check.group(1)) if check else 0,
    )


@dataclass(frozen=True)
class ApiTarget:
    base_url: str
    api_key: str
    seed_count: int
    ids_file: Path
    batch_size: int
    api_pid: int | None


def run_wrk(
    scenario: Scenario,
    target: ApiTarget,
    *,
    wrk: str,
    duration: int,
    connections: int,
    run_prefix: str,
    round_number: int,
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    timeout_s: int | None = None,
) -> Measurement:
    env = {
        **os.environ,
        **(extra_env or {}),
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_API_KEY": target.api_key,
        "BENCH_SEED_COUNT": str(target.seed_count),
        "BENCH_IDS_FILE": str(target.ids_file),
        "BENCH_RUN_PREFIX": run_prefix,
        "BENCH_BATCH_SIZE": str(target.batch_size),
    }
    command = [
        wrk,
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(scenario.lua),
        target.base_url,
    ]
    if timeout_s is not None:
        # wrk's default is 2 s: a request slower than that counts as a socket timeout.
        command[-1:-1] = ["--timeout", f"{timeout_s}s"]
    completed, cpu = _run(
        command, env=env, cwd=workdir, timeout=duration + _GRACE_SECONDS, api_pid=target.api_pid
    )
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise MeasurementError(f"wrk exited with code {completed.returncode}:\n" + _tail(output))
    figures = parse_wrk(output)
    socket_total = sum(figures.socket_errors.values())
    details = []
    if figures.non_2xx:
        details.append(f"{figures.non_2xx} non-2xx responses")
    # The ingest scripts read every answer: a 2xx can still be wrong (a batch answers 200
    # with its rejected actions; a replayed external_id answers 200).
    unread = scenario.reads_answers and not figures.checked
    if unread:
        details.append("the script read no answer (no bench-check line from wrk)")
    if figures.unexpected:
        details.append(f"{figures.unexpected} answers not as expected (2xx, wrong content)")
    if socket_total:
        parts = ", ".join(f"{k} {v}" for k, v in figures.socket_errors.items() if v)
        details.append(f"socket errors: {parts}")
    return Measurement(
        side="api",
        scenario=scenario.name,
        round=round_number,
        throughput=figures.requests_per_second,
        actions_per_second=_per_second(figures.requests_per_second, scenario, target.batch_size),
        p50_ms=figures.p50_ms,
        p99_ms=figures.p99_ms,
        completed=figures.requests,
        errors=figures.non_2xx + socket_total + figures.unexpected + (1 if unread else 0),
        error_detail="; ".join(details),
        cpu=cpu,
    )


# --- pgbench ----------------------------------------------------------------------------

_PG_TPS = re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.M)
_PG_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.M)
_PG_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.M)
_PG_ABORTED = re.compile(r"client \d+ (?:script \d+ )?aborted", re.M)


@dataclass(frozen=True)
class PgbenchFigures:
    tps: float
    transactions: int
    failed: int
    aborted_clients: int


def pgbench_problems(figures: PgbenchFigures, output: str, returncode: int) -> list[str]:
    """What went wrong in a pgbench run: failed transactions, aborted clients (with the
    first error line pgbench printed)."""
    details = []
    if figures.failed:
        details.append(f"{figures.failed} failed transactions")
    if figures.aborted_clients or returncode != 0:
        first_error = next(
            (line for line in output.splitlines() if "aborted" in line or "ERROR" in line), ""
        )
        details.append(
            f"{figures.aborted_clients} clients aborted (exit {returncode}): {first_error.strip()}"
        )
    return details


def parse_pgbench(output: str) -> PgbenchFigures:
    tps = _PG_TPS.search(output)
    processed = _PG_PROCESSED.search(output)
    aborted = len(_PG_ABORTED.findall(output))
    # When every client aborts, pgbench prints no tps line: a measurement of errors.
    if processed is None or (tps is None and not aborted):
        raise MeasurementError("cannot read pgbench's output:\n" + _tail(output))
    failed = _PG_FAILED.search(output)
    return PgbenchFigures(
        tps=float(tps.group(1)) if tps else 0.0,
        transactions=int(processed.group(1)),
        failed=int(failed.group(1)) if failed else 0,
        aborted_clients=aborted,
    )


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest rank."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def pgbench_latencies_ms(log_prefix: Path) -> list[float]:
    """Per-transaction latencies from `--log` files (third column, microseconds), sorted.

    One file per pgbench thread: <prefix>.<pid> and <prefix>.<pid>.<n>. Lines of failed
    or skipped transactions carry a word instead of a number and are left out.
    """
    latencies: list[float] = []
    for path in sorted(log_prefix.parent.glob(log_prefix.name + ".*")):
        with path.open() as log:
            for line in log:
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000.0)
        path.unlink()
    latencies.sort()
    return latencies


@dataclass(frozen=True)
class PgTarget:
    database_url: str
    variables: dict[str, str]
    batch_size: int
    api_pid: int | None


def run_pgbench(
    scenario: Scenario,
    target: PgTarget,
    *,
    pgbench: str,
    duration: int,
    connections: int,
    round_number: int,
    workdir: Path,
) -> Measurement:
    log_prefix = workdir / f"pgbench-{scenario.name}-{round_number}"
    command = [
        pgbench,
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={connections}",
        f"--jobs={min(2, connections)}",
        f"--time={duration}",
        f"--file={scenario.pgbench_script(target.batch_size, workdir)}",
        "--log",
        f"--log-prefix={log_prefix}",
    ]
    for name, value in target.variables.items():
        command += ["-D", f"{name}={value}"]
    command.append(target.database_url)
    env = {**os.environ, "PGAPPNAME": "cdp-bench"}
    completed, cpu = _run(
        command, env=env, cwd=workdir, timeout=duration + _GRACE_SECONDS, api_pid=target.api_pid
    )
    output = completed.stdout + completed.stderr
    try:
        figures = parse_pgbench(output)
    except MeasurementError:
        raise MeasurementError(
            f"pgbench exited with code {completed.returncode}:\n" + _tail(output)
        ) from None
    latencies = pgbench_latencies_ms(log_prefix)
    details = pgbench_problems(figures, output, completed.returncode)
    return Measurement(
        side="postgres",
        scenario=scenario.name,
        round=round_number,
        throughput=figures.tps,
        actions_per_second=_per_second(figures.tps, scenario, target.batch_size),
        p50_ms=percentile(latencies, 50) if latencies else None,
        p99_ms=percentile(latencies, 99) if latencies else None,
        completed=figures.transactions,
        errors=figures.failed + figures.aborted_clients + (1 if completed.returncode else 0),
        error_detail="; ".join(details),
        cpu=cpu,
    )
