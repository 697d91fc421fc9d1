"""`cdp serve` as a real process: uvicorn on a free port, with and without the embedded database."""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers import wait_until_ready


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(env_overrides: dict[str, str | None], *options: str) -> Iterator[tuple[str, list[str]]]:
    """Run `python -m app serve [options]`, wait for /readyz, yield (base URL, output lines
    so far)."""
    port = _free_port()
    env = {**os.environ, "CDP_LOG_LEVEL": "WARNING"}
    for name, value in env_overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process, lambda: process.stdout.read() if process.stdout else "")
        yield base_url, []
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            pytest.fail(f"server did not stop on SIGTERM:\n{output}")
    assert process.returncode == 0, output
    serving.last_output = output  # type: ignore[attr-defined]


def test_serve_on_a_configured_database(database_url: str) -> None:
    with serving({"CDP_DATABASE_URL": database_url}) as (base_url, _):
        docs = httpx.get(f"{base_url}/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        spec = httpx.get(f"{base_url}/openapi.json").json()
        assert "/v1/api-keys" in spec["paths"]
        denied = httpx.get(f"{base_url}/v1/api-keys")
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"
        assert denied.headers["x-request-id"]


# Makes every uvicorn worker (a multiprocessing child) start 12 s late, as importing the app
# did on a busy 2-core machine (10 s); the supervisor (`python -m app`) is not delayed.
# uvicorn pings the workers one after the other, each for 5 s: 12 s outlasts both pings.
_SLOW_WORKERS = """
import sys, time
if "spawn_main" in " ".join(sys.orig_argv):
    time.sleep(12)
"""


def test_workers_that_start_slowly_are_kept(database_url: str, tmp_path: Path) -> None:
    """uvicorn replaces a worker that does not answer its health check within 5 s by
    default, and a worker answers only once it has imported the app: on a busy machine the
    workers were killed and restarted forever (bench/soak never got a ready server)."""
    (tmp_path / "sitecustomize.py").write_text(_SLOW_WORKERS)
    python_path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    env: dict[str, str | None] = {"CDP_DATABASE_URL": database_url, "PYTHONPATH": python_path}
    with serving(env, "--workers", "2") as (base_url, _):
        assert httpx.get(f"{base_url}/readyz").json()["status"] == "ready"


def test_serve_on_the_embedded_database_bootstraps_once_and_stops_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "cdp-data"
    embedded = {"CDP_DATABASE_URL": None, "CDP_DATA_DIR": str(data_dir)}
    with serving(embedded) as (base_url, _):
        ready = httpx.get(f"{base_url}/readyz")
        assert ready.json()["status"] == "ready"
    first_output: str = serving.last_output  # type: ignore[attr-defined]
    key = next(word for word in first_output.split() if word.startswith("cdp_"))
    # The server was stopped with the service: no postmaster left behind.
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()

    with serving(embedded) as (base_url, _):
        current = httpx.get(
            f"{base_url}/v1/projects/current", headers={"Authorization": f"Bearer {key}"}
        )
        assert current.status_code == 200
        assert current.json()["name"] == "default"
    assert "cdp_" not in serving.last_output  # type: ignore[attr-defined]
