"""The API under test: `cdp serve` as a child process in its own process group."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0


class ServerError(Exception):
    """The API did not start or stopped early; the message carries its log's tail."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pool_settings(connections: int, workers: int) -> tuple[int, int]:
    """(pool size, overflow) per worker: every wrk connection could land on one worker."""
    pool = min(200, max(20, math.ceil(connections / workers)))
    overflow = min(200, max(0, connections - pool))
    return pool, overflow


def http(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    timeout: float = 10.0,
    extra_headers: dict[str, str] | None = None,
) -> HttpAnswer:
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return HttpAnswer(response.status, response.read().decode(errors="replace"))
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, error.read().decode(errors="replace"))


class ApiServer:
    """Start with start(), stop with stop() (idempotent, also after a failed start)."""

    def __init__(self, *, database_url: str, workers: int, connections: int, workdir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.pool_size, self.max_overflow = pool_settings(connections, workers)
        self.log_path = workdir / "server.log"
        metrics_dir = workdir / "prometheus"
        metrics_dir.mkdir(exist_ok=True)
        self._env = {
            **os.environ,
            "CDP_DATABASE_URL": database_url,
            "CDP_LOG_LEVEL": "WARNING",
            "CDP_DB_POOL_SIZE": str(self.pool_size),
            "CDP_DB_MAX_OVERFLOW": str(self.max_overflow),
            "CDP_RATE_LIMIT_PER_SECOND": "0",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            # `cdp serve` calls mkdtemp() even when PROMETHEUS_MULTIPROC_DIR is set: keep
            # that directory inside ours, which is removed at the end.
            "TMPDIR": str(workdir),
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        cdp = Path(sys.executable).parent / "cdp"
        if not cdp.exists():
            raise ServerError(f"{cdp} not found: install the project (pip install -e .)")
        command = [
            str(cdp),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        self._log_file = self.log_path.open("wb")
        # Its own session: a Ctrl-C reaches only us, and we stop the whole group in order.
        self._process = subprocess.Popen(  # noqa: S603
            command,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last = "no answer"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ServerError(
                    f"the API exited with code {self._process.returncode} while starting\n"
                    + self.log_tail()
                )
            try:
                answer = http("GET", f"{self.base_url}/readyz", timeout=2)
                if answer.status == 200:
                    return
                last = f"HTTP {answer.status}: {answer.body[:200]}"
            except OSError as error:
                last = str(error)
            time.sleep(0.3)
        raise ServerError(
            f"GET /readyz was not 200 within {READY_TIMEOUT_SECONDS:.0f}s (last: {last})\n"
            + self.log_tail()
        )

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        tail = text.splitlines()[-lines:]
        return "--- server log (tail) ---\n" + "\n".join(tail) if tail else "(server log empty)"

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            self._signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"bench: the API did not stop in {STOP_TIMEOUT_SECONDS:.0f}s; killing it")
                self._signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process is not None:
            # Workers left behind by a supervisor that died first.
            self._signal_group(process.pid, signal.SIGKILL)
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    @staticmethod
    def _signal_group(pgid: int, signum: signal.Signals) -> None:
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            pass
