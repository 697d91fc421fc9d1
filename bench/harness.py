"""What every bench script shares: finding its tools, describing the machine, printing,
letting the API settle, and ending with its problems and an exit code."""

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench.api_server import ApiServer, ServerError
from bench.cpu import wait_until_idle
from bench.database import BenchSetupError
from bench.measure import MeasurementError

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def say(message: str = "") -> None:
    print(message, flush=True)


def tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BenchSetupError(f"{name} not found on PATH: {hint}")
    return path


def version(command: list[str]) -> str:
    try:
        completed = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return "unknown"
    lines = (completed.stdout + completed.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def git_commit() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    completed = subprocess.run(  # noqa: S603
        [git, "rev-parse", "--short", "HEAD"],
        cwd=BENCH_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or None


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_metadata(
    *, run_id: str, started: datetime, facts: dict[str, Any], wrk: str, pgbench: str
) -> dict[str, Any]:
    """What every results JSON records about its run: when, which code, which machine,
    which PostgreSQL and which load tools."""
    return {
        "run_id": run_id,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "git_commit": git_commit(),
        "machine": {
            "nproc": cpus(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg(),
        },
        "postgresql": facts,
        "wrk": version([wrk, "--version"]),
        "pgbench": version([pgbench, "--version"]),
    }


def settle(server: ApiServer) -> None:
    """Let the API finish the requests a load left in flight before anything else is
    measured."""
    if server.pid is None:
        return
    waited = wait_until_idle(server.pid)
    if waited > 2:
        say(f"  (the API took {waited:.1f}s to finish the requests left in flight)")


def server_log_problems(log_path: Path) -> list[str]:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if "ERROR" in line or "Traceback" in line]


def stop_server(server: ApiServer, problems: list[str], log_copy_name: str) -> Path | None:
    """Stop the API; if it logged errors, that is a problem of the run, and its log is kept
    in the results as `log_copy_name` (returned)."""
    server.stop()
    log_problems = server_log_problems(server.log_path)
    if not log_problems:
        return None
    problems.append(
        f"the API logged {len(log_problems)} error lines, first: {log_problems[0][:300]}"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    copy = RESULTS_DIR / log_copy_name
    shutil.copyfile(server.log_path, copy)
    return copy


def finish(
    *,
    json_path: Path,
    server_log_copy: Path | None,
    problems: Sequence[str],
    heading: str,
    interrupted: bool,
) -> int:
    """Say where the results are and, loudly, what went wrong; the exit code."""
    say(f"results: {json_path.relative_to(BENCH_DIR.parent)}")
    if server_log_copy is not None:
        say(f"server log: {server_log_copy.relative_to(BENCH_DIR.parent)}")
    if problems:
        say()
        say("!" * 78)
        say(f"!!! {heading.upper()} HAD {len(problems)} PROBLEM(S)")
        for problem in problems:
            say(f"!!! - {problem}")
        say("!" * 78)
    return 130 if interrupted else (1 if problems else 0)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_main(
    argv: Sequence[str] | None,
    parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], int],
) -> int:
    """A bench's main: a SIGTERM cleans up like a Ctrl-C; known failures are one line."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    except (BenchSetupError, ServerError, MeasurementError) as error:
        print(f"\nbench: error: {error}", file=sys.stderr)
        return 1
